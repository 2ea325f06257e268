"""A CSV file of at most a megabyte without quotes is split by Python's ``csv`` into the cells pandas' C parser reads.

Every CSV file of ``samples/`` and ``tests/data/`` (real exports, hostile files, encodings) and a set of layouts
written here are read twice through the reader's own detection (encoding, delimiter, skipped lines): as the reader
does it, and with every file handed to pandas. The encoding, the delimiter, the columns of text, the note and any
error message must be the same.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from provisioning.errors import RosterError
from provisioning.roster import reader

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted(p for folder in (ROOT / "samples", ROOT / "tests" / "data") for p in folder.rglob("*.csv"))

LAYOUTS = {
    "blank-lines.csv": b"givenName,surname\n\nAnn,Lee\n\n\n",
    "crlf.csv": b"givenName,surname\r\nAnn,Lee\r\nBo,Ng\r\n",
    "cr-only.csv": b"givenName,surname\rAnn,Lee\rBo,Ng",
    "ragged.csv": b"givenName,surname,department\nAnn,Lee\nBo,Ng,Sales,extra,more\nCy\n",
    "spaces.csv": b"givenName,surname\n   \n Ann , Lee \n",
    "semicolons.csv": b"givenName;surname;jobTitle\nAnn;Lee;Dev, senior\n",
    "tabs.tsv": b"givenName\tsurname\nAnn\tLee\n",
    "bom.csv": "\ufeffgivenName,surname\nÅsa,Öberg\n".encode(),
    "utf16.csv": "givenName,surname\nÅsa,Öberg\n".encode("utf-16"),
    "version-line.csv": b"version:v1.0\nName [displayName] Required,User name [userPrincipalName] Required\n"
                        b"Ann,a@b.c\n",
    "title-row.csv": b"Staff list\n\ngivenName,surname\nAnn,Lee\n",
    "trailing-delimiters.csv": b"givenName,surname,\nAnn,Lee,\n,,\n",
    "only-header.csv": b"givenName,surname\n",
    "skipped-only.csv": b"\n\n\n",
    "quoted.csv": b'givenName,surname\n"Lee, Ann",x\n',
    "unclosed-quote.csv": b'givenName,surname\n"Ann,Lee\n',
    "nul.csv": b"givenName,surname\nA\x00n,Lee\n",
    "control.csv": b"givenName,surname\nA\x1bn,L\x0bee\x0c\n",
}


def _read(path: Path) -> object:
    head = path.read_bytes()[:reader._HEAD + 1]
    try:
        return reader._read_csv(path, head)
    except RosterError as exc:
        return f"error: {exc}"


def _both(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    ours = _read(path)
    with monkeypatch.context() as m:
        m.setattr(reader, "_parse_csv", reader._parse_csv_pandas)
        theirs = _read(path)
    return ours, theirs


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_csv_of_the_test_data_is_split_as_pandas_splits_it(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ours, theirs = _both(path, monkeypatch)
    assert ours == theirs


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_layouts_are_split_as_pandas_splits_them(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / name
    path.write_bytes(LAYOUTS[name])
    ours, theirs = _both(path, monkeypatch)
    assert ours == theirs


def test_the_files_are_there_and_most_take_the_quick_way() -> None:
    quick = [p for p in FILES if b'"' not in p.read_bytes() and b"\x00" not in p.read_bytes()]
    assert len(FILES) >= 50 and len(quick) >= 40


def test_a_small_roster_without_quotes_is_read_without_pandas(tmp_path: Path) -> None:
    import subprocess

    roster = tmp_path / "r.csv"
    roster.write_text("givenName,surname,userPrincipalName\nAnn,Lee,ann@contoso.com\n", encoding="utf-8")
    quoted = tmp_path / "q.csv"
    quoted.write_text('givenName,surname,userPrincipalName\n"Ann",Lee,ann@contoso.com\n', encoding="utf-8")
    code = ("import sys; from provisioning.roster.reader import load_roster; "
            "r = load_roster(sys.argv[1]); print(len(r.rows), 'pandas' in sys.modules)")
    large = tmp_path / "large.csv"  # past QUICK_SPLIT_BYTES pandas' faster parser is worth its import
    rows = reader.QUICK_SPLIT_BYTES // 30 + 1  # 31 bytes a line at least
    large.write_text("givenName,surname,userPrincipalName\n" + "".join(
        f"Ann{i},Lee,ann{i:07d}@contoso.com\n" for i in range(rows)), encoding="utf-8")
    assert large.stat().st_size > reader.QUICK_SPLIT_BYTES
    for path, n, pandas in ((roster, 1, False), (quoted, 1, True), (large, rows, True)):
        done = subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == [str(n), str(pandas)]
