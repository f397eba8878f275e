"""The node's own process: a child forked from the zygote (worker.py) ahead of its task, used for one run.

Standard library only: part of the worker's script (codec.py, this file and worker.py, run as one; see
channel.worker_source). The child waits as "pyflow-spare", rehearsing a run on made-up data so that the
pages a run writes are copied before the task arrives; then, as "pyflow-node", it applies the task's
limits, runs func(*args), writes its result to a pipe and exits.
"""

import _signal
import json
import linecache  # loaded in the zygote already (traceback imports it): an import statement per run is not free
import marshal
import os
import resource
import signal
import sys
import traceback

def _apply_limits(limits, memory_rlimit):
    """rlimits for this child; memory and process counts also come from cgroups when the host has them."""
    cpu = max(1, int(limits.get("cpu_s", 30) + 0.999))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    files = int(limits.get("open_files", 256))
    resource.setrlimit(resource.RLIMIT_NOFILE, (files, files))
    size = int(limits.get("file_size_mb", 64)) * 1024 * 1024
    # Artifacts may be larger than the node's own files: the worker raises the soft limit to write them.
    artifact_bytes = int(limits.get("result_mb", 0)) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, max(size, artifact_bytes)))
    nproc = int(limits.get("nproc_rlimit", 0))
    if nproc > 0:
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    if memory_rlimit:
        mem = int(limits.get("memory_mb", 256)) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))


def _own_settings():
    """In a fresh child: the OOM killer's first choice, named a spare; /proc/self/comm open for writing
    (the child names itself pyflow-node when its task comes), or None. Done while the child is briefly
    dumpable, as zygote.c's own_settings explains: /proc/self of an undumpable process is root's. With
    plain descriptors, not open(): a waiting child pays for every page of the zygote's memory it writes
    to (copy-on-write), and the io stack writes to many."""
    undumpable = _LIBC is not None and _LIBC.prctl(3, 0, 0, 0, 0) == 0  # PR_GET_DUMPABLE = 3
    if undumpable:
        _LIBC.prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    try:
        try:
            fd = os.open(b"/proc/self/oom_score_adj", os.O_WRONLY)
            try:
                os.write(fd, b"1000")
            finally:
                os.close(fd)
        except OSError:
            pass  # the node may still run: only its OOM preference is lost
        name_fd = _name_file()
    finally:
        if undumpable:
            _LIBC.prctl(4, 0, 0, 0, 0)
    _set_name(b"pyflow-spare", name_fd, keep=True)
    return name_fd


def _reject(obj):
    raise TypeError("a return value of type {} cannot be carried as JSON".format(type(obj).__name__))


def _value_encoder():
    """json.dumps(value, allow_nan=False, default=_reject, separators=(",", ":")) as one function, made
    once in the zygote (_warm_up): json.dumps builds an encoder on every call, and a child that builds
    one writes to some fifty more of the pages it shares with the zygote (each a page copy)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator: the plain way
        return lambda value: json.dumps(value, allow_nan=False, default=_reject, separators=(",", ":"))
    encode = make({}, _reject, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, False)
    return lambda value: "".join(encode(value, 0))


_ENCODE = _value_encoder()
# The result line of a run that went well and wrote no artifacts: always the same.
_OK_LINE = json.dumps({"ok": True, "error": None}).encode()


def _encode_value(value, limit_bytes):
    """The JSON text of a return value, or an error dict saying why it cannot be carried."""
    try:
        text = _ENCODE(value)
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
    except Exception as exc:  # a hostile __str__, keys or subclass: still the node's own failure
        return None, {"type": type(exc).__name__, "message": "the return value cannot be carried as JSON: "
                      "{}".format(_safe_str(exc)), "traceback": []}
    data = text.encode("utf-8")
    if len(data) > limit_bytes:
        return None, {"type": "ResultTooLarge", "message": "the return value is {} bytes of JSON, over the "
                      "limit of {} KiB".format(len(data), limit_bytes // 1024), "traceback": []}
    return data, None


def _safe_str(exc):
    try:
        return str(exc)
    except BaseException:
        return "<an exception whose message could not be read>"


def _node_traceback(exc, filename):
    """The traceback lines of the node's own code only, not the worker's frames."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    lines = []
    for line in traceback.format_list(frames):
        lines.extend(part for part in line.rstrip("\n").split("\n"))
    return lines


def _describe_exception(exc, filename, limits):
    message = _safe_str(exc)
    if isinstance(exc, MemoryError):
        message = "memory limit of {} MB exceeded (MemoryError)".format(limits.get("memory_mb"))
    elif isinstance(exc, RecursionError):
        message = "recursion too deep: {}".format(message)
    try:
        lines = _node_traceback(exc, filename)
    except BaseException:
        lines = []
    return {"type": type(exc).__name__, "message": message, "traceback": lines}


