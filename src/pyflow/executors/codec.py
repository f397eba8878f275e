"""Rich values inside the sandbox: how a node's non-JSON value becomes an artifact file with a preview,
and how a downstream node's input artifact becomes a value again.

Standard library only: the worker's script is this file, nodeproc.py and worker.py (see
channel.worker_source), handed to the sandbox as data. A value's kind is read from
`type(value).__module__` and its name, so numpy, pandas, pyarrow, PIL and matplotlib are only used for
a value of theirs, whose module the node has loaded (pyarrow is imported for a pandas DataFrame, when
installed, to write it as Arrow IPC). Everything written here is read by the
server as hostile: it checks previews and thumbnails and hashes the files itself (storage/previews.py).
"""

import json
import os
import pickle
import reprlib
import resource
import struct
import sys

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PREVIEW_ROWS = 20
SAMPLE_ITEMS = 10
REPR_CHARS = 1000
THUMB_SIDE = 256
ARTIFACT_KEY = "$artifact"  # the shape of a reference: never carried as a node's JSON value

_REPR = reprlib.Repr()
_REPR.maxstring = REPR_CHARS
_REPR.maxother = REPR_CHARS
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxfrozenset = _REPR.maxdict = 20


def type_name(value):
    kind = type(value)
    return "{}.{}".format(kind.__module__, kind.__qualname__)


def _is(value, module_prefix, name):
    kind = type(value)
    return kind.__module__.split(".")[0] == module_prefix and kind.__name__ == name


def _loaded(name):
    return sys.modules.get(name)


def choose_format(value):
    """(format, file extension) for a value: the best format its type has, else pickle protocol 5."""
    if _is(value, "numpy", "ndarray") and getattr(value.dtype, "hasobject", True) is False:
        return "npy", "npy"
    if _is(value, "pyarrow", "Table") or (_is(value, "pandas", "DataFrame") and _arrow_for_pandas()):
        return "arrow", "arrow"
    if type(value).__module__.startswith("PIL.") and hasattr(value, "save") and hasattr(value, "size"):
        return "png", "png"
    if _is(value, "matplotlib", "Figure"):
        return "png", "png"
    if isinstance(value, (bytes, bytearray)) and bytes(value[:8]) == PNG_SIGNATURE:
        return "png", "png"
    return "pickle", "pickle"


def _arrow_for_pandas():
    """Whether pandas' own Arrow engine is installed (imported only for a DataFrame, whose library is
    loaded already)."""
    try:
        import pyarrow  # noqa: F401
        import pyarrow.ipc  # noqa: F401
        return True
    except Exception:
        return False


def write_value(value, fmt, path):
    """Serialize `value` to `path` in `fmt`."""
    with open(path, "wb") as fh:
        if fmt == "npy":
            _loaded("numpy").save(fh, value, allow_pickle=False)
        elif fmt == "arrow":
            pa = _loaded("pyarrow")
            import pyarrow.ipc  # the value's own library, already loaded
            table = value if _is(value, "pyarrow", "Table") else pa.Table.from_pandas(value)
            with pyarrow.ipc.new_file(fh, table.schema) as writer:
                writer.write_table(table)
        elif fmt == "png" and isinstance(value, (bytes, bytearray)):
            fh.write(value)
        elif fmt == "png" and _is(value, "matplotlib", "Figure"):
            value.savefig(fh, format="png")
        elif fmt == "png":
            value.save(fh, format="PNG")
        else:
            pickle.dump(value, fh, protocol=5)


def preview_of(value, fmt):
    """What a person wants to see of a value, as JSON-able data (checked and capped by the server)."""
    preview = {"type": type_name(value), "format": fmt, "repr": _capped_repr(value)}
    try:
        if _is(value, "numpy", "ndarray"):
            preview["array"] = _array_preview(value)
        elif _is(value, "pandas", "DataFrame"):
            preview["table"] = _frame_preview(value)
        elif _is(value, "pyarrow", "Table"):
            preview["table"] = _arrow_preview(value)
        elif fmt == "png":
            preview["image"] = _image_size(value)
        elif isinstance(value, (set, frozenset, list, tuple, dict, bytes, bytearray, str)):
            preview["length"] = len(value)
    except Exception as exc:  # a preview is a courtesy: the value itself still travels
        preview["preview_error"] = "{}: {}".format(type(exc).__name__, _capped(str(exc), 200))
    return preview


def _capped(text, size):
    return text if len(text) <= size else text[:size] + "..."


