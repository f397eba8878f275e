"""Labels and names of node containers: what PyFlow owns, which server made it, which run and node a
warm container serves now."""

from __future__ import annotations

import logging
import os
import re
import socket
import threading

from ... import process_identity
from ...engine.execution import NodeTask

log = logging.getLogger(__name__)

LABEL_MANAGED = "pyflow.managed"
LABEL_OWNER = "pyflow.owner"
LABEL_INSTANCE = "pyflow.instance"
LABEL_ROLE = "pyflow.role"
LABEL_IMAGE = "pyflow.image"
LABEL_RUN = "pyflow.run"
LABEL_NODE = "pyflow.node"
LABEL_PROCESS = "pyflow.process"
#: Characters a Docker container name may not hold ([a-zA-Z0-9][a-zA-Z0-9_.-]+ is allowed).
NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
#: How long a warm container stays under its last node's name before it is renamed idle: a container
#: that is handed its next node within this time is renamed once (to that node), not twice.
IDLE_RENAME_DELAY_S = 0.05


def node_labels(owner: str, instance: str, image: str, task: NodeTask | None) -> dict:
    """Labels of a node container: PyFlow's, the owner (this server), the image pool, and for a
    container started for one node (no warm pool) the run and node it serves."""
    labels = {LABEL_MANAGED: "1", LABEL_OWNER: owner, LABEL_INSTANCE: instance, LABEL_ROLE: "node",
              LABEL_IMAGE: image[:200], LABEL_PROCESS: process_identity.current()}
    if task is not None:
        labels[LABEL_RUN] = str(task.run_id or "")
        labels[LABEL_NODE] = str(task.node_id)
    return labels


def container_name(token: str, task: NodeTask | None) -> str:
    """A node container's name: `pyflow-<run>-<node>-<token>` while it runs that node, `pyflow-idle-<token>`
    while it waits (token: unique to the container, so names never clash).

    Docker fixes labels at creation but lets a running container be renamed, so the name is the one
    place where a warm container that serves many runs can show which run and node it is running:
    `docker ps`, `docker inspect` and `docker ps --filter name=<run id>` show it. Characters that Docker
    names do not allow become "_", and ids are cut (run at 64, node at 48 characters)."""
    if task is None:
        return f"pyflow-idle-{token}"
    run = NAME_UNSAFE.sub("_", str(task.run_id or "norun"))[:64]
    node = NAME_UNSAFE.sub("_", str(task.node_id))[:48]
    return f"pyflow-{run}-{node}-{token}"


class ContainerName:
    """Keeps one warm container's name in step with what it runs.

    Renamed on the node's own thread before the node starts (so a node never runs under another
    node's name), and back to idle later, off the node's path, only if nothing was asked of the name
    since: a container that is kept busy costs one rename per node, not two. The lock keeps renames of
    one container in order."""

    def __init__(self, client, container_id: str, token: str):
        self.client = client
        self.container_id = container_id
        self.token = token
        self.idle = self.current = self._wanted = container_name(token, None)
        self._asked = 0
        self._lock = threading.Lock()

    def rename_now(self, name: str) -> None:
        """Rename before returning; raises the engine's error (the caller does not run the node then)."""
        with self._lock:
            self._asked += 1
            self._wanted = name
            self._apply()

    def want(self, name: str) -> int:
        """Ask for `name` later; returns the ticket that `apply_if_current` needs to apply it."""
        with self._lock:
            self._asked += 1
            self._wanted = name
            return self._asked

    def apply_if_current(self, ticket: int) -> None:
        """Apply the name asked for with `ticket`, unless something newer was asked since (a container
        that is gone meanwhile is fine: it needs no name)."""
        with self._lock:
            if ticket != self._asked:
                return
            try:
                self._apply()
            except Exception as exc:  # a container removed meanwhile needs no name
                log.info("container %s was not renamed %s: %s", self.container_id[:12], self._wanted, exc)

    def _apply(self) -> None:
        if self._wanted != self.current:
            self.client.api.rename(self.container_id, self._wanted)
            self.current = self._wanted


def default_owner() -> str:
    """Which server the containers belong to: $PYFLOW_DOCKER_OWNER, else this host's name.

    Stable across restarts on purpose, so the next start finds what a killed server left behind."""
    return os.environ.get("PYFLOW_DOCKER_OWNER") or f"pyflow@{socket.gethostname()}"
