"""Host side of the worker protocol: start worker processes, talk to them, keep a warm pool.

A `Zygote` is one running worker (see worker.py) wherever it lives: a plain subprocess, a bubblewrap
sandbox, a Docker container. `ZygoteExecutor` runs each node on a zygote, either a fresh one per node
or one from a pool of warm ones that are recycled after K runs and after any violation.
"""

from __future__ import annotations

import json
import os
import queue
import selectors
import signal
import subprocess
import threading
import time
from importlib import resources
from pathlib import Path

from ..engine.execution import Executor, NodeOutcome, NodeTask
from .values import Refused, budget_for, check_value, load, safe_text
from .worker import HEADER, OWN_FRAME_CAP, answer_caps

READY_TIMEOUT_S = 20.0
# How long a worker may take to clean up after a run (reap, sweep, empty its scratch space) before the
# next run gives up on it and takes another.
SETTLE_TIMEOUT_S = 30.0
NODE_KEYS = ("func", "filename", "args")
TRUNCATED_MARK = "\n[... output truncated at {} bytes ...]\n"
GRACE_S = 2.0
POLL_S = 0.05


def worker_source() -> bytes:
    """The worker script's text, to hand to a sandbox as data."""
    return resources.files("pyflow.executors").joinpath("worker.py").read_bytes()


def worker_path() -> Path:
    return Path(str(resources.files("pyflow.executors").joinpath("worker.py")))


class ZygoteDied(Exception):
    """The worker process ended or broke the protocol."""


class FrameTooLarge(ZygoteDied):
    """The worker announced a frame over what that frame may hold: the stream is out of step."""


class Zygote:
    """One worker process and its pipes. Not thread-safe: one node run at a time.

    The transport is three small methods (`_write`, `_read_chunk`, `kill`), so a worker reached another
    way (a Docker attach socket, say) subclasses this and overrides only those.
    """

    def __init__(self, proc: subprocess.Popen | None, label: str = "zygote"):
        self.proc = proc
        self.label = label
        self.runs = 0
        self.info: dict = {}
        self.unsettled = False  # a run was answered; the worker's word on its cleanup is still to read
        self._buffer = bytearray()
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
            raise ZygoteDied(f"{self.label} did not report ready")
        return self.info

    def request(self, payload: dict, deadline: float, cancel: threading.Event | None) -> tuple[dict, bytes]:
        """Send one task and wait for the worker's answer: (header, value JSON bytes).

        The node's own data (source, file name, arguments) travels in a frame of its own, which the
        worker keeps out of its heap; the rest is the control frame. The header is composed here from
        the worker's account and the child's raw result, so the worker never parses node output. Each
        frame is held to its cap before it is read (the run's stdout and result limits, the worker's own
        frames to a small fixed size); the result frame is handed on to be consumed, so that its bytes
        are freed before the value is parsed."""
        if self.unsettled:  # executors settle a worker before they hand it a run; direct callers here
            self.settle(deadline, cancel)
        node = {key: payload[key] for key in NODE_KEYS if key in payload}
        control = {key: value for key, value in payload.items() if key not in NODE_KEYS}
        frames = [json.dumps(part, separators=(",", ":")).encode("utf-8") for part in (control, node)]
        self._write(b"".join(HEADER.pack(len(frame)) + frame for frame in frames))
        self.runs += 1
        stdout_cap, result_cap = answer_caps(control.get("limits") or {})
        header = _worker_header(self._read_frame(deadline, cancel, OWN_FRAME_CAP, "header"))
        stdout = self._read_frame(deadline, cancel, stdout_cap, "stdout")
        result = self._read_frame(deadline, cancel, result_cap, "result")
        self.unsettled = True
        return compose_answer(header, stdout, result)

    def settle(self, deadline: float, cancel: threading.Event | None = None) -> str | None:
        """Read the worker's word that it has cleaned up after its last run (reaped it, killed what it
        left, emptied the scratch space): None when it can serve again, else why it must not."""
        said = _json_object(self._read_frame(deadline, cancel, OWN_FRAME_CAP, "settle"))
        self.unsettled = False
        return str(said["recycle"]) if said.get("recycle") else None

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
                raise ZygoteDied(f"{self.label} ended unexpectedly")
            return chunk

    # -- transport ------------------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise ZygoteDied(f"{self.label} is gone ({exc})") from None

    def _read_chunk(self, timeout: float) -> bytes | None:
        """Bytes from the worker; None when nothing arrived within `timeout`; b"" at end of stream."""
        if not self._sel.select(timeout=timeout):
            return None
        try:
            return os.read(self.proc.stdout.fileno(), 1 << 20)
        except BlockingIOError:
            return None
        except OSError:
            return b""

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
        said = json.loads(frame)
    except Exception as exc:  # RecursionError included: a taken-over worker can write anything
        raise ZygoteDied(f"unreadable answer from the worker: {_clipped(safe_text(str(exc)))}") from None
    if not isinstance(said, dict):
        raise ZygoteDied("unreadable answer from the worker: not an object")
    return said


