"""The artifact store: values that are not JSON, as content-addressed files with metadata and previews.

Layout under the store's directory (`--artifacts-dir`, default `artifacts/` beside the database):

    objects/<d0d1>/<digest>.<ext>            the value, as the producing sandbox serialized it (read-only)
    objects/<d0d1>/<digest>.json             metadata: digest, type, format, size, summary, thumbnail
    objects/<d0d1>/<digest>.preview.json     the checked preview
    objects/<d0d1>/<digest>.thumb.png        the checked thumbnail, for images
    work/<sandbox>/in, work/<sandbox>/out    each sandbox's input links (bound read-only) and output place

The digest (sha256) is computed here, never taken from the sandbox. Files move from a sandbox's output
place into `objects/` by rename and into its input place by hard link: the same file system, no copy.
The server never deserializes an artifact; it reads only the checked preview and thumbnail, and streams
the raw file to whoever downloads it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import stat
import tempfile
import time
import uuid
from pathlib import Path

from ..model.artifacts import DIGEST, FORMATS, ArtifactRef, make_ref, summary
from .remote import RemoteMirror, is_url
from .previews import PREVIEW_CAP, THUMBNAIL_CAP, PreviewRefused, check_png, check_png_header, check_preview

log = logging.getLogger(__name__)

CLAIMED_NAME = re.compile(r"^out-[0-9]{1,4}(\.(npy|arrow|png|pickle)|\.preview\.json|\.thumb\.png)$")
GRACE_S = 3600.0  # an unreferenced artifact younger than this may belong to a run still under way


class ArtifactRefused(ValueError):
    """What a sandbox wrote cannot be taken as an artifact: (error type, message) for the node's failure."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


