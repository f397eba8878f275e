"""The worker that runs node code: a single-threaded "zygote" that forks one child per node run.

This file is standalone (standard library only): executors start it with a bare interpreter, inside a
bubblewrap sandbox, a Docker container or a plain subprocess, as `python3 -I worker.py [--pid-namespace]`.

It talks to the host over stdin and stdout in length-prefixed frames; the frames, their order and what
each holds are tabled in docs/architecture.md ("The worker's pipe protocol"). Everything arrives as data
and is never spliced into code.

The zygote itself never runs node code, and never holds a node's data in its own heap: the node frame,
the captured output and the result pass through anonymous memory maps that are unmapped after the run,
so a child forked for a later run cannot find an earlier run's inputs or outputs in the memory it
inherits. Each run gets its own freshly forked child, used once: it is forked ahead of its task, right
after the previous run was answered and cleaned up (so fork and setup cost nothing on the run's critical
path), waits on a pipe as "pyflow-spare", then, as "pyflow-node", applies the task's limits, runs
func(*args), writes its result to a pipe and exits. The zygote collects stdout and the result with caps,
enforces the wall-clock timeout, answers, and then reaps the child, kills any process the run left behind
and empties the scratch space.

Given `--loop PATH`, the zygote serves with its loop in C (zygote.c, a shared library the sandbox
executor builds): the common run then runs no Python in the zygote, which copies far fewer of the pages
it shares with its children. That loop hands each uncommon case back to this one (serve_loop).
"""

import gc
import json
import mmap
import os
import signal
import struct
import sys
import time

# The worker's script is these parts and then this file (channel.worker_source); run from its file or
# imported (tests), it reads them itself, as data, into its own namespace.
for _part, _name in (("codec.py", "encode_rich"), ("nodeproc.py", "run_child"), ("collect.py", "Collector"),
                     ("loop.py", "serve_loop")):
    if _name not in globals():
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), _part)) as _source:
            exec(compile(_source.read(), _source.name, "exec"))
del _part, _name

HEADER = struct.Struct(">I")
MAX_TASK_BYTES = 256 * 1024 * 1024
# The most the worker's own frames (ready, run header, cleanup report) hold; the host refuses larger ones.
OWN_FRAME_CAP = 65536
# Room in the result frame for the child's result line, besides the value's JSON.
RESULT_LINE_ROOM = 65536


def answer_caps(limits):
    """(stdout frame cap, result frame cap) in bytes for a run's limits: what the worker collects at
    most, and what the host accepts at most."""
    return (int(limits.get("stdout_kb", 1024)) * 1024,
            int(limits.get("result_kb", 16384)) * 1024 + RESULT_LINE_ROOM)


def run_timeout(limits):
    """The wall-clock seconds a run may take, from its limits (both loops enforce it)."""
    return float(limits.get("timeout_s", 30))


def read_exact(fd, size):
    chunks = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def read_frame_size(fd):
    """The length announced by the next frame's header, or None at end of input."""
    head = read_exact(fd, HEADER.size)
    if head is None:
        return None
    (size,) = HEADER.unpack(head)
    if size > MAX_TASK_BYTES:
        raise ValueError("frame too large")
    return size


def read_frame(fd):
    size = read_frame_size(fd)
    if size is None:
        return None
    return read_exact(fd, size) if size else b""


def read_frame_mapped(fd):
    """A frame read straight into an anonymous memory map: (map, size), or None at end of input.

    Used for node data, so no copy of it lands in the zygote's heap, where later children would inherit
    it; the caller unmaps it after the fork."""
    size = read_frame_size(fd)
    if size is None:
        return None
    buffer = mmap.mmap(-1, max(size, 1))
    view = memoryview(buffer)
    done = 0
    try:
        while done < size:
            got = os.readv(fd, [view[done:size]])
            if not got:
                raise EOFError("input ended inside a frame")
            done += got
    finally:
        view.release()
    return buffer, size


