"""Host side of the worker protocol: one running worker process (see worker.py) and its frames.

A `Worker` is one warm sandboxed process wherever it lives: a plain subprocess, a bubblewrap sandbox, a
Docker container. It sends a node's task as two frames and reads the worker's answer back, each frame
held to its cap before it is read; `compose_answer` and `parse_value` turn what it read into a node's
outcome without trusting node output. The pool that keeps workers warm is in pool.py.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import marshal
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any

from ..engine.execution import NodeOutcome, node_error
from ..jsontext import safe_text
from .values import Refused, budget_for, check_value, load
from .nodeproc import _OK_LINE
from .worker import _CLEAN, HEADER, OWN_FRAME_CAP, answer_caps

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 20.0
NODE_KEYS = ("func", "filename", "args")
_FRAME_JSON = json.JSONEncoder(separators=(",", ":")).encode  # one encoder for every frame, not one per call
TRUNCATED_MARK = "\n[... output truncated at {} bytes ...]\n"
# The worker's most common frames, byte for byte as it writes them: recognised whole, they need no parse
# (anything else is parsed and checked as always). Its cleanup report when all is well (zygote.c writes
# the same), and a node process's result line when its run went well.
CLEAN_REPORT = _CLEAN
OK_LINE = _OK_LINE.decode("ascii")
POLL_S = 0.05


# The worker's script, in order: one namespace, standard library only (see worker.py).
WORKER_PARTS = ("codec.py", "nodeproc.py", "collect.py", "loop.py", "worker.py")


def worker_source() -> bytes:
    """The worker script's text, to hand to a sandbox as data."""
    package = resources.files("pyflow.executors")
    return b"\n\n".join(package.joinpath(part).read_bytes() for part in WORKER_PARTS)


# Run by the interpreter that will run the worker: its own compiler, its own bytecode format.
_COMPILE_WORKER = ("import importlib.util, marshal, sys\n"
                   "code = compile(sys.stdin.buffer.read(), sys.argv[1], 'exec', dont_inherit=True)\n"
                   "sys.stdout.buffer.write(importlib.util.MAGIC_NUMBER + bytes(12) + marshal.dumps(code))\n")


