"""The subcommands of `pyflow`.

What only a command needs (the service, the model's checks, jsonschema) is imported by that command:
`pyflow --help`, and every command that talks to a server, start in about 60 ms rather than 300."""

from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import closing
from pathlib import Path

from ..model.errors import InvalidInput, detail
from ..model.limits import parse_json
from .envs import add_environment_options, apply_environment_options, cmd_envs
from .progress import Progress, print_run_table
from .worker import add_worker, cmd_worker


def add_arguments(sub) -> None:
    _add_serve(sub)
    _add_repository_commands(sub)
    _add_run_commands(sub)
    _add_environment_commands(sub)
    add_worker(sub, at_least, executor_options)
    check = sub.add_parser("check", help="check a database: SQLite's integrity check and PyFlow's stored documents")
    check.add_argument("--db", help="SQLite database file (default: $PYFLOW_DB, else "
                                    "~/.local/share/pyflow/pyflow.db)")


def at_least(low: int):
    """An argparse type: a whole number no smaller than `low`, or a usage error naming the bound."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is below the least allowed, {low}")
        return value
    return parse


def _add_serve(sub) -> None:
    serve = sub.add_parser("serve", help="start the server (Tornado), by default on 127.0.0.1:5000")
    serve.add_argument("--host", default=os.environ.get("PYFLOW_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("PYFLOW_PORT", "5000")))
    serve.add_argument("--threads", type=at_least(1), default=16,
                       help="threads answering requests (event streams hold none)")
    _add_local(serve)
    serve.add_argument("--max-running", type=at_least(1), default=2, help="runs executing at once")
    serve.add_argument("--max-queue", type=at_least(0), default=100, help="runs waiting before 429")
    serve.add_argument("--retention", type=at_least(0), default=100, help="runs kept per flow (0 keeps all)")
    serve.add_argument("--cache-entries", type=at_least(0), default=100_000,
                       help="cached node results kept (least recently used dropped first)")
    serve.add_argument("--cache-mb", type=at_least(0), default=1024,
                       help="most space cached node results take; a result over an eighth of it is not cached")
    serve.add_argument("--repo-dir", help="the only directory /dumprepo and /loadrepo may use")
    serve.add_argument("--max-body-mb", type=at_least(1), default=32, help="largest request body accepted (413 above)")
    serve.add_argument("--sync-timeout", type=at_least(1), default=600,
                       help="seconds a synchronous run or node test may take before it answers 503")
    serve.add_argument("--min-free-mb", type=at_least(0), default=64,
                       help="free disk beside the database below which health fails and new runs answer 503")
    _add_exposure(serve)
    _add_connection_limits(serve)


def _add_exposure(serve) -> None:
    """Who may reach the server; see README, "Exposing PyFlow"."""
    serve.add_argument("--token-file", help="where the generated access token is kept (default: beside the "
                                            "database, <name>.token, mode 0600); $PYFLOW_TOKEN overrides it")
    serve.add_argument("--require-token", action="store_true",
                       help="ask for the token on a loopback address too (beyond loopback it is always asked)")
    serve.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                       help="a host name clients use to reach the server, besides the bound address (repeatable)")
    serve.add_argument("--cors-origin", action="append", default=[], type=origin, metavar="ORIGIN",
                       help="another site's origin (https://app.example) allowed to call the API (repeatable)")
    serve.add_argument("--log-format", choices=("text", "json"), default=os.environ.get("PYFLOW_LOG_FORMAT", "text"),
                       help="a line of text, or a JSON object, per request and per error")


def origin(text: str) -> str:
    """An argparse type: scheme://host[:port], as browsers send it in the Origin header."""
    from urllib.parse import urlsplit
    parts = urlsplit(text)
    try:
        parts.port
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} has a bad port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/") or parts.query:
        raise argparse.ArgumentTypeError(f"{text!r} is not an origin like https://app.example:8443")
    return f"{parts.scheme}://{parts.netloc}".lower()


def network(text: str):
    """An IP address or network (192.0.2.10, 10.0.0.0/8, ::1), for --trusted-proxy."""
    import ipaddress
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address or network") from None


def _add_connection_limits(serve) -> None:
    serve.add_argument("--header-timeout", type=at_least(1), default=10,
                       help="seconds a connection may take to send a request's headers, or stay idle")
    serve.add_argument("--body-timeout", type=at_least(1), default=60, help="seconds to send a request's body")
    serve.add_argument("--max-streams-per-client", type=at_least(1), default=32,
                       help="open event streams per client address (429 above)")
    serve.add_argument("--trusted-proxy", action="append", default=[], type=network, metavar="ADDRESS",
                       help="a reverse proxy's address or network (repeatable): requests from it are counted "
                            "and logged by the client X-Forwarded-For names")


