"""Removing containers: recycled ones in the background, and at start what an earlier server of the
same owner left behind (unless that server still runs)."""

from __future__ import annotations

import logging
import queue
import threading
import time

from ... import process_identity
from .names import IDLE_RENAME_DELAY_S, LABEL_PROCESS, ContainerName

log = logging.getLogger(__name__)


class Reaper:
    """The engine calls that a node's result need not wait for, on background threads: removing
    recycled containers, and renaming warm containers idle after their node. Each has its own thread,
    so a slow removal (seconds with the vfs driver) never holds up a rename. `drain` waits for
    outstanding removals (at shutdown)."""

    def __init__(self, client):
        self.client = client
        self._queue: queue.Queue = queue.Queue()  # container ids, and calls to make after the removals before them
        self._renames: queue.Queue[tuple[float, ContainerName, int]] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="pyflow-docker-reaper")
        self._thread.start()
        threading.Thread(target=self._rename_loop, daemon=True, name="pyflow-docker-namer").start()

    def remove(self, container_id: str) -> None:
        self._queue.put(container_id)

    def then(self, call) -> None:
        """Make `call()` on the reaper's thread once the removals asked for before it are done (an
        image can be removed only when no container of it is left)."""
        self._queue.put(call)

    def rename_idle(self, naming: ContainerName, name: str) -> None:
        """Rename a container `name` once IDLE_RENAME_DELAY_S has passed, unless it was renamed or
        asked for another name since (it was handed its next node)."""
        self._renames.put((time.monotonic() + IDLE_RENAME_DELAY_S, naming, naming.want(name)))

    def _rename_loop(self) -> None:
        while True:
            due, naming, ticket = self._renames.get()  # all wait the same delay: the queue is in due order
            time.sleep(max(0.0, due - time.monotonic()))
            naming.apply_if_current(ticket)

    def _loop(self) -> None:
        while True:
            container_id = self._queue.get()
            try:
                if callable(container_id):
                    container_id()
                elif container_id is not None:
                    remove_container(self.client, container_id)
            except Exception as exc:  # the engine is gone, say: the next start removes it
                log.warning("could not remove container %s: %s", str(container_id)[:12], exc)
            finally:
                self._queue.task_done()

    def drain(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)


def remove_container(client, container_id: str) -> None:
    """Force-remove one container; one that is already gone or being removed is fine."""
    import docker.errors
    try:
        client.api.remove_container(container_id, force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if "already in progress" not in str(exc) and "No such container" not in str(exc):
            time.sleep(0.5)
            try:
                client.api.remove_container(container_id, force=True)
            except docker.errors.APIError as again:
                log.warning("could not remove container %s: %s", container_id[:12], again)


def remove_labelled(client, labels: dict, keep_live: bool = False) -> int:
    """Remove every container (running or not) carrying all of `labels`; returns how many. With
    keep_live, spare those of a server process that is still running (another executor of the same
    owner in a live process: a test next to its server, say)."""
    filters = {"label": [f"{key}={value}" for key, value in labels.items()]}
    found = client.api.containers(all=True, filters=filters)
    if keep_live:
        found = [entry for entry in found if not _server_alive(entry)]
    for entry in found:
        remove_container(client, entry["Id"])
    return len(found)


def _server_alive(entry: dict) -> bool:
    """Whether the server process that labelled a container still runs. A label of another host (or one
    that cannot be read) counts as gone: a server with the same owner there is this server, restarted.
    Labels of older servers ("host/boot/pid/start") are read too."""
    return process_identity.alive((entry.get("Labels") or {}).get(LABEL_PROCESS, "")) is True


def wait_until_removed(client, labels: dict, timeout: float = 30.0) -> bool:
    """Wait until the engine lists no container with `labels`: a removal the engine already had under
    way (auto_remove) answers "in progress" at once, before the container is really gone."""
    filters = {"label": [f"{key}={value}" for key, value in labels.items()]}
    deadline = time.monotonic() + timeout
    while client.api.containers(all=True, quiet=True, filters=filters):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
