"""JSON text and lone surrogates, one rule for storage, HTTP, events and executors."""

import json

from pyflow.jsontext import compact_json, compact_json_any, safe_text


def test_safe_text_replaces_only_lone_surrogates():
    assert safe_text("plain") == "plain"
    assert safe_text("grüße \U0001f600 a\ud800b\udfff") == "grüße \U0001f600 a\ufffdb\ufffd"


def test_compact_json_escapes_only_when_a_lone_surrogate_leaves_no_utf8_form():
    assert compact_json({"k": "grüße"}) == '{"k":"grüße"}'
    text = compact_json({"k": "a\ud800b", "w": "é"})
    text.encode("utf-8")
    assert text.isascii() and json.loads(text) == {"k": "a\ud800b", "w": "é"}


def test_event_text_is_ascii_and_never_fails_on_what_json_cannot_hold():
    text = compact_json_any({"v": {1, 2}, "s": "a\ud800"})
    assert text.isascii() and json.loads(text)["v"] == repr({1, 2})
