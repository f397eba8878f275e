"""The artifact store and its checks of what sandboxes write: PNGs, previews, files of the output place."""

from __future__ import annotations

import os
import pickle
import time

import pytest

from pyflow.storage.artifacts import ArtifactRefused, ArtifactStore
from pyflow.storage.previews import PreviewRefused, check_png, check_preview
from tests.support.png import chunk, png

CLAIM = {"file": "out-0.pickle", "type": "builtins.set", "format": "pickle"}


def test_a_png_is_taken_with_its_size():
    assert check_png(png(3, 2)) == (3, 2)


@pytest.mark.parametrize("bad, why", [
    (b"GIF89a" + png(3, 2)[6:], "signature"),
    (png(3, 2)[:-12], "IEND"),
    (png(3, 2) + b"tail", "follow"),
    (png(3, 2)[:8] + chunk(b"IDAT", b"x") + png(3, 2)[8:], "IHDR"),
    (png(3, 2)[:16] + b"\x00\x00\x00\x00" + png(3, 2)[20:], "outside"),
])
def test_a_png_that_is_not_one_is_refused(bad, why):
    with pytest.raises(PreviewRefused, match=why):
        check_png(bad)


def test_a_png_over_its_cap_is_refused():
    with pytest.raises(PreviewRefused, match="over the cap"):
        check_png(png(300, 300), cap=100)


@pytest.mark.parametrize("data, why", [
    (b"[1, 2]", "not a JSON object"),
    (b"{" * 10 + b"}" * 10 + b"x", "not readable"),
    (b'{"a":' * 100 + b"1" + b"}" * 100, "not readable"),
    (b"\xff\xfe", "not readable"),
])
def test_a_preview_that_is_not_a_small_object_is_refused(data, why):
    with pytest.raises(PreviewRefused, match=why):
        check_preview(data)


def test_a_preview_keeps_only_known_fields_cut_to_size():
    kept = check_preview(b'{"repr": "' + b"r" * 5000 + b'", "table": {"columns": ["a"], "rows": "many", "head": [[1, 2]]},'
                         b' "script": "<script>"}')
    assert len(kept["repr"]) == 2003 and "script" not in kept
    assert kept["table"] == {"columns": ["a"], "dtypes": [], "rows": 0, "head": [[1, 2]]}


@pytest.fixture()
def store(tmp_path):
    return ArtifactStore(tmp_path / "artifacts")


def test_identical_contents_are_stored_once(store):
    refs = []
    for _ in range(2):
        place = store.workspace()
        (place / "out" / "out-0.pickle").write_bytes(pickle.dumps({1, 2}))
        refs.append(store.ingest(place / "out", CLAIM, 1 << 20))
        assert not (place / "out" / "out-0.pickle").exists()
    assert refs[0] == refs[1] and len(store.objects()) == 1
    size = len(pickle.dumps({1, 2}))
    assert store.meta(refs[0].digest) == {**refs[0].meta, "size": size, "summary": f"set ({size} bytes)"}


def test_a_hard_linked_file_is_refused(store, tmp_path):
    place = store.workspace()
    (tmp_path / "elsewhere").write_bytes(b"secret")
    os.link(tmp_path / "elsewhere", place / "out" / "out-0.pickle")
    with pytest.raises(ArtifactRefused, match="not a plain file"):
        store.ingest(place / "out", CLAIM, 1 << 20)


def test_a_file_over_the_limit_is_refused_with_its_size(store):
    place = store.workspace()
    (place / "out" / "out-0.pickle").write_bytes(b"x" * (3 << 20))
    with pytest.raises(ArtifactRefused, match=r"3\.0 MB, over the limit of 2 MB") as refused:
        store.ingest(place / "out", CLAIM, 2 << 20)
    assert refused.value.kind == "ResultTooLarge"


def test_a_url_store_needs_a_local_cache(tmp_path):
    with pytest.raises(ValueError, match="needs a local cache directory"):
        ArtifactStore("memory://bucket/prefix")


def _stored(store, content: bytes, age_s: float = 0.0):
    place = store.workspace()
    (place / "out" / "out-0.pickle").write_bytes(content)
    ref = store.ingest(place / "out", CLAIM, 1 << 30)
    when = time.time() - age_s
    os.utime(store.data_path(ref.digest, "pickle"), (when, when))
    return ref


def test_young_unreferenced_artifacts_stay_within_the_budget_and_go_beyond_it(tmp_path):
    store = ArtifactStore(tmp_path / "a", max_bytes=3 << 20)
    kept = _stored(store, b"k" * (2 << 20))
    older = _stored(store, b"o" * (1 << 20), age_s=60)
    newer = _stored(store, b"n" * (1 << 20), age_s=30)
    done = store.collect({kept.digest})
    assert done["removed"] == 1 and not store.exists(older.digest, "pickle")
    assert store.exists(newer.digest, "pickle") and store.exists(kept.digest, "pickle")
    relaxed = ArtifactStore(tmp_path / "a")
    assert relaxed.collect(set())["removed"] == 0  # all young, no budget: all kept


def test_a_url_store_keeps_a_remote_copy_and_fetches_what_the_local_cache_lost(tmp_path):
    pytest.importorskip("fsspec", reason="an fsspec URL store needs fsspec")
    url = f"memory://pyflow-tests/{tmp_path.name}"
    store = ArtifactStore(url, cache_dir=tmp_path / "cache")
    place = store.workspace()
    (place / "out" / "out-0.pickle").write_bytes(pickle.dumps({"remote"}))
    ref = store.ingest(place / "out", CLAIM, 1 << 20)
    assert store.remote.fs.exists(f"{store.remote.base}/{ref.digest[:2]}/{ref.digest}.pickle")
    elsewhere = ArtifactStore(url, cache_dir=tmp_path / "other-cache")  # another machine, an empty cache
    assert elsewhere.exists(ref.digest, "pickle") and elsewhere.meta(ref.digest)["type"] == "builtins.set"
    assert pickle.loads(elsewhere.data_path(ref.digest, "pickle").read_bytes()) == {"remote"}
    elsewhere.collect(set(), grace_s=0)
    assert not store.remote.fs.exists(f"{store.remote.base}/{ref.digest[:2]}/{ref.digest}.pickle")


def test_an_input_that_is_gone_is_refused_by_name(store, tmp_path):
    place = store.workspace()
    (place / "out" / "out-0.pickle").write_bytes(pickle.dumps({"gone"}))
    ref = store.ingest(place / "out", CLAIM, 1 << 20)
    store.collect(set(), grace_s=0)
    with pytest.raises(ArtifactRefused, match="no longer stored") as refused:
        store.link_input(ref, store.workspace() / "in")
    assert refused.value.kind == "ArtifactMissing"
