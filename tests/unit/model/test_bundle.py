import json

from pyflow.model.bundle import check_bundle, dumps_object, read_directory, write_directory


def test_original_repository_file_is_a_valid_bundle(compat_bundle):
    assert "format_version" not in compat_bundle
    assert check_bundle(compat_bundle) == []


def test_problems_carry_the_object_key(compat_bundle):
    bundle = json.loads(json.dumps(compat_bundle))
    bundle["nodespec"]["pyflow.math.add"]["func"] = "def func(a, b:\n"
    del bundle["nodespec"]["pyflow.logic.not"]
    found = {p["path"] for p in check_bundle(bundle)}
    assert "/nodespec/pyflow.math.add/func" in found
    assert any(p.startswith("/flow/pyflow.sample.xor/") for p in found)


def test_key_must_match_id():
    bundle = {"nodespec": {"a": {"id": "b", "title": "B", "func": "def func():\n    return 1\n", "port": {}}}}
    assert check_bundle(bundle)[0]["path"] == "/nodespec/a/id"


def test_newer_format_is_refused():
    assert check_bundle({"format_version": 99, "nodespec": {}, "flow": {}})[0]["path"] == "/format_version"


def test_directory_round_trip_is_stable(tmp_path, compat_bundle):
    write_directory(compat_bundle, tmp_path)
    first = {p.name: p.read_text() for p in sorted(tmp_path.rglob("*.json"))}
    assert (tmp_path / "nodespecs" / "pyflow.math.add.json").exists()
    assert (tmp_path / "flows" / "pyflow.sample.math.json").exists()
    back = read_directory(tmp_path)
    assert back["nodespec"] == compat_bundle["nodespec"] and back["flow"] == compat_bundle["flow"]
    write_directory(back, tmp_path)
    assert {p.name: p.read_text() for p in sorted(tmp_path.rglob("*.json"))} == first


def test_key_order_is_stable_and_readable():
    text = dumps_object({"func": "x", "zeta": 1, "id": "a", "port": {}, "title": "T"})
    assert list(json.loads(text)) == ["id", "title", "port", "func", "zeta"]
    assert text.endswith("\n") and "\n  " in text


def test_removed_objects_lose_their_files(tmp_path, compat_bundle):
    write_directory(compat_bundle, tmp_path)
    smaller = {**compat_bundle, "flow": {}}
    write_directory(smaller, tmp_path)
    assert list((tmp_path / "flows").glob("*.json")) == []
