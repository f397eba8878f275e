"""Checks on what a node's sandbox wrote about its artifact: the preview (JSON) and the thumbnail (PNG).

Both come from node code, which can write anything into its output directory, so the server takes them
only within caps and in the expected shape: a PNG must be a PNG (signature, an IHDR chunk first, sane
dimensions, chunks that add up) under its size cap, and a preview is a JSON object under its cap whose
text fields are cut to size. Text stays text: the editor escapes it when it shows it.
"""

from __future__ import annotations

import json
import struct

from ..model.limits import MAX_DEPTH, TooDeep, check_depth

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PREVIEW_CAP = 256 * 1024  # bytes of preview JSON
THUMBNAIL_CAP = 512 * 1024  # bytes of thumbnail PNG
MAX_SIDE = 32768
TEXT_CAP = 2000  # characters of any one string in a preview
MAX_COLUMNS = 200
MAX_ROWS = 20


class PreviewRefused(ValueError):
    """A preview or image the server will not take; the message says why."""


def check_png_header(head: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's first bytes: its signature and IHDR chunk, else PreviewRefused."""
    if head[:8] != PNG_SIGNATURE:
        raise PreviewRefused("it does not start with the PNG signature")
    if len(head) < 33 or head[8:16] != b"\x00\x00\x00\rIHDR":
        raise PreviewRefused("its first chunk is not a 13-byte IHDR")
    width, height = struct.unpack(">II", head[16:24])
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise PreviewRefused(f"its size {width} x {height} is outside 1..{MAX_SIDE}")
    return width, height


def check_png(data: bytes, cap: int = THUMBNAIL_CAP) -> tuple[int, int]:
    """(width, height) of a whole PNG under `cap` whose chunks add up to an IEND; else PreviewRefused."""
    if len(data) > cap:
        raise PreviewRefused(f"it is {len(data)} bytes, over the cap of {cap}")
    size = check_png_header(data)
    at = 8
    while at + 12 <= len(data):
        (length,) = struct.unpack(">I", data[at:at + 4])
        kind = data[at + 4:at + 8]
        at += 12 + length
        if kind == b"IEND":
            if at != len(data):
                raise PreviewRefused("bytes follow its IEND chunk")
            return size
    raise PreviewRefused("its chunks do not end with IEND")


def check_preview(data: bytes, cap: int = PREVIEW_CAP) -> dict:
    """The preview a sandbox wrote, parsed and cut to size; PreviewRefused when it is over `cap`, not
    a JSON object, or nested too deeply."""
    if len(data) > cap:
        raise PreviewRefused(f"the preview is {len(data)} bytes, over the cap of {cap}")
    try:
        text = data.decode("utf-8")
        check_depth(text, MAX_DEPTH)
        parsed = json.loads(text, parse_constant=lambda name: name)
    except (UnicodeDecodeError, ValueError, TooDeep) as exc:
        raise PreviewRefused(f"the preview is not readable JSON: {str(exc)[:200]}") from None
    if not isinstance(parsed, dict):
        raise PreviewRefused("the preview is not a JSON object")
    return _trimmed(parsed)


def _trimmed(preview: dict) -> dict:
    """Only the fields the editor shows, each of its expected type and size."""
    kept = {key: _text(preview.get(key)) for key in ("type", "format", "repr", "preview_error") if key in preview}
    if isinstance(preview.get("length"), int):
        kept["length"] = preview["length"]
    table, array, image = preview.get("table"), preview.get("array"), preview.get("image")
    if isinstance(table, dict):
        kept["table"] = {"columns": [_text(c, 200) for c in _list(table.get("columns"))[:MAX_COLUMNS]],
                         "dtypes": [_text(t, 100) for t in _list(table.get("dtypes"))[:MAX_COLUMNS]],
                         "rows": _int(table.get("rows")),
                         "head": [[_cell(v) for v in _list(row)[:MAX_COLUMNS]] for row in _list(table.get("head"))[:MAX_ROWS]]}
    if isinstance(array, dict):
        kept["array"] = {"shape": [_int(n) for n in _list(array.get("shape"))[:32]], "dtype": _text(array.get("dtype"), 100),
                         "size": _int(array.get("size")), "sample": [_cell(v) for v in _list(array.get("sample"))[:20]]}
        for key in ("min", "max"):
            if key in array:
                kept["array"][key] = _cell(array[key])
    if isinstance(image, dict):
        kept["image"] = {"width": _int(image.get("width")), "height": _int(image.get("height"))}
    return kept


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _int(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _text(value, cap: int = TEXT_CAP) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= cap else text[:cap] + "..."


def _cell(value):
    """A table cell or array sample: a number, boolean or null as it is, anything else as capped text."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return _text(value, 200)
