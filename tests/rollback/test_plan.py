"""The rollback plan from a journal alone: which rows and follow-ups become steps, which are left, which are none."""
from __future__ import annotations

from pathlib import Path

import pytest

from provisioning.errors import RunFolderError
from provisioning.run.rollback import StepKind, StepState, plan_counts, plan_rollback
from provisioning.store.journal import Journal, Outcome, RowSeed, RowState
from provisioning.store.records import Change, FollowUpOutcome, FollowUpSeed, FollowUpState


def _journal(tmp_path: Path) -> Journal:
    j = Journal.create(tmp_path, {"dry_run": False})
    j.add_rows([
        RowSeed(2, "new@contoso.com", "create", RowState.PENDING, display_name="New"),
        RowSeed(3, "skip@contoso.com", "skip", RowState.SKIPPED, object_id="id-skip"),
        RowSeed(4, "upd@contoso.com", "update", RowState.PENDING, object_id="id-upd"),
        RowSeed(5, "fail@contoso.com", "create", RowState.PENDING),
        RowSeed(6, "never@contoso.com", "update", RowState.PENDING, object_id="id-never"),
        RowSeed(7, "bad", "invalid", RowState.INVALID),
    ])
    j.mark_sending([2, 4, 5])
    j.record_many([(2, Outcome(RowState.CREATED, "id-new")), (4, Outcome(RowState.UPDATED, "id-upd")),
                   (5, Outcome(RowState.FAILED, http_status=400))])
    j.add_changes([Change(4, "jobTitle", "Dev", "Lead"), Change(4, "passwordProfile", "(not shown)", "reset"),
                   Change(6, "jobTitle", "A", "B")])
    j.add_followups([
        FollowUpSeed(2, "group", "Sales", "g-sales"),                    # a created user's: goes with it
        FollowUpSeed(3, "group", "Sales", "g-sales"),                    # already a member: not the run's
        FollowUpSeed(3, "group", "Engineering", "g-eng"),                # added: removed
        FollowUpSeed(3, "license", "FLOW_FREE", "sku-flow"),             # skipped row: not held before: removed
        FollowUpSeed(3, "manager", "new@contoso.com", "", target_row=2),  # set to a created user: removed
        FollowUpSeed(4, "license", "E5", "sku-e5"),                      # updated row: cannot tell: left
        FollowUpSeed(4, "group", "Ops", "g-ops"),                        # failed: nothing to undo
        FollowUpSeed(3, "license", "E3", "sku-e3", state=FollowUpState.IN_PLACE),
    ])
    done = FollowUpOutcome(FollowUpState.DONE, 1, 204)
    j.record_followups([(2, "group", "Sales", done), (3, "group", "Engineering", done),
                        (3, "group", "Sales", FollowUpOutcome(FollowUpState.DONE, 1, 400, message="already a member")),
                        (3, "license", "FLOW_FREE", done), (3, "manager", "new@contoso.com", done),
                        (4, "license", "E5", done), (4, "group", "Ops", FollowUpOutcome(FollowUpState.FAILED, 1, 403))])
    return j


def test_plan_from_the_journal(tmp_path: Path) -> None:
    with _journal(tmp_path) as j:
        steps = plan_rollback(j)
    got = [(s.kind, s.row, s.object_id, s.target, s.state) for s in steps]
    assert got == [
        (StepKind.REVERT, 4, "id-upd", "jobTitle", StepState.PENDING),
        (StepKind.REVERT, 4, "id-upd", "passwordProfile", StepState.LEFT),
        (StepKind.GROUP, 3, "id-skip", "g-eng", StepState.PENDING),
        (StepKind.LICENSE, 3, "id-skip", "sku-flow", StepState.PENDING),
        (StepKind.MANAGER, 3, "id-skip", "id-new", StepState.PENDING),
        (StepKind.LICENSE, 4, "id-upd", "sku-e5", StepState.LEFT),
        (StepKind.DELETE, 2, "id-new", "", StepState.PENDING),
    ]
    assert [s.step for s in steps] == list(range(1, 8))
    assert plan_counts(steps) == {"delete": 1, "revert_users": 1, "revert_properties": 1, "group": 1, "license": 1,
                                  "manager": 1, "left": 2}


def test_refusals(tmp_path: Path) -> None:
    (tmp_path / "dry").mkdir()
    with Journal.create(tmp_path / "dry", {"dry_run": True}) as j, pytest.raises(RunFolderError, match="is a dry run"):
        plan_rollback(j)
    (tmp_path / "rb").mkdir()
    with Journal.create(tmp_path / "rb", {"kind": "rollback"}) as j, \
            pytest.raises(RunFolderError, match="is a rollback folder"):
        plan_rollback(j)
