"""The default executor: node code in a bubblewrap sandbox, served by a warm fork-server pool.

Each sandbox is `bwrap` with every namespace unshared (no network at all, a private PID space, a fresh
/proc, a minimal /dev), no capabilities, a cleared environment (PATH, HOME and LANG only), read-only
binds of just what /usr/bin/python3 needs (the interpreter, its standard library, the dynamic loader and
the shared libraries they load: see `InterpreterFiles`), a read-only root, and private size-capped tmpfs
mounts as /tmp (the working directory) and /dev/shm, emptied after every run.
Nothing of the server is visible: not the database, the configuration, the project checkout, home
directories or the server's environment. When the server runs as root, sandboxes run as an unprivileged
user (nobody by default).

Inside, the worker (worker.py) waits as a single-threaded zygote (a forking parent) and is the sandbox's pid 1 (no
bubblewrap init stays inside for node code to reach); each node run is a freshly forked child with its
limits applied. Every process in the sandbox runs under a seccomp filter (seccomp.py) that denies the
kernel interfaces reaching beyond the caller's own process tree (ptrace, process_vm_*, io_uring, ...),
and the zygote and its children are not dumpable, so node code can neither attach to nor read the
zygote. Memory and process counts are enforced per sandbox by cgroups where they are writable,
otherwise by rlimits, and the server says which at start.
"""

from __future__ import annotations

import copy
import fcntl
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from ..engine.execution import ExecutorUnavailable, NodeOutcome, NodeTask
from .. import process_identity
from .cgroups import Cgroup, CgroupTree
from .seccomp import SeccompUnavailable, compile_bpf, program_fd
from .channel import Worker, WorkerDied, compiled_loop, compiled_worker
from .envsandbox import EnvironmentPools
from .artifacts import Places
from .pool import WorkerExecutor

BWRAP = "bwrap"
SANDBOX_PYTHON = "/usr/bin/python3"
WORKER_PATH = "/run/pyflow/worker.pyc"  # bytecode (channel.compiled_worker)
WORKER_SOURCE = "/run/pyflow/worker.py"  # the name its tracebacks give
LOOP_PATH = "/run/pyflow/loop.so"  # the zygote's loop in C (channel.compiled_loop), when it could be built
ARTIFACTS_IN = "/run/pyflow/in"
ARTIFACTS_OUT = "/run/pyflow/out"
SCRATCH = "/tmp"
SHM = "/dev/shm"
NOBODY = 65534
# bwrap outside and the worker's zygote (the sandbox's pid 1) live in the cgroup besides the node's own processes.
BASE_PROCESSES = 2
# Memory the idle worker's zygote and bwrap use, on top of the node's own limit.
BASE_MEMORY = 48 * 1024 * 1024

# Runs as root just long enough to join the sandbox's cgroups, stage the folders bwrap must bind but
# the sandbox user cannot reach (an environment under /root, say: bound, in a mount namespace of the
# trampoline's own, onto a directory the sandbox user can enter), and drop to the sandbox user; then
# execs bwrap. Fixed code: cgroup files, ids, folders and the bwrap command line arrive as data.
TRAMPOLINE = r"""
import json, os, sys
plan, command = json.loads(sys.argv[1]), sys.argv[2:]
for path in plan["procs"]:
    with open(path, "w") as fh:
        fh.write(str(os.getpid()))
try:
    if plan["stage"]:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        def check(result, what):
            if result != 0:
                raise OSError(ctypes.get_errno(), what + ": " + os.strerror(ctypes.get_errno()))
        check(libc.unshare(0x00020000), "unshare the mount namespace")
        check(libc.mount(b"none", b"/", None, 0x44000, None), "make mounts private")
        for source, target in plan["stage"]:
            check(libc.mount(source.encode(), target.encode(), None, 0x5000, None), "stage " + source)
    uid, gid = plan["uid"], plan["gid"]
    if os.getuid() == 0 and uid != 0:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    os.execv(command[0], command)
except OSError as exc:
    sys.stderr.write("cannot run %s as uid %d: %s\n" % (command[0], os.getuid(), exc))
    sys.exit(126)
"""

