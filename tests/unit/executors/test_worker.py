"""The worker (zygote) on its own: its protocol over pipes, how it settles a run, what it leaves behind in
its memory and its scratch space, and the pure helpers that word results.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from pyflow.executors import worker
from pyflow.executors.channel import Worker, WorkerDied, compiled_loop, worker_path

from .conftest import make_task, wait_until

SCAVENGER = '''
def func(first, second):
    import ctypes
    first, second = first.encode(), second.encode()
    hits = []
    for line in open("/proc/self/maps"):
        span, perms = line.split()[:2]
        if not perms.startswith("rw"):
            continue
        low, high = (int(x, 16) for x in span.split("-"))
        data = ctypes.string_at(low, high - low)
        at = data.find(first)
        while at >= 0:
            end = at + len(first)
            if data[end:end + 1] == b"-" and data[end + 1:end + 1 + len(second)] == second:
                hits.append(span)
            at = data.find(first, at + 1)
    return hits
'''


def start_worker(tmp_path, preload: str = "", loop: str | None = None) -> Worker:
    """A bare worker process (no sandbox), optionally with modules already imported in the zygote, and
    serving with the loop in C at `loop`."""
    argv = ["--loop", loop] if loop else []
    code = (f"import runpy, sys{', ' + preload if preload else ''}\nsys.argv[1:] = {argv!r}\n"
            f"runpy.run_path({str(worker_path())!r}, run_name='__main__')")
    proc = subprocess.Popen([sys.executable, "-I", "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            cwd=tmp_path, start_new_session=True)
    zygote = Worker(proc, "test worker")
    zygote.wait_ready()
    return zygote


@pytest.fixture(scope="module")
def loop_library(tmp_path_factory) -> str:
    """The zygote's loop in C, built as the sandbox executor builds it."""
    built = compiled_loop()
    if built is None:
        pytest.skip("no C compiler here to build the zygote's loop in C (make installs gcc)")
    path = tmp_path_factory.mktemp("loop") / "loop.so"
    path.write_bytes(built)
    return str(path)


@pytest.fixture(params=["python", "c"])
def zygote(request, tmp_path):
    """A worker serving with its loop in Python, then one serving with its loop in C."""
    z = start_worker(tmp_path, loop=request.getfixturevalue("loop_library") if request.param == "c" else None)
    assert z.info["loop"] == request.param
    yield z
    z.kill()


def ask(zygote: Worker, task, scratch=None, **extra) -> tuple[dict, bytes]:
    """Run `task` on the worker. The loop in C serves a control frame only once Python has read one like
    it: on such a worker the task runs twice, and the second answer (the loop's) is returned."""
    payload = {**task.payload(), "scratch": str(scratch) if scratch else None, **extra}
    if zygote.info.get("loop") == "c":
        zygote.request(payload, time.monotonic() + task.limits.timeout_s + 5, None)
    return zygote.request(payload, time.monotonic() + task.limits.timeout_s + 5, None)


def test_ready_frame_names_the_worker(zygote):
    assert zygote.info["ready"] is True and zygote.info["python"].count(".") == 2


def test_one_worker_serves_many_runs_each_in_a_fresh_child(zygote):
    pids = set()
    for n in range(3):
        header, value = ask(zygote, make_task("def func(n):\n    import os\n    return [n, os.getpid()]\n", n))
        assert header["ok"] and json.loads(value)[0] == n
        pids.add(json.loads(value)[1])
    assert len(pids) == 3 and zygote.pid not in pids


def test_children_are_reseeded_even_when_the_zygote_imported_random(tmp_path):
    """Forked children share the zygote's random state unless reseeded after fork."""
    z = start_worker(tmp_path, preload="random")
    try:
        source = "def func():\n    import random, sys\n    return [random.getrandbits(64), 'random' in sys.modules]\n"
        answers = [json.loads(ask(z, make_task(source))[1]) for _ in range(3)]
    finally:
        z.kill()
    assert all(preloaded for _, preloaded in answers)
    assert len({bits for bits, _ in answers}) == 3


