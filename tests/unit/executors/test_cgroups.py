"""Per-sandbox cgroups: limits across every process of a group, out-of-memory kills counted, groups
emptied and removed, and the groups of a dead server reaped."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from pyflow.executors.cgroups import CgroupTree
from pyflow.executors.sandbox import instance_alive, instance_name

from .conftest import needs_root

pytestmark = needs_root


@pytest.fixture()
def tree():
    tree, why = CgroupTree.detect(instance_name(), f"test-{uuid.uuid4().hex[:6]}")  # a live instance
    if tree is None:
        pytest.skip(f"no writable cgroups here: {why}")
    yield tree
    tree.remove()


def joined(group, code: str) -> subprocess.Popen:
    """A python process moved into `group` before it runs `code` (it waits for a line on stdin)."""
    proc = subprocess.Popen([sys.executable, "-c", f"import sys\nsys.stdin.readline()\n{code}"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    for procs in group.procs_files:
        with open(procs, "w") as fh:
            fh.write(str(proc.pid))
    proc.stdin.write("go\n")
    proc.stdin.flush()
    return proc


def test_memory_limit_covers_a_group_and_oom_kills_are_counted(tree):
    group = tree.group("memory")
    group.set_limits(48 << 20, 16)
    assert group.oom_kills() == 0
    proc = joined(group, "blocks = [bytearray(8 << 20) for _ in range(32)]\nprint('survived')")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == -9 and "survived" not in out
    assert group.oom_kills() >= 1


def test_v1_memory_and_swap_limit_follows_the_memory_limit_up_and_down(tree):
    """With swap accounting (memory.memsw.*), memory+swap is held to the memory limit, so a node cannot
    go past its limit into swap; raising and lowering both keep memsw >= memory at every step, as the
    kernel requires."""
    group = tree.group("swap")
    files = {name: group.paths.get("memory", Path("/nonexistent")) / f"memory.{name}limit_in_bytes"
             for name in ("", "memsw.")}
    if tree.version != 1 or not files["memsw."].exists():
        pytest.skip("no cgroup v1 memory+swap accounting here (memory.memsw.limit_in_bytes)")
    for limit in (48 << 20, 96 << 20, 32 << 20, 32 << 20, 64 << 20):
        group.set_limits(limit, 16)
        assert {name: int(path.read_text()) for name, path in files.items()} == {"": limit, "memsw.": limit}


def test_process_limit_counts_every_process_of_the_group(tree):
    group = tree.group("pids")
    group.set_limits(256 << 20, 4)
    code = ("import os, time\nmade = 0\nfor _ in range(10):\n    try:\n        if os.fork() == 0:\n"
            "            time.sleep(30)\n            os._exit(0)\n        made += 1\n    except OSError:\n        break\n"
            "print(made, flush=True)\ntime.sleep(30)")
    proc = joined(group, code)
    made = int(proc.stdout.readline())
    assert made == 3, "the group holds 4 processes: the parent and 3 children"
    assert group.kill() >= 4
    proc.wait(timeout=10)


def test_remove_kills_what_is_left_and_deletes_the_groups(tree):
    group = tree.group("leftovers")
    proc = joined(group, "import time\ntime.sleep(60)")
    tree.remove()
    assert proc.wait(timeout=10) == -9
    assert all(not path.exists() for path in group.paths.values())
    tree.remove()  # twice is fine


def test_groups_of_a_dead_server_are_reaped_at_start(tree):
    dead, _ = CgroupTree.detect(f"server-{2 ** 22 + 1}-1", "executor-1")  # beyond any pid_max: never alive
    group = dead.group("orphan")
    proc = joined(group, "import time\ntime.sleep(60)")
    assert not instance_alive(f"server-{2 ** 22 + 1}-1")
    assert tree.reap_stale(instance_alive) >= 1
    assert proc.wait(timeout=10) == -9
    assert all(not p.parent.exists() for p in dead.bases.values())
    assert all(p.exists() for p in tree.bases.values()), "a live instance's groups are kept"


def test_executors_of_one_process_do_not_remove_each_others_groups(tree):
    other, _ = CgroupTree.detect(instance_name(), f"other-{uuid.uuid4().hex[:6]}")
    proc = joined(other.group("busy"), "import time\ntime.sleep(60)")
    try:
        tree.remove()
        assert proc.poll() is None and all(p.exists() for p in other.bases.values())
    finally:
        other.remove()
    assert proc.wait(timeout=10) == -9
