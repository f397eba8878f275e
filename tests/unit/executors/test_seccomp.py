"""The system call filter: what the compiled program denies and allows (loaded into a throwaway process
on the host, where nothing else would stop those calls), its architectures, the sandbox refusing to
start without it, and the sandbox's processes out of node code's reach.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap

import pytest

from pyflow.executors import seccomp
from pyflow.executors.sandbox import ExecutorUnavailable, SandboxExecutor
from tests.hostile.kernel import INT80, KERNEL_CALLS, SYSCALLS, resolve_syscalls

from .conftest import make_task, needs_root

x86_64_only = pytest.mark.skipif(os.uname().machine != "x86_64", reason="the probes use x86-64 system calls")

# Runs a node function in a fresh interpreter, under the compiled filter when asked, and prints its
# outcome as JSON: {"value": ...} or {"error": "Type: message"}.
RUNNER = textwrap.dedent('''
    import json, sys
    if sys.argv[1] == "filtered":
        from pyflow.executors.seccomp import build_filter
        build_filter().load()
    namespace = {}
    exec(sys.argv[2], namespace)
    try:
        print(json.dumps({"value": namespace["func"](*json.loads(sys.argv[3]))}))
    except Exception as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
''')


def run_probe(source: str, *args, filtered: bool = True) -> dict:
    done = subprocess.run([sys.executable, "-c", RUNNER, "filtered" if filtered else "plain", source, json.dumps(args)],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def probe_calls() -> list:
    numbers = resolve_syscalls()
    return [[name, numbers[name], args, expected] for name, args, expected in KERNEL_CALLS]


@x86_64_only
def test_the_filter_denies_every_call_of_the_policy_probed_with_its_errno():
    outcome = run_probe(SYSCALLS, probe_calls())
    assert outcome.get("error", "").startswith("PermissionError: denied: ptrace, "), outcome
    denied = outcome["error"].split("denied: ", 1)[1].split(", ")
    assert denied == [name for name, _, _ in KERNEL_CALLS]


@x86_64_only
def test_the_probe_can_fail_without_the_filter():
    """The same calls in a process without the filter are not all refused with the filter's errno."""
    outcome = run_probe(SYSCALLS, probe_calls(), filtered=False)
    assert "value" in outcome, outcome
    assert "clone3" in outcome["value"] and "ptrace" in outcome["value"], outcome


def test_every_name_in_the_policy_is_a_system_call_libseccomp_knows():
    import pyseccomp
    unknown = [name for name in seccomp.denied_syscalls()
               if pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name) == -1]
    assert unknown == []


ALLOWED = '''
def func():
    import ctypes, os, threading
    libc = ctypes.CDLL(None, use_errno=True)
    seen = []
    thread = threading.Thread(target=lambda: seen.append("thread"))
    thread.start()
    thread.join()
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    seen.append(f"fork {os.WEXITSTATUS(os.waitpid(pid, 0)[1])}")
    seen.append(f"personality {libc.personality(ctypes.c_ulong(0xFFFFFFFF)) >= 0}")  # query: allowed
    return seen
'''


def test_threads_forks_and_reading_the_personality_still_work_under_the_filter():
    """clone3 answers ENOSYS, so glibc falls back to clone for threads; a plain fork is no namespace."""
    assert run_probe(ALLOWED) == {"value": ["thread", "fork 7", "personality True"]}


@x86_64_only
def test_the_32_bit_system_call_abi_is_denied():
    assert run_probe(INT80, filtered=False)["value"].startswith("the 32-bit getpid answered ")
    assert run_probe(INT80) == {"error": "PermissionError: the 32-bit getpid was refused with EPERM"}


def test_only_the_native_architecture_is_in_the_filter():
    listing = seccomp.pseudo_code()
    arches = [line.split("filter for arch ", 1)[1].split()[0] for line in listing.splitlines()
              if "filter for arch " in line]
    assert arches == [os.uname().machine]
    after = listing.split("# invalid architecture action", 1)[1].split()
    assert after[:2] == ["action", f"ERRNO({errno.EPERM});"]


def test_the_docker_profile_says_the_same_as_the_filter():
    profile = seccomp.docker_profile()
    assert profile["defaultAction"] == "SCMP_ACT_ALLOW" and len(profile["architectures"]) == 1
    named = {name for rule in profile["syscalls"] for name in rule["names"]}
    assert named == set(seccomp.denied_syscalls())
    clone = [rule for rule in profile["syscalls"] if rule["names"] == ["clone"]]
    assert sorted(rule["args"][0]["value"] for rule in clone) == sorted(seccomp.CLONE_NAMESPACE_FLAGS.values())
    assert [rule["errnoRet"] for rule in profile["syscalls"] if rule["names"] == ["clone3"]] == [errno.ENOSYS]


def test_the_sandbox_refuses_to_start_without_libseccomp(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyseccomp", None)  # import pyseccomp now raises ImportError
    executor = SandboxExecutor(pool_size=0, cgroups=False)
    with pytest.raises(ExecutorUnavailable, match=r"no system call filter: libseccomp cannot be loaded"):
        executor.start()
    executor.close()


def test_the_sandbox_runs_its_worker_as_pid_1_under_the_filter():
    executor = SandboxExecutor(pool_size=0, cgroups=False)
    try:
        argv = executor.bwrap_argv(98, 99)
    finally:
        executor.close()
    assert "--as-pid-1" in argv
    at = argv.index("--seccomp")
    assert argv[at + 1] == "99" and at < len(argv) - argv[::-1].index(executor.python) - 1  # before the worker


SEES = '''
def func():
    import os
    states = {}
    for pid in sorted(int(p) for p in os.listdir("/proc") if p.isdigit()):
        with open(f"/proc/{pid}/stat") as fh:
            states[pid] = fh.read().rsplit(")", 1)[1].split()[0]
    return {"parent": os.getppid(), "me": os.getpid(), "states": states}
'''
ORPHANS = '''
def func():
    import os
    for _ in range(5):
        if os.fork() == 0:
            if os.fork() == 0:
                os._exit(0)  # an orphan that ends at once: a zombie of pid 1 until reaped
            os._exit(0)
        os.wait()
    return "left orphans"
'''


def test_the_zygote_is_pid_1_and_reaps_what_runs_leave(sandbox):
    assert sandbox.run(make_task(ORPHANS)).ok
    seen = sandbox.run(make_task(SEES)).value
    assert seen["parent"] == 1
    assert sorted(seen["states"]) == ["1", str(seen["me"])], f"leftovers or zombies: {seen['states']}"


FORKS = '''
def func():
    import os, time
    made = 0
    for _ in range(40):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            time.sleep(5)
            os._exit(0)
        made += 1
    return made
'''


@needs_root
def test_the_process_limit_counts_the_node_and_its_children_exactly(sandbox):
    """With no bubblewrap init inside, the cgroup holds bwrap, the zygote and the node's processes."""
    assert sandbox.run(make_task(FORKS, processes=5)).value == 4
