"""``--existing update``: compare the roster's values with the tenant's and PATCH only what differs.

- Compared: the properties the roster *provides* for a row (non-empty cells; derived values such as a
  generated displayName or mailNickname, or the default ``accountEnabled``, are never pushed over the tenant's),
  except ``userPrincipalName`` (the key) and the password.
- The password is never touched unless ``--reset-passwords``: then ``passwordProfile`` is PATCHed with the
  roster's password (or a generated one, written to ``passwords.csv`` 0600 like a create's).
- :func:`diff` and :func:`plan_updates` are pure; :func:`fetch_current` reads the tenant (GET by id with
  ``$select``, batched); :func:`apply_updates` sends one ``PATCH /users/{id}`` per changed user through
  ``$batch``, retried through replication lag, and records each row *updated* or *failed*.
- A row whose values already match is *skipped* ("unchanged"); texts that differ only in Unicode form (NFKC:
  composed or decomposed accents, full-width letters) match. ``--dry-run`` records the same diff (the Updated
  sheet shows old -> new per property) and sends nothing.
"""
from __future__ import annotations

import logging
import threading
import unicodedata
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from graph.batch import BatchRequest
from graph.odata import query_string
from provisioning.run.lagretry import Answer, LagRetrySender, Op
from provisioning.run.plan import ActionKind
from provisioning.store.journal import OPEN_STATES, Journal, Outcome, RowState
from provisioning.store.records import Change

if TYPE_CHECKING:
    from graph.client import GraphClient

log = logging.getLogger(__name__)

#: Never compared: the key, the password, and what only a create sets.
NOT_COMPARED = frozenset({"userPrincipalName", "passwordProfile", "password"})
ORG = "employeeOrgData"


@dataclass(frozen=True, slots=True)
class UserUpdate:
    """One existing user's planned update: the PATCH body and the changes it makes (for the report)."""

    row: int
    object_id: str
    body: Mapping[str, Any]
    changes: tuple[Change, ...]


def desired(user: Any) -> dict[str, Any]:
    """The properties the roster provides for ``user`` (a validated row), as they would be PATCHed."""
    body = user.graph_body()
    derived = set(getattr(user, "derived", ()) or ())
    out = {k: v for k, v in body.items() if k not in NOT_COMPARED and k not in derived}
    return {k: v for k, v in out.items() if v not in ("", None, [], {})}


