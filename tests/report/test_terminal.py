"""What `validate` and `run` print: a summary by error code first, at most 40 issue lines, then where the full
list is; tables cut to the terminal width (COLUMNS) with an ellipsis; --all, --json and -q."""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

import provision
from provisioning.exitcodes import ExitStatus
from provisioning.report.terminal import table

E = "\u2026"


def _big(tmp_path: Path) -> Path:
    lines = ["givenName,surname,userPrincipalName,displayName"]
    lines += [f"Ann{i},Lee,ann{i}@@contoso.com,Ann Lee {i}" for i in range(44)]
    lines += [",,x@contoso.com,", "Bo,Ek,bo@contoso.com,Bo Ek"]
    path = tmp_path / "big.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _validate(*argv: Any) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = provision.main(["validate", *map(str, argv)], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_validate_prints_the_summary_then_40_issues_then_where_the_rest_is(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    roster = _big(tmp_path)
    code, out, err = _validate(roster, "--out", tmp_path / "i.csv")
    assert code == ExitStatus.ROWS_FAILED
    lines = out.splitlines()
    assert lines[:9] == [
        "Issues by code:",
        "Code                  Severity  Count  Rows              Example",
        "--------------------  --------  -----  ----------------  -----------------------",
        f"upn-at-sign           error        44  2, 3, 4, 5, 6, {E}  userPrincipalName 'ann{E}",
        f"display-name-missing  error         1  46                displayName is empty a{E}",
        "",
        "Row  Column             Severity  Code         Message",
        "---  -----------------  --------  -----------  ---------------------------------",
        f"2    userPrincipalName  error     upn-at-sign  userPrincipalName 'ann0@@contoso{E}",
    ]
    issue_lines = lines[8:48]
    assert all(line[:1].isdigit() for line in issue_lines) and issue_lines[-1].startswith("41   userPrincipalName")
    footer = lines[48:]  # a sentence, wrapped between words (the path is never broken)
    assert " ".join(footer) == (f"{E} and 5 more issues not shown: the full list is in {tmp_path / 'i.csv'} "
                                "(--all prints every issue here)")
    assert all(len(line) <= 80 for line in lines if str(tmp_path) not in line)
    assert err == (f"{roster}: 46 rows (csv, header on row 1); 1 valid, 45 with errors; 45 errors, 0 warnings\n"
                   f"issues written to {tmp_path / 'i.csv'}\n")


def test_validate_all_prints_every_issue_and_json_prints_them_for_scripts(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    roster = _big(tmp_path)
    code, out, _ = _validate(roster, "--out", tmp_path / "i.csv", "--all")
    assert code == ExitStatus.ROWS_FAILED
    lines = out.splitlines()
    assert len(lines) == 5 + 1 + 2 + 45 + 1 and lines[-1] == f"every issue is also in {tmp_path / 'i.csv'}"
    assert lines[-2] == ("46   displayName        error     display-name-missing  displayName is empty and "
                         "givenName/surname are too; fill in displayName or givenName and surname")
    code, out, err = _validate(roster, "--out", tmp_path / "i.csv", "--json")
    doc = json.loads(out)
    assert {k: v for k, v in doc.items() if k != "issues"} == {
        "roster": str(roster), "sheet": None, "rows": 46, "valid_rows": 1, "rows_with_errors": 45, "errors": 45,
        "warnings": 0, "issues_csv": str(tmp_path / "i.csv"), "by_code": {"upn-at-sign": 44, "display-name-missing": 1}}
    assert len(doc["issues"]) == 45 and doc["issues"][0] == {
        "row": 2, "column": "userPrincipalName", "severity": "error", "code": "upn-at-sign",
        "message": "userPrincipalName 'ann0@@contoso.com': needs exactly one '@' between the user name and the "
                   "domain, like ann.lee@contoso.com; fix the value"}
    assert err.startswith(f"{roster}: 46 rows")


def test_a_table_cuts_the_widest_cells_with_an_ellipsis_never_wraps() -> None:
    lines = table(("Row", "Message"), [("2", "x" * 50), ("10", "short")], 20)
    assert lines == ["Row  Message", "---  ---------------", f"2    {'x' * 14}{E}", "10   short"]
    assert table(("A", "B"), [("a\nb", "c")], None) == ["A    B", "---  -", "a b  c"]


BAD = "givenName,surname,userPrincipalName,displayName\n,,x@contoso.com,\nBo,,bo@@contoso.com,Bo\n"


def test_run_says_why_rows_were_rejected(sandbox: Any, cli: Any, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    (tmp_path / "bad.csv").write_text(BAD, encoding="utf-8")
    code, out, err = cli(sandbox, "run", "bad.csv", "--out", "r", "--no-progress")
    assert code == ExitStatus.ROWS_FAILED
    assert out == (
        "created 0, skipped 0, failed 0, invalid 2\n"
        "\n"
        "Why 2 rows were rejected, by code:\n"
        "Code                  Severity  Count  Rows  Example\n"
        "--------------------  --------  -----  ----  -------------------------------------------------------\n"
        f"display-name-missing  error         1  2     displayName is empty and givenName/surname are too; fi{E}\n"
        f"upn-at-sign           error         1  3     userPrincipalName 'bo@@contoso.com': needs exactly one{E}\n"
        "\n"
        "Row  userPrincipalName  Code                  Message\n"
        "---  -----------------  --------------------  ------------------------------------------------------\n"
        f"2    x@contoso.com      display-name-missing  displayName is empty and givenName/surname are too; f{E}\n"
        f"3    bo@@contoso.com    upn-at-sign           userPrincipalName 'bo@@contoso.com': needs exactly on{E}\n"
        "every issue is also in the Failed and Invalid sheets of r/results.xlsx\n"
        "\n"
        "run folder: r\n"
        "results:    r/results.xlsx\n")


def test_quiet_run_prints_the_folder_and_the_counts_on_one_line(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text(BAD, encoding="utf-8")
    code, out, err = cli(sandbox, "-q", "run", "bad.csv", "--out", "r", "--no-progress")
    assert (code, out, err) == (ExitStatus.ROWS_FAILED, "run folder: r; created 0, skipped 0, failed 0, invalid 2\n",
                                "")


def test_json_run_prints_summary_json_on_stdout(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text(BAD, encoding="utf-8")
    code, out, err = cli(sandbox, "run", "bad.csv", "--out", "r", "--no-progress", "--json")
    assert code == ExitStatus.ROWS_FAILED
    assert json.loads(out) == json.loads((tmp_path / "r" / "summary.json").read_text(encoding="utf-8"))
    assert "Why 2 rows were rejected, by code:\n" in err and "run folder: r\n" in err  # the human lines
    code, out, err = cli(sandbox, "-q", "run", "bad.csv", "--out", "r2", "--no-progress", "--json")
    assert json.loads(out)["counts"] == {"created": 0, "skipped": 0, "failed": 0, "invalid": 2} and err == ""
