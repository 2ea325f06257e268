"""Skipped means no write: a row whose user exists gets only the follow-ups its user does not have yet; the rest
is "already in place" (read in pre-flight), counted by the sandbox's write counter."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from provisioning.exitcodes import ExitStatus
from provisioning.store.journal import Journal
from provisioning.store.records import FollowUpState

from .conftest import graph, licences, manager_of, members, precreate, read_results, write

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "roster.csv"


def test_sample_roster_a_second_time_sends_no_write(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    code, out, err = cli(sandbox, "run", SAMPLE, "--out", tmp_path / "a", "--no-progress")
    assert code == ExitStatus.OK, out + err
    first = sandbox.stats()
    assert first["managers_set"] == 24
    code, out, err = cli(sandbox, "run", SAMPLE, "--out", tmp_path / "b", "--no-progress")
    assert code == ExitStatus.OK, out + err
    again = sandbox.stats()
    assert again["writes"] - first["writes"] == 0
    changed = {k for k, n in again["batch_by_status"].items() if n != first["batch_by_status"].get(k, 0)}
    assert changed == {"200"}  # reads only
    results = read_results(tmp_path / "b")
    assert {r["status"] for r in results.values()} == {"skipped"} and len(results) == 25
    assert results[3]["followUps"] == "manager ingrid.sondergaard@contoso.com: already in place"


def test_skipped_row_sends_only_what_is_missing(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    sb = sandbox
    boss = precreate(sb, "boss@contoso.com", "The Boss")
    other = precreate(sb, "other@contoso.com", "Someone Else")
    uid = precreate(sb, "ann.a@contoso.com", "Ann A", usageLocation="US")
    e3 = sb.sku_ids["ENTERPRISEPACK"]
    with graph(sb) as client:
        client.request("POST", f"/groups/{sb.groups['Sales']}/members/$ref",
                       json={"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{uid}"})
        client.request("POST", f"/users/{uid}/assignLicense",
                       json={"addLicenses": [{"skuId": e3, "disabledPlans": []}], "removeLicenses": []})
        client.request("PUT", f"/users/{uid}/manager/$ref",
                       json={"@odata.id": f"https://graph.microsoft.com/v1.0/users/{other}"})
    roster = write(tmp_path / "r.csv", [
        "Ann,A,Ann A,ann.a@contoso.com,,US,Lead,Sales;Engineering,ENTERPRISEPACK;FLOW_FREE,boss@contoso.com"])
    before = sb.stats()
    code, out, err = cli(sb, "run", roster, "--out", tmp_path / "r", "--no-progress")
    assert code == ExitStatus.OK, out + err
    after = sb.stats()
    # Engineering (members/$ref), FLOW_FREE (assignLicense), the manager (a different one is set): 3 writes
    assert after["writes"] - before["writes"] == 3
    row = read_results(tmp_path / "r")[2]
    assert row["status"] == "skipped"
    assert row["followUps"] == ("group Sales: already in place; group Engineering: done; licence ENTERPRISEPACK: "
                                "already in place; licence FLOW_FREE: done; manager boss@contoso.com: done")
    with Journal.open(tmp_path / "r") as journal:
        states = {(f.kind, f.target): f.state for f in journal.followups()}
    assert states[("group", "Sales")] is FollowUpState.IN_PLACE and states[("manager", "boss@contoso.com")] is \
        FollowUpState.DONE
    with graph(sb) as client:
        assert uid in members(client, sb.groups["Engineering"]) and uid in members(client, sb.groups["Sales"])
        assert licences(client, uid) == {e3.lower(), sb.sku_ids["FLOW_FREE"].lower()}
        assert manager_of(client, uid) == boss


def test_update_mode_keeps_sending_follow_ups(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    """``--existing update``: an updated row's follow-ups are sent as before (already a member counts as done)."""
    sb = sandbox
    uid = precreate(sb, "ann.a@contoso.com", "Ann A", usageLocation="US", jobTitle="Dev")
    with graph(sb) as client:
        client.request("POST", f"/groups/{sb.groups['Sales']}/members/$ref",
                       json={"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{uid}"})
    roster = write(tmp_path / "r.csv", ["Ann,A,Ann A,ann.a@contoso.com,,US,Lead,Sales,,"])
    code, out, err = cli(sb, "run", roster, "--out", tmp_path / "r", "--no-progress", "--existing", "update")
    assert code == ExitStatus.OK, out + err
    row = read_results(tmp_path / "r")[2]
    assert (row["status"], row["followUps"]) == ("updated", "group Sales: done")
