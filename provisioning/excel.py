"""Excel rosters (``.xlsx``/``.xlsm``): the sheet's cells as the text Excel shows, through pandas and calamine.

Numbers Excel stores as numbers come back as Excel shows them (``123``, not ``123.0``), dates as ``YYYY-MM-DD``,
booleans as ``TRUE``/``FALSE``. :func:`read_excel` returns the sheet column-wise for :mod:`provisioning.roster`.
"""
from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from .errors import RosterError
from .fields import canonical_field

EXCEL_SUFFIXES = (".xlsx", ".xlsm")


# ---- Excel ---------------------------------------------------------------------------------------------------


def excel_text(value: Any) -> str:
    """A calamine cell value as the text Excel shows (the common cases)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value)


def read_excel(p: Path, sheet: str | None) -> tuple[str, list[list[str]]]:
    try:
        book = pd.ExcelFile(p, engine="calamine")
    except Exception as exc:  # calamine raises its own types for corrupt files
        raise RosterError(p, f"cannot open the workbook ({type(exc).__name__}: {str(exc).strip()[:200]}); open it in "
                             f"Excel and save it again as .xlsx, or save it as .csv") from exc
    with book:
        names = [str(n) for n in book.sheet_names]
        if sheet is not None and sheet not in names:
            raise RosterError(p, f"no sheet named {sheet!r}; the workbook has {', '.join(map(repr, names))}")
        candidates = [sheet] if sheet is not None else names
        for name in candidates:
            frame = pd.read_excel(book, sheet_name=name, header=None, dtype=object)
            columns = [[excel_text(v) for v in frame[c].tolist()] for c in frame.columns]
            if sheet is not None or _has_known_header(columns):
                return name, columns
    raise RosterError(p, "no sheet has a header row with known column names such as givenName, surname, "
                         "userPrincipalName; pick one with --sheet or use `provision.py template`")


def _has_known_header(columns: Sequence[Sequence[str]]) -> bool:
    for r in range(min(len(columns[0]) if columns else 0, 5)):
        if any(canonical_field(col[r]) for col in columns if col[r]):
            return True
    return False
