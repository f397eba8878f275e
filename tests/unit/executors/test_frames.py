"""The host side of the worker protocol against a worker that lies: every frame is held to its cap before
it is read, and whatever the worker (or node code in it) sends, run() answers with the node's failure and
retires the worker, never raising and never holding more than the node's own limits.

The worker here is a fake: a Worker whose transport plays back scripted bytes.
"""

from __future__ import annotations

import json
import signal
import time

import pytest

from pyflow.engine.execution import NodeOutcome
from pyflow.executors.worker import HEADER
from pyflow.executors.channel import Worker, compose_answer, describe_exit, parse_value
from pyflow.executors.pool import WorkerExecutor

from .conftest import make_task

READY = {"ready": True, "pid": 1, "python": "3"}
GOOD_HEADER = {"violation": None, "error": None, "stdout_seen": 2, "stdout_cap": 1024, "status": None,
               "duration_ms": 1.0}
SETTLED = {"recycle": None}


def frame(data: bytes | dict) -> bytes:
    body = json.dumps(data).encode() if isinstance(data, dict) else data
    return HEADER.pack(len(body)) + body


def answer(result: bytes, header: dict | None = None, stdout: bytes = b"ok") -> bytes:
    return frame(header or GOOD_HEADER) + frame(stdout) + frame(result)


class FakeWorker(Worker):
    """Plays `script` (bytes handed out in chunks of at most `chunk` bytes, then end of stream)."""

    def __init__(self, script: bytes, chunk: int = 1 << 20):
        super().__init__(None, "fake worker")
        self.script = memoryview(script)
        self.chunk = chunk
        self.handed = 0
        self.killed = False

    @property
    def pid(self) -> int:
        return id(self)

    def _write(self, data: bytes) -> None:
        if self.killed:
            raise AssertionError("written to after it was ended")

    def _read_chunk(self, timeout: float) -> bytes | None:
        piece = bytes(self.script[self.handed:self.handed + self.chunk])
        self.handed += len(piece)
        return piece

    def kill(self) -> None:
        self.killed = True


class Scripted(WorkerExecutor):
    """A pool of one whose workers play the scripts given, one per spawn."""

    def __init__(self, *scripts: bytes, chunk: int = 1 << 20):
        super().__init__(pool_size=1, max_runs=100)
        self.scripts = list(scripts)
        self.chunk = chunk
        self.spawned: list[FakeWorker] = []

    def spawn(self) -> Worker:
        worker = FakeWorker(frame(READY) + self.scripts.pop(0), self.chunk)
        self.spawned.append(worker)
        return worker


def run_on(*scripts: bytes, chunk: int = 1 << 20, **limits) -> tuple[NodeOutcome, Scripted]:
    executor = Scripted(*scripts, chunk=chunk)
    executor.start()
    try:
        return executor.run(make_task("def func():\n    return 1\n", **limits)), executor
    finally:
        executor.close()


def assert_protocol_failure(outcome: NodeOutcome, executor: Scripted, *words: str) -> None:
    assert not outcome.ok and outcome.violation == "crashed", outcome
    assert outcome.error["type"] == "ProtocolError", outcome.error
    for word in words:
        assert word in outcome.error["message"], outcome.error
    assert executor.spawned[0].killed, "a worker whose stream is out of step must be retired"


def test_a_good_answer_reads_back():
    outcome, _executor = run_on(answer(b'{"ok":true,"error":null}\n[1,"a"]') + frame(SETTLED))
    assert outcome.ok and outcome.value == [1, "a"] and outcome.stdout == "ok", outcome


@pytest.mark.parametrize("which, announced, words", [
    ("header", 1 << 31, ["header frame of 2147483648 bytes", "65536"]),
    ("stdout", 4 * 1024 + 1, ["stdout frame of 4097 bytes", "4096"]),
    ("result", 8 * 1024 + 65536 + 1, ["result frame of 73729 bytes", "73728"]),
])
def test_a_frame_over_its_cap_fails_the_node_before_it_is_read(which, announced, words):
    """Only the 4 length bytes of an oversized frame are read: the rest never reaches the host's memory."""
    tail = HEADER.pack(announced) + b"x" * (1 << 16)
    script = {"header": tail,
              "stdout": frame(GOOD_HEADER) + tail,
              "result": frame(GOOD_HEADER) + frame(b"") + tail}[which]
    outcome, executor = run_on(script, chunk=HEADER.size, stdout_kb=4, result_kb=8)
    assert_protocol_failure(outcome, executor, *words)
    read_ahead = HEADER.size  # one chunk past what the frames before it needed
    assert executor.spawned[0].handed <= len(script) - (1 << 16) + len(frame(READY)) + read_ahead


