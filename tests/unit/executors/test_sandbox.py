"""The bubblewrap sandbox: what node code can see and do inside it, the limits a nodespec may set, the
server refusing to start where bubblewrap cannot run, and no sandbox outliving its server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
import requests

from pyflow import process_identity
from pyflow.engine.execution import MAX_LIMITS
from pyflow.executors import sandbox as sandbox_module
from pyflow.executors.cgroups import CGROUP_ROOT, _own_paths
from pyflow.executors.sandbox import ExecutorUnavailable, SandboxExecutor
from tests.support.server import ROOT, LiveServer

from .conftest import make_task, needs_root, started, wait_until

LOOK = '''
def func():
    import os, resource
    status = dict(line.split(":\\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\\t" in line)
    return {
        "uid": os.getuid(), "gid": os.getgid(), "cwd": os.getcwd(), "top": sorted(os.listdir("/")),
        "etc": sorted(os.listdir("/etc")), "dev": sorted(os.listdir("/dev")),
        "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        "interfaces": sorted(line.split(":")[0].strip() for line in open("/proc/net/dev").readlines()[2:]),
        "cap_eff": status["CapEff"].strip(), "cap_bnd": status["CapBnd"].strip(),
        "writable": [p for p in ("/", "/etc", "/usr", "/dev", "/run", "/run/pyflow", "/tmp", "/dev/shm")
                     if os.access(p, os.W_OK)],
    }
'''


def test_node_code_sees_only_what_the_interpreter_needs(sandbox):
    outcome = sandbox.run(make_task(LOOK))
    assert outcome.ok, outcome.error
    seen = outcome.value
    assert seen["cwd"] == "/tmp"
    assert {"dev", "etc", "proc", "run", "tmp", "usr"} <= set(seen["top"]) <= \
        {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "run", "sbin", "tmp", "usr"}
    assert seen["etc"] == ["ld.so.cache"]
    assert set(seen["dev"]) <= {"null", "zero", "full", "random", "urandom", "tty", "shm", "pts", "ptmx", "fd",
                                "stdin", "stdout", "stderr", "core"}
    assert seen["interfaces"] == ["lo"]
    assert max(seen["pids"]) < 10, "a fresh /proc shows only the sandbox's own few processes"
    assert int(seen["cap_eff"], 16) == 0 and int(seen["cap_bnd"], 16) == 0
    assert seen["writable"] == ["/tmp", "/dev/shm"]


@needs_root
def test_node_code_never_runs_as_root(sandbox):
    seen = sandbox.run(make_task(LOOK)).value
    assert seen["uid"] == 65534 and seen["gid"] == 65534


def bwrap_argv() -> list[str]:
    executor = SandboxExecutor(pool_size=0, cgroups=False)
    try:
        return executor.bwrap_argv(99)
    finally:
        executor.close()


def options(argv: list[str], flag: str) -> list[tuple[str, str]]:
    """The two operands of every `flag` in argv (--ro-bind SRC DEST, --symlink TARGET LINK)."""
    return [(argv[i + 1], argv[i + 2]) for i, a in enumerate(argv) if a == flag]


def test_bwrap_command_line_isolates_everything():
    argv = bwrap_argv()
    for flag in ("--unshare-all", "--unshare-user", "--die-with-parent", "--new-session", "--clearenv",
                 "--disable-userns", "--proc", "--dev"):
        assert flag in argv
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    remounts = [i for i, a in enumerate(argv) if a == "--remount-ro"]
    assert [argv[i + 1] for i in remounts] == ["/dev", "/"]
    mounts = [i for i, a in enumerate(argv) if a in ("--tmpfs", "--ro-bind", "--ro-bind-data", "--proc", "--dev",
                                                     "--dir", "--symlink")]
    assert max(mounts) < remounts[-1], "the root is made read-only after everything is mounted"
    assert "--bind" not in argv and "--dev-bind" not in argv
    env = [argv[i + 1] for i, a in enumerate(argv) if a == "--setenv"]
    assert env == ["PATH", "HOME", "LANG", "LD_BIND_NOW"]  # the last for the loader; the worker drops it


def test_bwrap_binds_only_the_interpreter_its_stdlib_the_loader_and_the_libraries_they_load():
    argv = bwrap_argv()
    binds = options(argv, "--ro-bind")
    assert all(source == dest for source, dest in binds), "everything is bound at its own path"
    bound = [source for source, _ in binds]
    python = os.path.realpath(sandbox_module.SANDBOX_PYTHON)
    version = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert [path for path in bound if os.path.isdir(path)] == [f"/usr/lib/python{version}"]
    assert python in bound and "/etc/ld.so.cache" in bound
    files = [path for path in bound if path not in (f"/usr/lib/python{version}", "/etc/ld.so.cache", python)]
    assert all(os.path.isfile(path) and not os.path.islink(path) for path in files), files
    names = [os.path.basename(path) for path in files]
    for needed in ("ld-linux", "libc.so.6", "libm.so.6", "libz.so", "libssl.so", "libcrypto.so", "libsqlite3.so",
                   "libffi.so"):
        assert any(name.startswith(needed) for name in names), (needed, names)
    for broad in ("/usr", "/usr/lib", "/usr/bin", "/usr/share", "/usr/local", "/lib", "/etc", "/bin"):
        assert broad not in bound, broad
    links = {link: target for target, link in options(argv, "--symlink")}
    assert os.path.realpath(os.path.join("/usr/bin", links["/usr/bin/python3"])) == python


def unneeded_library() -> str:
    """A shared library on this host that the sandbox's Python does not load."""
    bound = {os.path.basename(source) for source, _ in options(bwrap_argv(), "--ro-bind")}
    for candidate in sorted(Path("/usr/lib/x86_64-linux-gnu").glob("lib*.so*")):
        real = Path(os.path.realpath(candidate))
        if real.is_file() and real.name not in bound:
            return str(candidate)
    pytest.skip("no shared library here that python3 does not need")


