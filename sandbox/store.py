"""Durable state: SQLite (WAL) as the store, in-memory indexes for speed.

All access goes through one re-entrant lock. Writes are executed immediately and committed once per HTTP
request (or per ``$batch``) by :meth:`Store.commit`, not per row. Users are kept as full JSON documents plus a
creation timestamp (wall clock, for replication lag) and an insertion sequence (for stable paging).

Relations live in their own tables: group ``members`` (the groups themselves are fixed, see
:mod:`sandbox.groups`), ``managers`` and the recorded ``mail``. Licences are the users' ``assignedLicenses``
property; the seats consumed per SKU are counted in memory (:attr:`Store.consumed`). A deleted user moves, whole,
to ``deleted_users`` (:attr:`Store.deleted`) and out of every index, its memberships and manager links dropped;
its seats are freed and taken again on restore. A user's Temporary Access Pass method (:mod:`sandbox.tap`: its
times, options and a salted hash of the pass, never the pass) is in ``tap_methods`` (:attr:`Store.taps`), one per
user. :meth:`Store.clear` empties all of it.
"""
from __future__ import annotations

import bisect
import datetime as dt
import json
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    upn_key TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,
    seeded INTEGER NOT NULL DEFAULT 0,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS members (
    group_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    added REAL NOT NULL,
    PRIMARY KEY (group_id, member_id)
);
CREATE TABLE IF NOT EXISTS managers (user_id TEXT PRIMARY KEY, manager_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS mail (seq INTEGER PRIMARY KEY AUTOINCREMENT, sent REAL NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deleted_users (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    created REAL NOT NULL,
    seeded INTEGER NOT NULL,
    deleted REAL NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tap_methods (user_id TEXT PRIMARY KEY, data TEXT NOT NULL);
"""


@dataclass
class UserRow:
    """One user in memory: its sequence number, creation time and full property document."""

    seq: int
    created: float
    seeded: bool
    data: dict[str, Any]


class Store:
    """Users of the tenant, durable in ``state/sandbox.sqlite``."""

    def __init__(self, path: Path):
        self.lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level="DEFERRED")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._dirty = False
        self.by_id: dict[str, UserRow] = {}
        self.by_upn: dict[str, str] = {}
        self.ordered: list[UserRow] = []
        self.consumed: Counter[str] = Counter()
        self.members: dict[str, dict[str, float]] = {}
        self.managers: dict[str, str] = {}
        self.deleted: dict[str, UserRow] = {}  # soft-deleted users by id, oldest deletion first
        self.taps: dict[str, dict[str, Any]] = {}  # user id -> its Temporary Access Pass method
        self._next_seq = 1
        for seq, created, seeded, data in self._db.execute(
                "SELECT seq, created, seeded, data FROM users ORDER BY seq"):
            self._index(UserRow(seq, created, bool(seeded), json.loads(data)))
        for group_id, member_id, added in self._db.execute(
                "SELECT group_id, member_id, added FROM members ORDER BY added, rowid"):
            self.members.setdefault(group_id, {})[member_id] = added
        self.managers.update(self._db.execute("SELECT user_id, manager_id FROM managers"))
        for seq, created, seeded, data in self._db.execute(
                "SELECT seq, created, seeded, data FROM deleted_users ORDER BY deleted, seq"):
            row = UserRow(seq, created, bool(seeded), json.loads(data))
            self.deleted[row.data["id"]] = row
            self._next_seq = max(self._next_seq, seq + 1)
        for user_id, data in self._db.execute("SELECT user_id, data FROM tap_methods"):
            self.taps[user_id] = json.loads(data)

    def _index(self, row: UserRow) -> None:
        self.by_id[row.data["id"]] = row
        self.by_upn[row.data["userPrincipalName"].lower()] = row.data["id"]
        self.ordered.append(row)
        self._count_licenses(row.data, 1)
        self._next_seq = max(self._next_seq, row.seq + 1)

    def _count_licenses(self, data: dict[str, Any], sign: int) -> None:
        for lic in data.get("assignedLicenses") or ():
            self.consumed[str(lic.get("skuId")).lower()] += sign

    # -- users -------------------------------------------------------------------------------------------
    def count(self) -> int:
        """Number of users."""
        return len(self.by_id)

    def add_user(self, data: dict[str, Any], *, seeded: bool = False, created: float | None = None) -> UserRow:
        """Insert a user (caller has checked uniqueness); committed by :meth:`commit`."""
        with self.lock:
            row = UserRow(self._next_seq, time.time() if created is None else created, seeded, data)
            self._db.execute("INSERT INTO users (seq, id, upn_key, created, seeded, data) VALUES (?,?,?,?,?,?)",
                             (row.seq, data["id"], data["userPrincipalName"].lower(), row.created, int(seeded),
                              json.dumps(data)))
            self._index(row)
            self._dirty = True
            return row

    def add_users(self, docs: list[dict[str, Any]]) -> None:
        """Bulk insert of pre-seeded users (visible immediately)."""
        with self.lock:
            rows = []
            for data in docs:
                row = UserRow(self._next_seq, 0.0, True, data)
                self._index(row)
                rows.append((row.seq, data["id"], data["userPrincipalName"].lower(), 0.0, 1, json.dumps(data)))
            self._db.executemany(
                "INSERT INTO users (seq, id, upn_key, created, seeded, data) VALUES (?,?,?,?,?,?)", rows)
            self._db.commit()

    def update_user(self, row: UserRow, changes: dict[str, Any]) -> None:
        """Apply property changes to a user (caller validated them)."""
        with self.lock:
            old_key = row.data["userPrincipalName"].lower()
            self._count_licenses(row.data, -1)
            row.data.update(changes)
            self._count_licenses(row.data, 1)
            new_key = row.data["userPrincipalName"].lower()
            if new_key != old_key:
                del self.by_upn[old_key]
                self.by_upn[new_key] = row.data["id"]
            self._db.execute("UPDATE users SET upn_key=?, data=? WHERE seq=?",
                             (new_key, json.dumps(row.data), row.seq))
            self._dirty = True

    def find(self, key: str) -> UserRow | None:
        """A user by object id or UPN (case-insensitive), regardless of replication lag."""
        with self.lock:
            row = self.by_id.get(key)
            if row is None:
                uid = self.by_upn.get(key.lower())
                row = self.by_id.get(uid) if uid else None
            return row

    def iter_from(self, after_seq: int) -> Iterator[UserRow]:
        """Users with ``seq > after_seq`` in insertion order (call with the lock held)."""
        lo, hi = 0, len(self.ordered)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.ordered[mid].seq <= after_seq:
                lo = mid + 1
            else:
                hi = mid
        return iter(self.ordered[lo:])

    def seeded_count(self) -> int:
        """Number of pre-seeded users present."""
        with self.lock:
            return sum(1 for r in self.ordered if r.seeded)

    def delete_user(self, row: UserRow) -> None:
        """Soft-delete a user: out of the indexes and relations, into :attr:`deleted` with ``deletedDateTime``."""
        with self.lock:
            uid = row.data["id"]
            del self.by_id[uid]
            del self.by_upn[row.data["userPrincipalName"].lower()]
            self.ordered.pop(bisect.bisect_left(self.ordered, row.seq, key=lambda r: r.seq))
            self._count_licenses(row.data, -1)
            for members in self.members.values():
                members.pop(uid, None)
            for user_id in [u for u, m in self.managers.items() if uid in (u, m)]:
                del self.managers[user_id]
            self._db.execute("DELETE FROM members WHERE member_id=?", (uid,))
            self._db.execute("DELETE FROM managers WHERE user_id=? OR manager_id=?", (uid, uid))
            self._db.execute("DELETE FROM users WHERE seq=?", (row.seq,))
            now = time.time()
            row.data["deletedDateTime"] = dt.datetime.fromtimestamp(now, dt.UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ")
            self._db.execute("INSERT INTO deleted_users (id, seq, created, seeded, deleted, data) VALUES "
                             "(?,?,?,?,?,?)", (uid, row.seq, row.created, int(row.seeded), now, json.dumps(row.data)))
            self.deleted[uid] = row
            self._dirty = True

    def restore_user(self, uid: str, changes: dict[str, Any]) -> UserRow:
        """Bring a soft-deleted user back (caller checked the UPN is free), with ``changes`` applied."""
        with self.lock:
            row = self.deleted.pop(uid)
            row.data.update(changes)
            row.data["deletedDateTime"] = None
            self._db.execute("DELETE FROM deleted_users WHERE id=?", (uid,))
            self._db.execute("INSERT INTO users (seq, id, upn_key, created, seeded, data) VALUES (?,?,?,?,?,?)",
                             (row.seq, uid, row.data["userPrincipalName"].lower(), row.created, int(row.seeded),
                              json.dumps(row.data)))
            self.by_id[uid] = row
            self.by_upn[row.data["userPrincipalName"].lower()] = uid
            bisect.insort(self.ordered, row, key=lambda r: r.seq)
            self._count_licenses(row.data, 1)
            self._dirty = True
            return row

    def purge_user(self, uid: str) -> bool:
        """Permanently delete a soft-deleted user; False when there is none with that id."""
        with self.lock:
            if self.deleted.pop(uid, None) is None:
                return False
            self._db.execute("DELETE FROM deleted_users WHERE id=?", (uid,))
            self.set_tap(uid, None)
            self._dirty = True
            return True

    # -- relations: group members, managers, recorded mail -------------------------------------------------
    def add_member(self, group_id: str, member_id: str) -> bool:
        """Add a member; False when it already is one (committed by :meth:`commit`)."""
        with self.lock:
            members = self.members.setdefault(group_id, {})
            if member_id in members:
                return False
            members[member_id] = time.time()
            self._db.execute("INSERT INTO members (group_id, member_id, added) VALUES (?,?,?)",
                             (group_id, member_id, members[member_id]))
            self._dirty = True
            return True

    def remove_member(self, group_id: str, member_id: str) -> bool:
        """Remove a member; False when it was not one."""
        with self.lock:
            if self.members.get(group_id, {}).pop(member_id, None) is None:
                return False
            self._db.execute("DELETE FROM members WHERE group_id=? AND member_id=?", (group_id, member_id))
            self._dirty = True
            return True

    def member_ids(self, group_id: str) -> list[str]:
        """Member ids of a group in the order they were added."""
        with self.lock:
            return list(self.members.get(group_id, {}))

    def set_manager(self, user_id: str, manager_id: str | None) -> None:
        """Set (or with ``None`` remove) a user's manager."""
        with self.lock:
            if manager_id is None:
                self.managers.pop(user_id, None)
                self._db.execute("DELETE FROM managers WHERE user_id=?", (user_id,))
            else:
                self.managers[user_id] = manager_id
                self._db.execute("INSERT OR REPLACE INTO managers (user_id, manager_id) VALUES (?,?)",
                                 (user_id, manager_id))
            self._dirty = True

    def set_tap(self, user_id: str, doc: dict[str, Any] | None) -> None:
        """Set (replacing any) or with ``None`` remove a user's Temporary Access Pass method."""
        with self.lock:
            if doc is None:
                self.taps.pop(user_id, None)
                self._db.execute("DELETE FROM tap_methods WHERE user_id=?", (user_id,))
            else:
                self.taps[user_id] = doc
                self._db.execute("INSERT OR REPLACE INTO tap_methods (user_id, data) VALUES (?,?)",
                                 (user_id, json.dumps(doc)))
            self._dirty = True

    def add_mail(self, doc: dict[str, Any]) -> int:
        """Record a sent message; returns its sequence number."""
        with self.lock:
            cur = self._db.execute("INSERT INTO mail (sent, data) VALUES (?, ?)", (time.time(), json.dumps(doc)))
            self._dirty = True
            return int(cur.lastrowid or 0)

    def list_mail(self) -> list[dict[str, Any]]:
        """Every recorded message, oldest first."""
        with self.lock:
            return [json.loads(d) for (d,) in self._db.execute("SELECT data FROM mail ORDER BY seq")]

    def clear_mail(self) -> int:
        """Forget the recorded mail; returns how many messages there were."""
        with self.lock:
            n = self._db.execute("SELECT COUNT(*) FROM mail").fetchone()[0]
            self._db.execute("DELETE FROM mail")
            self._db.commit()
            return int(n)

    # -- meta, lifecycle ---------------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        """A value of the meta table."""
        with self.lock:
            row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
            return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        """Set a meta value (committed by :meth:`commit`)."""
        with self.lock:
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
            self._dirty = True

    def commit(self) -> None:
        """Commit pending writes (once per request or batch)."""
        with self.lock:
            if self._dirty:
                self._db.commit()
                self._dirty = False

    def clear(self) -> None:
        """Delete every user, membership, manager link, licence, Temporary Access Pass and recorded message
        (``sandbox reset``)."""
        with self.lock:
            for table in ("users", "members", "managers", "mail", "deleted_users", "tap_methods"):
                self._db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            self._db.commit()
            self._dirty = False
            self.by_id.clear()
            self.by_upn.clear()
            self.ordered.clear()
            self.consumed.clear()
            self.members.clear()
            self.managers.clear()
            self.deleted.clear()
            self.taps.clear()

    def close(self) -> None:
        """Commit and close the database."""
        with self.lock:
            self._db.commit()
            self._db.close()