def _add_run_commands(sub) -> None:
    run = sub.add_parser("run", help="run a flow (a stored flow id or a flow JSON file) with live progress")
    run.add_argument("flow", help="flow id, or path to a flow JSON file")
    run.add_argument("--values", help='port values for this run: {"nodeId": {"port": value}}')
    run.add_argument("--no-cache", action="store_true", help="run every node even when cached")
    run.add_argument("--json", action="store_true", help="print the run as JSON instead of a table")
    _add_target(run)
    runs = sub.add_parser("runs", help="run history")
    runs_sub = runs.add_subparsers(dest="runs_command", required=True)
    rl = runs_sub.add_parser("list", help="recent runs, newest first")
    rl.add_argument("--flow")
    rl.add_argument("--status")
    rl.add_argument("--limit", type=int, default=20)
    _add_target(rl)
    rs = runs_sub.add_parser("show", help="one run with every node's result")
    rs.add_argument("run_id")
    rs.add_argument("--json", action="store_true")
    _add_target(rs)


def _add_environment_commands(sub) -> None:
    envs = sub.add_parser("envs", help="environments of third-party packages")
    envs_sub = envs.add_subparsers(dest="envs_command", required=True)
    el = envs_sub.add_parser("list", help="requirements, resolved versions, size, last use, nodespecs using each")
    el.add_argument("--json", action="store_true")
    _add_target(el)
    ep = envs_sub.add_parser("prune", help="remove environments unused for DAYS, or beyond --envs-gb")
    ep.add_argument("--days", type=float, default=None, help="remove those unused for this many days")
    _add_target(ep)


def _add_repository_commands(sub) -> None:
    imp = sub.add_parser("import", help="import a bundle file or a repository directory")
    imp.add_argument("source")
    imp.add_argument("--replace", action="store_true", help="replace the whole repository (default: merge)")
    imp.add_argument("--dry-run", action="store_true",
                     help="change nothing: list what a merge would overwrite (with what changes), create or leave")
    _add_target(imp)

    exp = sub.add_parser("export", help="export the repository as a bundle file, or a directory (git-friendly)")
    exp.add_argument("target", help="FILE.json for a bundle; a directory (existing, or ending in /) for one "
                                    "file per object")
    _add_target(exp)

    val = sub.add_parser("validate", help="check a nodespec, flow or bundle file and list every problem")
    val.add_argument("file")
    _add_target(val)

    spec = sub.add_parser("nodespec", help="build a nodespec from a Python function")
    spec.add_argument("file", help="a .py file defining the function")
    spec.add_argument("--id", help="nodespec id (default: the file's spec['id'] or the function name)")
    spec.add_argument("--function", help="which function (default: func, else the first)")
    spec.add_argument("-o", "--output", help="write to this file instead of standard output")


def _add_local(parser) -> None:
    parser.add_argument("--db", help="SQLite database file (default: $PYFLOW_DB, else "
                                     "~/.local/share/pyflow/pyflow.db)")
    parser.add_argument("--artifacts-dir", default=None, help="where values that are not JSON are kept "
                                                               "(default: artifacts/ beside the database)")
    parser.add_argument("--artifacts-gb", type=float, default=10.0,
                        help="space the artifacts still referenced may take before the collector warns")
    parser.add_argument("--executor", default=os.environ.get("PYFLOW_EXECUTOR", "sandbox"),
                        help="where node code runs: sandbox (default), docker, dask, unsafe-process, or none "
                             "(serve the editor and repository, run no node)")
    parser.add_argument("--dask-scheduler", default=None, metavar="tcp://HOST:8786",
                        help="with --executor dask, the cluster's scheduler (default: $PYFLOW_DASK_SCHEDULER, "
                             "else a local cluster on 127.0.0.1)")
    parser.add_argument("--concurrency", type=int, default=None, help="nodes running at once (default: cores)")
    parser.add_argument("--no-stdlib", action="store_true", help="do not offer the standard library to the "
                        "database (all of it to an empty one, what a newer version adds to one in use)")
    parser.add_argument("--executor-option", action="append", default=[], metavar="KEY=VALUE",
                        help="an option for the executor, e.g. pool_size=4, max_runs=50, tmp_mb=128 (repeatable)")
    parser.add_argument("--docker-images", default=None, metavar="IMAGE[,IMAGE...]",
                        help="images a nodespec may name with the docker executor, besides the runtime image "
                             "and images built from requirements (default: $PYFLOW_DOCKER_IMAGES)")
    add_environment_options(parser)


def _add_target(parser) -> None:
    parser.add_argument("--server", default=os.environ.get("PYFLOW_SERVER"),
                        help="URL of a running PyFlow server (default: work on the local database)")
    parser.add_argument("--token", default=os.environ.get("PYFLOW_TOKEN"),
                        help="the server's access token (default: $PYFLOW_TOKEN), sent as a Bearer header")
    _add_local(parser)


