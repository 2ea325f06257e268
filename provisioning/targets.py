"""The files a command writes for the user: never over a file it did not write itself, never over the roster.

``validate --out``, ``template``, ``export-users`` and a run folder (``run --out DIR``) call :func:`check_target`
before they write. A file that is the command's own earlier output (recognised by its header) is replaced; any
other existing file only with ``--force``; the roster itself never, not even with ``--force`` (compared by
``os.path.samefile``, so another spelling of the same path, a hard link or a symbolic link is caught too).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from provisioning.errors import UsageError

HEAD_BYTES = 64 * 1024


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are one file (either may be missing)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def check_target(path: Path, *, force: bool, ours: Callable[[Path], bool] | None = None,
                 protected: Mapping[str, Path | None] | None = None, option: str = "--force") -> None:
    """Raise :class:`UsageError` unless ``path`` may be written: it does not exist, is this command's own output
    (``ours``), or ``force`` is given; never when it is one of ``protected`` (what -> path: "the roster")."""
    for what, keep in (protected or {}).items():
        if keep is not None and same_file(path, keep):
            raise UsageError(f"{path} is {what}; it is never written over, not even with --force: give another "
                             "name")
    if not os.path.lexists(path):
        return
    if path.is_dir():
        raise UsageError(f"{path} is a folder; give a file name")
    if force or (ours is not None and ours(path)):
        return
    raise UsageError(f"{path} exists; give {option} to replace it, or another name")


def csv_header_is(expected: Sequence[Sequence[str]]) -> Callable[[Path], bool]:
    """``ours`` for a CSV whose first line is one of ``expected`` (lists of column names)."""
    def check(path: Path) -> bool:
        first = _first_csv_row(path)
        return first is not None and any(first == list(e) for e in expected)

    return check


def _first_csv_row(path: Path) -> list[str] | None:
    import csv

    try:
        with path.open("rb") as fh:
            head = fh.read(HEAD_BYTES)
    except OSError:
        return None
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    line = text.splitlines()[0] if text else ""
    return next(csv.reader([line]), [])


def xlsx_first_row_is(sheet: str, expected: Sequence[Sequence[str]], *, only_header: bool = False) \
        -> Callable[[Path], bool]:
    """``ours`` for a workbook whose ``sheet`` starts with one of ``expected`` (and, with ``only_header``, holds
    nothing below it: a blank template)."""
    def check(path: Path) -> bool:
        from python_calamine import CalamineWorkbook

        try:
            rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet).to_python()
        except Exception:  # noqa: BLE001 - any unreadable workbook is simply not ours
            return False
        if not rows:
            return False
        first = [str(v) for v in rows[0]]
        while first and first[-1] == "":
            first.pop()
        if only_header and any(str(v).strip() for row in rows[1:] for v in row):
            return False
        return any(first == list(e) for e in expected)

    return check


def csv_text_is(expected: str) -> Callable[[Path], bool]:
    """``ours`` for a text file holding exactly ``expected`` (a blank CSV template: header lines only)."""
    def check(path: Path) -> bool:
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except (OSError, UnicodeDecodeError):
            return False
        return text.strip().splitlines() == expected.strip().splitlines()

    return check
