"""Server configuration: where data lives, which executor runs nodes, and how many runs at once.

Defaults: the database is $PYFLOW_DB, else $XDG_DATA_HOME/pyflow/pyflow.db (~/.local/share/pyflow/
pyflow.db). The legacy /dumprepo and /loadrepo routes may only touch files under `repo_dir`
($PYFLOW_REPO_DIR, else the `repos` folder beside the database). Who may reach the server (the bound
address, token, allowed hosts and origins) is enforced by server/security.py from the fields below.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..engine.execution import DEFAULT_LIMITS, MAX_LIMITS, Limits
from ..environments import EnvironmentSettings


def data_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "pyflow"


def default_db_path() -> Path:
    return Path(os.environ["PYFLOW_DB"]) if os.environ.get("PYFLOW_DB") else data_home() / "pyflow.db"


def standard_library_dir() -> Path | None:
    """The top-level repository/ folder: $PYFLOW_STDLIB, or found above the package in a checkout."""
    if os.environ.get("PYFLOW_STDLIB"):
        return Path(os.environ["PYFLOW_STDLIB"])
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "repository"
        if (candidate / "nodespecs").is_dir():
            return candidate
    return None


@dataclass
class Config:
    db_path: Path = field(default_factory=default_db_path)
    repo_dir: Path | None = None
    stdlib_dir: Path | None = field(default_factory=standard_library_dir)
    load_stdlib: bool = True
    executor: str = "sandbox"
    executor_options: dict = field(default_factory=dict)
    concurrency: int = field(default_factory=lambda: os.cpu_count() or 1)
    max_queue: int = 100
    max_running: int = 2
    retention: int = 100
    cache_entries: int = 100_000  # cached node results kept, least recently used dropped first
    cache_mb: int = 1024  # and at most this much of them; a result over an eighth of it is not cached
    default_limits: Limits = DEFAULT_LIMITS
    max_limits: Limits = MAX_LIMITS
    max_body_mb: int = 32
    sync_timeout_s: float = 600.0  # a synchronous run (or node test) answers 503 after this long
    min_free_mb: float = 64.0  # below this much free disk beside the database, health fails, runs wait
    watchdog_s: float = 1.0  # how often dead run threads are looked for (and restarted)
    # Exposure: see server/security.py for the rules these settings feed.
    bind_host: str = "127.0.0.1"
    token: str | None = field(default_factory=lambda: os.environ.get("PYFLOW_TOKEN") or None)
    token_file: Path | None = None  # where a generated token is kept; default: <database stem>.token
    require_token: bool = False  # a token is always required beyond loopback; this asks for it on loopback
    allowed_hosts: list[str] = field(default_factory=list)  # Host names served besides the bound address
    cors_origins: list[str] = field(default_factory=list)  # other sites' origins allowed to call the API
    log_format: str = "text"  # or "json": one object per line
    # Third-party packages (see pyflow/environments): by default in `envs` beside the database.
    environments: EnvironmentSettings | None = None
    artifacts_dir: Path | str | None = None  # values that are not JSON: a directory (default: `artifacts` beside
    # the database) or an fsspec URL, kept locally in `artifacts-cache` beside the database
    artifacts_gb: float = 10.0  # the collector warns when what is still referenced takes more

    @property
    def cache_bytes(self) -> int:
        return self.cache_mb * 1024 * 1024

    def __post_init__(self):
        self.db_path = Path(self.db_path)
        if self.repo_dir is None:
            self.repo_dir = Path(os.environ.get("PYFLOW_REPO_DIR") or self.db_path.parent / "repos")
        self.repo_dir = Path(self.repo_dir)
        self.token_file = Path(self.token_file) if self.token_file else self.db_path.with_suffix(".token")
        if self.environments is None:
            self.environments = EnvironmentSettings(Path(os.environ.get("PYFLOW_ENVS_DIR") or self.db_path.parent / "envs"))
        if not (isinstance(self.artifacts_dir, str) and "://" in self.artifacts_dir):
            self.artifacts_dir = Path(self.artifacts_dir or self.db_path.parent / "artifacts")

    @property
    def artifacts_cache_dir(self) -> Path:
        return self.db_path.parent / "artifacts-cache"

    @property
    def artifacts_bytes(self) -> int:
        return int(self.artifacts_gb * 1024 ** 3)
