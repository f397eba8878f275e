"""The docker executor's pure parts: stream framing, container settings, requirement checks. These need
no engine (but live here, with the executor's other tests)."""

import json
import struct

import pytest

from pyflow.engine.execution import Limits, NodeTask
from pyflow.executors import seccomp
from pyflow.executors.docker.images import ImagePolicy, ImageRefused, download_command, install_command
from pyflow.executors.docker import (WORKER_PROCESSES, WORKER_RESERVE_MB, Hardening, RequirementsError,
                                     StreamDemux, container_name, container_options, node_labels, requirements_tag,
                                     validate_requirements, worker_command)


def frame(kind: int, data: bytes) -> bytes:
    return struct.pack(">BxxxI", kind, len(data)) + data


def test_demux_splits_stdout_and_stderr_frames_even_when_cut_anywhere():
    stream = frame(1, b"hello ") + frame(2, b"warning") + frame(1, b"world") + frame(1, b"")
    for cut in range(len(stream) + 1):
        demux = StreamDemux()
        out1, err1 = demux.feed(stream[:cut])
        out2, err2 = demux.feed(stream[cut:])
        assert out1 + out2 == b"hello world"
        assert err1 + err2 == b"warning"


def test_container_options_are_hardened_and_follow_the_node_limits():
    limits = Limits(memory_mb=100, processes=7)
    opts = container_options("img", limits, {"pyflow.owner": "me"}, Hardening(cpus=0.5, tmp_mb=32))
    assert opts["network_mode"] == "none" and opts["read_only"] is True
    assert opts["tmpfs"]["/tmp"] == "rw,nosuid,nodev,noexec,size=32m,mode=0700,uid=10001,gid=10001"
    assert opts["mem_limit"] == opts["memswap_limit"] == (100 + WORKER_RESERVE_MB) * 1024 * 1024
    assert opts["pids_limit"] == 7 + WORKER_PROCESSES
    assert opts["nano_cpus"] == 500_000_000
    assert opts["cap_drop"] == ["ALL"] and opts["security_opt"][0] == "no-new-privileges"
    assert opts["user"] == "10001:10001" and opts["init"] is False and opts["auto_remove"] is True
    assert opts["ipc_mode"] == "none" and opts["labels"] == {"pyflow.owner": "me"}
    assert opts["stdin_open"] is True and opts["detach"] is False and opts["tty"] is False


def test_worker_is_passed_as_data_on_the_command_line():
    cmd = worker_command()
    assert cmd[:3] == ["python3", "-I", "-c"] and cmd[-1] == "--pid-namespace"
    assert "def serve(pid_namespace)" in cmd[3]


def test_labels_name_the_owner_always_and_the_run_and_node_for_a_per_node_container():
    task = NodeTask(node_id="n7", node_name="x", spec_id="s", func="", args=[], arg_names=[], run_id="r9")
    warm = node_labels("me", "inst", "img", None)
    assert warm["pyflow.owner"] == "me" and warm["pyflow.managed"] == "1" and "pyflow.run" not in warm
    cold = node_labels("me", "inst", "img", task)
    assert cold["pyflow.run"] == "r9" and cold["pyflow.node"] == "n7"


def test_names_show_run_and_node_in_characters_docker_allows():
    task = NodeTask(node_id="load/data 1", node_name="x", spec_id="s", func="", args=[], arg_names=[], run_id="r9")
    assert container_name("abc123", task) == "pyflow-r9-load_data_1-abc123"
    assert container_name("abc123", None) == "pyflow-idle-abc123"
    untitled = NodeTask(node_id="n" * 300, node_name="x", spec_id="s", func="", args=[], arg_names=[])
    assert container_name("t", untitled) == f"pyflow-norun-{'n' * 48}-t"


@pytest.mark.parametrize("req", ["six", "six==1.16.0", "requests[socks]>=2,<3", "numpy~=1.26", "a.b_c-d"])
def test_plain_requirements_are_accepted(req):
    assert validate_requirements([req]) == (req,)


@pytest.mark.parametrize("req", ["six @ https://evil.example/six.whl", "--index-url=http://x", "-r file.txt",
                                 "./local/path", "/abs/path", "six; os_name=='posix'", "six==1.0 --hash=x",
                                 "git+https://x/y.git", "six\n--extra-index-url http://x"])
def test_urls_paths_options_and_markers_are_refused(req):
    with pytest.raises(RequirementsError, match="not allowed"):
        validate_requirements([req])


def test_requirements_tag_depends_on_base_and_set_of_requirements_only():
    a = requirements_tag("sha256:1", validate_requirements(["b", "a", "a"]))
    assert a == requirements_tag("sha256:1", validate_requirements(["a", "b"]))
    assert a != requirements_tag("sha256:2", validate_requirements(["a", "b"]))
    assert a != requirements_tag("sha256:1", validate_requirements(["a"]))
    assert a.startswith("pyflow-req:")


# ------------------------------------------------------------------------------ seccomp and images


def test_containers_run_under_pyflows_seccomp_profile_with_the_worker_as_pid_1():
    opts = container_options("img", Limits(), {})
    assert opts["init"] is False, "tini would be an attachable process of the node's own user"
    profiles = [o.split("=", 1)[1] for o in opts["security_opt"] if o.startswith("seccomp=")]
    assert len(profiles) == 1
    profile = json.loads(profiles[0])
    assert profile == seccomp.docker_profile()
    denied = {name for rule in profile["syscalls"] if rule["action"] == "SCMP_ACT_ERRNO" and not rule.get("args")
              for name in rule["names"]}
    assert {"ptrace", "process_vm_readv", "process_vm_writev", "io_uring_setup", "bpf", "unshare"} <= denied


