"""`pyflow serve`: the REST server and editor on waitress, a production WSGI server."""

from __future__ import annotations

import gc
import signal
import sqlite3
import sys

from ..engine.execution import ExecutorUnavailable
from ..service import Config, PyflowService, build_executor
from ..storage.check import database_problem


def freeze_startup_objects() -> None:
    """Keep what start-up loaded (libraries, the app, the parsed standard library), which lives as long
    as the server, out of the garbage collector's full passes: each would otherwise walk all of it and
    stop every thread, runs and event streams included, for tens of milliseconds."""
    gc.collect()
    gc.freeze()


def serve(config: Config, host: str, port: int, threads: int) -> int:
    from waitress.server import create_server

    from ..server import create_app
    problem = database_problem(config.db_path)  # before anything starts: one sentence, no traceback
    if problem:
        print(f"pyflow: cannot start: {problem}", file=sys.stderr)
        return 2
    try:
        executor = build_executor(config)
    except (ExecutorUnavailable, ValueError, ImportError) as exc:
        print(f"pyflow: cannot start: {exc}", file=sys.stderr)
        return 2
    for warning in executor.describe().get("warnings", []):
        print(f"WARNING: {warning}", file=sys.stderr)
    try:
        service = PyflowService(config, executor).start()
    except (sqlite3.Error, OSError) as exc:  # sound, but not usable: read-only, locked, no folder for it
        executor.close()
        print(f"pyflow: cannot start: the database {config.db_path} cannot be used: {exc}", file=sys.stderr)
        return 2
    server = create_server(create_app(service), host=host, port=port, threads=threads,
                           channel_timeout=300, ident="pyflow")
    freeze_startup_objects()
    url = f"http://{host}:{server.effective_port}/"
    print(f"PyFlow serving {url} (database {config.db_path}, executor {executor.name})", flush=True)

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        server.run()
    except (SystemExit, KeyboardInterrupt):
        pass
    finally:
        server.close()
        service.close()
    return 0