def compiled_worker(python: str, filename: str) -> bytes:
    """The worker script compiled to bytecode by `python` (a .pyc file's bytes), for a sandbox to run
    instead of its source.

    Why: a zygote that compiles some 1,300 lines at start keeps what the compiler took in its heap,
    and every node's fork copies the page tables of that memory and every node's exit tears them
    down again; loading bytecode leaves it about a third smaller (docs/performance.md)."""
    done = subprocess.run([python, "-I", "-S", "-c", _COMPILE_WORKER, filename], input=worker_source(),
                          capture_output=True, timeout=60, check=True, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    return done.stdout


@functools.cache
def compiled_loop() -> bytes | None:
    """The zygote's loop in C (zygote.c) as a shared library, built once per server with the host's C
    compiler for the sandbox's interpreter (which shares the host's C library); None when it cannot be
    built, and the worker serves with its loop in Python.

    Why: the zygote forks a child for every run, and each page it writes after a fork is copied; its
    loop in Python writes to some 150 per run, the loop in C to a handful (docs/performance.md)."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        log.info("no C compiler: the zygote's loop runs in Python (about 0.5 ms more CPU per node)")
        return None
    source = resources.files("pyflow.executors").joinpath("zygote.c").read_bytes()
    with tempfile.TemporaryDirectory(prefix="pyflow-loop-") as tmp:
        built = Path(tmp) / "loop.so"
        try:
            # -z now: symbols bound at load, in the zygote; bound lazily, each child would look up (and
            # write to its copy of the table of) every library function only children call.
            argv = [compiler, "-O2", "-shared", "-fPIC", "-Wl,-z,now", "-o", str(built), "-x", "c", "-"]
            done = subprocess.run(argv, input=source, capture_output=True, timeout=120,
                                  env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("the zygote's loop in C could not be built (%s): it runs in Python", exc)
            return None
        if done.returncode != 0:
            log.warning("the zygote's loop in C could not be built: it runs in Python. %s",
                        clipped(done.stderr.decode("utf-8", "replace")))
            return None
        return built.read_bytes()


_MAGIC = importlib.util.MAGIC_NUMBER.hex()
# Sources compiled here at most (longer ones, rare, are compiled by the node's process): with the cache's
# 256 entries, the compiled code kept stays within some 20 MB whatever nodespecs a server holds.
COMPILED_SOURCE_MAX = 32 * 1024


def node_code(source, filename, magic: str | None) -> bytes:
    """The node's source compiled here and marshalled, for a worker whose interpreter's bytecode is
    this one's (`magic`, from its ready frame); b"" otherwise, or when it does not compile (the node's
    own process then compiles it and reports the error). Compiling in the child wrote to some fifty
    more of the pages it shares with its zygote; here, one compile serves every run of the source."""
    if magic != _MAGIC or not isinstance(source, str) or not isinstance(filename, str) \
            or len(source) > COMPILED_SOURCE_MAX:
        return b""
    return _compiled(source, filename)


@functools.lru_cache(maxsize=256)
def _compiled(source: str, filename: str) -> bytes:
    try:
        return marshal.dumps(compile(source, filename, "exec", dont_inherit=True, optimize=0))
    except (SyntaxError, ValueError, OverflowError, MemoryError, RecursionError):
        return b""


def worker_path() -> Path:
    return Path(str(resources.files("pyflow.executors").joinpath("worker.py")))


class WorkerDied(Exception):
    """The worker process ended or broke the protocol."""


class FrameTooLarge(WorkerDied):
    """The worker announced a frame over what that frame may hold: the stream is out of step."""


class Worker:
    """One worker process and its pipes. Not thread-safe: one node run at a time.

    The transport is three small methods (`_write`, `_read_chunk`, `kill`), so a worker reached another
    way (a Docker attach socket, say) subclasses this and overrides only those. What an executor keeps
    per worker (its cgroup, its scratch directory, ...) is that executor's own dataclass, in `state`.
    """

    def __init__(self, proc: subprocess.Popen | None, label: str = "worker", state: Any = None):
        self.proc = proc
        self.label = label
        self.state = state
        self.runs = 0
        self.info: dict = {}
        self.cleanup_pending = False  # a run was answered; the worker's word on its cleanup is still to read
        self._buffer = bytearray()
        self._control: tuple[dict | None, bytes] = (None, b"")  # the last control frame sent, and its JSON
        if proc is not None:
            self._sel = selectors.DefaultSelector()
            self._sel.register(proc.stdout, selectors.EVENT_READ)
            os.set_blocking(proc.stdout.fileno(), False)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> dict:
        self.info = _json_object(self._read_frame(time.monotonic() + timeout, None, OWN_FRAME_CAP, "ready"))
        if not self.info.get("ready"):
            raise WorkerDied(f"{self.label} did not report ready")
        return self.info

    def request(self, payload: dict, deadline: float, cancel: threading.Event | None) -> tuple[dict, bytes]:
        """Send one task and wait for the worker's answer: (header, value JSON bytes).

        The node's own data (source, file name, arguments) travels in a frame of its own, which the
        worker keeps out of its heap; the rest is the control frame. The header is composed here from
        the worker's account and the child's raw result, so the worker never parses node output. Each
        frame is held to its cap before it is read (the run's stdout and result limits, the worker's own
        frames to a small fixed size); the result frame is handed on to be consumed, so that its bytes
        are freed before the value is parsed."""
        if self.cleanup_pending:  # a pool reads it before handing out a run; a direct caller's is read here
            self.read_cleanup_report(deadline, cancel)
        node = {key: payload[key] for key in NODE_KEYS if key in payload}
        control = {key: value for key, value in payload.items() if key not in NODE_KEYS}
        code = node_code(node.get("func"), node.get("filename"), self.info.get("magic"))
        frames = [self._control_frame(control), HEADER.pack(len(code)) + code + _FRAME_JSON(node).encode("utf-8")]
        self._write(b"".join(HEADER.pack(len(frame)) + frame for frame in frames))
        self.runs += 1
        stdout_cap, result_cap = answer_caps(control.get("limits") or {})
        header = _worker_header(self._read_frame(deadline, cancel, OWN_FRAME_CAP, "header"))
        stdout = self._read_frame(deadline, cancel, stdout_cap, "stdout")
        result = self._read_frame(deadline, cancel, result_cap, "result")
        self.cleanup_pending = True
        return compose_answer(header, stdout, result, control.get("limits") or {})

    def _control_frame(self, control: dict) -> bytes:
        """The control frame's JSON: a run's control is most often equal to the last one (same limits,
        same places), and comparing is cheaper than encoding. Each payload is built afresh, so the dict
        kept is never changed after it was sent."""
        if control != self._control[0]:
            self._control = (control, _FRAME_JSON(control).encode("utf-8"))
        return self._control[1]

    def read_cleanup_report(self, deadline: float, cancel: threading.Event | None = None) -> str | None:
        """Read the worker's word that it has cleaned up after its last run (reaped it, killed what it
        left, emptied the scratch space): None when it can serve again, else why it must not."""
        frame = self._read_frame(deadline, cancel, OWN_FRAME_CAP, "cleanup report")
        said = None if frame == CLEAN_REPORT else _json_object(frame)
        self.cleanup_pending = False
        return str(said["recycle"]) if said and said.get("recycle") else None

    def _read_frame(self, deadline: float, cancel: threading.Event | None, cap: int, what: str) -> bytearray:
        """The next frame, read into a buffer of its announced size once that size is known to be within
        `cap`: an oversized frame costs the host only its 4 length bytes. Bytes read past the frame
        (at most one chunk) wait in `_buffer` for the next one."""
        while len(self._buffer) < HEADER.size:
            self._buffer += self._next_chunk(deadline, cancel)
        (size,) = HEADER.unpack_from(self._buffer)
        if size > cap:
            raise FrameTooLarge(f"the worker sent a {what} frame of {size} bytes, over its cap of {cap}")
        del self._buffer[:HEADER.size]
        frame = bytearray(size)
        filled = min(size, len(self._buffer))
        frame[:filled] = self._buffer[:filled]
        del self._buffer[:filled]
        while filled < size:
            chunk = self._next_chunk(deadline, cancel)
            take = min(len(chunk), size - filled)
            frame[filled:filled + take] = chunk[:take] if take < len(chunk) else chunk
            filled += take
            if take < len(chunk):
                self._buffer += chunk[take:]
        return frame

    def _next_chunk(self, deadline: float, cancel: threading.Event | None) -> bytes:
        while True:
            if cancel is not None and cancel.is_set():
                raise CancelledRun()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError()
            chunk = self._read_chunk(min(remaining, POLL_S))
            if chunk is None:
                continue
            if not chunk:
                raise WorkerDied(f"{self.label} ended unexpectedly")
            return chunk

    # -- transport ------------------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise WorkerDied(f"{self.label} is gone ({exc})") from None

    def _read_chunk(self, timeout: float) -> bytes | None:
        """Bytes from the worker; None when nothing arrived within `timeout`; b"" at end of stream.
        Read first and wait only when nothing is there: a worker's cleanup report, say, is usually in
        before it is asked for."""
        fd = self.proc.stdout.fileno()
        for attempt in range(2):
            try:
                return os.read(fd, 1 << 20)
            except BlockingIOError:
                if attempt or not self._sel.select(timeout=timeout):
                    return None
            except OSError:
                return b""
        return None

    def kill(self) -> None:
        """End the worker and everything it started (its process group)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.kill()
        except OSError:
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._sel.close()


