"""What the hostile suite needs besides the cases: two ways to run a node (the executor itself, and a real
server), and the checks that a run was contained: the host's files and the server's database unchanged,
no process of a run left alive, no connection reached a listener, the server still serving.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

import requests

from pyflow.engine.execution import NodeOutcome, NodeTask, resolve_limits
from tests.support.waiting import wait_until  # noqa: F401 (used here and by importers)

ROOT = Path(__file__).resolve().parents[2]
SECRET_VAR = "PYFLOW_HOSTILE_SECRET"
HEALTHY = ("def func(x):\n"
           "    import os\n"
           "    left = sorted(os.listdir('.'))\n"
           "    with open('probe.bin', 'wb') as fh:\n"
           "        fh.write(b'x' * 100000)\n"
           "    return {'double': x * 2, 'left': left}\n")


# ------------------------------------------------------------------------------------------ processes


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    comm: str
    state: str
    start: int


def process_table() -> dict[int, Proc]:
    """Every process on the host, read from /proc (the host's, not a sandbox's)."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1:raw.rindex(")")]
        rest = raw[raw.rindex(")") + 2:].split()
        table[int(entry)] = Proc(int(entry), int(rest[1]), comm, rest[0], int(rest[19]))
    return table


def descendants(table: dict[int, Proc], root: int) -> list[Proc]:
    children: dict[int, list[Proc]] = {}
    for proc in table.values():
        children.setdefault(proc.ppid, []).append(proc)
    found, stack = [], [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child.pid)
    return found


SPARE = "pyflow-spare"


def sandbox_leftovers(table: dict[int, Proc], root: int) -> list[Proc]:
    """Processes under `root` that no idle sandbox should hold: inside a bubblewrap sandbox only bwrap
    itself, one worker (the oldest non-bwrap child of bwrap's init) and that worker's one waiting child
    for the next run (named pyflow-spare) may remain between runs; any other live process there is
    something a run left behind. Executors without bwrap yield nothing here."""
    live = [p for p in descendants(table, root) if p.state not in ("Z", "X")]
    by_parent: dict[int, list[Proc]] = {}
    for proc in live:
        by_parent.setdefault(proc.ppid, []).append(proc)
    inside = {p.pid for p in live if _under_bwrap(table, p)}
    allowed = set()
    for parent in (table.get(pid) for pid in by_parent):
        if parent is not None and parent.comm == "bwrap":
            workers = sorted((p for p in by_parent[parent.pid] if p.comm != "bwrap"), key=lambda p: (p.start, p.pid))
            for worker in workers[:1]:
                spares = [p for p in by_parent.get(worker.pid, []) if p.comm == SPARE]
                allowed.update([worker.pid] + [p.pid for p in spares[:1]])
    return [p for p in live if p.pid in inside and p.comm != "bwrap" and p.pid not in allowed]


def _under_bwrap(table: dict[int, Proc], proc: Proc) -> bool:
    seen = 0
    parent = table.get(proc.ppid)
    while parent is not None and seen < 64:
        if parent.comm == "bwrap":
            return True
        parent, seen = table.get(parent.ppid), seen + 1
    return False


def processes_named(comm: str) -> list[Proc]:
    """Live processes anywhere on the host whose name is `comm` (a daemon's chosen name)."""
    return [p for p in process_table().values() if p.comm == comm and p.state not in ("Z", "X")]


# ------------------------------------------------------------------------------------------ listeners


class Listener:
    """A TCP listener that counts connections: proof that a node's connection attempt went nowhere."""

    def __init__(self, host: str):
        self.host = host
        self.sock = socket.create_server((host, 0))
        self.port = self.sock.getsockname()[1]
        self.accepted: list[tuple] = []
        self._thread = threading.Thread(target=self._serve, daemon=True, name=f"canary-{host}")
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return
            self.accepted.append(peer)
            conn.close()

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._thread.join(timeout=5)