# The fields of the worker's run header that the host reads, and the types each may have.
_NONE = type(None)
HEADER_FIELDS = {"violation": {str, _NONE}, "error": {dict, _NONE}, "exit": {dict, _NONE}, "stdout_seen": {int},
                 "stdout_cap": {int}, "duration_ms": {int, float, _NONE}, "recycle": {str, _NONE}}


def _worker_header(frame: bytes | bytearray) -> dict:
    """The worker's account of a run, each field of the type the host expects."""
    header = _json_object(frame)
    for name, types in HEADER_FIELDS.items():
        if type(header.get(name)) not in types and name in header:
            raise ZygoteDied(f"unreadable answer from the worker: {name} is {type(header[name]).__name__}")
    return header


class CancelledRun(Exception):
    pass


class ZygoteExecutor(Executor):
    """Runs each node on a worker process: fresh per node, or from a warm pool.

    Subclasses say how to start a worker (`spawn`) and may adjust a run before and after it (cgroup
    limits, reading out-of-memory counters). A worker is recycled after `max_runs` runs, after any
    violation (timeout, crash, memory, cancellation) and whenever it asks to be.
    """

    name = "zygote"

    def __init__(self, pool_size: int = 0, max_runs: int = 200):
        self.pool_size = pool_size
        self.max_runs = max_runs
        self._idle: queue.Queue[Zygote] = queue.Queue()
        self._live: set[Zygote] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._spawn_errors = 0
        self._spawn_error: str | None = None  # why the latest start of a worker failed (see readiness)
        self._reserved = 0  # spawns under way on behalf of the pool (see _reserve)
        self._spawn_requests: queue.Queue = queue.Queue()
        self._spawner: threading.Thread | None = None

    # -- to override --------------------------------------------------------------------------------
    def spawn(self) -> Zygote:
        raise NotImplementedError

    def prepare_payload(self, zygote: Zygote, task: NodeTask) -> dict:
        return task.payload()

    def before_run(self, zygote: Zygote, task: NodeTask) -> None:
        """Hook: set per-run limits on the worker's cgroup, for instance."""

    def after_run(self, zygote: Zygote, task: NodeTask, outcome: NodeOutcome) -> NodeOutcome:
        """Hook: refine the outcome (an out-of-memory kill seen in a cgroup counter, for instance)."""
        return outcome

    def discard(self, zygote: Zygote) -> None:
        """Hook: release what belongs to a worker that is ended for good."""

    # -- pool ---------------------------------------------------------------------------------------
    def start(self) -> None:
        """Fill the warm pool (no-op for fresh-per-node executors)."""
        for _ in range(self.pool_size):
            self._idle.put(self._started())

    def spawn_failure(self, zygote: Zygote) -> str:
        """Hook: what the worker's launcher reported when it failed to start."""
        return ""

    def _spawn_on_spawner(self) -> Zygote:
        """Start workers from one long-lived thread: a parent-death signal (bwrap --die-with-parent)
        fires when the *thread* that started the process ends, so a short-lived thread would take its
        workers down with it."""
        with self._lock:
            if self._spawner is None or not self._spawner.is_alive():
                self._spawner = threading.Thread(target=self._spawn_loop, daemon=True, name="pyflow-spawner")
                self._spawner.start()
        reply: queue.Queue = queue.Queue(maxsize=1)
        self._spawn_requests.put(reply)
        ok, value = reply.get()
        if not ok:
            raise value
        return value

    def _spawn_loop(self) -> None:
        while True:
            reply = self._spawn_requests.get()
            if reply is None:
                return
            try:
                reply.put((True, self.spawn()))
            except BaseException as exc:  # handed to the caller, raised there
                reply.put((False, exc))

    def _started(self) -> Zygote:
        zygote = self._spawn_on_spawner()
        try:
            zygote.wait_ready()
        except ZygoteDied as exc:
            said = self.spawn_failure(zygote)
            self._end(zygote)
            raise ZygoteDied(f"{exc}: {said}" if said else str(exc)) from None
        except BaseException:
            self._end(zygote)
            raise
        with self._lock:
            closed = self._closed
            if not closed:
                self._live.add(zygote)
        if closed:  # close() has already ended every live worker: this one must not outlive it
            self._end(zygote)
            raise ZygoteDied("executor is closed")
        return zygote

    def _acquire(self, cancel: threading.Event | None) -> Zygote:
        """An idle worker that has cleaned up after its last run; when the pool is short of workers
        (respawns failed or are slow) and none is being started, start one for this run, so a failure
        to spawn reaches the caller instead of leaving every later run waiting on an empty pool."""
        if self._closed:
            raise ZygoteDied("executor is closed")
        if self.pool_size <= 0:
            return self._start_noting()
        while True:
            zygote = self._next_idle(cancel)
            if self._settled(zygote, cancel):
                return zygote

    def _next_idle(self, cancel: threading.Event | None) -> Zygote:
        while True:
            try:
                return self._idle.get(timeout=POLL_S)
            except queue.Empty:
                if cancel is not None and cancel.is_set():
                    raise CancelledRun() from None
                if self._closed:
                    raise ZygoteDied("executor is closed") from None
            if self._reserve():
                return self._spawn_reserved()

    def _settled(self, zygote: Zygote, cancel: threading.Event | None) -> bool:
        """Whether `zygote` may run the next node. A worker answers a run before it cleans up after it
        (so the cleanup overlaps the caller's work), then says whether the cleanup went well; one
        that says no, or says nothing in time, is ended and replaced, and the run takes another."""
        if not zygote.unsettled:
            return True
        try:
            reason = zygote.settle(time.monotonic() + SETTLE_TIMEOUT_S, cancel)
        except CancelledRun:
            self._idle.put(zygote)  # still fine to settle for the next run
            raise
        except (ZygoteDied, TimeoutError) as exc:
            reason = f"no word on its cleanup: {exc or 'timed out'}"
        if reason is None:
            return True
        self._release(zygote, True)
        return False

    def _reserve(self) -> bool:
        """Claim the right to start one pool member, if live and starting workers are fewer than the pool."""
        with self._lock:
            if len(self._live) + self._reserved >= self.pool_size:
                return False
            self._reserved += 1
            return True

    def _spawn_reserved(self) -> Zygote:
        try:
            return self._start_noting()
        finally:
            with self._lock:
                self._reserved -= 1

    def _release(self, zygote: Zygote, recycle: bool) -> None:
        """Back to the pool, or ended (and replaced, for a pool). A worker retired only because it has
        served `max_runs` runs, its last one fine, is ended on the replacing thread, off the run's path
        (ending a sandbox takes milliseconds); one recycled for a violation is ended before the run
        returns, so nothing of that run outlives it."""
        if self.pool_size <= 0 or self._closed:
            self._end(zygote)
            return
        if not recycle and zygote.runs < self.max_runs:
            self._idle.put(zygote)
            return
        if recycle:
            self._end(zygote)
        retired = None if recycle else zygote
        threading.Thread(target=self._replace, args=(retired,), daemon=True, name="pyflow-respawn").start()

    def _replace(self, retired: Zygote | None) -> None:
        if retired is not None:
            self._end(retired)
        self._replenish()

    def _replenish(self) -> None:
        for attempt in range(5):
            if self._closed or not self._reserve():
                return
            try:
                self._idle.put(self._spawn_reserved())
                return
            except Exception:
                self._spawn_errors += 1
                time.sleep(0.2 * (attempt + 1))

    def _start_noting(self) -> Zygote:
        """_started, remembering whether it failed, for readiness()."""
        try:
            zygote = self._started()
        except BaseException as exc:
            self._spawn_error = _clipped(str(exc) or repr(exc))
            raise
        self._spawn_error = None
        return zygote

    def readiness(self) -> dict:
        """Whether a node could start now, from counts alone: a worker is idle, or busy or starting
        (it will serve), or, without a pool, the latest start of one did not fail."""
        idle, live, starting = self._idle.qsize(), len(self._live), self._reserved
        state = {"idle": idle, "live": live, "starting": starting, "spawn_errors": self._spawn_errors}
        if self._closed:
            return {"ready": False, "detail": "the executor is closed", **state}
        if self.pool_size > 0 and (idle or live or starting):
            return {"ready": True, "detail": f"{idle} idle, {live} live worker(s)", **state}
        if self._spawn_error is None:
            return {"ready": True, "detail": "workers start on demand", **state}
        return {"ready": False, "detail": f"no worker is idle or running, and starting one failed: "
                                          f"{self._spawn_error}", **state}

    def _end(self, zygote: Zygote) -> None:
        zygote.kill()
        self.discard(zygote)
        with self._lock:
            self._live.discard(zygote)

    # -- Executor -----------------------------------------------------------------------------------
    def run(self, task: NodeTask, cancel: threading.Event | None = None) -> NodeOutcome:
        started = time.monotonic()
        try:
            zygote = self._acquire(cancel)
        except CancelledRun:
            return _cancelled(started)
        except Exception as exc:
            return NodeOutcome.failure(f"could not start a worker: {exc}", "ExecutorError", "crashed")
        return self._run_and_release(zygote, task, cancel, started)

    def _run_and_release(self, zygote: Zygote, task: NodeTask, cancel, started: float) -> NodeOutcome:
        """Run the node on `zygote`, then hand the worker back whatever happened.

        A worker that is neither idle nor ended still counts as live, so the pool would never replace it:
        a few runs that raised would leave every later run waiting forever. So the release is in a
        `finally`, and a failure of the executor's own becomes the node's error (and ends the worker)
        instead of an exception out of run()."""
        recycle = True
        try:
            outcome, recycle = self._run_on(zygote, task, cancel, started)
            outcome = self.after_run(zygote, task, outcome)
            recycle = recycle or outcome.violation is not None
            return outcome
        except Exception as exc:
            recycle = True
            return NodeOutcome.failure(f"the executor failed while running the node: {_clipped(repr(exc))}",
                                       "ExecutorError", "crashed", duration_ms=_ms(started))
        finally:
            self._release(zygote, recycle)

    def _run_on(self, zygote: Zygote, task: NodeTask, cancel, started: float) -> tuple[NodeOutcome, bool]:
        deadline = time.monotonic() + task.limits.timeout_s + GRACE_S
        try:
            self.before_run(zygote, task)
        except OSError as exc:  # the worker's cgroup vanished, say: never raise out of run()
            return NodeOutcome.failure(f"could not prepare the node's worker: {exc}", "ExecutorError", "crashed",
                                       duration_ms=_ms(started)), True
        try:
            header, value = zygote.request(self.prepare_payload(zygote, task), deadline, cancel)
        except CancelledRun:
            return _cancelled(started), True
        except TimeoutError:
            return NodeOutcome.failure(f"timed out after {task.limits.timeout_s:g} s", "Timeout", "timeout",
                                       duration_ms=_ms(started)), True
        except FrameTooLarge as exc:
            return NodeOutcome.failure(f"the node's worker broke the protocol: {exc}", "ProtocolError", "crashed",
                                       duration_ms=_ms(started)), True
        except (ZygoteDied, ValueError) as exc:
            return NodeOutcome.failure(f"the node's worker process ended unexpectedly: {exc}", "NodeCrashed",
                                       "crashed", duration_ms=_ms(started)), True
        return _outcome(header, value, started, task.limits.result_kb), bool(header.get("recycle"))

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._spawn_requests.put(None)
        with self._lock:
            live = list(self._live)
        for zygote in live:
            self._end(zygote)
        while not self._idle.empty():  # ended above; a later run must not be handed one
            try:
                self._idle.get_nowait()
            except queue.Empty:
                break

    def live_pids(self) -> list[int]:
        with self._lock:
            return [z.pid for z in self._live]


