"""What a node writes about its artifacts is hostile: node code can write its own files into its output
place and its own result line claiming them. The server hashes, checks and caps everything it takes."""

from __future__ import annotations

import json

import pytest

from pyflow.executors import create_executor
from pyflow.model.artifacts import ArtifactRef
from pyflow.storage.artifacts import ArtifactStore
from tests.unit.executors.conftest import make_task

OUT = "/run/pyflow/out"


def forged(files: dict[str, str], claim: dict, value: str = "null") -> str:
    """A node that writes `files` (name -> Python expression making bytes, or ("link", target)) into its
    output place and then its own result line claiming `claim` as the whole value."""
    lines = ["def func():", "    import os, json"]
    for name, data in files.items():
        if isinstance(data, tuple):
            lines.append(f"    os.symlink({data[1]!r}, {OUT + '/' + name!r})")
        else:
            lines.append(f"    open({OUT + '/' + name!r}, 'wb').write({data})")
    meta = json.dumps({"ok": True, "error": None, "artifacts": {"": claim}})
    lines += ["    pipes = [fd for fd in map(int, os.listdir('/proc/self/fd')) if fd > 2",
              "             and os.path.exists(f'/proc/self/fd/{fd}') and os.readlink(f'/proc/self/fd/{fd}').startswith('pipe:')]",
              f"    view = memoryview({meta!r}.encode() + b'\\n' + {value!r}.encode())",
              "    while view:", "        view = view[os.write(pipes[-1], view):]", "    os._exit(0)"]
    return "\n".join(lines) + "\n"


CLAIM = {"file": "out-0.pickle", "type": "builtins.set", "format": "pickle", "preview": "out-0.preview.json",
         "thumbnail": "out-0.thumb.png"}
PICKLE = "__import__('pickle').dumps({1})"


def pickled(n: int) -> str:
    """Distinct contents per test: the store keeps the first preview of each content."""
    return f"__import__('pickle').dumps({{{n}}})"


@pytest.fixture(scope="module")
def carried(tmp_path_factory):
    store = ArtifactStore(tmp_path_factory.mktemp("store"))
    executor = create_executor("sandbox", pool_size=1)
    executor.use_artifacts(store)
    executor.start()
    yield executor, store
    executor.close()


def test_a_bad_thumbnail_is_dropped_and_the_value_kept(carried):
    executor, store = carried
    outcome = executor.run(make_task(forged({"out-0.pickle": PICKLE, "out-0.preview.json": "b'{}'",
                                             "out-0.thumb.png": "b'\\x89PNG\\r\\n\\x1a\\n' + b'junk' * 100"}, CLAIM)))
    assert outcome.ok and isinstance(outcome.value, ArtifactRef)
    assert outcome.value.meta["thumbnail"] is False and store.thumbnail(outcome.value.digest) is None


def test_a_huge_preview_is_refused_with_a_note(carried):
    executor, store = carried
    huge = "json.dumps({'repr': 'x' * (400 * 1024)}).encode()"
    outcome = executor.run(make_task(forged({"out-0.pickle": pickled(2), "out-0.preview.json": huge}, CLAIM)))
    assert outcome.ok and "over the cap" in outcome.value.meta["preview_error"]
    assert "repr" not in store.preview(outcome.value.digest)


def test_script_in_a_column_name_stays_text_cut_to_size(carried):
    executor, store = carried
    table = {"table": {"columns": ["<script>alert(1)</script>", "x" * 5000], "dtypes": ["int"], "rows": 3,
                       "head": [[1, {"nested": "<img src=x onerror=alert(1)>"}]]}, "evil": "<script>"}
    outcome = executor.run(make_task(forged({"out-0.pickle": pickled(3),
                                             "out-0.preview.json": repr(json.dumps(table).encode())}, CLAIM)))
    preview = store.preview(outcome.value.digest)
    assert preview["table"]["columns"][0] == "<script>alert(1)</script>"  # text; the editor shows it as text
    assert len(preview["table"]["columns"][1]) < 300 and "evil" not in preview
    assert preview["table"]["head"][0][1] == '{"nested": "<img src=x onerror=alert(1)>"}'