def outside_address() -> str | None:
    """This host's own non-loopback address (reachable from the host, never from a sandbox), if any."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: no packet is sent for a UDP connect
        address = probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") else address


# ------------------------------------------------------------------------------------------ the world


class World:
    """Fingerprints of everything a hostile node must not change: host files, the project checkout, the
    server's database (its stored objects, its integrity, no attack marker in its files)."""

    def __init__(self, db: Path, marker: str):
        self.db = db
        self.marker = marker
        python_lib = sorted(Path("/usr/lib").glob("python3*/random.py"))
        self.files = [Path("/etc/passwd"), Path("/etc/shadow"), Path("/etc/hosts"), *python_lib[:1],
                      ROOT / "src/pyflow/executors/worker.py", ROOT / "src/pyflow/executors/sandbox.py",
                      ROOT / "tests/hostile/cases.py"]
        self.absent = [Path(p) / marker for p in ("/", "/etc", "/usr", "/usr/bin", "/tmp", "/root", ROOT,
                                                  ROOT / "src", db.parent)]

    def snapshot(self) -> dict:
        state = {str(path): _digest(path) for path in self.files}
        state.update({f"exists {path}": path.exists() for path in self.absent})
        state["database"] = self.database_state()
        return state

    def database_state(self) -> dict:
        uri = f"file:{self.db}?mode=ro"
        with sqlite3.connect(uri, uri=True, timeout=30) as conn:
            integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
            objects = conn.execute("SELECT * FROM objects ORDER BY 1, 2").fetchall()
            meta = conn.execute("SELECT * FROM meta ORDER BY 1").fetchall()
        conn.close()
        marked = [p.name for p in self.db.parent.glob(self.db.name + "*")
                  if p.is_file() and self.marker.encode() in p.read_bytes()]
        return {"integrity": integrity, "objects": hashlib.sha256(repr(objects).encode()).hexdigest(),
                "meta": meta, "files holding the attack marker": marked}


def _digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return "missing"


# ------------------------------------------------------------------------------------------ runners


def spec_doc(spec_id: str, title: str, func: str, inputs: list[str], limits: dict) -> dict:
    """A nodespec whose input ports are the case's inputs, in order, and one output "out"."""
    return {"id": spec_id, "title": title, "func": func, "limits": limits,
            "port": {"input": [{"name": n, "order": i, "type": "Any"} for i, n in enumerate(inputs)],
                     "output": [{"name": "out", "type": "Any"}]}}


def from_outcome(outcome: NodeOutcome) -> dict:
    """An executor's outcome in the shape of the server's node result."""
    return {"status": "success" if outcome.ok else "fail", "value": outcome.value, "error": outcome.error,
            "stdout": outcome.stdout}


class ExecutorRunner:
    """Runs nodespecs straight through an executor, with limits resolved as the server resolves them."""

    via = "executor"

    def __init__(self, executor, environment=None):
        self.executor = executor
        self.environment = environment  # bound into every node, as the server binds a nodespec's

    def run(self, doc: dict, inputs: dict) -> dict:
        names = [p["name"] for p in doc["port"]["input"]]
        task = NodeTask(node_id="hostile", node_name=doc["title"], spec_id=doc["id"], func=doc["func"],
                        args=[inputs[n] for n in names], arg_names=names, limits=resolve_limits(doc.get("limits")),
                        requirements=tuple(doc.get("requirements") or ()), environment=self.environment)
        return from_outcome(self.executor.run(task))

    def serving(self) -> None:
        doc = spec_doc("hostile.healthy", "healthy", HEALTHY, ["x"], {})
        result = self.run({**doc, "requirements": ["hostilepkg"]} if self.environment else doc, {"x": 21})
        assert result["status"] == "success", f"a normal node failed after the attack: {result}"
        assert result["value"] == {"double": 42, "left": []}, result


class ServerRunner:
    """Runs nodespecs through a real server's node test endpoint (POST /api/nodespecs/<id>/test)."""

    via = "server"

    def __init__(self, live):
        self.live = live
        self.created: set[str] = set()

    def create(self, doc: dict) -> None:
        if doc["id"] in self.created:
            return
        answer = requests.post(self.live.url + "/api/nodespecs", json=doc, timeout=30)
        assert answer.status_code == 201, answer.text
        self.created.add(doc["id"])

    def run(self, doc: dict, inputs: dict) -> dict:
        self.create(doc)
        answer = requests.post(f"{self.live.url}/api/nodespecs/{doc['id']}/test", json={"inputs": inputs},
                               timeout=120)
        assert answer.status_code == 200, answer.text
        node = answer.json()
        return {"status": node["status"], "value": (node.get("outputs") or {}).get("out"),
                "error": node.get("error"), "stdout": node.get("stdout") or ""}

    def serving(self) -> None:
        health = requests.get(self.live.url + "/api/health", timeout=10)
        assert health.status_code == 200 and health.json()["status"] == "ok", health.text
        assert self.live.proc.poll() is None, self.live.log()[-2000:]
        result = self.run(spec_doc("hostile.healthy", "healthy", HEALTHY, ["x"], {}), {"x": 21})
        assert result["status"] == "success", f"a normal node failed after the attack: {result}"
        assert result["value"] == {"double": 42, "left": []}, result


def dumps(result: dict) -> str:
    return json.dumps(result, default=repr)
