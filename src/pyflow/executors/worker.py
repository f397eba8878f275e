"""The worker that runs node code: a single-threaded "zygote" that forks one child per node run.

This file is standalone (standard library only): executors start it with a bare interpreter, inside a
bubblewrap sandbox, a Docker container or a plain subprocess, as `python3 -I worker.py [--pid-namespace]`.

Protocol on stdin/stdout: frames of a 4-byte big-endian length followed by that many bytes. The zygote
writes a "ready" frame, then for each task frame it answers with a header frame (JSON) and a value frame
(the JSON text of the return value, empty on failure). A task is {"func", "filename", "args", "limits",
"scratch"?, "memory_rlimit"?}; everything arrives as data and is never spliced into code.

The zygote itself never runs node code. Each child applies the limits, runs func(*args), writes its
result to a pipe and exits; the zygote collects stdout and the result with caps, enforces the
wall-clock timeout, and afterwards kills any process the run left behind and empties the scratch space.
"""

import json
import os
import resource
import selectors
import shutil
import signal
import struct
import sys
import time
import traceback

HEADER = struct.Struct(">I")
MAX_TASK_BYTES = 256 * 1024 * 1024
TRUNCATED_MARK = "\n[... output truncated at {} bytes ...]\n"


def read_exact(fd, size):
    chunks = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def read_frame(fd):
    head = read_exact(fd, HEADER.size)
    if head is None:
        return None
    (size,) = HEADER.unpack(head)
    if size > MAX_TASK_BYTES:
        raise ValueError("frame too large")
    return read_exact(fd, size) if size else b""


def write_frame(fd, data):
    view = memoryview(HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


# ----------------------------------------------------------------------------------------- child side


def _apply_limits(limits, memory_rlimit):
    """rlimits for this child; memory and process counts also come from cgroups when the host has them."""
    cpu = max(1, int(limits.get("cpu_s", 30) + 0.999))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    files = int(limits.get("open_files", 256))
    resource.setrlimit(resource.RLIMIT_NOFILE, (files, files))
    size = int(limits.get("file_size_mb", 64)) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    nproc = int(limits.get("nproc_rlimit", 0))
    if nproc > 0:
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    if memory_rlimit:
        mem = int(limits.get("memory_mb", 256)) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))


def _prefer_as_oom_victim():
    try:
        with open("/proc/self/oom_score_adj", "w") as fh:
            fh.write("1000")
    except OSError:
        pass


