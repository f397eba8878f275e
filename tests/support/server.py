"""A real PyFlow server in a subprocess, on a free loopback port, with its own SQLite file."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
SERVING = re.compile(r"PyFlow serving (http://[^/]+/)")
# A write without a body (DELETE, cancel) says it is no HTML form with a header pages cannot send.
NO_FORM = {"X-Requested-With": "pyflow-tests"}
TOKEN_URL = re.compile(r"http://[^/\s]+/\?token=(\S+)")


def test_executor() -> str:
    """The executor the server tests use: the real sandbox unless PYFLOW_TEST_EXECUTOR says otherwise."""
    return os.environ.get("PYFLOW_TEST_EXECUTOR", "sandbox")


test_executor.__test__ = False  # a helper, not a test, when imported into test modules


class LiveServer:
    def __init__(self, workdir: Path, executor: str | None = None, args: tuple[str, ...] = (),
                 env: dict | None = None, db: Path | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.db = Path(db or self.workdir / "pyflow.db")
        self.executor = executor or test_executor()
        self.args = args
        self.env = env or {}
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.token = self.env.get("PYFLOW_TOKEN")  # or the one the server prints when it makes one
        self.log_path = self.workdir / "server.log"

    def start(self, timeout: float = 60.0) -> "LiveServer":
        # Environments come from an empty local wheelhouse unless a test names an index: no test reaches
        # a package index by accident (fuzzed nodespecs ask for packages too).
        offline = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(self.workdir / "wheelhouse"), "UV_INDEX_URL": "",
                   "UV_FIND_LINKS": "", "UV_EXTRA_INDEX_URL": "", "PIP_EXTRA_INDEX_URL": "", "PIP_INDEX_URL": ""}
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **offline, **self.env}
        env.pop("PYFLOW_DB", None)
        cmd = [sys.executable, "-m", "pyflow", "serve", "--host", "127.0.0.1", "--port", "0",
               "--db", str(self.db), "--executor", self.executor, "--repo-dir", str(self.workdir / "repos"),
               *self.args]
        self._log = open(self.log_path, "ab")
        offset = self._log.tell()  # a restarted server appends: read only what this one writes
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT),
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        said = wait_until(lambda: self._announced(offset), timeout=timeout, interval=0.05)
        match = SERVING.search(said) if said else None
        if match is None:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited ({self.proc.returncode}): {self.log()}")
            self.stop()
            raise RuntimeError(f"server did not start: {self.log()}")
        self.url = match.group(1).rstrip("/")
        printed = TOKEN_URL.search(said)
        self.token = printed.group(1) if printed else self.env.get("PYFLOW_TOKEN")
        if not wait_until(self._healthy, timeout=max(0.1, deadline - time.monotonic()), interval=0.05):
            self.stop()
            raise RuntimeError("server never became healthy")
        return self

    def headers(self) -> dict:
        """What a client of this server sends: the token, when it has one."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _announced(self, offset: int) -> str | None:
        """What this server has logged, once it says where it serves or it has exited; else None."""
        text = self.log_path.read_text(errors="replace")[offset:]
        return text if SERVING.search(text) or self.proc.poll() is not None else None

    def _healthy(self) -> bool:
        try:
            request = urllib.request.Request(self.url + "/api/health", headers=self.headers())
            with urllib.request.urlopen(request, timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def get_json(self, path: str):
        request = urllib.request.Request(self.url + path, headers=self.headers())
        with urllib.request.urlopen(request, timeout=30) as resp:
            return json.loads(resp.read())

    def stop(self, timeout: float = 20.0) -> int | None:
        """Graceful stop (SIGTERM), then SIGKILL if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL the server process only (as a crash would), not its children."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