PEEK = '''
def func(paths):
    import os
    seen = {}
    for path in paths:
        try:
            seen[path] = sorted(os.listdir(path)) if os.path.isdir(path) else len(open(path, "rb").read())
        except OSError as exc:
            seen[path] = type(exc).__name__
    return seen
'''


def test_node_code_cannot_list_or_read_the_rest_of_usr(sandbox):
    library = unneeded_library()
    paths = ["/usr/share", "/usr/local", "/usr/bin/bash", "/usr/bin/sh", "/usr/sbin", "/usr/include",
             "/usr/lib/python3/dist-packages", "/usr/lib/ssl", library, "/bin/sh"]
    assert all(os.path.exists(p) for p in ("/usr/share", "/usr/local", "/usr/bin/bash", library)), "the host has them"
    outcome = sandbox.run(make_task(PEEK, paths))
    assert outcome.ok, outcome.error
    assert outcome.value == {path: "FileNotFoundError" for path in paths}, outcome.value
    listed = sandbox.run(make_task(PEEK, ["/usr", "/usr/bin"])).value
    assert set(listed["/usr"]) <= {"bin", "lib", "lib64"}, listed
    assert listed["/usr/bin"] == sorted(["python3", os.path.basename(os.path.realpath(sandbox_module.SANDBOX_PYTHON))])


STANDARD_MODULES = '''
def func():
    import ssl, sqlite3, ctypes, json, decimal, zlib, hashlib, bz2, lzma, uuid, socket, select, threading
    import xml.etree.ElementTree as tree, unicodedata, curses, readline, subprocess, asyncio, multiprocessing
    db = sqlite3.connect(":memory:")
    worker = threading.Thread(target=lambda: None)
    worker.start()
    worker.join()
    return {"ssl": ssl.create_default_context().protocol > 0, "sqlite": db.execute("SELECT 6 * 7").fetchone()[0],
            "sha256": hashlib.sha256(b"x").hexdigest()[:8], "decimal": str(decimal.Decimal(1) / 8),
            "zlib": zlib.decompress(zlib.compress(b"abc")).decode(), "ctypes": ctypes.c_int(5).value,
            "xml": tree.fromstring("<a><b/></a>")[0].tag, "lzma": len(lzma.compress(b"x")) > 0,
            "bz2": bz2.decompress(bz2.compress(b"y")).decode(), "json": json.dumps({"k": [1]})}
'''


