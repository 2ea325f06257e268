"""``run --notify ADDR --notify-from UPN``: the summary and results.xlsx are mailed at the end of the run; a failed
notification is a warning and never changes the exit status."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from provisioning.exitcodes import ExitStatus

from .conftest import precreate, write

HEADER = "userPrincipalName,displayName\n"


def test_run_notify_mails_results_and_failure_keeps_status(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    precreate(sandbox, "notifier@contoso.com", "Notifier")
    roster = write(tmp_path / "n.csv", ["n.one@contoso.com,N One"], header=HEADER)
    code, out, err = cli(sandbox, "run", roster, "--out", tmp_path / "r1", "--no-progress",
                         "--notify", "admin@contoso.com", "--notify-from", "notifier@contoso.com")
    assert code == ExitStatus.OK, out + err
    (mail,) = sandbox.mail()
    assert mail["from"] == "notifier@contoso.com" and "1 created" in mail["subject"]
    assert "notification sent to admin@contoso.com" in out
    roster2 = write(tmp_path / "n2.csv", ["n.two@contoso.com,N Two"], header=HEADER)
    code, out, err = cli(sandbox, "run", roster2, "--out", tmp_path / "r2", "--no-progress",
                         "--notify", "admin@contoso.com", "--notify-from", "nobody@contoso.com")
    assert code == ExitStatus.OK, out + err
    assert len(sandbox.mail()) == 1 and "notif" in err.lower()
    code, out, err = cli(sandbox, "run", roster2, "--notify", "admin@contoso.com")
    assert code == ExitStatus.USAGE, out + err