def _json_object(frame: bytes | bytearray) -> dict:
    """One of the worker's own frames (small: capped at OWN_FRAME_CAP); a worker that cannot write one
    is treated as gone."""
    try:
        said = json.loads(frame.decode("utf-8"))
    except Exception as exc:  # RecursionError included: a taken-over worker can write anything
        raise WorkerDied(f"unreadable answer from the worker: {clipped(safe_text(str(exc)))}") from None
    if not isinstance(said, dict):
        raise WorkerDied("unreadable answer from the worker: not an object")
    return said


# The fields of the worker's run header that the host reads, and the types each may have.
_NONE = type(None)
HEADER_FIELDS = {"violation": {str, _NONE}, "error": {dict, _NONE}, "status": {int, _NONE}, "stdout_seen": {int},
                 "stdout_cap": {int}, "duration_ms": {int, float, _NONE}, "recycle": {str, _NONE}}


def _worker_header(frame: bytes | bytearray) -> dict:
    """The worker's account of a run, each field of the type the host expects."""
    header = _json_object(frame)
    for name, value in header.items():
        types = HEADER_FIELDS.get(name)
        if types is not None and type(value) not in types:
            raise WorkerDied(f"unreadable answer from the worker: {name} is {type(value).__name__}")
    return header


class CancelledRun(Exception):
    pass