def compose_answer(header: dict, stdout: bytes | bytearray, result: bytes | bytearray) -> tuple[dict, str | None]:
    """The run's header ({"ok", "error", "stdout", "duration_ms", "violation", "recycle"}) and the value's
    JSON text, from the worker's own account and the child's raw result. The result comes from node
    code, so it is checked rather than trusted: anything malformed reads as a crash. A bytearray result
    is consumed (emptied) once its text is taken, so the frame and the parsed value never coexist; the
    text is None when it is not ASCII, which the worker's JSON always is."""
    text = stdout.decode("utf-8", "replace")
    if header.get("stdout_seen", 0) > len(stdout):
        text += TRUNCATED_MARK.format(header.get("stdout_cap"))
    violation, recycle = header.get("violation"), header.get("recycle")
    answer = {"ok": False, "error": _clean_error(header.get("error")), "stdout": text,
              "duration_ms": header.get("duration_ms"), "violation": violation and safe_text(violation),
              "recycle": recycle and safe_text(recycle)}
    meta, value = split_result(result)
    if answer["error"] is not None:
        return answer, None
    parsed = _parse_meta(meta)
    if parsed is None:
        ended = header.get("exit") or {}
        answer["violation"] = safe_text(str(ended.get("violation") or "crashed"))
        answer["error"] = _error("NodeCrashed", str(ended.get("message") or "the node process returned no result"))
        return answer, None
    answer["ok"], answer["error"] = parsed
    if answer["error"] and answer["error"]["type"] == "MemoryError":
        answer["violation"] = "memory"
    return answer, (value if answer["ok"] else None)


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


