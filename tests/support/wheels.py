"""Throwaway packages for environment tests: wheels and sdists written byte by byte (no build tools,
no network), and a wheelhouse served on 127.0.0.1 the way a package index serves files."""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import tarfile
import threading
import zipfile
from functools import partial
from pathlib import Path


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(folder: Path, name: str, version: str, files: dict[str, str], requires=(),
               tag: str = "py3-none-any") -> Path:
    """A valid wheel of `files` ({"pkg/__init__.py": source}) with the given dependencies."""
    dist = f"{name.replace('-', '_')}-{version}.dist-info"
    entries = {path: text.encode() for path, text in files.items()}
    entries[f"{dist}/METADATA"] = (f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                                   + "".join(f"Requires-Dist: {r}\n" for r in requires)).encode()
    entries[f"{dist}/WHEEL"] = f"Wheel-Version: 1.0\nGenerator: pyflow-tests\nRoot-Is-Purelib: true\nTag: {tag}\n".encode()
    record = [f"{path},{_record_hash(data)},{len(data)}" for path, data in entries.items()] + [f"{dist}/RECORD,,"]
    entries[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name.replace('-', '_')}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for entry, data in entries.items():
            archive.writestr(entry, data)
    return path


def make_sdist(folder: Path, name: str, version: str, setup_source: str) -> Path:
    """A source distribution whose setup.py is `setup_source` (which must never run on the host)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}.tar.gz"
    root = f"{name}-{version}"
    members = {f"{root}/setup.py": setup_source,
               f"{root}/PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"}
    with tarfile.open(path, "w:gz") as archive:
        for member, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(member)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


class _Quiet(http.server.SimpleHTTPRequestHandler):
    gate: threading.Event | None = None

    def do_GET(self):
        if self.gate is not None:
            self.gate.wait(120)
        super().do_GET()

    def log_message(self, *args):
        pass


class _Hanging(http.server.BaseHTTPRequestHandler):
    """Accepts a request and never answers it (until the server is stopped)."""

    stop: threading.Event

    def do_GET(self):
        self.stop.wait()

    def log_message(self, *args):
        pass


class Wheelhouse:
    """A folder of distributions served over HTTP on 127.0.0.1 (a find-links page: the folder's
    listing); `hanging=True` serves nothing and never answers, like an index that stalls; a `gate` holds
    every request until it is set (an install the test can watch while it is under way)."""

    def __init__(self, folder: Path, hanging: bool = False, gate: threading.Event | None = None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._stop = threading.Event()
        if hanging:
            handler = type("Hang", (_Hanging,), {"stop": self._stop})
        else:
            handler = partial(type("Gated", (_Quiet,), {"gate": gate}), directory=str(self.folder))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def __enter__(self) -> "Wheelhouse":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()
