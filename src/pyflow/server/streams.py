"""Event streams followed on the event loop: no thread per follower, however many there are.

A live run has one `_Channel` here, however many clients follow it: the run's threads wake it with one
thread-safe callback per burst of events (`IOLoop.add_callback`), and it writes each follower what that
follower has not seen yet. A follower has at most one write in flight: one that reads slowly gets the
events that piled up meanwhile in its next write, and holds no more memory than the run's own list of
events. Finished runs replay from storage on the request pool. The wire format (`sse_text`), resuming
after `Last-Event-ID` and the heartbeat after `keepalive_s` of silence are those of the plain WSGI view.
"""

from __future__ import annotations

import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, Protocol

from tornado.httputil import HTTPHeaders, ResponseStartLine
from tornado.ioloop import IOLoop

from .runs import STREAM_PRELUDE, sse_text

log = logging.getLogger(__name__)

# A follower that has read nothing for this many heartbeat periods (a minute by default) is cut: its
# connection would otherwise stay open, unread, after its run ended.
STALLED_BEATS = 4


class EventSource(Protocol):
    """Where streams find runs: `PyflowService` (`listen`, `unlisten` and `stream` there say how)."""

    def listen(self, run_id: str, notify: Callable[[], None]): ...

    def unlisten(self, live, notify: Callable[[], None]) -> None: ...

    def stream(self, run_id: str, after: int = 0) -> Iterator[list[dict]]: ...


class _Follower:
    def __init__(self, conn, position: int):
        self.conn = conn
        self.position = position
        self.channel: _Channel | None = None
        self.writing = False
        self.stalled = 0  # heartbeats that found the last write still unread
        self.ended = IOLoop.current().asyncio_loop.create_future()
        self.heartbeat = None


class _Channel:
    """The followers of one live run, and the run's single listener."""

    def __init__(self, hub: "StreamHub", run_id: str):
        self.hub, self.run_id = hub, run_id
        self.loop = IOLoop.current()
        self.followers: set[_Follower] = set()
        self.scheduled = False
        self.live = None
        self.ready = self.loop.asyncio_loop.create_future()  # set once `live` is known

    def notify(self) -> None:
        """From a run thread, with the run's lock held: schedule one delivery for the burst."""
        if not self.scheduled:
            self.scheduled = True
            self.loop.add_callback(self.deliver)

    def deliver(self) -> None:
        self.scheduled = False
        for follower in list(self.followers):
            self.hub.pump(follower)