UNAVAILABLE = ("bubblewrap cannot create a sandbox here ({reason}). Choices: run node code in containers "
               "with --executor docker, or, knowingly, without isolation with --executor unsafe-process "
               "(rlimits only).")


_units = itertools.count(1)

# Asked of the sandbox's interpreter once (with -I -S, as the worker runs): where its standard library is.
STDLIB_PROBE = ("import json, sys, sysconfig\n"
                "print(json.dumps([sysconfig.get_path('stdlib'), sysconfig.get_path('platstdlib')]))")
# glibc itself dlopen()s libgcc_s to unwind a thread's stack (pthread_exit, pthread_cancel), so ldd never
# names it; without it such a thread aborts the process.
DLOPENED_BY_LIBC = ("libgcc_s.so.1",)
LINK_HOPS = 64


class InterpreterFiles:
    """Exactly what the sandbox's Python needs, found once at executor start: the interpreter, its
    standard library directory (extension modules in lib-dynload included), the dynamic loader and the
    shared libraries that the interpreter and its extension modules load (the closure `ldd` reports),
    each bound read-only at its own path, with the symlinks met on the way (/usr/bin/python3,
    /lib -> usr/lib, the loader's /lib64 link, ...) recreated as symlinks. Nothing else of /usr is
    there: no other program, library, site-packages or shared data for node code to read or run."""

    def __init__(self, python: str):
        self.python = python
        stdlib = self._stdlib_dirs()
        modules = sorted(str(f) for d in stdlib for f in Path(d).rglob("*.so") if f.is_file())
        libraries = self._shared_libraries([python, *modules])
        self.binds: list[str] = []
        self.symlinks: dict[str, str] = {}
        for path in [python, *stdlib, *sorted(libraries)]:
            self._add(path)

    def _stdlib_dirs(self) -> list[str]:
        try:
            out = subprocess.run([self.python, "-I", "-S", "-c", STDLIB_PROBE], capture_output=True, text=True,
                                 timeout=60, check=True, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}).stdout
            dirs = [d for d in dict.fromkeys(json.loads(out)) if isinstance(d, str) and os.path.isdir(d)]
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            raise ExecutorUnavailable(UNAVAILABLE.format(reason=f"cannot ask {self.python} where its standard "
                                                         f"library is: {exc}")) from None
        if not dirs:
            raise ExecutorUnavailable(UNAVAILABLE.format(reason=f"{self.python} names no standard library"))
        return dirs

    def _shared_libraries(self, files: list[str]) -> set[str]:
        """Every shared library `files` load, directly or not, and the loader (ldd lists the closure)."""
        try:
            out = subprocess.run(["ldd", *files], capture_output=True, text=True, timeout=120,
                                 env={"PATH": "/usr/bin:/bin", "LANG": "C"}).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            raise ExecutorUnavailable(UNAVAILABLE.format(reason=f"cannot list the shared libraries {self.python} "
                                                         f"needs (ldd: {exc})")) from None
        found = set()
        for line in out.splitlines():
            line = line.strip()
            path = line.split("=>", 1)[1] if "=>" in line else line
            path = path.split(" (", 1)[0].strip()
            if path.startswith("/") and " (" in line:
                found.add(path)
        if not found:
            raise ExecutorUnavailable(UNAVAILABLE.format(reason=f"ldd found no shared libraries for {self.python}"))
        for name in DLOPENED_BY_LIBC:
            beside = [os.path.join(os.path.dirname(lib), name) for lib in found if "/libc.so" in lib]
            found.update(p for p in beside if os.path.exists(p))
        return found

    def _add(self, path: str) -> None:
        """Bind `path`'s real file or directory, and recreate each symlink met on the way to it."""
        pending, current = [p for p in path.split("/") if p], "/"
        for _ in range(LINK_HOPS):
            if not pending:
                if current not in self.binds:
                    self.binds.append(current)
                return
            part = pending.pop(0)
            step = os.path.normpath(os.path.join(current, part))
            if part != "." and os.path.islink(step):
                target = os.readlink(step)
                self.symlinks[step] = target
                pending = [p for p in target.split("/") if p] + pending
                current = "/" if target.startswith("/") else current
            else:
                current = step
        raise ExecutorUnavailable(UNAVAILABLE.format(reason=f"too many symlinks on the way to {path}"))

    def extended(self, paths) -> "InterpreterFiles":
        """A copy that also binds `paths` (an environment's host libraries), with their symlinks."""
        other = copy.copy(self)
        other.binds, other.symlinks = list(self.binds), dict(self.symlinks)
        for path in paths:
            other._add(path)
        return other

    def argv(self) -> list[str]:
        """bwrap options: the binds first, so that every symlink is made in a directory that exists."""
        argv = []
        for path in self.binds:
            argv += ["--ro-bind", path, path]
        for link, target in sorted(self.symlinks.items()):
            argv += ["--symlink", target, link]
        return argv


