"""The "docker" executor: every node function runs in a hardened container, on a warm fork-server.

Each container runs the same stdlib-only worker as the local sandbox (worker.py, handed over as data on
the command line) as the container's pid 1 (no tini: an init of the node's own user that node code could
attach to or read), and forks one child per node run. The host talks to it over the
container's attach stream: attached before start, no TTY, so the engine multiplexes stdout and stderr
into frames with an 8-byte header that `StreamDemux` splits again.

Every container is hardened: no network, read-only root, a size-capped tmpfs /tmp (the run's scratch
space, emptied after each run), memory limit equal to memory+swap limit, a process limit, a CPU quota,
every capability dropped, no-new-privileges, PyFlow's seccomp profile (seccomp.py: the sandbox's
policy, which also denies ptrace), an unprivileged user, a private IPC namespace without /dev/shm
(nowhere to leave things for later runs), no logging on the host, and labels that say PyFlow owns it.
Node containers only run allowed images (docker_images.py): the runtime image, those named with
--docker-images, and requirement images PyFlow built; never the server's own.

Speed: a container per node costs about a second (several with the vfs storage driver); a warm one
answers in a few milliseconds. So there is a small warm pool per image, recycled after `max_runs` runs
or after any violation. Per-node memory and process limits are applied to a warm container with an
engine update before the run when they differ from what it has.

Nodespec `requirements` become a derived image, built once per (base image id, requirements): the
wheels are downloaded on the host (wheels only), installed from that folder in a throw-away container
without network, which is then committed; the download is bounded in time, so an unreachable package
index gives a clear node error rather than a hang.

Cleanup: at start, every container carrying this server's owner label is removed, except those of a
server process that is still alive (each container names the process that made it: host, boot, pid,
start time); at shutdown, every container this executor made. The containers are also `auto_remove`d
and close their stdin when the server's attach connection drops, so a killed server's containers end by
themselves once their current node is over, and the next start removes any that are still busy.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import select
import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from ..engine.execution import ExecutorUnavailable, Limits, NodeOutcome, NodeTask
from .docker_images import (TAGS_PROBE, WHEELS_DIR, ImagePolicy, ImageRefused, fetch_wheels, install_command,
                            seccomp_option)
from .zygote import CancelledRun, Zygote, ZygoteDied, ZygoteExecutor, worker_source

DEFAULT_IMAGE = "pyflow-runtime:bookworm"
NODE_USER = "10001:10001"
LABEL_MANAGED = "pyflow.managed"
LABEL_OWNER = "pyflow.owner"
LABEL_INSTANCE = "pyflow.instance"
LABEL_ROLE = "pyflow.role"
LABEL_IMAGE = "pyflow.image"
LABEL_RUN = "pyflow.run"
LABEL_NODE = "pyflow.node"
LABEL_PROCESS = "pyflow.process"
#: Memory the worker (the zygote interpreter, pid 1) needs beside the node's own allowance.
WORKER_RESERVE_MB = 24
#: Processes the container needs beside the node's own: the zygote (pid 1). The next run's waiting child
#: is forked after a run has ended, and is that run's node process.
WORKER_PROCESSES = 1
MIN_NODE_MEMORY_MB = 8
STDERR_TAIL = 8192
FRAME = struct.Struct(">BxxxI")
ENGINE_TIMEOUT_S = 120
#: Characters a Docker container name may not hold ([a-zA-Z0-9][a-zA-Z0-9_.-]+ is allowed).
NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
#: How long a warm container stays under its last node's name before it is renamed idle: a container
#: that is handed its next node within this time is renamed once (to that node), not twice.
IDLE_RENAME_DELAY_S = 0.05


class DockerUnavailable(ExecutorUnavailable):
    """The Docker engine or the runtime image cannot be used; the message says what to do."""


class RequirementsError(Exception):
    """A nodespec's requirements could not be turned into an image."""


@dataclass(frozen=True)
class Hardening:
    """Container settings that are the same for every node run (per-node limits come from the task)."""

    cpus: float = 1.0
    tmp_mb: int = 64
    user: str = NODE_USER
    environment: tuple[tuple[str, str], ...] = (("PATH", "/usr/local/bin:/usr/bin:/bin"), ("HOME", "/tmp"),
                                                ("LANG", "C.UTF-8"), ("TMPDIR", "/tmp"))


def worker_command() -> list[str]:
    """The worker, passed as data: its source is the -c argument, so any image with python3 works."""
    return ["python3", "-I", "-c", worker_source().decode("utf-8"), "--pid-namespace"]


def memory_bytes(limits: Limits) -> int:
    """The container's memory (and memory+swap) limit for a node allowed `limits.memory_mb`."""
    return (max(MIN_NODE_MEMORY_MB, int(limits.memory_mb)) + WORKER_RESERVE_MB) * 1024 * 1024


def process_limit(limits: Limits) -> int:
    return max(1, int(limits.processes)) + WORKER_PROCESSES