def run_child(task_fd, result_fd, output_fd):
    """In a child forked ahead of its task: isolate it (its own session, only its own descriptors, the
    OOM killer's first choice, a name), then serve its task. The zygote's loop in C (zygote.c) does
    the same steps itself and calls serve_task directly."""
    try:
        _die_with_zygote()
        os.setsid()
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        os.close(output_fd)
        _close_all_but(task_fd, result_fd)
        name_fd = _own_settings()
    except BaseException:
        os._exit(70)
    serve_task(task_fd, result_fd, name_fd)


def serve_task(task_fd, result_fd, name_fd=None):
    """In a child set up for its run: wait for the task, apply its limits, run the node function, write
    the result, exit. The zygote closing the task pipe unused (it ends) ends the child. `name_fd`: its
    /proc/self/comm, open for writing."""
    code = 0
    try:
        for sig in _SIGNALS_TO_RESET:
            _signal.signal(sig, 0)  # SIG_DFL
        _rehearse()
        control_raw, node_raw = read_frame(task_fd), read_frame(task_fd)
        os.close(task_fd)
        if control_raw is None or node_raw is None:
            os._exit(0)
        _set_name(b"pyflow-node", name_fd)
        _reseed()
        compiled, node_raw = split_node_frame(node_raw)
        control, task = json.loads(control_raw.decode("utf-8")), json.loads(node_raw.decode("utf-8"))
        del control_raw, node_raw
        scratch = control.get("scratch")
        if scratch:
            os.chdir(scratch)
            os.environ["TMPDIR"] = scratch
        if control.get("site"):
            _add_environment(control["site"], None)
        limits = control.get("limits") or {}
        _apply_limits(limits, control.get("memory_rlimit", True))
        data, error, artifacts = _run_function(task, limits, control.get("artifacts"), compiled)
        _flush_quietly()
        if error is None and not artifacts:
            payload = _OK_LINE + b"\n" + data
        else:
            meta = {"ok": error is None, "error": error}
            if artifacts:
                meta["artifacts"] = artifacts
            payload = json.dumps(meta).encode() + b"\n" + (data or b"")
        view = memoryview(payload)
        while view:
            view = view[os.write(result_fd, view):]
        # The end of the result, now rather than at exit, which unmaps this whole process first.
        os.close(result_fd)
    except BaseException:
        code = 70
    finally:
        _flush_quietly()
        os._exit(code)


REHEARSAL_CONTROL = '{"limits": {"timeout_s": 30, "cpu_s": 30, "memory_mb": 256}, "scratch": "/tmp"}'
REHEARSAL_NODE = '{"func": "def func(a, *b, **c):\\n    return [a + 1]\\n", "filename": "<rehearsal>", "args": [1]}'


def split_node_frame(frame):
    """(the node's code as the host compiled it, marshalled, or None; the node's JSON) from a node
    frame: a 4-byte big-endian length, that many bytes of code, then the JSON. The host compiles the
    node's source when its interpreter's bytecode is this one's (the ready frame says which): a child
    that compiles writes to some fifty more of the pages it shares with the zygote."""
    size = int.from_bytes(frame[:4], "big")
    return (frame[4:4 + size] if size else None), frame[4 + size:]


def _rehearse():
    """Go through a run's steps on made-up data while the spare waits for its task.

    A forked child shares the zygote's memory until it writes to it, and each first write to a page
    copies that page (a fault of a microsecond or more): parsing, compiling, calling and encoding touch
    hundreds. Doing it here, before the task exists, takes those copies off the run's critical path.
    Nothing of the rehearsal is kept: its names are gone before the node's code is read."""
    try:
        json.loads(REHEARSAL_CONTROL)
        task = json.loads(REHEARSAL_NODE)
        namespace = _node_namespace()
        linecache.cache[task["filename"]] = (0, None, [], task["filename"])
        exec(marshal.loads(_REHEARSAL_CODE[0]), namespace)
        _encode_value(namespace["func"](*task["args"]), 1024)
        os.environ["TMPDIR"] = "/tmp"
        del os.environ["TMPDIR"]
        _flush_quietly()
    except BaseException:
        pass
    sys.modules.pop("__pyflow_node__", None)
    linecache.cache.pop("<rehearsal>", None)


def _reseed():
    """Children forked from one zygote would share its random state: give each its own (the standard
    module's, and numpy's global one when an environment's zygote imported numpy ahead)."""
    if "random" in sys.modules:
        sys.modules["random"].seed()
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:
        try:
            numpy_random.seed()
        except BaseException:
            pass


def _die_with_zygote():
    """SIGKILL this child when the zygote ends (the host kills it on cancel or a missed deadline). The
    child runs in a session of its own, so without a PID namespace (unsafe-process) nothing else would
    end it. In a sandbox or container the zygote is the namespace's pid 1, whose end kills every process
    in it: nothing to arm there (and no foreign call, whose first use costs a child a hundred page
    copies)."""
    if _IN_PID_NAMESPACE:
        return
    zygote = os.getppid()
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    if os.getppid() != zygote:  # the zygote ended before the signal was armed
        os._exit(0)


