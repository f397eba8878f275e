"""`pyflow serve`: the REST server and editor, Flask behind Tornado's HTTP server (server/serving.py)."""

from __future__ import annotations

import gc
import sys

from ..engine.execution import ExecutorUnavailable
from ..server.serving import Limits, run
from ..service import Config, PyflowService, build_executor


def freeze_startup_objects() -> None:
    """Keep what start-up loaded (libraries, the app, the parsed standard library), which lives as long
    as the server, out of the garbage collector's full passes: each would otherwise walk all of it and
    stop every thread, runs and event streams included, for tens of milliseconds."""
    gc.collect()
    gc.freeze()


def serve(config: Config, host: str, port: int, limits: Limits) -> int:
    from ..server import create_app
    try:
        executor = build_executor(config)
    except (ExecutorUnavailable, ValueError, ImportError) as exc:
        print(f"pyflow: cannot start: {exc}", file=sys.stderr)
        return 2
    for warning in executor.describe().get("warnings", []):
        print(f"WARNING: {warning}", file=sys.stderr)
    service = PyflowService(config, executor).start()
    app = create_app(service)
    freeze_startup_objects()

    def listening(bound_port: int) -> None:
        print(f"PyFlow serving http://{host}:{bound_port}/ (database {config.db_path}, executor {executor.name})",
              flush=True)

    try:
        run(app, service.runs, host, port, limits, listening)
    except KeyboardInterrupt:
        pass
    finally:
        service.close()
    return 0
