"""Rich values of the data libraries (numpy, pandas, matplotlib) between nodes.

Nodes name the libraries in `requirements`: in the sandbox they come from environments built from the
real package index (one folder for the whole module, so each is built once), so these tests need the
network and are skipped, saying so, when the index does not answer. The unsafe-process executor also
adds the environment to the venv's interpreter."""

from __future__ import annotations

import urllib.request

import pytest

from pyflow.environments import EnvironmentSettings, IndexSettings
from pyflow.server import create_app
from pyflow.service import Config, PyflowService, build_executor

EXECUTORS = ("sandbox", "unsafe-process")
INDEX = "https://pypi.org/simple/"
DISTRIBUTIONS = {"numpy": "numpy", "pandas": "pandas", "PIL": "pillow", "matplotlib": "matplotlib"}
pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def envs_dir(tmp_path_factory):
    """One environments folder for the module, so each environment is built once; skipped offline."""
    try:
        urllib.request.urlopen(INDEX + "numpy/", timeout=10).close()
    except OSError as exc:
        pytest.skip(f"the package index {INDEX} does not answer ({exc}); these tests install numpy, pandas, "
                    f"pillow and matplotlib from it")
    return tmp_path_factory.mktemp("envs")


def spec(spec_id: str, func: str, inputs=(), outputs=(("out", "Any"),), requirements=("numpy",), **limits) -> dict:
    doc = {"id": spec_id, "title": spec_id, "func": func, "requirements": list(requirements),
           "port": {"input": [{"name": n, "type": t} for n, t in inputs],
                    "output": [{"name": n, "type": t} for n, t in outputs]}}
    if limits:
        doc["limits"] = limits
    return doc


SPECS = [
    *[spec(f"probe.{module}", "def func(module):\n    __import__(module)\n    return True\n", [("module", "String")],
           requirements=(dist,), memory_mb=1024) for module, dist in DISTRIBUTIONS.items()],
    spec("probe.pandas-env", "def func(module):\n    __import__(module)\n    return True\n", [("module", "String")],
         requirements=("numpy", "pandas"), memory_mb=1024),
    spec("np.make", "import numpy as np\ndef func(rows):\n    return np.arange(rows * 3, dtype=np.float32).reshape(rows, 3)\n",
         [("rows", "Int")], [("out", "Array")]),
    spec("np.double", "def func(a):\n    return a * 2\n", [("a", "Array")], [("out", "Array")]),
    spec("np.describe", "def func(a):\n    return [type(a).__name__, str(a.dtype), list(a.shape), float(a.max())]\n",
         [("a", "Array")], [("out", "Json")]),
    spec("np.big", "import numpy as np\ndef func(mb):\n    return np.ones(mb * 131072, dtype=np.float64)\n",
         [("mb", "Int")], [("out", "Array")], memory_mb=1024, result_mb=512, timeout_s=120),
    spec("np.capped", "import numpy as np\ndef func(mb):\n    return np.ones(mb * 131072, dtype=np.float64)\n",
         [("mb", "Int")], [("out", "Array")], result_mb=8),
    spec("np.bigsum", "def func(a):\n    return [a.nbytes, float(a.sum())]\n", [("a", "Array")], [("out", "Json")],
         memory_mb=1024, timeout_s=120),
    spec("pd.frame", "import numpy as np, pandas as pd\ndef func(rows):\n"
         "    return pd.DataFrame({c: np.arange(rows) * i for i, c in enumerate('abcde')})\n",
         [("rows", "Int")], [("out", "DataFrame")], requirements=("numpy", "pandas"), memory_mb=1024),
    spec("pd.rows", "def func(df):\n    return [len(df), list(df.columns)]\n", [("df", "DataFrame")],
         requirements=("pandas",), memory_mb=1024),
    spec("pil.make", "from PIL import Image\ndef func():\n    return Image.new('RGB', (600, 300), (10, 200, 30))\n",
         outputs=[("out", "Image")], requirements=("pillow",), memory_mb=512),
    spec("pil.size", "def func(im):\n    return [type(im).__module__.split('.')[0], list(im.size), im.getpixel((1, 1))]\n",
         [("im", "Image")], requirements=("pillow",), memory_mb=512),
    spec("mpl.plot", "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\ndef func():\n"
         "    fig, ax = plt.subplots(figsize=(4, 3), dpi=50)\n    ax.plot([1, 3, 2])\n    return fig\n",
         outputs=[("out", "Image")], requirements=("matplotlib",)),
]


@pytest.fixture(scope="module", params=EXECUTORS)
def rich(request, tmp_path_factory, envs_dir):
    root = tmp_path_factory.mktemp(request.param)
    config = Config(db_path=root / "db.sqlite", load_stdlib=False, executor=request.param, concurrency=2,
                    environments=EnvironmentSettings(envs_dir, IndexSettings(index_url=INDEX)))
    service = PyflowService(config, build_executor(config)).start()
    for doc in SPECS:
        service.upsert("nodespec", doc)
    app = create_app(service)
    app.testing = True
    yield service, app.test_client(), request.param
    service.close()


def run(service, *nodes, links=()) -> dict:
    flow = {"id": "libs", "nodes": [{"id": f"n{i}", "spec_id": s, "ports": [{"name": k, "value": v} for k, v in p.items()]}
                                     for i, (s, p) in enumerate(nodes)],
            "links": [{"source": a, "target": b} for a, b in links]}
    return service.run_now(flow=flow, use_cache=False, timeout=300)


