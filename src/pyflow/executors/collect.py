"""Collecting a node's run in the zygote: its output and result read with caps, its end awaited with a
deadline, and afterwards whatever it left behind killed and its scratch places emptied.

Standard library only: part of the worker's script (channel.worker_source), run as one namespace with
codec.py, nodeproc.py, loop.py and worker.py.
"""

import errno
import mmap
import os
import select
import signal
import stat
import time


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
