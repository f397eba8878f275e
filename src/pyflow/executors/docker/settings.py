"""The container a node runs in: its hardening, its per-node limits, and the worker it starts."""

from __future__ import annotations

from dataclasses import dataclass

from ...engine.execution import ExecutorUnavailable, Limits
from ..channel import worker_source
from .images import seccomp_option

DEFAULT_IMAGE = "pyflow-runtime:bookworm"
NODE_USER = "10001:10001"
#: Memory the worker (its zygote interpreter, the container's pid 1) needs beside the node's own allowance.
WORKER_RESERVE_MB = 24
#: Processes the container needs beside the node's own: the worker's zygote (pid 1). The next run's waiting child
#: is forked after a run has ended, and is that run's node process.
WORKER_PROCESSES = 1
MIN_NODE_MEMORY_MB = 8
ENGINE_TIMEOUT_S = 120


class DockerUnavailable(ExecutorUnavailable):
    """The Docker engine or the runtime image cannot be used; the message says what to do."""


@dataclass(frozen=True)
class Hardening:
    """Container settings that are the same for every node run (per-node limits come from the task)."""

    cpus: float = 1.0
    tmp_mb: int = 64
    user: str = NODE_USER
    # LD_BIND_NOW: the worker's interpreter binds its library functions at start, once, rather than each
    # node's process binding those only children call (sandbox.py says more); node code never sees it.
    environment: tuple[tuple[str, str], ...] = (("PATH", "/usr/local/bin:/usr/bin:/bin"), ("HOME", "/tmp"),
                                                ("LANG", "C.UTF-8"), ("TMPDIR", "/tmp"), ("LD_BIND_NOW", "1"))


def worker_command() -> list[str]:
    """The worker, passed as data: its source is the -c argument, so any image with python3 works."""
    return ["python3", "-I", "-c", worker_source().decode("utf-8"), "--pid-namespace"]


def memory_bytes(limits: Limits) -> int:
    """The container's memory (and memory+swap) limit for a node allowed `limits.memory_mb`."""
    return (max(MIN_NODE_MEMORY_MB, int(limits.memory_mb)) + WORKER_RESERVE_MB) * 1024 * 1024


def process_limit(limits: Limits) -> int:
    return max(1, int(limits.processes)) + WORKER_PROCESSES


ARTIFACTS_IN = "/run/pyflow/in"
ARTIFACTS_OUT = "/run/pyflow/out"


def artifact_binds(places) -> dict:
    """Docker volume binds of a container's artifact places: inputs read-only, outputs writable."""
    if places is None:
        return {}
    return {str(places.host_in): {"bind": places.inside_in, "mode": "ro"},
            str(places.host_out): {"bind": places.inside_out, "mode": "rw"}}


def container_options(image: str, limits: Limits, labels: dict, hardening: Hardening = Hardening(),
                      volumes: dict | None = None) -> dict:
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
        init=False, auto_remove=True, log_config=LogConfig(type="none"), volumes=dict(volumes or {}),
    )


def scratch_mount_options(hardening: Hardening) -> str:
    """The /tmp tmpfs: size-capped, no devices, no set-uid, no executables, and owned by the node user
    (the worker empties it after each run, which needs the owner's rights on the directory itself)."""
    options = f"rw,nosuid,nodev,noexec,size={int(hardening.tmp_mb)}m"
    uid, _, gid = hardening.user.partition(":")
    if uid.isdigit():
        return f"{options},mode=0700,uid={uid},gid={gid if gid.isdigit() else uid}"
    return f"{options},mode=1777"
