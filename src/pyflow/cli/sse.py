"""Server-Sent Events decoding as the HTML standard describes it, a chunk of bytes at a time.

Why not line by line: a run of a few hundred nodes sends its events in a few large writes, and reading
them a line at a time through http.client costs the client more than the server spent producing them.
Decoding whatever bytes have arrived in one pass keeps a follower (`pyflow run`, benchmarks) cheap, the
way a browser's EventSource is. Lines may end in CRLF, LF or CR, and a chunk may end anywhere, even
inside a UTF-8 sequence or between the CR and LF of one line break.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Iterable, Iterator

LINE_BREAK = re.compile(r"\r\n|\r|\n")
READ_SIZE = 65536


@dataclass
class ServerEvent:
    id: str
    event: str
    data: str


class SSEDecoder:
    """Feed it bytes as they arrive; it answers the events those bytes complete."""

    def __init__(self):
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""  # the start of a line whose end has not arrived
        self._after_cr = False  # the last chunk ended in CR, which may be half of a CRLF
        self._data: list[str] = []
        self._event = ""
        self.last_id = ""
        self.retry_ms: int | None = None

    def feed(self, chunk: bytes) -> list[ServerEvent]:
        text = self._text.decode(chunk)
        if text:
            if self._after_cr and text[0] == "\n":
                text = text[1:]  # the LF of a CRLF whose CR ended the previous chunk
            self._after_cr = text.endswith("\r")
        lines = LINE_BREAK.split(self._partial + text)
        self._partial = lines.pop()
        events = []
        for line in lines:
            if not line:
                event = self._dispatch()
                if event is not None:
                    events.append(event)
            elif line[0] != ":":  # a line starting with a colon is a comment (a keepalive)
                self._field(line)
        return events

    def _field(self, line: str) -> None:
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self.last_id = value
        elif name == "retry" and value.isdigit():
            self.retry_ms = int(value)

    def _dispatch(self) -> ServerEvent | None:
        """A blank line ends an event; one without data is dropped, as EventSource drops it."""
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return None
        return ServerEvent(self.last_id, event or "message", "\n".join(data))


def iter_events(chunks: Iterable[bytes]) -> Iterator[ServerEvent]:
    """Events from a stream of byte chunks, each as soon as the chunk completing it arrives."""
    decoder = SSEDecoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)


def response_chunks(response) -> Iterator[bytes]:
    """Whatever bytes an http.client response has ready, without waiting for a full buffer."""
    while True:
        chunk = response.read1(READ_SIZE)
        if not chunk:
            return
        yield chunk