def test_the_standard_library_and_its_extension_modules_work_inside(sandbox):
    outcome = sandbox.run(make_task(STANDARD_MODULES))
    assert outcome.ok, outcome.error
    assert outcome.value == {"ssl": True, "sqlite": 42, "sha256": "2d711642", "decimal": "0.125", "zlib": "abc",
                             "ctypes": 5, "xml": "b", "lzma": True, "bz2": "y", "json": '{"k": [1]}'}


def test_node_code_imports_the_skip_marker_without_the_pyflow_package(sandbox):
    """`import pyflow` inside the sandbox gives the markers only: the package itself is not there."""
    source = ("import pyflow\ndef func():\n    return {'skip': pyflow.SKIP, 'repr': repr(pyflow.SKIP),\n"
              "            'package': hasattr(pyflow, 'engine') or hasattr(pyflow, '__path__')}\n")
    outcome = sandbox.run(make_task(source))
    assert outcome.ok, outcome.error
    assert outcome.value == {"skip": {"$pyflow": "skip"}, "repr": "pyflow.SKIP", "package": False}


def test_without_cgroups_the_executor_says_limits_are_rlimits_only():
    executor = SandboxExecutor(pool_size=1, cgroups=False)
    try:
        executor.start()
        info = executor.describe()
        assert "rlimits only" in info["isolation"]
        assert any("rlimits" in w for w in info["warnings"])
        outcome = executor.run(make_task("def func():\n    return len(bytearray(300 << 20))\n", memory_mb=64))
        assert outcome.violation == "memory" and "memory limit of 64 MB" in outcome.error["message"]
    finally:
        executor.close()


@pytest.mark.parametrize("option, reason", [({"python": "/nonexistent/python3"}, "/nonexistent/python3 is missing")])
def test_start_refuses_naming_the_choices(option, reason):
    executor = SandboxExecutor(pool_size=1, **option)
    with pytest.raises(ExecutorUnavailable) as raised:
        executor.start()
    message = str(raised.value)
    assert reason in message and "--executor docker" in message and "--executor unsafe-process" in message