def _encode_value(value, limit_bytes):
    """The JSON text of a return value, or an error dict saying why it cannot be carried."""
    def reject(obj):
        raise TypeError("a return value of type {} cannot be carried as JSON".format(type(obj).__name__))
    try:
        text = json.dumps(value, allow_nan=False, default=reject, separators=(",", ":"))
    except ValueError as exc:
        message = str(exc)
        if "Circular reference" in message:
            message = "the return value contains a circular reference and cannot be carried as JSON"
        elif "Out of range float" in message:
            message = "the return value holds a float (nan or infinity) that JSON cannot carry"
        return None, {"type": "ValueError", "message": message, "traceback": []}
    except TypeError as exc:
        return None, {"type": "TypeError", "message": str(exc), "traceback": []}
    except RecursionError:
        return None, {"type": "RecursionError", "message": "the return value is nested too deeply for JSON",
                      "traceback": []}
    data = text.encode("utf-8")
    if len(data) > limit_bytes:
        return None, {"type": "ResultTooLarge", "message": "the return value is {} bytes of JSON, over the "
                      "limit of {} KiB".format(len(data), limit_bytes // 1024), "traceback": []}
    return data, None


def _node_traceback(exc, filename):
    """The traceback lines of the node's own code only, not the worker's frames."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    lines = []
    for line in traceback.format_list(frames):
        lines.extend(part for part in line.rstrip("\n").split("\n"))
    return lines


def _describe_exception(exc, filename, limits):
    message = str(exc)
    if isinstance(exc, MemoryError):
        message = "memory limit of {} MB exceeded (MemoryError)".format(limits.get("memory_mb"))
    elif isinstance(exc, RecursionError):
        message = "recursion too deep: {}".format(message)
    return {"type": type(exc).__name__, "message": message, "traceback": _node_traceback(exc, filename)}


def run_child(task, result_fd, output_fd):
    """In the forked child: isolate, apply limits, run the node function, write the result, exit."""
    code = 0
    try:
        os.setsid()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        os.close(output_fd)
        os.closerange(3, result_fd)
        os.closerange(result_fd + 1, 65536)
        if "random" in sys.modules:
            sys.modules["random"].seed()
        scratch = task.get("scratch")
        if scratch:
            os.chdir(scratch)
            os.environ["TMPDIR"] = scratch
        _prefer_as_oom_victim()
        limits = task.get("limits") or {}
        _apply_limits(limits, task.get("memory_rlimit", True))
        data, error = _run_function(task, limits)
        sys.stdout.flush()
        sys.stderr.flush()
        payload = json.dumps({"ok": error is None, "error": error}).encode() + b"\n" + (data or b"")
        view = memoryview(payload)
        while view:
            view = view[os.write(result_fd, view):]
    except BaseException:
        code = 70
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            pass
        os._exit(code)


def _run_function(task, limits):
    filename = task.get("filename") or "<node>"
    source = task["func"]
    import linecache
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {"__name__": "__pyflow_node__", "__builtins__": __builtins__}
    try:
        exec(compile(source, filename, "exec", dont_inherit=True), namespace)
        func = namespace["func"]
        value = func(*task.get("args", []))
    except BaseException as exc:  # the node's own error, whatever it is
        if isinstance(exc, SystemExit):
            return None, {"type": "SystemExit", "message": "the node called exit({})".format(exc.code),
                          "traceback": _node_traceback(exc, filename)}
        return None, _describe_exception(exc, filename, limits)
    return _encode_value(value, int(limits.get("result_kb", 16384)) * 1024)


# ---------------------------------------------------------------------------------------- zygote side


class Collector:
    """Reads a child's output and result pipes with caps, and waits for it with a deadline."""

    def __init__(self, pid, output_fd, result_fd, limits):
        self.pid = pid
        self.stdout_cap = int(limits.get("stdout_kb", 1024)) * 1024
        self.result_cap = int(limits.get("result_kb", 16384)) * 1024 + 65536
        self.stdout = bytearray()
        self.stdout_seen = 0
        self.result = bytearray()
        self.result_overflow = False
        self.status = None
        self.sel = selectors.DefaultSelector()
        self.sel.register(output_fd, selectors.EVENT_READ, "out")
        self.sel.register(result_fd, selectors.EVENT_READ, "res")
        self.pidfd = os.pidfd_open(pid)
        self.sel.register(self.pidfd, selectors.EVENT_READ, "exit")

    def collect(self, deadline):
        """Gather until the child exits; returns "timeout" or "result_too_large" when it had to be killed."""
        while self.status is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._kill()
                return "timeout"
            for key, _ in self.sel.select(timeout=min(remaining, 1.0)):
                if key.data == "exit":
                    self._reap()
                else:
                    self._read(key)
            if self.result_overflow:
                self._kill()
                return "result_too_large"
        self._drain()
        return None

    def _read(self, key):
        try:
            chunk = os.read(key.fd, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            self.sel.unregister(key.fd)
            return
        self._read_chunk(key.data, chunk)

    def _drain(self):
        """After the child exited: read what is buffered without waiting on stragglers."""
        for key in list(self.sel.get_map().values()):
            if key.data == "exit":
                continue
            os.set_blocking(key.fd, False)
            for _ in range(64):  # bounded: a straggler may still be writing
                try:
                    chunk = os.read(key.fd, 65536)
                except BlockingIOError:
                    break
                if not chunk:
                    break
                self._read_chunk(key.data, chunk)

    def _read_chunk(self, kind, chunk):
        if kind == "out":
            self.stdout_seen += len(chunk)
            room = self.stdout_cap - len(self.stdout)
            if room > 0:
                self.stdout += chunk[:room]
        else:
            self.result += chunk
            self.result_overflow = len(self.result) > self.result_cap

    def _kill(self):
        for target in (-self.pid, self.pid):
            try:
                os.kill(target, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self._reap(block=True)

    def _reap(self, block=False):
        try:
            pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            self.status = self.status if self.status is not None else 0
            return
        if pid:
            self.status = status
            try:
                self.sel.unregister(self.pidfd)
            except KeyError:
                pass

    def stdout_text(self):
        text = bytes(self.stdout).decode("utf-8", "replace")
        if self.stdout_seen > len(self.stdout):
            text += TRUNCATED_MARK.format(self.stdout_cap)
        return text

    def close(self):
        for key in list(self.sel.get_map().values()):
            os.close(key.fd)
        self.sel.close()


def describe_exit(status, limits):
    """How a child that returned no result ended, in words."""
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


def sweep(pid_namespace):
    """Kill every process the run left behind. Only inside a private PID namespace, where kill(-1) reaches
    nothing but the sandbox's own processes; returns the pids still present afterwards."""
    if not pid_namespace:
        return []
    me = os.getpid()
    for _ in range(3):
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            return []  # nothing else exists: the common case, at the cost of one system call
        time.sleep(0.001)
        left = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, me)]
        left = [p for p in left if not _is_zombie_of_init(p)]
        if not left:
            return []
    return left


def _is_zombie_of_init(pid):
    try:
        with open("/proc/{}/stat".format(pid)) as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def clean_scratch(path):
    """Empty the scratch directory; returns False when something could not be removed."""
    if not path or not os.path.isdir(path):
        return True
    ok = True
    for name in os.listdir(path):
        full = os.path.join(path, name)
        try:
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full, onerror=_force_remove)
            else:
                os.unlink(full)
        except OSError:
            ok = False
    return ok and not os.listdir(path)


def _force_remove(func, path, _exc):
    try:
        os.chmod(os.path.dirname(path), 0o700)
        os.chmod(path, 0o700)
        func(path)
    except OSError:
        pass


def handle_task(task, pid_namespace):
    """Fork a child for one task and answer (header dict, value bytes)."""
    limits = task.get("limits") or {}
    started = time.monotonic()
    out_r, out_w = os.pipe()
    res_r, res_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(out_r)
        os.close(res_r)
        run_child(task, res_w, out_w)
    os.close(out_w)
    os.close(res_w)
    collector = Collector(pid, out_r, res_r, limits)
    try:
        violation = collector.collect(started + float(limits.get("timeout_s", 30)))
    finally:
        collector.close()
    header = {"ok": False, "error": None, "stdout": collector.stdout_text(),
              "duration_ms": round((time.monotonic() - started) * 1000, 3), "violation": violation}
    value = _settle(header, collector, violation, limits)
    stray = sweep(pid_namespace)
    if not clean_scratch(task.get("scratch")):
        header["recycle"] = "scratch space could not be emptied"
    if stray:
        header["recycle"] = "processes survived the run: {}".format(stray)
    return header, value


def _settle(header, collector, violation, limits):
    if violation == "timeout":
        header["error"] = _plain("Timeout", "timed out after {} s".format(limits.get("timeout_s")))
        return b""
    if violation == "result_too_large" or collector.result_overflow:
        header["error"] = _plain("ResultTooLarge", "the return value is over the limit of {} KiB"
                                 .format(limits.get("result_kb")))
        return b""
    raw = bytes(collector.result)
    meta, _, value = raw.partition(b"\n")
    try:
        parsed = json.loads(meta.decode("utf-8")) if meta else None
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        header["violation"], message = describe_exit(collector.status or 0, limits)
        header["error"] = _plain("NodeCrashed", message)
        return b""
    header["ok"] = bool(parsed.get("ok"))
    header["error"] = parsed.get("error")
    if isinstance(header["error"], dict) and header["error"].get("type") == "MemoryError":
        header["violation"] = "memory"
    return value if header["ok"] else b""


def _plain(kind, message):
    return {"type": kind, "message": message, "traceback": []}


def _make_undumpable():
    """Keep node children (same uid) from ptracing the zygote or reading its memory."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except Exception:
        pass


def serve(pid_namespace):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _make_undumpable()
    infd, outfd = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    write_frame(outfd, json.dumps({"ready": True, "pid": os.getpid(), "python": sys.version.split()[0]}).encode())
    while True:
        frame = read_frame(infd)
        if frame is None:
            return
        try:
            task = json.loads(frame.decode("utf-8"))
            header, value = handle_task(task, pid_namespace)
        except Exception as exc:
            header, value = {"ok": False, "error": _plain("WorkerError", repr(exc)), "stdout": "",
                             "duration_ms": 0, "violation": "crashed", "recycle": "worker error"}, b""
        write_frame(outfd, json.dumps(header).encode("utf-8"))
        write_frame(outfd, value)


if __name__ == "__main__":
    serve("--pid-namespace" in sys.argv[1:])