def test_a_settle_frame_over_its_cap_retires_the_worker_and_the_next_run_takes_another():
    first = answer(b'{"ok":true,"error":null}\n1') + HEADER.pack(1 << 30)
    second = answer(b'{"ok":true,"error":null}\n2') + frame(SETTLED)
    executor = Scripted(first, second)
    executor.start()
    try:
        assert executor.run(make_task("def func():\n    return 1\n")).value == 1
        outcome = executor.run(make_task("def func():\n    return 2\n"))
        assert outcome.ok and outcome.value == 2, outcome
        assert executor.spawned[0].killed and len(executor.spawned) == 2
    finally:
        executor.close()


@pytest.mark.parametrize("script, words", [
    (frame(GOOD_HEADER) + HEADER.pack(100) + b"only part of it", ["ended unexpectedly"]),
    (HEADER.pack(3)[:2], ["ended unexpectedly"]),
    (frame(b"\x00\xffnot json") + frame(b"") + frame(b""), ["unreadable answer from the worker"]),
    (frame(b"[1, 2]") + frame(b"") + frame(b""), ["unreadable answer from the worker: not an object"]),
    (frame(b"[" * 20000 + b"]" * 20000) + frame(b"") + frame(b""), ["unreadable answer from the worker"]),
])
def test_a_broken_stream_fails_the_node_and_retires_the_worker(script, words):
    outcome, executor = run_on(script)
    assert not outcome.ok and outcome.violation == "crashed", outcome
    for word in words:
        assert word in outcome.error["message"], outcome.error
    assert executor.spawned[0].killed


@pytest.mark.parametrize("header", [
    {**GOOD_HEADER, "stdout_seen": "many"},
    {**GOOD_HEADER, "duration_ms": "soon"},
    {**GOOD_HEADER, "status": "gone"},
    {**GOOD_HEADER, "status": True},
    {**GOOD_HEADER, "error": ["not", "an", "error"]},
    {**GOOD_HEADER, "error": {"type": {"a": 1}, "message": None, "traceback": "line"}},
])
def test_a_header_of_the_wrong_shape_fails_the_node_without_raising(header):
    outcome, _executor = run_on(answer(b"garbage", header=header) + frame(SETTLED))
    assert not outcome.ok, outcome
    error = outcome.error
    assert isinstance(error["type"], str) and isinstance(error["message"], str), error
    assert all(isinstance(line, str) for line in error["traceback"]), error
    json.dumps(outcome.__dict__)


def test_lone_surrogates_from_the_worker_are_replaced():
    header = {**GOOD_HEADER, "error": {"type": "Bad\ud800", "message": "m\udfff", "traceback": ["t\ud800"]},
              "violation": "v\ud800"}
    outcome, _ = run_on(answer(b"", header=header) + frame(SETTLED))
    assert outcome.error == {"type": "Bad\ufffd", "message": "m\ufffd", "traceback": ["t\ufffd"]}
    assert outcome.violation == "v\ufffd"
    json.dumps(outcome.error, ensure_ascii=False).encode("utf-8")


# -------------------------------------------------------------------------------- the child's result


def compose(meta: bytes, value: bytes = b"") -> tuple[dict, object]:
    return compose_answer(GOOD_HEADER, b"", meta + b"\n" + value)


def test_lone_surrogates_in_the_nodes_error_are_replaced():
    meta = json.dumps({"ok": False, "error": {"type": "E\ud800", "message": "a\ud800b",
                                              "traceback": ["  File x\udc00", 7]}}).encode()
    answer_, _value = compose(meta)
    assert answer_["error"] == {"type": "E\ufffd", "message": "a\ufffdb", "traceback": ["  File x\ufffd", "7"]}


def test_a_result_line_built_to_take_memory_is_refused_before_it_is_parsed():
    meta = b'{"ok":false,"error":{"type":"E","message":"m","traceback":[' + b"{}," * 300000 + b'{}]}}'
    answer_, _ = compose(meta)
    assert not answer_["ok"] and answer_["error"]["type"] == "NodeCrashed", answer_


def test_a_non_ascii_result_is_refused():
    """The worker writes JSON with every non-ASCII character escaped; raw UTF-8 was written by node code."""
    answer_, value = compose(b'{"ok":true,"error":null}', b'"\xc3\xa9"')
    parsed, error = parse_value(value, 256)
    assert parsed is None and error[0] == "ResultError", error
    assert "not ASCII" in error[1]


