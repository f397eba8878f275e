"""What a node's result can cost the server: a node that writes a result at its limit straight to its
result pipe, shaped to make the most Python objects per byte, must not raise the server's peak memory by
more than three times its result limit plus a constant.

Each shape runs in a fresh interpreter that drives the executor directly, and reads its own peak resident
set (VmHWM, reset just before the run where the kernel allows it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .cases import forged_result
from .conftest import NOT_ISOLATING, WITH_ENVIRONMENT
from .support import ROOT

LIMIT_KB = 16384
CONSTANT_MB = 48  # the budget's own slack (32 MB) and the interpreter's transient allocations
SIZE = LIMIT_KB * 1024 - 16  # the value's JSON text, just within the limit

SHAPES = {
    "empty-objects": (f"b'[' + b'{{}},' * ({SIZE} // 3 - 1) + b'{{}}]'", "ResultTooLarge"),
    "nested-lists": (f"b'[' + b'[[]],' * ({SIZE} // 5 - 1) + b'[[]]]'", "ResultTooLarge"),
    "object-of-objects": ("b'{' + b','.join(b'\"%x\":{}' % i for i in range(" + str(SIZE // 13) + ")) + b'}'",
                          "ResultTooLarge"),
    "small-numbers": (f"b'[' + b'7,' * ({SIZE} // 2 - 1) + b'7]'", "ResultTooLarge"),
    "large-numbers": (f"b'[' + b'1e300,' * ({SIZE} // 6 - 1) + b'1000]'", "ResultTooLarge"),
    "one-long-string": (f"b'\"' + b'x' * ({SIZE} - 2) + b'\"'", None),
    # Ordinary records, about 4 MB of JSON: read, within the same bound.
    "records": ("b'[' + b','.join(b'{\"id\":%d,\"name\":\"item %d\",\"tags\":[\"x\",\"y:z\"],\"score\":%d.5}' % (i, i, i)"
                " for i in range(60000)) + b']'", None),
}

PROBE = r'''
import json, sys
from pyflow.engine.execution import NodeTask, resolve_limits
from pyflow.executors import create_executor


def status(field):
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith(field + ":"))


def task(source):
    limits = resolve_limits({"result_kb": int(sys.argv[3]), "memory_mb": 512, "timeout_s": 60})
    return NodeTask(node_id="n", node_name="n", spec_id="memory", func=source, args=[], arg_names=[], limits=limits)


executor = create_executor(sys.argv[1], pool_size=1)
executor.start()
try:
    assert executor.run(task("def func():\n    return [1, {'a': 'b'}]\n")).ok
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # resets VmHWM to the current resident set
    except OSError:
        pass
    base = status("VmRSS")
    outcome = executor.run(task(sys.argv[2]))
    peak = status("VmHWM")
    print(json.dumps({"base": base, "peak": peak, "ok": outcome.ok, "error": outcome.error,
                      "value_len": len(outcome.value) if isinstance(outcome.value, str) else None}))
finally:
    executor.close()
'''


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_forged_result_at_its_limit_costs_at_most_three_times_the_limit(executor_name, shape):
    if executor_name in NOT_ISOLATING:
        pytest.skip(f"{executor_name} does not isolate node code")
    if executor_name == WITH_ENVIRONMENT:
        pytest.skip("results are weighed by the same executor as without an environment (run as 'sandbox')")
    expression, error = SHAPES[shape]
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH") or str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-c", PROBE, executor_name, forged_result(expression), str(LIMIT_KB)],
                          capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if error is None:
        assert report["ok"] and report["value_len"] in (SIZE - 2, None), report
    else:
        assert not report["ok"] and report["error"]["type"] == error, report
    grown = report["peak"] - report["base"]
    print(f"{shape}: peak memory grew by {grown >> 20} MB")
    bound = 3 * LIMIT_KB * 1024 + CONSTANT_MB * 1024 * 1024
    assert grown <= bound, f"{shape}: the run raised peak memory by {grown >> 20} MB, over {bound >> 20} MB"
