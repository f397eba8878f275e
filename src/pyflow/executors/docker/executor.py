"""The "docker" executor: the default image's pool, and a router to per-image pools for the others."""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid

from ...engine.execution import NodeOutcome, NodeTask
from ..channel import ms
from .cleanup import Reaper, remove_labelled, wait_until_removed
from .images import ImagePolicy, ImageRefused
from .names import LABEL_INSTANCE, LABEL_MANAGED, LABEL_OWNER, default_owner
from .pool import ContainerPool
from .requirements import RequirementsBuilder, RequirementsError, build_settings
from .settings import DEFAULT_IMAGE, ENGINE_TIMEOUT_S, DockerUnavailable, Hardening

log = logging.getLogger(__name__)



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
            return NodeOutcome.failure(str(exc), kind, duration_ms=ms(started))
        except Exception as exc:
            log.warning("the Docker engine failed while preparing node %s: %s", task.node_id, exc)
            return NodeOutcome.failure(f"the Docker engine failed: {exc}", "ExecutorError", "crashed",
                                       duration_ms=ms(started))
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
