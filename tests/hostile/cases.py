"""The hostile nodes: each one an attack a user could type into the editor, with what must come of it.

A case names the node's source, its inputs (values, or functions of the suite's context: the server's
port, pid and database, the secret in its environment, canary listeners, unique markers), small limits,
the expected node status and error text, and, where "the attack failed" needs more than the node's own
report, a check. Every case is also held to the suite's common checks (see test_hostile.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

BASE_LIMITS = {"timeout_s": 2, "memory_mb": 64, "cpu_s": 5, "processes": 16, "stdout_kb": 64, "result_kb": 256}
HANG = {"timeout_s": 1}


@dataclass(frozen=True)
class Case:
    name: str
    func: str
    error: str | None  # regex over "Type: message"; None for a run that must succeed
    inputs: dict = field(default_factory=dict)
    limits: dict = field(default_factory=dict)
    check: Callable[[dict, dict], None] | None = None  # (context, result): more proof of containment
    setup: tuple["Case", ...] = ()  # runs before the case on the same executor, results ignored
    healthy_after: int = 1  # normal nodes that must then run, one after another, on the same executor

    @property
    def spec_id(self) -> str:
        return f"hostile.{self.name}"

    def doc(self, spec_doc) -> dict:
        return spec_doc(self.spec_id, self.name, self.func, list(self.inputs), {**BASE_LIMITS, **self.limits})

    def values(self, ctx: dict) -> dict:
        return {k: (v(ctx) if callable(v) else v) for k, v in self.inputs.items()}


def ctx_(key: str):
    return lambda ctx: ctx[key]


# ------------------------------------------------------------------------------------------ checks


def no_connection(listener_key: str):
    def check(ctx, result):
        listener = ctx[listener_key]
        assert listener is None or not listener.accepted, f"a node connected to {listener.host}: {listener.accepted}"
    return check


def daemon_gone(ctx, result):
    from .support import processes_named, wait_until
    assert result["value"] == "a daemon is running", result
    gone = wait_until(lambda: not processes_named(ctx["comm"]), timeout=5)
    assert gone, f"the node's daemon outlived its run: {processes_named(ctx['comm'])}"


def stdout_capped(ctx, result):
    text = result["stdout"]
    assert "output truncated at 16384 bytes" in text, text[-200:]
    assert len(text.encode()) < 16384 + 200, len(text)


# ------------------------------------------------------------------------------------------ sources

SPIN = "def func():\n    while True:\n        pass\n"
SLEEP = "def func():\n    import time\n    time.sleep(10 ** 6)\n"
MEMORY_BOMB = ("def func():\n    blocks = []\n    while True:\n"
               "        blocks.append(bytearray(8 << 20))\n")
MEMORY_SPREAD = '''
def func():
    import os, time
    pids = []
    for _ in range(5):  # 5 x 40 MB, each far below the 64 MB limit; together far above it
        pid = os.fork()
        if pid == 0:
            block = bytearray(40 << 20)
            time.sleep(1.5)
            os._exit(0)
        pids.append(pid)
    ended = [os.waitpid(pid, 0)[1] for pid in pids]
    if any(ended):
        raise RuntimeError(f"children ended with {ended}")
    return "allocated 200 MB across 5 processes"
'''
FORK_BOMB = '''
def func():
    import os
    while True:
        try:
            os.fork()
        except OSError:
            pass
'''
THREAD_BOMB = '''
def func():
    import threading, time
    started = 0
    while True:
        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
        started += 1
'''
HUGE_STDOUT = '''
def func():
    import sys
    for _ in range(400):
        sys.stdout.write("y" * 10000 + "\\n")
    print("the end")
    return "printed 4 MB"
'''
STDOUT_FLOOD = "def func():\n    while True:\n        print('z' * 1000)\n"
HUGE_RESULT = "def func():\n    return 'x' * (8 << 20)\n"
FILL = '''
def func(path):
    with open(path, "wb") as fh:
        while True:
            fh.write(b"x" * (1 << 20))
'''
WRITE = '''
def func(path):
    with open(path, "a") as fh:
        fh.write("pwned by a node\\n")
    return f"wrote {path}"
'''
WRITE_MANY = '''
def func(paths):
    wrote, errors = [], []
    for path in paths:
        try:
            with open(path, "a") as fh:
                fh.write("pwned by a node\\n")
            wrote.append(path)
        except OSError as exc:
            errors.append(f"{path}: {exc.strerror}")
    if wrote:
        return wrote
    raise PermissionError("; ".join(errors))
'''
READ = "def func(path):\n    with open(path, 'rb') as fh:\n        return fh.read().decode('latin-1')\n"
ENVIRON = '''
def func(server_pid, name):
    import os
    looked = [f"/proc/{server_pid}/environ"]
    looked += [f"/proc/{p}/environ" for p in os.listdir("/proc") if p.isdigit()]
    for path in looked:
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        for item in data.split(b"\\0"):
            if item.startswith(name.encode() + b"="):
                return item.decode()
    if name in os.environ:
        return os.environ[name]
    raise LookupError(f"no environment holds {name} ({len(looked)} places looked at)")
'''
CONNECT = '''
def func(targets):
    import socket
    errors = []
    for host, port in targets:
        try:
            with socket.create_connection((host, port), timeout=1):
                return f"connected to {host}:{port}"
        except OSError as exc:
            errors.append(f"{host}:{port}: {exc}")
    raise ConnectionError("; ".join(errors))
'''
DNS = "def func():\n    import socket\n    return socket.getaddrinfo('example.com', 80)\n"
KILL_PARENT = ("def func():\n    import os, signal, time\n    os.kill(os.getppid(), signal.SIGKILL)\n"
               "    time.sleep(30)\n")
KILL_GROUP = "def func():\n    import os, signal\n    os.killpg(os.getpgrp(), signal.SIGKILL)\n"
KILL_ALL = ("def func():\n    import os, signal, time\n    os.kill(-1, signal.SIGKILL)\n    time.sleep(30)\n")
DAEMON = '''
def func(name):
    import ctypes, os, signal, time
    ready_r, ready_w = os.pipe()
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
                signal.signal(sig, signal.SIG_IGN)
            ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)  # PR_SET_NAME: findable on the host
            os.write(ready_w, b"up")
            while True:
                time.sleep(1)
        os._exit(0)
    os.close(ready_w)
    if os.read(ready_r, 2) != b"up":
        raise RuntimeError("the daemon did not start")
    return "a daemon is running"
'''
EXIT = "def func():\n    import os\n    os._exit(0)\n"
SEGFAULT = "def func():\n    import ctypes\n    return ctypes.string_at(0)\n"
RECURSION = "def func():\n    def down(n):\n        return down(n + 1) + 1\n    return down(0)\n"
DEEP_RECURSION = ("def func():\n    import sys\n    sys.setrecursionlimit(10 ** 8)\n"
                  "    def down(n):\n        return down(n + 1) + 1\n    return down(0)\n")
IGNORE_TERM = ("def func():\n    import signal, time\n    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
               "    while True:\n        time.sleep(0.01)\n")
SYMLINKS = '''
def func(targets):
    import os
    os.makedirs("trap/locked", exist_ok=True)
    os.symlink("/", "trap/root")
    os.symlink("/usr", "trap/locked/usr")
    os.chmod("trap/locked", 0)
    errors = []
    for i, target in enumerate(targets):
        os.symlink(target, f"link{i}")
        try:
            with open(f"link{i}", "rb") as fh:
                return f"read {len(fh.read())} bytes of {target}"
        except OSError as exc:
            errors.append(f"{target}: {exc.strerror}")
    raise FileNotFoundError("; ".join(errors))
'''
# Neither JSON nor a pickle can carry these (a cycle, a set, and a generator, which cannot be pickled): the
# executor without an artifact store refuses them as JSON, the server's executor as artifacts.
CYCLIC = ("def func():\n    loop = {'name': 'loop'}\n    loop['self'] = loop\n    loop['gen'] = (i for i in [])\n"
          "    return loop\n")
NON_JSON = "def func():\n    return {'ids': {1, 2, 3}, 'gen': (i for i in [])}\n"
NOT_PICKLABLE = r"^ArtifactError: the return value of type builtins\.dict could not be stored as pickle: .*generator"
NOT_A_NUMBER = "def func():\n    return [float('nan')]\n"
FILES = "def func():\n    handles = []\n    while True:\n        handles.append(open('/dev/null'))\n"
PTRACE = '''
def func():
    import ctypes, os
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.ptrace(16, parent, 0, 0) == 0:  # PTRACE_ATTACH
        return "attached to the worker"
    with open(f"/proc/{parent}/mem", "rb") as fh:
        return fh.read(64).hex()
'''
VICTIM = "def func(data):\n    print(data)\n    return data.upper() + '|' + data\n"
SCAVENGER = '''
def func(first, second):
    """Look for an earlier run's data (first + "-" + second) in memory this process inherited."""
    import ctypes, gc, sys
    def holds(data):
        start = data.find(first)
        while start >= 0:
            tail = start + len(first)
            if data[tail:tail + 1] == b"-" and data[tail + 1:tail + 1 + len(second)] == second:
                return True
            start = data.find(first, start + 1)
        return False
    first, second = first.encode(), second.encode()
    frame, found = sys._getframe(), []
    while frame is not None:
        if holds(repr(frame.f_locals).encode()):
            found.append(f"frame {frame.f_code.co_name}")
        frame = frame.f_back
    for line in open("/proc/self/maps"):
        span, perms = line.split()[:2]
        if not perms.startswith("rw"):
            continue
        low, high = (int(x, 16) for x in span.split("-"))
        if holds(ctypes.string_at(low, high - low)):
            found.append(f"memory {span}")
    if found:
        return found
    raise LookupError("no trace of an earlier run")