def _parse_meta(meta: str | None) -> tuple[bool, dict | None] | None:
    """(ok, error) from the child's result line, or None when it is missing or malformed. The line is
    small unless node code wrote it: one built to take memory is refused unparsed."""
    try:
        parsed = load(meta, 2 * len(meta) + (1 << 20)) if meta else None
    except Exception:  # Refused, RecursionError, MemoryError, ...: the line came from node code
        return None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("ok"), bool):
        return None
    if parsed["ok"]:
        return True, None
    return False, _clean_error(parsed.get("error")) or _clean_error({})


def _clean_error(error) -> dict | None:
    """An error of the shape every reader expects ({"type", "message", "traceback": [lines]}), from
    whatever the worker or node code wrote; None stays None."""
    if error is None:
        return None
    error = error if isinstance(error, dict) else {}
    lines = error.get("traceback") if isinstance(error.get("traceback"), list) else []
    return _error(str(error.get("type") or "NodeError"), str(error.get("message") or "the node failed"),
                  [str(line) for line in lines])


def _error(kind: str, message: str, traceback: list | None = None) -> dict:
    """Lone surrogates (from an exception message, say) become U+FFFD: storage, events and HTTP all
    write UTF-8, which cannot carry them."""
    return {"type": safe_text(kind), "message": safe_text(message),
            "traceback": [safe_text(line) for line in traceback or []]}


def _outcome(header: dict, value: str | None, started: float, result_kb: int) -> NodeOutcome:
    duration = float(header.get("duration_ms") or _ms(started))
    stdout = header.get("stdout") or ""
    if header.get("ok"):
        parsed, error = parse_value(value, result_kb)
        if error is not None:
            kind, message, violation = error
            return NodeOutcome.failure(message, kind, violation, stdout, duration)
        return NodeOutcome(ok=True, value=parsed, stdout=stdout, duration_ms=duration)
    error = header.get("error") or _error("NodeError", "the node failed")
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
        why = _clipped(str(exc))
    return None, ("ResultError", f"the node returned a value that cannot be read: {why}", "crashed")


def _clipped(text: str, size: int = 300) -> str:
    return text if len(text) <= size else text[:size] + "..."


def _cancelled(started: float) -> NodeOutcome:
    return NodeOutcome.failure("the run was cancelled", "Cancelled", "cancelled", duration_ms=_ms(started))


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 3)