def _close_all_but(*keep):
    """Close every descriptor from 3 up except `keep`: the child holds nothing of the zygote's."""
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 65536)


def _flush_quietly():
    """Flush the node's output; a node that broke its own stdout still gets its result delivered."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass


def _run_function(task, limits, artifacts=None, code=None):
    """(value JSON, error, artifacts written): the node's function run on its arguments, input
    artifacts loaded first and non-JSON results written as artifacts, when the host carries them."""
    filename = task.get("filename") or "<node>"
    source = task["func"]
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = _node_namespace()
    try:
        exec(marshal.loads(code) if code else compile(source, filename, "exec", dont_inherit=True), namespace)
        func = namespace["func"]
    except BaseException as exc:  # the node's own error, whatever it is
        return None, _node_failure(exc, filename, limits), None
    try:  # after the node's code ran: a class it defines is there for the pickles it receives
        args = load_arguments(task.get("args", []), artifacts)
    except BaseException as exc:
        return None, {"type": "InputError", "message": "an input artifact could not be loaded: {}: {}".format(
            type(exc).__name__, _safe_str(exc)), "traceback": []}, None
    try:
        value = func(*args)
    except BaseException as exc:  # the node's own error, whatever it is
        return None, _node_failure(exc, filename, limits), None
    del args
    if not artifacts:
        return _encode_value(value, int(limits.get("result_kb", 16384)) * 1024) + (None,)
    return encode_rich(value, limits, artifacts, _encode_value)


def _node_failure(exc, filename, limits):
    if isinstance(exc, SystemExit):
        return {"type": "SystemExit", "message": "the node called exit({})".format(exc.code),
                "traceback": _node_traceback(exc, filename)}
    return _describe_exception(exc, filename, limits)


def _node_namespace():
    """The node's globals, as a module registered under its name, so that instances of classes the
    node defines can be pickled (by reference to `__pyflow_node__.Name`) and a downstream node defining
    the same class can load them."""
    module = type(sys)("__pyflow_node__")
    module.__builtins__ = __builtins__
    sys.modules["__pyflow_node__"] = module
    return module.__dict__


# ------------------------------------------------------------- what the zygote prepares for its children


class _Skip(dict):
    """pyflow.SKIP: a node that returns it (or gives it as one output's value) ends that branch. It
    travels as the JSON object {"$pyflow": "skip"} (see pyflow/markers.py, the host's side)."""

    def __init__(self):
        dict.__init__(self, {"$pyflow": "skip"})

    def __repr__(self):
        return "pyflow.SKIP"


def _offer_markers():
    """Make `import pyflow` give node code the markers (pyflow.SKIP), without the pyflow package, which
    is not in the sandbox."""
    import types
    module = types.ModuleType("pyflow", "The markers node code may return: pyflow.SKIP ends a branch.")
    module.SKIP = _Skip()
    sys.modules["pyflow"] = module


# The rehearsal's function, compiled once in the zygote (_warm_up): a run's code comes compiled.
_REHEARSAL_CODE = [b""]


def _warm_up():
    """Do once in the zygote what every child would otherwise do first: the first compile() in a
    process sets up the parser and compiler (about a millisecond); children inherit them ready."""
    rehearsal = json.loads(REHEARSAL_NODE)
    _REHEARSAL_CODE[0] = marshal.dumps(compile(rehearsal["func"], rehearsal["filename"], "exec", dont_inherit=True))
    namespace = {}
    exec(compile("def func(a, *b, **c):\n    return [a + 1 for _ in b] or {'k': c}\n", "<warm>", "exec",
                 dont_inherit=True), namespace)
    json.loads(json.dumps({"ok": namespace["func"](1, 2), "error": None}, allow_nan=False, separators=(",", ":")))


NODE_ENVIRONMENT = ("PATH", "HOME", "LANG", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")
# The signals whose handling the zygote changed (Python ignores SIGPIPE, the zygote SIGINT): a child puts
# back their default handling, and only theirs (each reset costs it copy-on-write page faults).
# As plain numbers, reset through _signal: the signal module's wrapper turns numbers into enum members
# and back, which walks (and so copies) some forty pages of the zygote's memory in every child.
_SIGNALS_TO_RESET = []


def _note_signals_to_reset():
    _SIGNALS_TO_RESET[:] = [int(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE,
                                                 signal.SIGCHLD) if signal.getsignal(sig) != signal.SIG_DFL]


def _add_environment(site_dir, preload):
    """An environment's packages: after the standard library on sys.path (so none can shadow a standard
    module), their .pth files honoured, and the modules its nodespecs import imported ahead, once, so
    that the children forked for nodes find them loaded. An import that fails here is left for the node
    to meet (and report) itself."""
    import site
    site.addsitedir(site_dir)
    for name in filter(None, (preload or "").split(",")):
        try:
            __import__(name)
        except BaseException:
            pass