class StreamHub:
    def __init__(self, events: EventSource, pool: ThreadPoolExecutor, streams_per_client: int,
                 keepalive_s: float = 15.0):
        self.events, self.pool = events, pool
        self.streams_per_client = streams_per_client
        self.keepalive_s = keepalive_s
        self.open: Counter[str] = Counter()
        self.channels: dict[str, _Channel] = {}
        self.followers: set[_Follower] = set()

    def admit(self, client: str) -> bool:
        """Whether `client` may open one more stream (checked and counted on the loop, so no race)."""
        if self.open[client] >= self.streams_per_client:
            return False
        self.open[client] += 1
        return True

    async def follow(self, conn, client: str, run_id: str, after: int, headers: HTTPHeaders) -> None:
        """Stream the run's events after `after` to `conn` until the run ends or the client leaves;
        the client was admitted (and is released here)."""
        follower = _Follower(conn, after)
        self.followers.add(follower)
        try:
            conn.set_close_callback(lambda: self.end(follower))
            conn.write_headers(ResponseStartLine("HTTP/1.1", 200, "OK"), headers, STREAM_PRELUDE.encode())
            channel = await self._channel(run_id)
            while channel is not None and self.channels.get(run_id) is not channel:
                channel = await self._channel(run_id)  # its last follower left while this one waited
            if follower.ended.done():  # the client left meanwhile
                self._release(channel)
                return
            if channel is None:
                await self._replay(follower, run_id)
            else:
                follower.channel = channel
                channel.followers.add(follower)
                self._arm_heartbeat(follower)
                self.pump(follower)
                await follower.ended
        finally:
            self.followers.discard(follower)
            self.open[client] -= 1
            if self.open[client] <= 0:
                del self.open[client]

    async def _channel(self, run_id: str) -> _Channel | None:
        """The run's channel, made by the first follower; None when the run is not live. Registering
        takes the run manager's lock, which run threads and submits hold: that happens on the pool,
        never on the loop."""
        channel = self.channels.get(run_id)
        if channel is None:
            channel = self.channels[run_id] = _Channel(self, run_id)
            try:
                channel.live = await IOLoop.current().run_in_executor(self.pool, self.events.listen, run_id,
                                                                      channel.notify)
            finally:
                channel.ready.set_result(None)
                if channel.live is None:
                    del self.channels[run_id]
        else:
            await channel.ready
        return channel if channel.live is not None else None

    async def _replay(self, follower: _Follower, run_id: str) -> None:
        """A finished run's stored events, read on the request pool a batch at a time."""
        batches = self.events.stream(run_id, follower.position)
        loop = IOLoop.current()
        self._arm_heartbeat(follower)  # which also cuts a client that stops reading
        try:
            while not follower.ended.done():
                batch = await loop.run_in_executor(self.pool, next, batches, None)
                if batch is None:
                    break
                follower.writing = True
                await follower.conn.write(sse_text(batch).encode())
                follower.writing, follower.stalled = False, 0
        except Exception as exc:  # the client left, or the run was deleted meanwhile
            log.debug("replay of run %s ended early: %r", run_id, exc)
        finally:
            self.end(follower)

    def pump(self, follower: _Follower) -> None:
        """Write the follower what it has not seen, unless a write of its own is still in flight."""
        if follower.writing or follower.ended.done() or follower.channel is None:
            return  # (a replay writes its own batches)
        fresh, done = follower.channel.live.since(follower.position)
        if fresh:
            follower.position = fresh[-1]["id"]
            self._write(follower, sse_text(fresh), last=fresh[-1]["event"] == "run_finished")
        elif done:
            self.end(follower)

    def _write(self, follower: _Follower, text: str, last: bool = False) -> None:
        follower.writing = True
        self._arm_heartbeat(follower)
        future = follower.conn.write(text.encode())

        def written(done) -> None:
            follower.writing, follower.stalled = False, 0
            if done.exception() is not None or last:
                self.end(follower)
            else:
                self.pump(follower)

        future.add_done_callback(written)

    def _arm_heartbeat(self, follower: _Follower) -> None:
        if follower.heartbeat is not None:
            IOLoop.current().remove_timeout(follower.heartbeat)
        follower.heartbeat = IOLoop.current().call_later(self.keepalive_s, self._beat, follower)

    def _beat(self, follower: _Follower) -> None:
        follower.heartbeat = None
        if follower.ended.done():
            return
        if follower.writing:  # it has not taken the last write yet: no need to add one
            follower.stalled += 1
            if follower.stalled >= STALLED_BEATS:
                follower.conn.close()
                self.end(follower)
            else:
                self._arm_heartbeat(follower)
        else:
            self._write(follower, sse_text([]))

    def end(self, follower: _Follower) -> None:
        """Finish the response (if the client is still there) and forget the follower."""
        if follower.ended.done():
            return
        follower.ended.set_result(None)
        if follower.heartbeat is not None:
            IOLoop.current().remove_timeout(follower.heartbeat)
        if follower.channel is not None:
            follower.channel.followers.discard(follower)
            self._release(follower.channel)
        try:
            follower.conn.finish()
        except Exception as exc:  # already closed by the client
            log.debug("finishing an event stream: %r", exc)

    def _release(self, channel: _Channel | None) -> None:
        """Stop listening to a run nobody follows any more."""
        if channel is not None and not channel.followers and self.channels.get(channel.run_id) is channel:
            self.events.unlisten(channel.live, channel.notify)
            del self.channels[channel.run_id]

    def close(self) -> None:
        for follower in list(self.followers):
            self.end(follower)
