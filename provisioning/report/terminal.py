"""What ``validate`` and ``run`` print about the rows they reject: a summary first (a count per error code, one
example message and the first few rows of each), then at most :data:`MAX_LINES` issue lines, then where the full
list is. Tables fit the terminal: a column too wide is cut with an ellipsis, never wrapped.

The width is the terminal's (``shutil.get_terminal_size``, which honours ``COLUMNS``) when the stream is a terminal
or ``COLUMNS`` is set; output redirected to a file is not cut (a log keeps whole messages).
"""
from __future__ import annotations

import os
import shutil
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol, TextIO, TypeVar

ELLIPSIS = "\u2026"
MAX_LINES = 40  # issue lines printed unless --all
EXAMPLE_ROWS = 5  # rows named per code in the summary
MIN_COLUMN = 6  # a column is never cut narrower than this (its header may be)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Reason:
    """Why one row was rejected (or warned about): the row, its UPN when known, the code and the message."""

    row: int
    code: str
    message: str
    upn: str = ""
    column: str = ""
    severity: str = "error"


def terminal_width(stream: TextIO) -> int | None:
    """The width to fit, or None (not a terminal and no ``COLUMNS``: do not cut)."""
    isatty = getattr(stream, "isatty", None)
    if os.environ.get("COLUMNS") or (callable(isatty) and isatty()):
        return max(shutil.get_terminal_size().columns, 20)
    return None


def cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters (one line), an ellipsis marking a cut."""
    text = " ".join(text.split()) if ("\n" in text or "\r" in text or "\t" in text) else text
    if len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + ELLIPSIS if width > 0 else ""


def table(head: Sequence[str], rows: Sequence[Sequence[str]], width: int | None, *, right: frozenset[int] = frozenset(),
          rule: bool = True) -> list[str]:
    """Aligned lines (no newline) of ``rows`` under ``head``, two spaces between columns; with ``width``, every line
    fits it: the last column shrinks first, then the widest others, each cut with an ellipsis."""
    n = len(head)
    widths = [max([len(head[k])] + [len(cut(r[k], 10**6)) for r in rows]) for k in range(n)]
    if width is not None:
        over = sum(widths) + 2 * (n - 1) - width
        last = n - 1
        if over > 0:  # the last column (the message) gives first, down to a readable minimum
            give = min(over, max(widths[last] - max(MIN_COLUMN * 3, len(head[last])), 0))
            widths[last] -= give
            over -= give
        while over > 0:  # then the widest column, one character at a time
            k = max(range(n), key=lambda i: widths[i])
            if widths[k] <= MIN_COLUMN:
                break
            widths[k] -= 1
            over -= 1
    lines = [_line([cut(h, w) for h, w in zip(head, widths, strict=True)], widths, right)]
    if rule:
        lines.append(_line(["-" * w for w in widths], widths, frozenset()))
    lines += [_line([cut(c, w) for c, w in zip(r, widths, strict=True)], widths, right) for r in rows]
    return lines


def _line(cells: Sequence[str], widths: Sequence[int], right: frozenset[int]) -> str:
    parts = [c.rjust(w) if k in right else c.ljust(w) for k, (c, w) in enumerate(zip(cells, widths, strict=True))]
    return "  ".join(parts).rstrip()


def _rows_text(rows: Sequence[int], total: int) -> str:
    shown = ", ".join(str(r) if r else "-" for r in rows[:EXAMPLE_ROWS])
    return shown + (f", {ELLIPSIS}" if total > EXAMPLE_ROWS else "")


class Reported(Protocol):
    """What :func:`code_summary` reads of each item: a :class:`Reason`, or an issue of validation whose severity is
    a ``str`` enum (its value is shown)."""

    @property
    def row(self) -> int: ...

    @property
    def code(self) -> str: ...

    @property
    def message(self) -> str: ...

    @property
    def severity(self) -> str: ...


def code_summary(reasons: Sequence[Reported], width: int | None) -> list[str]:
    """A line per code, most frequent first: the code, how many, the first few rows, one example message.

    (``validate`` passes its issues as they are: a :class:`Reason` per issue cost more than the summary itself.)"""
    by_code: dict[str, list[Reported]] = {}
    for r in reasons:
        by_code.setdefault(r.code, []).append(r)
    ordered = sorted(by_code.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    rows = []
    for code, found in ordered:
        numbers = list(dict.fromkeys(r.row for r in found))
        severity = found[0].severity
        rows.append((code, severity.value if isinstance(severity, Enum) else severity, str(len(found)),
                     _rows_text(numbers, len(numbers)), found[0].message))
    return table(("Code", "Severity", "Count", "Rows", "Example"), rows, width, right=frozenset({2}))


def more_line(shown: int, total: int, where: str, width: int | None = None) -> str:
    """The line(s) after the issue lines: how many were left out and where the full list is (a sentence, wrapped
    between words at ``width``; a path is never broken)."""
    if shown >= total:
        text = f"every issue is also in {where}"
    else:
        left = total - shown
        text = (f"{ELLIPSIS} and {left:,} more issue{'s' * (left != 1)} not shown: the full list is in {where} "
                f"(--all prints every issue here)")
    if width is None:
        return text
    return "\n".join(textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False))


def shown(items: Sequence[T], show_all: bool) -> Sequence[T]:
    """The issues to print as lines: all of them with ``--all``, else the first :data:`MAX_LINES`."""
    return items if show_all else items[:MAX_LINES]
