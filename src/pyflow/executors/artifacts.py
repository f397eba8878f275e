"""The host side of artifacts for worker executors: input artifacts linked into a sandbox's read-only
input place before a run, and the artifacts it wrote taken into the store after it.

Each worker has a work place in the artifact store (`Places`): `in/` bound read-only and `out/` bound
writable into its sandbox (or used as they are, by the unsafe-process executor). The worker is told
where they are inside (`inside_in`, `inside_out`) and which arguments are artifacts; it loads those
there. What a sandbox wrote is taken only after the run was cleaned up (every process of the run
killed), so nothing of the node can still change a file once the server has hashed it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..engine.execution import NodeTask
from ..model.artifacts import ArtifactRef
from ..storage.artifacts import ArtifactRefused, ArtifactStore, empty_directory

log = logging.getLogger(__name__)


@dataclass
class Places:
    """A worker's artifact places: on the host, and as its sandbox sees them."""

    root: Path
    inside_in: str
    inside_out: str
    host_in: Path = field(init=False)
    host_out: Path = field(init=False)

    # Whether input artifacts were linked into the input place since it was last emptied. Only the host
    # writes there (sandboxes and containers see it read-only), so an empty place needs no listing.
    inputs_linked: bool = field(init=False, default=True)

    def __post_init__(self):
        self.host_in, self.host_out = self.root / "in", self.root / "out"

    def empty(self) -> None:
        if self.inputs_linked:
            empty_directory(self.host_in)
            self.inputs_linked = False
        empty_directory(self.host_out)


def stage(store: ArtifactStore, places: Places, task: NodeTask, payload: dict) -> None:
    """Link the task's input artifacts into the input place and tell the worker where it finds them and
    where it writes its own (`payload["artifacts"]`); artifact arguments travel as null."""
    places.empty()
    inputs = {}
    args = list(payload["args"])
    for index, arg in enumerate(args):
        if isinstance(arg, ArtifactRef):
            places.inputs_linked = True
            name = store.link_input(arg, places.host_in)
            inputs[str(index)] = {"path": f"{places.inside_in}/{name}", "format": arg.format, "type": arg.type}
            args[index] = None
    payload["args"] = args
    payload["artifacts"] = {"out": places.inside_out, "inputs": inputs, "arg_types": list(task.arg_types),
                            "outputs": list(task.output_names)}


def refuse_inputs(task: NodeTask) -> str | None:
    """Why an executor without artifact places cannot run `task`, or None."""
    if any(isinstance(arg, ArtifactRef) for arg in task.args):
        return "this executor does not carry artifacts (values that are not JSON) into its nodes"
    return None


def take(store: ArtifactStore, places: Places, claims, value, limit_bytes: int):
    """The node's value with each claimed artifact (by output name, "" for the whole value) taken into the
    store and put in its place as a reference. Raises ArtifactRefused."""
    if not isinstance(claims, dict) or not claims:
        raise ArtifactRefused("ResultError", "the node's artifact claims are not an object")
    refs = {name: store.ingest(places.host_out, claim, limit_bytes) for name, claim in claims.items()}
    if "" in refs:
        if len(refs) != 1 or value is not None:
            raise ArtifactRefused("ResultError", "the node claimed a whole-value artifact beside a value")
        return refs[""]
    if not isinstance(value, dict) or any(value.get(name) is not None for name in refs):
        raise ArtifactRefused("ResultError", "the node's artifact claims do not match its returned dict")
    return {**value, **refs}


GUARD_POLL_S = 0.2
GUARD_SLACK = 4 << 20  # previews, thumbnails and a file being written, beside the artifacts themselves
GUARD_MAX_FILES = 1000


class OutputGuard:
    """Watches a node's output place while it runs (it is on the server's disk, and node code can write
    there): more than its artifacts may take, or more files than any run writes, and `stop` is called
    (the executor ends the worker). `tripped` says why, or None.

    Every guard of the process is polled by one watcher thread (`_Watcher`): a thread started and
    joined per node would cost more than most nodes' own run."""

    def __init__(self, place: Path, cap_bytes: int, stop: Callable[[], None]):
        self.place = place
        self.cap = cap_bytes + GUARD_SLACK
        self.stop = stop
        self.tripped: str | None = None

    def __enter__(self) -> "OutputGuard":
        _WATCHER.add(self)
        return self

    def __exit__(self, *exc) -> None:
        _WATCHER.discard(self)

    def check(self) -> None:
        """One look at the place; trips (and stops the worker) once it holds too much."""
        size, files = _usage(self.place)
        if size > self.cap or files > GUARD_MAX_FILES:
            self.tripped = (f"the node wrote {size / 1048576:.1f} MB in {files} files into its output place, "
                            f"over the {self.cap >> 20} MB its artifacts may take")
            self.stop()


class _Watcher:
    """The one thread that polls every active OutputGuard each GUARD_POLL_S; started on first use."""

    def __init__(self):
        self._guards: set[OutputGuard] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, guard: OutputGuard) -> None:
        with self._lock:
            self._guards.add(guard)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._watch, daemon=True, name="pyflow-output-guard")
                self._thread.start()

    def discard(self, guard: OutputGuard) -> None:
        """Stop watching `guard`; once this returns, no look at its place is under way or to come (the
        worker may serve its next node, whose place the same guard must not judge)."""
        with self._lock:
            self._guards.discard(guard)

    def _watch(self) -> None:
        while True:
            time.sleep(GUARD_POLL_S)  # a polling period, not a synchronization
            with self._lock:  # held while looking, so that discard waits for a look under way
                for guard in [g for g in self._guards if g.tripped is None]:
                    try:
                        guard.check()
                    except Exception:  # one place that cannot be read must not end the watch of the others
                        log.exception("watching the output place %s failed", guard.place)


_WATCHER = _Watcher()


def _usage(place: Path) -> tuple[int, int]:
    """Bytes and files under `place` (never following a link), stopping once the count is past the limit."""
    size = files = 0
    for root, dirs, names in os.walk(place):
        for name in names:
            try:
                size += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
            files += 1
            if files > GUARD_MAX_FILES:
                return size, files
    return size, files