def container_options(image: str, limits: Limits, labels: dict, hardening: Hardening = Hardening()) -> dict:
    """Keyword arguments for `containers.create`: one hardened container that runs the worker.

    detach=False with stdin_open sets AttachStdin and StdinOnce, so the engine closes the worker's stdin
    when the attach connection drops (a killed server) and the worker then exits by itself.
    """
    from docker.types import LogConfig
    memory = memory_bytes(limits)
    return dict(
        image=image, entrypoint=worker_command(), user=hardening.user, working_dir="/tmp",
        environment=dict(hardening.environment), hostname="pyflow-node", labels=dict(labels),
        detach=False, stdin_open=True, tty=False,
        network_mode="none", read_only=True, ipc_mode="none",
        tmpfs={"/tmp": scratch_mount_options(hardening)},
        mem_limit=memory, memswap_limit=memory, pids_limit=process_limit(limits),
        nano_cpus=int(hardening.cpus * 1e9), cap_drop=["ALL"], security_opt=["no-new-privileges", seccomp_option()],
        init=False, auto_remove=True, log_config=LogConfig(type="none"),
    )


def scratch_mount_options(hardening: Hardening) -> str:
    """The /tmp tmpfs: size-capped, no devices, no set-uid, no executables, and owned by the node user
    (the worker empties it after each run, which needs the owner's rights on the directory itself)."""
    options = f"rw,nosuid,nodev,noexec,size={int(hardening.tmp_mb)}m"
    uid, _, gid = hardening.user.partition(":")
    if uid.isdigit():
        return f"{options},mode=0700,uid={uid},gid={gid if gid.isdigit() else uid}"
    return f"{options},mode=1777"


def node_labels(owner: str, instance: str, image: str, task: NodeTask | None) -> dict:
    """Labels of a node container: PyFlow's, the owner (this server), the image pool, and for a
    container started for one node (no warm pool) the run and node it serves."""
    labels = {LABEL_MANAGED: "1", LABEL_OWNER: owner, LABEL_INSTANCE: instance, LABEL_ROLE: "node",
              LABEL_IMAGE: image[:200], LABEL_PROCESS: process_identity()}
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
        """Ask for `name` later; returns the ticket that `settle` needs to apply it."""
        with self._lock:
            self._asked += 1
            self._wanted = name
            return self._asked

    def settle(self, ticket: int) -> None:
        """Apply the name asked for with `ticket`, unless something newer was asked since (a container
        that is gone meanwhile is fine: it needs no name)."""
        with self._lock:
            if ticket != self._asked:
                return
            try:
                self._apply()
            except Exception:
                pass

    def _apply(self) -> None:
        if self._wanted != self.current:
            self.client.api.rename(self.container_id, self._wanted)
            self.current = self._wanted


def process_identity(pid: int | None = None) -> str:
    """host/boot/pid/start-time of a process: names it uniquely, so a later start can tell whether the
    server that labelled a container is still alive (pids are reused; start times on one boot are not)."""
    pid = pid or os.getpid()
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            boot = fh.read().strip()[:8]
        with open(f"/proc/{pid}/stat") as fh:
            started = fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        boot, started = "?", "?"
    return f"{socket.gethostname()}/{boot}/{pid}/{started}"


def is_alive(identity: str) -> bool:
    """Whether the process a `process_identity` names still runs. Processes of another host (or where it
    cannot be told) count as gone: a server with the same owner there is this server, restarted."""
    host, _, rest = identity.partition("/")
    boot, _, rest = rest.partition("/")
    pid, _, _started = rest.partition("/")
    if host != socket.gethostname() or not pid.isdigit() or "?" in identity:
        return False
    return process_identity(int(pid)) == identity


def default_owner() -> str:
    """Which server the containers belong to: $PYFLOW_DOCKER_OWNER, else this host's name.

    Stable across restarts on purpose, so the next start finds what a killed server left behind."""
    return os.environ.get("PYFLOW_DOCKER_OWNER") or f"pyflow@{socket.gethostname()}"


# ----------------------------------------------------------------------------------------- transport


class StreamDemux:
    """Splits the engine's multiplexed attach stream (no TTY) back into stdout and stderr bytes.

    Each frame is [stream type, 0, 0, 0, big-endian uint32 size] then size bytes; type 1 is stdout,
    2 is stderr."""

    def __init__(self):
        self._pending = bytearray()

    def feed(self, data: bytes) -> tuple[bytes, bytes]:
        self._pending += data
        out, err = bytearray(), bytearray()
        while len(self._pending) >= FRAME.size:
            kind, size = FRAME.unpack_from(self._pending)
            if len(self._pending) < FRAME.size + size:
                break
            payload = self._pending[FRAME.size:FRAME.size + size]
            (err if kind == 2 else out).extend(payload)
            del self._pending[:FRAME.size + size]
        return bytes(out), bytes(err)


