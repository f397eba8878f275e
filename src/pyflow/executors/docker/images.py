"""Which images node containers may run, and how requirement images get their packages without network.

Allow-list: a nodespec's `image` names what node code runs on, so it is a choice of the server's
operator, not of whoever writes nodespecs. Allowed are the runtime image, the images named with
`--docker-images` (or PYFLOW_DOCKER_IMAGES, comma separated), and images PyFlow itself built from
requirements. Never allowed, even when listed: the PyFlow server's own image (it holds the server, and
with a mounted engine socket a node in it would own the host) and images that are not on the engine.

Requirement images: the wheels are fetched on the host (`pip download --only-binary=:all:` for the
base image's Python version and platform, so no sdist and no package code runs anywhere), copied into
a container of the base image that has no network at all, and installed there from that folder only
(`--no-index --find-links`). No build container ever has a network.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass

from ..seccomp import docker_profile


#: Label PyFlow's own server image carries (docker/server/Dockerfile); its role is "server".
SERVER_ROLE_LABELS = ("pyflow.role", "org.pyflow.role")
REQUIREMENTS_ROLE = "requirements"
WHEELS_DIR = "/tmp/pyflow-wheels"
#: Asked of the base image once per build (no network): its Python version, machine and glibc version.
TAGS_PROBE = ("import json, os, platform, sys\n"
              "libc = os.confstr('CS_GNU_LIBC_VERSION') or ''\n"
              "print(json.dumps({'python': '%d.%d' % sys.version_info[:2], 'machine': platform.machine(),"
              " 'glibc': libc.split()[-1] if libc.startswith('glibc') else ''}))")


def seccomp_option() -> str:
    """security_opt entry carrying PyFlow's seccomp profile (the engine takes the profile's JSON)."""
    return "seccomp=" + json.dumps(docker_profile(), separators=(",", ":"))


class ImageRefused(Exception):
    """A nodespec names an image that node code may not run on."""


@dataclass
class ImagePolicy:
    runtime: str
    listed: tuple[str, ...] = ()
    server_images: tuple[str, ...] = ("pyflow:latest",)

    @classmethod
    def from_options(cls, runtime: str, images=None) -> "ImagePolicy":
        """From the `images` option (a list, or a comma separated string), else PYFLOW_DOCKER_IMAGES."""
        raw = images if images is not None else os.environ.get("PYFLOW_DOCKER_IMAGES", "")
        names = raw.split(",") if isinstance(raw, str) else list(raw)
        server = os.environ.get("PYFLOW_SERVER_IMAGE") or "pyflow:latest"
        return cls(runtime, tuple(n.strip() for n in names if n and n.strip()), (server,))

    def check(self, client, image: str) -> None:
        """Raise ImageRefused unless `image` may run node code; the engine says what the image is."""
        import docker.errors
        try:
            found = client.images.get(image)
        except docker.errors.ImageNotFound:
            raise ImageRefused(f"image {image!r} is not on the Docker engine; PyFlow does not pull images") from None
        labels = (found.attrs.get("Config") or {}).get("Labels") or {}
        if image in self.server_images or any(labels.get(k) == "server" for k in SERVER_ROLE_LABELS) \
                or self._same_as_server(client, found.id):
            raise ImageRefused(f"image {image!r} is the PyFlow server's own image: node code never runs on it")
        if image == self.runtime or image in self.listed:
            return
        if labels.get("pyflow.role") == REQUIREMENTS_ROLE and image.startswith("pyflow-req:"):
            return
        allowed = ", ".join([self.runtime, *self.listed])
        raise ImageRefused(f"image {image!r} is not on the server's allow-list ({allowed}); the operator adds "
                           f"images with --docker-images")

    def _same_as_server(self, client, image_id: str) -> bool:
        import docker.errors
        for name in self.server_images:
            try:
                if client.images.get(name).id == image_id:
                    return True
            except docker.errors.ImageNotFound:
                continue
        return False


# ------------------------------------------------------------------------------------ wheels on the host


def manylinux_platforms(machine: str, glibc: str) -> list[str]:
    """pip --platform tags a glibc of version `glibc` on `machine` runs: manylinux_2_5 .. that version
    (and the legacy manylinux1/2010/2014 names), plus linux_<machine>."""
    tags = []
    try:
        major, minor = (int(part) for part in glibc.split(".")[:2])
    except ValueError:
        major, minor = 2, 17
    if major == 2:
        tags += [f"manylinux_2_{m}_{machine}" for m in range(minor, 4, -1)]
        legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
        tags += [f"{name}_{machine}" for m, name in legacy.items() if m <= minor]
    return tags + [f"linux_{machine}"]


def download_command(dest: str, target: dict, reqs: tuple[str, ...], index_url: str | None,
                     cert: str | None, per_try: int) -> list[str]:
    """`pip download` of wheels only, for the base image's Python and platform, into `dest`."""
    cmd = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--dest", dest, "--no-input",
           "--disable-pip-version-check", "--python-version", target["python"], "--implementation", "cp",
           "--timeout", str(per_try), "--retries", "1"]
    for platform in manylinux_platforms(target["machine"], target["glibc"]):
        cmd += ["--platform", platform]
    if index_url:
        cmd += ["--index-url", index_url]
    if cert:
        cmd += ["--cert", cert]
    return cmd + list(reqs)


def fetch_wheels(target: dict, reqs: tuple[str, ...], index_url: str | None, cert: str | None,
                 timeout_s: float) -> tuple[bytes | None, str]:
    """The wheels for `reqs` as a tar archive (for put_archive), or (None, pip's words) on failure."""
    with tempfile.TemporaryDirectory(prefix="pyflow-wheels-") as dest:
        per_try = max(3, min(15, int(timeout_s / 4)))
        try:
            done = subprocess.run(download_command(dest, target, reqs, index_url, cert, per_try),
                                  capture_output=True, text=True, timeout=timeout_s,
                                  env={**os.environ, "PIP_NO_CACHE_DIR": "1"})
        except subprocess.TimeoutExpired:
            return None, "timeout"
        if done.returncode != 0:
            return None, (done.stderr or done.stdout)[-1500:].strip()
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            tar.add(dest, arcname=os.path.basename(WHEELS_DIR), filter=_readable)
        return archive.getvalue(), ""


def _readable(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o755 if info.isdir() else 0o644
    return info


def install_command(reqs: tuple[str, ...]) -> list[str]:
    """pip in the build container: only the wheels copied in, never an index."""
    return ["python3", "-m", "pip", "install", "--no-cache-dir", "--disable-pip-version-check", "--no-input",
            "--root-user-action=ignore", "--break-system-packages", "--only-binary=:all:", "--no-index",
            "--find-links", WHEELS_DIR, *reqs]
