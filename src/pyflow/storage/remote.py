"""The artifact store's copy in an fsspec file system (`--artifacts-dir s3://bucket/prefix`, or any URL
fsspec and an installed backend understand): every artifact taken in is written there as well, and one
missing from the local directory (the copy sandboxes are bound to, which a collector or another machine
may not have) is fetched from there on first use. Only when fsspec is importable."""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

log = logging.getLogger(__name__)


def is_url(location) -> bool:
    return isinstance(location, str) and "://" in location


class RemoteMirror:
    """Files of the store under one fsspec URL, by their path relative to the store's objects/."""

    def __init__(self, url: str):
        try:
            import fsspec
        except ImportError:
            raise ValueError(f"artifact store {url}: a URL needs the fsspec package (and its backend for this "
                             f"scheme); or give a local directory") from None
        try:
            self.fs, self.base = fsspec.core.url_to_fs(url)
        except (ImportError, ValueError) as exc:
            raise ValueError(f"artifact store {url}: fsspec cannot open it: {exc}") from None
        self.url = url

    def _key(self, relative: str) -> str:
        return f"{self.base.rstrip('/')}/{relative}"

    def put(self, local: Path, relative: str) -> None:
        self.fs.put_file(str(local), self._key(relative))

    def get(self, relative: str, local: Path) -> bool:
        """Fetch one file into `local` (atomically); False when the mirror does not have it."""
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(f"{local.name}.{uuid.uuid4().hex}.tmp")
        try:
            self.fs.get_file(self._key(relative), str(tmp))
        except (FileNotFoundError, OSError) as exc:
            tmp.unlink(missing_ok=True)
            if not isinstance(exc, FileNotFoundError):
                log.warning("fetching artifact file %s from %s failed: %s", relative, self.url, exc)
            return False
        os.replace(tmp, local)
        return True

    def remove(self, relative: str) -> None:
        try:
            self.fs.rm_file(self._key(relative))
        except FileNotFoundError:
            pass