def test_the_sandbox_runs_the_worker_as_bytecode_compiled_by_its_own_interpreter(sandbox):
    """Loading bytecode rather than compiling the script leaves the zygote (forked once per node) a third
    smaller; the interpreter inside compiles it, so its bytecode format is always its own."""
    sandbox.run(make_task("def func():\n    return 1\n"))
    lines = [Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") for pid in sandbox.live_pids()]
    assert lines and all(sandbox_module.WORKER_PATH.encode() in line for line in lines)
    magic = subprocess.run([sandbox.python, "-I", "-S", "-c", "import importlib.util, sys; "
                            "sys.stdout.buffer.write(importlib.util.MAGIC_NUMBER)"], capture_output=True).stdout
    assert sandbox.worker_program().startswith(magic) and len(magic) == 4


def test_the_sandbox_serves_common_runs_with_the_zygote_loop_in_c():
    """With a C compiler on the host, each sandbox's zygote runs its loop in C (bound in as a shared
    library): after the first run of a control frame, its runs write to few of the pages the zygote
    shares with its children (page faults, unlike time, do not depend on the machine's load)."""
    from pyflow.executors.channel import compiled_loop
    if compiled_loop() is None:
        pytest.skip("no C compiler on this machine: the zygote's loop runs in Python (make installs gcc)")
    task = make_task("def func(n):\n    return n + 1\n", 1)
    sandbox = started("sandbox", pool_size=1, max_runs=1000)
    try:
        assert sandbox.run(task).value == 2
        assert [worker.info["loop"] for worker in sandbox._live] == ["c"]
        before = _zygote_faults(sandbox)
        for _ in range(30):
            assert sandbox.run(task).value == 2
        assert (_zygote_faults(sandbox) - before) / 30 < 40
    finally:
        sandbox.close()


def test_without_the_loop_in_c_the_sandbox_serves_with_the_loop_in_python(monkeypatch):
    """No C compiler (or one that fails): nothing is bound in for the loop, and the zygotes serve with
    their loop in Python, isolated the same way."""
    monkeypatch.setattr(sandbox_module, "compiled_loop", lambda: None)
    sandbox = started("sandbox", pool_size=1)
    try:
        outcome = sandbox.run(make_task("def func():\n    import os\n    return sorted(os.listdir('/run/pyflow'))\n"))
        assert outcome.ok, outcome.error
        assert [worker.info["loop"] for worker in sandbox._live] == ["python"]
        assert "worker.pyc" in outcome.value and "loop.so" not in outcome.value
    finally:
        sandbox.close()


OWN_SETTINGS = ("def func():\n"
                "    return [open('/proc/self/oom_score_adj').read().strip(), open('/proc/self/comm').read().strip()]\n")


@pytest.mark.parametrize("loop", ["c", "python"])
def test_a_node_process_is_the_oom_killers_first_choice_and_says_what_it_is(loop, monkeypatch):
    """Each node's process (and the spare waiting for the next run) tells the OOM killer to take it
    first, not its zygote, and is named for what it is, with either loop. Children are undumpable like
    the zygote (no node may trace the next run's spare), and /proc/self of an undumpable process belongs
    to root: these are set while the fresh child is briefly dumpable, before any node can run beside it."""
    from pyflow.executors.channel import compiled_loop
    if loop == "python":
        monkeypatch.setattr(sandbox_module, "compiled_loop", lambda: None)
    elif compiled_loop() is None:
        pytest.skip("no C compiler on this machine: the zygote's loop runs in Python (make installs gcc)")
    sandbox = started("sandbox", pool_size=1)
    try:
        for _ in range(3):
            outcome = sandbox.run(make_task(OWN_SETTINGS))
            assert outcome.ok, outcome.error
            assert outcome.value == ["1000", "pyflow-node"]
        assert [worker.info["loop"] for worker in sandbox._live] == [loop]
        zygote, = _zygotes(sandbox)
        spare = wait_until(lambda: _named_child(zygote, "pyflow-spare"), timeout=10)
        assert Path(f"/proc/{spare}/oom_score_adj").read_text().strip() == "1000"
        assert Path(f"/proc/{zygote}/oom_score_adj").read_text().strip() != "1000"
    finally:
        sandbox.close()


def test_the_zygote_binds_its_library_functions_at_start_and_nodes_do_not_inherit_the_setting():
    """Bound lazily, every node's process would bind (and copy the pages of the tables written for)
    each library function only children call. The zygote's interpreter starts with LD_BIND_NOW; node
    code's environment is still only PATH, HOME and LANG."""
    sandbox = started("sandbox", pool_size=1)
    try:
        outcome = sandbox.run(make_task("def func():\n    import os\n    return sorted(os.environ)\n"))
        assert outcome.ok and outcome.value == ["HOME", "LANG", "PATH", "TMPDIR"], outcome
        zygote, = _zygotes(sandbox)
        assert b"LD_BIND_NOW=1" in Path(f"/proc/{zygote}/environ").read_bytes().split(b"\0")
    finally:
        sandbox.close()


def _named_child(pid: int, name: str) -> int | None:
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            if Path(f"/proc/{child}/comm").read_text().strip() == name:
                return int(child)
        except OSError:
            pass
    return None


def _zygotes(sandbox) -> list[int]:
    from tests.hostile.support import descendants, process_table
    table = process_table()
    return [p.pid for root in sandbox.live_pids() for p in descendants(table, root)
            if p.comm == "python3" and table[p.ppid].comm == "bwrap"]


def _zygote_faults(sandbox) -> int:
    """Minor page faults so far of the executor's one sandboxed zygote."""
    zygotes = _zygotes(sandbox)
    assert len(zygotes) == 1, zygotes
    return int(Path(f"/proc/{zygotes[0]}/stat").read_text().rsplit(")", 1)[1].split()[7])


def test_start_refuses_when_the_interpreter_cannot_compile_the_worker(tmp_path):
    python = tmp_path / "python3"
    python.write_text("#!/bin/sh\necho 'no compiler here' >&2\nexit 1\n")
    python.chmod(0o755)
    with pytest.raises(ExecutorUnavailable, match=f"{python} cannot compile the worker script.*--executor docker"):
        SandboxExecutor(pool_size=1, python=str(python)).start()


def test_start_refuses_when_bwrap_is_not_installed(monkeypatch):
    monkeypatch.setattr(sandbox_module, "BWRAP", "bwrap-not-installed-here")
    with pytest.raises(ExecutorUnavailable, match="bwrap is not installed.*--executor docker.*--executor unsafe-process"):
        SandboxExecutor(pool_size=1).start()


# ------------------------------------------------------------------------------------------ serve


def serve_without_sandbox(tmp_path: Path, path_env: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": path_env}
    env.pop("PYFLOW_DB", None)
    return subprocess.run([sys.executable, "-m", "pyflow", "serve", "--port", "0", "--db", str(tmp_path / "db.sqlite"),
                           "--repo-dir", str(tmp_path / "repos"), "--no-stdlib"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


def assert_refused(result: subprocess.CompletedProcess, reason: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "PyFlow serving" not in result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    assert reason in result.stderr
    assert "--executor docker" in result.stderr and "--executor unsafe-process" in result.stderr


def test_serve_refuses_to_start_without_bwrap(tmp_path):
    assert_refused(serve_without_sandbox(tmp_path, "/nonexistent"), "bwrap is not installed")


def test_serve_refuses_to_start_where_bwrap_cannot_create_namespaces(tmp_path):
    """A bwrap that fails the way it does on a kernel without unprivileged user namespaces."""
    fake = Path(tempfile.mkdtemp(prefix="pyflow-fake-bwrap-"))  # reachable by the sandbox user, unlike tmp_path
    try:
        fake.chmod(0o755)
        script = fake / "bwrap"
        script.write_text("#!/bin/sh\necho 'bwrap: No permissions to creating new namespace, likely because the "
                          "kernel does not allow non-privileged user namespaces.' >&2\nexit 1\n")
        script.chmod(0o755)
        result = serve_without_sandbox(tmp_path, f"{fake}:/usr/bin:/bin")
    finally:
        shutil.rmtree(fake)
    assert_refused(result, "No permissions to creating new namespace")


# ------------------------------------------------------------------------------------------ limits


SEE_LIMITS = ("def func(seconds):\n    import resource, time\n    time.sleep(seconds)\n"
              "    return {name: resource.getrlimit(getattr(resource, 'RLIMIT_' + name))[0]\n"
              "            for name in ('CPU', 'NOFILE', 'FSIZE')}\n")
ALLOCATE = "def func(mb):\n    block = bytearray(mb << 20)\n    return len(block) >> 20\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LiveServer(tmp_path_factory.mktemp("sandbox-server"), executor="sandbox", args=("--no-stdlib",)) as live:
        yield live


def node_test(server, spec_id: str, func: str, limits: dict | None, inputs: dict) -> dict:
    doc = {"id": spec_id, "title": spec_id, "func": func,
           "port": {"input": [{"name": n, "order": i, "type": "Any"} for i, n in enumerate(inputs)],
                    "output": [{"name": "out", "type": "Any"}]}}
    if limits is not None:
        doc["limits"] = limits
    answer = requests.post(server.url + "/api/nodespecs", json=doc, timeout=30)
    assert answer.status_code == 201, answer.text
    answer = requests.post(f"{server.url}/api/nodespecs/{spec_id}/test", json={"inputs": inputs}, timeout=120)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_default_limits_apply_to_a_nodespec_without_limits(server):
    result = node_test(server, "limits.default", SEE_LIMITS, None, {"seconds": 0})
    assert result["status"] == "success", result
    assert result["outputs"]["out"] == {"CPU": 30, "NOFILE": 256, "FSIZE": 64 << 20}


def test_nodespec_limits_lower_the_defaults(server):
    result = node_test(server, "limits.lower", SEE_LIMITS, {"timeout_s": 1, "cpu_s": 2, "open_files": 32}, {"seconds": 5})
    assert result["status"] == "fail" and result["error"]["message"] == "timed out after 1 s"
    quick = node_test(server, "limits.lower2", SEE_LIMITS, {"cpu_s": 2, "open_files": 32, "file_size_mb": 1},
                      {"seconds": 0})
    assert quick["outputs"]["out"] == {"CPU": 2, "NOFILE": 32, "FSIZE": 1 << 20}
    small = node_test(server, "limits.small-memory", ALLOCATE, {"memory_mb": 64}, {"mb": 150})
    assert small["status"] == "fail" and "memory limit of 64 MB" in small["error"]["message"]


def test_nodespec_limits_raise_the_defaults(server):
    default = node_test(server, "limits.default-memory", ALLOCATE, None, {"mb": 320})
    assert default["status"] == "fail" and "memory limit of 256 MB" in default["error"]["message"]
    raised = node_test(server, "limits.more-memory", ALLOCATE, {"memory_mb": 512}, {"mb": 320})
    assert raised["status"] == "success" and raised["outputs"]["out"] == 320, raised


def test_nodespec_limits_stop_at_the_server_maxima(server):
    huge = {"cpu_s": 10 ** 7, "open_files": 10 ** 7, "file_size_mb": 10 ** 7, "timeout_s": 10 ** 7}
    result = node_test(server, "limits.huge", SEE_LIMITS, huge, {"seconds": 0})
    assert result["status"] == "success", result
    assert result["outputs"]["out"] == {"CPU": int(MAX_LIMITS.cpu_s), "NOFILE": MAX_LIMITS.open_files,
                                        "FSIZE": MAX_LIMITS.file_size_mb << 20}


# ------------------------------------------------------------------------------------------ lifetime


def server_sandboxes(live: LiveServer) -> list[int]:
    """Pids of every process under the server: its sandboxes (bwrap, init, workers, node children)."""
    from tests.hostile.support import descendants, process_table
    return [p.pid for p in descendants(process_table(), live.proc.pid) if p.state not in ("Z", "X")]


def instance_dirs(pid: int) -> list[Path]:
    own = _own_paths()
    found = []
    for controller in ("memory", "pids"):
        if controller in own:
            found += (CGROUP_ROOT / controller / own[controller].lstrip("/") / "pyflow").glob("*")
    return [path for path in found if getattr(process_identity.parse(path.name), "pid", None) == pid]


@needs_root
def test_no_sandbox_outlives_a_killed_server_and_its_cgroups_are_reaped(tmp_path):
    """SIGKILL the server while a node runs: every sandbox process ends with it, and the next server
    removes the cgroups the dead one left."""
    live = LiveServer(tmp_path / "first", executor="sandbox", args=("--no-stdlib",)).start()
    try:
        sleeper = threading.Thread(target=_run_sleeper, args=(live,), daemon=True)
        sleeper.start()
        assert wait_until(lambda: _node_running(live), timeout=30), "the sleeping node never started"
        processes = server_sandboxes(live)
        assert len(processes) >= 4, processes  # bwrap, its init, the worker, the node
        dead_pid = live.proc.pid
        assert instance_dirs(dead_pid)
    finally:
        live.kill()
    assert wait_until(lambda: not [p for p in processes if _alive(p)], timeout=15), \
        f"sandbox processes outlived the server: {[p for p in processes if _alive(p)]}"
    with LiveServer(tmp_path / "second", executor="sandbox", args=("--no-stdlib",)):
        assert instance_dirs(dead_pid) == []


def _run_sleeper(live: LiveServer) -> None:
    try:
        node_test(live, "lifetime.sleep", "def func():\n    import time\n    time.sleep(120)\n", {"timeout_s": 300}, {})
    except (requests.RequestException, AssertionError):
        pass  # the server is killed under it


def _node_running(live: LiveServer) -> bool:
    """A node's process exists (a worker's child that received its task names itself pyflow-node)."""
    from tests.hostile.support import descendants, process_table
    return any(p.comm == "pyflow-node" for p in descendants(process_table(), live.proc.pid))


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


# ------------------------------------------------------------------------------------------ not root


def portable_packages(workdir: Path) -> Path:
    """PyFlow and what it imports, copied where any user can read them: the checkout and the virtual
    environment may sit in a directory only root can enter (a CI clone under /root, a private tmp)."""
    import importlib
    lib = workdir / "lib"
    shutil.copytree(ROOT / "src" / "pyflow", lib / "pyflow", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("jsonschema", "jsonschema_specifications", "referencing", "rpds", "attr", "attrs", "packaging"):
        module = importlib.import_module(name)
        source = Path(module.__file__).parent
        shutil.copytree(source, lib / source.name, ignore=shutil.ignore_patterns("__pycache__"))
    for extra in Path(importlib.import_module("typing_extensions").__file__).parent.glob("typing_extensions.py"):
        shutil.copy(extra, lib / extra.name)
    seccomp_binding = Path(importlib.import_module("pyseccomp").__file__)  # one module, over libseccomp2
    shutil.copy(seccomp_binding, lib / seccomp_binding.name)
    return lib


NON_ROOT_SCRIPT = '''
import json
from pyflow.engine.execution import Limits, NodeTask
from pyflow.executors import create_executor
executor = create_executor("sandbox", pool_size=1)
executor.start()
def run(src):
    o = executor.run(NodeTask("n", "n", "s", src, [], [], Limits(timeout_s=5, memory_mb=64)))
    return {"ok": o.ok, "value": o.value, "error": o.error, "violation": o.violation}
print(json.dumps({
    "describe": executor.describe(),
    "who": run("def func():\\n    import os\\n    return [os.getuid(), os.getcwd()]\\n"),
    "memory": run("def func():\\n    return len(bytearray(300 << 20))\\n"),
    "write": run("def func():\\n    open('/etc/x', 'w')\\n"),
}))
executor.close()
'''


@needs_root
def test_a_server_that_is_not_root_still_sandboxes_with_rlimits(tmp_path):
    """The non-root path: no user switch, no writable cgroups (so rlimits, with a warning), same isolation."""
    setpriv, python = shutil.which("setpriv"), "/usr/bin/python3"
    system_version = subprocess.run([python, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True,
                                    text=True).stdout.strip()
    if not setpriv or system_version != str(tuple(sys.version_info[:2])):
        pytest.skip("needs setpriv and a system python3 of the venv's version")
    workdir = Path(tempfile.mkdtemp(prefix="pyflow-nonroot-"))
    try:
        lib = portable_packages(workdir)
        script = workdir / "probe.py"
        script.write_text(NON_ROOT_SCRIPT)
        for path in [workdir, *workdir.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        env = {"PATH": "/usr/bin:/bin", "HOME": str(workdir), "PYTHONPATH": str(lib)}
        done = subprocess.run([setpriv, "--reuid", "4242", "--regid", "4242", "--clear-groups", python, str(script)],
                              capture_output=True, text=True, env=env, timeout=120, cwd=workdir)
    finally:
        shutil.rmtree(workdir)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert any("rlimits" in w for w in report["describe"]["warnings"])
    assert report["who"]["value"] == [4242, "/tmp"]
    assert report["memory"]["violation"] == "memory" and "memory limit of 64 MB" in report["memory"]["error"]["message"]
    assert not report["write"]["ok"] and "Read-only file system" in report["write"]["error"]["message"]
