"""The SQLite repository: one database file in WAL mode, standard library sqlite3 only. One class
implements the object store, the run store and the result cache over one set of connections.

Each thread has its own connection; writes take the database lock up front (BEGIN IMMEDIATE) so that a
check and the write it guards see the same state. Revisions come from one counter, so a revision number
is never reused, even by an object deleted and created again.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import sqlite3
import threading
import time
from pathlib import Path

from ..jsontext import compact_json
from ..model.errors import Conflict, NotFound, StorageUnavailable, detail
from ..model.limits import MAX_STORED_DEPTH, TooDeep, parse_stored, parse_stored_list
from ..timestamps import now_iso
from .base import Record, Repository, UnreadableDocument

SCHEMA_VERSION = 1
SETTING_PREFIX = "setting:"  # meta rows the object store keeps as settings (ObjectStore.setting)
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL, id TEXT NOT NULL, doc TEXT NOT NULL, revision INTEGER NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (kind, id));
CREATE TABLE IF NOT EXISTS flow_refs (
    flow_id TEXT NOT NULL, spec_id TEXT NOT NULL, PRIMARY KEY (flow_id, spec_id));
CREATE INDEX IF NOT EXISTS flow_refs_spec ON flow_refs (spec_id);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, flow_id TEXT, status TEXT NOT NULL, snapshot TEXT NOT NULL,
    request TEXT NOT NULL, reason TEXT, created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT,
    seq INTEGER NOT NULL, owner TEXT);
CREATE INDEX IF NOT EXISTS runs_flow ON runs (flow_id, seq);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status, seq);
CREATE TABLE IF NOT EXISTS run_nodes (
    run_id TEXT NOT NULL, node_id TEXT NOT NULL, position INTEGER NOT NULL, result TEXT NOT NULL,
    PRIMARY KEY (run_id, node_id));
CREATE TABLE IF NOT EXISTS run_events (
    run_id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, data TEXT NOT NULL, at TEXT NOT NULL,
    PRIMARY KEY (run_id, seq));
CREATE TABLE IF NOT EXISTS health (id INTEGER PRIMARY KEY, at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cache (
    key TEXT PRIMARY KEY, record TEXT NOT NULL, created_at TEXT NOT NULL, used_at TEXT NOT NULL,
    size INTEGER NOT NULL DEFAULT 0);
"""
log = logging.getLogger(__name__)
ARTIFACT_DIGEST = re.compile(r'"\$artifact": ?\{"digest": ?"([0-9a-f]{64})"')
RUN_FIELDS = ("flow_id", "status", "reason", "started_at", "finished_at", "snapshot")


BUSY_TIMEOUT_S = 30.0
PROBE_TIMEOUT_S = 0.25  # how long a health check's write waits for the write lock
# SQLite's primary result codes that mean "the database cannot be written now", not "this is a bug".
STORAGE_FAILURES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_NOMEM,
                              sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CORRUPT,
                              sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PROTOCOL,
                              sqlite3.SQLITE_NOTADB})
BUSY = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


def _primary_code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def storage_error(exc: sqlite3.Error) -> Exception:
    """The domain error for a failed write (503, with the database's own message), or `exc` itself
    when it is not a storage failure (a mistake in a statement, say)."""
    code = _primary_code(exc)
    if code == sqlite3.SQLITE_FULL or "disk is full" in str(exc):
        return StorageUnavailable(f"disk full: the database could not be written ({exc})", retry_after=10)
    if code in STORAGE_FAILURES:
        return StorageUnavailable(f"the database could not be written: {exc}", retry_after=5)
    return exc


