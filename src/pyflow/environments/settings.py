"""Where environments live, which package index they come from, and the budgets of a build.

Index settings follow pip's and uv's conventions: options first, else UV_INDEX_URL / PIP_INDEX_URL,
UV_EXTRA_INDEX_URL / PIP_EXTRA_INDEX_URL and UV_FIND_LINKS / PIP_FIND_LINKS (space-separated lists). They
are part of an environment's identity: the same requirements from another index are another environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _env_list(*names: str) -> list[str]:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value.split()
    return []


def _env_flag(*names: str) -> bool:
    return any(os.environ.get(name, "").lower() in ("1", "true", "yes", "on") for name in names)


@dataclass(frozen=True)
class IndexSettings:
    """Where packages come from; `None`/empty means PyPI, as for pip and uv."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False  # only find_links (an offline wheelhouse)

    @classmethod
    def from_environment(cls, index_url: str | None = None, extra_index_urls=(), find_links=(),
                         no_index: bool = False) -> "IndexSettings":
        """Options over the pip/uv environment variables."""
        return cls(index_url=index_url or os.environ.get("UV_INDEX_URL") or os.environ.get("PIP_INDEX_URL") or None,
                   extra_index_urls=tuple(extra_index_urls or _env_list("UV_EXTRA_INDEX_URL", "PIP_EXTRA_INDEX_URL")),
                   find_links=tuple(find_links or _env_list("UV_FIND_LINKS", "PIP_FIND_LINKS")),
                   no_index=bool(no_index) or _env_flag("UV_NO_INDEX", "PIP_NO_INDEX"))

    def identity(self) -> list:
        return [self.index_url or "", list(self.extra_index_urls), list(self.find_links), self.no_index]

    def uv_args(self) -> list[str]:
        args = ["--no-index"] if self.no_index else []
        if self.index_url and not self.no_index:
            args += ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            args += ["--extra-index-url", url]
        for place in self.find_links:
            args += ["--find-links", place]
        return args

    def describe(self) -> str:
        if self.no_index:
            return "only " + ", ".join(self.find_links or ("nothing",))
        return self.index_url or "PyPI"


@dataclass
class EnvironmentSettings:
    """:param envs_dir: the folder of environments (default: `envs` beside the database).
    :param index: the package index settings.
    :param build_timeout_s: a build (resolve + install) that takes longer is ended and fails.
    :param build_disk_mb: a build whose folder grows beyond this is ended and fails.
    :param warm_envs: environments whose warm sandboxes are kept (least recently used closed first).
    :param envs_gb: environments beyond this size are removed, least recently used first: by `pyflow envs
        prune`, and after each new build by the server; the download cache is emptied past a quarter of it.
    :param policy: "allow" (any package), "deny" (none) or a file naming the permitted packages.
    """

    envs_dir: Path
    index: IndexSettings = field(default_factory=IndexSettings.from_environment)
    build_timeout_s: float = 600.0
    build_disk_mb: int = 4096
    warm_envs: int = 4
    envs_gb: float = 20.0
    policy: str = "allow"

    def __post_init__(self):
        self.envs_dir = Path(self.envs_dir)