def write_frame(fd, data):
    """Write a frame without joining header and data, so a mapped buffer is never copied."""
    for part in (HEADER.pack(len(data)), data):
        view = memoryview(part)
        while view:
            view = view[os.write(fd, view):]


# ---------------------------------------------------------------------------------------- zygote side


class Spare:
    """The next run's child, forked ahead of its task once the previous run is cleaned up (so it inherits
    no earlier run's data): it sets itself up and waits on a pipe, which takes fork and setup off the
    run's critical path. Each spare serves exactly one run."""

    def __init__(self):
        task_r, self.task_w = os.pipe()
        self.out_r, out_w = os.pipe()
        self.res_r, res_w = os.pipe()
        try:
            self.pid = os.fork()
        except OSError:
            for fd in (task_r, self.task_w, self.out_r, out_w, self.res_r, res_w):
                os.close(fd)
            raise
        if self.pid == 0:
            try:
                os.close(self.task_w)
                os.close(self.out_r)
                os.close(self.res_r)
                run_child(task_r, res_w, out_w)  # ends the process
            finally:
                os._exit(70)  # never the zygote's loop again, in a child
        for fd in (task_r, out_w, res_w):
            os.close(fd)
        os.set_blocking(self.out_r, False)  # the zygote's ends only: the child's writes must block
        os.set_blocking(self.res_r, False)
        self.consumed = False

    @classmethod
    def adopt(cls, pid, task_w, out_r, res_r):
        """A spare the zygote's loop in C forked (zygote.c), for Python to serve a run with."""
        spare = cls.__new__(cls)
        spare.pid, spare.task_w, spare.out_r, spare.res_r, spare.consumed = pid, task_w, out_r, res_r, False
        return spare

    def hand(self, control_raw, node):
        """Send the task (the node's data straight from its map); False when the spare has ended."""
        self.consumed = True
        view = memoryview(node[0])[:node[1]]
        try:
            write_parts(self.task_w, [HEADER.pack(len(control_raw)), control_raw, HEADER.pack(node[1]), view])
            return True
        except BrokenPipeError:
            return False
        finally:
            view.release()
            os.close(self.task_w)

    def discard(self):
        """End a spare that will not run (it died waiting, or the task could not be handed over)."""
        if not self.consumed:
            os.close(self.task_w)
        self.consumed = True
        for fd in (self.out_r, self.res_r):
            os.close(fd)
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(self.pid, 0)


def handle_task(control_raw, node, spare):
    """Run one task on `spare` (or on a fresh child when the spare has ended); answer (terms, header,
    collector) as soon as the child's result is in. The control frame is read only once the child
    has the task, off the run's path (the child parses its own copy). The caller writes the
    collector's buffers out, releases them, and then cleans up after the run (`after_run`)."""
    started = time.monotonic()
    child = _hand(spare, control_raw, node)
    node[0].close()
    try:
        terms = task_terms(control_raw)
        limits = terms[0]
        collector = Collector(child.pid, child.out_r, child.res_r, limits)
    except BaseException:
        child.discard()
        raise
    try:
        try:
            violation = collector.collect(started + run_timeout(limits))
        finally:
            collector.close_pipes()
        header = _run_header(collector, violation, (time.monotonic() - started) * 1000)
    except BaseException:
        collector.release()
        raise
    return terms, header, collector


# The previous task's terms, by the hash of its control frame: (hash, (limits, scratch places)).
_LAST_TERMS = [None, None]


def task_terms(control_raw):
    """(limits, scratch places) from a task's control frame. The previous task's are reused when its
    frame was the same (the common case: an executor's runs share limits and places), so a run
    parses no JSON in the zygote: a parse writes to a few dozen of the pages the zygote shares with
    the child it forks next, and each such write copies a page. Only these two are kept, never the
    frame itself, which can name the previous run's artifacts."""
    key = hash(control_raw)
    if _LAST_TERMS[0] != key:
        control = json.loads(control_raw.decode("utf-8"))
        _LAST_TERMS[:] = [key, (control.get("limits") or {}, scratch_dirs(control))]
    return _LAST_TERMS[1]


