"""Shared by every suite: the checkout on sys.path, and a guard that keeps the tests self-contained.

The guard is an audit hook: a test that opens a file beside the checkout (in a sibling folder) fails at
once, naming the file, so the suites pass in a clone with nothing beside it.
"""

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# Found once, before the hook is installed: finding it opens files, which would call the hook, which
# would ask for it again, inside tempfile's lock (a hang under `pytest -s`, where nothing found it first).
TEMP = os.path.abspath(tempfile.gettempdir())


def _within(path: str, base: str) -> bool:
    return path == base or path.startswith(base + os.sep)


def _outside_checkout(path: str) -> bool:
    """Whether `path` lies beside the checkout: under its parent folder but not in the checkout. The
    temporary directory is exempt only when it lies in that parent (a checkout right in /tmp): tests
    write there."""
    full = os.path.abspath(path)
    parent, root, temp = str(ROOT.parent), str(ROOT), TEMP
    if parent == os.sep or not _within(full, parent) or _within(full, root):
        return False
    return not (_within(temp, parent) and _within(full, temp))


def _guard(event: str, args: tuple) -> None:
    if event == "open" and isinstance(args[0], (str, os.PathLike)) and _outside_checkout(os.fspath(args[0])):
        raise PermissionError(f"tests must not read outside the checkout: {args[0]} (copy it into tests/fixtures/)")


sys.addaudithook(_guard)
