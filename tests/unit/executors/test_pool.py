"""The warm pool (WorkerExecutor) and the host side of the worker protocol: workers are reused, recycled
after K runs and after any violation, respawned, and a pool that cannot respawn says so instead of
hanging. The pool logic is shared, so each test runs on the sandbox and on unsafe-process with a pool.
"""

from __future__ import annotations

import threading
import time

import pytest

from pyflow.executors.process import ProcessExecutor
from pyflow.executors.channel import TRUNCATED_MARK, compose_answer, parse_value
from tests.support.timing import scaled

from .conftest import make_task, started, wait_until

# Which worker ran the node: its parent's pid and start time (inside or outside a PID namespace).
WHO = ("def func():\n    import os\n    parent = os.getppid()\n"
       "    with open(f'/proc/{parent}/stat') as fh:\n        start = fh.read().rsplit(')', 1)[1].split()[19]\n"
       "    return f'{parent}:{start}'\n")
VIOLATIONS = {
    "timeout": "def func():\n    import time\n    time.sleep(60)\n",
    "crashed": "def func():\n    import os\n    os._exit(9)\n",
    "memory": "def func():\n    return len(bytearray(400 << 20))\n",
    "cancelled": None,
}


@pytest.fixture(params=["sandbox", "unsafe-process"])
def pool(request):
    executor = started(request.param, pool_size=1, max_runs=3)
    yield executor
    executor.close()


def who(executor) -> str:
    outcome = executor.run(make_task(WHO))
    assert outcome.ok, outcome.error
    return outcome.value


def test_a_worker_serves_k_runs_then_is_replaced(pool):
    first = [who(pool) for _ in range(3)]
    assert len(set(first)) == 1
    assert who(pool) != first[0]


def test_a_node_error_keeps_the_worker_warm(pool):
    before = who(pool)
    failed = pool.run(make_task("def func():\n    raise ValueError('plain failure')\n"))
    assert not failed.ok and failed.violation is None
    assert who(pool) == before


@pytest.mark.parametrize("kind", sorted(VIOLATIONS))
def test_any_violation_recycles_the_worker(pool, kind):
    before = who(pool)
    cancel = threading.Event()
    if kind == "cancelled":
        timer = threading.Timer(0.5, cancel.set)
        timer.start()
        outcome = pool.run(make_task("def func():\n    import time\n    time.sleep(60)\n", timeout_s=60), cancel)
        timer.cancel()
        assert outcome.violation == "cancelled"
    else:
        outcome = pool.run(make_task(VIOLATIONS[kind], timeout_s=1, memory_mb=64))
        assert outcome.violation == kind, outcome
    assert who(pool) != before


def test_a_worker_that_could_not_clean_up_is_replaced_before_the_next_run(pool):
    """A worker answers before it cleans up; when it then says the cleanup failed (processes it could
    not kill, a scratch space it could not empty), the next run goes to another worker."""
    before = who(pool)
    worker = pool._idle.queue[0]
    assert worker.cleanup_pending
    real = worker.read_cleanup_report

    def failed_cleanup(deadline, cancel=None):
        assert real(deadline, cancel) is None
        return "scratch space could not be emptied"
    worker.read_cleanup_report = failed_cleanup
    assert who(pool) != before
    assert worker.pid not in pool.live_pids()


def test_workers_respawned_from_short_lived_threads_stay_alive(pool):
    """A parent-death signal follows the thread that started a process: respawns must not die with
    the thread of the run that caused them."""
    thread = threading.Thread(target=pool.run, args=(make_task(VIOLATIONS["crashed"]),))
    thread.start()
    thread.join()
    assert wait_until(lambda: len(pool.live_pids()) == 1, timeout=20)
    replacement = pool.live_pids()[0]
    outcome = pool.run(make_task("def func():\n    return 'alive'\n"))
    assert outcome.ok, outcome.error
    assert pool.live_pids() == [replacement]


class Faulty(ProcessExecutor):
    """A pool whose after-run hook fails: an executor bug, or a counter that cannot be read."""

    def after_run(self, zygote, task, outcome):
        raise RuntimeError("the hook broke")


def test_a_run_that_fails_inside_the_executor_still_hands_its_worker_back():
    executor = Faulty(pool_size=1, max_runs=100)
    executor.start()
    try:
        for _ in range(3):  # each would leave a worker counted live but never idle, and the next run waiting
            outcome = executor.run(make_task("def func():\n    return 1\n"))
            assert not outcome.ok and outcome.error["type"] == "ExecutorError", outcome
            assert "the hook broke" in outcome.error["message"]
        assert wait_until(lambda: len(executor.live_pids()) == 1, timeout=20)
    finally:
        executor.close()


