"""The marker a node returns to end a branch: `pyflow.SKIP`.

A node function that returns `pyflow.SKIP` (or, with several outputs, gives it as one output's value)
does not produce that output: the nodes fed only from it are skipped with the reason "branch not
taken", and the run still succeeds. The marker crosses the executor boundary as the JSON object
{"$pyflow": "skip"}, which is what `SKIP` encodes to; the sandbox worker (executors/worker.py) offers
the same object as `pyflow.SKIP` to node code, without the pyflow package.
"""

from __future__ import annotations

from typing import Any

SKIP_KEY = "$pyflow"
SKIP_VALUE = "skip"
BRANCH_NOT_TAKEN = "branch not taken"


class Skip(dict):
    """Encodes to the marker object; a dict so that JSON carries it with no help."""

    def __init__(self):
        super().__init__({SKIP_KEY: SKIP_VALUE})

    def __repr__(self) -> str:
        return "pyflow.SKIP"


SKIP = Skip()


def is_skip(value: Any) -> bool:
    return type(value) in (dict, Skip) and len(value) == 1 and value.get(SKIP_KEY) == SKIP_VALUE
