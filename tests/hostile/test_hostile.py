"""The hostile-code suite: every case runs as a real nodespec through the executor itself and through a
real server, and must be contained, end in a clear node error, and leave the server serving with its files
and database unchanged and no process of the run alive.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from .cases import Case
from .kernel import CASES
from .support import (Proc, World, dumps, processes_named, process_table, sandbox_leftovers, spec_doc,
                      wait_until)


@pytest.mark.parametrize("via", ["executor", "server"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_node_is_contained(target, case: Case, via: str):
    runner = target.runners[via]
    before = target.world.snapshot()
    for step in case.setup:
        runner.run(step.doc(target.spec_doc), step.values(target.ctx))
    result = runner.run(case.doc(target.spec_doc), case.values(target.ctx))

    assert_clear_outcome(case, result)
    if case.check:
        case.check(target.ctx, result)
    text = dumps(result)
    for secret in (target.ctx["secret"], "root:x:0:0", "SQLite format 3"):
        assert secret not in text, f"the node got hold of {secret!r}: {text[:500]}"
    assert_at_rest()
    for _ in range(case.healthy_after):
        runner.serving()
    assert target.world.snapshot() == before, "the attack changed the host, the project or the database"


def assert_clear_outcome(case: Case, result: dict) -> None:
    """The node's status, and an error that says what happened."""
    if case.error is None:
        assert result["status"] == "success", f"{case.name}: {dumps(result)[:800]}"
        return
    assert result["status"] == "fail", f"{case.name}: the attack was not stopped: {dumps(result)[:800]}"
    error = result["error"] or {}
    said = f"{error.get('type')}: {error.get('message')}"
    assert re.search(case.error, said), f"{case.name}: unclear error {said!r}, expected /{case.error}/"


def assert_at_rest() -> None:
    """No process a run started may still be alive in any sandbox of this test session."""
    me = os.getpid()
    quiet = wait_until(lambda: not sandbox_leftovers(process_table(), me), timeout=10)
    assert quiet, f"processes outlived their run: {sandbox_leftovers(process_table(), me)}"


# ----------------------------------------------------------------------------- the checks can fail


def test_leftover_detector_sees_an_extra_process_in_a_sandbox():
    """A second child of bwrap's init, or a child of the worker other than its one waiting spare, is a
    leftover; bwrap, one idle worker and its spare are not."""
    table = {p.pid: p for p in [
        Proc(10, 1, "pytest", "S", 1), Proc(11, 10, "bwrap", "S", 2), Proc(12, 11, "bwrap", "S", 3),
        Proc(13, 12, "python3", "S", 4), Proc(14, 12, "python3", "S", 9), Proc(15, 13, "pyflow-node", "R", 10),
        Proc(16, 13, "python3", "Z", 11), Proc(17, 10, "python3", "S", 5), Proc(18, 13, "pyflow-spare", "S", 12),
        Proc(19, 13, "pyflow-spare", "S", 13)]}
    assert sorted(p.pid for p in sandbox_leftovers(table, 10)) == [14, 15, 19]


def test_daemon_detector_finds_a_named_process(token):
    name = f"pfx{token}"[:15]
    proc = subprocess.Popen([sys.executable, "-c", "import sys, time\nopen('/proc/self/comm', 'w').write(sys.argv[1])\n"
                             "print('up', flush=True)\ntime.sleep(60)\n", name], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"up\n"
        assert [p.pid for p in processes_named(name)] == [proc.pid]
    finally:
        proc.kill()
        proc.wait()
    assert processes_named(name) == []


def test_world_snapshot_sees_a_changed_database(tmp_path):
    import sqlite3
    db = tmp_path / "pyflow.db"
    with sqlite3.connect(db) as conn:
        conn.executescript("CREATE TABLE meta (key TEXT, value TEXT); CREATE TABLE objects (kind TEXT, id TEXT);"
                           "INSERT INTO objects VALUES ('nodespec', 'a');")
    conn.close()
    world = World(db, "pyflow-hostile-check")
    before = world.snapshot()
    assert world.snapshot() == before
    with open(db, "ab") as fh:
        fh.write(b"pyflow-hostile-check")
    assert world.snapshot() != before