def test_a_link_out_of_the_output_place_is_refused(carried):
    executor, store = carried
    outcome = executor.run(make_task(forged({"out-0.pickle": ("link", "/etc/passwd")}, CLAIM)))
    assert not outcome.ok and outcome.error["type"] == "ResultError" and "cannot be opened" in outcome.error["message"]


def test_a_claimed_name_outside_the_pattern_is_refused(carried):
    executor, _ = carried
    for name in ("../../db.sqlite", "out-0.pickle/../x", "/etc/passwd"):
        outcome = executor.run(make_task(forged({}, {**CLAIM, "file": name})))
        assert not outcome.ok and outcome.error["type"] == "ResultError", name


def test_a_png_artifact_must_be_a_png(carried):
    executor, _ = carried
    claim = {"file": "out-0.png", "type": "builtins.bytes", "format": "png"}
    outcome = executor.run(make_task(forged({"out-0.png": "b'<svg onload=alert(1)>'"}, claim)))
    assert not outcome.ok and outcome.error["type"] == "ArtifactError" and "not a PNG" in outcome.error["message"]


def test_a_claim_beside_a_value_is_refused(carried):
    executor, _ = carried
    outcome = executor.run(make_task(forged({"out-0.pickle": PICKLE}, CLAIM, value="[1]")))
    assert not outcome.ok and outcome.error["type"] == "ResultError"


def test_the_sandbox_serves_again_with_an_empty_output_place(carried):
    executor, _ = carried
    executor.run(make_task(forged({"out-0.pickle": PICKLE, "stray": "b'x'"}, CLAIM)))
    listing = executor.run(make_task(f"import os\ndef func():\n    return sorted(os.listdir({OUT!r}))\n"))
    assert listing.ok and listing.value == []


def test_inputs_are_read_only_in_the_downstream_sandbox(carried):
    executor, _ = carried
    made = executor.run(make_task("def func():\n    return {1, 2}\n"))
    task = make_task("import os\ndef func(s):\n    path = '/run/pyflow/in/' + os.listdir('/run/pyflow/in')[0]\n"
                     "    errors = []\n"
                     "    for attempt in (lambda: open(path, 'ab'), lambda: open('/run/pyflow/in/new', 'wb'), lambda: os.unlink(path)):\n"
                     "        try:\n            attempt()\n            errors.append(0)\n"
                     "        except OSError as exc:\n            errors.append(exc.errno)\n"
                     "    return [sorted(s), errors]\n", made.value)
    outcome = executor.run(task)
    assert outcome.ok and outcome.value[0] == [1, 2]
    assert outcome.value[1][0] in (13, 30) and outcome.value[1][1:] == [30, 30]  # EACCES or EROFS; EROFS


def test_a_node_filling_its_output_place_is_ended_saying_so(carried):
    executor, _ = carried
    fill = ("def func():\n    i = 0\n    while True:\n"
            f"        open({OUT!r} + '/junk-%d' % i, 'wb').write(b'x' * (1 << 20))\n        i += 1\n")
    outcome = executor.run(make_task(fill, result_mb=2, timeout_s=60, file_size_mb=4))
    assert not outcome.ok and outcome.error["type"] == "ResultTooLarge" and outcome.violation == "result_too_large"
    assert "into its output place" in outcome.error["message"]
    assert executor.run(make_task("def func():\n    return {1}\n")).ok  # a fresh sandbox serves next


def test_many_small_files_in_the_output_place_end_the_node(carried):
    executor, _ = carried
    fill = f"def func():\n    i = 0\n    while True:\n        open({OUT!r} + '/f%d' % i, 'wb').close()\n        i += 1\n"
    outcome = executor.run(make_task(fill, timeout_s=60))
    assert not outcome.ok and outcome.error["type"] == "ResultTooLarge" and "files into its output place" in outcome.error["message"]