class ContainerZygote(Zygote):
    """A worker in a container, reached through the container's attach socket."""

    def __init__(self, container, sock, reaper: "Reaper", limits: Limits):
        super().__init__(None, f"container {container.short_id}")
        self.container = container
        self.reaper = reaper
        self.limits = limits
        self.host_pid = 0
        self._response = sock  # keeps the HTTP response (and so the connection) alive
        self._sock = getattr(sock, "_sock", sock)
        self._sock.settimeout(30)
        self._demux = StreamDemux()
        self._stderr = bytearray()
        self._ended = False
        self.oom_file: Path | None = None
        self.oom_before = 0
        #: A warm container's name, renamed for each node it runs; None for a container made for one node.
        self.naming: ContainerName | None = None

    @property
    def pid(self) -> int:
        return self.host_pid

    def stderr_tail(self) -> str:
        return bytes(self._stderr[-STDERR_TAIL:]).decode("utf-8", "replace")

    def _write(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise ZygoteDied(f"{self.label} is gone ({exc})") from None

    def _read_chunk(self, timeout: float) -> bytes | None:
        pending = getattr(self._sock, "pending", None)
        if not (pending and pending()):
            try:
                ready, _, _ = select.select([self._sock], [], [], timeout)
            except (OSError, ValueError):
                return b""
            if not ready:
                return None
        try:
            data = self._sock.recv(1 << 20)
        except (BlockingIOError, socket.timeout):
            return None
        except OSError:
            return b""
        if not data:
            return b""
        out, err = self._demux.feed(data)
        self._stderr += err
        del self._stderr[:-STDERR_TAIL]
        return out if out else None

    def kill(self) -> None:
        """Drop the connection and have the container removed (force: it is killed first)."""
        if self._ended:
            return
        self._ended = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self._sock.close()
            self._response.close()
        except OSError:
            pass
        self.reaper.remove(self.container.id)


class Reaper:
    """The engine calls that a node's result need not wait for, on background threads: removing
    recycled containers, and renaming warm containers idle after their node. Each has its own thread,
    so a slow removal (seconds with the vfs driver) never holds up a rename. `drain` waits for
    outstanding removals (at shutdown)."""

    def __init__(self, client):
        self.client = client
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._renames: queue.Queue[tuple[float, ContainerName, int]] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="pyflow-docker-reaper")
        self._thread.start()
        threading.Thread(target=self._rename_loop, daemon=True, name="pyflow-docker-namer").start()

    def remove(self, container_id: str) -> None:
        self._queue.put(container_id)

    def rename_idle(self, naming: ContainerName, name: str) -> None:
        """Rename a container `name` once IDLE_RENAME_DELAY_S has passed, unless it was renamed or
        asked for another name since (it was handed its next node)."""
        self._renames.put((time.monotonic() + IDLE_RENAME_DELAY_S, naming, naming.want(name)))

    def _rename_loop(self) -> None:
        while True:
            due, naming, ticket = self._renames.get()  # all wait the same delay: the queue is in due order
            time.sleep(max(0.0, due - time.monotonic()))
            naming.settle(ticket)

    def _loop(self) -> None:
        while True:
            container_id = self._queue.get()
            try:
                if container_id is not None:
                    remove_container(self.client, container_id)
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
            except docker.errors.APIError:
                pass


def remove_labelled(client, labels: dict, keep_live: bool = False) -> int:
    """Remove every container (running or not) carrying all of `labels`; returns how many. With
    keep_live, spare those of a server process that is still running (another executor of the same
    owner in a live process: a test next to its server, say)."""
    filters = {"label": [f"{key}={value}" for key, value in labels.items()]}
    found = client.api.containers(all=True, filters=filters)
    if keep_live:
        found = [entry for entry in found if not is_alive((entry.get("Labels") or {}).get(LABEL_PROCESS, ""))]
    for entry in found:
        remove_container(client, entry["Id"])
    return len(found)


def memory_events_file(host_pid: int) -> Path | None:
    """The file counting out-of-memory kills in the memory cgroup of the container whose init has
    `host_pid`, when this process can see it (same host and pid namespace as the engine): cgroup v1
    memory.oom_control or v2 memory.events. None otherwise."""
    try:
        lines = Path(f"/proc/{host_pid}/cgroup").read_text().splitlines() if host_pid else []
    except OSError:
        return None
    paths = dict((parts[1], parts[2]) for parts in (line.split(":", 2) for line in lines) if len(parts) == 3)
    candidates = []
    if "memory" in paths:
        candidates.append(Path("/sys/fs/cgroup/memory") / paths["memory"].lstrip("/") / "memory.oom_control")
    if "" in paths:
        candidates.append(Path("/sys/fs/cgroup") / paths[""].lstrip("/") / "memory.events")
    return next((path for path in candidates if path.is_file()), None)


def oom_kills(path: Path | None) -> int:
    """The kernel's count of processes killed for memory in one cgroup (0 when unknown)."""
    if path is None:
        return 0
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


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


# ------------------------------------------------------------------------------------- requirements

REQUIREMENT = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"          # project name
    r"(?:\[[A-Za-z0-9._-]+(?:\s*,\s*[A-Za-z0-9._-]+)*\])?"  # extras
    r"(?:\s*(?:===|~=|==|!=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+"  # version specifiers
    r"(?:\s*,\s*(?:===|~=|==|!=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+)*)?$")