class FakeImage:
    def __init__(self, image_id: str, labels: dict | None = None):
        self.id = image_id
        self.attrs = {"Config": {"Labels": labels or {}}}


class FakeImages:
    def __init__(self, known: dict):
        self.known = known

    def get(self, name: str):
        import docker.errors
        if name not in self.known:
            raise docker.errors.ImageNotFound(name)
        return self.known[name]


class FakeClient:
    def __init__(self, known: dict):
        self.images = FakeImages(known)


def policy_client():
    pytest.importorskip("docker")
    return FakeClient({
        "pyflow-runtime:bookworm": FakeImage("sha256:run", {"org.pyflow.role": "node-runtime"}),
        "science:1": FakeImage("sha256:sci"),
        "other:1": FakeImage("sha256:oth"),
        "pyflow:latest": FakeImage("sha256:srv", {"org.pyflow.role": "server"}),
        "renamed-server:1": FakeImage("sha256:srv", {"org.pyflow.role": "server"}),
        "server-copy:1": FakeImage("sha256:srv"),
        "pyflow-req:abc": FakeImage("sha256:req", {"pyflow.role": "requirements"}),
        "fake-req:abc": FakeImage("sha256:fak", {"pyflow.role": "requirements"}),
    })


def test_only_the_runtime_listed_and_requirement_images_are_allowed():
    client = policy_client()
    policy = ImagePolicy.from_options("pyflow-runtime:bookworm", "science:1, ")
    for image in ("pyflow-runtime:bookworm", "science:1", "pyflow-req:abc"):
        policy.check(client, image)
    for image in ("other:1", "fake-req:abc"):
        with pytest.raises(ImageRefused, match=r"not on the server's allow-list \(pyflow-runtime:bookworm, science:1\)"):
            policy.check(client, image)
    with pytest.raises(ImageRefused, match="not on the Docker engine"):
        policy.check(client, "missing:1")


def test_the_servers_own_image_is_refused_even_when_listed():
    client = policy_client()
    policy = ImagePolicy.from_options("pyflow-runtime:bookworm", ["pyflow:latest", "renamed-server:1", "server-copy:1"])
    for image in ("pyflow:latest", "renamed-server:1", "server-copy:1"):
        with pytest.raises(ImageRefused, match="the PyFlow server's own image"):
            policy.check(client, image)


def test_the_allow_list_comes_from_the_environment_when_no_option_names_it(monkeypatch):
    monkeypatch.setenv("PYFLOW_DOCKER_IMAGES", "a:1,b:2")
    assert ImagePolicy.from_options("rt", None).listed == ("a:1", "b:2")
    assert ImagePolicy.from_options("rt", []).listed == ()


def test_wheels_are_downloaded_on_the_host_for_the_images_python_and_installed_without_an_index():
    target = {"python": "3.11", "machine": "x86_64", "glibc": "2.36"}
    cmd = download_command("/tmp/w", target, ("numpy==2.0",), None, None, 5)
    assert cmd[1:4] == ["-m", "pip", "download"] and "--only-binary=:all:" in cmd
    assert cmd[cmd.index("--python-version") + 1] == "3.11" and cmd[-1] == "numpy==2.0"
    platforms = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--platform"]
    assert "manylinux_2_36_x86_64" in platforms and "manylinux2014_x86_64" in platforms
    assert "manylinux_2_37_x86_64" not in platforms and platforms[-1] == "linux_x86_64"
    install = install_command(("numpy==2.0",))
    assert "--no-index" in install and "--only-binary=:all:" in install and install[-1] == "numpy==2.0"
    assert not any(a.startswith("--index-url") for a in install)


class FakeBuildContainer:
    id = "build1"
    status = "exited"
    attrs = {"State": {"ExitCode": 0}}

    def __init__(self, calls: list):
        self.calls = calls

    def put_archive(self, path, data):
        self.calls.append(("put_archive", path, data))

    def start(self):
        self.calls.append(("start",))

    def reload(self):
        pass

    def commit(self, repository, tag, changes):
        self.calls.append(("commit", repository, tag))


class FakeBuildEngine:
    def __init__(self):
        self.calls = []
        self.containers = self
        self.api = self

    def run(self, image, command, **options):
        self.calls.append(("probe", image, options))
        return b'{"python": "3.11", "machine": "x86_64", "glibc": "2.36"}\n'

    def create(self, image, command, **options):
        self.calls.append(("create", image, command, options))
        return FakeBuildContainer(self.calls)

    def remove_container(self, *args, **kwargs):
        self.calls.append(("remove",))


def test_requirement_builds_have_no_network_and_install_only_the_wheels_fetched_on_the_host(monkeypatch):
    from pyflow.executors.docker import requirements as docker_executor
    fetched = []
    monkeypatch.setattr(docker_executor, "fetch_wheels",
                        lambda target, reqs, *rest: fetched.append((target, reqs)) or (b"wheels.tar", ""))
    engine = FakeBuildEngine()
    builder = docker_executor.RequirementsBuilder(engine, "me", "inst", docker_executor.BuildSettings())
    builder._build("pyflow-runtime:bookworm", "sha256:base", ("six==1.16.0",), "pyflow-req:abc", None)
    assert fetched == [({"python": "3.11", "machine": "x86_64", "glibc": "2.36"}, ("six==1.16.0",))]
    probe = next(c for c in engine.calls if c[0] == "probe")
    create = next(c for c in engine.calls if c[0] == "create")
    assert probe[2]["network_mode"] == "none" and create[3]["network_mode"] == "none"
    assert "--no-index" in create[2] and create[2][-1] == "six==1.16.0"
    assert any(opt.startswith("seccomp=") for opt in create[3]["security_opt"])
    steps = [c[0] for c in engine.calls]
    assert steps.index("put_archive") < steps.index("start") < steps.index("commit")
