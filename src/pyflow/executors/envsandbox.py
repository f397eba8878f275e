"""Sandboxes with an environment of third-party packages, and the warm pools of them.

An environment's sandbox is the default sandbox plus three things: its `site` folder bound read-only at
/run/pyflow/env (the worker adds it to sys.path after the standard library, so a package cannot
shadow a standard module), the host libraries its extension modules load (bound read-only, see
pyflow/environments/libraries.py), and BLAS/OpenMP thread counts of one (libraries that start threads
at import would otherwise spend the node's process limit and fork badly). Nothing of other environments
or of the host's site-packages is visible.

Warm pools are kept per environment, least recently used closed first beyond `warm_envs`. The zygote
of an environment's sandbox imports the modules its nodespecs import (those the environment provides)
before it forks, so a warm node does not pay numpy's or pandas' import: each node still runs in its
own freshly forked, limited process. Nodespecs that share an environment share these zygotes, as they
share the packages themselves.
"""

from __future__ import annotations

import ast
import logging
import os
import threading
from collections import OrderedDict
from functools import lru_cache

from ..engine.execution import Environment, NodeOutcome, NodeTask
from .channel import Worker

log = logging.getLogger(__name__)

ENV_MOUNT = "/run/pyflow/env"
# An empty directory of the host's that a root server's trampolines bind environments onto, each in a
# mount namespace of its own (so nothing is ever mounted there for the host).
STAGE = "/run/pyflow-environment"
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS")
# Headroom over what an environment's idle zygote measured, for the node's own process to start.
ZYGOTE_HEADROOM = 16 * 1024 * 1024


@lru_cache(maxsize=1024)
def imported_modules(source: str) -> frozenset[str]:
    """Top-level names of the modules `source` imports anywhere (module level or inside functions)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return frozenset()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return frozenset(names)


def environment_sandbox_class():
    """The sandbox executor class with an environment (imported late: sandbox.py imports this module)."""
    from .pool import WorkerExecutor
    from .sandbox import SandboxExecutor

    class EnvironmentSandbox(SandboxExecutor):
        """A pool of sandboxes with one environment bound, sharing the parent's filter, files and cgroups."""

        name = "sandbox"

        def __init__(self, parent: SandboxExecutor, env: Environment, preload: frozenset[str]):
            super().__init__(pool_size=parent.pool_size, max_runs=parent.max_runs,
                             tmp_mb=parent.tmp_bytes // (1024 * 1024), user=parent.uid, python=parent.python,
                             cgroups=False)
            self.gid = parent.gid
            self.env = env
            self.preload = preload
            self._seccomp = parent.seccomp_program()
            self._loop = parent._loop  # the zygote's loop in C, as the parent built it (or None)
            self._files = parent.interpreter_files().extended(env.libraries)
            self._tree = parent._tree
            self._parent = parent
            self.artifacts = parent.artifacts  # values that are not JSON, carried as the parent carries them
            self.warnings = []

        def start(self) -> None:
            """Fill the warm pool; the machine checks were the parent's."""
            try:
                super(SandboxExecutor, self).start()
            except BaseException:
                self.close()
                raise

        def run(self, task: NodeTask, cancel: threading.Event | None = None) -> NodeOutcome:
            return WorkerExecutor.run(self, task, cancel)  # on this pool, never routed again

        def _new_group(self):
            return self._parent._new_group()

        def files(self):
            return self._files

        def staged(self) -> list[list[str]]:
            """The environment's folder may lie where the sandbox user cannot go (beside a database
            under /root): as root, the trampoline binds it onto STAGE first, in a mount namespace of its
            own. As another user, sandboxes run as that user, who can reach it."""
            if os.geteuid() != 0 or self.uid == 0:
                return []
            os.makedirs(STAGE, mode=0o755, exist_ok=True)
            return [[self.env.path, STAGE]]

        def _source(self) -> str:
            return STAGE if self.staged() else self.env.path

        def extra_binds(self) -> list[str]:
            argv = ["--ro-bind", self._source(), ENV_MOUNT]
            for name in THREAD_VARIABLES:
                argv += ["--setenv", name, "1"]
            return argv

        def worker_options(self) -> list[str]:
            options = ["--site", ENV_MOUNT]
            if self.preload:
                options += ["--preload", ",".join(sorted(self.preload))]
            return options

        def _started(self) -> Worker:
            worker = super()._started()
            group = worker.state.cgroup
            if group is not None:  # the zygote holds the preloaded modules: grant it what it uses
                worker.state.base_memory = max(worker.state.base_memory, group.memory_usage() + ZYGOTE_HEADROOM)
            return worker

        def close(self) -> None:
            """End this environment's sandboxes; the cgroup tree is the parent's to remove."""
            self._tree = None
            super().close()

    return EnvironmentSandbox