def _hand(spare, control_raw, node):
    """The child that received the task: `spare`, or a freshly forked one when the spare has ended."""
    if spare is not None and spare.hand(control_raw, node):
        return spare
    if spare is not None:
        spare.discard()
    child = Spare()
    if not child.hand(control_raw, node):
        child.discard()
        raise OSError("the node's child ended before it received its task")
    return child


def after_run(scratch, pid_namespace, collector=None):
    """After the run was answered: reap its child (the loop in C has), kill whatever it left, empty the
    scratch space. Done while the host reads the answer and the next task is on its way, and always
    before that task is read; returns why this sandbox must not serve again, or None."""
    try:
        if collector is not None:
            collector.end_child()
        stray = sweep(pid_namespace)
        if stray:
            return "processes survived the run: {}".format(stray)
        if not all([clean_scratch(path) for path in scratch]):
            return "scratch space could not be emptied"
    except Exception as exc:
        return "cleaning up after the run failed: {!r}".format(exc)
    return None


# The zygote's account of a run: facts only (how the child ended as its raw wait status, and a limit the
# zygote enforced), which the host words (channel.compose_answer). Formatted, not encoded: json.dumps
# writes to a few dozen of the pages the zygote shares with its next child.
_RUN_HEADER = '{"violation": %s, "status": %s, "stdout_seen": %d, "stdout_cap": %d, "duration_ms": %.3f}'


def _run_header(collector, violation, duration_ms):
    """The run header's JSON, and whether the result is to be sent (not when the zygote ended the run)."""
    if violation is None and collector.result_overflow:
        violation = "result_too_large"
    head = _RUN_HEADER % ("null" if violation is None else '"%s"' % violation,
                          "null" if collector.status is None else int(collector.status),
                          collector.stdout.seen, collector.stdout.cap, duration_ms)
    return head.encode(), violation is None


def _plain(kind, message):
    return {"type": kind, "message": message, "traceback": []}


_LIBC = None
_ERRNO = None


def _make_undumpable():
    """Keep node children (same uid) from ptracing the zygote or reading its memory."""
    global _LIBC, _ERRNO
    try:
        import ctypes
        _LIBC = ctypes.CDLL(None, use_errno=True)
        _ERRNO = ctypes.get_errno
        _LIBC.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except Exception:
        pass


def _set_name(name, fd=None, keep=False):
    """Name this process (what ps and /proc/<pid>/stat show): a waiting spare is told apart from a
    node's process that outlived its run. Through /proc/self/comm where it can be opened (`fd`, when the
    caller opened it ahead: the open costs some 50 us; closed unless `keep`), which is cheaper for a
    fresh child than a foreign call."""
    if fd is None:
        fd, keep = _name_file(), False
    if fd is not None:
        try:
            os.write(fd, name)
            return
        except OSError:
            pass
        finally:
            if not keep:
                os.close(fd)
    if _LIBC is not None:
        try:
            _LIBC.prctl(15, name, 0, 0, 0)  # PR_SET_NAME = 15
        except Exception:
            pass


def _name_file():
    """This process's /proc/self/comm open for writing, or None."""
    try:
        return os.open(b"/proc/self/comm", os.O_WRONLY)
    except OSError:
        return None


def answer(outfd, head, stdout=b"", result=b""):
    """Write the three answer frames in one go, so the host wakes once per run rather than per piece."""
    write_parts(outfd, [HEADER.pack(len(head)), head, HEADER.pack(len(stdout)), stdout,
                        HEADER.pack(len(result)), result])


def write_parts(fd, pieces):
    """Write byte strings and buffer views with as few system calls as the pipe allows (one, usually)."""
    parts = [memoryview(part) for part in pieces]
    while parts:
        written = os.writev(fd, parts)
        while parts and written >= len(parts[0]):
            written -= len(parts[0])
            parts.pop(0).release()
        if parts and written:
            rest = parts[0][written:]
            parts[0].release()
            parts[0] = rest


