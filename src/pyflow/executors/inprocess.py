"""The in-process executor: calls node functions in the caller's interpreter.

For tests of the engine and for benchmarks only (it measures the engine's own overhead). It offers no
isolation at all, so the server refuses to use it.
"""

from __future__ import annotations

import io
import sys
import threading
import time

from ..engine.execution import Executor, NodeOutcome, NodeTask, node_error


class InProcessExecutor(Executor):
    name = "inprocess"
    inline = True

    def __init__(self, capture_stdout: bool = True, **_ignored):
        self.capture_stdout = capture_stdout
        self._compiled: dict[tuple[str, str], object] = {}

    def _function(self, task: NodeTask):
        key = (task.spec_id, task.func)
        func = self._compiled.get(key)
        if func is None:
            namespace: dict = {"__name__": "__pyflow_node__"}
            exec(compile(task.func, f"<node {task.spec_id}>", "exec"), namespace)
            func = self._compiled[key] = namespace["func"]
        return func

    def run(self, task: NodeTask, cancel: threading.Event | None = None) -> NodeOutcome:
        started = time.perf_counter()
        buffer = io.StringIO() if self.capture_stdout else None
        saved = sys.stdout
        try:
            func = self._function(task)
            if buffer is not None:  # what contextlib.redirect_stdout does, without its per-call objects
                sys.stdout = buffer
            value = func(*task.args)
        except Exception as exc:
            return NodeOutcome(ok=False, error=node_error(type(exc).__name__, str(exc)),
                               stdout=buffer.getvalue() if buffer else "",
                               duration_ms=(time.perf_counter() - started) * 1000)
        finally:
            sys.stdout = saved
        return NodeOutcome(ok=True, value=value, stdout=buffer.getvalue() if buffer else "",
                           duration_ms=(time.perf_counter() - started) * 1000)

    def describe(self) -> dict:
        return {"name": self.name, "isolation": "none (tests and benchmarks only)",
                "warnings": ["node code runs inside the calling process"]}
