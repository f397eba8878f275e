"""Per-sandbox cgroups for memory and process counts across every process of a node run.

rlimits apply per process, so a node could spread memory over children or fork until the host suffers.
Where cgroups are writable (as root: cgroup v1's memory and pids controllers, or cgroup v2 with both
controllers enabled), each sandbox gets its own cgroup under a "pyflow" directory of the server's own
cgroup; limits are set before each run, and ending a sandbox kills every process in its cgroup. Groups
left by a server that died are emptied and removed at the next start.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")

log = logging.getLogger(__name__)


def _own_paths() -> dict[str, str]:
    """{controller or "" for v2: path of this process's cgroup} from /proc/self/cgroup."""
    paths = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            paths[name] = path
    return paths


class CgroupTree:
    """The cgroups of one executor: pyflow/<instance>/<unit>/ under the server's own cgroup, per controller
    ("memory" and "pids" in v1, "" in v2). One instance directory per server process (named by its
    process identity, see pyflow/process_identity.py: the name that tells live from dead), one unit
    directory per executor in it, so two executors of one process never remove each other's groups."""

    def __init__(self, bases: dict[str, Path], version: int):
        self.bases = bases
        self.version = version

    @classmethod
    def detect(cls, instance: str, unit: str = "executor") -> tuple["CgroupTree | None", str]:
        """A writable tree for this executor, or (None, reason it is not available)."""
        try:
            own = _own_paths()
        except OSError as exc:
            return None, f"cannot read /proc/self/cgroup: {exc}"
        v1 = {c: CGROUP_ROOT / c / own[c].lstrip("/") for c in ("memory", "pids") if c in own}
        if len(v1) == 2 and all(p.is_dir() for p in v1.values()):
            return cls._make(v1, 1, instance, unit)
        unified = CGROUP_ROOT / own.get("", "/").lstrip("/")
        controllers = (CGROUP_ROOT / "cgroup.controllers")
        if controllers.exists() and {"memory", "pids"} <= set(controllers.read_text().split()):
            return cls._make({"": unified}, 2, instance, unit)
        return None, "no memory and pids cgroup controllers are mounted"

    @classmethod
    def _make(cls, own: dict[str, Path], version: int, instance: str, unit: str) -> tuple["CgroupTree | None", str]:
        bases = {}
        try:
            for controller, path in own.items():
                chain = [path, path / "pyflow", path / "pyflow" / instance, path / "pyflow" / instance / unit]
                for directory in chain:
                    directory.mkdir(exist_ok=True)
                    if version == 2:
                        _enable_v2_controllers(directory)  # each level hands memory and pids down
                bases[controller] = chain[-1]
        except OSError as exc:
            return None, f"cgroups are not writable here ({exc.strerror})"
        return cls(bases, version), ""

    def reap_stale(self, alive: callable) -> int:
        """Kill and remove the groups of server instances that are gone; returns processes killed."""
        killed = 0
        for base in self.bases.values():
            instance = base.parent
            for other in _subdirs(instance.parent):
                if other != instance and not alive(other.name):
                    killed += remove_tree(other)
        return killed

    def group(self, name: str) -> "Cgroup":
        return Cgroup({c: base / name for c, base in self.bases.items()}, self.version)

    def remove(self) -> None:
        """Kill everything in this executor's groups and remove them (and the instance directory when no
        other executor of the process uses it); safe to call twice."""
        for base in self.bases.values():
            remove_tree(base)
            try:
                base.parent.rmdir()
            except OSError:
                pass  # another executor of this process still has its unit here


def remove_tree(top: Path) -> int:
    """Kill every process in `top` and the cgroups below it, and remove them, deepest first (a cgroup
    directory can only go once it has no children); returns processes killed."""
    killed = 0
    for group in _subdirs(top):
        killed += remove_tree(group)
    killed += kill_all(top)
    _rmdir(top)
    return killed


def _enable_v2_controllers(path: Path) -> None:
    control = path / "cgroup.subtree_control"
    enabled = set(control.read_text().split())
    for name in ("memory", "pids"):
        if name not in enabled:
            control.write_text(f"+{name}")


class Cgroup:
    """One sandbox's cgroup (a directory per controller in v1)."""

    def __init__(self, paths: dict[str, Path], version: int):
        self.paths = paths
        self.version = version
        self._oom_fd: int | None = None
        for path in paths.values():
            path.mkdir(exist_ok=True)

    @property
    def procs_files(self) -> list[str]:
        return [str(p / "cgroup.procs") for p in self.paths.values()]

    def _file(self, controller: str, v1_name: str, v2_name: str) -> Path:
        if self.version == 2:
            return self.paths[""] / v2_name
        return self.paths[controller] / v1_name

    def set_limits(self, memory_bytes: int, pids: int) -> None:
        if self.version == 2:
            (self.paths[""] / "memory.max").write_text(str(memory_bytes))
            swap = self.paths[""] / "memory.swap.max"
            if swap.exists():
                swap.write_text("0")
        else:
            self._set_v1_memory(memory_bytes)
        self._file("pids", "pids.max", "pids.max").write_text(str(pids))

    def _set_v1_memory(self, memory_bytes: int) -> None:
        """The v1 memory limit, and the memory+swap limit equal to it where the kernel accounts swap
        (memory.memsw.*): otherwise a group at its memory limit goes on into swap.

        The kernel refuses a memory+swap limit below the memory limit at every step, so the one that
        must stay larger moves first: memsw when raising, memory when lowering."""
        memory = self.paths["memory"] / "memory.limit_in_bytes"
        memsw = self.paths["memory"] / "memory.memsw.limit_in_bytes"
        if not memsw.exists():
            memory.write_text(str(memory_bytes))
            return
        raising = memory_bytes > int(memory.read_text())
        for path in ((memsw, memory) if raising else (memory, memsw)):
            path.write_text(str(memory_bytes))

    def memory_usage(self) -> int:
        """Bytes the group's processes use now (0 when it cannot be read)."""
        try:
            return int(self._file("memory", "memory.usage_in_bytes", "memory.current").read_text())
        except (OSError, ValueError):
            return 0

    def oom_kills(self) -> int:
        """How many processes the kernel killed for memory in this group so far. Read before every node
        run, so from a descriptor kept open (opening a cgroup file costs some 35 us), read afresh from
        its start each time."""
        if self._oom_fd is None:
            try:
                self._oom_fd = os.open(self._file("memory", "memory.oom_control", "memory.events"), os.O_RDONLY)
            except OSError:
                return 0
        try:
            return _oom_kills_in(os.pread(self._oom_fd, 4096, 0))
        except OSError:
            return 0

    def kill(self) -> int:
        return sum(kill_all(p) for p in self.paths.values())

    def remove(self) -> None:
        if self._oom_fd is not None:
            os.close(self._oom_fd)
            self._oom_fd = None
        for path in self.paths.values():
            kill_all(path)
            _rmdir(path)


def oom_kill_count(path: str | Path | None) -> int:
    """The kernel's count of processes killed for memory in one cgroup (the "oom_kill" line of v1's
    memory.oom_control or v2's memory.events), 0 when unknown. Read before every node run, so with plain
    descriptors rather than pathlib."""
    if path is None:
        return 0
    try:
        fd = os.open(str(path), os.O_RDONLY)
        try:
            return _oom_kills_in(os.read(fd, 4096))
        finally:
            os.close(fd)
    except OSError:
        return 0


def _oom_kills_in(data: bytes) -> int:
    for line in data.decode("ascii", "replace").splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


def memory_events_file(pid: int) -> Path | None:
    """The file counting out-of-memory kills in the memory cgroup of process `pid` (a container's init,
    say), when this process can see it (same host and pid namespace): v1 memory.oom_control or v2
    memory.events. None otherwise."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines() if pid else []
    except OSError:
        return None
    paths = dict((parts[1], parts[2]) for parts in (line.split(":", 2) for line in lines) if len(parts) == 3)
    candidates = []
    if "memory" in paths:
        candidates.append(CGROUP_ROOT / "memory" / paths["memory"].lstrip("/") / "memory.oom_control")
    if "" in paths:
        candidates.append(CGROUP_ROOT / paths[""].lstrip("/") / "memory.events")
    return next((path for path in candidates if path.is_file()), None)


def kill_all(group: Path, timeout: float = 2.0) -> int:
    """SIGKILL every process in a cgroup directory, until it is empty (forks may race the first pass)."""
    killed = 0
    deadline = time.monotonic() + timeout
    procs = group / "cgroup.procs"
    while time.monotonic() < deadline:
        try:
            pids = [int(p) for p in procs.read_text().split()]
        except OSError:
            return killed
        if not pids:
            return killed
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        time.sleep(0.01)
    return killed


def _subdirs(path: Path) -> list[Path]:
    try:
        return [p for p in path.iterdir() if p.is_dir()]
    except FileNotFoundError:
        return []


def _rmdir(path: Path) -> None:
    """Remove an emptied cgroup directory; the kernel may take a moment to let go of its last process.
    One that stays is logged and reaped at the next start, once its server is gone."""
    for _ in range(50):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            failure = exc
            time.sleep(0.02)
    log.warning("cgroup %s could not be removed: %s", path, failure.strerror)
