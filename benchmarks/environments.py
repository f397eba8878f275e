"""Third-party packages per node (issue 13, item 4): a warm node importing numpy or pandas next to a
standard-library node, and the first use of each environment.

Why: numpy takes ~0.1 s and pandas ~0.5 s to import; paid per node, a flow of a hundred small numpy nodes
would spend most of its time importing. An environment's warm sandboxes import the nodespec's modules in
their zygote before forking, so each node (still a fresh, limited, sandboxed child) finds them loaded.
The promise: a warm numpy or pandas node costs at most 3x a standard-library node's per-node overhead.

Where the time goes on first use: resolving the lock and installing (uv, from its cache when warm),
then starting the environment's warm sandbox (bwrap + the zygote's imports); both once per environment.

    python -m benchmarks.environments      (needs the package index; skipped with the reason without it)
"""

from __future__ import annotations

import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks import busy_warning, median, table, verdict
from pyflow.engine.execution import NodeTask, resolve_limits
from pyflow.environments import EnvironmentSettings, EnvironmentStore, IndexSettings
from pyflow.executors import create_executor

INDEX = "https://pypi.org/simple/"
ROUNDS = 60
GOAL_RATIO = 3.0
NODES = {
    "stdlib": ((), "import json\ndef func(x):\n    return json.loads(json.dumps(x)) + 1\n"),
    "numpy": (("numpy",), "import numpy as np\ndef func(x):\n    return float(np.asarray([x]).sum() + 1)\n"),
    "pandas": (("pandas",), "import pandas as pd\ndef func(x):\n    return int(pd.Series([x]).sum() + 1)\n"),
}


def task(source: str, env, value: int) -> NodeTask:
    return NodeTask(node_id="n", node_name="n", spec_id="s", func=source, args=[value], arg_names=["x"],
                    limits=resolve_limits({"memory_mb": 512}), requirements=("x",) if env else (), environment=env)


def first_use(store, executor, name: str) -> tuple:
    """(environment seconds, first node seconds, environment) for one contender."""
    reqs, source = NODES[name]
    started = time.perf_counter()
    env = store.environment(list(reqs)) if reqs else None
    built = time.perf_counter() - started
    started = time.perf_counter()
    outcome = executor.run(task(source, env, 1))
    assert outcome.ok, outcome.error
    return built, time.perf_counter() - started, env


def main(argv=None) -> int:
    try:
        urllib.request.urlopen(INDEX + "numpy/", timeout=10).close()
    except OSError as exc:
        print(f"skipped: the package index {INDEX} does not answer ({exc})")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        store = EnvironmentStore(EnvironmentSettings(Path(tmp) / "envs", IndexSettings(index_url=INDEX)))
        executor = create_executor("sandbox", pool_size=1)
        executor.start()
        try:
            firsts = {name: first_use(store, executor, name) for name in NODES}
            warm = {name: [] for name in NODES}
            for i in range(ROUNDS):  # interleaved, so a busy moment slows every contender alike
                for name, (_reqs, source) in NODES.items():
                    started = time.perf_counter()
                    outcome = executor.run(task(source, firsts[name][2], i))
                    warm[name].append((time.perf_counter() - started) * 1000)
                    assert outcome.ok, outcome.error
        finally:
            executor.close()
    report(firsts, warm)
    return 0


def report(firsts: dict, warm: dict) -> None:
    base = median(warm["stdlib"])
    rows = [(name, f"{firsts[name][0]:.2f} s", f"{firsts[name][1] * 1000:,.0f} ms", median(warm[name]),
             f"{median(warm[name]) / base:.2f}x") for name in NODES]
    print(table(("node", "environment (first use)", "first node", "warm node, median ms", "vs stdlib"), rows,
                f"Warm node cost with third-party packages ({ROUNDS} interleaved rounds)"))
    worst = max(median(warm["numpy"]), median(warm["pandas"])) / base
    print(verdict(f"a warm numpy/pandas node costs at most {GOAL_RATIO:g}x a stdlib node", worst <= GOAL_RATIO,
                  f"worst {worst:.2f}x"))
    warning = busy_warning()
    if warning:
        print(warning)


if __name__ == "__main__":
    raise SystemExit(main())
