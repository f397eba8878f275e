"""Dask over TLS, as the README tells people beyond a private network to run it: a scheduler that
requires encryption and certificates from its own authority; `pyflow worker` and `pyflow serve` given
Dask's TLS settings (files named in the environment, where Dask reads them) run nodes through it; a
client without a certificate, or with one from another authority, is turned away."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pyflow.engine.execution import ExecutorUnavailable
from pyflow.executors import create_executor
from tests.support.server import LiveServer
from tests.support.waiting import wait_until

from .test_server import run_flow_on

ROOT = Path(__file__).resolve().parents[2]
FILES = ("ca_file", "client_cert", "client_key", "worker_cert", "worker_key", "scheduler_cert", "scheduler_key")


def write_authority(folder: Path):
    """A fresh certificate authority and its certificates, in files; returns (Security, {field: path})."""
    from distributed.security import Security
    security = Security.temporary()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths = {}
    for name in FILES:
        paths[name] = folder / f"{name}.pem"
        paths[name].write_text(getattr(security, f"tls_{name}"))
        paths[name].chmod(0o600)
    return security, paths


def tls_environment(paths: dict, role: str) -> dict:
    """Dask's TLS settings as environment variables, for a process of `role` ("client" or "worker")."""
    return {"DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True",
            "DASK_DISTRIBUTED__COMM__TLS__CA_FILE": str(paths["ca_file"]),
            f"DASK_DISTRIBUTED__COMM__TLS__{role.upper()}__CERT": str(paths[f"{role}_cert"]),
            f"DASK_DISTRIBUTED__COMM__TLS__{role.upper()}__KEY": str(paths[f"{role}_key"])}


@pytest.fixture(scope="module")
def authority(tmp_path_factory):
    return write_authority(tmp_path_factory.mktemp("tls") / "authority")


@pytest.fixture(scope="module")
def tls_scheduler(authority):
    from distributed import LocalCluster
    security, _ = authority
    with LocalCluster(n_workers=0, processes=True, protocol="tls", host="127.0.0.1", security=security,
                      dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as cluster:
        assert cluster.scheduler_address.startswith("tls://")
        yield cluster.scheduler_address


def tls_worker(scheduler: str, paths: dict) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **tls_environment(paths, "worker")}
    return subprocess.Popen([sys.executable, "-m", "pyflow", "worker", scheduler, "--nthreads", "1", "--no-nanny",
                             "--name", "tls-worker"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env, start_new_session=True)


def test_a_server_and_a_worker_with_the_authoritys_certificates_run_nodes_over_tls(tmp_path, authority,
                                                                                    tls_scheduler):
    _, paths = authority
    worker = tls_worker(tls_scheduler, paths)
    try:
        with LiveServer(tmp_path, executor="dask", args=("--no-stdlib", "--dask-scheduler", tls_scheduler),
                        env=tls_environment(paths, "client")) as live:
            wait_until(lambda: live.get_json("/api/health")["executor"]["workers"] or worker.poll() is not None,
                       timeout=120, fail="the worker never showed in health")
            assert worker.poll() is None, worker.stdout.read()
            health = live.get_json("/api/health")
            run = run_flow_on(live)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    (address,) = health["executor"]["workers"]
    assert address.startswith("tls://127.0.0.1:") and health["executor"]["scheduler"] == tls_scheduler
    assert run["status"] == "succeeded", run
    assert [n["outputs"]["out"] for n in sorted(run["nodes"], key=lambda n: n["id"])] == [2, 3, 3]
    assert {n["worker"] for n in run["nodes"]} == {address}


def test_a_client_without_a_certificate_is_turned_away(tls_scheduler):
    plain = "tcp://" + tls_scheduler.removeprefix("tls://")
    for address in (tls_scheduler, plain):
        executor = create_executor("dask", scheduler=address, connect_timeout_s=5)
        with pytest.raises(ExecutorUnavailable, match="cannot start the Dask scheduler at"):
            executor.start()


def test_a_server_with_another_authoritys_certificate_refuses_to_start(tmp_path, tls_scheduler):
    _, stranger = write_authority(tmp_path / "stranger")
    live = LiveServer(tmp_path, executor="dask", env=tls_environment(stranger, "client"),
                      args=("--no-stdlib", "--dask-scheduler", tls_scheduler, "--executor-option", "connect_timeout_s=5"))
    with pytest.raises(RuntimeError, match="server exited"):
        live.start(timeout=120)
    assert f"cannot start the Dask scheduler at {tls_scheduler}" in live.log(), live.log()[-2000:]
