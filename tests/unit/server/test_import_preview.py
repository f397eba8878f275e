"""POST /api/repository/import/preview: what a merge would overwrite, said before anything changes."""

import pytest
import requests

from tests.support.server import LiveServer

ADD = {"id": "lib.add", "title": "Add", "func": "def func(a, b):\n    return a + b\n",
       "port": {"input": [{"name": "a", "order": 0, "type": "Float", "required": True},
                          {"name": "b", "order": 1, "type": "Float", "required": True}],
                "output": [{"name": "out", "type": "Float"}]}}
THEIR_ADD = {**ADD, "func": "def func(a, b=0):\n    return int(a + b)\n",
             "port": {"input": [{"name": "a", "order": 0, "type": "Int"}, {"name": "b", "order": 1, "type": "Int"}],
                      "output": [{"name": "out", "type": "Int"}]}}
USER = {"id": "mine.total", "name": "Total", "nodes": [
    {"id": "n1", "spec_id": "lib.add", "name": "sum", "ports": [{"name": "a", "value": "1"}, {"name": "b", "value": "2"}]}],
    "links": []}
NEW = {**ADD, "id": "lib.new"}


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with LiveServer(tmp_path_factory.mktemp("preview"), args=("--no-stdlib",)) as live:
        mine = {"format_version": 2, "nodespec": {"lib.add": ADD}, "flow": {"mine.total": USER}}
        assert requests.post(live.url + "/api/repository/import?mode=merge", json=mine).status_code == 200
        yield live


def test_preview_names_each_clash_with_its_changes_and_users_and_changes_nothing(api):
    theirs = {"format_version": 2, "nodespec": {"lib.add": THEIR_ADD, "lib.new": NEW}, "flow": {}}
    answer = requests.post(api.url + "/api/repository/import/preview", json=theirs)
    assert answer.status_code == 200
    preview = answer.json()
    (clash,) = preview["clashes"]
    assert clash["kind"] == "nodespec" and clash["id"] == "lib.add" and clash["used_by"] == ["mine.total"]
    text = " | ".join(clash["changes"])
    assert "input 'a': type Float → Int" in text and "input 'b': required → optional" in text
    assert "output 'out': type Float → Int" in text and "code" in text
    assert preview["created"] == ["nodespec/lib.new"] and preview["unchanged"] == []
    stored = requests.get(api.url + "/api/nodespecs/lib.add").json()
    assert stored["port"]["input"][0]["type"] == "Float"
    assert requests.get(api.url + "/api/nodespecs/lib.new").status_code == 404


def test_preview_of_a_bad_bundle_is_refused_like_the_import(api):
    answer = requests.post(api.url + "/api/repository/import/preview", json={"format_version": 2, "nodespec": {"x": {}}})
    assert answer.status_code == 400 and answer.json()["details"]
