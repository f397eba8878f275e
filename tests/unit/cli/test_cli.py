"""The `pyflow` command line as users run it: a subprocess, a real database file, the real sandbox."""

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.support.server import LiveServer, test_executor

ROOT = Path(__file__).resolve().parents[3]
COMPAT = ROOT / "tests" / "fixtures" / "original" / "pyflow-repo.json"


def pyflow(*args, db=None, check=None):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if db is not None:
        env["PYFLOW_DB"] = str(db)
    result = subprocess.run([sys.executable, "-m", "pyflow", *args], capture_output=True, text=True, env=env,
                            cwd=ROOT, timeout=120)
    if check is not None:
        assert result.returncode == check, result.stdout + result.stderr
    return result


@pytest.fixture()
def db(tmp_path):
    path = tmp_path / "cli.db"
    pyflow("import", str(COMPAT), "--no-stdlib", db=path, check=0)
    return path


def test_import_then_run_the_original_flows(db):
    math = pyflow("run", "pyflow.sample.math", "--executor", test_executor(), db=db, check=0)
    assert "node1527101204754" in math.stdout and "9" in math.stdout and "succeeded" in math.stdout
    assert "run " in math.stderr and "[    ok] Division" in math.stderr  # live progress, one line per node
    error = pyflow("run", "pyflow.sample.error", "--executor", test_executor(), db=db, check=1)
    assert "Always Failed!" in error.stdout and "skipped" in error.stdout
    as_json = json.loads(pyflow("run", "pyflow.sample.xor1", "--json", "--executor", test_executor(), db=db,
                                check=0).stdout)
    assert {n["id"]: n["outputs"] for n in as_json["nodes"]}["node1527448391328"] == {"out": True}


def test_run_a_flow_file_with_values(db, tmp_path):
    flow = {"id": "cli.f", "name": "f", "links": [],
            "nodes": [{"id": "n", "spec_id": "pyflow.math.add", "ports": [{"name": "a", "value": "1"},
                                                                          {"name": "b", "value": "2"}]}]}
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(flow))
    result = pyflow("run", str(path), "--values", '{"n": {"b": 40}}', "--json", "--executor", test_executor(),
                    db=db, check=0)
    assert json.loads(result.stdout)["nodes"][0]["outputs"] == {"out": 41}


def test_runs_list_and_show(db):
    pyflow("run", "pyflow.sample.math", "--executor", test_executor(), db=db, check=0)
    listing = pyflow("runs", "list", db=db, check=0).stdout
    assert "pyflow.sample.math" in listing and "succeeded" in listing
    run_id = listing.splitlines()[1].split()[0]
    shown = pyflow("runs", "show", run_id, db=db, check=0).stdout
    assert "Division" in shown and run_id in shown


def test_export_directory_and_bundle_then_reimport(db, tmp_path):
    pyflow("export", str(tmp_path / "repo") + "/", db=db, check=0)
    assert (tmp_path / "repo" / "flows" / "pyflow.sample.xor.json").exists()
    pyflow("export", str(tmp_path / "bundle.json"), db=db, check=0)
    bundle = json.loads((tmp_path / "bundle.json").read_text())
    assert bundle["format_version"] == 2 and len(bundle["nodespec"]) == 11
    other = tmp_path / "other.db"
    out = pyflow("import", str(tmp_path / "repo"), "--replace", db=other, check=0).stdout
    assert "imported (replace)" in out
    assert "exported 11 nodespecs and 4 flows" in pyflow("export", str(tmp_path / "again.json"), db=other,
                                                          check=0).stdout
    assert json.loads((tmp_path / "again.json").read_text())["flow"] == bundle["flow"]


def test_import_of_a_bad_bundle_lists_problems_and_changes_nothing(db, tmp_path):
    bad = json.loads(COMPAT.read_text())
    bad["nodespec"]["pyflow.math.add"]["func"] = "def func(a, b:\n"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    pyflow("export", str(tmp_path / "before.json"), db=db, check=0)
    before = (tmp_path / "before.json").read_text()
    result = pyflow("import", str(path), db=db, check=2)
    assert "/nodespec/pyflow.math.add/func" in result.stderr and "syntax error" in result.stderr
    pyflow("export", str(tmp_path / "after.json"), db=db, check=0)
    assert (tmp_path / "after.json").read_text() == before


