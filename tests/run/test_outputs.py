"""Run-folder outputs: results.csv, summary.json, passwords.csv (0600), run.log redaction, folder naming."""
from __future__ import annotations

import csv
import errno
import json
import logging
import stat
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from provisioning.errors import RunFolderError
from provisioning.models import Issue, Severity
from provisioning.report.files import write_results_csv, write_summary_json
from provisioning.report.run_workbook import report_rows
from provisioning.store.folder import existing_run_folder, new_run_folder, run_folder_name
from provisioning.store.journal import Journal, Outcome, RowSeed, RowState
from provisioning.store.secrets import PasswordFile, SecretFilter, close_run_log, open_run_log


def test_results_csv_statuses_and_formula_safety(tmp_path: Path) -> None:
    with Journal.create(tmp_path, {}) as j:
        j.add_rows([
            RowSeed(2, "a@contoso.com", "create", RowState.PENDING, display_name="=HYPERLINK(\"x\")"),
            RowSeed(3, "b@contoso.com", "skip", RowState.SKIPPED, object_id="id-b"),
            RowSeed(4, "", "invalid", RowState.INVALID,
                    issues=(Issue(4, "UPN", "upn.missing", Severity.ERROR, "required"),
                            Issue(4, "Mail", "mail.odd", Severity.WARNING, "odd"))),
            RowSeed(5, "c@contoso.com", "create", RowState.PENDING),
            RowSeed(6, "d@contoso.com", "create", RowState.PENDING),
        ])
        j.mark_sending([2, 5, 6])
        j.record(2, Outcome(RowState.CREATED, "id-a", 201, request_id="r-a"))
        j.record(5, Outcome(RowState.FAILED, "", 400, "Request_BadRequest", "-weak password", "r-c"))
        write_results_csv(tmp_path / "results.csv", report_rows(j.snapshot()))
    with open(tmp_path / "results.csv", encoding="utf-8-sig", newline="") as fh:
        lines = list(csv.DictReader(fh))
    got = {int(r["row"]): r for r in lines}
    assert [r["status"] for r in lines] == ["created", "skipped", "invalid", "failed", "unknown"]
    assert got[2]["displayName"] == "'=HYPERLINK(\"x\")"
    assert got[2]["objectId"] == "id-a" and got[2]["requestId"] == "r-a" and got[2]["attempts"] == "1"
    assert got[4]["errorCode"] == "upn.missing" and got[4]["message"] == "required"
    assert got[5]["message"] == "'-weak password" and got[5]["httpStatus"] == "400"


def test_planned_rows_read_would(tmp_path: Path) -> None:
    with Journal.create(tmp_path, {}) as j:
        j.add_rows([RowSeed(2, "a@x", "create", RowState.PLANNED), RowSeed(3, "b@x", "skip", RowState.PLANNED)])
        write_results_csv(tmp_path / "results.csv", report_rows(j.snapshot()))
    text = (tmp_path / "results.csv").read_text(encoding="utf-8-sig")
    assert "would create" in text and "would skip" in text


def test_summary_json(tmp_path: Path) -> None:
    write_summary_json(tmp_path / "summary.json", {"counts": {"created": 1}, "duration_s": 1.5})
    assert json.loads((tmp_path / "summary.json").read_text())["counts"] == {"created": 1}


def test_password_file_is_private_and_finalized(tmp_path: Path) -> None:
    path = tmp_path / "passwords.csv"
    pf = PasswordFile(path)
    pf.add([(2, "a@x", "Pw-one-1A"), (3, "b@x", "Pw-two-2B")])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    pf.add([(3, "b@x", "Pw-three-3C")])
    assert pf.finalize([3]) == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().splitlines() == ["row,userPrincipalName,password", "3,b@x,Pw-three-3C"]
    again = PasswordFile(path)
    assert again.load() == {3: ("b@x", "Pw-three-3C")}
    again.add([(4, "c@x", "Pw-four-4D")])
    assert again.finalize([3, 4]) == 2
    assert PasswordFile(path).finalize([]) == 0 and not path.exists()