def test_no_earlier_run_data_is_left_in_memory_a_later_child_inherits(zygote):
    """Inputs, output and results of one run must not be readable by the next run's node."""
    first, second = "earlier", "run-secret-9f3a"
    header, _ = ask(zygote, make_task("def func(s):\n    print(s)\n    return s + '|' + s\n", f"{first}-{second}"))
    assert header["ok"]
    header, value = ask(zygote, make_task(SCAVENGER, first, second))
    assert header["ok"], header
    assert json.loads(value) == []


def at_rest(zygote: Worker) -> None:
    """Wait until the worker has cleaned up after its last run and waits for the next task."""
    if zygote.cleanup_pending:
        assert zygote.read_cleanup_report(time.monotonic() + 10) is None
    assert wait_until(lambda: "pipe_read" in open(f"/proc/{zygote.pid}/wchan").read(), timeout=10)


def test_the_zygote_keeps_no_descriptor_of_a_finished_run(zygote):
    """Each run opens two pipes and a pidfd in the zygote: all of them are closed after it."""
    def descriptors() -> int:
        at_rest(zygote)
        return len(os.listdir(f"/proc/{zygote.pid}/fd"))
    task = make_task("def func():\n    print('out')\n    return 1\n")
    for _ in range(3):
        assert ask(zygote, task)[0]["ok"]
    before = descriptors()
    for _ in range(20):
        assert ask(zygote, task)[0]["ok"]
    assert descriptors() == before


def test_a_run_is_answered_before_it_is_cleaned_up_and_the_cleanup_is_reported(zygote, tmp_path):
    """The answer does not wait for the child's exit, the sweep or the scratch space: the worker says
    afterwards, in a frame of its own, whether the cleanup went well, and reads no task before that."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    header, value = ask(zygote, make_task("def func():\n    open('left.txt', 'w').write('x')\n    return 7\n"),
                        scratch=scratch)
    assert header["ok"] and value == "7" and zygote.cleanup_pending
    assert zygote.read_cleanup_report(time.monotonic() + 10) is None and not zygote.cleanup_pending
    assert list(scratch.iterdir()) == []


def test_scratch_space_is_emptied_after_each_run_even_when_booby_trapped(zygote, tmp_path):
    scratch = tmp_path / "scratch"
    outside = tmp_path / "outside"
    scratch.mkdir()
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    trap = ("def func(outside):\n    import os\n    os.makedirs('a/b/c')\n    open('a/b/c/f', 'w').write('x')\n"
            "    os.symlink(outside, 'dirlink')\n    os.symlink(outside + '/keep.txt', 'filelink')\n"
            "    os.symlink(outside, 'a/b/inner')\n    os.chmod('a/b/c', 0)\n    os.chmod('a/b', 0)\n"
            "    os.chmod('a', 0)\n    return sorted(os.listdir('.'))\n")
    header, value = ask(zygote, make_task(trap, str(outside)), scratch=scratch)
    assert header["ok"], header
    assert json.loads(value) == ["a", "dirlink", "filelink"]
    assert not header.get("recycle") and zygote.read_cleanup_report(time.monotonic() + 10) is None
    assert list(scratch.iterdir()) == []
    assert (outside / "keep.txt").read_text() == "keep"
    assert sorted(p.name for p in outside.iterdir()) == ["keep.txt"]


def test_stdout_and_result_are_capped_and_the_child_killed_on_overflow(zygote):
    header, _ = ask(zygote, make_task("def func():\n    print('y' * 10000)\n    return 1\n", stdout_kb=1))
    assert header["ok"] and header["stdout"].endswith("[... output truncated at 1024 bytes ...]\n")
    assert len(header["stdout"]) == 1024 + len("\n[... output truncated at 1024 bytes ...]\n")
    header, value = ask(zygote, make_task("def func():\n    return 'z' * (4 << 20)\n", result_kb=16))
    assert not header["ok"] and header["error"]["type"] == "ResultTooLarge" and value is None


def test_a_forged_or_broken_result_reads_as_a_crash(zygote):
    """The result line comes from node code: anything malformed is a crash, never trusted."""
    forge = ("def func():\n    import os\n    fd = max(int(f) for f in os.listdir('/proc/self/fd') if int(f) > 2)\n"
             "    os.write(fd, b'{not json\\n')\n    os._exit(0)\n")
    header, value = ask(zygote, make_task(forge))
    assert not header["ok"] and header["error"]["type"] == "NodeCrashed" and value is None


def test_a_malformed_control_frame_is_answered_and_the_worker_asks_to_be_replaced(zygote):
    node = json.dumps({"func": "def func():\n    return 1\n", "args": []}).encode()
    zygote._write(worker.HEADER.pack(5) + b"{bad}" + worker.HEADER.pack(len(node)) + node)
    header = json.loads(zygote._read_frame(time.monotonic() + 10, None, 1 << 20, "any"))
    assert header["error"]["type"] == "WorkerError" and header["recycle"]
    zygote._read_frame(time.monotonic() + 10, None, 1 << 20, "any")
    zygote._read_frame(time.monotonic() + 10, None, 1 << 20, "any")
    assert json.loads(zygote._read_frame(time.monotonic() + 10, None, 1 << 20, "any")) == {"recycle": "worker error"}
    assert wait_until(lambda: [p for p in children(zygote.pid) if p != spare_of(zygote.pid)] == [], timeout=10)


def test_a_task_cut_short_is_answered_and_ends_the_worker(zygote):
    """A node frame that ends early leaves the stream out of step: the worker says so and ends."""
    zygote._write(worker.HEADER.pack(2) + b"{}" + worker.HEADER.pack(100) + b'{"func": "')
    zygote.proc.stdin.close()
    header = json.loads(zygote._read_frame(time.monotonic() + 10, None, 1 << 20, "any"))
    assert header["error"]["type"] == "WorkerError"
    for _ in range(3):
        zygote._read_frame(time.monotonic() + 10, None, 1 << 20, "any")
    with pytest.raises(WorkerDied):
        zygote._read_frame(time.monotonic() + 10, None, 1 << 20, "any")


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as fh:
        return [int(p) for p in fh.read().split()]


def spare_of(pid: int) -> int | None:
    """The worker's waiting child for its next run, if it has forked one yet."""
    for child in children(pid):
        try:
            with open(f"/proc/{child}/comm") as fh:
                if fh.read().strip() == "pyflow-spare":
                    return child
        except OSError:
            pass
    return None