def instance_name() -> str:
    """This process's cgroup directory name: its process identity (host, boot, pid and start time), so a
    reused pid is not mistaken for it."""
    return process_identity.current()


def instance_alive(name: str) -> bool:
    """Whether the process that made cgroup directory `name` still runs (in the current format or an
    older server's "server-<pid>-<start>"). Cgroups are of this machine whatever host name the directory
    carries (a renamed host), and a name that is not a server instance's is treated as alive: only what
    is surely dead is reaped."""
    found = process_identity.parse(name)
    if found is None:
        return True
    return process_identity.alive(str(replace(found, host=socket.gethostname()))) is not False


@dataclass
class SandboxState:
    """What the sandbox executor keeps per sandbox."""

    errors: IO[bytes]  # bwrap's stderr, read when the sandbox fails to start
    cgroup: Cgroup | None = None  # the sandbox's own cgroup, when cgroups are writable here
    oom_seen: int = 0  # the cgroup's out-of-memory kills before the current run
    cgroup_limits: tuple[int, int] | None = None  # (memory bytes, pids) last written, None when unknown
    base_memory: int = BASE_MEMORY  # what the idle sandbox itself uses, granted on top of the node's limit
    places: Places | None = None  # its artifact places, when the executor carries artifacts


# Runs a sandbox serves before it is replaced. Each node runs in a child forked for it alone, and the
# zygote holds none of a node's data, so recycling is a backstop (against slow growth of the zygote's own
# state), not the isolation; starting a sandbox costs about 30 ms of CPU, so recycling every 100 runs
# would add 0.3 ms of CPU to every node.
MAX_RUNS = 2000


