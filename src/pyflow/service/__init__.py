"""The runtime API that the REST server and the command line share.

It ties storage, the engine and an executor together. HTTP handlers stay thin: they parse a request,
call one method here and render the answer; errors raised here carry their HTTP status.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Callable, Iterator

from .. import __version__
from ..engine import FlowRunner, RunOptions, compile_flow
from ..engine.execution import Executor
from ..environments import EnvironmentStore
from ..executors.sandbox import SANDBOX_PYTHON
from ..model.bundle import dumps_object, load_bundle_file, write_atomic, write_directory
from ..model.errors import InvalidInput, NotFound, ServiceUnavailable, detail
from ..model.nodespec import require_valid_nodespec
from ..model.requirements import requirement_problems
from ..model.signature import infer_ports
from ..model.subflow import flow_spec_docs
from ..model.types import describe_types
from ..model.validation import SCHEMA_NAMES, load_schema
from ..storage import ObjectStore, Record, Repository, RunStore, SQLiteRepository
from . import environments as envs
from .backups import keeper
from .artifacts import RawArtifact, describe_output, find_output, open_store, raw_output
from .config import Config
from .health import executor_check, summarize, threads_check
from .library import offer_library
from .runs import RUN_STATUSES, LiveRun, RunManager
from .nesting import nest_results
from .tree import nodespec_tree

__all__ = ["Config", "PyflowService", "build_executor"]

log = logging.getLogger(__name__)


def build_executor(config: Config, for_server: bool = True) -> Executor:
    """The executor `config` names, with its pool sized for the configured concurrency."""
    from ..executors import SERVER_FORBIDDEN, create_executor
    if for_server and config.executor in SERVER_FORBIDDEN:
        raise ValueError(f"the {config.executor!r} executor runs node code inside the server and is for "
                         f"tests and benchmarks only")
    options = {"pool_size": max(1, config.concurrency), **config.executor_options}
    if config.executor == "sandbox":
        options.setdefault("warm_envs", config.environments.warm_envs)
    executor = create_executor(config.executor, **options)
    if hasattr(executor, "use_artifacts"):
        executor.use_artifacts(open_store(config))
    executor.start()
    return executor


class PyflowService:
    """The one way in for the REST server and the command line: objects, runs and their history, events,
    cancellation, imports and exports. Each part of storage is used through its own interface."""

    def __init__(self, config: Config, executor: Executor, repository: Repository | None = None):
        self.config = config
        self.executor = executor
        self.repository = repository or SQLiteRepository(config.db_path)  # all three stores, closed here
        self.objects: ObjectStore = self.repository
        self.history: RunStore = self.repository
        self.environments = EnvironmentStore(config.environments,
                                             python=config.executor_options.get("python") or SANDBOX_PYTHON)
        self.environments.after_build = self._environment_built
        self.artifacts = open_store(config)
        self.runs = RunManager(self.repository, self.repository, executor, config, environments=self.environments,
                               artifacts=self.artifacts)
        self._closed = threading.Event()

    def start(self) -> "PyflowService":
        if self.config.load_stdlib:
            self.load_standard_library()
        self.runs.start()
        return self

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self.runs.shutdown()
        self.executor.close()
        self.repository.close()

    def load_standard_library(self) -> dict | None:
        """Offer the standard library and sample flows (see library.py): all of it to an empty
        repository, what a newer version adds to one in use."""
        stdlib = self.config.stdlib_dir
        if stdlib is None or not Path(stdlib).is_dir():
            return None
        return offer_library(self.objects, Path(stdlib))

    # ------------------------------------------------------------------------------------ general
    def health(self) -> dict:
        """Whether this server can run flows now: run threads alive, the executor able to start a node,
        the database taking a write, free disk above the floor. Answers within about a second under
        any load; a failing check is named in `error` and `details`, as in an error body."""
        checks = {"runs": threads_check(self.runs.dead_threads()), "executor": executor_check(self.executor),
                  "database": self.runs.gate.database(), "disk": self.runs.gate.disk()}
        return {**summarize(checks), "version": __version__, "executor": self.executor.describe(),
                "queue": self.runs.queue_length(), "concurrency": self.config.concurrency, "checks": checks}

    @staticmethod
    def port_types() -> list[dict]:
        return describe_types()

    @staticmethod
    def schema(name: str) -> dict:
        """The JSON Schema the server checks documents of kind `name` with, for the editor and other
        tools (so that id patterns and limits have one home)."""
        if name not in SCHEMA_NAMES:
            raise NotFound(f"no schema named {name!r}", [detail("/name", f"one of {', '.join(SCHEMA_NAMES)}")])
        return load_schema(name)

    # ---------------------------------------------------------------------------------- objects
    def list(self, kind: str) -> list[Record]:
        return self.objects.list(kind)

    def get(self, kind: str, object_id: str) -> Record:
        return self.objects.get(kind, object_id)

    def _check_policy(self, kind: str, doc) -> None:
        """A nodespec asking for packages this server's requirements policy does not permit: 403."""
        if kind == "nodespec" and isinstance(doc, dict) and isinstance(doc.get("requirements"), list):
            wanted = [r for r in doc["requirements"] if isinstance(r, str)]
            if wanted and not requirement_problems(wanted):
                self.environments.policy.check(wanted)

    def create(self, kind: str, doc) -> Record:
        self._check_policy(kind, doc)
        record, _ = self.objects.save(kind, doc, create_only=True)
        return record

    def put(self, kind: str, object_id: str, doc, expected: int | None = None,
            force: bool = False) -> tuple[Record, bool]:
        self._check_policy(kind, doc)
        return self.objects.save(kind, doc, object_id=object_id, expected=expected, must_exist=True,
                                    force=force)

    def upsert(self, kind: str, doc) -> Record:
        self._check_policy(kind, doc)
        record, _ = self.objects.save(kind, doc)
        return record

    def delete(self, kind: str, object_id: str, expected: int | None = None, force: bool = False) -> None:
        self.objects.delete(kind, object_id, expected=expected, force=force)

    def tree(self) -> list[dict]:
        return nodespec_tree([r.doc for r in self.objects.list("nodespec")])

    def subflows(self) -> list[dict]:
        """Every stored flow as the node it makes in another flow (`flow:<id>`, ports from its boundary
        nodes), for the palette's Flows group."""
        specs = self.objects.specs()
        return [flow_spec_docs(spec) for _, spec in sorted(specs.items()) if spec.flow is not None]

    @staticmethod
    def infer_ports(source: str, function: str | None = None) -> dict:
        return infer_ports(source, function)

    # ----------------------------------------------------------------------------- environments
    def _warm_environments(self) -> list[str]:
        pools = getattr(self.executor, "environments", None)
        return pools.keys() if pools is not None else []

    def list_environments(self) -> list[dict]:
        return envs.environment_list(self.environments, [r.doc for r in self.objects.list("nodespec")],
                                     self._warm_environments())

    def prepare_environment(self, body) -> dict:
        """Build the environment of {"requirements": [...]} ahead of a run (the editor's Prepare)."""
        return envs.prepare(self.environments, body)

    def remove_environment(self, key: str) -> None:
        envs.remove(self.environments, key, self._warm_environments())

    def prune_environments(self, body=None) -> dict:
        return envs.prune(self.environments, body, self._warm_environments())

    def _environment_built(self, key: str) -> None:
        self.environments.keep_within_budget(key, self._warm_environments(), self.config.max_limits.timeout_s)

    # ------------------------------------------------------------------------------------- runs
    def start_run(self, flow_id: str | None = None, flow: dict | None = None, values: dict | None = None,
                  use_cache: bool = True) -> dict:
        """Queue a run of a stored flow (flow_id) or an inline one (flow); answers the queued run."""
        specs = self.objects.specs()
        if flow is not None:
            plan = self.runs.plans.for_document(flow, specs, values, use_cache)
            flow_id = flow.get("id") if isinstance(flow, dict) else None
        else:
            def load():
                record = self.objects.get("flow", flow_id)
                return record.doc, record.revision
            plan = self.runs.plans.for_stored(flow_id, self.objects.revision_of("flow", flow_id), load,
                                              specs, values, use_cache)
        return self.runs.submit(plan, values, use_cache, flow_id=flow_id)

    def run_now(self, flow_id: str | None = None, flow: dict | None = None, values: dict | None = None,
                use_cache: bool = True, timeout: float | None = None) -> dict:
        """Run and wait: answers the finished run with every planned node's result. Waits at most
        `timeout` (default: the configured deadline of synchronous runs), then raises
        ServiceUnavailable naming the run, which goes on."""
        run = self.start_run(flow_id, flow, values, use_cache)
        return self.runs.wait(run["id"], self.config.sync_timeout_s if timeout is None else timeout)

    def test_nodespec(self, spec_doc: dict, inputs: dict | None = None) -> dict:
        """Run one node of `spec_doc` with `inputs` on the server's executor; no history, no cache."""
        spec = require_valid_nodespec(spec_doc)
        inputs = inputs or {}
        unknown = [name for name in inputs if spec.input(name) is None]
        if unknown:
            raise InvalidInput("unknown input ports", [detail(f"/inputs/{name}", f"nodespec {spec.id!r} has no "
                                                                                   f"input port {name!r}")
                                                       for name in unknown])
        flow = {"id": "nodespec-test", "name": f"test of {spec.id}", "links": [],
                "nodes": [{"id": "test", "spec_id": spec.id, "name": spec.title, "is_end": True,
                           "ports": [{"name": k, "value": v} for k, v in inputs.items()]}]}
        compiled = compile_flow(flow, {spec.id: spec}, cache_keys=False)
        runner = FlowRunner(compiled, self.executor,
                            RunOptions(concurrency=1, use_cache=False, default_limits=self.config.default_limits,
                                       max_limits=self.config.max_limits), environments=self.environments)
        return self._within_deadline(runner, f"the test of nodespec {spec.id!r}").nodes[0]

    def test_stored_nodespec(self, spec_id: str, inputs: dict | None = None) -> dict:
        """`test_nodespec` of the stored nodespec `spec_id` (404 when there is none)."""
        return self.test_nodespec(self.objects.get("nodespec", spec_id).doc, inputs)

    def _within_deadline(self, runner: FlowRunner, what: str):
        """Run on a thread of its own and wait at most the synchronous deadline; past it, cancel and
        raise ServiceUnavailable (an executor ends a cancelled node within a second)."""
        answer: dict = {}

        def run():
            try:
                answer["outcome"] = runner.run()
            except BaseException as exc:  # raised on the caller's thread below
                answer["error"] = exc

        thread = threading.Thread(target=run, name="pyflow-node-test", daemon=True)
        thread.start()
        thread.join(self.config.sync_timeout_s)
        if thread.is_alive():
            runner.cancel.set()
            log.warning("%s did not finish within %g s and was cancelled", what, self.config.sync_timeout_s)
            raise ServiceUnavailable(f"{what} did not finish within {self.config.sync_timeout_s:g} s and was "
                                     f"cancelled", retry_after=5)
        if "error" in answer:
            raise answer["error"]
        return answer["outcome"]

    # ------------------------------------------------------------------------------ run history
    def list_runs(self, flow_id: str | None = None, status: str | None = None, limit: int = 50,
                  offset: int = 0) -> tuple[list[dict], int]:
        """A page of the run history, newest first, and how many runs match in all.

        :param status: one of RUN_STATUSES, or None for any; anything else is a 400.
        """
        if status is not None and status not in RUN_STATUSES:
            raise InvalidInput("bad status filter",
                               [detail("/status", f"status must be one of {', '.join(RUN_STATUSES)}")])
        return self.history.list_runs(flow_id, status, limit, offset)

    def get_run(self, run_id: str, with_nodes: bool = True) -> dict:
        """A stored run (404 when there is none); with its snapshot and node results when `with_nodes`,
        flat in `nodes` (each with its path) and, when the run expanded subflows, nested under their
        subflow nodes in `tree`."""
        run = self.history.get_run(run_id, with_nodes=with_nodes)
        if with_nodes and any(len(n.get("path") or ()) > 1 for n in run.get("nodes") or ()):
            run["tree"] = nest_results(run["nodes"], run.get("snapshot"))
        return run

    def node_output(self, run_id: str, node_id: str, port: str) -> dict:
        """Output `port` of node `node_id` in run `run_id`: its JSON value, or its artifact's metadata and
        checked preview (never the artifact loaded); 404 for an unknown run, node or port."""
        return describe_output(self.artifacts, find_output(self.get_run(run_id), node_id, port))

    def node_output_raw(self, run_id: str, node_id: str, port: str, thumbnail: bool = False) -> RawArtifact:
        """The artifact file behind an output (or its thumbnail), to stream with its content type."""
        value = find_output(self.get_run(run_id), node_id, port)
        return raw_output(self.artifacts, value, f"{node_id}-{port}", thumbnail)

    def delete_run(self, run_id: str) -> None:
        """Forget a finished run: 404 when there is none, 409 while it is live (cancel it first)."""
        self.runs.delete(run_id)

    def cancel_run(self, run_id: str) -> tuple[dict, bool]:
        """Cancel a queued or running run; answers the stored run and whether it is still ending (its
        node stops within a second). A run already over is answered as it is; 404 for an unknown run."""
        run = self.runs.cancel(run_id)
        return run, self.runs.is_live(run_id)

    def stream(self, run_id: str, after: int = 0) -> Iterator[list[dict]]:
        """The run's events after id `after`, in batches, live until the run ends (an empty batch is a
        heartbeat). Lazy: an unknown run raises NotFound at the first batch; call `get_run` first to
        answer 404 before a response starts."""
        return self.runs.stream(run_id, after)

    def listen(self, run_id: str, notify: Callable[[], None]) -> LiveRun | None:
        """Follow a live run from an event loop, without a thread: `notify` is called from the run's
        threads after each event and must only schedule work; read events with `LiveRun.since`. None
        when the run is not live (its events are all stored: `stream` replays them)."""
        return self.runs.listen(run_id, notify)

    def unlisten(self, live: LiveRun, notify: Callable[[], None]) -> None:
        """Stop calling `notify` for `live` (what `listen` answered)."""
        self.runs.unlisten(live, notify)

    # ------------------------------------------------------------------------------- repository
    def specs(self) -> dict:
        """Every stored nodespec, parsed, by id: what flows are checked against."""
        return self.objects.specs()

    def export_bundle(self) -> dict:
        return self.objects.export_bundle()

    def import_bundle(self, bundle, mode: str = "merge") -> dict:
        """Import `bundle`; what it overwrites or deletes is first copied to a file beside the database
        (the summary's "backup"), so an import can be undone by importing that file."""
        return self.objects.import_bundle(bundle, mode, keep_replaced=keeper(self.backups_dir))

    @property
    def backups_dir(self) -> Path:
        return Path(self.config.db_path).parent / "backups"

    def preview_import(self, bundle) -> dict:
        return self.objects.preview_import(bundle)

    def confined_path(self, raw) -> Path:
        """A path under the server's repository directory; anything that leads outside is refused."""
        if not isinstance(raw, str) or not raw.strip() or "\0" in raw:
            raise InvalidInput("bad path", [detail("/path", "path must be a non-empty string")])
        root = Path(self.config.repo_dir).resolve()
        candidate = (root / raw).resolve()
        if candidate != root and root not in candidate.parents:
            raise InvalidInput("path outside the repository directory",
                               [detail("/path", f"{raw!r} leads outside the server's repository directory")])
        return candidate

    def dump_to(self, raw_path) -> Path:
        """Legacy /dumprepo: write the bundle (or, for a directory, the directory form)."""
        path = self.confined_path(raw_path)
        bundle = self.export_bundle()
        try:
            if path.is_dir() or str(raw_path).endswith("/"):
                write_directory(bundle, path)
            else:
                write_atomic(path, dumps_object(bundle))
        except OSError as exc:
            raise _bad_file("cannot write", raw_path, exc) from None
        return path

    def load_from(self, raw_path, mode: str = "merge") -> dict:
        """Legacy /loadrepo: import a bundle file or directory from under the repository directory."""
        path = self.confined_path(raw_path)
        try:
            if not path.exists():
                raise InvalidInput("no such file", [detail("/path", f"{raw_path!r} does not exist in the server's "
                                                                    f"repository directory")])
            bundle = load_bundle_file(path)
        except OSError as exc:
            raise _bad_file("cannot read", raw_path, exc) from None
        return self.import_bundle(bundle, mode)


def _bad_file(action: str, raw_path, error: OSError) -> InvalidInput:
    """A file system error on a path the caller chose (too long, below a file, ...): the caller's to fix."""
    reason = error.strerror or type(error).__name__
    return InvalidInput(f"{action} {raw_path!r}", [detail("/path", f"{raw_path!r}: {reason}")])
