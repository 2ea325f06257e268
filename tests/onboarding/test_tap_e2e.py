"""``run --credential tap`` and ``--deliver managers`` end to end against the sandbox: one pass per created user,
in credentials.csv only (owner-only), never in any other output; each manager gets one mail with exactly their
new reports; a disabled policy or a lifetime outside its bounds stops the run before any write."""
from __future__ import annotations

import csv
import html
import os
import sqlite3
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import provisioning.validation.engine as engine
from provisioning.exitcodes import ExitStatus
from tests.followups.conftest import precreate, read_results, write

HEADER = "givenName,surname,displayName,userPrincipalName,password,manager\n"
ROWS = [
    "Ann,Boss,Ann Boss,ann.boss@contoso.com,,",  # row 2: a manager created by this run, no manager herself
    "Bo,One,Bo One,bo.one@contoso.com,,ann.boss@contoso.com",
    "Cy,Two,Cy Two,cy.two@contoso.com,,ann.boss@contoso.com",
    "Di,Three,Di Three,di.three@contoso.com,,old.boss@contoso.com",  # row 5: an existing manager
    "Ed,Four,Ed Four,ed.four@contoso.com,,",  # row 6: nobody to deliver to
]
#: The reports each manager's mail must list, exactly.
REPORTS = {"ann.boss@contoso.com": {"bo.one@contoso.com", "cy.two@contoso.com"},
           "old.boss@contoso.com": {"di.three@contoso.com"}}
CREATED = {"ann.boss@contoso.com", "bo.one@contoso.com", "cy.two@contoso.com", "di.three@contoso.com",
           "ed.four@contoso.com"}


