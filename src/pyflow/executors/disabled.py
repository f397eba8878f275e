"""The "none" executor: the server serves the editor, the repository and run history, but runs no node.

For a machine (or container) where no isolation is available yet: chosen explicitly, it says so at
start and in the editor, and every node run fails with a message naming how to enable execution. It
never runs node code anywhere.
"""

from __future__ import annotations

import threading

from ..engine.execution import Executor, NodeOutcome, NodeTask

DEFAULT_REASON = ("node execution is disabled on this server (executor none); restart it with "
                  "--executor sandbox, --executor docker, or, knowingly, --executor unsafe-process")


class DisabledExecutor(Executor):
    name = "none"

    def __init__(self, reason: str = DEFAULT_REASON, **_ignored):
        self.reason = reason

    def run(self, task: NodeTask, cancel: threading.Event | None = None) -> NodeOutcome:
        return NodeOutcome.failure(self.reason, "ExecutionDisabled")

    def describe(self) -> dict:
        return {"name": self.name, "isolation": "none: nodes do not run", "warnings": [self.reason]}