class EnvironmentPools:
    """Warm sandbox pools per environment, at most `warm_envs` kept (least recently used closed first,
    once no node runs on it). A pool is remade with more modules to preload when a nodespec imports
    one its zygotes have not."""

    def __init__(self, parent, warm_envs: int = 4):
        self.parent = parent
        self.warm_envs = max(0, int(warm_envs))
        self._pools: OrderedDict[str, object] = OrderedDict()
        self._busy: dict[object, int] = {}
        self._retired: list = []
        self._lock = threading.Lock()
        self._making: dict[str, threading.Lock] = {}

    def run(self, task: NodeTask, cancel: threading.Event | None) -> NodeOutcome:
        pool = self._pool_for(task.environment, task.func)
        try:
            return pool.run(task, cancel)
        finally:
            self._done_with(pool)

    def _pool_for(self, env: Environment, source: str):
        """The warm pool for `env` whose zygotes import what `source` does; made (once, whoever asks
        at the same time waits for it) when there is none."""
        wanted = imported_modules(source) & frozenset(env.modules)
        with self._lock:
            making = self._making.setdefault(env.key, threading.Lock())
        with making:
            return self._find_or_make(env, wanted)

    def _find_or_make(self, env: Environment, wanted: frozenset[str]):
        with self._lock:
            pool = self._pools.get(env.key)
            if pool is not None and wanted <= pool.preload:
                self._pools.move_to_end(env.key)
                self._busy[pool] = self._busy.get(pool, 0) + 1
                return pool
            preload = wanted | (pool.preload if pool is not None else frozenset())
        fresh = environment_sandbox_class()(self.parent, env, preload)
        fresh.start()
        with self._lock:
            old = self._pools.get(env.key)
            if old is not None:
                self._retire(old)
            self._pools[env.key] = fresh
            self._busy[fresh] = self._busy.get(fresh, 0) + 1
            while len(self._pools) > max(self.warm_envs, 1):
                _key, evicted = self._pools.popitem(last=False)
                self._retire(evicted)
        return fresh

    def _retire(self, pool) -> None:
        """Close `pool` now when no node runs on it, else when its last node ends. Caller holds the lock."""
        if self._busy.get(pool, 0) == 0:
            self._busy.pop(pool, None)
            threading.Thread(target=pool.close, daemon=True, name="pyflow-env-close").start()
        else:
            self._retired.append(pool)

    def _done_with(self, pool) -> None:
        with self._lock:
            self._busy[pool] -= 1
            if pool in self._retired and self._busy[pool] == 0:
                self._retired.remove(pool)
                self._busy.pop(pool, None)
                pool.close()
            elif self.warm_envs == 0 and self._busy[pool] == 0 and self._pools.get(pool.env.key) is pool:
                self._pools.pop(pool.env.key)
                self._busy.pop(pool, None)
                pool.close()

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._pools)

    def live_pids(self) -> list[int]:
        with self._lock:
            pools = list(self._pools.values()) + list(self._retired)
        return [pid for pool in pools for pid in pool.live_pids()]

    def close(self) -> None:
        with self._lock:
            pools = list(self._pools.values()) + list(self._retired)
            self._pools.clear()
            self._retired.clear()
            self._busy.clear()
        for pool in pools:
            pool.close()