def text(value: Any) -> str:
    """A value as the report shows it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "; ".join(map(str, value))
    return str(value)


def _same(prop: str, want: Any, have: Any) -> bool:
    if prop == "employeeHireDate" and isinstance(want, str) and isinstance(have, str):
        return want[:10] == have[:10]
    if prop == "usageLocation" and isinstance(want, str) and isinstance(have, str):
        return want.upper() == have.upper()
    if isinstance(want, list):
        return list(want) == list(have or [])
    if isinstance(want, str) and isinstance(have, str) and not (want.isascii() and have.isascii()):
        # a name in another Unicode form (NFD from macOS, full-width) is the same text: not pushed over the
        # tenant's; a change of case is a change
        return unicodedata.normalize("NFKC", want) == unicodedata.normalize("NFKC", have)
    return bool(want == have)


def diff(row: int, want: Mapping[str, Any], have: Mapping[str, Any]) -> tuple[dict[str, Any], list[Change]]:
    """The PATCH body and the changes that make the tenant's ``have`` match the roster's ``want`` (pure)."""
    body: dict[str, Any] = {}
    changes: list[Change] = []
    for prop, value in want.items():
        if prop == ORG and isinstance(value, Mapping):
            current = dict(have.get(ORG) or {})
            moved = {k: v for k, v in value.items() if current.get(k) != v}
            if moved:
                body[ORG] = {**current, **value}
                changes.extend(Change(row, f"{ORG}.{k}", text(current.get(k)), text(v)) for k, v in moved.items())
            continue
        if not _same(prop, value, have.get(prop)):
            body[prop] = value
            changes.append(Change(row, prop, text(have.get(prop)), text(value)))
    return body, changes


def select_for(users: Iterable[Any]) -> list[str]:
    """The ``$select`` that reads every property the rows compare."""
    props = {"id", "userPrincipalName"}
    for user in users:
        props.update(desired(user))
    return sorted(props)


def fetch_current(client: GraphClient, targets: Mapping[int, str], select: Sequence[str], *,
                  base: str = "/users") -> dict[int, dict[str, Any]]:
    """The tenant's values of ``select`` for each row's user (``targets``: row -> object id), batched GETs;
    ``base``: where the users are (``/directory/deletedItems`` for deleted ones)."""
    reqs = [BatchRequest(str(row), "GET", f"{base}/{oid}?" + query_string({"$select": ",".join(select)}))
            for row, oid in targets.items()]
    out: dict[int, dict[str, Any]] = {}
    for answer in client.send_batch(reqs) if reqs else ():
        if answer.error is not None:
            raise answer.error
        out[int(answer.id)] = dict(answer.body or {})
    return out


def plan_updates(actions: Sequence[Any], current: Mapping[int, Mapping[str, Any]], *,
                 reset_passwords: bool = False,
                 extra: Mapping[int, Mapping[str, Any]] | None = None) -> tuple[list[Any], dict[int, UserUpdate]]:
    """Turn UPDATE actions into updates (pure): an action with nothing to change becomes a SKIP ("unchanged").

    ``actions`` are :class:`provisioning.run.plan.Action`; returns the new actions and the updates by row.
    ``extra``: properties compared too, by row, beyond what the roster provides (the edited userPrincipalName of
    a row bound to its account by a retry).
    """

    out: list[Any] = []
    updates: dict[int, UserUpdate] = {}
    for a in actions:
        if a.kind is not ActionKind.UPDATE:
            out.append(a)
            continue
        body, changes = diff(a.row, {**desired(a.user), **(extra or {}).get(a.row, {})}, current.get(a.row, {}))
        if reset_passwords:
            body["passwordProfile"] = {"password": a.user.password,
                                       "forceChangePasswordNextSignIn": a.user.force_change_password}
            changes.append(Change(a.row, "passwordProfile", "(not shown)",
                                  "reset (generated: see passwords.csv)" if a.user.password_generated
                                  else "reset (from the roster)"))
        if not body:
            out.append(replace(a, kind=ActionKind.SKIP, message="unchanged: the tenant already has the roster's "
                                                                 "values"))
            continue
        updates[a.row] = UserUpdate(a.row, a.object_id, body, tuple(changes))
        out.append(a)
    return out, updates


def apply_updates(client: GraphClient, journal: Journal, bodies: Mapping[int, tuple[str, Mapping[str, Any]]], *,
                  stop: threading.Event | None = None) -> dict[str, int]:
    """PATCH each row's user (``bodies``: row -> (object id, body)); record *updated* / *failed* per row.

    A row with no final answer (the run stopped, Graph unavailable) stays *pending* for ``resume``.
    """
    ops = [Op(row, "PATCH", f"/users/{oid}", body) for row, (oid, body) in sorted(bodies.items())]
    if not ops:
        return {}
    counts: dict[str, int] = {}

    def done(key: Hashable, answer: Answer) -> None:
        assert isinstance(key, int)  # the ops' keys are row numbers
        row = key
        oid = bodies[row][0]
        if answer.ok:
            outcome = Outcome(RowState.UPDATED, oid, answer.status, request_id=answer.request_id)
        elif answer.ok is None:
            outcome = Outcome(RowState.PENDING, oid, answer.status or None, answer.code, answer.message,
                              answer.request_id)
        else:
            outcome = Outcome(RowState.FAILED, oid, answer.status, answer.code, answer.message, answer.request_id)
        journal.record(row, outcome)
        counts[outcome.state.value] = counts.get(outcome.state.value, 0) + 1
        log.info("row %d update: %s %s %s request-id=%s", row, outcome.state.value, answer.status, answer.code,
                 answer.request_id)

    journal.mark_sending(sorted(bodies))  # the ops' rows (PATCH is idempotent: resume re-sends)
    LagRetrySender(client, stop=stop, guard=journal.check_intact).send(ops, done)
    return counts


def pending_updates(journal: Journal) -> dict[int, tuple[str, Mapping[str, Any]]]:
    """The update rows still to send, from the journal. Their PATCH body is stored without any password, so a
    password reset interrupted before its answer is not re-sent by ``resume`` (logged; run again to reset)."""
    out: dict[int, tuple[str, Mapping[str, Any]]] = {}
    for r in journal.rows(OPEN_STATES):
        if r.action != "update" or not r.object_id or not r.body:
            continue
        body = dict(r.body)
        if isinstance(body.get("passwordProfile"), Mapping) and "password" not in body["passwordProfile"]:
            body.pop("passwordProfile")
            log.warning("row %d: the password reset is not resent by resume (no password is journaled)", r.row)
        if body:
            out[r.row] = (r.object_id, body)
    return out
