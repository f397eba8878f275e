"""`make bench`: run every benchmark module's main() in turn, or only those named on the command line.

    python -m benchmarks                 # all of them
    python -m benchmarks engine runs     # a subset, in the order given

Modules are imported lazily, one at a time, so a missing module, a missing optional dependency
(Hamilton, Docker, a browser) or a crash costs only that benchmark: the others still print their
tables. The exit status is non-zero only when a benchmark crashed, never because a machine is slow.
"""

from __future__ import annotations

import importlib
import sys
import time
import traceback

MODULES = ("engine", "quickcheck", "compose", "runs", "connections", "executors", "environments", "breakdown",
           "artifacts", "docker_overhead", "dask_cluster", "versus", "editor")
DESCRIPTIONS = {
    "engine": "engine overhead per node vs Hamilton and plain Python (issue 18, items 2 and 3)",
    "quickcheck": "the flow save path's fast check against fastjsonschema (issue 12, item 8)",
    "compose": "a map over 1,000 items vs 1,000 plain nodes; compiling a subflow used 100 times (issue 16, item 7)",
    "runs": "cached re-runs, partial re-runs and SSE event latency on a live server (issue 4, item 9)",
    "connections": "health under 200 event-stream followers and 200 slow clients, vs waitress (issue 11, item 4)",
    "executors": "sandbox executor overhead",
    "breakdown": "where a sandboxed node's time goes, layer by layer (issue 18)",
    "environments": "warm numpy/pandas nodes vs a stdlib node, and first use (issue 13, item 4)",
    "artifacts": "a 100 MB numpy array node to node vs np.save + np.load (issue 14, item 8)",
    "docker_overhead": "Docker executor overhead",
    "dask_cluster": "PyFlow on Dask vs the local pool and bare Dask: per-node overhead, pay-off (issue 15, item 7)",
    "versus": "PyFlow REST (sandbox) and engine side by side with bare Dask and Hamilton (issue 18)",
    "editor": "browser editor",
}


def _import(name: str):
    """(module, None), or (None, status) after printing why the module cannot run."""
    qualified = f"{__package__ or 'benchmarks'}.{name}"
    try:
        return importlib.import_module(qualified), None
    except ModuleNotFoundError as exc:
        if exc.name == qualified:
            print(f"skipped: benchmarks/{name}.py is not present")
        else:
            print(f"skipped: it needs the module {exc.name!r}, which is not installed "
                  f"(make bench installs the [bench] extra)")
        return None, "skipped"
    except Exception:
        print("failed to import:")
        traceback.print_exc(file=sys.stdout)
        return None, "failed"


def run_one(name: str) -> str:
    """Run one benchmark module; answers ok, skipped or failed (with the reason printed above)."""
    module, status = _import(name)
    if module is None:
        return status
    entry = getattr(module, "main", None)
    if entry is None:
        print(f"failed: benchmarks/{name}.py has no main()")
        return "failed"
    try:
        code = entry()
    except SystemExit as exc:
        code = exc.code
    except KeyboardInterrupt:
        raise
    except BaseException:
        print(f"failed: benchmark {name!r} raised:")
        traceback.print_exc(file=sys.stdout)
        return "failed"
    return "ok" if code in (None, 0) else f"failed (exit {code})"


def main(argv: list[str] | None = None) -> int:
    names = list(sys.argv[1:] if argv is None else argv)
    if any(n in ("-h", "--help") for n in names):
        print(__doc__)
        print("modules:\n" + "\n".join(f"  {m:16} {DESCRIPTIONS[m]}" for m in MODULES))
        return 0
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        print(f"unknown benchmark {', '.join(unknown)}; choose from: {', '.join(MODULES)}", file=sys.stderr)
        return 2
    summary = []
    for name in names or MODULES:
        print(f"\n=== {name}: {DESCRIPTIONS[name]} ===", flush=True)
        started = time.monotonic()
        status = run_one(name)
        summary.append((name, status, time.monotonic() - started))
        sys.stdout.flush()
    print("\n=== summary ===")
    for name, status, seconds in summary:
        print(f"  {name:16} {status:20} {seconds:7.1f} s")
    return 1 if any(s.startswith("failed") for _, s, _ in summary) else 0


if __name__ == "__main__":
    sys.exit(main())
