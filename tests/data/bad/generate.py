"""Write the malformed and hostile rosters of tests/data/bad/ (small files only; the huge ones are made at test
time by tests/roster/test_bad_rosters.py). Run: ``python tests/data/bad/generate.py``.

``encrypted.xlsx`` is not a real password-protected workbook (msoffcrypto-tool is not available offline): it is an
OLE/CFB container (magic D0CF11E0) named .xlsx, which is exactly what Excel writes for an encrypted workbook and
what a legacy .xls looks like, so the reader must refuse it the same way.
"""
from __future__ import annotations

import io
import json
import logging
import re
import zipfile
from pathlib import Path

from openpyxl import Workbook

HERE = Path(__file__).resolve().parent
log = logging.getLogger(__name__)
HEADER = "givenName,surname,userPrincipalName\n"
CFB = bytes.fromhex("D0CF11E0A1B11AE1") + b"\x00" * 16 + b"\x3e\x00\x03\x00\xfe\xff\x09\x00" + b"\x00" * 476


def _xlsx(rows: list[list[object]], *, merge: str | None = None, title: str = "Sheet1") -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = title
    for r in rows:
        ws.append(r)
    if merge:
        ws.merge_cells(merge)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _patched(data: bytes, cells: dict[str, str]) -> bytes:
    """``data`` (an xlsx) with the XML of some cells of its first sheet replaced: ``{"D6": "<c r=...>...</c>"}``.

    openpyxl cannot write a formula together with its saved value (Excel's own files have both), nor cells without
    their ``r="A1"`` reference; ``cells`` may hold ``"*"``: ``"strip-refs"`` to drop every ``r`` of the sheet.
    """
    src, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            body = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                text = body.decode()
                for ref, xml in cells.items():
                    if ref == "*":
                        text = re.sub(r'(<(?:c|row)\b[^>]*?) r="[A-Z]*\d+"', r"\1", text)
                        continue
                    text, n = re.subn(rf'<c r="{ref}"[^>]*?(?:/>|>.*?</c>)', xml, text, count=1)
                    assert n == 1, ref
                body = text.encode()
            dst.writestr(item, body)
    return out.getvalue()


def _formulas_errors() -> bytes:
    """Rows 2-3: formulas without a saved value (openpyxl writes none); 4-5: error values; 6: an error with its
    formula; 7-8: formulas with saved values ("Engineer", and the empty text); 9: an error in an unknown column;
    10-11: rows whose only content is an error value / an uncalculated formula."""
    rows: list[list[object]] = [["givenName", "surname", "userPrincipalName", "jobTitle", "Notes"],
                                ["Ann", "Lee", "ann@contoso.com", "=1/0"],
                                ["Bo", "Ek", "bo@contoso.com", "=NA()"],
                                ["Cy", "Do", "cy@contoso.com", "#N/A"],
                                ["Di", "Fo", "di@contoso.com", "#DIV/0!"],
                                ["Ed", "Gu", "ed@contoso.com", "x"],
                                ["Fay", "Ho", "fay@contoso.com", "x"],
                                ["Gil", "Iv", "gil@contoso.com", "x"],
                                ["Hal", "Jo", "hal@contoso.com", "Tester", "#REF!"],
                                [None, None, None, "#N/A"],
                                [None, None, None, '=A1&"x"']]
    return _patched(_xlsx(rows), {
        "D6": '<c r="D6" t="e"><f>1/0</f><v>#DIV/0!</v></c>',
        "D7": '<c r="D7" t="str"><f>"Engi"&amp;"neer"</f><v>Engineer</v></c>',
        "D8": '<c r="D8" t="str"><f>IF(TRUE,"","")</f><v></v></c>'})


