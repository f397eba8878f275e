"""The "docker" executor: every node function runs in a hardened container, on a warm fork-server.

Each container runs the same stdlib-only worker as the local sandbox (worker.py, handed over as data on
the command line) as the container's pid 1 (no tini: an init of the node's own user that node code could
attach to or read), and forks one child per node run. The host talks to it over the
container's attach stream: attached before start, no TTY, so the engine multiplexes stdout and stderr
into frames with an 8-byte header that `StreamDemux` splits again.

Every container is hardened: no network, read-only root, a size-capped tmpfs /tmp (the run's scratch
space, emptied after each run), memory limit equal to memory+swap limit, a process limit, a CPU quota,
every capability dropped, no-new-privileges, PyFlow's seccomp profile (executors/seccomp.py: the sandbox's
policy, which also denies ptrace), an unprivileged user, a private IPC namespace without /dev/shm
(nowhere to leave things for later runs), no logging on the host, and labels that say PyFlow owns it.
Node containers only run allowed images (images.py): the runtime image, those named with
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

Modules: settings (the container's hardening and limits), names (labels and names), transport (the
attach-socket worker), cleanup (removing containers), images (the allow-list, host-side wheel fetching),
requirements (requirement images), pool (warm containers of one image), executor (the default image's
pool, and the per-image pools it routes other images to).
"""

from .cleanup import Reaper, remove_container, remove_labelled, wait_until_removed
from .executor import DockerExecutor, connect, require_image
from .images import ImagePolicy, ImageRefused
from .names import (LABEL_IMAGE, LABEL_INSTANCE, LABEL_MANAGED, LABEL_NODE, LABEL_OWNER, LABEL_PROCESS, LABEL_ROLE,
                    LABEL_RUN, ContainerName, container_name, default_owner, node_labels)
from .pool import ContainerPool
from .requirements import (BuildSettings, RequirementsBuilder, RequirementsError, build_settings, requirements_tag,
                           validate_requirements)
from .settings import (DEFAULT_IMAGE, NODE_USER, WORKER_PROCESSES, WORKER_RESERVE_MB, DockerUnavailable, Hardening,
                       container_options, memory_bytes, process_limit, worker_command)
from .transport import ContainerState, ContainerWorker, StreamDemux

__all__ = [
    "DockerExecutor", "DockerUnavailable", "RequirementsError", "ContainerPool", "ContainerWorker", "ContainerState",
    "StreamDemux", "Reaper", "Hardening", "BuildSettings", "RequirementsBuilder", "ImagePolicy", "ImageRefused",
    "ContainerName", "DEFAULT_IMAGE", "NODE_USER", "WORKER_PROCESSES", "WORKER_RESERVE_MB", "LABEL_IMAGE",
    "LABEL_INSTANCE", "LABEL_MANAGED", "LABEL_NODE", "LABEL_OWNER", "LABEL_PROCESS", "LABEL_ROLE", "LABEL_RUN",
    "build_settings", "connect", "container_name", "container_options", "default_owner", "memory_bytes",
    "node_labels", "process_limit", "remove_container", "remove_labelled", "require_image", "requirements_tag",
    "validate_requirements", "wait_until_removed", "worker_command",
]
