"""Background threads that are restarted when they die.

The run machinery catches every error where it happens; this is the last line behind that. Each
supervised thread runs its target under a guard that logs why it ended, and a watchdog thread looks
every few seconds for threads that ended, tells the owner (so the run a dead thread held can be failed)
and starts a new thread in its place.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

log = logging.getLogger(__name__)

WATCHDOG_NAME = "pyflow-watchdog"


class Supervisor:
    def __init__(self, interval_s: float, on_death: Callable[[str, BaseException | None], None]):
        self.interval_s = interval_s
        self.on_death = on_death
        self._targets: dict[str, Callable[[], None]] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._deaths: dict[str, BaseException] = {}
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._checking = threading.Lock()

    def add(self, name: str, target: Callable[[], None]) -> None:
        self._targets[name] = target

    def start(self) -> None:
        for name in self._targets:
            self._spawn(name)
        self._watchdog = threading.Thread(target=self._watch, name=WATCHDOG_NAME, daemon=True)
        self._watchdog.start()

    def stop(self) -> None:
        """Restart nothing from now on (threads then end as their owner stops them)."""
        self._stop.set()

    def threads(self) -> list[threading.Thread]:
        return list(self._threads.values())

    def dead(self) -> list[str]:
        """Names of supervised threads (and the watchdog) that are not running."""
        names = [name for name, thread in self._threads.items() if not thread.is_alive()]
        if self._watchdog is not None and not self._watchdog.is_alive():
            names.append(WATCHDOG_NAME)
        return names

    def check(self) -> list[str]:
        """Restart every supervised thread that has ended; answers their names."""
        restarted = []
        with self._checking:
            for name, thread in list(self._threads.items()):
                if thread.is_alive() or self._stop.is_set():
                    continue
                error = self._deaths.pop(name, None)
                log.error("thread %s had stopped (%s); starting it again", name,
                          repr(error) if error else "it returned", exc_info=error)
                try:
                    self.on_death(name, error)
                except Exception:
                    log.exception("cleaning up after thread %s failed", name)
                self._spawn(name)
                restarted.append(name)
        return restarted

    def _spawn(self, name: str) -> None:
        thread = threading.Thread(target=self._guard, args=(name,), name=name, daemon=True)
        self._threads[name] = thread
        thread.start()

    def _guard(self, name: str) -> None:
        try:
            self._targets[name]()
        except BaseException as exc:  # the thread ends here either way; say why, and let the watchdog act
            self._deaths[name] = exc
            log.critical("thread %s died", name, exc_info=exc)

    def _watch(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check()
            except Exception:
                log.exception("the watchdog's pass failed; it goes on")
