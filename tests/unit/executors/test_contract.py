"""The executor contract, one test body for every executor (sandbox, unsafe-process, docker when asked):
what a node run reports for values, exceptions, output, limits, crashes and cancellation.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.hostile.cases import (FORGED_DEEP, FORGED_HUGE, FORGED_NAN, SURROGATE_EXCEPTION, SURROGATE_RESULT,
                                 SURROGATE_STDOUT)
from tests.support.timing import scaled

from .conftest import make_task

RAISES = '''
def helper(x):
    return {"a": 1}[x]

def func(x):
    print("about to fail")
    return helper(x)
'''


def test_returns_the_value_of_func_applied_to_its_inputs(any_executor):
    value = {"text": "grüße ✓", "n": [1, 2.5, None, True], "nested": {"k": ["v"]}}
    outcome = any_executor.run(make_task("def func(a, b):\n    return {'a': a, 'b': b}\n", value, 7))
    assert outcome.ok, outcome.error
    assert outcome.value == {"a": value, "b": 7} and outcome.error is None and outcome.violation is None


def test_exception_reports_type_message_and_only_the_nodes_traceback(any_executor):
    outcome = any_executor.run(make_task(RAISES, "missing", spec_id="lookup"))
    assert not outcome.ok
    assert outcome.error["type"] == "KeyError" and outcome.error["message"] == "'missing'"
    lines = outcome.error["traceback"]
    files = [line for line in lines if line.lstrip().startswith("File ")]
    assert files == ['  File "<node lookup>", line 7, in func', '  File "<node lookup>", line 3, in helper'], lines
    assert any('return {"a": 1}[x]' in line for line in lines), lines
    assert "worker.py" not in "\n".join(lines)
    assert outcome.stdout == "about to fail\n"


def test_print_output_comes_back_with_the_result(any_executor):
    source = "def func():\n    import sys\n    print('to stdout')\n    print('to stderr', file=sys.stderr)\n    return 1\n"
    outcome = any_executor.run(make_task(source))
    assert outcome.ok and outcome.value == 1
    assert "to stdout\n" in outcome.stdout and "to stderr\n" in outcome.stdout


def test_stdout_is_truncated_with_a_marker_at_the_cap(any_executor):
    outcome = any_executor.run(make_task("def func():\n    print('x' * 50000)\n    return 'done'\n", stdout_kb=4))
    assert outcome.ok and outcome.value == "done"
    assert outcome.stdout.startswith("x" * 4096)
    assert outcome.stdout[4096:] == "\n[... output truncated at 4096 bytes ...]\n"


def test_timeout_says_timed_out_after_n_seconds(any_executor):
    started = time.monotonic()
    outcome = any_executor.run(make_task("def func():\n    import time\n    time.sleep(60)\n", timeout_s=1))
    assert not outcome.ok and outcome.violation == "timeout"
    assert outcome.error == {"type": "Timeout", "message": "timed out after 1 s", "traceback": []}
    assert time.monotonic() - started < scaled(10)


def test_memory_exhaustion_reports_the_memory_limit(any_executor):
    outcome = any_executor.run(make_task("def func():\n    blocks = [bytearray(300 << 20)]\n    return 1\n",
                                         memory_mb=64))
    assert not outcome.ok and outcome.violation == "memory"
    assert "memory limit of 64 MB exceeded" in outcome.error["message"], outcome.error


def test_os_exit_reports_how_the_process_ended(any_executor):
    outcome = any_executor.run(make_task("def func():\n    import os\n    os._exit(3)\n"))
    assert not outcome.ok and outcome.violation == "crashed"
    assert outcome.error["message"] == "the node process exited with status 3 before returning a result"


def test_segfault_reports_the_signal(any_executor):
    outcome = any_executor.run(make_task("def func():\n    import ctypes\n    return ctypes.string_at(0)\n"))
    assert not outcome.ok and outcome.violation == "crashed"
    assert outcome.error["message"] == "the node process was ended by SIGSEGV (segmentation fault)"


def test_a_value_json_cannot_carry_fails_naming_its_type(any_executor):
    outcome = any_executor.run(make_task("def func():\n    return [1, object()]\n"))
    assert not outcome.ok
    assert outcome.error["type"] == "TypeError"
    assert outcome.error["message"] == "a return value of type object cannot be carried as JSON"
    cyclic = any_executor.run(make_task("def func():\n    a = []\n    a.append(a)\n    return a\n"))
    assert not cyclic.ok and "circular reference" in cyclic.error["message"]


def test_a_result_over_its_limit_fails_saying_so(any_executor):
    outcome = any_executor.run(make_task("def func():\n    return 'x' * 200000\n", result_kb=64))
    assert not outcome.ok and outcome.error["type"] == "ResultTooLarge"
    assert "64 KiB" in outcome.error["message"]


def test_broken_source_is_a_node_error_not_an_executor_failure(any_executor):
    syntax = any_executor.run(make_task("def func(:\n    pass\n"))
    assert not syntax.ok and syntax.error["type"] == "SyntaxError"
    missing = any_executor.run(make_task("def other():\n    return 1\n"))
    assert not missing.ok and missing.error["type"] == "KeyError"
    exits = any_executor.run(make_task("def func():\n    raise SystemExit(4)\n"))
    assert not exits.ok and exits.error["message"] == "the node called exit(4)"


def test_random_state_differs_between_runs(any_executor):
    source = "def func():\n    import random\n    return random.getrandbits(64)\n"
    values = {any_executor.run(make_task(source)).value for _ in range(4)}
    assert None not in values and len(values) == 4


def test_environment_holds_only_a_minimal_path_home_and_lang(any_executor):
    outcome = any_executor.run(make_task("def func():\n    import os\n    return dict(os.environ)\n"))
    assert outcome.ok
    assert {"PATH", "HOME", "LANG"} <= set(outcome.value) <= {"PATH", "HOME", "LANG", "PWD", "TMPDIR"}, outcome.value


def test_cancel_ends_a_running_node_promptly(any_executor):
    cancel = threading.Event()
    timer = threading.Timer(0.5, cancel.set)
    timer.start()
    started = time.monotonic()
    outcome = any_executor.run(make_task("def func():\n    import time\n    time.sleep(60)\n", timeout_s=60), cancel)
    timer.cancel()
    assert not outcome.ok and outcome.violation == "cancelled" and outcome.error["type"] == "Cancelled"
    assert time.monotonic() - started < scaled(5)
    assert any_executor.run(make_task("def func():\n    return 'after'\n")).value == "after"


def test_concurrent_runs_each_get_their_own_result(any_executor):
    source = "def func(n):\n    import time\n    time.sleep(0.05)\n    return n * n\n"
    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(lambda n: any_executor.run(make_task(source, n)), range(8)))
    assert [o.value for o in outcomes] == [n * n for n in range(8)]


def test_describe_names_the_executor_and_its_isolation(any_executor):
    info = any_executor.describe()
    assert info["name"] == any_executor.name and info["isolation"] and isinstance(info["warnings"], list)


def test_a_cancelled_node_leaves_no_process_behind(any_executor):
    """Cancelling ends the node's own process too, not only what runs it (a plain subprocess has no
    namespace whose end would take the node with it)."""
    from tests.hostile.support import processes_named, wait_until
    name = f"pfc{os.getpid() % 100000}"
    source = ("def func(name):\n    import ctypes, time\n    ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)\n"
              "    time.sleep(60)\n")
    cancel = threading.Event()
    runner = threading.Thread(target=any_executor.run, args=(make_task(source, name, timeout_s=60), cancel))
    runner.start()
    try:
        assert wait_until(lambda: processes_named(name), timeout=30), "the node never started"
    finally:
        cancel.set()
        runner.join(timeout=30)
    assert wait_until(lambda: not processes_named(name), timeout=10), processes_named(name)


@pytest.mark.parametrize("forged, error", [
    (FORGED_DEEP, "ResultError: the node returned a value that cannot be read: it is nested too deeply"),
    (FORGED_NAN, "ResultError: the node returned a value that cannot be read: it holds NaN, which JSON cannot carry"),
    (FORGED_HUGE, "ResultTooLarge: the return value is 307202 bytes of JSON, over the limit of 256 KiB"),
], ids=["deeply-nested", "nan", "over-result-kb"])
def test_a_forged_result_fails_the_node_and_the_pool_keeps_serving(any_executor, forged, error):
    """A node can write any bytes to its result pipe instead of returning: reading them never raises,
    and the worker it ran on is replaced, so the pool still serves more runs than it holds workers."""
    for _ in range(2):
        outcome = any_executor.run(make_task(forged, result_kb=1024 if forged is FORGED_DEEP else 256))
        assert not outcome.ok and f"{outcome.error['type']}: {outcome.error['message']}" == error, outcome
    for n in range(any_executor.pool_size + 2):
        assert any_executor.run(make_task("def func(n):\n    return n\n", n)).value == n


def test_text_utf8_cannot_carry_fails_a_value_and_is_replaced_elsewhere(any_executor):
    """A lone surrogate in a return value fails the node; in an exception message it becomes U+FFFD."""
    outcome = any_executor.run(make_task(SURROGATE_RESULT))
    assert not outcome.ok and outcome.violation is None, outcome
    assert outcome.error["message"] == "the return value holds a lone surrogate (U+D800), which UTF-8 cannot carry"
    outcome = any_executor.run(make_task(SURROGATE_EXCEPTION))
    assert outcome.error["type"] == "ValueError" and outcome.error["message"] == "a\ufffdb", outcome
    outcome = any_executor.run(make_task(SURROGATE_STDOUT))
    assert outcome.ok and outcome.stdout == "raw \ufffd\ufffd\ufffd\nprinted \ufffd\ufffd\ufffd\n", outcome
