"""Shared by every suite: the checkout on sys.path, and a guard that keeps the tests self-contained.

The guard is an audit hook: a test that opens a file beside the checkout (a sibling folder such as
../shared) fails at once, naming the file, so the suites pass in a clone with nothing beside it.
"""

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _outside_checkout(path: str) -> bool:
    """Whether `path` lies beside the checkout: under its parent folder, but neither in the checkout nor
    in the temporary directory (which may share that parent, as /tmp does)."""
    full = os.path.abspath(path)
    parent, root, temp = str(ROOT.parent), str(ROOT), os.path.abspath(tempfile.gettempdir())
    if parent == os.sep or not full.startswith(parent + os.sep):
        return False
    return not any(full == base or full.startswith(base + os.sep) for base in (root, temp))


def _guard(event: str, args: tuple) -> None:
    if event == "open" and isinstance(args[0], (str, os.PathLike)) and _outside_checkout(os.fspath(args[0])):
        raise PermissionError(f"tests must not read outside the checkout: {args[0]} (copy it into tests/fixtures/)")


sys.addaudithook(_guard)