# ------------------------------------------------------------------------------------------ helpers


def test_encode_value_names_what_json_cannot_carry():
    assert worker._encode_value({"a": [1, "b"]}, 1000) == (b'{"a":[1,"b"]}', None)
    assert worker._encode_value({1, 2}, 1000)[1]["message"] == "a return value of type set cannot be carried as JSON"
    assert "nan or infinity" in worker._encode_value(float("inf"), 1000)[1]["message"]
    assert worker._encode_value("x" * 2000, 1024)[1]["type"] == "ResultTooLarge"
    assert "4300" in worker._encode_value(10 ** 5000, 10 ** 6)[1]["message"]

    data, error = worker._encode_value({(1, 2): "tuple key"}, 1000)
    assert data is None and error["type"] == "TypeError"


def test_clean_scratch_never_follows_symlinks(tmp_path):
    scratch, outside = tmp_path / "s", tmp_path / "o"
    scratch.mkdir()
    outside.mkdir()
    (outside / "f").write_text("x")
    outside.chmod(0o755)
    os.symlink(outside, scratch / "link")
    (scratch / "d").mkdir()
    os.symlink(outside, scratch / "d" / "inner")
    assert worker.clean_scratch(str(scratch)) is True
    assert list(scratch.iterdir()) == [] and (outside / "f").exists()
    assert outside.stat().st_mode & 0o777 == 0o755


