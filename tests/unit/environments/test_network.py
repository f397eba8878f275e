"""numpy and pandas from the real package index, imported in the sandbox. Needs the network: skipped,
with the reason, when the index does not answer."""

from __future__ import annotations

import urllib.request

import pytest

from pyflow.engine.execution import NodeTask, resolve_limits
from pyflow.environments import EnvironmentSettings, EnvironmentStore, IndexSettings
from pyflow.executors import create_executor

pytestmark = pytest.mark.network
INDEX = "https://pypi.org/simple/"


def index_answers() -> str | None:
    try:
        with urllib.request.urlopen(INDEX + "numpy/", timeout=10) as answer:
            return None if answer.status == 200 else f"the index answered {answer.status}"
    except OSError as exc:
        return f"the package index {INDEX} does not answer ({exc})"


@pytest.fixture(scope="module")
def environments(tmp_path_factory):
    reason = index_answers()
    if reason:
        pytest.skip(reason)
    store = EnvironmentStore(EnvironmentSettings(tmp_path_factory.mktemp("envs"), IndexSettings(index_url=INDEX)))
    return store.environment(["numpy"]), store.environment(["pandas"])


def task(source: str, env) -> NodeTask:
    return NodeTask(node_id="n", node_name="n", spec_id="s", func=source, args=[], arg_names=[],
                    limits=resolve_limits({"memory_mb": 512, "timeout_s": 60}), requirements=("x",), environment=env)


def test_numpy_and_pandas_from_the_index_run_in_the_sandbox(environments):
    numpy_env, pandas_env = environments
    assert any(p.startswith("numpy==") for p in numpy_env.packages)
    assert any(p.startswith("pandas==") for p in pandas_env.packages)
    executor = create_executor("sandbox", pool_size=1)
    executor.start()
    try:
        arrays = executor.run(task("import numpy as np\ndef func():\n    return float(np.arange(10).sum())\n", numpy_env))
        assert arrays.ok and arrays.value == 45.0, arrays
        frames = executor.run(task("import pandas as pd\ndef func():\n"
                                   "    return int(pd.DataFrame({'a': [1, 2, 3]})['a'].sum())\n", pandas_env))
        assert frames.ok and frames.value == 6, frames
        draws = [executor.run(task("import numpy as np\ndef func():\n    return float(np.random.rand())\n",
                                   numpy_env)).value for _ in range(3)]
        assert len(set(draws)) == 3, f"nodes forked from one warm sandbox share numpy's random state: {draws}"
    finally:
        executor.close()
