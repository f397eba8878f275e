"""Checks of a database file, for `pyflow serve` before it starts and for `pyflow check`.

Both only read: the file is opened read-only, so a check never creates, upgrades or repairs anything.
A file that is not a database, cannot be read, or is damaged is described in one sentence naming the
file, instead of the SQLite error (and traceback) that the first query on it would otherwise raise.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import quote

from ..model.limits import MAX_DEPTH, MAX_STORED_DEPTH, TooDeep, check_depth

HEADER = b"SQLite format 3\x00"
MAX_LISTED = 50  # problems listed per part; the rest are counted


def open_problem(path: str | Path) -> str | None:
    """Why the file at `path` cannot be opened as a database, as one sentence; None when it can (or
    does not exist yet, and would be created)."""
    path = Path(path)
    if path.is_dir():
        return f"the database {path} is a directory, not a database file"
    try:
        with open(path, "rb") as fh:
            header = fh.read(len(HEADER))
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"the database {path} cannot be read: {exc.strerror or exc}"
    if header and header != HEADER:
        return f"the database {path} is not a SQLite database (it does not start with SQLite's header)"
    return None


def connect_readonly(path: str | Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{quote(str(Path(path).resolve()))}?mode=ro", uri=True, timeout=30)


def integrity_problems(conn: sqlite3.Connection, quick: bool) -> list[str]:
    """What SQLite's quick_check (b-tree structure, O(size)) or integrity_check (also indexes) reports;
    empty when the file is sound. A file too damaged to check raises sqlite3.DatabaseError."""
    pragma = "quick_check" if quick else "integrity_check"
    rows = [row[0] for row in conn.execute(f"PRAGMA {pragma}({MAX_LISTED})")]
    return [] if rows == ["ok"] else rows


def database_problem(path: str | Path) -> str | None:
    """One sentence saying what is wrong with the database at `path`, or None when it can be used:
    opened, read, and found sound by SQLite's quick check."""
    problem = open_problem(path)
    if problem or not Path(path).exists():
        return problem
    try:
        conn = connect_readonly(path)
        try:
            found = integrity_problems(conn, quick=True)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        found = [str(exc)]
    if found:
        return f"the database {path} is damaged ({found[0].strip()}); `pyflow check --db {path}` lists what is wrong"
    return None


@dataclass
class Part:
    """One part of a check: what was looked at, and each problem found there."""

    name: str
    looked_at: str = ""
    problems: list[str] = field(default_factory=list)
    more: int = 0  # problems found beyond those listed

    def add(self, problem: str) -> None:
        if len(self.problems) < MAX_LISTED:
            self.problems.append(problem)
        else:
            self.more += 1

    @property
    def count(self) -> int:
        return len(self.problems) + self.more


def check_database(path: str | Path) -> list[Part]:
    """SQLite's integrity check, then PyFlow's own tables: every stored document parses, and nests no
    deeper than this version accepts (objects) or reads (runs, their results and events, the cache)."""
    problem = open_problem(path)
    if problem is None and not Path(path).exists():
        problem = f"the database {path} does not exist"
    if problem:
        return [Part("file", problems=[problem])]
    try:
        conn = connect_readonly(path)
    except sqlite3.Error as exc:
        return [Part("file", problems=[f"the database {path} cannot be opened: {exc}"])]
    try:
        return [_run_part("SQLite integrity check", conn, _integrity)] + [
            _run_part(name, conn, step) for name, step in (("objects", _objects), ("runs", _runs), ("cache", _cache))]
    finally:
        conn.close()


def _run_part(name: str, conn: sqlite3.Connection, step) -> Part:
    part = Part(name)
    try:
        step(conn, part)
    except sqlite3.Error as exc:
        part.add(f"the database is damaged: {exc}")
    return part


def _integrity(conn: sqlite3.Connection, part: Part) -> None:
    for problem in integrity_problems(conn, quick=False):
        part.add(problem)


def _objects(conn: sqlite3.Connection, part: Part) -> None:
    counts = {"nodespec": 0, "flow": 0}
    for kind, object_id, doc in conn.execute("SELECT kind, id, doc FROM objects ORDER BY kind, id"):
        counts[kind] = counts.get(kind, 0) + 1
        parsed, found = _read_document(doc, MAX_DEPTH)
        if found is None and kind not in ("nodespec", "flow"):
            found = "an unknown kind of object"
        if found is None and parsed.get("id") != object_id:
            found = "its document's id differs from the id it is stored under"
        if found:
            part.add(f"{kind}/{object_id}: {found}")
    part.looked_at = f"{counts['nodespec']} nodespecs, {counts['flow']} flows"


def _runs(conn: sqlite3.Connection, part: Part) -> None:
    runs = _check_rows(conn, part, "SELECT id, request, snapshot FROM runs ORDER BY seq", 1,
                       lambda key, column, problem: f"run {key[0]}: its {('request', 'snapshot')[column]} is {problem}")
    results = _check_rows(conn, part, "SELECT run_id, node_id, result FROM run_nodes", 2,
                          lambda key, _, problem: f"run {key[0]}: the result of node {key[1]} is {problem}")
    events = _check_rows(conn, part, "SELECT run_id, seq, data FROM run_events", 2,
                         lambda key, _, problem: f"run {key[0]}: event {key[1]} is {problem}")
    part.looked_at = f"{runs} runs, {results} node results, {events} events"


def _cache(conn: sqlite3.Connection, part: Part) -> None:
    entries = _check_rows(conn, part, "SELECT key, record FROM cache", 1,
                          lambda key, _, problem: f"cached result {key[0]}: {problem} (it counts as a miss)")
    part.looked_at = f"{entries} cached results"


def _check_rows(conn: sqlite3.Connection, part: Part, query: str, keys: int,
                say: Callable[[tuple, int, str], str]) -> int:
    """Check every stored document in the rows `query` selects: each row is `keys` key columns, then
    documents. A problem is reported as `say(key columns, which document, what is wrong)`. Answers how
    many rows were read."""
    rows = 0
    for row in conn.execute(query):
        rows += 1
        for column, text in enumerate(row[keys:]):
            found = _document_problem(text, MAX_STORED_DEPTH)
            if found:
                part.add(say(row[:keys], column, found))
    return rows


def _document_problem(text, limit: int) -> str | None:
    return _read_document(text, limit)[1]


def _read_document(text, limit: int) -> tuple[dict | None, str | None]:
    """One stored JSON text: (the object, None), or (None, what is wrong with it)."""
    try:
        check_depth(text, limit)
        doc = json.loads(text)
    except TooDeep as exc:
        return None, f"nested deeper than {limit} levels (at {exc.pointer})"
    except (TypeError, ValueError) as exc:
        return None, f"not readable JSON ({exc})"
    return (doc, None) if isinstance(doc, dict) else (None, "not a JSON object")
