"""The Server-Sent Events decoder: the HTML standard's rules, whatever the chunk boundaries."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from pyflow.cli.client import run_events
from pyflow.cli.sse import ServerEvent, SSEDecoder, iter_events

STREAM = ("retry: 1000\n\n"
          "id: 1\nevent: run_started\ndata: {\"run\": \"r\"}\n\n"
          ": keepalive\n\n"
          "id: 2\r\nevent: node_finished\r\ndata: {\"node\": \"n\\u00e9\",\r\ndata: \"x\": 1}\r\n\r\n"
          "id: 3\revent: run_finished\rdata:{\"status\":\"succeeded\"}\r\r").encode()
EXPECTED = [ServerEvent("1", "run_started", '{"run": "r"}'),
            ServerEvent("2", "node_finished", '{"node": "n\\u00e9",\n"x": 1}'),
            ServerEvent("3", "run_finished", '{"status":"succeeded"}')]


def test_a_whole_stream_decodes_to_its_events_and_retry():
    decoder = SSEDecoder()
    assert decoder.feed(STREAM) == EXPECTED
    assert decoder.retry_ms == 1000
    assert decoder.last_id == "3"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_chunk_boundaries_change_nothing(cuts):
    """Split anywhere: inside a field, between CR and LF, inside a multi-byte character."""
    bounds = [0, *sorted(cuts), len(STREAM)]
    chunks = [STREAM[a:b] for a, b in zip(bounds, bounds[1:])]
    assert list(iter_events(chunks)) == EXPECTED


def test_multibyte_characters_split_across_chunks():
    raw = "data: héllo ✓\n\n".encode()
    split = raw.index("✓".encode()) + 1
    assert list(iter_events([raw[:split], raw[split:]])) == [ServerEvent("", "message", "héllo ✓")]


def test_a_lone_lf_after_a_crlf_split_across_chunks_is_a_blank_line():
    assert list(iter_events([b"data: 1\r", b"\n", b"\n"])) == [ServerEvent("", "message", "1")]


def test_an_event_is_only_dispatched_by_its_blank_line():
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 7\nevent: x\ndata: 1\n") == []
    assert decoder.feed(b"\n") == [ServerEvent("7", "x", "1")]


def test_events_without_data_are_dropped_and_reset_the_type():
    decoder = SSEDecoder()
    assert decoder.feed(b"event: lonely\n\ndata: 2\n\n") == [ServerEvent("", "message", "2")]


def test_id_persists_and_ids_with_nul_are_ignored():
    decoder = SSEDecoder()
    events = decoder.feed(b"id: 4\ndata: a\n\ndata: b\n\nid: 5\x00\ndata: c\n\n")
    assert [e.id for e in events] == ["4", "4", "4"]


def test_field_without_colon_and_unknown_fields():
    decoder = SSEDecoder()
    assert decoder.feed(b"data\nfoo: bar\nretry: soon\n\n") == [ServerEvent("", "message", "")]
    assert decoder.retry_ms is None


def test_run_events_parse_the_json_of_each_event():
    got = list(run_events([b'id: 12\nevent: node_cached\ndata: {"node": "n1", "cached": true}\n\n']))
    assert got == [{"id": 12, "event": "node_cached", "data": json.loads('{"node": "n1", "cached": true}')}]
