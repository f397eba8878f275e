"""Building one environment: resolve the requirements to a lock, install the lock into a folder.

uv does both (the `uv` package from PyPI ships its binary); pip is the fallback when uv is missing.
No package's own code runs on the host: only wheels are accepted (`--no-build`, `--only-binary
:all:`), so no setup.py or build backend is ever started, and bytecode is compiled by the target
interpreter without importing anything. A build runs under a time limit and a disk budget (the folder it
fills is measured while it runs) and is ended, with its whole process group, when it exceeds either or
the caller cancels.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .settings import IndexSettings

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
POLL_S = 0.25
# What a build's installer may see of the server's environment: no credentials or settings of the
# server's own, only what reaching an index needs.
PASSED_VARIABLES = ("PATH", "LANG", "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                    "NO_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR", "UV_NATIVE_TLS")


class BuildFailed(Exception):
    """A build that did not produce an environment; the message is the installer's own, trimmed."""


@dataclass
class Budget:
    timeout_s: float
    disk_bytes: int
    cancel: threading.Event | None = None


_UV: list = []  # the answer, found once
_UV_LOCK = threading.Lock()


def uv_binary() -> str | None:
    """uv from the `uv` package beside this interpreter, else on PATH; looked up once, under a lock:
    the package asks `sysconfig`, whose first use is not safe from two threads at once (one can read
    its settings half made), and builds of two environments start together."""
    with _UV_LOCK:
        if not _UV:
            try:
                from uv import find_uv_bin
                _UV.append(find_uv_bin())
            except (ImportError, FileNotFoundError):
                _UV.append(shutil.which("uv"))
        return _UV[0]


def folder_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


