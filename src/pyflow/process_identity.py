"""Who a process is, in a form that survives it: host, boot, pid and start time (so a reused pid, or
the same pid and start time after a reboot, is not mistaken for the process that ended).

One format, "host:boot:pid:start", names the server that owns a run (in storage), the server whose
sandboxes a cgroup directory holds, and the server that labelled a Docker container: each tells from it
whether that server still runs. Leftovers of older versions carry older formats, which are still read
so they can be reaped: "host:pid:start" (run owners), "host/boot/pid/start" (container labels) and
"server-pid-start" (cgroup directories, always of this host).
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

_OLD_CGROUP = re.compile(r"^server-(\d+)-(\d+)$")


@dataclass(frozen=True)
class Identity:
    host: str
    boot: str  # the first 8 characters of the kernel's boot id; "" when unknown (older formats)
    pid: int
    started: str  # start time in clock ticks since boot

    def __str__(self) -> str:
        return f"{self.host}:{self.boot}:{self.pid}:{self.started}"


def start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot, or "0" when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "0"


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        return ""


def of(pid: int) -> Identity:
    return Identity(socket.gethostname(), boot_id(), pid, start_time(pid))


def current() -> str:
    """This process, as "host:boot:pid:start"."""
    return str(of(os.getpid()))


def parse(text: str | None) -> Identity | None:
    """The identity written in `text` in the current format or an older one; None when it is none."""
    if not text:
        return None
    old = _OLD_CGROUP.match(text)
    if old:
        return Identity(socket.gethostname(), "", int(old[1]), old[2])
    parts = text.split("/") if "/" in text else text.split(":")
    if len(parts) == 3:
        parts.insert(1, "")
    if len(parts) != 4 or not parts[2].isdigit() or not parts[0]:
        return None
    host, boot, pid, started = parts
    return Identity(host, "" if boot == "?" else boot, int(pid), started)


def alive(identity: str | None) -> bool | None:
    """True or False for a process of this host; None when the identity is unreadable or from another
    host (nothing here can tell). Callers choose what None means: a run owner of another host may be
    alive; a container label of another host with this owner is this server, restarted."""
    found = parse(identity)
    if found is None or found.host != socket.gethostname() or found.started in ("", "?"):
        return None
    if found.boot and found.boot != boot_id():
        return False
    return start_time(found.pid) == found.started
