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

import errno
import gc
import json
import mmap
import os
import resource
import select
import signal
import stat
import struct
import sys
import time
import traceback

# The worker's script is these parts and then this file (channel.worker_source); run from its file or
# imported (tests), it reads them itself, as data, into its own namespace.
for _part, _name in (("codec.py", "encode_rich"), ("nodeproc.py", "run_child")):
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


class Capture:
    """A capped byte buffer in an anonymous memory map: nothing read into it reaches the zygote's heap,
    and unmapping it returns the pages to the kernel, so later children cannot find the bytes."""

    def __init__(self, cap):
        self.cap = cap
        self.map = mmap.mmap(-1, max(cap, 1))
        self.view = memoryview(self.map)
        self.size = 0
        self.seen = 0

    def read_from(self, fd, spill):
        """Read once from the (non-blocking) fd; bytes past the cap go to `spill` and are only counted.
        True when bytes came, None when none are there yet, False at end of stream."""
        target = self.view[self.size:self.cap] if self.size < self.cap else spill
        try:
            got = os.readv(fd, [target])
        except BlockingIOError:
            got = None
        except OSError:
            got = 0
        if target is not spill:
            target.release()
        if not got:
            return None if got is None else False
        self.seen += got
        self.size = min(self.cap, self.size + got)
        return True

    def data(self):
        return self.view[:self.size]

    def close(self):
        self.view.release()
        self.map.close()


class Collector:
    """Reads a child's output and result pipes with caps, and waits for it with a deadline."""

    def __init__(self, pid, output_fd, result_fd, limits):
        self.pid = pid
        stdout_cap, result_cap = answer_caps(limits)
        self.stdout = Capture(stdout_cap)
        self.result = Capture(result_cap + 1)  # one byte more, to notice an overflow
        self._spill = mmap.mmap(-1, 65536)
        self._spill_view = memoryview(self._spill)
        self.status = None
        self.result_ended = False
        self.pidfd = os.pidfd_open(pid)
        # poll rather than an epoll selector: registering costs no system call, and a run waits on three
        # descriptors a few times at most.
        self._poll = select.poll()
        self._watched = {output_fd: self.stdout, result_fd: self.result, self.pidfd: "exit"}
        for fd in self._watched:
            self._poll.register(fd, select.POLLIN)
        self._fds = (output_fd, result_fd, self.pidfd)

    @property
    def result_overflow(self):
        return self.result.seen >= self.result.cap

    def collect(self, deadline):
        """Gather until the child has exited or its result is complete (the result pipe ended after
        some bytes: the child's own code only exits after that); returns "timeout" or
        "result_too_large" when it had to be killed. A child still exiting is left to `end_child`."""
        while self.status is None and not (self.result_ended and self.result.seen):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._kill()
                return "timeout"
            for fd, _ in self._poll.poll(int(min(remaining, 1.0) * 1000) + 1):
                data = self._watched.get(fd)
                if data == "exit":
                    self._reap()
                elif data is not None:
                    self._read_ready(fd, data)
            if self.result_overflow:
                self._kill()
                return "result_too_large"
        self._drain()
        return None

    def _read_ready(self, fd, capture):
        """Read a pipe that has bytes or has ended, again right away (it is non-blocking), so that a
        child's result and the end of it that follows take one wake-up, not two; a few reads at most
        per wake-up, so that a flood of output cannot keep the deadline from being checked."""
        for _ in range(4):
            got = capture.read_from(fd, self._spill_view)
            if got is None:
                return
            if got is False:
                self._unwatch(fd)
                self.result_ended = self.result_ended or capture is self.result
                return

    def _unwatch(self, fd):
        if self._watched.pop(fd, None) is not None:
            self._poll.unregister(fd)

    def _drain(self):
        """After the child exited or its result is in: read what is buffered without waiting on
        stragglers. Only the pipes poll finds readable are read: a read that would block raises, and
        a raise in the zygote writes to a dozen pages it shares with its next child."""
        for _ in range(64):  # bounded: a straggler may still be writing
            ready = [fd for fd, _ in self._poll.poll(0) if self._watched.get(fd, "exit") != "exit"]
            if not ready:
                return
            for fd in ready:
                if self._watched[fd].read_from(fd, self._spill_view) is False:
                    self._unwatch(fd)

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
            self._unwatch(self.pidfd)

    def end_child(self):
        """After the answer: make sure the child has ended and is reaped. It is usually still exiting
        (its result came first); a node that wrote its own result and went on is killed here."""
        if self.status is None:
            self._kill()

    def close_pipes(self):
        """Close both pipes and the pidfd, also those unregistered on the way (at end of stream, at
        exit): a zygote that kept them would run out of descriptors after a few hundred runs."""
        self._watched.clear()
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass

    def release(self):
        """Unmap every buffer that held the node's output."""
        self.stdout.close()
        self.result.close()
        self._spill_view.release()
        self._spill.close()