@pytest.fixture
def generated(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every password the validation generates (still random), to look for them in the outputs."""
    seen: list[str] = []
    real = engine.generate_passwords

    def spy(count: int, length: int = 16) -> list[str]:
        values = real(count, length)
        seen.extend(values)
        return values

    monkeypatch.setattr(engine, "generate_passwords", spy)
    yield seen


def passes(run: Path) -> dict[str, dict[str, str]]:
    with open(run / "credentials.csv", encoding="utf-8", newline="") as fh:
        return {r["userPrincipalName"].lower(): r for r in csv.DictReader(fh)}


def deliveries(sb: Any) -> dict[str, list[dict[str, Any]]]:
    """The delivery mails by recipient (the only mails with a pass in them)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for m in sb.mail():
        if str(m["subject"]).startswith("Sign-in details"):
            (to,) = [r.lower() for r in m["toRecipients"]]
            out.setdefault(to, []).append(m)
    return out


def assert_nowhere(run: Path, secrets: list[str], texts: list[str], *, allowed: set[str]) -> None:
    """No secret in any file of the run folder but ``allowed``, nor in ``texts``."""
    assert secrets
    for path in sorted(p for p in run.rglob("*") if p.is_file() and p.name not in allowed):
        data = path.read_bytes()
        if zipfile.is_zipfile(path):  # results.xlsx: its sheets are compressed
            with zipfile.ZipFile(path) as z:
                data = b"".join(z.read(n) for n in z.namelist())
        for s in secrets:
            assert s.encode() not in data, f"{s!r} found in {path.name}"
    for text in texts:
        for s in secrets:
            assert s not in text


def test_tap_run_delivers_to_managers_and_keeps_passes_out_of_every_other_output(
        sandbox: Any, cli: Any, tmp_path: Path, generated: list[str]) -> None:
    precreate(sandbox, "old.boss@contoso.com", "Old Boss")
    precreate(sandbox, "hr@contoso.com", "HR Sender")
    roster = write(tmp_path / "new.csv", ROWS, header=HEADER)
    run = tmp_path / "run"
    code, out, err = cli(sandbox, "run", roster, "--out", run, "--no-progress", "--credential", "tap",
                         "--tap-lifetime", "120", "--tap-usable-once", "--deliver", "managers",
                         "--deliver-from", "hr@contoso.com", "--notify", "admin@contoso.com",
                         "--notify-from", "hr@contoso.com")
    assert code == ExitStatus.OK, out + err
    assert "delivered the credentials of 3 users to 2 managers\n" in out
    assert f"not delivered: 2 users have no manager; their credentials are only in {run / 'credentials.csv'}\n" in out
    stats = sandbox.stats()
    assert stats["taps_issued"] == len(CREATED) and stats.get("taps_replaced", 0) == 0
    found = passes(run)
    assert set(found) == CREATED
    for upn, rec in found.items():
        assert sandbox.tap_matches(upn, rec["temporaryAccessPass"])
        assert rec["startDateTime"] and rec["endDateTime"] > rec["startDateTime"]
    assert stat.S_IMODE(os.stat(run / "credentials.csv").st_mode) == 0o600
    assert not (run / "passwords.csv").exists()

    mails = deliveries(sandbox)
    assert set(mails) == set(REPORTS) and all(len(m) == 1 for m in mails.values())
    for manager, (mail,) in mails.items():
        assert mail["from"] == "hr@contoso.com" and mail["saveToSentItems"] is False
        content = html.unescape(str(mail["body"]["content"]))
        for upn in CREATED:
            assert (upn in content) == (upn in REPORTS[manager]), (manager, upn)
            assert (found[upn]["temporaryAccessPass"] in content) == (upn in REPORTS[manager])
    results = {r["userPrincipalName"]: r for r in read_results(run).values()}
    assert {r["status"] for r in results.values()} == {"created"}
    assert results["ed.four@contoso.com"]["followUps"] == "Temporary Access Pass: done; " \
                                                          "not delivered: no manager"
    assert results["bo.one@contoso.com"]["followUps"].endswith("; delivered to ann.boss@contoso.com")

    others = [m for m in sandbox.mail() if not str(m["subject"]).startswith("Sign-in details")]
    assert len(others) == 1  # the --notify summary
    secrets = [r["temporaryAccessPass"] for r in found.values()] + generated
    assert_nowhere(run, secrets, [out, err, repr(others), html.unescape(repr(others))],
                   allowed={"credentials.csv"})
    with pytest.raises(AssertionError):  # the scan sees the passes where they are
        assert_nowhere(run, secrets, [], allowed=set())


def test_password_delivery_needs_deliver_passwords(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    precreate(sandbox, "hr@contoso.com", "HR Sender")
    roster = write(tmp_path / "new.csv", ROWS[:2], header=HEADER)
    code, out, err = cli(sandbox, "run", roster, "--out", tmp_path / "r1", "--deliver", "managers",
                         "--deliver-from", "hr@contoso.com")
    assert code == ExitStatus.USAGE and "--deliver-passwords" in err
    code, out, err = cli(sandbox, "run", roster, "--out", tmp_path / "r2", "--no-progress", "--deliver",
                         "managers", "--deliver-from", "hr@contoso.com", "--deliver-passwords")
    assert code == ExitStatus.OK, out + err
    with open(tmp_path / "r2" / "passwords.csv", encoding="utf-8", newline="") as fh:
        pw = {r["userPrincipalName"]: r["password"] for r in csv.DictReader(fh)}
    (mail,) = deliveries(sandbox)["ann.boss@contoso.com"]
    assert pw["bo.one@contoso.com"] in html.unescape(mail["body"]["content"])
    assert "ann.boss@contoso.com" not in mail["body"]["content"].split("<table", 1)[1]
    assert sandbox.stats().get("taps_issued", 0) == 0


@pytest.mark.parametrize(("policy", "extra", "status", "words"), [
    ({"state": "disabled"}, [], ExitStatus.CONFIG, "policy is disabled"),
    ({"min": 60, "max": 480}, ["--tap-lifetime", "30"], ExitStatus.USAGE, "allows 60 to 480 minutes"),
])
def test_tap_policy_refusal_stops_before_any_write(sandbox_factory: Any, cli: Any, tmp_path: Path,
                                                    policy: dict[str, Any], extra: list[str], status: int,
                                                    words: str) -> None:
    sb = sandbox_factory(tap_policy=policy)
    roster = write(tmp_path / "new.csv", ROWS, header=HEADER)
    before = sb.stats()
    code, out, err = cli(sb, "run", roster, "--out", tmp_path / "run", "--no-progress", "--credential", "tap",
                         *extra)
    assert code == status and words in err, out + err
    after = sb.stats()
    assert before["writes"] == 0 and (after["writes"], after["users_created"], after["taps_issued"]) == (0, 0, 0)
    assert not (tmp_path / "run" / "journal.sqlite").exists()


def test_check_reads_the_tap_policy(sandbox_factory: Any, cli: Any) -> None:
    sb = sandbox_factory()
    code, out, err = cli(sb, "check", "--credential", "tap", "--deliver-from", "hr@contoso.com")
    assert code == ExitStatus.OK, out + err
    assert "Temporary Access Pass policy: enabled, lifetime 60..480 minutes (default 60), one-time or multi-use" \
        in out
    assert "ok       issue Temporary Access Passes" in out and "ok       mail credentials to managers" in out
    code, out, err = cli(sb, "check", "--credential", "tap", "--tap-lifetime", "600")
    assert code == ExitStatus.USAGE and "--tap-lifetime 600: the tenant's Temporary Access Pass policy allows " \
        "60 to 480 minutes" in err
    sb.set_knobs(tap_policy={"state": "disabled"})
    code, out, err = cli(sb, "check", "--credential", "tap")
    assert code == ExitStatus.CONFIG and "Temporary Access Pass policy is disabled" in err


def test_missing_permissions_name_what_tap_needs(sandbox_factory: Any, cli: Any, tmp_path: Path) -> None:
    from sandbox.config import DEFAULT_ROLES

    sb = sandbox_factory(roles=tuple(r for r in DEFAULT_ROLES if r != "Policy.Read.AuthenticationMethod"))
    roster = write(tmp_path / "new.csv", ROWS[:1], header=HEADER)
    code, out, err = cli(sb, "run", roster, "--out", tmp_path / "r1", "--no-progress", "--credential", "tap")
    assert code == ExitStatus.CONFIG, out + err
    assert ("read the Temporary Access Pass policy needs the application permission "
            "Policy.Read.AuthenticationMethod") in err
    assert sb.stats()["writes"] == 0
    code, out, err = cli(sb, "check", "--credential", "tap")
    assert code == ExitStatus.CONFIG and "MISSING  read the Temporary Access Pass policy" in out


def test_retry_issues_the_passes_a_run_could_not(sandbox_factory: Any, cli: Any, tmp_path: Path) -> None:
    from sandbox.config import DEFAULT_ROLES

    sb = sandbox_factory(roles=tuple(r for r in DEFAULT_ROLES if r != "UserAuthenticationMethod.ReadWrite.All"))
    roster = write(tmp_path / "new.csv", ROWS[:3], header=HEADER)
    run = tmp_path / "run"
    code, out, err = cli(sb, "run", roster, "--out", run, "--no-progress", "--credential", "tap")
    assert code == ExitStatus.ROWS_FAILED, out + err
    results = {r["userPrincipalName"]: r for r in read_results(run).values()}
    assert "issue Temporary Access Passes needs the application permission UserAuthenticationMethod.ReadWrite.All" \
        in results["bo.one@contoso.com"]["followUps"]
    assert passes(run) == {} and sb.stats()["taps_issued"] == 0
    sb.set_knobs(roles=DEFAULT_ROLES)
    again = tmp_path / "again"
    code, out, err = cli(sb, "retry", run, "--out", again, "--no-progress")
    assert code == ExitStatus.OK, out + err
    found = passes(again)
    assert set(found) == {"ann.boss@contoso.com", "bo.one@contoso.com", "cy.two@contoso.com"}
    assert all(sb.tap_matches(u, r["temporaryAccessPass"]) for u, r in found.items())
    assert (sb.stats()["taps_issued"], sb.stats()["taps_replaced"], sb.stats()["users_created"]) == (3, 0, 3)
    # a second retry finds nothing left to do: no second pass
    code, out, err = cli(sb, "retry", again, "--out", tmp_path / "third", "--no-progress")
    assert sb.stats()["taps_issued"] == 3


@pytest.mark.parametrize(("extra", "words"), [
    (["--tap-lifetime", "60"], "--tap-lifetime and --tap-usable-once only apply with --credential tap"),
    (["--deliver", "managers"], "--deliver managers needs --deliver-from UPN"),
    (["--deliver-from", "hr@contoso.com"], "--deliver-from and --deliver-passwords go with --deliver managers"),
    (["--credential", "tap", "--deliver", "managers", "--deliver-from", "hr@contoso.com", "--deliver-passwords"],
     "--deliver-passwords only applies with --credential password"),
])
def test_credential_option_combinations(sandbox: Any, cli: Any, tmp_path: Path, extra: list[str],
                                        words: str) -> None:
    roster = write(tmp_path / "new.csv", ROWS[:1], header=HEADER)
    code, out, err = cli(sandbox, "run", roster, "--out", tmp_path / "r", *extra)
    assert code == ExitStatus.USAGE and words in err, out + err
    assert sandbox.stats()["writes"] == 0


def test_failed_delivery_is_reported_then_resume_sends_it_once(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    precreate(sandbox, "old.boss@contoso.com", "Old Boss")
    roster = write(tmp_path / "new.csv", ROWS, header=HEADER)
    run = tmp_path / "run"
    code, out, err = cli(sandbox, "run", roster, "--out", run, "--no-progress", "--credential", "tap",
                         "--deliver", "managers", "--deliver-from", "hr@contoso.com")
    assert code == ExitStatus.ROWS_FAILED, out + err
    assert sandbox.mail() == []
    assert "warning: not delivered: delivery to ann.boss@contoso.com (2 users): The requested user " \
           "'hr@contoso.com' is invalid." in err
    results = {r["userPrincipalName"]: r for r in read_results(run).values()}
    assert results["bo.one@contoso.com"]["followUps"].endswith(
        "; delivery to ann.boss@contoso.com: failed (The requested user 'hr@contoso.com' is invalid.)")
    assert set(passes(run)) == CREATED  # the passes stay in the file
    precreate(sandbox, "hr@contoso.com", "HR Sender")
    code, out, err = cli(sandbox, "resume", run, "--no-progress")
    assert code == ExitStatus.OK, out + err
    assert sorted(m["toRecipients"][0] for m in sandbox.mail()) == sorted(REPORTS)
    code, out, err = cli(sandbox, "resume", run, "--no-progress")
    assert code == ExitStatus.OK, out + err
    assert len(sandbox.mail()) == len(REPORTS) and sandbox.stats()["taps_issued"] == len(CREATED)


def test_a_mail_in_flight_when_the_run_died_is_not_sent_again(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    precreate(sandbox, "old.boss@contoso.com", "Old Boss")
    roster = write(tmp_path / "new.csv", ROWS, header=HEADER)
    run = tmp_path / "run"
    code, out, err = cli(sandbox, "run", roster, "--out", run, "--no-progress", "--credential", "tap",
                         "--deliver", "managers", "--deliver-from", "hr@contoso.com")
    assert code == ExitStatus.ROWS_FAILED, out + err
    precreate(sandbox, "hr@contoso.com", "HR Sender")
    # the journal as a kill leaves it between "being sent" and the answer, for Ann's mail
    conn = sqlite3.connect(run / "journal.sqlite")
    with conn:
        conn.execute("UPDATE followups SET state='pending', attempts=1, http_status=NULL, error_code='' "
                     "WHERE kind='delivery' AND target='ann.boss@contoso.com'")
    conn.close()
    code, out, err = cli(sandbox, "resume", run, "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, out + err
    assert [m["toRecipients"][0] for m in sandbox.mail()] == ["old.boss@contoso.com"]
    results = {r["userPrincipalName"]: r for r in read_results(run).values()}
    assert "delivery to ann.boss@contoso.com: failed (the run stopped while this mail was being sent; it may " \
           "have arrived, so it is not sent again" in results["cy.two@contoso.com"]["followUps"]
    code, out, err = cli(sandbox, "resume", run, "--no-progress")
    assert [m["toRecipients"][0] for m in sandbox.mail()] == ["old.boss@contoso.com"]


def test_dry_run_plans_the_passes_and_issues_none(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    roster = write(tmp_path / "new.csv", ROWS[:2], header=HEADER)
    run = tmp_path / "dry"
    code, out, err = cli(sandbox, "run", roster, "--out", run, "--dry-run", "--credential", "tap")
    assert code == ExitStatus.OK, out + err
    assert not (run / "credentials.csv").exists() and not (run / "passwords.csv").exists()
    assert (sandbox.stats()["writes"], sandbox.stats()["taps_issued"]) == (0, 0)
    results = {r["userPrincipalName"]: r for r in read_results(run).values()}
    assert results["bo.one@contoso.com"]["followUps"] == "manager ann.boss@contoso.com: planned; " \
                                                        "Temporary Access Pass: planned"