class Installer:
    """Runs the installer's commands for one build, inside `workdir` (which the store renames into place).

    :param python: the interpreter the environment is for (the one inside the sandbox).
    :param index: where packages come from.
    :param cache_dir: the installer's download cache, shared by builds.
    """

    def __init__(self, python: str, index: IndexSettings, cache_dir: Path, budget: Budget, progress: Progress):
        self.python = python
        self.index = index
        self.cache_dir = cache_dir
        self.budget = budget
        self.progress = progress
        self.uv = uv_binary()
        self.started = time.monotonic()

    def lock(self, requirements: tuple[str, ...], workdir: Path, resolve: bool = True) -> str:
        """Resolve `requirements` to exact versions with hashes (the lock's text); with `resolve` false
        they are a lock already (every package pinned, from another machine) and are kept as they are."""
        source = workdir / "requirements.in"
        source.write_text("".join(r + "\n" for r in requirements), encoding="utf-8")
        out = workdir / "lock.txt"
        if not resolve:
            out.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
            return out.read_text(encoding="utf-8")
        if self.uv:
            self._run([self.uv, "pip", "compile", str(source), "-o", str(out), "--generate-hashes",
                       "--no-header", "--no-annotate", *self._uv_common()], workdir, "resolving")
        else:
            self._pip_lock(source, out, workdir)
        return out.read_text(encoding="utf-8")

    def install(self, lock_file: Path, site: Path, workdir: Path) -> None:
        """Install exactly the lock (no resolution, hashes required) into `site`."""
        hashed = ["--require-hashes"] if "--hash=" in lock_file.read_text(encoding="utf-8") else []
        if self.uv:
            self._run([self.uv, "pip", "install", "--target", str(site), "--no-deps", *hashed,
                       "-r", str(lock_file), "--compile-bytecode", *self._uv_common()], workdir, "installing")
        else:
            self._run([sys.executable, "-m", "pip", "install", "--target", str(site), "--no-deps",
                       *hashed, "--only-binary", ":all:", "--no-compile", "-r", str(lock_file),
                       "--python-version", self._pip_python_version(), *self._pip_index()], workdir, "installing")

    def _uv_common(self) -> list[str]:
        return ["--no-config", "--no-build", "--python", self.python, "--cache-dir", str(self.cache_dir),
                "--no-progress", *self.index.uv_args()]

    def _pip_index(self) -> list[str]:
        return ["--isolated", "--disable-pip-version-check", *self.index.uv_args()]

    def _pip_python_version(self) -> str:
        out = subprocess.run([self.python, "-I", "-S", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=30)
        return out.stdout.strip()

    def _pip_lock(self, source: Path, out: Path, workdir: Path) -> None:
        """Without uv: pip resolves (wheels only, nothing installed) and reports what it chose."""
        report = workdir / "report.json"
        self._run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                   "--only-binary", ":all:", "--report", str(report), "--target", str(workdir / "unused"),
                   "--python-version", self._pip_python_version(), "-r", str(source), *self._pip_index()],
                  workdir, "resolving")
        chosen = json.loads(report.read_text(encoding="utf-8")).get("install", [])
        lines = []
        for item in chosen:
            meta, hashes = item["metadata"], item.get("download_info", {}).get("archive_info", {}).get("hashes", {})
            digest = f" --hash=sha256:{hashes['sha256']}" if "sha256" in hashes else ""
            lines.append(f"{meta['name']}=={meta['version']}{digest}")
        out.write_text("".join(sorted(line + "\n" for line in lines)), encoding="utf-8")

    def _run(self, argv: list[str], workdir: Path, step: str) -> None:
        """Run one installer command under the build's time and disk budget, relaying its output lines."""
        env = {k: v for k, v in os.environ.items() if k in PASSED_VARIABLES}
        env.update(HOME=str(workdir), LANG=env.get("LANG", "C.UTF-8"), PYTHONNOUSERSITE="1")
        self.progress(f"{step} with {'uv' if self.uv else 'pip'}")
        with open(workdir / f"{step}.log", "w+b") as output:
            proc = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=workdir, env=env, start_new_session=True)
            reason = self._watch(proc, workdir, output)
            output.seek(0)
            said = output.read()[-8000:].decode("utf-8", "replace").strip()
        if reason is None:
            reason = self._over_budget(workdir)  # a step faster than the first measurement
        if reason is not None:
            raise BuildFailed(f"{step} was stopped: {reason}")
        if proc.returncode != 0:
            raise BuildFailed(installer_message(said) or f"{step} failed with status {proc.returncode}")

    def _watch(self, proc: subprocess.Popen, workdir: Path, output) -> str | None:
        """Wait for `proc`, relaying new output lines; end its group and say why when a budget runs out."""
        relayed = 0
        next_measure = 0.0
        while True:
            try:
                proc.wait(timeout=POLL_S)
                relayed = self._relay(output, relayed)
                return None
            except subprocess.TimeoutExpired:
                pass
            relayed = self._relay(output, relayed)
            reason = None
            if self.budget.cancel is not None and self.budget.cancel.is_set():
                reason = "the run was cancelled"
            elif time.monotonic() - self.started > self.budget.timeout_s:
                reason = f"the build took longer than its limit of {self.budget.timeout_s:g} s"
            elif time.monotonic() >= next_measure:
                next_measure = time.monotonic() + 1.0
                reason = self._over_budget(workdir)
            if reason:
                _kill_group(proc)
                return reason

    def _over_budget(self, workdir: Path) -> str | None:
        size = folder_bytes(workdir)
        if size > self.budget.disk_bytes:
            return (f"the build used {size / (1024 * 1024):.1f} MB of disk, over its budget of "
                    f"{self.budget.disk_bytes // (1024 * 1024)} MB")
        return None

    def _relay(self, output, relayed: int) -> int:
        output.flush()
        output.seek(relayed)
        chunk = output.read(65536)
        output.seek(0, os.SEEK_END)
        if not chunk:
            return relayed
        end = chunk.rfind(b"\n") + 1
        for line in chunk[:end].decode("utf-8", "replace").splitlines():
            if line.strip():
                self.progress(line.strip()[:300])
        return relayed + end


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def installer_message(said: str) -> str:
    """The installer's own explanation, without progress chatter; says so when a package has no wheel."""
    lines = [line for line in said.splitlines() if line.strip() and not line.startswith(("Resolved ", "Prepared ",
                                                                                          "Installed ", "Audited "))]
    text = "\n".join(lines[-20:]).strip()
    lowered = text.lower()
    if "no-build" in lowered or "only-binary" in lowered or "no matching distribution" in lowered and "wheel" in lowered \
            or "building source distributions is disabled" in lowered or "has no usable wheels" in lowered:
        text += ("\n(PyFlow installs wheels only, so that no package code runs outside the sandbox: a package "
                 "without a wheel for this platform cannot be used)")
    return text[-3000:]
