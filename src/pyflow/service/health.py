"""What /api/health checks, and the gate that stops new runs while storage cannot take them.

Each check is cheap and bounded: thread liveness and executor readiness are counts, the database check
is one tiny write that waits at most a fraction of a second for the write lock, and free disk is one
statvfs call. None of them takes the run manager's lock, so a health check answers under any load.
"""

from __future__ import annotations

import logging
import threading

from ..engine.execution import Executor
from ..model.errors import StorageUnavailable, detail, error_body
from ..storage import Store

log = logging.getLogger(__name__)

RETRY_AFTER_S = 10


def mib(size: float) -> str:
    return f"{size / 2 ** 20:.1f} MiB"


def check(ok: bool, detail: str, **extra) -> dict:
    return {"ok": ok, "detail": detail, **extra}


class StorageGate:
    """Whether storage can take new runs: not while free disk beside the database is below the floor,
    nor after a write failed until a probe write goes through again. Recovers by itself."""

    def __init__(self, store: Store, min_free_mb: float):
        self.store = store
        self.min_free = int(min_free_mb * 2 ** 20)
        self.failure: str | None = None
        self._lock = threading.Lock()

    def failed(self, message: str) -> None:
        """A write failed for want of storage (not for a bug): refuse new runs until one succeeds."""
        with self._lock:
            first, self.failure = self.failure is None, message
        if first:
            log.error("the database cannot be written (%s); new runs are refused until it can", message)

    def recovered(self) -> None:
        with self._lock:
            was, self.failure = self.failure, None
        if was is not None:
            log.warning("the database accepts writes again; new runs are accepted")

    def admit(self) -> None:
        """Raise StorageUnavailable (503 with Retry-After) when a new run could not be stored now."""
        disk = self.disk()
        if not disk["ok"]:
            raise StorageUnavailable(f"new runs are refused until disk space is freed: {disk['detail']}",
                                     retry_after=RETRY_AFTER_S)
        if self.failure is not None:
            database = self.database()
            if not database["ok"]:
                raise StorageUnavailable(f"new runs are refused while the database cannot be written: "
                                         f"{database['detail']}", retry_after=RETRY_AFTER_S)

    def disk(self) -> dict:
        try:
            free = self.store.free_bytes()
        except OSError as exc:
            return check(False, f"free disk space is unknown: {exc}")
        if free is None:
            return check(True, "no disk in use")
        note = f"{mib(free)} free on the database's disk (floor {mib(self.min_free)})"
        return check(free >= self.min_free, note, free_bytes=free)

    def database(self) -> dict:
        """A tiny write; a successful one clears an earlier failure."""
        try:
            note = self.store.probe_write()
        except StorageUnavailable as exc:
            self.failed(exc.message)
            return check(False, exc.message)
        except Exception as exc:
            log.warning("the health check's database write failed unexpectedly", exc_info=exc)
            return check(False, f"the database could not be written: {exc!r}")
        if note is None:
            self.recovered()
            return check(True, "accepts writes")
        return check(True, note)


def executor_check(executor: Executor) -> dict:
    try:
        state = dict(executor.readiness())
    except Exception as exc:
        log.warning("the executor's readiness could not be read", exc_info=exc)
        return check(False, f"the executor cannot say whether it can run nodes: {exc!r}")
    ready = bool(state.pop("ready", False))
    return check(ready, str(state.pop("detail", "ready" if ready else "not ready")), **state)


def threads_check(dead: list[str]) -> dict:
    if dead:
        return check(False, f"not running: {', '.join(dead)} (the watchdog restarts run threads)")
    return check(True, "run threads, event persister and watchdog are running")


def summarize(checks: dict[str, dict]) -> dict:
    """status, and for failing checks the error and details of a JSON error body."""
    failing = [name for name, found in checks.items() if not found["ok"]]
    if not failing:
        return {"status": "ok"}
    return {"status": "failing", **error_body(f"unhealthy: {', '.join(failing)}",
                                              [detail(f"/checks/{name}", checks[name]["detail"]) for name in failing])}