def test_clean_scratch_gives_an_empty_place_back_its_owners_rights(tmp_path):
    """A node that left nothing but took away its own write right on the place: the next node must still
    be able to write there."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    scratch.chmod(0o500)
    assert worker.clean_scratch(str(scratch)) is True
    assert scratch.stat().st_mode & 0o700 == 0o700


def test_a_spares_rehearsal_leaves_nothing_for_the_node_to_find(zygote):
    """The spare goes through a run on made-up data before its task arrives: no name, source line or
    variable of it is left where node code would see it."""
    source = ("def func():\n    import linecache, os\n"
              "    return [sorted(k for k in globals() if not k.startswith('__')),\n"
              "            [name for name in linecache.cache if 'rehearsal' in name], os.environ.get('TMPDIR')]\n")
    for _ in range(2):  # the first run may use a child forked on demand; the second a rehearsed spare
        header, value = ask(zygote, make_task(source))
        names, lines, tmpdir = json.loads(value)
    assert names == ["func"] and lines == [] and tmpdir is None


def test_a_worker_told_it_owns_a_pid_namespace_refuses_to_start_unless_it_is_its_pid_1(tmp_path):
    """After every run the worker of a sandbox or container kills every process it can signal but itself
    (kill(-1)): right as the namespace's pid 1, ruinous anywhere else. Started with --pid-namespace
    outside one, it says so and ends before serving anything."""
    proc = subprocess.run([sys.executable, "-I", str(worker_path()), "--pid-namespace"], input=b"",
                          capture_output=True, cwd=tmp_path, timeout=30)
    assert proc.returncode == 2 and proc.stdout == b""
    assert b"pid 1" in proc.stderr


def test_a_control_frame_like_the_last_is_not_parsed_again(monkeypatch):
    """The zygote reads limits and scratch places from each control frame, but parses one only when it
    differs from the last: a parse writes to pages the zygote shares with the child it forks next.
    What it keeps is those two values, never the frame (which can name a run's artifacts)."""
    parsed = []
    real = worker.json.loads
    monkeypatch.setattr(worker.json, "loads", lambda text: parsed.append(text) or real(text))
    monkeypatch.setattr(worker, "_LAST_TERMS", [None, None])
    frame = json.dumps({"limits": {"timeout_s": 3}, "scratch": "/tmp", "scratch_dirs": ["/dev/shm"],
                        "artifacts": {"inputs": [{"name": "secret-name"}]}}).encode()
    assert worker.task_terms(frame) == ({"timeout_s": 3}, ["/tmp", "/dev/shm"])
    assert worker.task_terms(bytes(frame)) == ({"timeout_s": 3}, ["/tmp", "/dev/shm"])
    assert len(parsed) == 1
    other = json.dumps({"limits": {"timeout_s": 4}, "scratch": "/tmp"}).encode()
    assert worker.task_terms(other) == ({"timeout_s": 4}, ["/tmp"])
    assert len(parsed) == 2
    assert "secret-name" not in repr(worker._LAST_TERMS)


class _Collected:
    """What _run_header reads of a collector."""

    def __init__(self, status=None, seen=5, overflow=False):
        self.status, self.result_overflow = status, overflow
        self.stdout = type("Out", (), {"seen": seen, "cap": 1024})()


def test_the_run_header_states_facts_in_json():
    """The zygote formats its account of a run (not json.dumps): the raw wait status when it has
    reaped the child, the limit it enforced, and whether the result goes along. The host words it."""
    head, keep = worker._run_header(_Collected(), None, 1.25)
    assert keep is True
    assert json.loads(head) == {"violation": None, "status": None, "stdout_seen": 5, "stdout_cap": 1024,
                                "duration_ms": 1.25}
    head, keep = worker._run_header(_Collected(status=signal.SIGKILL), None, 2.0)
    assert keep is True and json.loads(head)["status"] == signal.SIGKILL
    head, keep = worker._run_header(_Collected(status=signal.SIGKILL), "timeout", 2000.0)
    assert keep is False and json.loads(head)["violation"] == "timeout"
    head, keep = worker._run_header(_Collected(overflow=True), None, 3.0)
    assert keep is False and json.loads(head)["violation"] == "result_too_large"


def test_a_node_starts_with_default_signal_handling(zygote):
    """Python ignores SIGPIPE and the zygote SIGINT; a node's process has both back at their defaults,
    in the kernel (SigIgn in /proc) and in Python's own table."""
    source = ("def func():\n    import signal\n"
              "    ignored = int([l for l in open('/proc/self/status') if l.startswith('SigIgn')][0].split()[1], 16)\n"
              "    return [bool(ignored & (1 << (signal.SIGPIPE - 1))), bool(ignored & (1 << (signal.SIGINT - 1))),\n"
              "            signal.getsignal(signal.SIGPIPE) == signal.SIG_DFL, signal.getsignal(signal.SIGINT) == signal.SIG_DFL]\n")
    for _ in range(2):  # a child forked on demand, then a spare
        header, value = ask(zygote, make_task(source))
        assert header["ok"], header
        assert json.loads(value) == [False, False, True, True]


def minor_faults(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[7])


def test_the_loop_in_c_serves_runs_writing_to_few_of_the_pages_its_children_share(tmp_path, loop_library):
    """Every page the zygote writes to after a fork is copied: its loop in Python wrote to about 150
    per run, the loop in C to about 10. (Page faults, unlike time, do not depend on the machine's load.)"""
    task = make_task("def func(n):\n    print(n)\n    return n + 1\n", 1)
    counts = {}
    for loop in (None, loop_library):
        z = start_worker(tmp_path, loop=loop)
        try:
            ask(z, task)
            at_rest(z)
            before = minor_faults(z.pid)
            for _ in range(30):
                assert json.loads(ask(z, task)[1]) == 2
            at_rest(z)
            counts[z.info["loop"]] = (minor_faults(z.pid) - before) / 30
        finally:
            z.kill()
    assert counts["python"] > 60 and counts["c"] < 40, counts


def test_the_loop_in_c_ends_a_node_at_its_deadline(zygote):
    header, value = ask(zygote, make_task("def func():\n    import time\n    time.sleep(30)\n", timeout_s=1))
    assert not header["ok"] and header["violation"] == "timeout" and value is None
    assert header["error"] == {"type": "Timeout", "message": "timed out after 1 s", "traceback": []}


def test_a_node_process_that_dies_is_described_from_its_wait_status(zygote):
    header, value = ask(zygote, make_task("def func():\n    import os, signal\n    os.kill(os.getpid(), signal.SIGSEGV)\n"))
    assert not header["ok"] and header["violation"] == "crashed" and value is None
    assert header["error"]["message"] == "the node process was ended by SIGSEGV (segmentation fault)"


def test_a_task_cut_short_after_a_control_frame_like_the_last_ends_the_worker(tmp_path, loop_library):
    """Where the loop in C reads the node frame itself: one that ends early is answered, and the worker
    ends."""
    z = start_worker(tmp_path, loop=loop_library)
    try:
        task = make_task("def func():\n    return 1\n")
        assert ask(z, task)[0]["ok"]
        control = json.dumps({key: value for key, value in {**task.payload(), "scratch": None}.items()
                              if key not in ("func", "filename", "args")}, separators=(",", ":")).encode()
        z.read_cleanup_report(time.monotonic() + 10)
        z._write(worker.HEADER.pack(len(control)) + control + worker.HEADER.pack(100) + b'{"func": "')
        z.proc.stdin.close()
        header = json.loads(z._read_frame(time.monotonic() + 10, None, 1 << 20, "any"))
        assert header["error"]["message"] == "input ended inside a frame" and header["recycle"] == "worker error"
        for _ in range(3):
            z._read_frame(time.monotonic() + 10, None, 1 << 20, "any")
        with pytest.raises(WorkerDied):
            z._read_frame(time.monotonic() + 10, None, 1 << 20, "any")
    finally:
        z.kill()


def test_a_loop_library_that_cannot_be_loaded_leaves_the_loop_in_python(tmp_path):
    """A --loop file that is not a loadable library (or lacks the loop) is not fatal: the worker says it
    serves with its loop in Python, and does."""
    broken = tmp_path / "loop.so"
    broken.write_bytes(b"\x7fELF not really")
    z = start_worker(tmp_path, loop=str(broken))
    try:
        assert z.info["loop"] == "python"
        assert json.loads(ask(z, make_task("def func(n):\n    return n * 3\n", 5))[1]) == 15
    finally:
        z.kill()
