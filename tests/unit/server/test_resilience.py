"""Over HTTP: a synchronous run past its deadline, a failing health check and a full disk answer 503 with
`Retry-After` and a JSON error naming what failed; the server recovers by itself when space returns.

The service runs nodes on the in-process executor (the server itself refuses it), behind the real app."""

import os
import sqlite3
import subprocess

import pytest

from pyflow.server import create_app
from tests.unit.service.support import finished, first, gated, make_service, single


def client_for(service):
    return create_app(service).test_client()


@pytest.mark.parametrize("route", ["/api/flows/gated/run", "/api/run", "/runflow"])
def test_a_synchronous_run_past_its_deadline_answers_503_naming_the_run(tmp_path, closing, route):
    service = make_service(tmp_path, sync_timeout_s=0.2)
    closing(service)
    gate = tmp_path / "gate"
    service.upsert("flow", {**gated(gate), "id": "gated"})
    body = {"flow": gated(gate)} if route == "/api/run" else gated(gate) if route == "/runflow" else {}
    answer = client_for(service).post(route, json=body)
    assert answer.status_code == 503 and int(answer.headers["Retry-After"]) >= 1
    error = answer.get_json()
    assert error["run"] in error["error"] and error["details"] == []
    gate.touch()
    assert finished(service, error["run"])["status"] == "succeeded"


def test_a_node_test_past_its_deadline_answers_503(tmp_path, closing):
    service = make_service(tmp_path, sync_timeout_s=0.2)
    closing(service)
    gate = tmp_path / "gate"
    answer = client_for(service).post("/api/nodespecs/t.gate/test", json={"inputs": {"path": str(gate)}})
    assert answer.status_code == 503 and "Retry-After" in answer.headers and "t.gate" in answer.get_json()["error"]
    gate.touch()


def test_health_answers_503_naming_the_failing_part(tmp_path, closing):
    service = make_service(tmp_path, min_free_mb=10 ** 12)
    closing(service)
    answer = client_for(service).get("/api/health")
    assert answer.status_code == 503 and "Retry-After" in answer.headers
    body = answer.get_json()
    assert "disk" in body["error"] and body["details"][0]["path"] == "/checks/disk"
    assert body["checks"]["runs"]["ok"] and not body["checks"]["disk"]["ok"]


# ------------------------------------------------------------------------------------------- disk full
@pytest.fixture()
def small_disk(tmp_path):
    """A 4 MiB tmpfs, mounted for this test (root only)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False, capture_output=True)


def test_a_full_disk_fails_runs_refuses_new_ones_and_recovers_when_space_returns(small_disk, caplog):
    filler = small_disk / "filler"
    filler.write_bytes(os.urandom(1 << 20))
    service = make_service(small_disk, min_free_mb=1 / 16)
    try:
        client = client_for(service)
        service.upsert("flow", {**single("t.text", n=1), "id": "small"})
        kept = client.post("/api/run", json={"flow": single("t.text", n=10)}).get_json()
        assert kept["status"] == "succeeded"
        for size in range(1_500_000, 1_500_100):  # a few MiB each, until the disk is full
            answer = client.post("/api/run", json={"flow": single("t.text", n=size), "cache": False})
            assert answer.status_code == 200, answer.get_json()
            if answer.get_json()["status"] != "succeeded":
                break
        failed = answer.get_json()
        assert failed["status"] == "failed" and "disk full" in failed["reason"], failed
        assert "rollback" not in failed["reason"]

        small = {"flow": single("t.text", n=1)}
        for route, body in (("/api/run", small), ("/api/runs", small), ("/api/flows/small/runs", {}),
                            ("/api/flows/small/run", {})):
            refused = client.post(route, json=body)
            assert refused.status_code == 503 and int(refused.headers["Retry-After"]) >= 1, refused.get_json()
            assert "disk" in refused.get_json()["error"]
        health = client.get("/api/health")
        assert health.status_code == 503 and "disk" in health.get_json()["error"]

        filler.unlink()  # space returns
        again = first(lambda: client.post("/api/run", json={"flow": single("t.text", n=4)}),
                      lambda answer: answer.status_code == 200)
        assert again and again.get_json()["status"] == "succeeded"
        assert client.get("/api/health").status_code == 200
        assert client.get(f"/api/runs/{kept['run_id']}").get_json()["nodes"][0]["outputs"] == {"out": "x" * 10}
        assert client.get(f"/api/runs/{failed['run_id']}").get_json()["status"] == "failed"
    finally:
        service.close()
    check = sqlite3.connect(small_disk / "db.sqlite")
    assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    check.close()