def test_lone_surrogate_in_a_value_fails_the_node():
    parsed, error = parse_value('{"k": ["a\\ud800b"]}', 256)
    assert parsed is None and error == ("ResultError", "the return value holds a lone surrogate (U+D800), "
                                        "which UTF-8 cannot carry", None)
    parsed, error = parse_value('{"k\\udfff": 1}', 256)
    assert error is not None and "U+DFFF" in error[1]
    parsed, error = parse_value('"a\\ud800"', 256)
    assert error is not None and "U+D800" in error[1]


def test_a_surrogate_pair_is_a_character_and_reads_back():
    assert parse_value('["\\ud83d\\ude00", "\\\\ud800"]', 256) == (["\U0001f600", "\\ud800"], None)


def nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


def test_a_value_nested_64_deep_reads_and_65_fails_naming_the_depth():
    parsed, error = parse_value(nested(64), 256)
    assert error is None and json.dumps(parsed) == nested(64)
    parsed, error = parse_value('{"a":' * 65 + "1" + "}" * 65, 256)
    assert parsed is None and error == ("ResultError", "the return value is nested 65 levels deep, over the "
                                        "limit of 64", None)
    wide = "[" + ",".join([nested(63)] * 200 + [nested(65)]) + "]"
    assert parse_value(wide, 256)[1][1].startswith("the return value is nested 66 levels deep")


@pytest.mark.parametrize("shape", ["{}", "[]", "[[]]", '{"a":{}}', "1000", "1e9", "0.5"])
def test_a_value_that_would_take_far_more_memory_than_its_text_is_refused(shape):
    """Budget: twice the limit plus 32 MB, so 48 MB for 8 MB of JSON text."""
    limit_kb = 8192
    count = limit_kb * 1024 // (len(shape) + 1) - 2
    text = "[" + ",".join([shape] * count) + "]"
    assert len(text) <= limit_kb * 1024
    parsed, error = parse_value(text, limit_kb)
    assert parsed is None and error[0] == "ResultTooLarge", error
    assert error[1].startswith("the return value would take ") and "MB in memory, over the limit of 48 MB" in error[1]


@pytest.mark.parametrize("text", ['"' + "x" * (1 << 20) + '"', "[" + ",".join(['"abcdefghijklmnopq"'] * 50000) + "]",
                                  "[" + ",".join(["1"] * 400000) + "]", '{"' + '": [1, 2], "'.join(map(str, range(40000))) + '": 0}'])
def test_a_large_value_of_ordinary_shape_at_its_limit_reads(text):
    parsed, error = parse_value(text, 1024 + 64)
    assert error is None and parsed == json.loads(text)


# ------------------------------------------------------------------------------- wording the facts


@pytest.mark.parametrize("status, words", [
    (signal.SIGSEGV, "the node process was ended by SIGSEGV (segmentation fault)"),
    (signal.SIGKILL, "the node process was ended by SIGKILL (killed)"),
    (signal.SIGABRT, "the node process was ended by SIGABRT (aborted)"),
    (3 << 8, "the node process exited with status 3 before returning a result"),
])
def test_describe_exit_words_how_a_child_ended(status, words):
    assert describe_exit(status, {})[1] == words


def test_describe_exit_names_the_cpu_limit():
    assert describe_exit(signal.SIGXCPU, {"cpu_s": 2}) == ("cpu", "CPU time limit of 2 s exceeded")


@pytest.mark.parametrize("header, kind, message", [
    ({"violation": "timeout", "status": 9}, "Timeout", "timed out after 2.5 s"),
    ({"violation": "result_too_large", "status": 9}, "ResultTooLarge", "the return value is over the limit of 16 KiB"),
    ({"violation": None, "status": int(signal.SIGXFSZ)}, "NodeCrashed", "the node process was ended by SIGXFSZ (file size "
                                                                  "limit of 3 MB exceeded)"),
    ({"violation": None, "status": None}, "NodeCrashed", "the node process wrote a result that cannot be read"),
    ({"violation": None, "status": 1 << 40}, "NodeCrashed", "the node process wrote a result that cannot be read"),
])
def test_the_host_words_the_workers_facts_with_the_runs_limits(header, kind, message):
    limits = {"timeout_s": 2.5, "result_kb": 16, "file_size_mb": 3}
    answer, value = compose_answer({**GOOD_HEADER, **header}, b"", b"", limits)
    assert not answer["ok"] and value is None
    assert (answer["error"]["type"], answer["error"]["message"]) == (kind, message)


