"""The original's /dumprepo and /loadrepo paths: a file system error is the caller's bad path (400), not a
server error. Found by the API fuzzer."""

import pytest

from pyflow.executors.inprocess import InProcessExecutor
from pyflow.model.errors import InvalidInput
from pyflow.service import Config, PyflowService


@pytest.fixture()
def service(tmp_path):
    config = Config(db_path=tmp_path / "db.sqlite", repo_dir=tmp_path / "repos", load_stdlib=False)
    service = PyflowService(config, InProcessExecutor())
    yield service
    service.close()


@pytest.mark.parametrize("path", ["a" * 300, "b" * 200 + "/" + "c" * 300])
def test_a_name_too_long_is_a_bad_path(service, path):
    for action in (service.dump_to, service.load_from):
        with pytest.raises(InvalidInput) as info:
            action(path)
        assert info.value.details[0]["path"] == "/path"


def test_writing_below_a_file_is_a_bad_path(service, tmp_path):
    service.dump_to("backup.json")
    with pytest.raises(InvalidInput) as info:
        service.dump_to("backup.json/inner.json")
    assert "backup.json/inner.json" in info.value.details[0]["message"]
    assert sorted(p.name for p in (tmp_path / "repos").iterdir()) == ["backup.json"]  # nothing left behind
