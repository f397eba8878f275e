"""Reaching a worker in a container: the engine's attach socket, demultiplexed."""

from __future__ import annotations

import select
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

from ...engine.execution import Limits
from ..artifacts import Places
from ..channel import Worker, WorkerDied
from .names import ContainerName

STDERR_TAIL = 8192
FRAME = struct.Struct(">BxxxI")


class StreamDemux:
    """Splits the engine's multiplexed attach stream (no TTY) back into stdout and stderr bytes.

    Each frame is [stream type, 0, 0, 0, big-endian uint32 size] then size bytes; type 1 is stdout,
    2 is stderr."""

    def __init__(self):
        self._pending = bytearray()

    def feed(self, data: bytes) -> tuple[bytes, bytes]:
        self._pending += data
        out, err = bytearray(), bytearray()
        while len(self._pending) >= FRAME.size:
            kind, size = FRAME.unpack_from(self._pending)
            if len(self._pending) < FRAME.size + size:
                break
            payload = self._pending[FRAME.size:FRAME.size + size]
            (err if kind == 2 else out).extend(payload)
            del self._pending[:FRAME.size + size]
        return bytes(out), bytes(err)


@dataclass
class ContainerState:
    """What the docker executor keeps per container."""

    limits: Limits  # the memory and process limits the container has now
    host_pid: int = 0  # the container's init as the host sees it (0 when unknown)
    oom_file: Path | None = None  # its cgroup's out-of-memory counter, when this host can read it
    oom_before: int = 0  # that counter before the current run
    #: A warm container's name, renamed for each node it runs; None for a container made for one node.
    naming: ContainerName | None = None
    places: Places | None = None  # its artifact places, when the executor carries artifacts


class ContainerWorker(Worker):
    """A worker in a container, reached through the container's attach socket."""

    def __init__(self, container, sock, reaper, state: ContainerState):
        super().__init__(None, f"container {container.short_id}", state)
        self.container = container
        self.reaper = reaper
        self._response = sock  # keeps the HTTP response (and so the connection) alive
        self._sock = getattr(sock, "_sock", sock)
        self._sock.settimeout(30)
        self._demux = StreamDemux()
        self._stderr = bytearray()
        self._ended = False

    @property
    def pid(self) -> int:
        return self.state.host_pid

    def stderr_tail(self) -> str:
        return bytes(self._stderr[-STDERR_TAIL:]).decode("utf-8", "replace")

    def _write(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise WorkerDied(f"{self.label} is gone ({exc})") from None

    def _read_chunk(self, timeout: float) -> bytes | None:
        pending = getattr(self._sock, "pending", None)
        if not (pending and pending()):
            try:
                ready, _, _ = select.select([self._sock], [], [], timeout)
            except (OSError, ValueError):
                return b""
            if not ready:
                return None
        try:
            data = self._sock.recv(1 << 20)
        except (BlockingIOError, socket.timeout):
            return None
        except OSError:
            return b""
        if not data:
            return b""
        out, err = self._demux.feed(data)
        self._stderr += err
        del self._stderr[:-STDERR_TAIL]
        return out if out else None

    def kill(self) -> None:
        """Drop the connection and have the container removed (force: it is killed first)."""
        if self._ended:
            return
        self._ended = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self._sock.close()
            self._response.close()
        except OSError:
            pass
        self.reaper.remove(self.container.id)
