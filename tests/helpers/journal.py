"""Reading the journal of a run that may still be running (read-only; 0 while it cannot be read yet)."""
from __future__ import annotations

import sqlite3
from pathlib import Path


def journal_count(journal: Path, sql: str, params: tuple[object, ...] = ()) -> int:
    """The number ``sql`` (a ``SELECT COUNT(*) ...``) gives on ``journal`` (the journal.sqlite file), or 0 while it
    does not exist yet or is locked."""
    try:
        conn = sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute(sql, params).fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0
