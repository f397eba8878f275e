"""Fixtures of the hostile suite: for each executor named in PYFLOW_HOSTILE_EXECUTORS (comma list, default
"sandbox"), a real server started with that executor and a secret in its environment, the executor itself
for direct runs, canary listeners, and a context of everything the attacks aim at.

Run with:  .venv/bin/python -m pytest tests/hostile -p no:cacheprovider
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from pyflow.environments import EnvironmentSettings, EnvironmentStore, IndexSettings
from pyflow.executors import create_executor
from tests.support.wheels import make_wheel
from tests.support.server import LiveServer

from .kernel import CASES, resolve_syscalls
from .support import (HEALTHY, ROOT, SECRET_VAR, ExecutorRunner, Listener, ServerRunner, World, outside_address,
                      spec_doc)

# Executors that run node code with the server's own rights: the attacks here (kill(-1) among them) would
# hit the host itself, so they are refused rather than attacked.
NOT_ISOLATING = {"unsafe-process", "inprocess"}


# "sandbox-env": the default sandbox with an environment of a third-party package bound into every node
# (nothing in it may give a node more reach).
WITH_ENVIRONMENT = "sandbox-env"
ENV_REQUIREMENTS = ["hostilepkg"]


def executor_names() -> list[str]:
    raw = os.environ.get("PYFLOW_HOSTILE_EXECUTORS", f"sandbox,{WITH_ENVIRONMENT}")
    return [name.strip() for name in raw.split(",") if name.strip()]


def pytest_generate_tests(metafunc):
    if "executor_name" in metafunc.fixturenames:
        metafunc.parametrize("executor_name", executor_names(), scope="session")


@pytest.fixture(scope="session")
def token() -> str:
    return secrets.token_hex(6)


@pytest.fixture(scope="session")
def canaries():
    local = Listener("127.0.0.1")
    host = outside_address()
    outside = Listener(host) if host else None
    yield {"canary_local": local, "canary_outside": outside, "outside_host": host}
    local.close()
    if outside:
        outside.close()


class Target:
    """One executor under attack: its server, its direct executor, and the context the cases use."""

    def __init__(self, name: str, live: LiveServer, executor, ctx: dict, world: World, environment=None):
        self.name = name
        self.live = live
        self.ctx = ctx
        self.world = world
        self.requirements = ENV_REQUIREMENTS if environment is not None else []
        self.runners = {"executor": ExecutorRunner(executor, environment), "server": ServerRunner(live)}

    def spec_doc(self, *args) -> dict:
        """The case's nodespec, asking for this target's requirements (none for a plain executor)."""
        doc = spec_doc(*args)
        return {**doc, "requirements": self.requirements} if self.requirements else doc

    def create_specs(self) -> None:
        """Store every nodespec up front, so the database must stay exactly as it is during the attacks."""
        server = self.runners["server"]
        server.create(self.spec_doc("hostile.healthy", "healthy", HEALTHY, ["x"], {}))
        for case in CASES:
            for step in (*case.setup, case):
                server.create(step.doc(self.spec_doc))


@pytest.fixture(scope="session")
def target(executor_name, tmp_path_factory, token, canaries):
    if executor_name in NOT_ISOLATING:
        pytest.skip(f"{executor_name} does not isolate node code; the hostile suite would attack this host")
    secret = f"s3cret-{token}"
    workdir = tmp_path_factory.mktemp(f"hostile-{executor_name}")
    kind, args, environment = executor_name, ("--concurrency", "1"), None
    if executor_name == WITH_ENVIRONMENT:
        kind, wheels = "sandbox", workdir / "wheelhouse"
        make_wheel(wheels, "hostilepkg", "1.0", {"hostilepkg/__init__.py": "VALUE = 1\n"})
        args += ("--no-index", "--find-links", str(wheels))
        environment = EnvironmentStore(EnvironmentSettings(workdir / "envs", IndexSettings(
            find_links=(str(wheels),), no_index=True))).environment(ENV_REQUIREMENTS)
    live = LiveServer(workdir, executor=kind, env={SECRET_VAR: secret}, args=args)
    live.start()
    executor = create_executor(kind, pool_size=1)
    try:
        executor.start()
        ctx = context(live, token, secret, canaries)
        target = Target(executor_name, live, executor, ctx, World(live.db, ctx["marker"]), environment)
        target.create_specs()
        yield target
    finally:
        executor.close()
        live.stop()


def context(live: LiveServer, token: str, secret: str, canaries: dict) -> dict:
    python_random = sorted(Path("/usr/lib").glob("python3*/random.py"))
    return {"token": token, "marker": f"pyflow-hostile-{token}", "secret_var": SECRET_VAR, "secret": secret,
            "server_port": int(live.url.rsplit(":", 1)[1]), "server_pid": live.proc.pid, "db": str(live.db),
            "db_dir": str(live.db.parent), "root": str(ROOT), "comm": f"pfd{token}"[:15],
            "python_random": str(python_random[0]) if python_random else "/usr/lib/python3/random.py",
            "needle_a": f"victim{token[:6]}", "needle_b": f"{token[6:]}data", "syscalls": resolve_syscalls(),
            **canaries}
