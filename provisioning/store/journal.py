"""The run's durable state: ``journal.sqlite`` in the run folder (SQLite, WAL).

One record per roster row, keyed by the row number the user sees. Every state change is its own short
transaction, so a process killed at any instant (SIGKILL included) leaves a consistent journal that ``resume``
can continue from. A row is marked ``sending`` before its request leaves and receives its final state as soon as
its answer arrives; a ``sending`` row found later is an *ambiguous* outcome to reconcile by looking the user up.

Nothing secret is ever stored here: no passwords (the request body is stored with ``passwordProfile.password``
removed; ``password_source`` says whether ``resume`` must re-read it from the roster or generate a new one; a password
column of the roster is stored blank), no client secret (settings are stored through their redacted dictionary).

The roster's headers (meta ``roster_headers``) and each row's original cells (table ``cells``) are recorded when the
run starts, so that the reports are built from the journal alone (:meth:`Journal.snapshot`), whatever becomes of the
roster file. A journal written before they were recorded has no ``roster_headers``.

Schema version 2 adds the ``followups`` table (one record per group membership, licence and manager of a row:
kind, target, resolved id, state pending/done/failed, attempts, Graph's status/code/message/request-id) and the
``updates`` table (property, old, new per row of ``--existing update``); their record types are in
:mod:`provisioning.store.records`. A version-1 journal is upgraded in place when opened (the new tables are
added; nothing else changes).

:class:`Journal` owns every table and every transaction (:meth:`Journal.transaction`). The graph client calls
``on_send``/``on_result`` on the thread that called ``run_batches`` (see :mod:`graph.batch`), so a run uses its
journal from one thread; the one lock (and ``check_same_thread=False``) keep it consistent should a caller share it
between threads anyway.
"""
from __future__ import annotations

import contextlib
import functools
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import orjson

from provisioning.errors import RunFolderError
from provisioning.fields import is_password_header
from provisioning.models import Issue, Roster, Severity
from provisioning.store.durable import file_identity, gone, lost_from
from provisioning.store.folder import RunFolder
from provisioning.store.records import (
    Change,
    FollowUpOutcome,
    FollowUpRecord,
    FollowUpSeed,
    FollowUpState,
    by_row,
    row_states,
    summary_text,
)

SCHEMA_VERSION = 2
#: Journals written by earlier versions that :meth:`Journal.open` upgrades in place (additive: new tables/columns).
READABLE_VERSIONS = (1, 2)
JOURNAL_NAME = RunFolder.JOURNAL  # (the name commands and the watcher import from here)


class RowState(str, Enum):
    """Where a roster row is in the run."""

    PENDING = "pending"  # planned for creation, not sent yet
    SENDING = "sending"  # its request may have left; the outcome is not recorded yet
    CREATED = "created"
    SKIPPED = "skipped"  # the user already existed (or the row was left alone)
    FAILED = "failed"  # Graph refused it: see error_code / message / request_id
    INVALID = "invalid"  # validation excluded it; never sent
    UNKNOWN = "unknown"  # sent, outcome unknown and not yet reconciled (resume looks it up)
    PLANNED = "planned"  # dry run: what would happen is in ``action``
    UPDATED = "updated"  # ``--existing update``: the differing properties were PATCHed
    RESTORED = "restored"  # ``--restore-deleted``: brought back from Deleted users, then PATCHed to the roster


FINAL_STATES = frozenset({RowState.CREATED, RowState.SKIPPED, RowState.FAILED, RowState.INVALID,
                          RowState.UPDATED, RowState.RESTORED})
