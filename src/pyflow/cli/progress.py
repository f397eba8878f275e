"""Live progress of a run on the terminal, and the table of node results."""

from __future__ import annotations

import json
from typing import TextIO

from ..model.artifacts import ARTIFACT_KEY

MARKS = {"success": "ok", "fail": "FAIL", "skipped": "skip", "cancelled": "cancel"}


class Progress:
    """Prints a line per finished node and keeps a progress bar on the last line of a terminal."""

    def __init__(self, stream: TextIO, enabled: bool = True, width: int = 30):
        self.stream = stream
        self.enabled = enabled
        self.tty = enabled and stream.isatty()
        self.width = width
        self.total = 0
        self.done = 0
        self.mapping: dict[str, str] = {}  # mapped node -> "name done/total", while its items run
        self.quarters: dict[str, int] = {}

    def handle(self, event: dict) -> None:
        if not self.enabled:
            return
        kind, data = event["event"], event["data"]
        if kind == "run_started":
            self.total = len(data.get("nodes") or [])
            self._line(f"run {data.get('run')} started: {self.total} nodes")
        elif kind == "node_progress":
            self._item_progress(data)
        elif kind in ("node_finished", "node_cached", "node_skipped"):
            self.done += 1
            self.mapping.pop(data["node"], None)
            self._line(self._node_line(kind, data))
        elif kind == "environment":
            line = environment_line(data)
            if line:
                self._line(line)
        elif kind == "run_finished":
            self._line(f"run {data.get('status')}" + (f": {data['reason']}" if data.get("reason") else "")
                       + f" in {data.get('duration_ms', 0):.0f} ms")
        self._bar()

    def _node_line(self, kind: str, data: dict) -> str:
        mark = "cached" if kind == "node_cached" else MARKS.get(data["status"], data["status"])
        depth = len(data.get("path") or ()) - 1
        text = f"  [{mark:>6}] {'  ' * max(depth, 0)}{data['name']} ({data['node']})"
        if data.get("items"):
            items = data["items"]
            text += f"  {items['total']} items" + (f", {items['failed']} failed" if items.get("failed") else "")
        if data.get("reason"):
            text += f"  {data['reason']}"
        if data.get("duration_ms"):
            text += f"  {data['duration_ms']:.1f} ms"
        if data.get("error"):
            text += f"  {data['error'].get('type')}: {data['error'].get('message')}"
        return text

    def _item_progress(self, data: dict) -> None:
        """A mapped node's items: on a terminal in the progress line; otherwise a line per quarter."""
        done, total, node = data["done"], data["total"], data["node"]
        failed = f", {data['failed']} failed" if data.get("failed") else ""
        self.mapping[node] = f"{node} {done}/{total}{failed}"
        quarter = 4 * done // max(total, 1)
        if not self.tty and quarter > self.quarters.get(node, 0):
            self.quarters[node] = quarter
            self._line(f"  [{'items':>6}] {node}: {done}/{total}{failed}")

    def _line(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(text + "\n")

    def _bar(self) -> None:
        if not self.tty or not self.total:
            return
        filled = int(self.width * self.done / self.total)
        mapping = "  " + "  ".join(self.mapping.values()) if self.mapping else ""
        self.stream.write(f"\r\033[K[{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total}{mapping}")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()


def environment_line(data: dict) -> str | None:
    """One line per environment event a person wants to see: build started, installer output, done."""
    phase, reqs = data.get("phase"), ", ".join(data.get("requirements") or [])
    if phase == "started":
        return f"  installing {reqs} (first use of this environment) ..."
    if phase == "progress":
        return f"    {data.get('line', '')}"
    if phase == "waiting":
        return f"  waiting for {reqs} to be installed by another run ..."
    if phase == "finished":
        return f"  installed {', '.join(data.get('packages') or [])} in {data.get('duration_ms', 0) / 1000:.1f} s"
    if phase == "failed":
        return f"  installing {reqs} failed: {data.get('message', '')}"
    return None


def _cell(value, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def summarized(outputs: dict):
    """Outputs with each artifact shown by its one-line summary (`<DataFrame 1,000 x 5>`), not its metadata."""
    return {name: _summary(value) for name, value in outputs.items()}


def _summary(value):
    meta = value.get(ARTIFACT_KEY) if isinstance(value, dict) and len(value) == 1 else None
    if isinstance(meta, dict) and isinstance(meta.get("summary"), str):
        return f"<{meta['summary']}>"
    return value


def print_run_table(run: dict, stream: TextIO) -> None:
    """One line per node; a WORKER column when nodes ran on a cluster's workers (the dask executor)."""
    nodes = run.get("nodes") or []
    workers = any(node.get("worker") for node in nodes)
    rows = [("NODE", "NAME", "STATUS", "MS", *(("WORKER",) if workers else ()), "RESULT")]
    for node in nodes:
        status = "cached" if node.get("cached") else node["status"]
        items = node.get("items")
        if items is not None:
            status += f" {sum(1 for i in items if i['status'] == 'success')}/{len(items)}"
        if node.get("error"):
            result = f"{node['error'].get('type')}: {node['error'].get('message')}"
        else:
            result = node.get("reason") or summarized(node.get("outputs") or {})
        depth = len(node.get("path") or ()) - 1
        where = (node.get("worker") or "-",) if workers else ()
        rows.append(("  " * max(depth, 0) + node["id"], node["name"], status,
                     f"{node.get('duration_ms') or 0:.1f}", *where, _cell(result)))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        stream.write("  ".join(str(c).ljust(w) for c, w in zip(row[:-1], widths)) + "  " + str(row[-1]) + "\n")
    stream.write(f"run {run['id']}: {run['status']}" + (f" ({run['reason']})" if run.get("reason") else "") + "\n")