MAX_REQUIREMENTS = 50
#: How long a (base image, requirements) -> derived image answer is reused without asking the engine.
RESOLVED_TTL_S = 30.0


def validate_requirements(requirements) -> tuple[str, ...]:
    """Requirement strings limited to "name[extras] specifiers": no URLs, paths, options or markers, so
    what reaches pip can only name packages on the index."""
    reqs = tuple(str(r).strip() for r in (requirements or ()) if str(r).strip())
    if len(reqs) > MAX_REQUIREMENTS:
        raise RequirementsError(f"at most {MAX_REQUIREMENTS} requirements per nodespec, got {len(reqs)}")
    for req in reqs:
        if len(req) > 200 or not REQUIREMENT.match(req):
            raise RequirementsError(f"requirement {req[:80]!r} is not allowed: use 'name', 'name[extra]' or "
                                    f"'name<op>version' (no URLs, paths, options or markers)")
    return tuple(sorted(set(reqs), key=str.lower))


def requirements_tag(base_id: str, requirements: tuple[str, ...], index_url: str | None = None) -> str:
    """The derived image's name: a hash of the base image id and the (sorted) requirements."""
    digest = hashlib.sha256("\n".join([base_id, *requirements, index_url or ""]).encode()).hexdigest()
    return f"pyflow-req:{digest[:24]}"


@dataclass
class BuildSettings:
    index_url: str | None = None
    timeout_s: float = 300.0
    memory_mb: int = 2048
    failure_ttl_s: float = 60.0
    #: CA bundle pip should trust (read on the server's side, copied into the build container).
    cert_file: str | None = None