def config_from(args):
    from ..service import Config
    config = Config(**({"db_path": Path(args.db)} if getattr(args, "db", None) else {}))
    config.executor = args.executor
    config.load_stdlib = not args.no_stdlib
    if getattr(args, "artifacts_dir", None):
        config.artifacts_dir = args.artifacts_dir if "://" in args.artifacts_dir else Path(args.artifacts_dir)
    config.artifacts_gb = getattr(args, "artifacts_gb", config.artifacts_gb)
    if args.concurrency:
        config.concurrency = args.concurrency
    config.executor_options = executor_options(args.executor_option)
    if getattr(args, "docker_images", None) is not None and config.executor == "docker":
        config.executor_options.setdefault("images", args.docker_images)
    apply_environment_options(config, args)
    if getattr(args, "dask_scheduler", None) and config.executor == "dask":
        config.executor_options.setdefault("scheduler", args.dask_scheduler)
    return config


def executor_options(pairs: list[str]) -> dict:
    """KEY=VALUE strings as keyword arguments; values that read as JSON (numbers, true) are parsed."""
    options = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInput("bad --executor-option", [detail("/executor-option", f"{pair!r} is not KEY=VALUE")])
        try:
            options[key.strip()] = json.loads(raw)
        except ValueError:
            options[key.strip()] = raw
    return options


def backend_for(args):
    from .backends import LocalBackend, RemoteBackend
    if getattr(args, "server", None):
        return RemoteBackend(args.server, args.token)
    return LocalBackend(config_from(args))


def cmd_serve(args) -> int:
    from .serve import serve
    config = config_from(args)
    config.max_running, config.max_queue, config.retention = args.max_running, args.max_queue, args.retention
    config.max_body_mb = args.max_body_mb
    config.cache_entries = args.cache_entries
    config.cache_mb = args.cache_mb
    config.sync_timeout_s, config.min_free_mb = args.sync_timeout, args.min_free_mb
    if args.repo_dir:
        config.repo_dir = Path(args.repo_dir)
    config.bind_host, config.require_token = args.host, args.require_token
    if args.token_file:
        config.token_file = Path(args.token_file)
    config.allowed_hosts, config.cors_origins = args.allowed_host, args.cors_origin
    config.log_format = args.log_format
    return serve(config, args.host, args.port, connection_limits(args))


def connection_limits(args):
    from ..server.serving import Limits
    return Limits(threads=args.threads, header_timeout_s=args.header_timeout, body_timeout_s=args.body_timeout,
                  max_body_bytes=args.max_body_mb * 1024 * 1024, streams_per_client=args.max_streams_per_client,
                  trusted_proxies=tuple(args.trusted_proxy))


def cmd_run(args) -> int:
    with closing(backend_for(args)) as backend:
        values = parse_json(args.values, "--values") if args.values else None
        target = Path(args.flow)
        if target.suffix == ".json" or target.is_file():
            run = backend.start_run(flow=load_flow_file(target), values=values, cache=not args.no_cache)
        else:
            run = backend.start_run(flow_id=args.flow, values=values, cache=not args.no_cache)
        progress = Progress(sys.stderr, enabled=not args.json)
        for event in backend.follow(run["id"]):
            progress.handle(event)
        progress.close()
        final = backend.get_run(run["id"])
    show_run(final, args.json)
    return 0 if final["status"] == "succeeded" else 1


def show_run(run: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(run, indent=2))
    else:
        print_run_table(run, sys.stdout)


def load_flow_file(path: Path) -> dict:
    from ..model.bundle import load_bundle_file
    doc = load_bundle_file(path)
    if isinstance(doc, dict) and "nodes" not in doc and isinstance(doc.get("flow"), dict) and len(doc["flow"]) == 1:
        return next(iter(doc["flow"].values()))
    return doc


def cmd_import(args) -> int:
    from ..model.bundle import load_bundle_file
    if args.dry_run:
        return _import_preview(args)
    with closing(backend_for(args)) as backend:
        summary = backend.import_bundle(load_bundle_file(Path(args.source)), "replace" if args.replace else "merge")
    print(f"imported ({summary['mode']}): {summary['created']} created, {summary['updated']} updated, "
          f"{summary['unchanged']} unchanged, {summary['deleted']} deleted")
    for change in ("updated", "deleted"):  # what the import replaced or removed, so nothing goes unnoticed
        for name in summary.get("changes", {}).get(change, []):
            print(f"  {change}: {name}")
    if summary.get("backup"):
        where = "" if args.server is None else " on the server"
        print(f"what it replaced is kept in {summary['backup']}{where}: `pyflow import` of that file puts it back")
    return 0