def serve_one(infd, outfd, pid_namespace, spare, frame=None):
    """Read one task (its control frame may have been read already: `frame`), answer it, clean up after
    it and say so; False at end of input or when the stream can no longer be trusted."""
    if frame is None:
        frame = read_frame(infd)
    if frame is None:
        return False
    node = None
    try:
        node = read_frame_mapped(infd)
        if node is None:
            return False
        terms, (head, keep), collector = handle_task(frame, node, spare)
    except Exception as exc:
        answer(outfd, json.dumps({"error": _plain("WorkerError", repr(exc)), "violation": "crashed",
                                  "recycle": "worker error", "stdout_seen": 0, "stdout_cap": 0,
                                  "duration_ms": 0}).encode("utf-8"))
        report_cleanup(outfd, "worker error")
        return node is not None  # a task that was not read whole leaves the stream out of step
    finally:
        if node is not None:
            node[0].close()
        if spare is not None and not spare.consumed:
            spare.discard()
    try:
        answer(outfd, head, collector.stdout.data(), collector.result.data() if keep else b"")
    finally:
        collector.release()
    report_cleanup(outfd, after_run(terms[1], pid_namespace, collector))
    return True


def report_cleanup(outfd, recycle):
    """The frame that follows every answer once the run is cleaned up: {"recycle": why not to serve
    again, or null}. The host reads it before it hands this worker its next task."""
    write_frame(outfd, _CLEAN if recycle is None else json.dumps({"recycle": recycle}).encode("utf-8"))


_CLEAN = b'{"recycle": null}'


def _minimal_environment():
    """Leave node code only PATH, HOME and LANG, whatever started the worker added: a container engine
    sets HOSTNAME (and an image its own ENV lines), which a sandbox's --clearenv would have removed."""
    for name in [name for name in os.environ if name not in NODE_ENVIRONMENT]:
        del os.environ[name]


def _option(name):
    """The value after `name` on the worker's command line, or None."""
    args = sys.argv[1:]
    return args[args.index(name) + 1] if name in args[:-1] else None


_IN_PID_NAMESPACE = False


def serve(pid_namespace):
    global _IN_PID_NAMESPACE
    if pid_namespace and os.getpid() != 1:
        # The sweep after each run kills every process this one may signal: right for a namespace's
        # pid 1, ruinous anywhere else (a mistaken start by hand, say).
        sys.stderr.write("worker: --pid-namespace needs this process to be its PID namespace's pid 1; "
                         "it is pid {}\n".format(os.getpid()))
        sys.exit(2)
    _IN_PID_NAMESPACE = pid_namespace
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _minimal_environment()
    _offer_markers()
    site_dir = _option("--site")
    if site_dir:
        _add_environment(site_dir, _option("--preload"))
    _note_signals_to_reset()
    _warm_up()
    _make_undumpable()
    # What the zygote holds now lives as long as it does: out of the collector's sight, a child's garbage
    # collections never walk (and so never copy) those pages.
    gc.freeze()
    infd, outfd = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    loop = load_loop(_option("--loop"), infd, outfd, pid_namespace)
    write_frame(outfd, json.dumps({"ready": True, "pid": os.getpid(), "python": sys.version.split()[0],
                                   "magic": _bytecode_magic(), "loop": "c" if loop else "python"}).encode())
    if loop is not None:
        serve_loop(loop, infd, outfd, pid_namespace)
        return
    while serve_one(infd, outfd, pid_namespace, _next_spare()):
        pass


def _bytecode_magic():
    """This interpreter's bytecode version (importlib.util.MAGIC_NUMBER, from the import system's own
    module, which is always loaded), in hex: the host sends node code compiled when its own is the same."""
    bootstrap = sys.modules.get("_frozen_importlib_external")
    magic = getattr(bootstrap, "MAGIC_NUMBER", None)
    return magic.hex() if isinstance(magic, bytes) else None


def _next_spare():
    """The next run's child, or None when it cannot be forked now (the run will fork its own)."""
    try:
        return Spare()
    except OSError:
        return None


if __name__ == "__main__":
    serve("--pid-namespace" in sys.argv[1:])