def outputs(done: dict, node_id: str) -> dict:
    found = next(n for n in done["nodes"] if n["id"] == node_id)
    assert found["status"] == "success", found["error"]
    return found["outputs"]


def needs(rich, *modules: str) -> None:
    """Nodes on this executor import `modules` (from their environments): the first use builds them."""
    service, _, executor = rich
    for module in modules:
        done = run(service, (f"probe.{module}", {"module": module}))
        assert done["nodes"][0]["status"] == "success", done["nodes"][0]["error"]


def test_a_numpy_array_keeps_dtype_and_shape_through_three_nodes(rich):
    needs(rich, "numpy")
    service, client, _ = rich
    done = run(service, ("np.make", {"rows": 100}), ("np.double", {}), ("np.describe", {}),
               links=[("n0:out", "n1:a"), ("n1:out", "n2:a")])
    assert outputs(done, "n2")["out"] == ["ndarray", "float32", [100, 3], 598.0]
    ref = outputs(done, "n0")["out"]["$artifact"]
    assert (ref["format"], ref["summary"]) == ("npy", "ndarray 100 x 3 float32")
    preview = client.get(f"/api/runs/{done['id']}/nodes/n0/outputs/out").get_json()["preview"]["array"]
    assert preview["shape"] == [100, 3] and preview["min"] == 0.0 and preview["max"] == 299.0
    assert preview["sample"][:4] == [0.0, 1.0, 2.0, 3.0]
    raw = client.get(f"/api/runs/{done['id']}/nodes/n0/outputs/out?raw=1")
    assert raw.mimetype == "application/x-npy" and raw.data.startswith(b"\x93NUMPY")


def test_a_list_into_an_array_port_arrives_as_an_array(rich):
    needs(rich, "numpy")
    service, _, _ = rich
    done = run(service, ("np.describe", {"a": "[1.5, 2.5]"}))
    assert outputs(done, "n0")["out"] == ["ndarray", "float64", [2], 2.5]


def test_a_dataframe_preview_has_columns_dtypes_rows_and_the_first_20(rich):
    needs(rich, "numpy", "pandas")
    service, client, _ = rich
    done = run(service, ("pd.frame", {"rows": 1000}), ("pd.rows", {}), links=[("n0:out", "n1:df")])
    assert outputs(done, "n1")["out"] == [1000, ["a", "b", "c", "d", "e"]]
    ref = outputs(done, "n0")["out"]["$artifact"]
    assert ref["summary"] == "DataFrame 1,000 x 5" and ref["type"].startswith("pandas.")
    table = client.get(f"/api/runs/{done['id']}/nodes/n0/outputs/out").get_json()["preview"]["table"]
    assert table["columns"] == ["a", "b", "c", "d", "e"] and table["rows"] == 1000 and len(table["head"]) == 20
    assert table["head"][2] == [0, 2, 4, 6, 8] and table["dtypes"][0] == "int64"
    arrow = run(service, ("probe.pandas-env", {"module": "pyarrow"}))["nodes"][0]["status"] == "success"
    assert ref["format"] == ("arrow" if arrow else "pickle")  # Arrow IPC where the node's pandas has pyarrow
    if arrow:
        raw = client.get(f"/api/runs/{done['id']}/nodes/n0/outputs/out?raw=1")
        assert raw.mimetype == "application/vnd.apache.arrow.file" and raw.data.startswith(b"ARROW1")


def test_a_matplotlib_figure_is_a_png_with_a_thumbnail(rich):
    needs(rich, "matplotlib")
    service, client, _ = rich
    done = run(service, ("mpl.plot", {}))
    ref = outputs(done, "n0")["out"]["$artifact"]
    assert ref["format"] == "png" and ref["thumbnail"] is True and ref["summary"] == "Image 200 x 150"
    full = client.get(f"/api/runs/{done['id']}/nodes/n0/outputs/out?raw=1")
    assert full.mimetype == "image/png" and full.data.startswith(b"\x89PNG")


def test_a_200_mb_array_within_its_limits(rich):
    needs(rich, "numpy")
    service, _, _ = rich
    done = run(service, ("np.big", {"mb": 200}), ("np.bigsum", {}), links=[("n0:out", "n1:a")])
    assert outputs(done, "n1")["out"] == [200 << 20, float(200 * 131072)]
    assert outputs(done, "n0")["out"]["$artifact"]["size"] > 200 << 20


def test_an_array_over_result_mb_fails_with_size_and_limit(rich):
    needs(rich, "numpy")
    service, _, _ = rich
    done = run(service, ("np.capped", {"mb": 10}))
    error = done["nodes"][0]["error"]
    assert error["type"] == "ResultTooLarge" and "10.0 MB" in error["message"] and "limit of 8 MB" in error["message"], error


def test_a_pil_image_is_a_png_with_a_thumbnail_and_an_image_downstream(rich):
    needs(rich, "PIL")
    service, client, _ = rich
    done = run(service, ("pil.make", {}), ("pil.size", {}), links=[("n0:out", "n1:im")])
    assert outputs(done, "n1")["out"] == ["PIL", [600, 300], [10, 200, 30]]
    ref = outputs(done, "n0")["out"]["$artifact"]
    assert ref["summary"] == "Image 600 x 300" and ref["thumbnail"] is True
    thumb = client.get(f"/api/runs/{done['id']}/nodes/n0/outputs/out?thumbnail=1")
    assert thumb.mimetype == "image/png" and thumb.data[16:24] == (256).to_bytes(4, "big") + (128).to_bytes(4, "big")
