"""Passing a 100 MB numpy array from one node to the next (issue 14, item 8), against np.save + np.load.

Why: values that are not JSON travel as artifact files, written by the producing node's sandbox, hashed
and moved into the store by the server (a rename), hard-linked into the next sandbox's read-only input
place and loaded there: no copy through the server or a pipe. The promise: the cost of passing the
array is at most 2x a plain np.save + np.load of it on the same disk.

Cost of passing = (node A makes the array and returns it + node B receives it)
                - (node A makes the array and returns its size + node B receives nothing),
each the median of several rounds, alternating, on the same executor. The baseline is np.save and
np.load of the same array in this process, into the artifact store's directory.

The executor is the sandbox when its nodes can import numpy, else unsafe-process (the venv's
interpreter), and the table says which.

    python -m benchmarks.artifacts [--quick]
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from time import perf_counter

from benchmarks import busy_warning, median, table, verdict

MB = 100
ROUNDS = 5
GOAL_RATIO = 2.0
MAKE = "import numpy as np\ndef func(mb):\n    return np.ones(mb * 131072)\n"
MAKE_SIZE = "import numpy as np\ndef func(mb):\n    return int(np.ones(mb * 131072).nbytes)\n"
TAKE = "def func(a):\n    return int(a.nbytes)\n"
NOTHING = "def func(a):\n    return 0\n"
LIMITS = {"memory_mb": 1024, "result_mb": 512, "timeout_s": 120, "file_size_mb": 512}


def _task(func: str, *args):
    from pyflow.engine.execution import NodeTask, resolve_limits
    return NodeTask(node_id="n", node_name="node", spec_id="bench", func=func, args=list(args),
                    arg_names=[f"a{i}" for i in range(len(args))], limits=resolve_limits(LIMITS),
                    arg_types=("Any",) * len(args), output_names=("out",))


def _executor(store):
    """The sandbox when its nodes can import numpy, else unsafe-process; (executor, name)."""
    from pyflow.executors import create_executor
    for name in ("sandbox", "unsafe-process"):
        executor = create_executor(name, pool_size=1)
        executor.use_artifacts(store)
        executor.start()
        if executor.run(_task("def func():\n    import numpy\n    return 1\n")).ok:
            return executor, name
        executor.close()
    raise RuntimeError("no executor here can import numpy")


def _timed(run) -> float:
    started = perf_counter()
    outcome = run()
    assert outcome.ok, outcome.error
    return perf_counter() - started


def _passing(executor, mb: int) -> tuple[float, float]:
    """(seconds to make, return and receive the array; seconds of the same work without passing it)."""
    made = {}

    def make():
        made["outcome"] = executor.run(_task(MAKE, mb))
        return made["outcome"]

    with_value = _timed(make) + _timed(lambda: executor.run(_task(TAKE, made["outcome"].value)))
    without = _timed(lambda: executor.run(_task(MAKE_SIZE, mb))) + _timed(lambda: executor.run(_task(NOTHING, 0)))
    return with_value, without


def _save_load(directory: Path, mb: int) -> float:
    import numpy as np
    array = np.ones(mb * 131072)
    path = directory / "baseline.npy"
    started = perf_counter()
    np.save(path, array)
    loaded = np.load(path)
    spent = perf_counter() - started
    assert loaded.nbytes == array.nbytes
    path.unlink()
    return spent


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    rounds = 2 if "--quick" in argv else ROUNDS
    try:
        import numpy  # noqa: F401
    except ImportError:
        print("skipped: numpy is not installed here")
        return 0
    from pyflow.storage.artifacts import ArtifactStore
    root = Path(tempfile.mkdtemp(prefix="pyflow-bench-artifacts-"))
    store = ArtifactStore(root / "artifacts")
    executor, name = _executor(store)
    try:
        passing, baseline = [], []
        for _ in range(rounds):
            with_value, without = _passing(executor, MB)
            passing.append(with_value - without)
            baseline.append(_save_load(store.root, MB))
            store.collect(set(), grace_s=0)
    finally:
        executor.close()
    cost, base = median(passing), median(baseline)
    ratio = cost / base if base else None
    warning = busy_warning()
    if warning:
        print(warning)
    print(table(("contender", "median ms", "x np.save+np.load"),
                [(f"pass {MB} MB node to node ({name})", cost * 1000, ratio),
                 (f"np.save + np.load, {MB} MB, same disk", base * 1000, 1.0)],
                title=f"{MB} MB numpy array between two nodes, {rounds} rounds"))
    print(verdict(f"passing costs at most {GOAL_RATIO:g}x np.save + np.load", ratio is not None and ratio <= GOAL_RATIO,
                  f"{ratio:.2f}x" if ratio is not None else ""))
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