def _capped_repr(value):
    try:
        return _capped(_REPR.repr(value), REPR_CHARS)
    except Exception as exc:
        return "<repr failed: {}>".format(type(exc).__name__)


def _json_safe(items):
    """Items made JSON-safe: numbers that JSON cannot carry and other objects become their repr."""
    text = json.dumps(items, default=repr, allow_nan=True)
    return json.loads(text, parse_constant=lambda name: name)


def _array_preview(array):
    info = {"shape": list(array.shape), "dtype": str(array.dtype), "size": int(array.size)}
    flat = array.reshape(-1)
    info["sample"] = _json_safe(flat[:SAMPLE_ITEMS].tolist())
    if array.size and array.dtype.kind in "biuf":
        np = _loaded("numpy")
        info["min"] = _json_safe(np.nanmin(array).item()) if array.dtype.kind == "f" else array.min().item()
        info["max"] = _json_safe(np.nanmax(array).item()) if array.dtype.kind == "f" else array.max().item()
    return info


def _frame_preview(frame):
    head = frame.head(PREVIEW_ROWS)
    rows = json.loads(head.to_json(orient="values", date_format="iso", default_handler=str))
    return {"columns": [str(c) for c in frame.columns], "dtypes": [str(t) for t in frame.dtypes],
            "rows": int(len(frame)), "head": rows}


def _arrow_preview(table):
    head = table.slice(0, PREVIEW_ROWS).to_pylist()
    names = [str(n) for n in table.column_names]
    return {"columns": names, "dtypes": [str(t) for t in table.schema.types], "rows": int(table.num_rows),
            "head": _json_safe([[row.get(n) for n in table.column_names] for row in head])}


def _image_size(value):
    if isinstance(value, (bytes, bytearray)):
        width, height = struct.unpack(">II", bytes(value[16:24]))
        return {"width": width, "height": height}
    if _is(value, "matplotlib", "Figure"):
        width, height = value.get_size_inches() * value.dpi
        return {"width": int(width), "height": int(height)}
    return {"width": int(value.size[0]), "height": int(value.size[1])}


def write_thumbnail(value, fmt, data_path, thumb_path):
    """A PNG thumbnail (at most THUMB_SIDE a side) for images; False when there is none."""
    if fmt != "png":
        return False
    if isinstance(value, (bytes, bytearray)):
        width, height = struct.unpack(">II", bytes(value[16:24]))
        if max(width, height) > THUMB_SIDE or len(value) > 256 * 1024:
            return False  # no resampling without an imaging library: the editor shows the full image
        with open(thumb_path, "wb") as fh:
            fh.write(value)
        return True
    if _is(value, "matplotlib", "Figure"):
        width, height = value.get_size_inches()
        dpi = THUMB_SIDE / max(width, height, 0.01)
        value.savefig(thumb_path, format="png", dpi=dpi)
        return True
    thumb = value.copy()
    thumb.thumbnail((THUMB_SIDE, THUMB_SIDE))
    thumb.save(thumb_path, format="PNG")
    return True