def _abandon(conn: sqlite3.Connection) -> None:
    """Roll back what is left of a failed transaction. SQLite has already rolled it back itself after
    some failures (a COMMIT that found the disk full), and a second ROLLBACK would only raise "no
    transaction is active" over the error that matters."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            log.debug("rolling back a failed transaction: %s", exc)


def _delete_run_rows(conn: sqlite3.Connection, run_id: str) -> bool:
    """Remove a run with its node results and events, inside the caller's transaction; answers whether
    there was such a run."""
    found = conn.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount > 0
    conn.execute("DELETE FROM run_nodes WHERE run_id = ?", (run_id,))
    conn.execute("DELETE FROM run_events WHERE run_id = ?", (run_id,))
    return found


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch to write-ahead logging. Switching a database that is not in WAL mode yet needs it to
    itself, and SQLite answers "locked" at once rather than waiting when another process is busy with
    it (several starting on a new file together): so wait here, as for any other lock."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class SQLiteRepository(Repository):
    def __init__(self, path: str | Path):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._directory = Path(self.path).resolve().parent  # whose free space health checks
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._warned: set[tuple] = set()
        self._probe: sqlite3.Connection | None = None
        self._probe_lock = threading.Lock()
        self._create_or_upgrade(self._conn())

    def _create_or_upgrade(self, conn: sqlite3.Connection) -> None:
        """Create the schema, or bring an older one up to date, in one write transaction: when several
        processes open a database at once, one does the work and the others then find it done."""
        conn.executescript("BEGIN IMMEDIATE;\n" + SCHEMA)
        try:
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('revision', '0')")
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('run_seq', '0')")
            self._migrate(conn)
        except BaseException:
            _abandon(conn)
            raise
        conn.execute("COMMIT")

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        """Bring a database written by an earlier version up to this schema."""
        columns = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
        if "owner" not in columns:
            conn.execute("ALTER TABLE runs ADD COLUMN owner TEXT")
        if "size" not in {row[1] for row in conn.execute("PRAGMA table_info(cache)")}:
            conn.execute("ALTER TABLE cache ADD COLUMN size INTEGER NOT NULL DEFAULT 0")
            conn.execute("UPDATE cache SET size = length(CAST(record AS BLOB))")
        conn.execute("CREATE INDEX IF NOT EXISTS cache_used ON cache (used_at, key, size)")  # pruning's order

    # ---------------------------------------------------------------------------------- connections
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
            _use_wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
            self._local.depth = 0
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextlib.contextmanager
    def transaction(self):
        conn = self._conn()
        if self._local.depth:
            self._local.depth += 1
            try:
                yield conn
            finally:
                self._local.depth -= 1
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise storage_error(exc) from exc
        self._local.depth = 1
        try:
            yield conn
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            _abandon(conn)
            error = storage_error(exc)
            if error is exc:
                raise
            raise error from exc
        except BaseException:
            _abandon(conn)
            raise
        finally:
            self._local.depth = 0

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                try:
                    conn.close()
                except sqlite3.Error as exc:  # closing: nothing left to do with it
                    log.warning("closing a connection to %s: %s", self.path, exc)
            self._connections.clear()
            self._probe = None
        self._local = threading.local()

    # --------------------------------------------------------------------------------------- health
    def _probe_connection(self) -> sqlite3.Connection:
        """A connection of the health check's own: it waits briefly for the write lock, and never runs
        a checkpoint (which copies the whole log and may take seconds) when it commits."""
        with self._lock:
            if self._probe is None:
                conn = sqlite3.connect(self.path, timeout=PROBE_TIMEOUT_S, isolation_level=None,
                                       check_same_thread=False)
                conn.execute("PRAGMA wal_autocheckpoint=0")
                self._connections.append(conn)
                self._probe = conn
            return self._probe

    def probe_write(self) -> str | None:
        """Write one tiny row to prove the database accepts writes. None when it did; a note when
        another writer held the lock all along (busy, not broken); StorageUnavailable when the write
        failed. Waits at most PROBE_TIMEOUT_S for each lock."""
        if self.path == ":memory:":
            return None  # another connection would open another database
        if not self._probe_lock.acquire(timeout=PROBE_TIMEOUT_S):
            return "busy: another health check is writing"
        try:
            conn = self._probe_connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if _primary_code(exc) in BUSY:
                    return f"busy: another writer holds the database ({exc}); not written"
                raise storage_error(exc) from exc
            try:
                conn.execute("INSERT OR REPLACE INTO health (id, at) VALUES (1, ?)", (now_iso(),))
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                _abandon(conn)
                raise storage_error(exc) from exc
            return None
        finally:
            self._probe_lock.release()

    def free_bytes(self) -> int | None:
        if self.path == ":memory:":
            return None
        return shutil.disk_usage(self._directory).free

    def _next(self, counter: str) -> int:
        conn = self._conn()
        conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = ?", (counter,))
        return int(conn.execute("SELECT value FROM meta WHERE key = ?", (counter,)).fetchone()[0])

    # -------------------------------------------------------------------------------------- objects
    @staticmethod
    def _record(kind: str, row) -> Record:
        try:
            return Record(kind, row[0], parse_stored(row[1]), row[2], row[3])
        except TooDeep as exc:
            raise UnreadableDocument(kind, row[0], row[2], row[3], exc) from None

    def _list(self, kind: str, skipped: list | None = None) -> list[Record]:
        rows = self._conn().execute(
            "SELECT id, doc, revision, updated_at FROM objects WHERE kind = ? ORDER BY id", (kind,))
        records = []
        for row in rows:
            try:
                records.append(self._record(kind, row))
            except UnreadableDocument as exc:
                self._warn_once((kind, row[0], row[2]), "%s: left out of listings", exc.message)
                if skipped is not None:
                    skipped.append(exc)
        return records

    def _read(self, kind: str, object_id: str) -> Record | None:
        row = self._conn().execute("SELECT id, doc, revision, updated_at FROM objects WHERE kind = ? AND id = ?",
                                   (kind, object_id)).fetchone()
        return self._record(kind, row) if row else None

    def _read_revision(self, kind: str, object_id: str) -> int | None:
        row = self._conn().execute("SELECT revision FROM objects WHERE kind = ? AND id = ?",
                                   (kind, object_id)).fetchone()
        return row[0] if row else None

    def _revisions(self, kind: str) -> dict[str, int]:
        rows = self._conn().execute("SELECT id, revision FROM objects WHERE kind = ?", (kind,))
        return {row[0]: row[1] for row in rows}

    def _write(self, kind: str, doc: dict) -> Record:
        with self.transaction() as conn:
            revision = self._next("revision")
            now = now_iso()
            conn.execute(
                "INSERT INTO objects (kind, id, doc, revision, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (kind, id) DO UPDATE SET doc = excluded.doc, revision = excluded.revision, "
                "updated_at = excluded.updated_at", (kind, doc["id"], compact_json(doc), revision, now, now))
        return Record(kind, doc["id"], doc, revision, now)

    def _remove(self, kind: str, object_id: str) -> None:
        self._next("revision")  # a removal changes what lists and caches must show
        self._conn().execute("DELETE FROM objects WHERE kind = ? AND id = ?", (kind, object_id))

    def _setting(self, key: str) -> str | None:
        row = self._conn().execute("SELECT value FROM meta WHERE key = ?", (SETTING_PREFIX + key,)).fetchone()
        return None if row is None else row[0]

    def _put_setting(self, key: str, value: str) -> None:
        self._conn().execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                             (SETTING_PREFIX + key, value))

    def _revision(self) -> int:
        return int(self._conn().execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()[0])

    def _set_refs(self, flow_id: str, spec_ids: set[str]) -> None:
        conn = self._conn()
        conn.execute("DELETE FROM flow_refs WHERE flow_id = ?", (flow_id,))
        conn.executemany("INSERT INTO flow_refs VALUES (?, ?)", [(flow_id, s) for s in sorted(spec_ids)])

    def _users_of(self, spec_id: str) -> list[str]:
        rows = self._conn().execute("SELECT flow_id FROM flow_refs WHERE spec_id = ? ORDER BY flow_id", (spec_id,))
        return [row[0] for row in rows]

    # ----------------------------------------------------------------------------------------- runs
    def create_run(self, run: dict) -> None:
        with self.transaction() as conn:
            seq = self._next("run_seq")
            conn.execute("INSERT INTO runs (id, flow_id, status, snapshot, request, reason, created_at, seq, owner) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (run["id"], run.get("flow_id"), run["status"],
                          run.get("snapshot_json") or compact_json(run["snapshot"]),
                          compact_json(run.get("request") or {}), run.get("reason"), run["created_at"], seq,
                          run.get("owner")))

    def update_run(self, run_id: str, **fields) -> None:
        unknown = set(fields) - set(RUN_FIELDS)
        if unknown:
            raise ValueError(f"unknown run fields {sorted(unknown)}")
        if not fields:
            return
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self.transaction() as conn:
            conn.execute(f"UPDATE runs SET {assignments} WHERE id = ?", (*fields.values(), run_id))

    def _run_row(self, row, with_nodes: bool) -> dict:
        """A run; with its snapshot and node results when `with_nodes`. A run an older version stored
        nested too deep lists with its request left out (None) and reads as a clear 409."""
        run = {"id": row[0], "flow_id": row[1], "status": row[2], "reason": row[3], "created_at": row[4],
               "started_at": row[5], "finished_at": row[6], "request": None, "owner": row[8]}
        try:
            run["request"] = parse_stored(row[7])
            if with_nodes:
                run["snapshot"] = parse_stored(row[9])
                nodes = self._conn().execute("SELECT result FROM run_nodes WHERE run_id = ? ORDER BY position",
                                             (row[0],))
                run["nodes"] = parse_stored_list([r[0] for r in nodes])
        except TooDeep as exc:
            if with_nodes:
                raise Conflict(f"the stored run {row[0]!r} is nested deeper than {MAX_STORED_DEPTH} levels, which "
                               f"only an older version of PyFlow stored; it can only be deleted",
                               [detail(exc.pointer, f"nested deeper than {MAX_STORED_DEPTH} levels here")]) from None
            self._warn_once(("run", row[0]), "run %s: its stored request is nested too deep to read (%s)", row[0], exc)
        return run

    def _warn_once(self, key: tuple, message: str, *args) -> None:
        """Log a row that cannot be read once, not on every listing that passes over it."""
        with self._lock:
            if key in self._warned:
                return
            self._warned.add(key)
        log.warning(message, *args)

    _RUN_COLUMNS = "id, flow_id, status, reason, created_at, started_at, finished_at, request, owner, snapshot"

    def get_run(self, run_id: str, with_nodes: bool = True) -> dict:
        row = self._conn().execute(f"SELECT {self._RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise NotFound(f"no run {run_id!r}")
        return self._run_row(row, with_nodes=with_nodes)

    def list_runs(self, flow_id=None, status=None, limit=50, offset=0):
        where, params = [], []
        if flow_id is not None:
            where.append("flow_id = ?")
            params.append(flow_id)
        if status is not None:
            where.append("status = ?")
            params.append(status)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        conn = self._conn()
        total = conn.execute(f"SELECT COUNT(*) FROM runs {clause}", params).fetchone()[0]
        rows = conn.execute(f"SELECT {self._RUN_COLUMNS} FROM runs {clause} ORDER BY seq DESC LIMIT ? OFFSET ?",
                            (*params, limit, offset)).fetchall()
        return [self._run_row(row, with_nodes=False) for row in rows], total

    def delete_run(self, run_id: str) -> None:
        with self.transaction() as conn:
            if not _delete_run_rows(conn, run_id):
                raise NotFound(f"no run {run_id!r}")

    def save_progress(self, run_id: str, events: list[dict], results: list[dict]) -> None:
        with self.transaction() as conn:
            conn.executemany("INSERT OR REPLACE INTO run_events VALUES (?, ?, ?, ?, ?)",
                             [(run_id, e["id"], e["event"],
                               e.get("text") or compact_json({**e["data"], "at": e["at"]}), e["at"]) for e in events])
            conn.executemany("INSERT INTO run_nodes VALUES (?, ?, ?, ?) ON CONFLICT (run_id, node_id) DO UPDATE "
                             "SET result = excluded.result, position = excluded.position",
                             [(run_id, r["id"], position, compact_json(r)) for position, r in results])

    def events(self, run_id: str, after: int = 0, limit: int = 1000, parse: bool = True) -> list[dict]:
        rows = self._conn().execute(
            "SELECT seq, kind, data, at FROM run_events WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (run_id, after, limit))
        if not parse:  # the stored JSON text as it goes out on an event stream
            return [{"id": r[0], "event": r[1], "text": r[2], "at": r[3]} for r in rows]
        events = []
        for seq, kind, text, at in rows:
            data = parse_stored(text)  # TooDeep (a ValueError) for an older version's event nested too deep
            data.pop("at", None)  # stored with the event's time for streams; the event carries it apart
            events.append({"id": seq, "event": kind, "data": data, "at": at})
        return events

    def unfinished_runs(self) -> list[dict]:
        rows = self._conn().execute(f"SELECT {self._RUN_COLUMNS} FROM runs WHERE status IN ('queued', 'running') "
                                    "ORDER BY seq").fetchall()
        return [self._run_row(row, with_nodes=False) for row in rows]

    def prune_runs(self, flow_id: str | None, keep: int) -> int:
        """Delete all but the newest `keep` finished runs of a flow; returns how many went."""
        with self.transaction() as conn:
            rows = conn.execute(
                "SELECT id FROM runs WHERE flow_id IS ? AND status NOT IN ('queued', 'running') "
                "ORDER BY seq DESC LIMIT -1 OFFSET ?", (flow_id, keep)).fetchall()
            for (run_id,) in rows:
                _delete_run_rows(conn, run_id)
        return len(rows)

    def artifact_digests(self) -> set[str]:
        """The digests of every artifact a kept run's node results or a cached result names (the
        collector keeps these). Only texts holding a reference are read, and only their digests."""
        conn = self._conn()
        found = set()
        for query in ("SELECT result FROM run_nodes WHERE instr(result, '\"$artifact\"') > 0",
                      "SELECT record FROM cache WHERE instr(record, '\"$artifact\"') > 0"):
            for (text,) in conn.execute(query):
                found.update(ARTIFACT_DIGEST.findall(text))
        return found

    # ---------------------------------------------------------------------------------------- cache
    def cache_get_many(self, keys: list[str]) -> dict[str, dict]:
        """Records for `keys`; entries last marked used over a minute ago are marked used now (pruning
        keeps the most recently used, and a minute is fine-grained enough for that)."""
        found, stale = {}, []
        stale_before = now_iso(ago_s=60)
        conn = self._conn()
        for start in range(0, len(keys), 500):  # below SQLite's limit on bound parameters
            chunk = keys[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for key, record, used_at in conn.execute(
                    f"SELECT key, record, used_at FROM cache WHERE key IN ({marks})", chunk):
                try:
                    found[key] = parse_stored(record)
                except TooDeep:  # an older version's result, nested too deep to read: a miss
                    self._warn_once(("cache", key), "cached result %s is nested too deep to read; a miss", key)
                    continue
                if used_at < stale_before:
                    stale.append(key)
        if stale:
            self._touch_cache(stale)
        return found

    def _touch_cache(self, keys: list[str]) -> None:
        """Mark entries as used now, so pruning drops the least recently used ones."""
        now = now_iso()
        with self.transaction() as conn:
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                conn.execute(f"UPDATE cache SET used_at = ? WHERE key IN ({','.join('?' * len(chunk))})",
                             (now, *chunk))

    def cache_prune(self, keep: int, max_bytes: int | None = None) -> int:
        """Drop all but the `keep` most recently used entries, then the least recently used beyond
        `max_bytes` in all; returns how many went. Within both limits (the usual case) it only reads,
        so it never holds up other writers."""
        count, total = self._cache_totals(self._conn())
        if count <= keep and (max_bytes is None or total <= max_bytes):
            return 0
        with self.transaction() as conn:
            count, total = self._cache_totals(conn)
            cuts = []
            if count > keep:  # the newest of the entries beyond `keep`, counting from the oldest
                cuts.append(conn.execute("SELECT used_at, key FROM cache ORDER BY used_at, key LIMIT 1 OFFSET ?",
                                         (count - keep - 1,)).fetchone())
            if max_bytes is not None and total > max_bytes:
                cuts.append(self._oldest_covering(conn, total - max_bytes))
            cuts = [tuple(cut) for cut in cuts if cut]
            if not cuts:
                return 0
            # Entries go in the order of the index: the cut and everything used no later.
            return conn.execute("DELETE FROM cache WHERE (used_at, key) <= (?, ?)", max(cuts)).rowcount

    @staticmethod
    def _cache_totals(conn: sqlite3.Connection) -> tuple[int, int]:
        return conn.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM cache").fetchone()

    @staticmethod
    def _oldest_covering(conn: sqlite3.Connection, excess: int) -> tuple[str, str] | None:
        """(used_at, key) of the newest entry among the least recently used ones whose sizes add up to
        `excess`: read from the oldest end, so only what is dropped is read."""
        freed = 0
        for used_at, key, size in conn.execute("SELECT used_at, key, size FROM cache ORDER BY used_at, key"):
            freed += size
            if freed >= excess:
                return used_at, key
        return None

    def cache_put(self, key: str, record: dict, max_bytes: int | None = None) -> int:
        text = compact_json(record)
        size = len(text.encode("utf-8"))
        if max_bytes is not None and size > max_bytes:
            return 0
        now = now_iso()
        with self.transaction() as conn:
            conn.execute("INSERT INTO cache (key, record, created_at, used_at, size) VALUES (?, ?, ?, ?, ?) "
                         "ON CONFLICT (key) DO UPDATE SET record = excluded.record, used_at = excluded.used_at, "
                         "size = excluded.size", (key, text, now, now, size))
        return size

    def cache_clear(self) -> int:
        with self.transaction() as conn:
            return conn.execute("DELETE FROM cache").rowcount