def sweep(pid_namespace):
    """Kill every process the run left behind. Only inside a private PID namespace, where kill(-1) reaches
    nothing but the sandbox's own processes (never the caller, nor pid 1: in a bubblewrap sandbox the
    zygote is pid 1 itself); returns the pids still present afterwards. The zygote as pid 1 inherits the
    orphans, so it reaps what it killed."""
    if not pid_namespace:
        return []
    if _nothing_to_kill():
        return []  # the common case, at the cost of one system call
    me = os.getpid()
    for _ in range(3):
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            reap_orphans()
            return []  # nothing else exists
        time.sleep(0.001)
        reap_orphans()
        left = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, me)]
        left = [p for p in left if not _is_zombie(p)]
        if not left:
            reap_orphans()
            return []
    return left


def _nothing_to_kill():
    """Whether kill(-1, SIGKILL) found nothing to signal (ESRCH), asked through libc, which says so
    without the raise os.kill makes of it: a raise writes to a dozen of the pages the zygote shares
    with its next child, and this is every run's path. A zombie counts as something. False when libc
    cannot be called, or something was signalled (the caller then sweeps and reaps)."""
    if _LIBC is None:
        return False
    return _LIBC.kill(-1, 9) == -1 and _ERRNO() == errno.ESRCH


def reap_orphans():
    """Collect every child that has ended (orphans included, once the zygote is pid 1), without waiting:
    a zombie keeps its pid and counts against the sandbox's process limit."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _is_zombie(pid):
    """Whether `pid` has ended and waits to be reaped (or is gone already)."""
    try:
        with open("/proc/{}/stat".format(pid)) as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def clean_scratch(path):
    """Empty a scratch directory the node may have booby-trapped (directories chmod'ed to 0, symlinks
    leading out of it). Never follows a symlink; returns False when something could not be removed."""
    try:
        mode = os.lstat(path).st_mode if path else 0
    except OSError:
        return True
    if not stat.S_ISDIR(mode):
        return True
    try:  # the common case: the node left nothing, and the place is still the owner's to write
        if stat.S_IMODE(mode) & 0o700 == 0o700 and not os.listdir(path):
            return True
    except OSError:
        pass
    try:
        os.chmod(path, stat.S_IMODE(mode) | 0o700)
        _unlock_tree(path)
        for name in os.listdir(path):
            full = os.path.join(path, name)
            if os.path.isdir(full) and not os.path.islink(full):
                import shutil  # only here: importing it costs every sandbox's start a few milliseconds
                shutil.rmtree(full, ignore_errors=True)
            else:
                os.unlink(full)
        return not os.listdir(path)
    except OSError:
        return False


def _unlock_tree(path):
    """Give the owner back its rights on every directory below path, top down, so rmtree can enter them.
    The worker never has more rights than the node it ran, so this cannot lend the node any."""
    for root, dirs, _files in os.walk(path):
        for name in dirs:
            full = os.path.join(root, name)
            if not os.path.islink(full):
                try:
                    os.chmod(full, 0o700)
                except OSError:
                    pass


def scratch_dirs(control):
    """Every directory the run could write to, emptied after it (the working directory first)."""
    dirs = [control.get("scratch")] + list(control.get("scratch_dirs") or [])
    return [d for d in dict.fromkeys(dirs) if d]


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
            violation = collector.collect(started + float(limits.get("timeout_s", 30)))
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


def _set_name(name, fd=None):
    """Name this process (what ps and /proc/<pid>/stat show): a waiting spare is told apart from a
    node's process that outlived its run. Through /proc/self/comm where it is mounted (`fd`, when the
    caller opened it ahead: the open costs some 50 us), which is cheaper for a fresh child than a
    foreign call."""
    if fd is None:
        fd = _name_file()
    if fd is not None:
        try:
            os.write(fd, name)
            return
        except OSError:
            pass
        finally:
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


# ------------------------------------------------------------------- the zygote's loop in C (zygote.c)

LOOP_CHILD, LOOP_END, LOOP_PYTHON, LOOP_FINISH = range(4)


def _loop_state(ctypes):
    """zygote.c's struct loop, field for field."""
    i32, i64, ptr = ctypes.c_int32, ctypes.c_int64, ctypes.c_void_p

    class LoopState(ctypes.Structure):
        _fields_ = [("infd", i32), ("outfd", i32), ("pid_namespace", i32), ("terms_set", i32),
                    ("timeout_s", ctypes.c_double), ("stdout_cap", i64), ("result_cap", i64),
                    ("scratch", ctypes.c_char_p), ("control", ptr), ("control_len", i64), ("control_size", i64),
                    ("frame", ptr), ("frame_len", i64), ("frame_size", i64),
                    ("spare_pid", i32), ("spare_task_w", i32), ("spare_out_r", i32), ("spare_res_r", i32),
                    ("child_task_r", i32), ("child_res_w", i32),
                    ("out", ptr), ("res", ptr), ("spill", ptr), ("out_size", i64), ("res_size", i64),
                    ("spill_size", i64)]
    return LoopState


