"""The docker executor's pure parts: stream framing, container settings, requirement checks. These need
no engine (but live here, with the executor's other tests)."""

import struct

import pytest

from pyflow.engine.execution import Limits, NodeTask
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
    assert opts["cap_drop"] == ["ALL"] and opts["security_opt"] == ["no-new-privileges"]
    assert opts["user"] == "10001:10001" and opts["init"] is True and opts["auto_remove"] is True
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