def compose_answer(header: dict, stdout: bytes | bytearray, result: bytes | bytearray,
                   limits: dict | None = None) -> tuple[dict, str | None]:
    """The run's header ({"ok", "error", "stdout", "duration_ms", "violation", "recycle"}) and the value's
    JSON text, from the worker's own account (facts, worded here with the run's `limits`) and the
    child's raw result. The result comes from node code, so it is checked rather than trusted: anything
    malformed reads as a crash. A bytearray result is consumed (emptied) once its text is taken, so the
    frame and the parsed value never coexist; the text is None when it is not ASCII, which the worker's
    JSON always is."""
    limits = limits or {}
    text = stdout.decode("utf-8", "replace")
    if header.get("stdout_seen", 0) > len(stdout):
        text += TRUNCATED_MARK.format(header.get("stdout_cap"))
    violation, recycle = header.get("violation"), header.get("recycle")
    answer = {"ok": False, "error": _clean_error(_worker_error(header, limits)), "stdout": text,
              "duration_ms": header.get("duration_ms"), "violation": violation and safe_text(violation),
              "recycle": recycle and safe_text(recycle)}
    meta, value = split_result(result)
    if answer["error"] is not None:
        return answer, None
    parsed = _parse_meta(meta)
    if parsed is None:
        answer["violation"], message = _how_it_ended(header.get("status"), limits)
        answer["error"] = node_error("NodeCrashed", message)
        return answer, None
    answer["ok"], answer["error"], answer["artifacts"] = parsed
    if answer["error"] and answer["error"]["type"] == "MemoryError":
        answer["violation"] = "memory"
    return answer, (value if answer["ok"] else None)


def _worker_error(header: dict, limits: dict) -> dict | None:
    """The error of a run the worker could not serve (its own words) or ended at a limit (worded here)."""
    if header.get("error") is not None:
        return header["error"]
    violation = header.get("violation")
    if violation == "timeout":
        return node_error("Timeout", "timed out after {} s".format(limits.get("timeout_s")))
    if violation == "result_too_large":
        return node_error("ResultTooLarge", "the return value is over the limit of {} KiB".format(limits.get("result_kb")))
    return None


def _how_it_ended(status, limits: dict) -> tuple[str, str]:
    """(violation, message) for a node process that left no readable result, from its wait status as
    the worker saw it (None: it wrote a result and was still exiting)."""
    if type(status) is not int or not 0 <= status <= 0xFFFF:
        return "crashed", "the node process wrote a result that cannot be read"
    return describe_exit(status, limits)