def test_close_ends_every_worker_and_is_safe_twice():
    executor = started("sandbox", pool_size=2)
    pids = executor.live_pids()
    assert len(pids) == 2
    executor.close()
    executor.close()
    assert all(not _alive(pid) for pid in pids)
    outcome = executor.run(make_task("def func():\n    return 1\n"))
    assert not outcome.ok and "closed" in outcome.error["message"]


class Flaky(ProcessExecutor):
    """A pool whose workers stop starting after the first, until `healthy` is set again."""

    def __init__(self, **options):
        super().__init__(**options)
        self.healthy = True
        self.spawned = 0

    def spawn(self):
        self.spawned += 1
        if not self.healthy:
            raise OSError("no worker can start right now")
        return super().spawn()


def test_a_pool_that_cannot_respawn_reports_it_instead_of_hanging():
    executor = Flaky(pool_size=1, max_runs=100)
    executor.start()
    try:
        executor.healthy = False
        assert executor.run(make_task(VIOLATIONS["crashed"])).violation == "crashed"
        started_at = time.monotonic()
        outcome = executor.run(make_task("def func():\n    return 1\n"))
        assert not outcome.ok and "no worker can start right now" in outcome.error["message"]
        assert time.monotonic() - started_at < scaled(5)
        executor.healthy = True
        assert executor.run(make_task("def func():\n    return 'recovered'\n")).value == "recovered"
    finally:
        executor.close()


# ------------------------------------------------------------------------------------------ answers


def test_compose_answer_adds_the_truncation_marker():
    header = {"error": None, "stdout_seen": 5000, "stdout_cap": 1024, "duration_ms": 1.0, "status": None}
    answer, value = compose_answer(header, b"x" * 1024, b'{"ok":true,"error":null}\n42')
    assert answer["ok"] and value == "42"
    assert answer["stdout"] == "x" * 1024 + TRUNCATED_MARK.format(1024)


@pytest.mark.parametrize("result", [b"", b"not json\n1", b'["ok"]\n1', b'{"ok":"yes"}\n1', b'{"ok": tru'])
def test_compose_answer_reads_a_malformed_result_as_the_crash_the_worker_saw(result):
    header = {"error": None, "stdout_seen": 0, "stdout_cap": 1024, "duration_ms": 1.0, "status": 9}
    answer, value = compose_answer(header, b"", result)
    assert not answer["ok"] and value is None
    assert answer["error"]["type"] == "NodeCrashed" and answer["violation"] == "crashed"
    assert answer["error"]["message"] == "the node process was ended by SIGKILL (killed)"


def test_compose_answer_marks_a_memory_error_as_a_memory_violation():
    header = {"error": None, "stdout_seen": 0, "stdout_cap": 1024, "duration_ms": 1.0, "status": None}
    meta = b'{"ok":false,"error":{"type":"MemoryError","message":"memory limit of 64 MB exceeded","traceback":[1]}}'
    answer, value = compose_answer(header, b"", meta + b"\n")
    assert answer["violation"] == "memory" and answer["error"]["traceback"] == ["1"] and value is None


@pytest.mark.parametrize("value, kind, message", [
    ("[" * 100000 + "]" * 100000, "ResultError", "the node returned a value that cannot be read: it is nested "
                                                 "too deeply"),
    ("[1, NaN]", "ResultError", "the node returned a value that cannot be read: it holds NaN, which JSON cannot carry"),
    ('{"a": Infinity}', "ResultError", "the node returned a value that cannot be read: it holds Infinity, which "
                                       "JSON cannot carry"),
    ("-Infinity", "ResultError", "the node returned a value that cannot be read: it holds -Infinity, which JSON "
                                 "cannot carry"),
    (None, "ResultError", "the node returned a value that cannot be read: it is not ASCII JSON (the worker escapes "
                          "every other character)"),
    ("[1, 2", "ResultError", "the node returned a value that cannot be read: Expecting ',' delimiter: line 1 "
                             "column 6 (char 5)"),
    ('"' + "x" * 262144 + '"', "ResultTooLarge", "the return value is 262146 bytes of JSON, over the limit of "
                                                 "256 KiB"),
])
def test_parse_value_turns_whatever_a_node_wrote_into_a_clear_failure(value, kind, message):
    parsed, error = parse_value(value, 256)
    assert parsed is None and error[:2] == (kind, message)
    assert error[2] == ("result_too_large" if kind == "ResultTooLarge" else "crashed")


def test_parse_value_reads_a_value_at_its_limit():
    assert parse_value('{"a":[1,2.5,null]}', 1) == ({"a": [1, 2.5, None]}, None)
    assert parse_value('"' + "x" * 1022 + '"', 1) == ("x" * 1022, None)
    assert parse_value("", 1) == (None, None)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
