"""The "docker" executor: the default image's pool, and a router to per-image pools for the others."""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid

from ...engine.execution import Executor, NodeOutcome, NodeTask
from ..channel import ms
from .cleanup import Reaper, remove_labelled, wait_until_removed
from .images import ImagePolicy, ImageRefused
from .names import LABEL_INSTANCE, LABEL_MANAGED, LABEL_OWNER, default_owner
from .pool import ContainerPool
from .requirements import REQUIREMENT_IMAGES, RequirementsBuilder, RequirementsError, build_settings
from .settings import DEFAULT_IMAGE, ENGINE_TIMEOUT_S, DockerUnavailable, Hardening

log = logging.getLogger(__name__)


class DockerExecutor(Executor):
    """The "docker" executor: hardened containers with warm workers, one small pool per image, and a
    router that sends each node to its image's pool (the default image's is filled at start; another
    image's on its first node, and at most `max_images` of those stay warm).

    Options (all optional; unknown ones are ignored), with the environment variables that set them when
    the server is started from the command line: pool_size (warm containers per image; 0 means a fresh
    container per node), max_runs (runs before a container is replaced), image (the default runtime
    image; PYFLOW_DOCKER_IMAGE), cpus (PYFLOW_DOCKER_CPUS), tmp_mb (PYFLOW_DOCKER_TMP_MB), owner (the
    label naming this server; PYFLOW_DOCKER_OWNER), base_url (the engine; DOCKER_HOST), images (the
    allow-list besides the runtime image: a list or a comma separated string; --docker-images,
    PYFLOW_DOCKER_IMAGES), pip_index_url (PYFLOW_PIP_INDEX_URL), build_timeout_s
    (PYFLOW_DOCKER_BUILD_TIMEOUT), pip_cert (PYFLOW_PIP_CERT, else PIP_CERT), max_images (how many
    non-default image pools stay warm), max_derived (requirement images kept on the engine, least
    recently used removed first; PYFLOW_DOCKER_MAX_DERIVED, default 20)."""

    name = "docker"

    def __init__(self, pool_size: int = 2, max_runs: int = 100, image: str | None = None,
                 cpus: float | None = None, tmp_mb: int | None = None, owner: str | None = None,
                 base_url: str | None = None,
                 images=None, pip_index_url: str | None = None,
                 build_timeout_s: float | None = None, pip_cert: str | None = None, max_images: int = 4,
                 max_derived: int | None = None, **_ignored):
        self.client = connect(base_url)
        self.instance = uuid.uuid4().hex[:12]
        self.owner = owner or default_owner()
        self.image = image or os.environ.get("PYFLOW_DOCKER_IMAGE") or DEFAULT_IMAGE
        self.hardening = Hardening(cpus=float(cpus or os.environ.get("PYFLOW_DOCKER_CPUS") or 1.0),
                                   tmp_mb=int(tmp_mb or os.environ.get("PYFLOW_DOCKER_TMP_MB") or 64))
        self.pool_size, self.max_runs = max(0, int(pool_size)), max(1, int(max_runs))
        self.reaper = Reaper(self.client)
        self.max_images = max_images
        self.images = ImagePolicy.from_options(self.image, images)
        self.builder = RequirementsBuilder(self.client, self.owner, self.instance, build_settings(
            pip_index_url, build_timeout_s, pip_cert, max_derived))
        self.default = self._new_pool(self.image)
        self._pools: dict[str, ContainerPool] = {}  # the other images' pools, by image
        self._pools_lock = threading.Lock()
        self._closed = False
        self.removed_at_start = 0

    def _new_pool(self, image: str) -> ContainerPool:
        pool = ContainerPool(self.client, image, self.reaper, self.owner, self.instance, self.hardening,
                             self.pool_size, self.max_runs)
        pool.artifacts = getattr(self, "artifacts", None)
        return pool

    def use_artifacts(self, store) -> None:
        """Carry values that are not JSON as artifacts in `store` (a directory the engine can bind: a
        local engine), in every image's pool (set before start)."""
        self.artifacts = store
        self.default.use_artifacts(store)

    def start(self) -> None:
        """Check the engine and image, remove what an earlier server of this owner left, fill the pool."""
        require_image(self.client, self.image)
        try:
            self.images.check(self.client, self.image)
        except ImageRefused as exc:
            raise DockerUnavailable(str(exc)) from None
        self.removed_at_start = remove_labelled(self.client, {LABEL_MANAGED: "1", LABEL_OWNER: self.owner},
                                                keep_live=True)
        try:
            self.default.start()
        except BaseException:
            self.close()  # nothing left behind by a server that will not start
            raise

    def run(self, task: NodeTask, cancel: threading.Event | None = None) -> NodeOutcome:
        """Find the node's image (building its requirements image first if needed) and run the node on
        that image's pool; problems with images are the node's error, never an exception."""
        started = time.monotonic()
        try:
            image = self._image_for(task, cancel)
            pool = self._pool_for(image)
        except (RequirementsError, DockerUnavailable, ImageRefused) as exc:
            kind = "RequirementsError" if isinstance(exc, RequirementsError) else "ImageError"
            return NodeOutcome.failure(str(exc), kind, duration_ms=ms(started))
        except Exception as exc:
            log.warning("the Docker engine failed while preparing node %s: %s", task.node_id, exc)
            return NodeOutcome.failure(f"the Docker engine failed: {exc}", "ExecutorError", "crashed",
                                       duration_ms=ms(started))
        return pool.run(task, cancel)

    def readiness(self) -> dict:
        """The default image's pool's readiness (the image most nodes run on)."""
        return self.default.readiness()

    def live_pids(self) -> list[int]:
        with self._pools_lock:
            pools = [self.default, *self._pools.values()]
        return [pid for pool in pools for pid in pool.live_pids()]

    def _image_for(self, task: NodeTask, cancel) -> str:
        base = task.image or self.image
        if base != self.image:
            self.images.check(self.client, base)
        if task.environment is not None:  # the lock the server resolved: the same versions as in its sandbox
            return self.builder.image_for(base, task.environment.packages, cancel)
        if task.requirements:
            return self.builder.image_for(base, task.requirements, cancel)
        return base

    def _pool_for(self, image: str) -> ContainerPool:
        if image == self.image:
            return self.default
        with self._pools_lock:
            if self._closed:
                raise DockerUnavailable("the executor is closed")
            pool = self._pools.get(image)
            if pool is None:
                pool = self._pools[image] = self._new_pool(image)
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
            if victim.image.startswith(REQUIREMENT_IMAGES):  # no longer in use: it may go now
                self.reaper.then(self.builder.prune)

    def close(self) -> None:
        """End every container this executor started and wait until the engine has removed them."""
        with self._pools_lock:
            if self._closed:
                return
            self._closed = True
            pools = list(self._pools.values())
            self._pools.clear()
        for pool in pools:
            pool.close()
        self.default.close()
        self.reaper.drain()
        mine = {LABEL_MANAGED: "1", LABEL_INSTANCE: self.instance}
        try:
            remove_labelled(self.client, mine)
            wait_until_removed(self.client, mine)
        except Exception as exc:  # the engine is gone, say: the next start of this owner removes them
            log.warning("could not remove this executor's containers at shutdown: %s", exc)

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
