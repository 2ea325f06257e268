"""No file of the user's is written over: validate --out, template, export-users and run --out refuse an existing
file that is not their own output (--force allows it), and never write over the roster, not even with --force."""
from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest
from openpyxl import load_workbook

import provision
from provisioning.exitcodes import ExitStatus

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "roster.csv"
ENV_NAMES = ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH",
             "AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_AUTHORITY_HOST", "GRAPH_ENDPOINT", "PROVISION_CLOUD",
             "PROVISION_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def run_cli(*argv: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = provision.main([str(a) for a in argv], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def roster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return Path(shutil.copy(SAMPLE, tmp_path / "people.csv"))


@pytest.fixture
def tenant(sandbox, monkeypatch):
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    for key, value in sandbox.env().items():
        monkeypatch.setenv(key, value)
    return sandbox


@pytest.mark.parametrize("spelling", ["people.csv", "./people.csv", "{tmp}/people.csv", "link.csv"])
def test_validate_never_writes_the_issues_over_the_roster(roster, tmp_path, spelling):
    os.link(roster, tmp_path / "link.csv")
    before = roster.read_bytes()
    for force in ((), ("--force",)):
        code, out, err = run_cli("validate", roster.name, "--out", spelling.format(tmp=tmp_path), *force)
        assert (code, out) == (ExitStatus.USAGE, "")
        assert err == (f"error: {Path(spelling.format(tmp=tmp_path))} is the roster; it is never written over, "
                       "not even with --force: give another name\n")
    assert roster.read_bytes() == before


def test_validate_replaces_its_own_issues_csv_but_no_other_file(roster, tmp_path):
    assert run_cli("validate", roster.name)[0] == ExitStatus.OK
    assert run_cli("validate", roster.name)[0] == ExitStatus.OK  # its own people.issues.csv: replaced
    notes = tmp_path / "notes.csv"
    notes.write_text("my,own\nnotes,here\n")
    code, out, err = run_cli("validate", roster.name, "--out", "notes.csv")
    assert (code, out, err) == (ExitStatus.USAGE, "", "error: notes.csv exists; give --force to replace it, or "
                                                      "another name\n")
    assert notes.read_text() == "my,own\nnotes,here\n"
    assert run_cli("validate", roster.name, "--out", "notes.csv", "--force")[0] == ExitStatus.OK
    assert notes.read_text(encoding="utf-8-sig").startswith("file,row,column,severity,code,message")


def test_validate_that_cannot_write_says_where_and_to_give_out(roster):
    if not Path("/sys").is_dir() or os.access("/sys", os.W_OK) and _writable("/sys"):
        pytest.skip("needs a folder nobody can write to (/sys)")
    code, out, err = run_cli("validate", roster.name, "--out", "/sys/people.issues.csv")
    assert code == ExitStatus.USAGE
    assert err.startswith("error: cannot write the issues CSV /sys/people.issues.csv: ")
    assert err.endswith("; give --out with a file in a folder you can write to\n") and err.count("\n") == 1


def _writable(folder: str) -> bool:
    try:
        Path(folder, ".probe").mkdir()
    except OSError:
        return False
    Path(folder, ".probe").rmdir()
    return True


def test_template_does_not_replace_a_filled_in_roster(roster, tmp_path):
    assert run_cli("template", "people.xlsx")[0] == ExitStatus.OK
    assert run_cli("template", "people.xlsx")[0] == ExitStatus.OK  # a blank template: replaced
    wb = load_workbook("people.xlsx")
    for i in range(50):
        wb["Users"].append([f"Given{i}", f"Sur{i}"])
    wb.save("people.xlsx")
    before = (tmp_path / "people.xlsx").read_bytes()
    code, out, err = run_cli("template", "people.xlsx")
    assert (code, out, err) == (ExitStatus.USAGE, "", "error: people.xlsx exists; give --force to replace it, or "
                                                      "another name\n")
    assert (tmp_path / "people.xlsx").read_bytes() == before
    code, _, err = run_cli("template", "people.csv", "--entra")
    assert (code, err) == (ExitStatus.USAGE, "error: people.csv exists; give --force to replace it, or another "
                                             "name\n")
    assert roster.read_bytes() == SAMPLE.read_bytes()
    assert run_cli("template", "people.xlsx", "--force")[0] == ExitStatus.OK
    assert load_workbook("people.xlsx")["Users"].max_row == 1


def test_export_users_does_not_replace_another_file(roster, tenant, tmp_path):
    code, out, err = run_cli("export-users", roster.name)
    assert (code, out, err) == (ExitStatus.USAGE, "", "error: people.csv exists; give --force to replace it, or "
                                                      "another name\n")
    assert roster.read_bytes() == SAMPLE.read_bytes()
    assert run_cli("export-users", "users.csv")[0] == ExitStatus.OK
    assert run_cli("export-users", "users.csv")[0] == ExitStatus.OK  # its own earlier export: replaced
    assert run_cli("export-users", roster.name, "--force")[0] == ExitStatus.OK


def test_run_out_refuses_a_folder_holding_other_results(roster, tenant, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.csv").write_text("somebody else's\n")
    code, _, err = run_cli("run", roster.name, "--dry-run", "--out", out)
    assert code == ExitStatus.USAGE
    assert err == f"error: {out / 'results.csv'} exists; give --force to replace it, or another --out\n"
    assert (out / "results.csv").read_text() == "somebody else's\n" and not (out / "journal.sqlite").exists()
    assert run_cli("run", roster.name, "--dry-run", "--out", out, "--force")[0] == ExitStatus.OK
    assert (out / "results.csv").read_text(encoding="utf-8-sig").startswith("row,")


def test_run_out_never_writes_over_the_roster(tenant, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    roster = Path(shutil.copy(SAMPLE, tmp_path / "out" / "results.csv"))
    code, _, err = run_cli("run", roster, "--dry-run", "--out", tmp_path / "out", "--force")
    assert code == ExitStatus.USAGE
    assert err == (f"error: {roster} is the roster; a run never writes over it, not even with --force: choose "
                   "another --out\n")
    assert roster.read_bytes() == SAMPLE.read_bytes()


def test_run_in_a_folder_that_cannot_be_written_names_out(roster, tenant, monkeypatch):
    if not Path("/sys").is_dir() or _writable("/sys"):
        pytest.skip("needs a folder nobody can write to (/sys)")
    monkeypatch.chdir("/sys")
    code, out, err = run_cli("run", roster, "--dry-run")
    assert code == ExitStatus.USAGE
    assert err.startswith("error: cannot create the run folder runs/") and err.count("\n") == 1
    assert err.endswith("; give --out DIR for a folder you can write to\n")