def test_validate(tmp_path, db):
    good = tmp_path / "spec.json"
    good.write_text(json.dumps({"id": "a.b", "title": "T", "func": "def func():\n    return 1\n", "port": {}}))
    assert "valid nodespec" in pyflow("validate", str(good), db=db, check=0).stdout
    bad = tmp_path / "flow.json"
    bad.write_text(json.dumps({"id": "f", "nodes": [{"id": "n", "spec_id": "nope"}], "links": []}))
    out = pyflow("validate", str(bad), db=db, check=1).stdout
    assert "invalid flow" in out and "/nodes/0/spec_id" in out
    assert "valid bundle" in pyflow("validate", str(COMPAT), db=db, check=0).stdout
    fresh = tmp_path / "never-created.db"
    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps({"id": "s", "links": [],
                                  "nodes": [{"id": "n", "spec_id": "pyflow.math.add", "ports": []}]}))
    assert "valid flow" in pyflow("validate", str(sample), db=fresh, check=0).stdout  # standard library
    assert not fresh.exists()  # validating changes nothing


def test_nodespec_from_a_python_file(tmp_path):
    source = tmp_path / "scale.py"
    source.write_text('def scale(values: list, factor: float = 2.0) -> list:\n'
                      '    """Scale numbers."""\n    return [v * factor for v in values]\n')
    spec = json.loads(pyflow("nodespec", str(source), "--id", "my.scale", check=0).stdout)
    assert spec["id"] == "my.scale" and spec["title"] == "Scale numbers."
    assert [(p["name"], p["type"]) for p in spec["port"]["input"]] == [("values", "List"), ("factor", "Float")]
    assert spec["port"]["output"] == [{"name": "out", "type": "List"}]


def test_remote_mode_against_a_server(tmp_path):
    with LiveServer(tmp_path / "srv", args=("--no-stdlib",)) as live:
        pyflow("import", str(COMPAT), "--server", live.url, check=0)
        result = pyflow("run", "pyflow.sample.math", "--server", live.url, check=0)
        assert "succeeded" in result.stdout and "[    ok] Division" in result.stderr
        assert "pyflow.sample.math" in pyflow("runs", "list", "--server", live.url, check=0).stdout


def test_docker_images_become_the_docker_executors_allow_list():
    from pyflow.cli import build_parser
    from pyflow.cli.commands import config_from
    args = build_parser().parse_args(["serve", "--executor", "docker", "--docker-images", "a:1,b:2"])
    assert config_from(args).executor_options["images"] == "a:1,b:2"
    args = build_parser().parse_args(["serve", "--executor", "sandbox", "--docker-images", "a:1"])
    assert "images" not in config_from(args).executor_options


def test_executor_options_reach_the_executor(tmp_path):
    from pyflow.cli.commands import executor_options
    assert executor_options(["pool_size=3", "image=my:img", "warm=false"]) == {"pool_size": 3, "image": "my:img",
                                                                               "warm": False}
    with LiveServer(tmp_path / "opt", args=("--no-stdlib", "--executor-option", "tmp_mb=8")) as live:
        big = {"id": "t.fill", "title": "fill", "port": {},
               "func": "def func():\n    open('/tmp/f', 'wb').write(b'x' * (16 * 1024 * 1024))\n    return 1\n"}
        import requests
        result = requests.post(live.url + "/api/nodespecs/test", json={"nodespec": big}).json()
        assert result["status"] == "fail" and "No space left" in result["error"]["message"]


def test_executor_none_serves_everything_but_runs_no_node(tmp_path):
    import requests
    with LiveServer(tmp_path / "none", executor="none") as live:
        health = live.get_json("/api/health")
        assert health["executor"]["name"] == "none" and "disabled" in health["executor"]["warnings"][0]
        assert requests.get(live.url + "/").status_code == 200
        assert len(live.get_json("/api/nodespecs")) > 10
        result = requests.post(live.url + "/api/flows/pyflow.samples.arithmetic/run", json={}).json()
        assert result["status"] == "failed"
        assert result["nodes"][0]["error"]["type"] == "ExecutionDisabled"
        assert "--executor sandbox" in result["nodes"][0]["error"]["message"]
    assert "disabled" in live.log()


