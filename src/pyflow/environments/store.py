"""The environment store: content-addressed folders of installed packages, built once, found afterwards.

An environment's key is the hash of its normalized requirements, the target interpreter's version and
platform, and the index settings; its folder `<envs-dir>/<key>/` holds `site/` (the packages, bound
read-only into sandboxes), `lock.txt` (exact versions with hashes) and `meta.json` (what it is, what
it holds, which host libraries its extension modules need). A folder exists only complete: a build
fills `<envs-dir>/.build/<key>-<random>/` and is renamed into place at the end, so a killed server or a
failed build leaves no half environment behind (and a failure is never taken for a success). One build
per environment runs at a time, across threads (a lock) and processes (a file lock): whoever comes
second waits for it and uses its result.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..engine.execution import Environment
from ..model.requirements import normalize_requirements
from ..timestamps import now_iso
from .builder import Budget, BuildFailed, Installer, folder_bytes
from .libraries import host_libraries
from .policy import RequirementsPolicy
from .settings import EnvironmentSettings
from .target import Target, probe_target

log = logging.getLogger(__name__)

# (phase, data): "started", "progress" ({"line"}), "waiting", "finished" / "failed" ({"duration_ms", ...}).
Listener = Callable[[str, dict], None]
FORMAT = 1
CACHE_LOCK = "download-cache"  # taken shared by every build, alone by prune to empty the cache
RESOLVED = ".resolved"  # the locks of removed environments, by key
CACHE_SHARE = 4  # prune empties the download cache beyond a quarter of the environments' budget
TOUCH_EVERY_S = 60.0


class EnvironmentFailed(Exception):
    """An environment could not be made; the message says why (the installer's own words)."""


@dataclass(frozen=True)
class EnvironmentKey:
    key: str
    requirements: tuple[str, ...]
    target: Target


class EnvironmentStore:
    """Builds and finds environments for one target interpreter (the sandbox's).

    :param settings: folder, index, budgets and policy.
    :param python: the interpreter environments are for; probed once for its version and platform.
    """

    def __init__(self, settings: EnvironmentSettings, python: str = "/usr/bin/python3"):
        self.settings = settings
        self.python = python
        self.policy = RequirementsPolicy(settings.policy)
        self._target: Target | None = None
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._known: dict[str, Environment] = {}
        self._by_request: dict[tuple, Environment] = {}  # requirements as a nodespec wrote them -> env
        self._touched: dict[str, float] = {}
        # Called with a new environment's key once it is in place (the service prunes beyond its budget).
        self.after_build: Callable[[str], None] | None = None

    @property
    def root(self) -> Path:
        return self.settings.envs_dir

    def target(self) -> Target:
        if self._target is None:
            self._target = probe_target(self.python)
        return self._target

    def key_for(self, requirements) -> EnvironmentKey:
        reqs = normalize_requirements(list(requirements))
        target = self.target()
        identity = json.dumps([FORMAT, list(reqs), target.identity(), self.settings.index.identity()])
        return EnvironmentKey(hashlib.sha256(identity.encode()).hexdigest()[:32], reqs, target)

    # -- finding and building -------------------------------------------------------------------------
    def environment(self, requirements, listener: Listener | None = None,
                    cancel: threading.Event | None = None) -> Environment:
        """The ready environment for `requirements`, built first when there is none (raises
        EnvironmentFailed saying why, RequirementsRefused when the policy forbids a package)."""
        asked = tuple(requirements)
        known = self._by_request.get(asked)  # the per-node path: no parsing, hashing or policy again
        if known is not None and os.path.isdir(known.path):
            self._touch(known.key)
            return known
        self.policy.check(list(requirements))
        ident = self.key_for(requirements)
        known = self._known.get(ident.key)
        if known is not None and (self.root / ident.key).is_dir():
            self._by_request[asked] = known
            self._touch(ident.key)
            return known
        listener = listener or (lambda phase, data: None)
        lock = self._thread_lock(ident.key)
        if not lock.acquire(blocking=False):
            listener("waiting", {"key": ident.key, "requirements": list(ident.requirements)})
            lock.acquire()
        built = False
        try:
            with self._file_lock(ident.key):
                if not (self.root / ident.key / "meta.json").is_file():
                    self._build(ident, listener, cancel)
                    built = True
            env = self._load(ident.key)
        finally:
            lock.release()
        self._known[ident.key] = self._by_request[asked] = env
        self._touch(ident.key)
        if built:
            self._announce_build(ident.key)
        return env

    def environment_from_lock(self, env: Environment, listener: Listener | None = None,
                              cancel: threading.Event | None = None) -> Environment:
        """This machine's copy of an environment another machine resolved (a Dask worker's, for a node
        the server prepared): exactly its packages (`name==version` each, no resolution), kept under the
        same key, so a flow gets the same versions wherever its nodes run."""
        if Path(env.path).is_dir():
            return env
        key = env.key
        known = self._known.get(key)
        if known is not None and (self.root / key).is_dir():
            return known
        built = False
        with self._thread_lock(key), self._file_lock(key):
            if not (self.root / key / "meta.json").is_file():
                ident = EnvironmentKey(key, tuple(env.packages), self.target())
                self._build(ident, listener or (lambda phase, data: None), cancel, pinned=True)
                built = True
            found = self._known[key] = self._load(key)
        if built:
            self._announce_build(key)
        return found

    def _announce_build(self, key: str) -> None:
        if self.after_build is None:
            return
        try:
            self.after_build(key)
        except Exception:  # housekeeping: the environment is built and usable either way
            log.exception("housekeeping after building environment %s failed", key)

    def _thread_lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def _file_lock(self, key: str, shared: bool = False, wait: bool = True):
        (self.root / ".locks").mkdir(parents=True, exist_ok=True)
        return _FileLock(self.root / ".locks" / f"{key}.lock", shared, wait)

    @property
    def download_cache(self) -> Path:
        """The installer's download cache, shared by builds (in this process and any other)."""
        return self.root / ".cache"

    def _build(self, ident: EnvironmentKey, listener: Listener, cancel, pinned: bool = False) -> None:
        started = time.monotonic()
        base = {"key": ident.key, "requirements": list(ident.requirements)}
        listener("started", dict(base))
        workdir = self.root / ".build" / f"{ident.key}-{uuid.uuid4().hex[:8]}"
        workdir.mkdir(parents=True)
        budget = Budget(self.settings.build_timeout_s, self.settings.build_disk_mb * 1024 * 1024, cancel)
        installer = Installer(self.python, self.settings.index, self.download_cache, budget,
                              lambda line: listener("progress", {**base, "line": line}))
        try:
            with self._file_lock(CACHE_LOCK, shared=True):  # prune empties the cache only between builds
                lock_text = self._install(installer, ident, workdir, pinned)
            meta = self._describe(ident, workdir, lock_text, installer.uv is not None)
            (workdir / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
            os.replace(workdir, self.root / ident.key)
        except (BuildFailed, OSError, ValueError) as exc:
            shutil.rmtree(workdir, ignore_errors=True)
            message = (f"could not install {', '.join(ident.requirements)} (index "
                       f"{self.settings.index.describe()}): {exc}")
            listener("failed", {**base, "message": message, "duration_ms": _ms(started)})
            raise EnvironmentFailed(message) from None
        listener("finished", {**base, "packages": list(meta["packages"]), "duration_ms": _ms(started)})

    def _install(self, installer: Installer, ident: EnvironmentKey, workdir: Path, pinned: bool) -> str:
        """Resolve and install; answers the lock. An environment removed before (pruned, say) is built
        again from the lock it had, not resolved afresh: the same requirements keep meaning the same
        versions, which the result cache's keys (made from the requirements) rely on. When that lock
        can no longer be installed (a version gone from the index), the requirements are resolved again."""
        remembered = None if pinned else self._remembered_lock(ident.key)
        if remembered is not None:
            (workdir / "lock.txt").write_text(remembered, encoding="utf-8")
            try:
                installer.install(workdir / "lock.txt", workdir / "site", workdir)
                return remembered
            except BuildFailed as exc:
                log.warning("environment %s: the lock it had cannot be installed again (%s); resolving %s afresh",
                            ident.key, exc, ", ".join(ident.requirements))
                shutil.rmtree(workdir / "site", ignore_errors=True)
        lock_text = installer.lock(ident.requirements, workdir, resolve=not pinned)
        installer.install(workdir / "lock.txt", workdir / "site", workdir)
        return lock_text

    def _remembered_lock(self, key: str) -> str | None:
        try:
            return (self.root / RESOLVED / f"{key}.txt").read_text(encoding="utf-8")
        except OSError:
            return None

    def _describe(self, ident: EnvironmentKey, workdir: Path, lock_text: str, by_uv: bool) -> dict:
        site = workdir / "site"
        site.mkdir(exist_ok=True)
        return {"format": FORMAT, "key": ident.key, "requirements": list(ident.requirements),
                "packages": lock_packages(lock_text), "python": ident.target.version,
                "platform": ident.target.platform, "index": self.settings.index.describe(),
                "installer": "uv" if by_uv else "pip", "created_at": now_iso(), "size_bytes": folder_bytes(site),
                "modules": top_level_modules(site), "libraries": host_libraries(site)}

    def _load(self, key: str) -> Environment:
        meta = json.loads((self.root / key / "meta.json").read_text(encoding="utf-8"))
        return Environment(key=key, path=str(self.root / key / "site"), packages=tuple(meta["packages"]),
                           libraries=tuple(meta.get("libraries") or ()), modules=tuple(meta.get("modules") or ()))

    def _touch(self, key: str) -> None:
        """Note the use (the folder's `last_used` file's time), for listing and pruning: at most once a
        minute per environment, not once per node."""
        now = time.monotonic()
        if now - self._touched.get(key, -TOUCH_EVERY_S) < TOUCH_EVERY_S:
            return
        self._touched[key] = now
        try:
            (self.root / key / "last_used").touch()
        except OSError:
            pass

    # -- listing and pruning ---------------------------------------------------------------------------
    def records(self) -> list[dict]:
        """Every complete environment's description, with its size and last use."""
        found = []
        if not self.root.is_dir():
            return found
        for folder in sorted(self.root.iterdir()):
            meta_file = folder / "meta.json"
            if folder.name.startswith(".") or not meta_file.is_file():
                continue
            try:
                meta = json.loads(meta_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            used = folder / "last_used"
            meta["last_used"] = _iso(used.stat().st_mtime) if used.exists() else meta.get("created_at")
            meta["last_used_epoch"] = used.stat().st_mtime if used.exists() else meta_file.stat().st_mtime
            meta.pop("libraries", None)
            found.append(meta)
        return found

    def remove(self, key: str) -> bool:
        """Remove one environment (renamed away first, so no sandbox binds half of it)."""
        folder = self.root / key
        if not (folder / "meta.json").is_file():
            return False
        with self._file_lock(key):
            self._remember_lock(key)
            trash = self.root / ".build" / f"removed-{key}-{uuid.uuid4().hex[:8]}"
            trash.parent.mkdir(parents=True, exist_ok=True)
            os.replace(folder, trash)
            shutil.rmtree(trash, ignore_errors=True)
        self._known.pop(key, None)
        self._by_request = {asked: env for asked, env in self._by_request.items() if env.key != key}
        return True

    def _remember_lock(self, key: str) -> None:
        """Keep a removed environment's lock (a few kilobytes), for building it again with the same
        versions (see _install)."""
        try:
            (self.root / RESOLVED).mkdir(exist_ok=True)
            shutil.copyfile(self.root / key / "lock.txt", self.root / RESOLVED / f"{key}.txt")
        except OSError as exc:
            log.warning("environment %s: its lock could not be kept (%s); a rebuild resolves afresh", key, exc)

    def prune(self, unused_days: float | None = None, max_gb: float | None = None,
              keep: set[str] | frozenset[str] = frozenset(), min_idle_s: float = 0.0) -> list[dict]:
        """Remove environments unused for `unused_days`, then the least recently used while the total
        is over `max_gb`; never those in `keep` (in use by a warm sandbox or a running node), nor any
        used in the last `min_idle_s` seconds. Then, with `max_gb`, the installer's download cache is
        emptied when it holds more than a quarter of it. Returns the removed environments' records."""
        everything = sorted(self.records(), key=lambda r: r["last_used_epoch"])
        idle_since = time.time() - min_idle_s
        candidates = [r for r in everything if r["key"] not in keep and r["last_used_epoch"] <= idle_since]
        total = sum(r.get("size_bytes", 0) for r in everything)
        removed = self._remove_records(candidates, unused_days, None if max_gb is None else max_gb * 1024 ** 3, total)
        if max_gb is not None:
            self._trim_download_cache(max_gb * 1024 ** 3 / CACHE_SHARE)
        return removed

    def keep_within_budget(self, built: str, warm=(), longest_run_s: float = 3600.0) -> list[dict]:
        """After `built` was installed: beyond `envs_gb` the least recently used environments go, as
        `pyflow envs prune` would; never a warm one, the new one, nor one used within twice the longest
        a node may run (a node on an executor without warm pools may still be using it). Without it,
        every new set of requirements would add to the disk until someone pruned by hand."""
        removed = self.prune(max_gb=self.settings.envs_gb, keep={built, *warm}, min_idle_s=2 * longest_run_s)
        for record in removed:
            log.info("removed environment %s (%s), least recently used: environments are kept within %g GB",
                     record["key"], ", ".join(record["requirements"]), self.settings.envs_gb)
        return removed

    def _remove_records(self, candidates: list[dict], unused_days: float | None, max_bytes: float | None,
                        total: int) -> list[dict]:
        """Remove, least recently used first, each candidate unused for `unused_days`, and any other
        while the total is over `max_bytes`."""
        removed = []
        cutoff = time.time() - unused_days * 86400 if unused_days is not None else None
        for record in candidates:
            over = max_bytes is not None and total > max_bytes
            if not (over or (cutoff is not None and record["last_used_epoch"] < cutoff)):
                continue
            if self.remove(record["key"]):
                removed.append(record)
                total -= record.get("size_bytes", 0)
        return removed

    def _trim_download_cache(self, most_bytes: float) -> bool:
        """Empty the download cache when it holds more than `most_bytes`, unless a build is using it
        (then the next prune does). Installed environments keep their files: the installer links or
        copies them out of the cache. Answers whether it was emptied."""
        cache = self.download_cache
        if not cache.is_dir() or folder_bytes(cache) <= most_bytes:
            return False
        try:
            with self._file_lock(CACHE_LOCK, wait=False):
                trash = self.root / ".build" / f"cache-{uuid.uuid4().hex[:8]}"
                trash.parent.mkdir(parents=True, exist_ok=True)
                os.replace(cache, trash)
        except BlockingIOError:
            return False
        shutil.rmtree(trash, ignore_errors=True)
        log.info("emptied the installers' download cache (it held more than %.1f GB)", most_bytes / 1024 ** 3)
        return True


class _FileLock:
    """flock on a file: exclusive, or shared; `wait=False` raises BlockingIOError when taken."""

    def __init__(self, path: Path, shared: bool = False, wait: bool = True):
        self.path = path
        self.mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB)

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self.fd, self.mode)
        except BaseException:
            os.close(self.fd)
            raise
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def lock_packages(lock_text: str) -> list[str]:
    """`name==version` of every package a lock pins, in order."""
    pins = []
    for line in lock_text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "--")) and "==" in line:
            pins.append(line.split()[0].split(";")[0].rstrip("\\").strip())
    return sorted(dict.fromkeys(pins), key=str.lower)


def top_level_modules(site: Path) -> list[str]:
    """The import names an installed folder provides (packages and single-file modules)."""
    names = set()
    for entry in site.iterdir() if site.is_dir() else ():
        if entry.name.endswith((".dist-info", ".data", ".libs")) or entry.name.startswith(("_", ".")):
            continue
        if entry.is_dir() and entry.name.isidentifier():
            names.add(entry.name)
        elif entry.suffix in (".py", ".so") and entry.name.split(".")[0].isidentifier():
            names.add(entry.name.split(".")[0])
    return sorted(names)


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