#: States that ``resume`` still has work for.
OPEN_STATES = frozenset({RowState.PENDING, RowState.SENDING, RowState.UNKNOWN})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rows (
    row             INTEGER PRIMARY KEY,
    upn             TEXT NOT NULL DEFAULT '',
    action          TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    object_id       TEXT NOT NULL DEFAULT '',
    http_status     INTEGER,
    error_code      TEXT NOT NULL DEFAULT '',
    message         TEXT NOT NULL DEFAULT '',
    request_id      TEXT NOT NULL DEFAULT '',
    password_source TEXT NOT NULL DEFAULT '',
    body            TEXT NOT NULL DEFAULT '',
    display_name    TEXT NOT NULL DEFAULT '',
    first_at        TEXT NOT NULL DEFAULT '',
    last_at         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS rows_state ON rows(state);
CREATE TABLE IF NOT EXISTS issues (
    row      INTEGER NOT NULL,
    col      TEXT NOT NULL,
    code     TEXT NOT NULL,
    severity TEXT NOT NULL,
    message  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS issues_row ON issues(row);
CREATE TABLE IF NOT EXISTS cells (
    row   INTEGER PRIMARY KEY,
    cells TEXT NOT NULL
);
"""

#: Schema version 2 (follow-ups and update mode); applied to new journals and, additively, to version-1 ones.
_SCHEMA_V2 = """
CREATE TABLE IF NOT EXISTS followups (
    row         INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    target      TEXT NOT NULL,
    target_id   TEXT NOT NULL DEFAULT '',
    target_row  INTEGER,
    state       TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    http_status INTEGER,
    error_code  TEXT NOT NULL DEFAULT '',
    message     TEXT NOT NULL DEFAULT '',
    request_id  TEXT NOT NULL DEFAULT '',
    last_at     TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (row, kind, target)
);
CREATE TABLE IF NOT EXISTS bindings (
    row           INTEGER PRIMARY KEY,
    object_id     TEXT NOT NULL,
    upn           TEXT NOT NULL DEFAULT '',
    mail_nickname TEXT NOT NULL DEFAULT '',
    employee_id   TEXT NOT NULL DEFAULT '',
    run           TEXT NOT NULL DEFAULT '',
    body          TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS updates (
    row      INTEGER NOT NULL,
    property TEXT NOT NULL,
    old      TEXT NOT NULL DEFAULT '',
    new      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (row, property)
);
"""

_SECRET_KEYS = ("password", "secret", "client_secret", "certificate_password", "token")


def utcnow() -> str:
    """An ISO-8601 UTC timestamp with milliseconds, as stored in the journal and the reports."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json_text(value: Any) -> str:
    """The JSON text of a body or of a row's cells, as stored: orjson's (UTF-8, a tenth of json's time over a
    roster's thousands of rows, all written before the first create may leave), json's escaped text for what
    orjson refuses (a lone surrogate)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(value)


@functools.lru_cache(maxsize=1024)
def _secret_key(key: str) -> bool:
    """Whether a body property is a secret (cached: thousands of bodies share a few dozen property names)."""
    return any(s in key.lower() for s in _SECRET_KEYS)


@functools.lru_cache(maxsize=256)
def _kept_keys(keys: tuple[str, ...]) -> tuple[str, ...]:
    """The properties of a body with these keys that are stored (cached: a roster's bodies share a few key sets)."""
    return tuple(k for k in keys if k == "passwordProfile" or not _secret_key(k))


def strip_secrets(body: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a user body without its password (``passwordProfile`` keeps only its flags)."""
    clean = {key: body[key] for key in _kept_keys(tuple(body))}
    profile = clean.get("passwordProfile")
    if isinstance(profile, Mapping):
        clean["passwordProfile"] = {k: v for k, v in profile.items() if k != "password"}
    elif "passwordProfile" in clean and _secret_key("passwordProfile"):
        del clean["passwordProfile"]  # not a mapping: nothing of it to keep
    return clean


@dataclass(frozen=True, slots=True)
class RowSeed:
    """What the journal records about a row when the run starts (its plan)."""

    row: int
    upn: str
    action: str
    state: RowState
    password_source: str = ""  # "roster", "generated", "unkept" (--credential tap: not kept) or "" (not a create)
    body: Mapping[str, Any] | None = None  # the create body; the password is stripped before storing
    display_name: str = ""
    object_id: str = ""
    message: str = ""
    issues: Sequence[Issue] = ()


@dataclass(frozen=True, slots=True)
class RowRecord:
    """One row of the journal as read back."""

    row: int
    upn: str
    action: str
    state: RowState
    attempts: int
    object_id: str
    http_status: int | None
    error_code: str
    message: str
    request_id: str
    password_source: str
    body: Mapping[str, Any]
    display_name: str
    first_at: str
    last_at: str


@dataclass(frozen=True, slots=True)
class Binding:
    """A roster row whose user an earlier run of this chain of retries created: the row is that account for ever.

    ``run`` is the folder of the run that created it; ``body`` its create body (no password), to tell which of the
    row's cells were edited since."""

    row: int
    object_id: str
    upn: str
    mail_nickname: str = ""
    employee_id: str = ""
    run: str = ""
    body: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The final (or interim) answer for one row, as ``record`` stores it."""

    state: RowState
    object_id: str = ""
    http_status: int | None = None
    error_code: str = ""
    message: str = ""
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the reports need, read from the journal at once (:meth:`Journal.snapshot`).

    ``headers`` are the roster's headers and ``cells`` each row's original cells (a password column blank); both
    empty, and ``headers`` None, for a journal written before they were recorded."""

    meta: Mapping[str, Any]
    rows: Sequence[RowRecord]
    issues: Mapping[int, Sequence[Issue]]
    followups: Sequence[FollowUpRecord]
    changes: Mapping[int, Sequence[Change]]
    headers: tuple[str, ...] | None
    cells: Mapping[int, tuple[str, ...]]


class Journal:
    """A run's journal. Open with :meth:`create` (new run) or :meth:`open` (resume, report)."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn
        self._lock = threading.Lock()
        self._identity = file_identity(path)

    # -- lifecycle -------------------------------------------------------------------------------------------
    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process kills
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    @classmethod
    def create(cls, run_dir: Path, meta: Mapping[str, Any]) -> Journal:
        """Create the journal of a new run in ``run_dir``; refuses to overwrite an existing one."""
        path = RunFolder(Path(run_dir)).journal
        if path.exists():
            raise RunFolderError(f"{path} already exists: use `resume {run_dir}` or choose another --out")
        try:
            conn = cls._connect(path)
            journal = cls(path, conn)
            conn.executescript(_SCHEMA + _SCHEMA_V2)  # executescript manages its own transaction
        except sqlite3.Error as exc:
            raise lost_from(exc, path) from exc
        journal.set_meta({"schema_version": SCHEMA_VERSION, "started": utcnow(), **meta})
        return journal

    @classmethod
    def open(cls, run_dir: Path) -> Journal:
        """Open the journal of an existing run folder (``RunFolderError`` when there is none)."""
        path = RunFolder(Path(run_dir)).journal
        if not path.is_file():
            raise RunFolderError(f"{run_dir}: no {JOURNAL_NAME} here; is this a run folder?")
        conn = None
        try:
            conn = cls._connect(path)
            journal = cls(path, conn)
            # a truncated file, or one whose -wal was lost after a crash: found here, not halfway through resume
            check = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(check)
            version = journal.meta().get("schema_version")
            conn.execute("SELECT COUNT(*) FROM rows").fetchone()
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            raise RunFolderError(damaged_message(path, exc)) from None
        if version not in READABLE_VERSIONS:
            conn.close()
            raise RunFolderError(f"{path}: journal schema version {version!r}, this tool reads {SCHEMA_VERSION}")
        if version != SCHEMA_VERSION:
            conn.executescript(_SCHEMA_V2)  # additive upgrade: the old rows stay as they are
            journal.set_meta({"schema_version": SCHEMA_VERSION, "upgraded_from": version})
        return journal

    def check_intact(self) -> None:
        """Raise :class:`RunFolderLost` unless ``journal.sqlite`` is still the file this journal writes to (SQLite
        goes on writing to a file that was removed, with its folder, or replaced)."""
        lost = gone(self.path, self._identity)
        if lost is not None:
            raise lost

    def rescue(self, dest: Path) -> None:
        """Copy the journal as this connection sees it (even when its file was removed) to a new file ``dest``."""
        target = sqlite3.connect(str(dest))
        try:
            with self._lock:
                self._conn.backup(target)
        finally:
            target.close()

    def close(self) -> None:
        """Checkpoint the WAL and close."""
        with self._lock:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        """One write transaction (``BEGIN IMMEDIATE``), under the journal's lock; commits when the block ends.

        A write the disk refused (full, read-only, I/O error) rolls back whole: the journal stays consistent and
        says :class:`~provisioning.errors.RunFolderLost`, so the run stops sending instead of failing with a raw
        sqlite3 error."""
        with self._lock:
            try:
                cur = self._conn.cursor()
                cur.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise lost_from(exc, self.path) from exc
            try:
                yield cur
            except BaseException as exc:
                try:
                    cur.execute("ROLLBACK")
                except sqlite3.Error as failed:
                    raise lost_from(exc if isinstance(exc, sqlite3.Error) else failed, self.path) from failed
                if isinstance(exc, sqlite3.Error):
                    raise lost_from(exc, self.path) from exc
                raise
            try:
                cur.execute("COMMIT")
            except sqlite3.Error as failed:
                with contextlib.suppress(sqlite3.Error):
                    cur.execute("ROLLBACK")
                raise lost_from(failed, self.path) from failed

    # -- metadata --------------------------------------------------------------------------------------------
    def set_meta(self, values: Mapping[str, Any]) -> None:
        """Store run metadata (JSON-encoded values); never pass secrets."""
        with self.transaction() as cur:
            cur.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                            [(k, json.dumps(v, default=str)) for k, v in values.items()])

    def meta(self) -> dict[str, Any]:
        """All run metadata, decoded."""
        with self._lock:
            rows = self._conn.execute("SELECT key, value FROM meta").fetchall()
        return {r["key"]: json.loads(r["value"]) for r in rows}

    # -- rows ------------------------------------------------------------------------------------------------
    def add_rows(self, seeds: Iterable[RowSeed], roster: Roster | None = None) -> None:
        """Record the plan: one record per roster row (and its validation issues), in one transaction; with
        ``roster``, its headers and cells too (:meth:`add_roster`)."""
        now = utcnow()
        with self.transaction() as cur:
            if roster is not None:
                self._add_roster(cur, roster)
            seeds = list(seeds)
            cur.executemany(
                "INSERT INTO rows(row, upn, action, state, object_id, message, password_source, body,"
                " display_name, first_at, last_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [(s.row, s.upn, s.action, RowState(s.state).value, s.object_id, s.message, s.password_source,
                  _json_text(strip_secrets(s.body)) if s.body is not None else "", s.display_name, now, now)
                 for s in seeds])
            cur.executemany(
                "INSERT INTO issues(row, col, code, severity, message) VALUES (?,?,?,?,?)",
                [(i.row, i.column, i.code, getattr(i.severity, "value", str(i.severity)), i.message)
                 for s in seeds for i in s.issues])

    def add_issues(self, issues: Iterable[Issue]) -> None:
        """Record issues not tied to a seeded row (the roster as a whole: row 0)."""
        with self.transaction() as cur:
            cur.executemany("INSERT INTO issues(row, col, code, severity, message) VALUES (?,?,?,?,?)",
                            [(i.row, i.column, i.code, getattr(i.severity, "value", str(i.severity)), i.message)
                             for i in issues])

    def mark_sending(self, rows: Sequence[int]) -> None:
        """Before a request leaves: the rows become ``sending`` and their attempt count goes up."""
        if not rows:
            return
        now = utcnow()
        with self.transaction() as cur:
            cur.executemany(
                "UPDATE rows SET state=?, attempts=attempts+1, last_at=? WHERE row=?",
                [(RowState.SENDING.value, now, r) for r in rows])

    def record(self, row: int, outcome: Outcome) -> None:
        """Store a row's answer (final or ``unknown``/``pending``) as soon as it arrives."""
        self.record_many([(row, outcome)])

    def record_many(self, outcomes: Sequence[tuple[int, Outcome]]) -> None:
        """Store several answers in one transaction."""
        if not outcomes:
            return
        now = utcnow()
        with self.transaction() as cur:
            cur.executemany(
                "UPDATE rows SET state=?, object_id=?, http_status=?, error_code=?, message=?, request_id=?,"
                " last_at=? WHERE row=?",
                [(o.state.value, o.object_id, o.http_status, o.error_code, o.message, o.request_id, now, r)
                 for r, o in outcomes])

    def set_rows_state(self, rows: Sequence[int], state: RowState) -> None:
        """Move rows to ``state`` without touching their answer fields (e.g. unknown -> pending)."""
        now = utcnow()
        with self.transaction() as cur:
            cur.executemany("UPDATE rows SET state=?, last_at=? WHERE row=?",
                            [(state.value, now, r) for r in rows])

    def _select(self, table: str, states: Sequence[str] | None, order: str) -> list[sqlite3.Row]:
        """Every record of ``table`` (one of this class's own table names), or those in ``states``, in ``order``."""
        sql, params = f"SELECT * FROM {table}", list(states or ())
        if states is not None:
            sql += f" WHERE state IN ({','.join('?' * len(params))})"
        with self._lock:
            return list(self._conn.execute(sql + order, params).fetchall())

    def rows(self, states: Iterable[RowState] | None = None) -> list[RowRecord]:
        """Rows in roster order, optionally only those in ``states``."""
        values = None if states is None else [RowState(s).value for s in states]
        return [_record(r) for r in self._select("rows", values, " ORDER BY row")]

    def states(self) -> dict[int, RowState]:
        """Every row's state (a light query: no bodies decoded)."""
        with self._lock:
            found = self._conn.execute("SELECT row, state FROM rows").fetchall()
        return {r["row"]: RowState(r["state"]) for r in found}

    def get(self, row: int) -> RowRecord | None:
        """One row, or None."""
        with self._lock:
            r = self._conn.execute("SELECT * FROM rows WHERE row=?", (row,)).fetchone()
        return _record(r) if r is not None else None

    def counts(self) -> dict[str, int]:
        """Number of rows per state."""
        with self._lock:
            found = self._conn.execute("SELECT state, COUNT(*) AS n FROM rows GROUP BY state").fetchall()
        return {r["state"]: r["n"] for r in found}

    def issues(self) -> dict[int, list[Issue]]:
        """Validation issues by row (row 0: the roster as a whole)."""
        with self._lock:
            found = self._conn.execute("SELECT * FROM issues ORDER BY row, rowid").fetchall()
        return _issues(found)

    def add_bindings(self, bindings: Iterable[Binding]) -> None:
        """Record the rows bound to an account created by an earlier run of the chain (``retry``)."""
        with self.transaction() as cur:
            cur.executemany(
                "INSERT OR REPLACE INTO bindings(row, object_id, upn, mail_nickname, employee_id, run, body)"
                " VALUES (?,?,?,?,?,?,?)",
                [(b.row, b.object_id, b.upn, b.mail_nickname, b.employee_id, b.run,
                  json.dumps(strip_secrets(b.body)) if b.body else "") for b in bindings])

    def bindings(self) -> dict[int, Binding]:
        """The bound rows by row ({} for a run that was no retry, or a journal older than the table)."""
        try:
            with self._lock:
                found = self._conn.execute("SELECT * FROM bindings ORDER BY row").fetchall()
        except sqlite3.OperationalError:  # a journal written before the table existed
            return {}
        return {r["row"]: Binding(r["row"], r["object_id"], r["upn"], r["mail_nickname"], r["employee_id"],
                                  r["run"], json.loads(r["body"]) if r["body"] else {}) for r in found}

    def iter_open(self) -> Iterator[RowRecord]:
        """The rows ``resume`` still has work for."""
        yield from self.rows(OPEN_STATES)

    # -- the roster's cells, and the one read of the reports ------------------------------------------------
    def add_roster(self, roster: Roster) -> None:
        """Record the roster's headers and every row's original cells, for the reports. A password column (mapped
        to ``password``, or one :func:`~provisioning.fields.is_password_header` recognises) is stored blank."""
        with self.transaction() as cur:
            self._add_roster(cur, roster)

    @staticmethod
    def _add_roster(cur: sqlite3.Cursor, roster: Roster) -> None:
        blank = frozenset(j for j, h in enumerate(roster.headers)
                          if roster.column_map.get(h) == "password" or is_password_header(h))
        empty = ("",) * len(roster.row_numbers)
        columns = [empty if j in blank else column for j, column in enumerate(roster.columns)]
        cur.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                    ("roster_headers", json.dumps(list(roster.headers))))
        cur.executemany("INSERT OR REPLACE INTO cells(row, cells) VALUES (?, ?)",
                        [(row, _json_text(list(values)))
                         for row, values in zip(roster.row_numbers, zip(*columns, strict=True), strict=True)])

    def snapshot(self, *, after: int = 0, limit: int | None = None) -> Snapshot:
        """Meta, rows, issues, follow-ups, changes and the roster's cells in one read transaction: what the end of a
        session reports from (results.csv, results.xlsx, summary.json). ``after``/``limit``: only the first
        ``limit`` rows numbered above ``after``, with what belongs to them, and the roster's own issues (row 0):
        the early reports read so (:mod:`provisioning.report.early`)."""
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                span = ""  # a WHERE clause of two integers (formatted from ints: nothing else gets in)
                if after or limit is not None:
                    span = f" WHERE row > {int(after)}"
                    if limit is not None:
                        last = self._conn.execute(
                            f"SELECT MAX(row) FROM (SELECT row FROM rows{span} ORDER BY row LIMIT ?)", (int(limit),))
                        span += f" AND row <= {int(last.fetchone()[0] or after)}"
                meta = {r["key"]: json.loads(r["value"]) for r in self._conn.execute("SELECT key, value FROM meta")}
                rows = [_record(r) for r in self._conn.execute(f"SELECT * FROM rows{span} ORDER BY row")]
                # with a span, the roster's own issues (row 0) too: every span's reader may be the last one
                where = f" WHERE row = 0 OR ({span.removeprefix(' WHERE ')})" if span else ""
                issues = _issues(self._conn.execute(f"SELECT * FROM issues{where} ORDER BY row, rowid"))
                follow = [_followup(r) for r in self._conn.execute(f"SELECT * FROM followups{span}"
                                                                   + _FOLLOWUP_ORDER)]
                edits = _changes(self._conn.execute(f"SELECT * FROM updates{span} ORDER BY row, rowid"))
                headers = meta.get("roster_headers")
                cells = {} if headers is None else {
                    r["row"]: tuple(json.loads(r["cells"])) for r in self._conn.execute(
                        f"SELECT row, cells FROM cells{span}")}
            finally:
                self._conn.execute("COMMIT")
        return Snapshot(meta, rows, issues, follow, edits, None if headers is None else tuple(headers), cells)

    # -- follow-ups and updates ------------------------------------------------------------------------------
    def add_followups(self, seeds: Iterable[FollowUpSeed]) -> None:
        """Record the planned follow-ups (a follow-up already recorded is left as it is)."""
        now = utcnow()
        with self.transaction() as cur:
            cur.executemany(
                "INSERT OR IGNORE INTO followups(row, kind, target, target_id, target_row, state, last_at)"
                " VALUES (?,?,?,?,?,?,?)",
                [(s.row, s.kind, s.target, s.target_id, s.target_row, FollowUpState(s.state).value, now)
                 for s in seeds])

    def record_followups(self, outcomes: Sequence[tuple[int, str, str, FollowUpOutcome]]) -> None:
        """Store answers: ``(row, kind, target, outcome)``; attempts add up across sessions."""
        if not outcomes:
            return
        now = utcnow()
        with self.transaction() as cur:
            cur.executemany(
                "UPDATE followups SET state=?, attempts=attempts+?, http_status=?, error_code=?, message=?,"
                " request_id=?, target_id=CASE WHEN ?='' THEN target_id ELSE ? END, last_at=?"
                " WHERE row=? AND kind=? AND target=?",
                [(o.state.value, o.attempts, o.http_status, o.error_code, o.message, o.request_id, o.target_id,
                  o.target_id, now, row, kind, target) for row, kind, target, o in outcomes])

    def followups(self, states: Iterable[FollowUpState] | None = None) -> list[FollowUpRecord]:
        """Follow-ups in roster order (then kind order), optionally only those in ``states``."""
        values = None if states is None else [FollowUpState(s).value for s in states]
        return [_followup(r) for r in self._select("followups", values, _FOLLOWUP_ORDER)]

    def followup_view(self) -> dict[int, tuple[FollowUpState, str]]:
        """Per row with follow-ups: the state of its follow-ups as a whole (:func:`row_states`) and their one-line
        summary, as the reports show them."""
        return followup_view(self.followups())

    def add_changes(self, changes: Iterable[Change]) -> None:
        """Record the properties an update changes (planned, or done: the row's state says which)."""
        with self.transaction() as cur:
            cur.executemany("INSERT OR REPLACE INTO updates(row, property, old, new) VALUES (?,?,?,?)",
                            [(c.row, c.property, c.old, c.new) for c in changes])

    def changes(self) -> dict[int, list[Change]]:
        """Recorded changes by row, in the order recorded."""
        with self._lock:
            found = self._conn.execute("SELECT * FROM updates ORDER BY row, rowid").fetchall()
        return _changes(found)


def damaged_message(path: Path, exc: BaseException) -> str:
    """What to do when a run's journal cannot be read: what it created is in the run's other files, and a new run
    of the roster skips the users that exist (the default ``--existing skip``), so nobody is created twice."""
    folder = RunFolder(path.parent)
    where = [str(p) for p in (folder.results_csv, folder.log) if p.is_file()]
    listed = (f"the users it created are listed in {' and '.join(where)}" if where else
              "the users it created can be found in the tenant (Entra admin center, Users)")
    return (f"{path} is damaged ({exc}); the run cannot be resumed from it; {listed}; start a new run of the "
            "same roster with `run` (the default --existing skip skips the users that already exist)")


_FOLLOWUP_ORDER = " ORDER BY row, CASE kind WHEN 'group' THEN 0 WHEN 'license' THEN 1 ELSE 2 END, rowid"


def followup_view(records: Sequence[FollowUpRecord]) -> dict[int, tuple[FollowUpState, str]]:
    """Per row with follow-ups: (their state as a whole, their one-line summary)."""
    grouped = by_row(records)
    states = row_states(records)
    return {row: (states[row], summary_text(fs)) for row, fs in grouped.items()}


def _issues(found: Iterable[sqlite3.Row]) -> dict[int, list[Issue]]:
    out: dict[int, list[Issue]] = {}
    for r in found:
        out.setdefault(r["row"], []).append(
            Issue(r["row"], r["col"], r["code"], Severity(r["severity"]), r["message"]))
    return out


def _changes(found: Iterable[sqlite3.Row]) -> dict[int, list[Change]]:
    out: dict[int, list[Change]] = {}
    for r in found:
        out.setdefault(r["row"], []).append(Change(r["row"], r["property"], r["old"], r["new"]))
    return out


def _followup(r: sqlite3.Row) -> FollowUpRecord:
    return FollowUpRecord(r["row"], r["kind"], r["target"], r["target_id"], r["target_row"],
                          FollowUpState(r["state"]), r["attempts"], r["http_status"], r["error_code"],
                          r["message"], r["request_id"])


def _record(r: sqlite3.Row) -> RowRecord:
    return RowRecord(
        row=r["row"], upn=r["upn"], action=r["action"], state=RowState(r["state"]), attempts=r["attempts"],
        object_id=r["object_id"], http_status=r["http_status"], error_code=r["error_code"], message=r["message"],
        request_id=r["request_id"], password_source=r["password_source"],
        body=json.loads(r["body"]) if r["body"] else {}, display_name=r["display_name"],
        first_at=r["first_at"], last_at=r["last_at"])
