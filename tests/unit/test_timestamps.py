"""One way to write a moment: stored stamps and JSON log lines look alike."""

import logging
import re

from pyflow.server.requestlog import JsonFormatter
from pyflow.timestamps import iso_at, now_iso

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_a_json_log_line_carries_the_same_stamp_as_storage():
    assert iso_at(0) == "1970-01-01T00:00:00.000Z" and STAMP.match(now_iso())
    record = logging.LogRecord("pyflow.x", logging.INFO, __file__, 1, "hello", (), None)
    record.created = 1.5
    assert '"time": "1970-01-01T00:00:01.500Z"' in JsonFormatter().format(record)


def test_now_iso_writes_each_moment_as_iso_at_does(monkeypatch):
    """now_iso formats the date once a second and keeps its last stamp for the rest of its millisecond:
    every moment, across millisecond, second, day and year ends and back in time, must still read as
    iso_at writes it."""
    import pyflow.timestamps as timestamps
    moments = [1.5, 1.999, 2.0, 2.0004, 2.001, 2.0012, 1.0012, 86399.9995, 86400.25, 1798761599.123, 1798761600.0, 1798761600.007, 59.5]
    for moment in moments:
        monkeypatch.setattr(timestamps, "_clock", lambda moment=moment: moment)
        assert now_iso() == iso_at(moment), moment
