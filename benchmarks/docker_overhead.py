"""Docker executor overhead per node (issue 6, item 2): the warm pool against a container per node.

Side by side in one run, on the same trivial node (x + 1) and the same hardened settings:
  - warm pool: DockerExecutor with one warm container, the fork-server answering each node (including
    the rename that names the container for each node's run and node: docker/README.md);
  - docker exec per node: a fresh process in one running container (the middle ground);
  - container per node (executor): DockerExecutor with pool_size=0 (create, attach, start, remove);
  - docker run per node: `docker run --rm -i` with the same hardening, input on stdin, JSON out.
Overhead per node is the wall time per node minus the function's own in-process time (microseconds).
Goal: the warm pool at least 50x below a container per node.

When no engine answers it starts `dockerd --iptables=false --storage-driver=vfs` (as root; docker/dockerd.sh)
and stops that pid at the end; when the runtime image is missing it builds it (docker/images.sh runtime).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks import busy_warning, median, percentile, table, verdict

ROOT = Path(__file__).resolve().parents[1]
FUNC = "def func(x):\n    return x + 1\n"
SCRIPT = "import json, sys\nexec(sys.argv[1])\nprint(json.dumps(func(*json.load(sys.stdin))))"
GOAL = 50.0
RUNS = {"warm": 200, "exec": 20, "cold": 8, "run": 8}


def main() -> None:
    with engine_for_benchmark() as why_not:
        if why_not:
            print(f"skipped: {why_not}")
            return
        from pyflow.executors.docker import DEFAULT_IMAGE
        image = os.environ.get("PYFLOW_DOCKER_IMAGE") or DEFAULT_IMAGE
        floor = in_process_ms()
        rows = measure_all(image)
        report(rows, floor, image)


# ----------------------------------------------------------------------------------------- engine


class engine_for_benchmark:
    """Context: the engine answers (started here if needed, and then stopped by pid) and the runtime
    image exists. Yields None, or why the benchmark cannot run."""

    def __enter__(self) -> str | None:
        self.pidfile = Path(tempfile.mkdtemp(prefix="pyflow-bench-")) / "dockerd.pid"
        started = subprocess.run([str(ROOT / "docker" / "dockerd.sh"), "start", str(self.pidfile)],
                                 capture_output=True, text=True)
        print(started.stdout.strip())
        if started.returncode != 0:
            return "no Docker engine could be started"
        built = subprocess.run([str(ROOT / "docker" / "images.sh"), "runtime"], capture_output=True, text=True)
        if built.returncode != 0:
            return f"the runtime image could not be built: {built.stderr.strip()[-500:]}"
        return None

    def __exit__(self, *exc) -> None:
        stopped = subprocess.run([str(ROOT / "docker" / "dockerd.sh"), "stop", str(self.pidfile)],
                                 capture_output=True, text=True)
        if stopped.stdout.strip():
            print(stopped.stdout.strip())


# -------------------------------------------------------------------------------------- measuring


def in_process_ms() -> float:
    """The node function's own cost, called in this interpreter: what every mode pays at least."""
    namespace: dict = {}
    exec(FUNC, namespace)
    samples = []
    for _ in range(1000):
        started = time.perf_counter()
        namespace["func"](1)
        samples.append((time.perf_counter() - started) * 1000)
    return median(samples)


def measure_all(image: str) -> dict[str, list[float]]:
    """Per-node wall times (ms) of every mode, measured one after the other in this run."""
    from pyflow.executors.docker import DockerExecutor
    rows = {}
    warm = DockerExecutor(pool_size=1, max_runs=10_000, image=image, owner=f"pyflow-bench-{os.getpid()}")
    try:
        warm.start()
        rows["warm pool (fork-server in a running container)"] = time_executor(warm, RUNS["warm"])
        rows["docker exec per node (one running container)"] = time_exec(warm, image, RUNS["exec"])
    finally:
        warm.close()
    cold = DockerExecutor(pool_size=0, image=image, owner=f"pyflow-bench-{os.getpid()}")
    try:
        cold.start()
        rows["container per node (executor, pool_size=0)"] = time_executor(cold, RUNS["cold"])
    finally:
        cold.close()
    rows["docker run per node (CLI, same hardening)"] = time_docker_run(image, RUNS["run"])
    return rows


def time_executor(executor, runs: int) -> list[float]:
    from pyflow.engine.execution import NodeTask
    samples = []
    for i in range(runs + 2):
        task = NodeTask(node_id=f"n{i}", node_name="inc", spec_id="bench.inc", func=FUNC, args=[i],
                        arg_names=["x"], run_id="bench")
        started = time.perf_counter()
        outcome = executor.run(task)
        elapsed = (time.perf_counter() - started) * 1000
        if not outcome.ok or outcome.value != i + 1:
            raise RuntimeError(f"the node failed: {outcome.error}")
        if i >= 2:  # the first runs warm up caches on both sides
            samples.append(elapsed)
    return samples


def time_exec(executor, image: str, runs: int) -> list[float]:
    """`docker exec -i` of a fresh python3 in one of the executor's running containers."""
    container = next(iter(executor.default._live)).container.id
    cmd = ["docker", "exec", "-i", "-u", "10001:10001", container, "python3", "-I", "-c", SCRIPT, FUNC]
    return [time_command(cmd, i) for i in range(runs)]


def time_docker_run(image: str, runs: int) -> list[float]:
    return [time_command(docker_run_command(image), i) for i in range(runs)]


def docker_run_command(image: str) -> list[str]:
    """`docker run` with the executor's hardening: what a container per node costs from the command line."""
    return ["docker", "run", "--rm", "-i", "--network", "none", "--read-only",
            "--tmpfs", "/tmp:rw,nosuid,nodev,noexec,size=64m", "--memory", "280m", "--memory-swap", "280m",
            "--pids-limit", "34", "--cpus", "1", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "--user", "10001:10001", "--init", "--ipc", "none", "--log-driver", "none",
            "--label", "pyflow.role=benchmark", image, "python3", "-I", "-c", SCRIPT, FUNC]


def time_command(cmd: list[str], x: int) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, input=json.dumps([x]), capture_output=True, text=True, timeout=120)
    elapsed = (time.perf_counter() - started) * 1000
    if done.returncode != 0 or json.loads(done.stdout) != x + 1:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed: {done.stderr.strip()[-300:]}")
    return elapsed


# -------------------------------------------------------------------------------------- reporting


def report(rows: dict[str, list[float]], floor: float, image: str) -> None:
    warm = median(rows[next(iter(rows))]) - floor
    lines = []
    for mode, samples in rows.items():
        overhead = median(samples) - floor
        lines.append((mode, len(samples), overhead, percentile(samples, 0.9) - floor, f"{overhead / warm:,.0f}x"))
    print(table(["mode", "nodes", "median overhead ms/node", "p90 ms/node", "vs warm pool"], lines,
                title=f"Per-node overhead, node x + 1 on {image} (in-process call: {floor * 1000:.1f} us)"))
    cold = [median(rows[m]) - floor for m in rows if m.startswith(("container per node", "docker run"))]
    ratio = min(cold) / warm
    print(verdict(f"warm pool at least {GOAL:.0f}x below a container per node", ratio >= GOAL,
                  f"{ratio:,.0f}x (warm {warm:.1f} ms, cheapest container per node {min(cold):,.0f} ms)"))
    warning = busy_warning()
    if warning:
        print(warning)


if __name__ == "__main__":
    main()