def test_password_file_already_as_finalize_would_write_it_is_left_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "passwords.csv"
    pf = PasswordFile(path)
    pf.add([(2, "a@x", "Pw-one-1A"), (3, "=b@x", "Pw-two-2B")])
    pf.add([(5, "c@x", "Pw-three-3C")])
    before = path.read_bytes()
    inode = path.stat().st_ino
    assert pf.finalize([5, 3, 2]) == 3  # every user created, none sent twice: no rewrite
    assert path.stat().st_ino == inode and path.read_bytes() == before
    assert before.decode().splitlines() == ["row,userPrincipalName,password", "2,a@x,Pw-one-1A",
                                            "3,'=b@x,Pw-two-2B", "5,c@x,Pw-three-3C"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("case", ["out of order", "one not created", "file removed", "resumed"])
def test_password_file_not_as_finalize_would_write_it_is_rewritten(tmp_path: Path, case: str) -> None:
    path = tmp_path / "passwords.csv"
    if case == "resumed":  # a file this session did not create: what it holds is not only its own lines
        PasswordFile(path).add([(2, "a@x", "Pw-one-1A")])
        PasswordFile(path).load()
    pf = PasswordFile(path)
    pf.add([(3, "b@x", "Pw-two-2B")] if case != "resumed" else [(4, "c@x", "Pw-four-4D")])
    pf.add([(2, "a@x", "Pw-one-1A")] if case == "out of order" else [(5, "d@x", "Pw-five-5E")])
    if case == "file removed":
        path.unlink()
    inode = path.stat().st_ino if path.exists() else None
    created = {"out of order": [2, 3], "one not created": [3], "file removed": [3, 5], "resumed": [4, 5]}[case]
    assert pf.finalize(created) == len(created)
    expected = {"out of order": ["2,a@x,Pw-one-1A", "3,b@x,Pw-two-2B"], "one not created": ["3,b@x,Pw-two-2B"],
                "file removed": ["3,b@x,Pw-two-2B", "5,d@x,Pw-five-5E"],
                "resumed": ["4,c@x,Pw-four-4D", "5,d@x,Pw-five-5E"]}[case]
    assert path.read_text().splitlines() == ["row,userPrincipalName,password", *expected]
    assert path.stat().st_ino != inode and stat.S_IMODE(path.stat().st_mode) == 0o600


_CUT_SHORT = """
import resource, signal, sys
from pathlib import Path
from provisioning.store.secrets import PasswordFile
path = Path(sys.argv[1])
pf = PasswordFile(path)
pf.add([(2, "a@x", "Pw-one-1A")])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (path.stat().st_size + 10, resource.RLIM_INFINITY))
try:
    pf.add([(3, "b@x", "Pw-two-2B-" + "x" * 40)])
except OSError as exc:
    print("refused", exc.errno)
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
print("kept", pf.finalize([2]))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_password_file_with_a_line_cut_short_by_a_full_disk_is_rewritten(tmp_path: Path) -> None:
    # a full disk (here a file size limit) cut row 3's line short and row 3 was never sent: finalize must not keep
    # the file as it is because the lines it knows of are in order
    path = tmp_path / "passwords.csv"
    done = subprocess.run([sys.executable, "-c", _CUT_SHORT, str(path)], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2], timeout=60)
    assert done.stdout.splitlines() == [f"refused {errno.EFBIG}", "kept 1"], done.stderr
    assert path.read_text().splitlines() == ["row,userPrincipalName,password", "2,a@x,Pw-one-1A"]


def test_password_file_line_cut_short_by_a_full_disk_does_not_swallow_the_next(tmp_path: Path) -> None:
    path = tmp_path / "passwords.csv"
    PasswordFile(path).add([(2, "a@x", "Pw-one-1A")])
    with open(path, "ab") as fh:
        fh.write(b"3,b@x,Pw-t")  # the disk filled up in the middle of row 3's line: row 3 was never sent
    resumed = PasswordFile(path)
    resumed.load()
    resumed.add([(4, "c@x", "Pw-four-4D")])
    assert PasswordFile(path).load()[4] == ("c@x", "Pw-four-4D")


def test_password_file_written_to_a_removed_file_is_noticed(tmp_path: Path) -> None:
    from provisioning.errors import RunFolderLost

    folder = tmp_path / "run"
    folder.mkdir()
    pf = PasswordFile(folder / "passwords.csv")
    pf.add([(2, "a@x", "Pw-one-1A")])
    pf.check_intact()
    (folder / "passwords.csv").unlink()
    pf.add([(3, "b@x", "Pw-two-2B")])  # goes to the removed file: no error from the operating system
    with pytest.raises(RunFolderLost, match=r"^.*/run: passwords\.csv was removed from the run folder$"):
        pf.check_intact()


def test_password_file_refuses_world_readable(tmp_path: Path) -> None:
    path = tmp_path / "passwords.csv"
    path.write_text("row,userPrincipalName,password\n")
    path.chmod(0o644)
    with pytest.raises(PermissionError):
        PasswordFile(path).add([(2, "a@x", "pw-pw-pw")])


def test_secret_filter_redacts(tmp_path: Path) -> None:
    f = SecretFilter(["client-secret-value"])
    f.add_secrets([f"Generated#{i:05d}xY" for i in range(5000)])
    text = f.redact('body {"password": "Lit3ral!", "x": 1} secret=abc Authorization: Bearer eyJ.a.b '
                    'got Generated#01234xY and client-secret-value end')
    assert "Lit3ral" not in text and "abc" not in text and "eyJ" not in text
    assert "Generated#01234xY" not in text and "client-secret-value" not in text
    assert text.endswith("end")


def test_run_log_handler_redacts(tmp_path: Path) -> None:
    f = SecretFilter(["TopSecretValue1"])
    handler = open_run_log(tmp_path / "run.log", f)
    try:
        logging.getLogger("provisioning.test").info("token %s and password=hunter2hunter2", "TopSecretValue1")
        logging.getLogger("unrelated").warning("not for run.log")
    finally:
        close_run_log(handler)
    text = (tmp_path / "run.log").read_text()
    assert "token ***" in text and "hunter2" not in text and "TopSecretValue1" not in text
    assert "not for run.log" not in text


def test_run_folder_naming(tmp_path: Path) -> None:
    assert run_folder_name(Path("HR export (May).xlsx"), datetime(2025, 5, 1, 9, 8, 7)) == \
        "20250501-090807-HR-export-May"
    now = datetime(2025, 5, 1, 9, 8, 7)
    a = new_run_folder(Path("r.csv"), runs_dir=tmp_path, now=now)
    b = new_run_folder(Path("r.csv"), runs_dir=tmp_path, now=now)
    assert a.path.name == "20250501-090807-r" and b.path.name == "20250501-090807-r-2"
    out = new_run_folder(Path("r.csv"), tmp_path / "mine")
    assert out.path.is_dir()
    Journal.create(out.path, {}).close()
    with pytest.raises(RunFolderError, match="resume"):
        new_run_folder(Path("r.csv"), tmp_path / "mine")
    assert existing_run_folder(out.path).journal.is_file()
    with pytest.raises(RunFolderError):
        existing_run_folder(tmp_path)
