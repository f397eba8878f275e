"""Requirement images: a nodespec's `requirements` built once into a derived image, without network."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass

from ... import process_identity
from .images import TAGS_PROBE, WHEELS_DIR, fetch_wheels, install_command, seccomp_option
from .names import LABEL_INSTANCE, LABEL_MANAGED, LABEL_OWNER, LABEL_PROCESS, LABEL_ROLE
from .settings import NODE_USER
from .cleanup import remove_container

log = logging.getLogger(__name__)


REQUIREMENT = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"          # project name
    r"(?:\[[A-Za-z0-9._-]+(?:\s*,\s*[A-Za-z0-9._-]+)*\])?"  # extras
    r"(?:\s*(?:===|~=|==|!=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+"  # version specifiers
    r"(?:\s*,\s*(?:===|~=|==|!=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+)*)?$")
MAX_REQUIREMENTS = 50
REQUIREMENT_IMAGES = "pyflow-req:"  # the repository every requirement image is a tag of
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
    return f"{REQUIREMENT_IMAGES}{digest[:24]}"


@dataclass
class BuildSettings:
    index_url: str | None = None
    timeout_s: float = 300.0
    memory_mb: int = 2048
    failure_ttl_s: float = 60.0
    #: CA bundle pip should trust (read on the server's side, copied into the build container).
    cert_file: str | None = None
    #: Requirement images kept on the engine; beyond it each build removes the least recently used.
    max_derived: int = 20


class RequirementsError(Exception):
    """A nodespec's requirements could not be turned into an image."""


class RequirementsBuilder:
    """Makes (once) and finds (afterwards) the derived image for a base image plus requirements.

    The wheels are downloaded on the host (images.fetch_wheels: wheels only, so no package's own
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
        self._used: dict[str, float] = {}  # requirement image tag -> when this process last used it
        self._guard = threading.Lock()

    def image_for(self, base: str, requirements, cancel: threading.Event | None = None) -> str:
        """The derived image's tag, building it first when it does not exist yet."""
        reqs = validate_requirements(requirements)
        if not reqs:
            return base
        known = self._resolved.get((base, reqs))
        if known and time.monotonic() - known[1] < RESOLVED_TTL_S:
            self._used[known[0]] = time.time()
            return known[0]
        base_id = self.client.images.get(base).id
        tag = requirements_tag(base_id, reqs, self.settings.index_url)
        built = False
        with self._lock_for(tag):
            if not self._exists(tag):
                self._raise_recent_failure(tag)
                try:
                    self._build(base, base_id, reqs, tag, cancel)
                except RequirementsError as exc:
                    self._failures[tag] = (time.monotonic(), str(exc))
                    raise
                built = True
        self._resolved[(base, reqs)] = (tag, time.monotonic())
        self._used[tag] = time.time()
        if built:
            self.prune(keep=tag)
        return tag

    def prune(self, keep: str | None = None) -> list[str]:
        """Keep at most `max_derived` requirement images on the engine: beyond it the least recently
        used go (used by this process, else by when they were made), never `keep` nor one a container
        still uses (the engine refuses). Without it every new set of requirements would add an image
        for good. Answers the tags removed."""
        import docker.errors
        try:
            images = self.client.images.list(filters={"label": "pyflow.role=requirements"})
        except docker.errors.APIError as exc:
            log.warning("cannot list the requirement images to prune them: %s", exc)
            return []
        tagged = [(tag, image) for image in images for tag in image.tags if tag.startswith(REQUIREMENT_IMAGES)]
        tagged.sort(key=lambda item: self._used.get(item[0]) or _created(item[1]), reverse=True)
        removed = []
        for tag, image in tagged[max(0, self.settings.max_derived):]:
            if tag == keep:
                continue
            try:
                self.client.images.remove(tag)
            except docker.errors.APIError as exc:  # in use by a container, or gone already
                log.info("requirement image %s kept: %s", tag, exc)
                continue
            self._used.pop(tag, None)
            self._resolved = {k: v for k, v in self._resolved.items() if v[0] != tag}
            removed.append(tag)
            log.info("removed requirement image %s, least recently used beyond %d", tag, self.settings.max_derived)
        return removed

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
                  LABEL_ROLE: "build", LABEL_PROCESS: process_identity.current()}
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


def _created(image) -> float:
    """When the engine made `image`, in seconds since the epoch (0 when it does not say)."""
    from datetime import datetime
    try:
        return datetime.fromisoformat(image.attrs["Created"].split(".")[0].rstrip("Z") + "+00:00").timestamp()
    except (KeyError, ValueError, AttributeError):
        return 0.0


def build_settings(index_url: str | None, timeout_s: float | None, cert_file: str | None,
                   max_derived: int | None = None) -> BuildSettings:
    """Requirement-build settings from options, else PYFLOW_PIP_INDEX_URL, PYFLOW_DOCKER_BUILD_TIMEOUT
    and PYFLOW_PIP_CERT (else pip's own PIP_CERT). Builds never have a network: see images.py."""
    env = os.environ
    return BuildSettings(index_url=index_url or env.get("PYFLOW_PIP_INDEX_URL") or None,
                         timeout_s=float(timeout_s or env.get("PYFLOW_DOCKER_BUILD_TIMEOUT") or 300),
                         cert_file=cert_file or env.get("PYFLOW_PIP_CERT") or env.get("PIP_CERT") or None,
                         max_derived=int(max_derived if max_derived is not None else
                                         env.get("PYFLOW_DOCKER_MAX_DERIVED") or 20))