class RequirementsBuilder:
    """Makes (once) and finds (afterwards) the derived image for a base image plus requirements.

    The wheels are downloaded on the host (docker_images.fetch_wheels: wheels only, so no package's own
    code runs) and installed from that folder in a throw-away container of the base image that has no
    network, which is then committed as the derived image. A download or install that does not finish in
    `timeout_s` is ended: an unreachable package index fails the node instead of hanging it."""

    def __init__(self, client, owner: str, instance: str, settings: BuildSettings):
        self.client = client
        self.owner = owner
        self.instance = instance
        self.settings = settings
        self._locks: dict[str, threading.Lock] = {}
        self._failures: dict[str, tuple[float, str]] = {}
        self._resolved: dict[tuple, tuple[str, float]] = {}
        self._guard = threading.Lock()

    def image_for(self, base: str, requirements, cancel: threading.Event | None = None) -> str:
        """The derived image's tag, building it first when it does not exist yet."""
        reqs = validate_requirements(requirements)
        if not reqs:
            return base
        known = self._resolved.get((base, reqs))
        if known and time.monotonic() - known[1] < RESOLVED_TTL_S:
            return known[0]
        base_id = self.client.images.get(base).id
        tag = requirements_tag(base_id, reqs, self.settings.index_url)
        with self._lock_for(tag):
            if not self._exists(tag):
                self._raise_recent_failure(tag)
                try:
                    self._build(base, base_id, reqs, tag, cancel)
                except RequirementsError as exc:
                    self._failures[tag] = (time.monotonic(), str(exc))
                    raise
        self._resolved[(base, reqs)] = (tag, time.monotonic())
        return tag

    def _lock_for(self, tag: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(tag, threading.Lock())

    def _exists(self, tag: str) -> bool:
        import docker.errors
        try:
            self.client.images.get(tag)
            return True
        except docker.errors.ImageNotFound:
            return False

    def _raise_recent_failure(self, tag: str) -> None:
        failed = self._failures.get(tag)
        if failed and time.monotonic() - failed[0] < self.settings.failure_ttl_s:
            raise RequirementsError(failed[1] + " (cached failure; retried after "
                                    f"{self.settings.failure_ttl_s:g} s)")

    def _cert(self) -> str | None:
        path = self.settings.cert_file
        return path if path and os.path.isfile(path) else None

    def _target(self, base: str) -> dict:
        """The base image's Python version, machine and glibc, asked of it in a container without network."""
        try:
            out = self.client.containers.run(base, ["python3", "-I", "-c", TAGS_PROBE], entrypoint=[],
                                             network_mode="none", remove=True, user="0:0",
                                             cap_drop=["ALL"], security_opt=["no-new-privileges"])
            return json.loads(out.decode("utf-8").strip().splitlines()[-1])
        except Exception as exc:
            raise RequirementsError(f"could not ask image {base} for its Python version: {exc}") from None

    def _build(self, base: str, base_id: str, reqs: tuple[str, ...], tag: str, cancel) -> None:
        wheels, said = fetch_wheels(self._target(base), reqs, self.settings.index_url, self._cert(),
                                    self.settings.timeout_s)
        if wheels is None:
            raise RequirementsError(self._failure_message(reqs, base, "timeout" if said == "timeout" else 1,
                                                          said, "pip download (on the host)"))
        labels = {LABEL_MANAGED: "1", LABEL_OWNER: self.owner, LABEL_INSTANCE: self.instance,
                  LABEL_ROLE: "build", LABEL_PROCESS: process_identity()}
        memory = self.settings.memory_mb * 1024 * 1024
        container = self.client.containers.create(
            base, install_command(reqs), entrypoint=[], user="0:0", network_mode="none",
            labels=labels, mem_limit=memory, memswap_limit=memory, pids_limit=256,
            cap_drop=["ALL"], security_opt=["no-new-privileges", seccomp_option()], working_dir="/tmp")
        try:
            container.put_archive(os.path.dirname(WHEELS_DIR), wheels)
            status = self._wait(container, cancel)
            if status != 0:
                raise RequirementsError(self._failure_message(reqs, base, status, self._logs(container),
                                                              "pip install (in a container without network)"))
            container.commit(tag.split(":")[0], tag.split(":")[1], changes=self._commit_changes(base_id, reqs))
        finally:
            remove_container(self.client, container.id)

    def _wait(self, container, cancel) -> int | str:
        """Start the build container and wait for it within the time bound; "timeout" or "cancelled"
        when it had to be killed."""
        container.start()
        deadline = time.monotonic() + self.settings.timeout_s
        while True:
            container.reload()
            if container.status in ("exited", "dead"):
                return int(container.attrs["State"].get("ExitCode", -1))
            if cancel is not None and cancel.is_set():
                return "cancelled"
            if time.monotonic() > deadline:
                return "timeout"
            time.sleep(0.25)

    @staticmethod
    def _logs(container) -> str:
        try:
            return container.logs(tail=12).decode("utf-8", "replace").strip()
        except Exception:
            return ""

    def _failure_message(self, reqs, base: str, status, said: str, step: str) -> str:
        what = f"could not install requirements {', '.join(reqs)} into image {base}"
        if status == "timeout":
            return (f"{what}: {step} did not finish within {self.settings.timeout_s:g} s (is the package index "
                    f"reachable from this host? set PYFLOW_PIP_INDEX_URL)")
        if status == "cancelled":
            return f"{what}: the run was cancelled"
        lowered = said.lower()
        if any(word in lowered for word in ("connection", "resolution", "timed out", "ssl")):
            return (f"{what}: the package index could not be reached from this host (index "
                    f"{self.settings.index_url or 'PyPI'}). pip said: {said[-1500:]}")
        return f"{what}: {step} failed (status {status}). pip said: {said[-1500:]}"

    def _commit_changes(self, base_id: str, reqs) -> list[str]:
        meta = json.dumps({"base": base_id, "requirements": list(reqs)})
        return [f"LABEL pyflow.requirements={json.dumps(meta)}", "LABEL pyflow.role=requirements",
                f"USER {NODE_USER}", 'CMD ["python3"]', "WORKDIR /tmp"]


# ---------------------------------------------------------------------------------------------- pools


class ContainerPool(ZygoteExecutor):
    """Warm hardened containers of one image (or a fresh container per node when pool_size is 0)."""

    name = "docker"

    def __init__(self, client, image: str, reaper: Reaper, owner: str, instance: str, hardening: Hardening,
                 pool_size: int, max_runs: int):
        super().__init__(pool_size=pool_size, max_runs=max_runs)
        self.client = client
        self.image = image
        self.reaper = reaper
        self.owner = owner
        self.instance = instance
        self.hardening = hardening
        self.last_used = time.monotonic()
        self.in_use = 0
        self._local = threading.local()
        self._started_once = threading.Lock()
        self._is_started = False
        self._replenishing = 0

    # -- containers --------------------------------------------------------------------------------
    def spawn(self) -> Zygote:
        """Create, attach to (before start, so nothing is missed) and start one worker container.

        A container for one node (pool size 0) is labelled and named for its run and node; a warm one
        is named idle and renamed for each node it runs (labels cannot change after creation)."""
        task = getattr(self._local, "task", None)
        limits = task.limits if task is not None else Limits()
        own_task = task if self.pool_size <= 0 else None
        labels = node_labels(self.owner, self.instance, self.image, own_task)
        token = uuid.uuid4().hex[:12]
        name = container_name(token, own_task)
        container = self.client.containers.create(name=name, **container_options(self.image, limits, labels,
                                                                                  self.hardening))
        try:
            sock = self.client.api.attach_socket(container.id, params={"stdin": 1, "stdout": 1, "stderr": 1,
                                                                       "stream": 1})
            zygote = ContainerZygote(container, sock, self.reaper, limits)
            if own_task is None:
                zygote.naming = ContainerName(self.client, container.id, token)
            container.start()
            zygote.host_pid = int(self.client.api.inspect_container(container.id)["State"].get("Pid") or 0)
            zygote.oom_file = memory_events_file(zygote.host_pid)
        except BaseException:
            self.reaper.remove(container.id)
            raise
        return zygote

    def _spawn_on_spawner(self) -> Zygote:
        """Containers do not die with the thread that created them (the reason the base class starts
        workers from one long-lived thread), so create them on the caller's thread: pools fill side by
        side, and a per-node container sees the task it is labelled for."""
        return self.spawn()

    def spawn_failure(self, zygote: Zygote) -> str:
        """What the container wrote on stderr before it failed (python3 missing from an image, say)."""
        tail = zygote.stderr_tail().strip() if isinstance(zygote, ContainerZygote) else ""
        return f"container stderr: {tail[-600:]}" if tail else ""

    def _started(self) -> Zygote:
        try:
            return super()._started()
        except ZygoteDied as exc:
            raise ZygoteDied(f"the worker container for image {self.image} did not start: {exc}") from None

    def start(self) -> None:
        """Fill the pool, starting the containers side by side (each takes about a second)."""
        with self._started_once:
            if self._is_started:
                return
            errors: list[BaseException] = []
            threads = [threading.Thread(target=self._fill_one, args=(errors,), daemon=True)
                       for _ in range(self.pool_size)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if errors:
                self.close()
                raise errors[0]
            self._is_started = True

    def _fill_one(self, errors: list) -> None:
        try:
            self._idle.put(self._started())
        except BaseException as exc:  # reported by start()
            errors.append(exc)

    # -- one node run ------------------------------------------------------------------------------
    def run(self, task: NodeTask, cancel: threading.Event | None = None) -> NodeOutcome:
        """Take a container, give it the node's limits, run the node, recycle it when needed."""
        started = time.monotonic()
        with self._lock:
            self.last_used, self.in_use = started, self.in_use + 1
        try:
            zygote = self._take(task, cancel, started)
            if isinstance(zygote, NodeOutcome):
                return zygote
            problem = self._apply_limits(zygote, task.limits)
            if problem:
                self._release(zygote, True)
                return NodeOutcome.failure(problem, "ExecutorError", duration_ms=_ms(started))
            return self._run_and_release(zygote, task, cancel, started)
        finally:
            with self._lock:
                self.in_use -= 1

    def _take(self, task: NodeTask, cancel, started: float):
        """A ready container, or the outcome that says why there is none."""
        self._local.task = task
        try:
            if self._pool_is_empty_for_good():
                return self._started()  # retry here: an engine that is back serves the node, else its error
            return self._acquire(cancel)
        except CancelledRun:
            return NodeOutcome.failure("the run was cancelled", "Cancelled", "cancelled", duration_ms=_ms(started))
        except Exception as exc:
            return NodeOutcome.failure(f"could not start a container for the node: {exc}", "ExecutorError",
                                       "crashed", duration_ms=_ms(started))
        finally:
            self._local.task = None

    def _pool_is_empty_for_good(self) -> bool:
        """No container idle, none alive, none being started: waiting for one would wait forever (the
        engine failed every replacement)."""
        with self._lock:
            return self.pool_size > 0 and self._idle.empty() and not self._live and not self._replenishing

    def _replenish(self) -> None:
        with self._lock:
            self._replenishing += 1
        try:
            super()._replenish()
        finally:
            with self._lock:
                self._replenishing -= 1

    def _apply_limits(self, zygote: ContainerZygote, limits: Limits) -> str | None:
        """Update a warm container's memory and process limits to this node's, when they differ.

        Through the engine's update endpoint directly: docker-py's update_container has no PidsLimit."""
        wanted = (memory_bytes(limits), process_limit(limits))
        if wanted == (memory_bytes(zygote.limits), process_limit(zygote.limits)):
            return None
        body = {"Memory": wanted[0], "MemorySwap": wanted[0], "PidsLimit": wanted[1]}
        api = self.client.api
        try:
            response = api._post_json(api._url("/containers/{0}/update", zygote.container.id), data=body)
            api._raise_for_status(response)
        except Exception as exc:
            return f"could not set the node's limits on its container: {exc}"
        zygote.limits = limits
        return None

    def prepare_payload(self, zygote: Zygote, task: NodeTask) -> dict:
        payload = task.payload()
        payload["scratch"] = "/tmp"
        payload["memory_rlimit"] = False  # the container's memory cgroup holds the limit
        return payload

    def before_run(self, zygote: Zygote, task: NodeTask) -> None:
        """Name a warm container for the node's run and node; a container that cannot be named so does
        not run the node (the OSError fails the node and recycles the container)."""
        if isinstance(zygote, ContainerZygote):
            if zygote.naming is not None:
                try:
                    zygote.naming.rename_now(container_name(zygote.naming.token, task))
                except Exception as exc:
                    raise OSError(f"could not name the container for run {task.run_id}, node {task.node_id}: "
                                  f"{exc}") from None
            zygote.oom_before = oom_kills(zygote.oom_file)

    def after_run(self, zygote: Zygote, task: NodeTask, outcome: NodeOutcome) -> NodeOutcome:
        """A failed run during which the kernel killed a process of the container for memory failed
        because of the node's memory limit, whatever the node made of it (a child it waited for, say).
        A warm container is renamed idle shortly after, unless its next node comes first."""
        if isinstance(zygote, ContainerZygote) and zygote.naming is not None:
            self.reaper.rename_idle(zygote.naming, zygote.naming.idle)
        if outcome.ok or not isinstance(zygote, ContainerZygote):
            return outcome
        if zygote.oom_file is not None:
            hit = oom_kills(zygote.oom_file) > zygote.oom_before
        else:
            hit = self._peak_reached_limit(zygote)
        if not hit:
            return self._explain_crash(zygote, outcome)
        return NodeOutcome.failure(f"memory limit of {task.limits.memory_mb} MB exceeded (the kernel's "
                                   f"out-of-memory killer ended a process of the node)", "MemoryLimit", "memory",
                                   outcome.stdout, outcome.duration_ms)

    def _peak_reached_limit(self, zygote: ContainerZygote) -> bool:
        """Where the container's cgroup cannot be read (a remote engine, a server in a container): the
        engine's peak memory of the container at its limit. Containers are replaced after any memory
        violation, so a peak at the limit means this run."""
        try:
            stats = self.client.api.stats(zygote.container.id, stream=False, one_shot=True)
        except Exception:
            return False
        memory = stats.get("memory_stats") or {}
        peak, limit = memory.get("max_usage") or memory.get("usage") or 0, memory.get("limit") or 0
        return bool(limit) and peak >= limit - 4 * 1024 * 1024

    def _explain_crash(self, zygote: Zygote, outcome: NodeOutcome) -> NodeOutcome:
        """Add what the worker wrote on stderr when the whole container ended under the node."""
        tail = zygote.stderr_tail().strip() if isinstance(zygote, ContainerZygote) else ""
        if outcome.violation == "crashed" and tail and outcome.error and "ended unexpectedly" in \
                outcome.error.get("message", ""):
            error = dict(outcome.error, message=outcome.error["message"] + f" (container stderr: {tail[-400:]})")
            return replace(outcome, error=error)
        return outcome


# ------------------------------------------------------------------------------------------ executor


class DockerExecutor(ContainerPool):
    """The "docker" executor: hardened containers with warm workers, one small pool per image.

    Options (all optional; unknown ones are ignored), with the environment variables that set them when
    the server is started from the command line: pool_size (warm containers per image; 0 means a fresh
    container per node), max_runs (runs before a container is replaced), image (the default runtime
    image; PYFLOW_DOCKER_IMAGE), cpus (PYFLOW_DOCKER_CPUS), tmp_mb (PYFLOW_DOCKER_TMP_MB), owner (the
    label naming this server; PYFLOW_DOCKER_OWNER), base_url (the engine; DOCKER_HOST), images (the
    allow-list besides the runtime image: a list or a comma separated string; --docker-images,
    PYFLOW_DOCKER_IMAGES), pip_index_url (PYFLOW_PIP_INDEX_URL), build_timeout_s
    (PYFLOW_DOCKER_BUILD_TIMEOUT), pip_cert (PYFLOW_PIP_CERT, else PIP_CERT), max_images (how many
    non-default image pools stay warm)."""

    name = "docker"

    def __init__(self, pool_size: int = 2, max_runs: int = 100, image: str | None = None,
                 cpus: float | None = None, tmp_mb: int | None = None, owner: str | None = None,
                 base_url: str | None = None,
                 images=None, pip_index_url: str | None = None,
                 build_timeout_s: float | None = None, pip_cert: str | None = None, max_images: int = 4,
                 **_ignored):
        client = connect(base_url)
        instance = uuid.uuid4().hex[:12]
        owner = owner or default_owner()
        image = image or os.environ.get("PYFLOW_DOCKER_IMAGE") or DEFAULT_IMAGE
        hardening = Hardening(cpus=float(cpus or os.environ.get("PYFLOW_DOCKER_CPUS") or 1.0),
                              tmp_mb=int(tmp_mb or os.environ.get("PYFLOW_DOCKER_TMP_MB") or 64))
        super().__init__(client, image, Reaper(client), owner, instance, hardening,
                         pool_size=max(0, int(pool_size)), max_runs=max(1, int(max_runs)))
        self.max_images = max_images
        self.images = ImagePolicy.from_options(image, images)
        self.builder = RequirementsBuilder(client, owner, instance, build_settings(
            pip_index_url, build_timeout_s, pip_cert))
        self._pools: dict[str, ContainerPool] = {}
        self._pools_lock = threading.Lock()
        self.removed_at_start = 0

    def start(self) -> None:
        """Check the engine and image, remove what an earlier server of this owner left, fill the pool."""
        require_image(self.client, self.image)
        try:
            self.images.check(self.client, self.image)
        except ImageRefused as exc:
            raise DockerUnavailable(str(exc)) from None
        self.removed_at_start = remove_labelled(self.client, {LABEL_MANAGED: "1", LABEL_OWNER: self.owner},
                                                keep_live=True)
        super().start()

    def run(self, task: NodeTask, cancel: threading.Event | None = None) -> NodeOutcome:
        """Find the node's image (building its requirements image first if needed) and run the node on
        that image's pool; problems with images are the node's error, never an exception."""
        started = time.monotonic()
        try:
            image = self._image_for(task, cancel)
            pool = self._pool_for(image)
        except (RequirementsError, DockerUnavailable, ImageRefused) as exc:
            kind = "RequirementsError" if isinstance(exc, RequirementsError) else "ImageError"
            return NodeOutcome.failure(str(exc), kind, duration_ms=_ms(started))
        except Exception as exc:
            return NodeOutcome.failure(f"the Docker engine failed: {exc}", "ExecutorError", "crashed",
                                       duration_ms=_ms(started))
        return ContainerPool.run(pool, task, cancel)

    def _image_for(self, task: NodeTask, cancel) -> str:
        base = task.image or self.image
        if base != self.image:
            self.images.check(self.client, base)
        if task.requirements:
            return self.builder.image_for(base, task.requirements, cancel)
        return base

    def _pool_for(self, image: str) -> ContainerPool:
        if image == self.image:
            return self
        with self._pools_lock:
            pool = self._pools.get(image)
            if pool is None:
                pool = ContainerPool(self.client, image, self.reaper, self.owner, self.instance, self.hardening,
                                     self.pool_size, self.max_runs)
                self._pools[image] = pool
                self._evict_idle_pools()
        if self.pool_size > 0:
            try:
                pool.start()
            except Exception as exc:
                with self._pools_lock:
                    if self._pools.get(image) is pool:
                        del self._pools[image]
                raise DockerUnavailable(f"could not start a container of image {image!r}: {exc}") from None
        return pool

    def _evict_idle_pools(self) -> None:
        """Keep at most `max_images` other images warm: close the least recently used idle pools."""
        idle = sorted((p for p in self._pools.values() if p.in_use == 0), key=lambda p: p.last_used)
        while len(self._pools) > self.max_images and idle:
            victim = idle.pop(0)
            del self._pools[victim.image]
            victim.close()

    def close(self) -> None:
        """End every container this executor started and wait until the engine has removed them."""
        if self._closed and not self._live:
            return
        with self._pools_lock:
            pools = list(self._pools.values())
            self._pools.clear()
        for pool in pools:
            pool.close()
        super().close()
        self.reaper.drain()
        mine = {LABEL_MANAGED: "1", LABEL_INSTANCE: self.instance}
        try:
            remove_labelled(self.client, mine)
            wait_until_removed(self.client, mine)
        except Exception:
            pass

    def describe(self) -> dict:
        return {"name": self.name, "image": self.image, "owner": self.owner, "pool_size": self.pool_size,
                "images": [self.image, *list(self._pools)],
                "isolation": ("container (Docker: no network, read-only root, tmpfs /tmp of "
                              f"{self.hardening.tmp_mb} MB, all capabilities dropped, no-new-privileges, "
                              f"user {self.hardening.user}, memory/process/CPU limits)"),
                "warnings": []}


def connect(base_url: str | None = None):
    """A client for the engine at base_url (default: DOCKER_HOST, else the local socket), checked."""
    try:
        import docker
    except ImportError as exc:
        raise ImportError(f"the docker executor needs the Docker SDK: pip install 'pyflow[docker]' ({exc})")
    try:
        client = docker.DockerClient(base_url=base_url, timeout=ENGINE_TIMEOUT_S) if base_url else \
            docker.from_env(timeout=ENGINE_TIMEOUT_S)
        client.ping()
    except docker.errors.DockerException as exc:
        where = base_url or os.environ.get("DOCKER_HOST") or "the local socket"
        raise DockerUnavailable(f"cannot reach the Docker engine at {where}: {exc}. Start dockerd, or choose "
                                f"another executor (--executor sandbox)") from None
    return client


def require_image(client, image: str) -> None:
    """The image must already be on the engine: PyFlow never pulls (no registry is assumed)."""
    import docker.errors
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        hint = " (build it with `make docker`)" if image == DEFAULT_IMAGE else ""
        raise DockerUnavailable(f"image {image!r} is not on the Docker engine{hint}; PyFlow does not pull "
                                f"images") from None


def build_settings(index_url: str | None, timeout_s: float | None, cert_file: str | None) -> BuildSettings:
    """Requirement-build settings from options, else PYFLOW_PIP_INDEX_URL, PYFLOW_DOCKER_BUILD_TIMEOUT
    and PYFLOW_PIP_CERT (else pip's own PIP_CERT). Builds never have a network: see docker_images.py."""
    env = os.environ
    return BuildSettings(index_url=index_url or env.get("PYFLOW_PIP_INDEX_URL") or None,
                         timeout_s=float(timeout_s or env.get("PYFLOW_DOCKER_BUILD_TIMEOUT") or 300),
                         cert_file=cert_file or env.get("PYFLOW_PIP_CERT") or env.get("PIP_CERT") or None)


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 3)
