"""`pyflow envs list|prune` and the options that say where environments live and come from."""

from __future__ import annotations

import json
import os
from contextlib import closing
from pathlib import Path


def add_environment_options(parser) -> None:
    group = parser.add_argument_group("third-party packages (environments)")
    group.add_argument("--envs-dir", help="where environments live (default: envs/ beside the database, or "
                                          "$PYFLOW_ENVS_DIR)")
    group.add_argument("--index-url", help="package index (default: $UV_INDEX_URL, $PIP_INDEX_URL, else PyPI)")
    group.add_argument("--extra-index-url", action="append", default=[], help="another index (repeatable)")
    group.add_argument("--find-links", action="append", default=[],
                       help="a folder or page of wheels to install from (repeatable)")
    group.add_argument("--no-index", action="store_true", help="install only from --find-links")
    group.add_argument("--warm-envs", type=int, default=None, help="environments kept warm (default 4)")
    group.add_argument("--envs-gb", type=float, default=None, help="environments kept at most, least recently used removed first (default 20)")
    group.add_argument("--env-build-timeout", type=float, default=None, help="seconds a build may take (600)")
    group.add_argument("--env-disk-mb", type=int, default=None, help="disk a build may fill (4096 MB)")
    group.add_argument("--requirements-policy", default=os.environ.get("PYFLOW_REQUIREMENTS_POLICY", "allow"),
                       help="allow (any package), deny (none), or a file listing the permitted packages")


def apply_environment_options(config, args) -> None:
    """The options over `config.environments` (whose defaults come from the environment variables)."""
    from ..environments import IndexSettings
    settings = config.environments
    if getattr(args, "envs_dir", None):
        settings.envs_dir = Path(args.envs_dir)
    if not hasattr(args, "index_url"):
        return
    settings.index = IndexSettings.from_environment(args.index_url, args.extra_index_url, args.find_links,
                                                    args.no_index)
    for option, field in (("warm_envs", "warm_envs"), ("envs_gb", "envs_gb"),
                          ("env_build_timeout", "build_timeout_s"), ("env_disk_mb", "build_disk_mb")):
        if getattr(args, option) is not None:
            setattr(settings, field, getattr(args, option))
    settings.policy = args.requirements_policy


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def cmd_envs(args) -> int:
    from .commands import backend_for
    with closing(backend_for(args)) as backend:
        if args.envs_command == "prune":
            removed = backend.prune_environments({"days": args.days} if args.days is not None else {})["removed"]
            for record in removed:
                print(f"removed {record['key']}  {', '.join(record['requirements'])}  {_size(record['size_bytes'])}")
            print(f"{len(removed)} environment{'s' if len(removed) != 1 else ''} removed")
            return 0
        records = backend.list_environments()
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    for record in records:
        print(f"{record['key']}  {', '.join(record['requirements'])}")
        print(f"    packages: {', '.join(record.get('packages') or [])}")
        print(f"    size {_size(record.get('size_bytes', 0))}, last used {record.get('last_used')}, python "
              f"{record.get('python')}, index {record.get('index')}")
        print(f"    nodespecs: {', '.join(record.get('nodespecs') or []) or '-'}")
    print(f"({len(records)} environment{'s' if len(records) != 1 else ''})")
    return 0