class ArtifactStore:
    """Content-addressed artifact files in one local directory."""

    def __init__(self, root: str | Path, max_bytes: int | None = None, cache_dir: str | Path | None = None):
        """`root` is a directory, or an fsspec URL whose files are kept in the local `cache_dir` too
        (sandboxes are bound to local files)."""
        self.remote = None
        if is_url(root):
            if cache_dir is None:
                raise ValueError(f"artifact store {root}: a URL needs a local cache directory")
            self.remote = RemoteMirror(root)
            root = cache_dir
        self.root = Path(root)
        self.max_bytes = max_bytes
        (self.root / "objects").mkdir(parents=True, exist_ok=True)
        (self.root / "work").mkdir(parents=True, exist_ok=True)

    # -- layout --------------------------------------------------------------------------------------
    def _base(self, digest: str) -> Path:
        if not DIGEST.match(digest):
            raise ValueError(f"not an artifact digest: {digest[:80]!r}")
        return self.root / "objects" / digest[:2] / digest

    def data_path(self, digest: str, fmt: str) -> Path:
        return self._base(digest).with_suffix("." + FORMATS[fmt][0])

    def exists(self, digest: str, fmt: str) -> bool:
        return self._local(self.data_path(digest, fmt))

    def meta(self, digest: str) -> dict | None:
        return _read_json(self._fetched(self._base(digest).with_suffix(".json")))

    def preview(self, digest: str) -> dict | None:
        return _read_json(self._fetched(self._base(digest).with_suffix(".preview.json")))

    def thumbnail(self, digest: str) -> bytes | None:
        try:
            return self._fetched(self._base(digest).with_suffix(".thumb.png")).read_bytes()
        except OSError:
            return None

    def _relative(self, path: Path) -> str:
        return path.relative_to(self.root / "objects").as_posix()

    def _local(self, path: Path) -> bool:
        """Whether `path` is here, fetching it from the remote copy first when there is one."""
        if path.is_file():
            return True
        if self.remote is None or not self.remote.get(self._relative(path), path):
            return False
        if path.suffix[1:] in {f[0] for f in FORMATS.values()}:
            os.chmod(path, 0o444)
        return True

    def _fetched(self, path: Path) -> Path:
        self._local(path)
        return path

    # -- sandbox work places ---------------------------------------------------------------------------
    def workspace(self, uid: int | None = None) -> Path:
        """A fresh work place for one sandbox: `in/` (the server links input artifacts there) and `out/`
        (the sandbox writes its artifacts there), owned by the sandbox's user when the server is root."""
        place = Path(tempfile.mkdtemp(prefix="sbx-", dir=self._work_root(uid)))
        for name in ("in", "out"):
            (place / name).mkdir(mode=0o755)
        os.chmod(place, 0o755)
        if uid is not None and os.geteuid() == 0:
            os.chown(place / "out", uid, -1)
        elif uid is not None and uid != os.geteuid():  # a container user this server cannot give it to
            os.chmod(place / "out", 0o777)
        return place

    def _work_root(self, uid: int | None) -> Path:
        """Where work places are made: in the store, unless a sandbox user other than the server's could
        not pass the directories above it (a root server's store under /root, say); then in a
        directory of the system's temporary place that it can pass (usually the same file system, so
        links and renames still avoid copies; otherwise files are copied)."""
        inside = self.root / "work"
        if uid is None or os.geteuid() != 0 or uid == 0 or _passable(inside):
            return inside
        outside = Path(tempfile.gettempdir()) / f"pyflow-artifacts-{hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:12]}"
        outside.mkdir(mode=0o711, exist_ok=True)
        os.chmod(outside, 0o711)
        return outside

    def link_input(self, ref: ArtifactRef, in_dir: Path) -> str:
        """Hard-link an input artifact into a sandbox's input place; answers its file name there."""
        source = self.data_path(ref.digest, ref.format)
        if not self._local(source):
            raise ArtifactRefused("ArtifactMissing", f"the input artifact {ref.digest[:12]} ({ref.type}) is no longer "
                                                     f"stored; run its upstream node again (without the cache)")
        name = source.name
        target = in_dir / name
        if not target.exists():
            try:
                os.link(source, target)
            except OSError as exc:
                if exc.errno not in (18, 1):  # EXDEV, EPERM: another file system, or links not allowed
                    raise
                shutil.copyfile(source, target)
        return name

    # -- taking in what a sandbox wrote ----------------------------------------------------------------
    def ingest(self, out_dir: Path, claim: dict, limit_bytes: int) -> ArtifactRef:
        """Take the artifact a sandbox claims to have written into `out_dir`: hash it, check it, move it
        into the store, keep its checked preview; answers its reference. Raises ArtifactRefused."""
        if not isinstance(claim, dict):
            raise ArtifactRefused("ResultError", "the node's artifact claim is not an object")
        fmt, kind = claim.get("format"), claim.get("type")
        name = claim.get("file")
        if fmt not in FORMATS or not isinstance(kind, str) or not _claimed(name) or not name.endswith("." + FORMATS[fmt][0]):
            raise ArtifactRefused("ResultError", "the node's artifact claim names no file of a known format")
        kind = kind[:200]
        dir_fd = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            digest, size, head = _hash_regular(dir_fd, name, limit_bytes)
            if fmt == "png":
                try:
                    check_png_header(head)
                except PreviewRefused as exc:
                    raise ArtifactRefused("ArtifactError", f"the node's image is not a PNG: {exc}") from None
            preview, note = self._claimed_preview(dir_fd, claim.get("preview"))
            thumb = self._claimed_thumbnail(dir_fd, claim.get("thumbnail"))
            self._keep(dir_fd, name, digest, fmt)
        finally:
            os.close(dir_fd)
        meta = {"digest": digest, "type": kind, "format": fmt, "size": size,
                "summary": summary(kind, fmt, size, preview), "thumbnail": thumb is not None}
        if note:
            meta["preview_error"] = note
        self._write_beside(digest, meta, preview or {"type": kind, "format": fmt}, thumb)
        return make_ref(meta)

    def _claimed_preview(self, dir_fd: int, name) -> tuple[dict | None, str | None]:
        if not _claimed(name):
            return None, None
        try:
            return check_preview(_read_capped(dir_fd, name, PREVIEW_CAP + 1)), None
        except (OSError, PreviewRefused) as exc:
            log.info("an artifact's preview was refused: %s", exc)
            return None, f"the preview was refused: {exc}"[:300]

    def _claimed_thumbnail(self, dir_fd: int, name) -> bytes | None:
        if not _claimed(name):
            return None
        try:
            data = _read_capped(dir_fd, name, THUMBNAIL_CAP + 1)
            check_png(data)
            return data
        except (OSError, PreviewRefused) as exc:
            log.info("an artifact's thumbnail was refused: %s", exc)
            return None

    def _keep(self, dir_fd: int, name: str, digest: str, fmt: str) -> None:
        """Move the hashed file into objects/ (or drop it when the store has that content already)."""
        target = self.data_path(digest, fmt)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            os.unlink(name, dir_fd=dir_fd)
            os.utime(target)
            return
        try:
            os.rename(name, target, src_dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno != 18:  # EXDEV: the work place is on another file system
                raise
            _copy_out(dir_fd, name, target)
        if os.geteuid() == 0:
            os.chown(target, 0, 0)
        os.chmod(target, 0o444)

    def _write_beside(self, digest: str, meta: dict, preview: dict, thumb: bytes | None) -> None:
        base = self._base(digest)
        if not base.with_suffix(".json").exists():
            written = [(base.with_suffix(".json"), json.dumps(meta).encode()),
                       (base.with_suffix(".preview.json"), json.dumps(preview).encode())]
            if thumb is not None:
                written.append((base.with_suffix(".thumb.png"), thumb))
            for path, data in written:
                _write_atomic(path, data)
            if self.remote is not None:
                for path in (self.data_path(digest, meta["format"]), *(path for path, _ in written)):
                    self.remote.put(path, self._relative(path))

    # -- collection ----------------------------------------------------------------------------------
    def _remove(self, digest: str, path: Path) -> None:
        for extra in (path, *(self._base(digest).with_suffix(s) for s in (".json", ".preview.json", ".thumb.png"))):
            try:
                extra.unlink()
            except FileNotFoundError:
                pass
            if self.remote is not None:
                self.remote.remove(self._relative(extra))

    def objects(self) -> list[tuple[str, Path, os.stat_result]]:
        """(digest, data file, its stat) for every stored artifact."""
        found = []
        for path in (self.root / "objects").glob("??/*"):
            digest, _, ext = path.name.partition(".")
            if ext in {f[0] for f in FORMATS.values()} and DIGEST.match(digest):
                found.append((digest, path, path.stat()))
        return found

    def total_bytes(self) -> int:
        return sum(st.st_size for _, _, st in self.objects())

    def collect(self, referenced: set[str], grace_s: float = GRACE_S) -> dict:
        """Remove every artifact no kept run or cached result references, except the young (a run under
        way may still name them) while the store is within its budget (`--artifacts-gb`); past it, the
        young unreferenced go too, oldest first. Answers what was removed and kept, and whether what
        is kept is still over the budget."""
        removed = freed = kept = 0
        now = time.time()
        young = []
        for digest, path, st in self.objects():
            if digest in referenced:
                kept += st.st_size
            elif now - st.st_mtime < grace_s:
                young.append((st.st_mtime, digest, path, st.st_size))
            else:
                self._remove(digest, path)
                removed, freed = removed + 1, freed + st.st_size
        young.sort()
        total = kept + sum(item[3] for item in young)
        for _, digest, path, size in young:
            if self.max_bytes is None or total <= self.max_bytes:
                kept += size
                continue
            self._remove(digest, path)
            removed, freed, total = removed + 1, freed + size, total - size
        over = self.max_bytes is not None and kept > self.max_bytes
        if over:
            log.warning("artifacts still referenced take %d MB, over the budget of %d MB", kept >> 20, self.max_bytes >> 20)
        return {"removed": removed, "freed_bytes": freed, "kept_bytes": kept, "over_budget": over}


def empty_directory(path: Path) -> None:
    """Empty a sandbox's work place (never following a link it may have planted)."""
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            return
    except OSError:
        return
    for entry in os.scandir(path):
        full = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            for root, dirs, _ in os.walk(full):
                for name in dirs:
                    try:
                        os.chmod(os.path.join(root, name), 0o700, follow_symlinks=False)
                    except (OSError, NotImplementedError):
                        pass
            shutil.rmtree(full, ignore_errors=True)
        else:
            full.unlink(missing_ok=True)


def _passable(path: Path) -> bool:
    """Whether any user may pass through every directory down to `path` (others have x on each)."""
    path = path.resolve()
    return all(os.stat(p).st_mode & 0o001 for p in [path, *path.parents])


def _copy_out(dir_fd: int, name: str, target: Path) -> None:
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dir_fd)
    tmp = _temporary_beside(target)
    with os.fdopen(fd, "rb") as src, open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    os.replace(tmp, target)
    os.unlink(name, dir_fd=dir_fd)


def _claimed(name) -> bool:
    return isinstance(name, str) and CLAIMED_NAME.match(name) is not None


def _hash_regular(dir_fd: int, name: str, limit_bytes: int) -> tuple[str, int, bytes]:
    """(sha256, size, first bytes) of a regular file of the output place, never following a link."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError as exc:
        raise ArtifactRefused("ResultError", f"the node's artifact file cannot be opened: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            raise ArtifactRefused("ResultError", "the node's artifact is not a plain file")
        if st.st_size > limit_bytes:
            raise ArtifactRefused("ResultTooLarge", f"the return value is {st.st_size / 1048576:.1f} MB, over the "
                                                    f"limit of {limit_bytes >> 20} MB")
        head = fh.read(64)
        fh.seek(0)
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    return digest, st.st_size, head


def _read_capped(dir_fd: int, name: str, cap: int) -> bytes:
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError("not a plain file")
        return fh.read(cap)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def _temporary_beside(path: Path) -> Path:
    """A name no other thread or process writing `path` at the same time uses."""
    return path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = _temporary_beside(path)
    tmp.write_bytes(data)
    os.replace(tmp, path)
