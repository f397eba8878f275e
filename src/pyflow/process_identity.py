"""Who a process is, in a form that survives it: host, pid and start time (so a reused pid is not
mistaken for the process that ended). Used to tell whether the server that owns a run, or a sandbox's
cgroup, is still alive."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot, or "0" when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "0"


def current() -> str:
    """This process: "host:pid:start"."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{start_time(pid)}"


def alive(identity: str | None) -> bool | None:
    """True or False for a process of this host; None when the identity is empty or from another host
    (nothing here can tell)."""
    if not identity:
        return None
    parts = identity.split(":")
    if len(parts) < 3:
        return None
    host, pid, started = ":".join(parts[:-2]), parts[-2], parts[-1]
    if host != socket.gethostname():
        return None
    try:
        return start_time(int(pid)) == started
    except ValueError:
        return None