def describe_exit(status: int, limits: dict) -> tuple[str, str]:
    """How a child that returned no result ended, in words: (violation, message)."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGXCPU:
            return "cpu", "CPU time limit of {} s exceeded".format(limits.get("cpu_s"))
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = "signal {}".format(sig)
        what = {signal.SIGSEGV: "segmentation fault", signal.SIGKILL: "killed", signal.SIGABRT: "aborted",
                signal.SIGBUS: "bus error", signal.SIGFPE: "floating point exception",
                signal.SIGXFSZ: "file size limit of {} MB exceeded".format(limits.get("file_size_mb"))}
        return "crashed", "the node process was ended by {} ({})".format(name, what.get(sig, "signal"))
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
    return "crashed", "the node process exited with status {} before returning a result".format(code)


def split_result(result: bytes | bytearray) -> tuple[str | None, str | None]:
    """The child's result line and the value's JSON text, each None when it is not ASCII."""
    cut = result.find(b"\n")
    with memoryview(result) as view:
        meta = _ascii(view[:cut] if cut >= 0 else view)
        value = _ascii(view[cut + 1:]) if cut >= 0 else ""
    if isinstance(result, bytearray):
        result.clear()
    return meta, value


def _ascii(view: memoryview) -> str | None:
    try:
        return str(view, "ascii")
    except UnicodeDecodeError:
        return None
    finally:
        view.release()


def _parse_meta(meta: str | None) -> tuple[bool, dict | None, object] | None:
    """(ok, error, artifact claims) from the child's result line, or None when it is missing or malformed. The line is
    small unless node code wrote it: one built to take memory is refused unparsed."""
    if meta == OK_LINE:
        return True, None, None
    try:
        parsed = load(meta, 2 * len(meta) + (1 << 20)) if meta else None
    except Exception:  # Refused, RecursionError, MemoryError, ...: the line came from node code
        return None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("ok"), bool):
        return None
    if parsed["ok"]:
        return True, None, parsed.get("artifacts")  # claims, checked when the files are taken
    return False, _clean_error(parsed.get("error")) or _clean_error({}), None


def _clean_error(error) -> dict | None:
    """An error of the shape every reader expects ({"type", "message", "traceback": [lines]}), from
    whatever the worker or node code wrote; None stays None."""
    if error is None:
        return None
    error = error if isinstance(error, dict) else {}
    lines = error.get("traceback") if isinstance(error.get("traceback"), list) else []
    return node_error(str(error.get("type") or "NodeError"), str(error.get("message") or "the node failed"),
                  [str(line) for line in lines])


def outcome_of(header: dict, value: str | None, started: float, result_kb: int) -> NodeOutcome:
    duration = float(header.get("duration_ms") or ms(started))
    stdout = header.get("stdout") or ""
    if header.get("ok"):
        parsed, error = parse_value(value, result_kb)
        if error is not None:
            kind, message, violation = error
            return NodeOutcome.failure(message, kind, violation, stdout, duration)
        return NodeOutcome(ok=True, value=parsed, stdout=stdout, duration_ms=duration)
    error = header.get("error") or node_error("NodeError", "the node failed")
    return NodeOutcome(ok=False, error=error, stdout=stdout, duration_ms=duration,
                       violation=header.get("violation"))


def parse_value(value: str | None, result_kb: int) -> tuple[object, tuple[str, str, str | None] | None]:
    """(the node's return value, None), or (None, (error type, message, violation)).

    The value's JSON text was written by node code, which can write anything to its result pipe rather
    than let the worker encode its value: so this never raises (nesting deep enough to exhaust the
    parser's recursion, say), holds the value to the node's result limit on this side too, weighs it
    before parsing (see values.py), and refuses NaN and Infinity, which Python's json accepts but JSON
    (and every browser) does not. A value nested deeper than values.MAX_DEPTH or holding a lone
    surrogate fails the node without a violation: the worker encoded it faithfully."""
    if value is None:
        return None, ("ResultError", "the node returned a value that cannot be read: it is not ASCII JSON "
                      "(the worker escapes every other character)", "crashed")
    limit = result_kb * 1024
    if len(value) > limit:
        return None, ("ResultTooLarge", f"the return value is {len(value)} bytes of JSON, over the limit of "
                      f"{result_kb} KiB", "result_too_large")
    if not value:
        return None, None
    try:
        parsed = load(value, budget_for(limit))
        check_value(parsed, value)
        return parsed, None
    except Refused as exc:
        return None, (exc.kind, exc.message, "result_too_large" if exc.kind == "ResultTooLarge" else None)
    except RecursionError:
        why = "it is nested too deeply"
    except Exception as exc:  # whatever the bytes make the parser do, it is the node's failure
        why = clipped(str(exc))
    return None, ("ResultError", f"the node returned a value that cannot be read: {why}", "crashed")


def clipped(text: str, size: int = 300) -> str:
    return text if len(text) <= size else text[:size] + "..."


def cancelled(started: float) -> NodeOutcome:
    return NodeOutcome.failure("the run was cancelled", "Cancelled", "cancelled", duration_ms=ms(started))


def ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 3)