class SandboxExecutor(WorkerExecutor):
    name = "sandbox"

    def __init__(self, pool_size: int = 2, max_runs: int = MAX_RUNS, tmp_mb: int = 64, user: int | None = None,
                 python: str = SANDBOX_PYTHON, warm: bool = True, cgroups: bool = True, warm_envs: int = 4,
                 **_ignored):
        super().__init__(pool_size=pool_size if warm else 0, max_runs=max_runs if warm else 1)
        self.environments = EnvironmentPools(self, warm_envs if warm else 0)
        self.tmp_bytes = int(tmp_mb) * 1024 * 1024
        self.python = python
        self.uid = user if user is not None else (NOBODY if os.geteuid() == 0 else os.geteuid())
        self.gid = self.uid if os.geteuid() == 0 else os.getegid()
        self._worker: bytes | None = None
        self._loop: bytes | None = None
        self._seccomp: bytes | None = None
        self._files: InterpreterFiles | None = None
        self._tree, self.cgroup_note = (None, "disabled") if not cgroups else CgroupTree.detect(instance_name(), f"executor-{next(_units)}")
        self._groups = 0
        self._group_lock = threading.Lock()
        self.warnings: list[str] = []
        if self._tree is None:
            self.warnings.append(f"cgroups unavailable ({self.cgroup_note}): memory and process limits are "
                                 f"per-process rlimits")

    # -- start ---------------------------------------------------------------------------------------
    def start(self) -> None:
        """Check the sandbox works here (or refuse, naming the choices), then fill the warm pool."""
        try:
            self.check_available()
            self.worker_program()
            self._loop = compiled_loop()
            self.seccomp_program()
            self.interpreter_files()
            if self._tree is not None:
                self._tree.reap_stale(instance_alive)
            probe = self._started()
            self._end(probe)
            super().start()
        except BaseException:
            self.close()  # no cgroups or half-filled pool left behind by a server that will not start
            raise

    def check_available(self) -> None:
        if not sys.platform.startswith("linux"):
            raise ExecutorUnavailable(UNAVAILABLE.format(reason=f"{sys.platform} is not Linux"))
        if shutil.which(BWRAP) is None:
            raise ExecutorUnavailable(UNAVAILABLE.format(reason="bwrap is not installed: apt-get install bubblewrap"))
        if not os.access(self.python, os.X_OK):
            raise ExecutorUnavailable(UNAVAILABLE.format(reason=f"{self.python} is missing: apt-get install python3"))

    def worker_program(self) -> bytes:
        """The worker script as bytecode, compiled once (at start) by the sandbox's own interpreter."""
        if self._worker is None:
            try:
                self._worker = compiled_worker(self.python, WORKER_SOURCE)
            except (OSError, subprocess.SubprocessError) as exc:
                raise ExecutorUnavailable(UNAVAILABLE.format(reason=f"{self.python} cannot compile the worker "
                                                             f"script: {exc}")) from None
        return self._worker

    def seccomp_program(self) -> bytes:
        """The system call filter's BPF program, compiled once (at start) and handed to every sandbox."""
        if self._seccomp is None:
            try:
                self._seccomp = compile_bpf()
            except SeccompUnavailable as exc:
                raise ExecutorUnavailable(UNAVAILABLE.format(reason=f"no system call filter: {exc}")) from None
        return self._seccomp

    def interpreter_files(self) -> InterpreterFiles:
        """What the sandbox binds of the host, found on first use (at start) and kept."""
        if self._files is None:
            self._files = InterpreterFiles(self.python)
        return self._files

    def _started(self) -> Worker:
        try:
            return super()._started()
        except WorkerDied as exc:
            if self._closed:
                raise
            raise ExecutorUnavailable(UNAVAILABLE.format(reason=str(exc))) from None

    def _end(self, worker: Worker) -> None:
        super()._end(worker)
        worker.state.errors.close()

    def spawn_failure(self, worker: Worker) -> str:
        """What bwrap said when a sandbox failed to start."""
        worker.state.errors.seek(0)
        return worker.state.errors.read(4000).decode("utf-8", "replace").strip()

    # -- spawning ------------------------------------------------------------------------------------
    def bwrap_argv(self, worker_fd: int, seccomp_fd: int | None = None, loop_fd: int | None = None,
                   place_fds: tuple[int, int] | None = None) -> list[str]:
        """The sandbox's command line. The worker runs as pid 1 (--as-pid-1): bwrap's own init, a
        dumpable process of the sandbox user holding the worker's pipes, is not left inside for node code
        to attach to. `seccomp_fd` holds the filter, which bwrap installs just before it starts the worker;
        `loop_fd` the zygote's loop in C, when it could be built."""
        loop_bind = ["--ro-bind-data", str(loop_fd), LOOP_PATH] if loop_fd is not None else []
        loop_option = ["--loop", LOOP_PATH] if loop_fd is not None else []
        # LD_BIND_NOW: the zygote's interpreter binds every library function it links at start, once;
        # bound lazily, each node's process would look up (and copy the page of the table it writes) each
        # function only children call (a dozen page copies in fork's own aftermath alone). The worker
        # drops it from the environment node code sees.
        argv = [shutil.which(BWRAP) or BWRAP, "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session",
                "--as-pid-1", "--cap-drop", "ALL",
                "--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", SCRATCH,
                "--setenv", "LANG", "C.UTF-8", "--setenv", "LD_BIND_NOW", "1", *self.files().argv()]
        if Path("/etc/ld.so.cache").exists():
            argv += ["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
        # Writable: only the size-capped tmpfs mounts /tmp and /dev/shm, which the worker empties after
        # every run. The root, /etc, /run and /dev are remounted read-only, so nothing a node writes
        # outlives its run in a warm sandbox.
        argv += ["--proc", "/proc", "--dev", "/dev", "--size", str(self.tmp_bytes), "--tmpfs", SHM,
                 "--size", str(self.tmp_bytes), "--tmpfs", SCRATCH,
                 "--dir", "/run/pyflow", "--ro-bind-data", str(worker_fd), WORKER_PATH, *loop_bind,
                 *self.extra_binds(),
                 *self._artifact_binds(place_fds),
                 "--remount-ro", "/dev", "--remount-ro", "/", "--chdir", SCRATCH, "--disable-userns"]
        if seccomp_fd is not None:
            argv += ["--seccomp", str(seccomp_fd)]
        argv += [self.python, "-I", "-S", WORKER_PATH, "--pid-namespace", *loop_option, *self.worker_options()]
        return argv

    def files(self) -> InterpreterFiles:
        """What of the host the sandbox binds (an environment's sandboxes add its libraries)."""
        return self.interpreter_files()

    def extra_binds(self) -> list[str]:
        """Hook: bwrap options for more read-only binds (an environment's packages)."""
        return []

    def staged(self) -> list[list[str]]:
        """Hook: [source, stage] folders the trampoline binds (as root, in its own mount namespace)
        where the sandbox user can reach them, for extra_binds() to bind from."""
        return []

    def worker_options(self) -> list[str]:
        """Hook: options for the worker (where an environment's packages are, what to import ahead)."""
        return []

    @staticmethod
    def _artifact_binds(place_fds: tuple[int, int] | None) -> list[str]:
        """The sandbox's artifact places: input artifacts read-only, its own output place writable (a
        directory of the artifact store that the server empties after every run). Bound from
        descriptors the server opened, so the sandbox user needs no way through the directories above."""
        if place_fds is None:
            return []
        return ["--ro-bind-fd", str(place_fds[0]), ARTIFACTS_IN, "--bind-fd", str(place_fds[1]), ARTIFACTS_OUT]

    @staticmethod
    def _open_places(places: Places | None) -> tuple[int, int] | None:
        if places is None:
            return None
        flags = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW
        in_fd = os.open(places.host_in, flags)
        try:
            return in_fd, os.open(places.host_out, flags)
        except OSError:
            os.close(in_fd)
            raise

    def _new_places(self) -> Places | None:
        if self.artifacts is None:
            return None
        return Places(self.artifacts.workspace(self.uid), ARTIFACTS_IN, ARTIFACTS_OUT)

    def artifact_places(self, worker: Worker) -> Places | None:
        return worker.state.places

    def spawn(self) -> Worker:
        places = self._new_places()
        try:
            return self._spawn(places)
        except BaseException:
            if places is not None:
                shutil.rmtree(places.root, ignore_errors=True)
            raise

    def _spawn(self, places: Places | None) -> Worker:
        group = self._new_group()
        place_fds = self._open_places(places)
        filter_fd = program_fd(self.seccomp_program())
        loop_fd = program_fd(self._loop, "pyflow-loop") if self._loop else None
        try:
            read_fd, write_fd = os.pipe()
        except OSError:
            for fd in (filter_fd, loop_fd):
                if fd is not None:
                    os.close(fd)
            raise
        passed = (read_fd, filter_fd, *(place_fds or ()), *((loop_fd,) if loop_fd is not None else ()))
        try:
            plan = {"procs": group.procs_files if group else [], "uid": self.uid, "gid": self.gid,
                    "stage": self.staged()}
            argv = [self.python, "-I", "-S", "-c", TRAMPOLINE, json.dumps(plan),
                    *self.bwrap_argv(read_fd, filter_fd, loop_fd, place_fds)]
            errors = tempfile.TemporaryFile()
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors,
                                    pass_fds=passed, start_new_session=True,
                                    env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, cwd="/")
        finally:
            for fd in passed:
                os.close(fd)
        _write_all(write_fd, self.worker_program())
        return Worker(proc, "sandbox", SandboxState(errors, group, places=places))

    def _new_group(self) -> Cgroup | None:
        if self._tree is None:
            return None
        with self._group_lock:
            self._groups += 1
            return self._tree.group(f"sbx-{self._groups}-{uuid.uuid4().hex[:6]}")

    def discard(self, worker: Worker) -> None:
        group = worker.state.cgroup
        if group is not None:
            group.remove()
        if worker.state.places is not None:
            shutil.rmtree(worker.state.places.root, ignore_errors=True)

    # -- runs ----------------------------------------------------------------------------------------
    def prepare_payload(self, worker: Worker, task: NodeTask) -> dict:
        payload = task.payload()
        payload["scratch"] = SCRATCH
        payload["scratch_dirs"] = [SHM]
        group = worker.state.cgroup
        payload["memory_rlimit"] = group is None
        # With a pids cgroup the per-user rlimit is only a backstop; without it, it is the limit.
        payload["limits"]["nproc_rlimit"] = task.limits.processes + (64 if group else BASE_PROCESSES)
        return payload

    def before_run(self, worker: Worker, task: NodeTask) -> None:
        """Set the sandbox's cgroup limits to this node's (skipped when the last run on it had the same),
        and count the out-of-memory kills so far: the worker answers a run before it kills what the run
        left, so a kill of a leftover after that answer must not count against this node."""
        group = worker.state.cgroup
        if group is None:
            return
        worker.state.oom_seen = group.oom_kills()
        wanted = (task.limits.memory_mb * 1024 * 1024 + worker.state.base_memory, task.limits.processes + BASE_PROCESSES)
        if worker.state.cgroup_limits != wanted:
            worker.state.cgroup_limits = None  # unknown until both are written
            group.set_limits(*wanted)
            worker.state.cgroup_limits = wanted

    def after_run(self, worker: Worker, task: NodeTask, outcome: NodeOutcome) -> NodeOutcome:
        """A failed run during which the kernel killed a process of the sandbox for memory (the group's
        counter moved since before the run) failed on the memory limit, whatever the worker saw."""
        group = worker.state.cgroup
        if group is None or outcome.ok:
            return outcome
        if group.oom_kills() > worker.state.oom_seen:
            return NodeOutcome.failure(f"memory limit of {task.limits.memory_mb} MB exceeded "
                                       f"(the kernel ended the node's process)", "MemoryLimit", "memory",
                                       outcome.stdout, outcome.duration_ms)
        return outcome

    def run(self, task: NodeTask, cancel: threading.Event | None = None) -> NodeOutcome:
        """A node with an environment runs in that environment's sandboxes, others in the plain ones."""
        if task.environment is not None:
            return self.environments.run(task, cancel)
        return super().run(task, cancel)

    def live_pids(self) -> list[int]:
        return super().live_pids() + self.environments.live_pids()

    def close(self) -> None:
        self.environments.close()
        super().close()
        if self._tree is not None:
            self._tree.remove()

    def describe(self) -> dict:
        limits = "cgroups (memory, pids) + rlimits" if self._tree is not None else "rlimits only"
        return {"name": self.name, "isolation": f"bubblewrap sandbox, seccomp filter, warm fork-server pool; limits: {limits}",
                "warnings": list(self.warnings)}


def _write_all(fd: int, data: bytes) -> None:
    """Hand the worker's script to bwrap (--ro-bind-data reads it to end of file). The pipe is made to
    hold all of it, so that a bwrap that never reads cannot block the thread spawning it; one that ended
    without reading is not an error here: the sandbox's missing ready frame reports it, with what bwrap
    said."""
    try:
        try:
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, len(data))
        except OSError:  # over /proc/sys/fs/pipe-max-size: the write waits for bwrap to read
            pass
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except BrokenPipeError:
        pass
    finally:
        os.close(fd)
