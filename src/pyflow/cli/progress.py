"""Live progress of a run on the terminal, and the table of node results."""

from __future__ import annotations

import json
from typing import TextIO

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

    def handle(self, event: dict) -> None:
        if not self.enabled:
            return
        kind, data = event["event"], event["data"]
        if kind == "run_started":
            self.total = len(data.get("nodes") or [])
            self._line(f"run {data.get('run')} started: {self.total} nodes")
        elif kind in ("node_finished", "node_cached", "node_skipped"):
            self.done += 1
            self._line(self._node_line(kind, data))
        elif kind == "run_finished":
            self._line(f"run {data.get('status')}" + (f": {data['reason']}" if data.get("reason") else "")
                       + f" in {data.get('duration_ms', 0):.0f} ms")
        self._bar()

    def _node_line(self, kind: str, data: dict) -> str:
        mark = "cached" if kind == "node_cached" else MARKS.get(data["status"], data["status"])
        text = f"  [{mark:>6}] {data['name']} ({data['node']})"
        if data.get("duration_ms"):
            text += f"  {data['duration_ms']:.1f} ms"
        if data.get("error"):
            text += f"  {data['error'].get('type')}: {data['error'].get('message')}"
        return text

    def _line(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(text + "\n")

    def _bar(self) -> None:
        if not self.tty or not self.total:
            return
        filled = int(self.width * self.done / self.total)
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total}")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()


def _cell(value, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def print_run_table(run: dict, stream: TextIO) -> None:
    """One line per node; a WORKER column when nodes ran on a cluster's workers (the dask executor)."""
    nodes = run.get("nodes") or []
    workers = any(node.get("worker") for node in nodes)
    rows = [("NODE", "NAME", "STATUS", "MS", *(("WORKER",) if workers else ()), "RESULT")]
    for node in nodes:
        status = "cached" if node.get("cached") else node["status"]
        if node.get("error"):
            result = f"{node['error'].get('type')}: {node['error'].get('message')}"
        else:
            result = node.get("outputs")
        where = (node.get("worker") or "-",) if workers else ()
        rows.append((node["id"], node["name"], status, f"{node.get('duration_ms') or 0:.1f}", *where, _cell(result)))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        stream.write("  ".join(str(c).ljust(w) for c, w in zip(row[:-1], widths)) + "  " + str(row[-1]) + "\n")
    stream.write(f"run {run['id']}: {run['status']}" + (f" ({run['reason']})" if run.get("reason") else "") + "\n")