'''
PLANT = '''
def func(marker):
    import os
    wrote = []
    for top in ["/", "/etc", "/run", "/run/pyflow", "/dev", "/dev/shm", "/tmp", "/var/tmp", "."]:
        try:
            with open(os.path.join(top, marker), "w") as fh:
                fh.write("planted")
            wrote.append(top)
        except OSError:
            pass
    return wrote
'''
FIND_PLANTED = '''
def func(marker):
    import os
    found = []
    for top in ["/", "/etc", "/run", "/run/pyflow", "/dev", "/dev/shm", "/tmp", "/var/tmp", "."]:
        if os.path.exists(os.path.join(top, marker)):
            found.append(top)
    if found:
        return found
    raise LookupError("nothing an earlier run planted is left")
'''
CPU = "def func():\n    n = 0\n    while True:\n        n += 1\n"


def forged_result(value: str) -> str:
    """A node that skips the worker's encoding: it writes its own result line and value JSON (the bytes
    that `value`, a Python expression, makes) straight to its result pipe, then exits."""
    return ("def func():\n    import os\n"
            "    pipes = [fd for fd in map(int, os.listdir('/proc/self/fd')) if fd > 2\n"
            "             and os.path.exists(f'/proc/self/fd/{fd}') and os.readlink(f'/proc/self/fd/{fd}').startswith('pipe:')]\n"
            f"    view = memoryview(b'{{\"ok\":true}}\\n' + {value})\n"
            "    while view:\n        view = view[os.write(pipes[-1], view):]\n"
            "    os._exit(0)\n")


FORGED_DEEP = forged_result("b'[' * 200000 + b']' * 200000")
FORGED_NAN = forged_result("b'[NaN, Infinity, -Infinity]'")
FORGED_HUGE = forged_result("b'\"' + b'x' * (300 * 1024) + b'\"'")  # valid JSON, over a result_kb of 256


def forged_raw(data: str) -> str:
    """A node that writes the bytes `data` (a Python expression) to its result pipe as they are: no
    result line, no value, whatever a frame header or garbage looks like."""
    return forged_result("b''").replace("b'{\"ok\":true}\\n' + b''", data)


FORGED_TRUNCATED = forged_result("b'[1, 2, {\"a\": '")
FORGED_GARBAGE = forged_raw("bytes(range(256)) * 64")
FORGED_FRAME_HEADER = forged_raw("b'\\x7f\\xff\\xff\\xff' + b'\\x00\\x00\\x00\\x02{}' * 1000")
FORGED_NON_ASCII = forged_result("'[\"gr\u00fc\u00dfe\"]'.encode()")
# 4 MB of empty objects: within a result_kb of 4096 as text, about 120 MB once parsed.
FORGED_MEMORY = forged_result("b'[' + b'{},' * (4 * 1024 * 1024 // 3 - 1) + b'{}]'")
FORGED_SURROGATE_ERROR = forged_raw(
    "b'{\"ok\":false,\"error\":{\"type\":\"Forged\\\\ud800\",\"message\":\"m\\\\udc00\","
    "\"traceback\":[\"  line \\\\ud800\"]}}\\n'")
SURROGATE_RESULT = "def func():\n    return {'text': 'a\\ud800b'}\n"
SURROGATE_EXCEPTION = "def func():\n    raise ValueError('a\\ud800b')\n"
SURROGATE_STDOUT = ("def func():\n    import os, sys\n    os.write(1, 'raw \\ud800\\n'.encode('utf-8', 'surrogatepass'))\n"
                    "    sys.stdout.reconfigure(errors='surrogatepass')\n    print('printed \\udfff')\n"
                    "    return 'printed'\n")


def nested_source(depth: int) -> str:
    return f"def func():\n    value = 'bottom'\n    for _ in range({depth}):\n        value = [value]\n    return value\n"


def replaced_in_stdout(ctx, result):
    assert result["stdout"] == "raw \ufffd\ufffd\ufffd\nprinted \ufffd\ufffd\ufffd\n", result["stdout"]


def nested_64(ctx, result):
    value, depth = result["value"], 0
    while isinstance(value, list):
        value, depth = value[0], depth + 1
    assert (depth, value) == (64, "bottom"), result


# After a forged result, more normal nodes than the suite's pools hold (one worker each) must still run:
# a worker lost by a run that went wrong would leave every later run waiting.
AFTER_FORGERY = 3


def _hardware_targets(ctx):
    return [[ctx["outside_host"], ctx["canary_outside"].port]] if ctx["outside_host"] else []


CASES: list[Case] = [
    # -- time
    Case("infinite-loop", SPIN, r"^Timeout: timed out after 1 s$", limits=HANG),
    Case("sleep-forever", SLEEP, r"^Timeout: timed out after 1 s$", limits=HANG),
    Case("sigterm-ignored", IGNORE_TERM, r"^Timeout: timed out after 1 s$", limits=HANG),
    Case("cpu-time", CPU, r"CPU time limit of 1 s exceeded", limits={"timeout_s": 5, "cpu_s": 1}),
    # -- memory, processes, threads, files
    Case("memory-bomb", MEMORY_BOMB, r"memory limit of 64 MB exceeded"),
    Case("memory-spread-over-children", MEMORY_SPREAD, r"memory limit of 64 MB exceeded", limits={"timeout_s": 6}),
    Case("fork-bomb", FORK_BOMB, r"^Timeout: timed out after 1 s$", limits=HANG),
    Case("thread-bomb", THREAD_BOMB, r"can't start new thread|Resource temporarily unavailable"),
    Case("open-files", FILES, r"Too many open files", limits={"open_files": 64}),
    Case("file-size", FILL, r"File too large", inputs={"path": "big.bin"}, limits={"file_size_mb": 2}),
    Case("disk-fill-tmp", FILL, r"No space left on device|memory limit of 64 MB", inputs={"path": "/tmp/fill.bin"},
         limits={"file_size_mb": 1024}),
    Case("disk-fill-shm", FILL, r"No space left on device|memory limit of 64 MB|Read-only|No such file",
         inputs={"path": "/dev/shm/fill.bin"}, limits={"file_size_mb": 1024}),
    # -- output
    Case("huge-stdout", HUGE_STDOUT, None, limits={"stdout_kb": 16}, check=stdout_capped),
    Case("stdout-flood", STDOUT_FLOOD, r"^Timeout: timed out after 1 s$", limits={**HANG, "stdout_kb": 16},
         check=stdout_capped),
    Case("huge-return-value", HUGE_RESULT, r"^ResultTooLarge: .*over the limit of 64 KiB",
         limits={"result_kb": 64}),
    Case("cyclic-return-value", CYCLIC, r"circular reference|" + NOT_PICKLABLE),
    Case("non-json-return-value", NON_JSON, r"^TypeError: .*type set cannot be carried as JSON|" + NOT_PICKLABLE),
    Case("nan-return-value", NOT_A_NUMBER, r"nan or infinity"),
    Case("forged-deeply-nested-result", FORGED_DEEP,
         r"^ResultError: the node returned a value that cannot be read: it is nested too deeply$",
         limits={"result_kb": 1024}, healthy_after=AFTER_FORGERY),
    Case("forged-nan-result", FORGED_NAN,
         r"^ResultError: the node returned a value that cannot be read: it holds NaN, which JSON cannot carry$",
         healthy_after=AFTER_FORGERY),
    Case("forged-huge-result", FORGED_HUGE, r"^ResultTooLarge: the return value is \d+ bytes of JSON, over the "
         r"limit of 256 KiB$", healthy_after=AFTER_FORGERY),
    Case("forged-truncated-result", FORGED_TRUNCATED,
         r"^ResultError: the node returned a value that cannot be read: Expecting value", healthy_after=AFTER_FORGERY),
    Case("forged-garbage-result", FORGED_GARBAGE, r"^NodeCrashed: the node process (wrote a result that cannot be "
         r"read|exited with status 0 before returning a result)$", healthy_after=AFTER_FORGERY),
    Case("forged-frame-header", FORGED_FRAME_HEADER, r"^NodeCrashed: the node process (wrote a result that cannot "
         r"be read|exited with status 0 before returning a result)$", healthy_after=AFTER_FORGERY),
    Case("forged-non-ascii-result", FORGED_NON_ASCII, r"^ResultError: the node returned a value that cannot be "
         r"read: it is not ASCII JSON", healthy_after=AFTER_FORGERY),
    Case("forged-memory-hungry-result", FORGED_MEMORY, r"^ResultTooLarge: the return value would take \d+ MB in "
         r"memory, over the limit of 40 MB$", limits={"result_kb": 4096, "timeout_s": 10},
         healthy_after=AFTER_FORGERY),
    Case("forged-error-with-lone-surrogates", FORGED_SURROGATE_ERROR, "^Forged\ufffd: m\ufffd$",
         healthy_after=AFTER_FORGERY),
    Case("lone-surrogate-return-value", SURROGATE_RESULT,
         r"^ResultError: the return value holds a lone surrogate \(U\+D800\), which UTF-8 cannot carry$"),
    Case("lone-surrogate-exception-message", SURROGATE_EXCEPTION, "^ValueError: a\ufffdb$"),
    Case("lone-surrogate-stdout", SURROGATE_STDOUT, None, check=replaced_in_stdout),
    Case("result-nested-at-the-limit", nested_source(64), None, check=nested_64),
    Case("result-nested-over-the-limit", nested_source(65),
         r"^ResultError: the return value is nested 65 levels deep, over the limit of 64$"),
    # -- writes outside the scratch space
    Case("write-root", WRITE, r"Read-only file system|Permission denied",
         inputs={"path": lambda c: "/" + c["marker"]}),
    Case("write-etc", WRITE_MANY, r"^PermissionError: .*(Read-only file system|Permission denied|No such file)",
         inputs={"paths": lambda c: ["/etc/passwd", "/etc/hosts", "/etc/" + c["marker"]]}),
    Case("write-usr", WRITE_MANY, r"^PermissionError: .*(Read-only file system|Permission denied)",
         inputs={"paths": lambda c: [c["python_random"], "/usr/bin/" + c["marker"], "/usr/" + c["marker"]]}),
    Case("write-project", WRITE_MANY, r"^PermissionError: .*(No such file|Read-only file system|Permission denied)",
         inputs={"paths": lambda c: [c["root"] + "/src/pyflow/executors/worker.py", c["root"] + "/" + c["marker"],
                                     c["root"] + "/src/" + c["marker"]]}),
    Case("write-database", WRITE_MANY, r"^PermissionError: .*(No such file|Read-only file system|Permission denied)",
         inputs={"paths": lambda c: [c["db"], c["db"] + "-wal", c["db_dir"] + "/" + c["marker"]]}),
    # -- reads of secrets
    Case("read-etc-shadow", READ, r"(FileNotFoundError|PermissionError): .*/etc/shadow", inputs={"path": "/etc/shadow"}),
    Case("read-database", READ, r"(FileNotFoundError|PermissionError): ", inputs={"path": ctx_("db")}),
    Case("read-server-environment", ENVIRON, r"^LookupError: no environment holds PYFLOW_HOSTILE_SECRET",
         inputs={"server_pid": ctx_("server_pid"), "name": ctx_("secret_var")}),
    Case("read-worker-memory", PTRACE, r"(PermissionError|FileNotFoundError|OSError): "),
    # -- network
    Case("connect-server-port", CONNECT, r"^ConnectionError: .*(refused|unreachable)",
         inputs={"targets": lambda c: [["127.0.0.1", c["server_port"]], ["127.0.0.1", c["canary_local"].port]]},
         check=no_connection("canary_local")),
    Case("connect-outside", CONNECT, r"^ConnectionError: .*(unreachable|No route)",
         inputs={"targets": lambda c: _hardware_targets(c) + [["1.1.1.1", 80]]},
         check=no_connection("canary_outside")),
    Case("dns-lookup", DNS, r"^gaierror: "),
    # -- signals and process escapes
    # Where the zygote is the sandbox's pid 1, the kernel drops its SIGKILL from inside: the node waits out
    # its time. Elsewhere the zygote dies and the run ends with it.
    Case("kill-parent", KILL_PARENT, r"ended unexpectedly|SIGKILL|^Timeout: timed out after 2 s$"),
    Case("kill-process-group", KILL_GROUP, r"ended by SIGKILL"),
    # kill(-1) spares the caller and pid 1: with the zygote as pid 1 and no spare during a run, there is
    # nothing else to kill.
    Case("kill-everything", KILL_ALL, r"ended unexpectedly|SIGKILL|^ProcessLookupError: .*No such process"),
    Case("setsid-double-fork-daemon", DAEMON, None, inputs={"name": ctx_("comm")}, check=daemon_gone),
    Case("os-exit", EXIT, r"^NodeCrashed: the node process exited with status 0 before returning a result$"),
    Case("segfault", SEGFAULT, r"^NodeCrashed: .*SIGSEGV \(segmentation fault\)"),
    Case("recursion-bomb", RECURSION, r"^RecursionError: recursion too deep"),
    Case("deep-recursion-crash", DEEP_RECURSION, r"SIGSEGV|memory limit of 64 MB|RecursionError"),
    # -- the scratch space and what outlives a run
    Case("symlink-tricks", SYMLINKS, r"^FileNotFoundError: .*/etc/shadow: No such file",
         inputs={"targets": lambda c: ["/etc/shadow", c["db"], "/proc/1/root/etc/shadow"]}),
    Case("plant-files-for-later-runs", FIND_PLANTED, r"^LookupError: nothing an earlier run planted is left",
         inputs={"marker": ctx_("marker")},
         setup=(Case("plant", PLANT, None, inputs={"marker": ctx_("marker")}),)),
    Case("read-earlier-runs-memory", SCAVENGER, r"^LookupError: no trace of an earlier run",
         inputs={"first": ctx_("needle_a"), "second": ctx_("needle_b")}, limits={"result_kb": 1024},
         setup=(Case("victim", VICTIM, None, inputs={"data": lambda c: f"{c['needle_a']}-{c['needle_b']}"}),)),
]