def store_artifact(value, out_dir, stem, limit_bytes):
    """Write `value` as an artifact in `out_dir`: (claim, None) or (None, error). The claim names the
    files written (data, preview, thumbnail); the server hashes and checks them before it takes them."""
    fmt, ext = choose_format(value)
    data_name = "{}.{}".format(stem, ext)
    data_path = os.path.join(out_dir, data_name)
    try:
        write_value(value, fmt, data_path)
    except Exception as exc:
        _unlink(data_path)
        return None, {"type": "ArtifactError", "message": "the return value of type {} could not be stored as {}: "
                      "{}: {}".format(type_name(value), fmt, type(exc).__name__, _capped(str(exc), 300)), "traceback": []}
    size = os.stat(data_path).st_size
    if size > limit_bytes:
        _unlink(data_path)
        return None, {"type": "ResultTooLarge", "message": "the return value is {:.1f} MB as {}, over the limit of {} MB"
                      .format(size / 1048576, fmt, limit_bytes // 1048576), "traceback": []}
    claim = {"file": data_name, "type": type_name(value), "format": fmt, "preview": None, "thumbnail": None}
    preview_name = stem + ".preview.json"
    try:
        text = json.dumps(preview_of(value, fmt), allow_nan=False, default=repr)
    except Exception as exc:  # a preview is a courtesy: the value still travels
        text = json.dumps({"type": type_name(value), "format": fmt,
                           "preview_error": "no preview: {}".format(type(exc).__name__)})
    with open(os.path.join(out_dir, preview_name), "w") as fh:
        fh.write(text)
    claim["preview"] = preview_name
    try:
        if write_thumbnail(value, fmt, data_path, os.path.join(out_dir, stem + ".thumb.png")):
            claim["thumbnail"] = stem + ".thumb.png"
    except Exception:
        _unlink(os.path.join(out_dir, stem + ".thumb.png"))
    return claim, None


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def load_artifact(path, fmt, kind):
    """The value an input artifact holds, loaded in the downstream sandbox (never in the server)."""
    if fmt == "npy":
        import numpy
        return numpy.load(path, allow_pickle=False)
    if fmt == "arrow":
        import pyarrow.ipc
        with pyarrow.ipc.open_file(path) as reader:
            table = reader.read_all()
        return table.to_pandas() if kind.startswith("pandas.") else table
    if fmt == "png":
        with open(path, "rb") as fh:
            data = fh.read()
        if kind.startswith("PIL.") or kind.startswith("matplotlib."):
            try:
                from PIL import Image
                import io
                image = Image.open(io.BytesIO(data))
                image.load()
                return image
            except ImportError:
                pass
        return data
    with open(path, "rb") as fh:
        return pickle.load(fh)


def convert_input(value, port_type):
    """The obvious conversions inside the sandbox: a list into an Array port becomes a numpy array, and
    JSON rows into a DataFrame port a pandas DataFrame, when the node's environment has them."""
    try:
        if port_type == "Array" and isinstance(value, list):
            import numpy
            return numpy.asarray(value)
        if port_type == "DataFrame" and isinstance(value, (list, dict)):
            import pandas
            return pandas.DataFrame(value)
    except ImportError:
        pass
    return value


def is_reference_shape(value):
    """A dict shaped like an artifact reference: carried as an artifact (pickled), never as JSON."""
    return isinstance(value, dict) and ARTIFACT_KEY in value


# ------------------------------------------------------------------- what the worker's child calls


def load_arguments(args, artifacts):
    """The node's arguments: input artifacts loaded from their read-only files, obvious conversions made."""
    if not artifacts:
        return args
    args = list(args)
    for index, ref in (artifacts.get("inputs") or {}).items():
        args[int(index)] = load_artifact(ref["path"], ref["format"], ref["type"])
    for index, port_type in enumerate(artifacts.get("arg_types") or []):
        if index < len(args):
            args[index] = convert_input(args[index], port_type)
    return args


def _carried_as_json(value):
    """Whether a value travels as JSON (else as an artifact): JSON-able, and not shaped like a reference."""
    if is_reference_shape(value):
        return False
    def reject(obj):
        raise TypeError
    try:
        json.dumps(value, allow_nan=False, default=reject)
        return True
    except (TypeError, RecursionError):
        return False
    except ValueError as exc:
        return "Circular reference" not in str(exc)  # nan and infinity keep their own error


def encode_rich(value, limits, artifacts, encode):
    """Like the worker's `encode` (the JSON text of a value, or an error), but a non-JSON value (or,
    with several outputs, each non-JSON member) is written as an artifact in the output directory and
    carried as null, its claim beside. A single value is encoded once: only when JSON cannot carry it
    is it written as an artifact instead."""
    json_limit = int(limits.get("result_kb", 16384)) * 1024
    outputs = artifacts.get("outputs") or []
    members = len(outputs) > 1 and isinstance(value, dict)
    if not members and not is_reference_shape(value):
        data, error = encode(value, json_limit)
        if error is None or not _json_cannot_carry(error):
            return data, error, None
    claims = {}
    if members:
        value = dict(value)
        names = [name for name in outputs if name in value and not _carried_as_json(value[name])]
    else:
        names = [""]
    for name in names:
        claim, error = _write_artifact(value[name] if name else value, artifacts, len(claims), limits)
        if error:
            return None, error, None
        claims[name] = claim
        if name:
            value[name] = None
    data, error = encode(value if members else None, json_limit)
    return data, error, claims or None


def _json_cannot_carry(error):
    """Whether encoding as JSON failed because of the value's kind (a type or a cycle JSON has no form
    for), rather than its size or a float JSON refuses."""
    return error["type"] in ("TypeError", "RecursionError") or "circular reference" in error["message"]


def _write_artifact(value, artifacts, index, limits):
    """store_artifact, with the file size limit raised to the artifact limit while it writes."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
    try:
        return store_artifact(value, artifacts["out"], "out-{}".format(index),
                              int(limits.get("result_mb", 1024)) * 1024 * 1024)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
