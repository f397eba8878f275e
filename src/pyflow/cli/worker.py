"""`pyflow worker`: a Dask worker that runs PyFlow nodes in this machine's sandbox.

It checks first that the sandbox works here (else it says why and exits 2, joining nothing), then
starts a Dask worker (under a nanny that restarts it if it dies, unless --no-nanny) with the sandbox
plugin and one sandbox slot per thread, and serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import logging
import os
import signal
import sys


def add_worker(sub, at_least, executor_options) -> None:
    worker = sub.add_parser("worker", help="join a Dask cluster as a worker that runs nodes in this machine's "
                                           "sandbox")
    worker.add_argument("scheduler", nargs="?", default=os.environ.get("PYFLOW_DASK_SCHEDULER"),
                        help="the scheduler's address, tcp://HOST:8786 (default: $PYFLOW_DASK_SCHEDULER)")
    worker.add_argument("--nthreads", type=at_least(1), default=os.cpu_count() or 1,
                        help="nodes this worker runs at once, one warm sandbox each (default: cores)")
    worker.add_argument("--name", help="the worker's name in the cluster (default: its address)")
    worker.add_argument("--host", default=None, help="the address to listen on and announce (default: the one "
                                                     "that reaches the scheduler)")
    worker.add_argument("--executor", choices=("sandbox", "docker"), default="sandbox",
                        help="how nodes are isolated on this machine (default: the bubblewrap sandbox)")
    worker.add_argument("--executor-option", action="append", default=[], metavar="KEY=VALUE",
                        help="an option for the sandbox, e.g. max_runs=50, tmp_mb=128 (repeatable)")
    worker.add_argument("--artifacts-dir", default=os.environ.get("PYFLOW_ARTIFACTS_DIR"),
                        help="where values that are not JSON are kept: a folder shared with the server, or the "
                             "server's fsspec URL (default: $PYFLOW_ARTIFACTS_DIR; without it, such values fail)")
    worker.add_argument("--no-nanny", action="store_true", help="no nanny process to restart the worker")
    worker.set_defaults(parse_options=executor_options)


def cmd_worker(args) -> int:
    if not args.scheduler:
        print("pyflow worker: name the scheduler (tcp://HOST:8786) or set PYFLOW_DASK_SCHEDULER", file=sys.stderr)
        return 2
    from ..executors.dask import sandbox_problem
    options = args.parse_options(args.executor_option)
    if args.artifacts_dir:
        options["artifacts_dir"] = args.artifacts_dir
    problem = sandbox_problem(args.executor, options)
    if problem:
        print(f"pyflow worker: cannot join {args.scheduler}: {problem}", file=sys.stderr)
        return 2
    import asyncio
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return asyncio.run(_serve(args, options))


async def _serve(args, options: dict) -> int:
    import asyncio
    from distributed import Nanny, Worker
    from ..executors.dask import worker_settings
    kind = Worker if args.no_nanny else Nanny
    node = kind(args.scheduler, name=args.name, host=args.host, dashboard_address=None,
                **worker_settings(args.nthreads, args.executor, options))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):  # before starting: a signal during the start is kept
        loop.add_signal_handler(sig, stop.set)
    try:
        await node
    except Exception as exc:
        print(f"pyflow worker: cannot join {args.scheduler}: {exc}", file=sys.stderr)
        return 2
    print(f"PyFlow worker {node.worker_address} joined {args.scheduler} ({args.nthreads} sandbox slot(s), "
          f"{args.executor})", flush=True)
    stopped = asyncio.ensure_future(stop.wait())
    finished = asyncio.ensure_future(node.finished())
    await asyncio.wait([stopped, finished], return_when=asyncio.FIRST_COMPLETED)
    if stop.is_set():
        await node.close()
    finished.cancel()
    stopped.cancel()
    return 0
