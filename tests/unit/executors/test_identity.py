"""One process identity format ("host:boot:pid:start") names run owners, cgroup directories and
container labels; the formats older servers wrote are still read, so their leftovers are reaped."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from pyflow import process_identity
from pyflow.executors.docker.cleanup import _server_alive
from pyflow.executors.sandbox import instance_alive, instance_name

HOST = socket.gethostname()


def ended_process() -> tuple[int, str]:
    """A pid and start time of a process that has ended."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    started = process_identity.start_time(proc.pid)
    proc.communicate()
    return proc.pid, started


def test_the_one_format_names_this_process_and_tells_it_is_alive():
    me = process_identity.current()
    found = process_identity.parse(me)
    assert me == f"{HOST}:{process_identity.boot_id()}:{os.getpid()}:{process_identity.start_time(os.getpid())}"
    assert found.host == HOST and found.pid == os.getpid() and found.boot
    assert process_identity.alive(me) is True
    assert instance_name() == me and instance_alive(me)
    assert _server_alive({"Labels": {"pyflow.process": me}})


def test_an_ended_process_is_dead_in_every_format():
    pid, started = ended_process()
    boot = process_identity.boot_id()
    for written in (f"{HOST}:{boot}:{pid}:{started}", f"{HOST}:{pid}:{started}", f"{HOST}/{boot}/{pid}/{started}",
                    f"server-{pid}-{started}"):
        assert process_identity.parse(written).pid == pid, written
        assert process_identity.alive(written) is False, written


def test_older_formats_of_this_process_are_recognized_as_alive():
    pid, started, boot = os.getpid(), process_identity.start_time(os.getpid()), process_identity.boot_id()
    assert process_identity.alive(f"{HOST}:{pid}:{started}") is True  # a run owner written by an older server
    assert _server_alive({"Labels": {"pyflow.process": f"{HOST}/{boot}/{pid}/{started}"}})  # an older label
    assert instance_alive(f"server-{pid}-{started}")  # an older cgroup directory


def test_leftovers_of_older_servers_that_ended_are_reaped():
    pid, started = ended_process()
    assert not instance_alive(f"server-{pid}-{started}")
    assert not _server_alive({"Labels": {"pyflow.process": f"{HOST}/{process_identity.boot_id()}/{pid}/{started}"}})


def test_what_cannot_be_told_is_left_to_each_reader():
    pid, started = os.getpid(), process_identity.start_time(os.getpid())
    other_host = f"elsewhere:{process_identity.boot_id()}:{pid}:{started}"
    rebooted = f"{HOST}:00000000:{pid}:{started}"
    assert process_identity.alive(other_host) is None and process_identity.alive("not an identity") is None
    assert process_identity.alive(rebooted) is False
    assert instance_alive("not-an-instance")  # a cgroup directory PyFlow did not name is never reaped
    assert instance_alive(other_host)  # cgroups are of this machine, whatever host name they carry
    assert not _server_alive({"Labels": {"pyflow.process": "elsewhere/0/1/1"}})  # this owner, restarted elsewhere
    assert not _server_alive({"Labels": {}})
