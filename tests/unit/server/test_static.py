"""The editor's page: the build's copy of index.html (which names the chunks to preload) when there is
one, else the source."""

from __future__ import annotations

from pyflow.executors.inprocess import InProcessExecutor
from pyflow.server import create_app
from pyflow.service import Config, PyflowService


def page(tmp_path, static):
    service = PyflowService(Config(token=None, db_path=tmp_path / "pyflow.db"), InProcessExecutor()).start()
    try:
        app = create_app(service, static_dir=static)
        app.testing = True
        return app.test_client().get("/").get_data(as_text=True)
    finally:
        service.close()


def test_index_is_the_built_copy_when_the_editor_is_built(tmp_path):
    static = tmp_path / "static"
    (static / "dist").mkdir(parents=True)
    (static / "index.html").write_text("source page")
    assert page(tmp_path, static) == "source page"
    (static / "dist" / "index.html").write_text("built page")
    assert page(tmp_path, static) == "built page"
