"""The one way PyFlow writes a moment: UTC, ISO 8601 with milliseconds and a Z, e.g.
2026-11-29T21:07:00.123Z. Stored stamps compare as strings in time order because they all look alike."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

# The last whole second written and its text: a run stamps every node and event, thousands a second,
# and only the milliseconds change between most of them, so the date is formatted once a second. The
# last stamp is kept too: nodes stamped in the same millisecond share one string.
_last_second: tuple[int, str] = (-1, "")
_last_stamp: tuple[int, str] = (-1, "")
_clock = time.time


def now_iso(ago_s: float = 0.0) -> str:
    """This moment (or `ago_s` seconds before it) as an ISO 8601 UTC stamp."""
    global _last_second, _last_stamp
    if ago_s:
        return _iso(datetime.now(timezone.utc) - timedelta(seconds=ago_s))
    whole, micro = divmod(round(_clock() * 1_000_000), 1_000_000)  # rounded as datetime rounds it
    milli = whole * 1000 + micro // 1000
    stamp = _last_stamp
    if stamp[0] == milli:
        return stamp[1]
    last = _last_second
    if last[0] != whole:
        last = _last_second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    text = f"{last[1]}.{micro // 1000:03d}Z"
    _last_stamp = (milli, text)
    return text


def iso_at(epoch_s: float) -> str:
    """A moment given in seconds since the epoch (a log record's `created`, say) as an ISO 8601 UTC stamp."""
    return _iso(datetime.fromtimestamp(epoch_s, timezone.utc))


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def file_stamp() -> str:
    """This moment for a file name: 20261129-210700."""
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