def load_loop(path, infd, outfd, pid_namespace):
    """(library, its state) of the zygote's loop in C at `path`, or None (no path, or it cannot be
    loaded: the loop in Python serves). Loaded with PyDLL, which holds the interpreter lock while the
    loop runs, as a fork from the interpreter needs."""
    if not path:
        return None
    try:
        import ctypes
        lib = ctypes.PyDLL(path)
        state_type = _loop_state(ctypes)
        lib.pyflow_loop_size.restype = ctypes.c_int64
        if lib.pyflow_loop_size() != ctypes.sizeof(state_type):
            return None
        for name in ("pyflow_loop", "pyflow_loop_keep_control"):
            getattr(lib, name).argtypes = [ctypes.POINTER(state_type)]
            getattr(lib, name).restype = ctypes.c_int
        state = state_type(infd=infd, outfd=outfd, pid_namespace=int(bool(pid_namespace)), spare_task_w=-1,
                           spare_out_r=-1, spare_res_r=-1, child_task_r=-1, child_res_w=-1)
        return lib, state, ctypes
    except (OSError, AttributeError):
        return None


def serve_loop(loop, infd, outfd, pid_namespace):
    """Serve with the loop in C; take over in Python whenever it returns (zygote.c says when)."""
    lib, state, ctypes = loop
    while True:
        done = lib.pyflow_loop(ctypes.byref(state))
        if done == LOOP_CHILD:
            try:
                serve_task(state.child_task_r, state.child_res_w)  # ends the process
            finally:
                os._exit(70)  # never the zygote's loop again, in a child
        if done == LOOP_FINISH:
            report_cleanup(outfd, after_run(_LAST_TERMS[1][1], pid_namespace))
            continue
        if done != LOOP_PYTHON:
            return
        spare = None
        if state.spare_pid:
            spare = Spare.adopt(state.spare_pid, state.spare_task_w, state.spare_out_r, state.spare_res_r)
            state.spare_pid, state.spare_task_w, state.spare_out_r, state.spare_res_r = 0, -1, -1, -1
        frame = ctypes.string_at(state.frame, state.frame_len) if state.frame_len >= 0 else None
        if not serve_one(infd, outfd, pid_namespace, spare, frame):
            return
        if frame is not None and _LAST_TERMS[0] == hash(frame):
            _keep_terms(lib, state, ctypes)


def _keep_terms(lib, state, ctypes):
    """Give the loop in C the terms of the control frame Python just served, so that it serves the next
    tasks like it itself."""
    state.terms_set = 0
    limits, scratch = _LAST_TERMS[1]
    try:
        state.stdout_cap, state.result_cap = answer_caps(limits)
        state.timeout_s = float(limits.get("timeout_s", 30))
        state.scratch = b"".join(os.fsencode(path) + b"\0" for path in scratch) + b"\0"
    except (TypeError, ValueError, OverflowError):
        return
    state.terms_set = int(lib.pyflow_loop_keep_control(ctypes.byref(state)) == 0)


if __name__ == "__main__":
    serve("--pid-namespace" in sys.argv[1:])
