"""Many clients at once against a real server: 20 threads, 200 mixed requests each.

Reads, creates, read-modify-write updates with If-Match (and deliberately stale ones), deletes, imports,
runs and event streams interleave. What must hold: no answer is a 5xx, no answer mentions a locked
database, and nothing is lost: every counter ends at exactly the number of updates the server
acknowledged, every object a client created and did not delete is there, and every deleted one is gone.
"""

from __future__ import annotations

import random
import threading
from collections import Counter

import pytest
import requests

from pyflow.cli.client import run_events
from tests.support.server import LiveServer

THREADS = 20
REQUESTS = 200
COUNTERS = 4
WRITE = {"X-Requested-With": "pyflow-tests"}
INC = {"id": "cc.inc", "title": "Inc", "func": "def func(a):\n    return a + 1\n",
       "port": {"input": [{"name": "a", "type": "Int"}], "output": [{"name": "out", "type": "Int"}]}}


def counter_flow(index: int, count: int = 0) -> dict:
    """A flow whose description holds a counter: what a lost update would lose."""
    return {"id": f"cc.counter{index}", "name": f"Counter {index}", "description": str(count),
            "nodes": [{"id": "n", "spec_id": "cc.inc", "ports": [{"name": "a", "value": "1"}]}], "links": []}


@pytest.fixture(scope="module")
def busy(tmp_path_factory):
    args = ("--no-stdlib", "--max-queue", "1000", "--max-running", "2")
    with LiveServer(tmp_path_factory.mktemp("concurrency"), args=args) as live:
        assert requests.post(f"{live.url}/api/nodespecs", json=INC, headers=WRITE).status_code == 201
        for index in range(COUNTERS):
            assert requests.post(f"{live.url}/api/flows", json=counter_flow(index), headers=WRITE).status_code == 201
        yield live


class Client:
    """One thread's session, keeping account of what the server acknowledged."""

    def __init__(self, url: str, number: int, seed: int):
        self.url, self.number = url, number
        self.http = requests.Session()
        self.random = random.Random(seed)
        self.increments: Counter = Counter()
        self.kept: set[str] = set()
        self.deleted: set[str] = set()
        self.statuses: Counter = Counter()
        self.problems: list[str] = []
        self.made = 0

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        resp = self.http.request(method, self.url + path, timeout=120, **kwargs)
        self.statuses[resp.status_code] += 1
        if resp.status_code >= 500 or "locked" in resp.text:
            self.problems.append(f"{method} {path}: {resp.status_code} {resp.text[:300]}")
        return resp

    def increment(self) -> None:
        index = self.random.randrange(COUNTERS)
        got = self.call("GET", f"/api/flows/cc.counter{index}")
        doc = got.json()
        doc["description"] = str(int(doc["description"]) + 1)
        put = self.call("PUT", f"/api/flows/cc.counter{index}", json=doc, headers={**WRITE, "If-Match": got.headers["ETag"]})
        if put.status_code == 200:
            self.increments[index] += 1
        elif put.status_code != 412:
            self.problems.append(f"increment: {put.status_code} {put.text[:200]}")

    def stale_update(self) -> None:
        index = self.random.randrange(COUNTERS)
        resp = self.call("PUT", f"/api/flows/cc.counter{index}", json=counter_flow(index, -1),
                         headers={**WRITE, "If-Match": '"1"'})
        if resp.status_code != 412:
            self.problems.append(f"a stale If-Match was accepted: {resp.status_code}")

    def create(self) -> None:
        self.made += 1
        doc = {**INC, "id": f"cc.t{self.number}.s{self.made}", "title": f"Made {self.made}"}
        if self.call("POST", "/api/nodespecs", json=doc, headers=WRITE).status_code == 201:
            self.kept.add(doc["id"])

    def delete(self) -> None:
        if not self.kept:
            return self.create()
        victim = self.random.choice(sorted(self.kept))
        if self.call("DELETE", f"/api/nodespecs/{victim}", headers=WRITE).status_code in (200, 204):
            self.kept.discard(victim)
            self.deleted.add(victim)

    def import_some(self) -> None:
        self.made += 1
        ids = [f"cc.t{self.number}.i{self.made}.{k}" for k in range(3)]
        bundle = {"nodespec": {i: {**INC, "id": i} for i in ids}, "flow": {}}
        if self.call("POST", "/api/repository/import?mode=merge", json=bundle, headers=WRITE).status_code == 200:
            self.kept.update(ids)

    def run_and_follow(self) -> None:
        index = self.random.randrange(COUNTERS)
        resp = self.call("POST", f"/api/flows/cc.counter{index}/runs", json={"cache": self.random.random() < 0.5},
                         headers=WRITE)
        if resp.status_code == 429:
            return
        run_id = resp.json()["id"]
        with self.http.get(f"{self.url}/api/runs/{run_id}/events", stream=True, timeout=120) as stream:
            kinds = [event["event"] for event in run_events(stream.iter_content(chunk_size=None))]
        if kinds[-1:] != ["run_finished"]:
            self.problems.append(f"run {run_id}: the stream ended without run_finished")

    def read(self) -> None:
        path = self.random.choice(["/api/flows", "/api/nodespecs/tree", "/api/runs?limit=5", "/api/health",
                                   "/api/nodespecs/cc.inc", "/api/repository/export"])
        self.call("GET", path)

    def work(self) -> None:
        actions = [(self.increment, 30), (self.stale_update, 5), (self.create, 15), (self.delete, 8),
                   (self.import_some, 4), (self.run_and_follow, 3), (self.read, 35)]
        chosen = self.random.choices([a for a, _ in actions], weights=[w for _, w in actions], k=REQUESTS)
        try:
            for action in chosen:
                action()
        except Exception as exc:  # a client that broke must fail the test, not vanish
            self.problems.append(f"client {self.number} stopped: {exc!r}")


def test_twenty_clients_lose_nothing_and_see_no_server_error(busy):
    clients = [Client(busy.url, n, seed=1000 + n) for n in range(THREADS)]
    threads = [threading.Thread(target=c.work, name=f"client-{c.number}") for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    problems = [p for c in clients for p in c.problems]
    assert not problems, problems[:10]
    for index in range(COUNTERS):
        stored = requests.get(f"{busy.url}/api/flows/cc.counter{index}").json()["description"]
        assert int(stored) == sum(c.increments[index] for c in clients), f"counter {index} lost updates"
    ids = {s["id"] for s in requests.get(f"{busy.url}/api/nodespecs").json()}
    kept = set().union(*(c.kept for c in clients))
    deleted = set().union(*(c.deleted for c in clients))
    assert kept <= ids and not (deleted & ids)
    statuses = sum((c.statuses for c in clients), Counter())
    assert statuses[200] > THREADS * REQUESTS // 3 and statuses[412] > 0, statuses
