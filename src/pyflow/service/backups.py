"""Copies of what an import overwrites or deletes, kept beside the database before anything is written,
so that no import loses what a user saved (as Node-RED keeps .flows.json.backup). Each copy is a bundle:
`pyflow import` of it puts those objects back."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable
from uuid import uuid4

from ..model.bundle import dumps_object, write_atomic
from ..model.errors import ServiceUnavailable
from ..timestamps import now_iso

log = logging.getLogger(__name__)

KEPT = 50  # copies kept; the oldest go first


def keeper(folder: Path) -> Callable[[dict], str]:
    """What import_bundle calls with the documents it replaces: writes them to a new file in `folder`
    and answers its path. Raises ServiceUnavailable (the import then changes nothing) when it cannot."""
    def keep(replaced: dict) -> str:
        stamp = now_iso().replace(":", "").replace("-", "").replace(".", "")
        path = folder / f"import-{stamp}-{uuid4().hex[:6]}.json"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            write_atomic(path, dumps_object(replaced))
        except OSError as exc:
            raise ServiceUnavailable(f"cannot keep a copy of what the import would replace in {folder} "
                                     f"({exc.strerror or exc}); nothing was imported") from None
        _prune(folder)
        return str(path)
    return keep


def _prune(folder: Path) -> None:
    """Keep the newest KEPT copies (names sort by time)."""
    copies = sorted(folder.glob("import-*.json"))
    for old in copies[:-KEPT]:
        try:
            old.unlink()
        except OSError as exc:
            log.warning("cannot remove the old import copy %s: %s", old, exc)
