"""The command line refuses files nested deeper than the limit with a clear message, and exports a
database holding rows an older version stored too deep, skipping and naming them."""

import json

from tests.unit.cli.test_cli import pyflow
from tests.unit.server.test_stored_depth import plant_old_rows

LIMIT = 64


def deep_flow(levels: int) -> str:
    return ('{"id": "deep", "name": "Deep", "links": [], "nodes": [{"id": "n1", "spec_id": "pyflow.math.add", '
            '"ports": [{"name": "a", "value": %s}]}]}' % ("[" * levels + "]" * levels))


def test_import_validate_and_run_refuse_a_file_nested_too_deep(tmp_path):
    db = tmp_path / "cli.db"
    flow_file = tmp_path / "deep.json"
    flow_file.write_text(deep_flow(100_000))
    pointer = "/nodes/0/ports/0/value" + "/0" * (LIMIT - 5)
    bundle_file = tmp_path / "bundle.json"
    bundle_file.write_text('{"format_version": 2, "nodespec": {}, "flow": {"deep": %s}}' % deep_flow(5_000))
    for args, where in ((("import", str(flow_file)), pointer), (("validate", str(flow_file)), pointer),
                        (("run", str(flow_file), "--executor", "none"), pointer),
                        (("import", str(bundle_file)), "/flow/deep" + pointer[:-4])):
        result = pyflow(*args, db=db)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "nested deeper than 64" in result.stderr and where + ":" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    directory = tmp_path / "repo"
    (directory / "flows").mkdir(parents=True)
    (directory / "nodespecs").mkdir()
    (directory / "flows" / "deep.json").write_text(deep_flow(5_000))
    result = pyflow("import", str(directory), db=db)
    assert result.returncode == 2 and "/flow/deep" + pointer + ":" in result.stderr, result.stderr
    pyflow("export", str(tmp_path / "out.json"), db=db, check=0)
    assert "deep" not in json.loads((tmp_path / "out.json").read_text())["flow"]  # nothing was imported


def test_run_values_nested_too_deep_are_refused(tmp_path):
    values = '{"n1": {"a": %s}}' % ("[" * 50_000 + "]" * 50_000)  # one argument holds at most 128 KiB
    result = pyflow("run", "pyflow.samples.arithmetic", "--values", values, "--executor", "none",
                    db=tmp_path / "cli.db")
    assert result.returncode == 2 and "nested deeper than 64" in result.stderr, result.stderr
    assert "/n1/a" + "/0" * (LIMIT - 2) + ":" in result.stderr and "Traceback" not in result.stderr


def test_export_of_a_database_with_rows_stored_too_deep_skips_and_names_them(tmp_path):
    db = tmp_path / "old.db"
    plant_old_rows(db)
    result = pyflow("export", str(tmp_path / "out.json"), "--no-stdlib", db=db)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "skipped flow/old.deep" in result.stderr and "skipped nodespec/old.spec" in result.stderr
    assert "Traceback" not in result.stderr
    exported = json.loads((tmp_path / "out.json").read_text())
    assert set(exported["flow"]) == {"good.flow"} and "skipped" not in exported
    result = pyflow("export", str(tmp_path / "dir") + "/", "--no-stdlib", db=db)
    assert result.returncode == 1 and (tmp_path / "dir" / "flows" / "good.flow.json").exists()
