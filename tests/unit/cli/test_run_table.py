"""The command line's table of a run's nodes."""

import io

from pyflow.cli.progress import print_run_table


def test_pyflow_runs_show_names_the_worker_of_each_node():
    """The command line's run table gains a WORKER column for runs on a cluster (and only for them)."""
    run = {"id": "r", "status": "succeeded", "nodes": [
        {"id": "a", "name": "A", "status": "success", "duration_ms": 1.5, "outputs": {"out": 2},
         "worker": "tcp://127.0.0.1:4001"},
        {"id": "b", "name": "B", "status": "skipped", "error": {"type": "Skipped", "message": "upstream"}}]}
    out = io.StringIO()
    print_run_table(run, out)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["NODE", "NAME", "STATUS", "MS", "WORKER", "RESULT"]
    assert lines[1].split()[:5] == ["a", "A", "success", "1.5", "tcp://127.0.0.1:4001"]
    assert lines[2].split()[:5] == ["b", "B", "skipped", "0.0", "-"]
    local = io.StringIO()
    print_run_table({**run, "nodes": [{k: v for k, v in n.items() if k != "worker"} for n in run["nodes"]]}, local)
    assert "WORKER" not in local.getvalue()