def _import_preview(args) -> int:
    """What `pyflow import` (merge) would do, said before it is done: a merge replaces stored objects."""
    from ..model.bundle import load_bundle_file
    with closing(backend_for(args)) as backend:
        preview = backend.preview_import(load_bundle_file(Path(args.source)))
    print(f"a merge would create {len(preview['created'])}, leave {len(preview['unchanged'])} unchanged and "
          f"overwrite {len(preview['clashes'])}")
    for clash in preview["clashes"]:
        print(f"  would overwrite {clash['kind']} {clash['id']}")
        for change in clash["changes"]:
            print(f"    - {change}")
        if clash["used_by"]:
            print(f"    used by: {', '.join(clash['used_by'])}")
    return 0


def cmd_export(args) -> int:
    from ..model.bundle import dumps_object, write_atomic, write_directory
    with closing(backend_for(args)) as backend:
        bundle = backend.export_bundle()
    skipped = bundle.pop("skipped", [])
    target = Path(args.target)
    if target.is_dir() or args.target.endswith(("/", os.sep)) or (not target.suffix and not target.exists()):
        write_directory(bundle, target)
        print(f"exported {len(bundle['nodespec'])} nodespecs and {len(bundle['flow'])} flows to {target}/")
    else:
        write_atomic(target, dumps_object(bundle))
        print(f"exported {len(bundle['nodespec'])} nodespecs and {len(bundle['flow'])} flows to {target}")
    for item in skipped:  # stored by an older version, unreadable now: the export is not complete
        print(f"skipped {item['path'].lstrip('/')}: {item['message']}", file=sys.stderr)
    return 1 if skipped else 0


def cmd_validate(args) -> int:
    from ..model.bundle import load_bundle_file
    doc = load_bundle_file(Path(args.file))
    kind, problems = _validate(doc, args)
    if problems:
        print(f"{args.file}: invalid {kind} ({len(problems)} problem{'s' if len(problems) > 1 else ''})")
        for item in problems:
            print(f"  {item['path'] or '/'}: {item['message']}")
        return 1
    print(f"{args.file}: valid {kind}")
    return 0


def _validate(doc, args) -> tuple[str, list[dict]]:
    from ..model.bundle import check_bundle
    from ..model.flow import analyze_flow
    from ..model.nodespec import check_nodespec
    if not isinstance(doc, dict):
        return "document", [detail("/", "expected a JSON object")]
    if "func" in doc or "port" in doc:
        return "nodespec", check_nodespec(doc)
    if "nodes" in doc or "links" in doc:
        with closing(backend_for(args)) as backend:
            specs = backend.specs()
        _, problems = analyze_flow(doc, specs)
        return "flow", problems
    return "bundle", check_bundle(doc)


def cmd_nodespec(args) -> int:
    from ..model.bundle import write_atomic
    from ..model.nodespec import check_nodespec
    from ..model.signature import nodespec_from_source
    try:
        source = Path(args.file).read_text("utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {args.file}", [detail("/", str(exc))]) from None
    spec = nodespec_from_source(source, args.id, args.function)
    problems = check_nodespec(spec)
    if problems:
        raise InvalidInput("the function does not make a valid nodespec", problems)
    text = json.dumps(spec, indent=2) + "\n"
    if args.output:
        write_atomic(Path(args.output), text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_runs(args) -> int:
    with closing(backend_for(args)) as backend:
        if args.runs_command == "list":
            runs, total = backend.list_runs(args.flow, args.status, args.limit)
            print(f"{'RUN':34} {'FLOW':28} {'STATUS':12} CREATED")
            for run in runs:
                print(f"{run['id']:34} {str(run['flow_id'] or '-'):28} {run['status']:12} {run['created_at']}")
            print(f"({len(runs)} of {total})")
            return 0
        run = backend.get_run(args.run_id)
    show_run(run, args.json)
    return 0


def cmd_check(args) -> int:
    """Report what a database holds that is wrong; exit 1 when anything is. Reads only."""
    from ..service.config import default_db_path
    from ..storage.check import check_database
    path = Path(args.db) if args.db else default_db_path()
    print(f"checking {path}")
    parts = check_database(path)
    for part in parts:
        status = "ok" if not part.count else f"{part.count} problem{'s' if part.count > 1 else ''}"
        print(f"  {part.name}: {status}" + (f" ({part.looked_at})" if part.looked_at else ""))
        for problem in part.problems:
            print(f"    {problem}")
        if part.more:
            print(f"    ... and {part.more} more")
    total = sum(part.count for part in parts)
    print(f"{path}: {total} problem{'s' if total != 1 else ''} found" if total else f"{path}: no problems found")
    return 1 if total else 0


COMMANDS = {"check": cmd_check, "serve": cmd_serve, "run": cmd_run, "import": cmd_import, "export": cmd_export,
            "validate": cmd_validate, "nodespec": cmd_nodespec, "runs": cmd_runs, "envs": cmd_envs,
            "worker": cmd_worker}