def test_run_draws_a_progress_bar_on_a_terminal(db):
    """On a terminal, `pyflow run` keeps a bar on the last line, redrawn as nodes finish."""
    import pty
    env = {**os.environ, "PYFLOW_DB": str(db), "PYTHONUNBUFFERED": "1"}
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(ROOT)
        os.execvpe(sys.executable, [sys.executable, "-m", "pyflow", "run", "pyflow.sample.math", "--no-cache",
                                    "--executor", test_executor()], env)
    output = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    text = output.decode("utf-8", "replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert "[" + "#" * 30 + "] 4/4" in text and "] 1/4" in text  # the bar, from first to last node
    assert "\r\x1b[K" in text  # redrawn in place


@pytest.mark.parametrize("flag, value, says", [("--cache-mb", "-1", "-1 is below the least allowed, 0"),
                                               ("--max-running", "0", "0 is below the least allowed, 1"),
                                               ("--threads", "many", "'many' is not a whole number")])
def test_serve_refuses_settings_out_of_range_before_starting(tmp_path, flag, value, says):
    result = pyflow("serve", "--db", str(tmp_path / "never.db"), flag, value, check=2)
    assert f"argument {flag}: {says}" in result.stderr
    assert not (tmp_path / "never.db").exists()


def test_serve_takes_a_cache_budget(tmp_path):
    with LiveServer(tmp_path / "srv", args=("--no-stdlib", "--cache-mb", "0")) as live:
        spec = {"id": "t.one", "title": "One", "func": "def func():\n    return 1\n",
                "port": {"input": [], "output": [{"name": "out", "type": "Int"}]}}
        flow = {"id": "f", "links": [], "nodes": [{"id": "n", "spec_id": "t.one", "ports": []}]}
        for path, body in (("/api/nodespecs", spec), ("/api/flows", flow)):
            urllib.request.urlopen(urllib.request.Request(live.url + path, json.dumps(body).encode(),
                                                          {"Content-Type": "application/json"}))
        runs = [pyflow("run", "f", "--server", live.url, "--json", check=0) for _ in range(2)]
        assert [json.loads(r.stdout)["nodes"][0]["cached"] for r in runs] == [False, False]  # no room: never cached


def test_run_shows_mapped_progress_nested_nodes_and_branches_not_taken(tmp_path):
    """The sample maps a subflow over six numbers, then takes one branch of an If; a flow using the
    subflow unmapped shows its inner nodes indented under it."""
    db = tmp_path / "stdlib.db"
    pyflow("import", str(ROOT / "repository"), db=db, check=0)
    result = pyflow("run", "pyflow.samples.map_and_branch", "--executor", test_executor(), db=db, check=0)
    assert "[ items] each: 6/6" in result.stderr and "6 items" in result.stderr
    assert "Scale down (down)  branch not taken" in result.stderr
    assert "succeeded" in result.stdout and "success 6/6" in result.stdout
    flow = {"id": "cli.sub", "links": [], "nodes": [{"id": "sq", "spec_id": "flow:pyflow.samples.square_plus_one",
                                                     "ports": [{"name": "x", "value": 2}]}]}
    path = tmp_path / "sub.json"
    path.write_text(json.dumps(flow))
    nested = pyflow("run", str(path), "--executor", test_executor(), db=db, check=0)
    assert "[    ok]   Square (sq/square)" in nested.stderr and "  sq/plus" in nested.stdout


def test_import_dry_run_lists_what_a_merge_would_overwrite_and_changes_nothing(db, tmp_path):
    theirs = json.loads(COMPAT.read_text())
    spec = theirs["nodespec"]["pyflow.math.add"]
    spec["func"] = spec["func"] + "\n# changed\n"
    path = tmp_path / "theirs.json"
    path.write_text(json.dumps(theirs))
    pyflow("export", str(tmp_path / "before.json"), db=db, check=0)
    result = pyflow("import", str(path), "--dry-run", db=db, check=0)
    assert "would overwrite nodespec pyflow.math.add" in result.stdout and "code (func) differs" in result.stdout
    assert "used by:" in result.stdout
    pyflow("export", str(tmp_path / "after.json"), db=db, check=0)
    assert (tmp_path / "after.json").read_text() == (tmp_path / "before.json").read_text()


def test_an_import_that_overwrites_says_where_the_old_objects_are_kept_and_they_come_back(db, tmp_path):
    pyflow("export", str(tmp_path / "before.json"), db=db, check=0)
    theirs = json.loads(COMPAT.read_text())
    theirs["nodespec"]["pyflow.math.add"]["func"] += "\n# changed\n"
    (tmp_path / "theirs.json").write_text(json.dumps(theirs))
    said = pyflow("import", str(tmp_path / "theirs.json"), db=db, check=0).stdout
    kept = said.split("what it replaced is kept in ", 1)[1].split(":", 1)[0]
    assert json.loads(Path(kept).read_text())["nodespec"]["pyflow.math.add"]["func"] == \
        json.loads((tmp_path / "before.json").read_text())["nodespec"]["pyflow.math.add"]["func"]
    pyflow("import", kept, db=db, check=0)
    pyflow("export", str(tmp_path / "after.json"), db=db, check=0)
    assert (tmp_path / "after.json").read_text() == (tmp_path / "before.json").read_text()
