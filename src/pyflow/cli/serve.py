"""`pyflow serve`: the REST server and editor, Flask behind Tornado's HTTP server (server/serving.py)."""

from __future__ import annotations

import gc
import socket
import sqlite3
import sys

from ..engine.execution import ExecutorUnavailable
from ..environments import RequirementsPolicy
from ..server.serving import Limits, run
from ..service import Config, PyflowService, build_executor
from ..storage.check import database_problem


def freeze_startup_objects() -> None:
    """Keep what start-up loaded (libraries, the app, the parsed standard library), which lives as long
    as the server, out of the garbage collector's full passes: each would otherwise walk all of it and
    stop every thread, runs and event streams included, for tens of milliseconds."""
    gc.collect()
    gc.freeze()


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def access_note(config: Config, port: int, token: str | None, source: str) -> str:
    """What to open, Jupyter-style: the editor's address with the token, which it trades for a cookie.
    A token the operator set in PYFLOW_TOKEN is theirs already and is not printed."""
    if token is None:
        return ""
    hosts = [url_host(config.bind_host)]
    if config.bind_host in ("", "0.0.0.0", "::"):
        hosts = [socket.gethostname(), "127.0.0.1"]
    if source == "environment":
        weak = " (WARNING: shorter than 16 characters)" if len(token) < 16 else ""
        return (f"\nAccess token required: the one in PYFLOW_TOKEN{weak}; the editor asks for it at "
                + " or ".join(f"http://{host}:{port}/login" for host in hosts))
    return (f"\nAccess token required ({source}, kept in {config.token_file}). Open the editor at:"
            + "".join(f"\n    http://{host}:{port}/?token={token}" for host in hosts))


def serve(config: Config, host: str, port: int, limits: Limits) -> int:
    """Check the database and the token, start the executor and the service, then serve until SIGTERM
    or SIGINT. Anything that stops the start is one sentence on stderr and exit status 2."""
    from ..server import create_app
    from ..server.requestlog import configure_logging
    from ..server.security import ensure_token
    configure_logging(config.log_format)
    problem = database_problem(config.db_path)  # before anything starts: one sentence, no traceback
    if problem:
        print(f"pyflow: cannot start: {problem}", file=sys.stderr)
        return 2
    try:
        token, source = ensure_token(config)
    except (OSError, RuntimeError) as exc:
        print(f"pyflow: cannot start: no access token: {exc}", file=sys.stderr)
        return 2
    try:
        RequirementsPolicy(config.environments.policy)
    except ValueError as exc:
        print(f"pyflow: cannot start: {exc}", file=sys.stderr)
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
    app = create_app(service)
    freeze_startup_objects()

    def listening(bound_port: int) -> None:
        print(f"PyFlow serving http://{url_host(host)}:{bound_port}/ (database {config.db_path}, executor "
              f"{executor.name})" + access_note(config, bound_port, token, source), flush=True)

    try:
        run(app, service, host, port, limits, listening)
    except KeyboardInterrupt:
        pass
    finally:
        service.close()
    return 0
