"""Every node container is hardened: checked in the engine's own record of the container and from inside,
by node code running in it."""

from __future__ import annotations

import json

from pyflow.engine.execution import Limits
from pyflow.executors import seccomp
from pyflow.executors.docker import WORKER_PROCESSES, WORKER_RESERVE_MB

from .conftest import owned, task

INSIDE = '''
def func():
    import os, socket
    lines = open("/proc/self/status").read().splitlines()
    status = dict(line.split(":\\t", 1) for line in lines if ":\\t" in line)
    mounts = {line.split()[1]: line.split()[3] for line in open("/proc/mounts")}
    tmp = os.statvfs("/tmp")
    memory = "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    swap = "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"
    read = lambda path: open(path).read().strip() if os.path.exists(path) else None
    writable = []
    for path in ("/", "/etc", "/usr", "/opt", "/var", "/home"):
        try:
            with open(os.path.join(path, "pyflow-probe"), "w"):
                writable.append(path)
        except OSError:
            pass
    return {"uid": os.getuid(), "gid": os.getgid(), "cap_eff": status["CapEff"].strip(),
            "cap_bnd": status["CapBnd"].strip(), "no_new_privs": status["NoNewPrivs"].strip(),
            "seccomp": status["Seccomp"].strip(), "root": mounts["/"], "tmp": mounts["/tmp"],
            "tmp_bytes": tmp.f_blocks * tmp.f_frsize, "interfaces": [name for _, name in socket.if_nameindex()],
            "memory": read(memory), "memsw": read(swap), "pids": read("/sys/fs/cgroup/pids/pids.max"),
            "init": open("/proc/1/cmdline").read().split("\\0")[0], "shm": os.path.exists("/dev/shm"),
            "writable": writable, "cwd": os.getcwd(), "env": sorted(os.environ)}
'''


def test_engine_record_shows_every_hardening_option(engine, executor, owner):
    ids = owned(engine, owner, instance=executor.instance)
    assert len(ids) == executor.pool_size
    for container in map(engine.containers.get, ids):
        host = container.attrs["HostConfig"]
        assert host["NetworkMode"] == "none"
        assert host["ReadonlyRootfs"] is True
        assert host["Tmpfs"]["/tmp"].startswith("rw,nosuid,nodev,noexec,size=64m")
        assert host["Memory"] == host["MemorySwap"] > 0
        assert host["PidsLimit"] > 0 and host["NanoCpus"] == 1_000_000_000
        assert host["CapDrop"] == ["ALL"] and host["SecurityOpt"][0] == "no-new-privileges"
        profiles = [opt.split("=", 1)[1] for opt in host["SecurityOpt"] if opt.startswith("seccomp=")]
        assert [json.loads(p) for p in profiles] == [seccomp.docker_profile()]
        assert not host.get("Init") and host["AutoRemove"] is True and host["IpcMode"] == "none"
        assert host["LogConfig"]["Type"] == "none"
        config = container.attrs["Config"]
        assert config["User"] == "10001:10001" and config["OpenStdin"] and config["StdinOnce"]
        assert "LD_BIND_NOW=1" in config["Env"]  # for the worker's interpreter; node code never sees it
        labels = config["Labels"]
        assert labels["pyflow.managed"] == "1" and labels["pyflow.owner"] == owner
        assert labels["pyflow.image"] == executor.image and labels["pyflow.process"]


def test_node_code_sees_a_locked_down_container(executor):
    outcome = executor.run(task(INSIDE, limits=Limits(memory_mb=200, processes=20)))
    assert outcome.ok, outcome.error
    seen = outcome.value
    assert seen["uid"] == 10001 and seen["gid"] == 10001
    assert seen["cap_eff"] == seen["cap_bnd"] == "0000000000000000"
    assert seen["no_new_privs"] == "1" and seen["seccomp"] == "2"
    assert seen["root"].startswith("ro,") and seen["writable"] == []
    assert seen["tmp"].startswith("rw,nosuid,nodev,noexec") and seen["tmp_bytes"] == 64 * 1024 * 1024
    assert seen["interfaces"] == ["lo"]
    limit = str((200 + WORKER_RESERVE_MB) * 1024 * 1024)
    assert seen["memory"] == limit and seen["memsw"] in (limit, None)
    assert seen["pids"] == str(20 + WORKER_PROCESSES)
    assert seen["init"] == "python3" and seen["shm"] is False, "the worker is pid 1: no tini to attach to"
    assert seen["cwd"] == "/tmp" and "PYFLOW_DOCKER_OWNER" not in seen["env"] and "LD_BIND_NOW" not in seen["env"]


def test_a_nodespec_image_off_the_allow_list_is_refused(engine, executor):
    """The base image is on the engine but not on the allow-list; the server image never runs nodes."""
    for image in ("pyflow-base:bookworm", "pyflow:latest"):
        try:
            engine.images.get(image)
        except Exception:
            continue
        outcome = executor.run(task("def func():\n    return 1\n", image=image))
        assert not outcome.ok and outcome.error["type"] == "ImageError", outcome
        assert image in outcome.error["message"]
        assert "allow-list" in outcome.error["message"] or "server's own image" in outcome.error["message"]


def test_listing_an_image_allows_it_but_never_the_servers_own(engine, owner):
    from pyflow.executors.docker import DockerExecutor
    ex = DockerExecutor(pool_size=0, owner=owner, images="pyflow-base:bookworm,pyflow:latest")
    try:
        listed = ex.run(task("def func():\n    return 6 * 7\n", image="pyflow-base:bookworm"))
        assert listed.error is None or listed.error["type"] != "ImageError", listed
        try:
            engine.images.get("pyflow:latest")
        except Exception:
            return
        server = ex.run(task("def func():\n    return 1\n", image="pyflow:latest"))
        assert not server.ok and "the PyFlow server's own image" in server.error["message"], server
    finally:
        ex.close()