def test_node_code_is_compiled_here_only_for_a_worker_of_the_same_bytecode():
    """The host sends a node's code compiled when the worker's interpreter reads the same bytecode;
    otherwise (or when the source does not compile) the node's own process compiles the source."""
    import importlib.util
    import marshal
    from pyflow.executors.channel import node_code
    magic = importlib.util.MAGIC_NUMBER.hex()
    code = node_code("def func(a):\n    return a * 2\n", "<node double>", magic)
    namespace = {}
    exec(marshal.loads(code), namespace)
    assert namespace["func"](21) == 42 and namespace["func"].__code__.co_filename == "<node double>"
    assert node_code("def func(a):\n    return a * 2\n", "<node double>", "0d0a0d0a") == b""
    assert node_code("def func(:\n", "<node broken>", magic) == b""
    assert node_code(None, "<node none>", magic) == b""
    assert node_code("def func():\n    return 1\n" + "#" * (64 * 1024), "<node long>", magic) == b""


def test_without_a_working_c_compiler_there_is_no_loop_library(tmp_path, monkeypatch):
    """A compiler that fails (no C library headers, say) leaves the zygote's loop in Python: no library,
    no exception."""
    from pyflow.executors import channel
    failing = tmp_path / "cc"
    failing.write_text("#!/bin/sh\necho 'fatal error: stdio.h: No such file or directory' >&2\nexit 1\n")
    failing.chmod(0o755)
    monkeypatch.setattr(channel.shutil, "which", lambda name: str(failing))
    channel.compiled_loop.cache_clear()
    try:
        assert channel.compiled_loop() is None
        monkeypatch.setattr(channel.shutil, "which", lambda name: None)
        channel.compiled_loop.cache_clear()
        assert channel.compiled_loop() is None
    finally:
        channel.compiled_loop.cache_clear()


def test_the_frames_read_without_a_parse_are_byte_for_byte_the_workers():
    """The host recognises the worker's most common frames whole: they must be exactly what the worker
    writes (its loop in Python and in C), or every run would take the slow path unnoticed."""
    from importlib import resources
    from pyflow.executors import channel, nodeproc, worker
    source = resources.files("pyflow.executors").joinpath("zygote.c").read_text()
    assert channel.CLEAN_REPORT == worker._CLEAN
    assert 'clean[] = "' + channel.CLEAN_REPORT.decode().replace('"', '\\"') + '"' in source
    assert channel.OK_LINE.encode() == nodeproc._OK_LINE


@pytest.mark.parametrize("report, retired", [
    (SETTLED, False),
    ({"recycle": "a process outlived its run"}, True),
    ({"recycle": None, "extra": 1}, False),
    (b'{"recycle":  null}', False),
])
def test_a_cleanup_report_is_read_whether_or_not_it_is_the_common_one(report, retired):
    outcome, executor = run_on(answer(b'{"ok": true, "error": null}\n2') + frame(report) + answer(b'{"ok":true}\n3')
                               + frame(SETTLED))
    assert outcome.ok and outcome.value == 2, outcome
    worker = executor.spawned[0]
    assert worker.read_cleanup_report(time.monotonic() + 5) == (report["recycle"] if retired else None)


@pytest.mark.parametrize("line, ok", [
    (b'{"ok": true, "error": null}', True),
    (b'{"ok":true,"error":null}', True),
    (b'{"ok": false, "error": {"type": "E", "message": "m"}}', False),
    (b'{"ok": "yes"}', None),
])
def test_every_result_line_is_read_the_same_common_or_not(line, ok):
    outcome, _executor = run_on(answer(line + b"\n5") + frame(SETTLED))
    if ok is None:
        assert outcome.violation == "crashed" and outcome.error["type"] == "NodeCrashed", outcome
    else:
        assert outcome.ok is ok and (outcome.value == 5 if ok else outcome.error["message"] == "m"), outcome


def test_a_control_frame_like_the_last_is_sent_as_it_was_and_a_changed_one_anew():
    sent = []

    class Recording(FakeWorker):
        def _write(self, data: bytes) -> None:
            sent.append(data)

    worker = Recording(b"".join(answer(b'{"ok":true}\n1') + frame(SETTLED) for _ in range(3)))
    payload = {"func": "def func():\n    return 1\n", "filename": "<n>", "args": [], "limits": {"timeout_s": 5}}
    for limits in ({"timeout_s": 5}, {"timeout_s": 5}, {"timeout_s": 6}):
        worker.request({**payload, "limits": limits}, time.monotonic() + 5, None)
    controls = [data[4:4 + HEADER.unpack_from(data)[0]] for data in sent]
    assert [json.loads(c)["limits"]["timeout_s"] for c in controls] == [5, 5, 6]
    assert controls[0] == controls[1] != controls[2]
