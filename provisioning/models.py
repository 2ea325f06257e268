"""Typed, frozen values that cross module boundaries inside ``provisioning``."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Severity(str, Enum):
    """An error excludes the row from the run; a warning is reported and the row goes ahead."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Issue:
    """One finding about one cell, row or the roster as a whole.

    ``row`` is the row number as the user sees it in Excel or a text editor (header = row 1, or row 2 in the
    Entra admin center template whose first line is ``version:v1.0``); 0 means the roster as a whole.
    ``column`` is the column header as written in the roster (not the canonical name) where there is one.
    ``code`` is stable across releases, so scripts and the report can key on it.
    """

    row: int
    column: str
    code: str
    severity: Severity
    message: str