def files() -> dict[str, bytes]:
    """File name -> bytes."""
    import datetime as dt

    good = HEADER + "Ann,Lee,ann@contoso.com\n"
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/worksheets/sheet1.xml", "<a>" + "0" * 50_000_000 + "</a>")
    return {
        "empty.csv": b"",
        "blank-lines.csv": b"\n\n  \n",
        "header-only.csv": HEADER.encode(),
        "header-blanks.csv": b" , ,\nAnn,Lee,ann@contoso.com\n",
        "binary.csv": bytes(range(256)) * 8,
        "xlsx-named.csv": _xlsx([["givenName", "surname", "userPrincipalName"], ["Ann", "Lee", "ann@contoso.com"]]),
        "csv-named.xlsx": good.encode(),
        "encrypted.xlsx": CFB,
        "legacy.xls": CFB,
        "utf16-no-bom.csv": good.encode("utf-16-le"),
        "mixed-line-endings.csv": (HEADER.rstrip("\n") + "\r\nAnn,Lee,ann@contoso.com\rBo,Ek,bo@contoso.com\n"
                                   "Cy,Do,cy@contoso.com\r\n").encode(),
        "duplicate-headers.csv": b"givenName,surname,surname,userPrincipalName\nAnn,Lee,Lee,ann@contoso.com\n",
        "formulas-errors.xlsx": _formulas_errors(),
        "header-error.xlsx": _xlsx([["givenName", "surname", "userPrincipalName", "#REF!"],
                                    ["Ann", "Lee", "ann@contoso.com", "Tester"]]),
        "header-formula.xlsx": _xlsx([["givenName", "surname", "userPrincipalName", '="job"&"Title"'],
                                      ["Ann", "Lee", "ann@contoso.com", "Tester"]]),
        # no r="A1" references (allowed, some writers omit them): the cells are placed by counting
        "no-cell-refs.xlsx": _patched(_xlsx([["givenName", "surname", "userPrincipalName", "jobTitle"],
                                             ["Ann", "Lee", "ann@contoso.com", "=1/0"],
                                             ["Bo", "Ek", "bo@contoso.com", "#VALUE!"],
                                             ["Cy", "Do", "cy@contoso.com", "Tester"]]), {"*": "strip-refs"}),
        # the table starts at B3: rows and columns are numbered from A1 all the same
        "offset-table.xlsx": _xlsx([[], [], [None, "givenName", "surname", "userPrincipalName", "jobTitle"],
                                    [None, "Ann", "Lee", "ann@contoso.com", "Tester"],
                                    [None, "Bo", "Ek", "bo@contoso.com", "#NAME?"]]),
        "dates-numbers.xlsx": _xlsx([["givenName", "surname", "userPrincipalName", "employeeId", "jobTitle"],
                                     [dt.date(2024, 1, 2), 42, "ann@contoso.com", 123.0, 1.5]]),
        "merged-header.xlsx": _xlsx([["Users", None, None], ["givenName", "surname", "userPrincipalName"],
                                     ["Ann", "Lee", "ann@contoso.com"]], merge="A1:C1"),
        "pivot-like.xlsx": _xlsx([["Sum of seats", "Region"], ["North", 4], ["South", 7]], title="Pivot"),
        "..%2f..%2fetc%2fpasswd.csv": (HEADER + "Ann,Lee,../../x\n").encode(),
        "path-cells.csv": (HEADER + "../../etc,..\\..\\x,ann@contoso.com\n").encode(),
        "all-invalid.csv": (HEADER + "=cmd,Lee,a@@b\n,,\n+x,-y,@z\n").encode(),
        "nul-bytes.csv": (HEADER + "An\x00n,Lee,ann@contoso.com\n").encode(),
        "long-header.csv": ("x" * 100_000 + ",givenName,surname,userPrincipalName\n1,Ann,Lee,ann@contoso.com\n"
                            ).encode(),
        "control-chars.csv": (HEADER + "A\x07nn,L\x1bee,ann@contoso.com\n").encode(),
        "zip-bomb.xlsx": bomb.getvalue(),
        "not-a-zip.xlsx": b"PK\x03\x04" + b"\x00" * 100,
        "roster.ods": b"PK\x03\x04" + b"\x00" * 26 + b"mimetypeapplication/vnd.oasis.opendocument.spreadsheet",
        "json.csv": json.dumps([{"givenName": "Ann", "surname": "Lee"}]).encode(),
        "html.csv": b"<html><body><table><tr><td>givenName</td></tr></table></body></html>\n",
        "only-delimiters.csv": b",,,\n,,,\n",
        "ragged-rows.csv": (HEADER + "Ann,Lee,ann@contoso.com,extra,more\n").encode(),
        "unclosed-quote.csv": (HEADER + 'Ann,"Lee,ann@contoso.com\nBo,Ek,bo@contoso.com\n').encode(),
        "no-known-header.csv": b"a,b,c\n1,2,3\n",
        "empty.xlsx": _xlsx([]),
        "cp1252-tail.csv": (HEADER + "".join(f"Ann,Lee,ann{i}@contoso.com\n" for i in range(4000))
                            + "Jos\xe9,N\xfa\xf1ez,jose@contoso.com\n").encode("latin-1"),
    }


def main() -> None:
    """Write every file; report the total size."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    total = 0
    for name, data in files().items():
        (HERE / name).write_bytes(data)
        total += len(data)
    log.info("wrote %d files, %d bytes", len(files()), total)


if __name__ == "__main__":
    main()
