"""Third-party packages for nodes: per-requirement-set environments, built with uv, locked, bound
read-only into sandboxes. See store.py for the layout and builder.py for what runs while installing."""

from .builder import BuildFailed, uv_binary
from .policy import RequirementsPolicy, RequirementsRefused
from .settings import EnvironmentSettings, IndexSettings
from .store import EnvironmentFailed, EnvironmentStore, lock_packages

__all__ = ["BuildFailed", "EnvironmentFailed", "EnvironmentSettings", "EnvironmentStore", "IndexSettings",
           "RequirementsPolicy", "RequirementsRefused", "lock_packages", "uv_binary"]
