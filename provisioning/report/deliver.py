"""``--deliver managers --deliver-from UPN``: mail each manager one message listing the new reports the run created,
with their UPN and Temporary Access Pass (or, with ``--credential password --deliver-passwords``, their initial
password), through Graph ``sendMail`` with ``saveToSentItems: false`` (the credentials stay out of the sender's
Sent Items).

Each created row with a credential to deliver has one ``delivery`` follow-up in the journal (its target the
manager the roster names; "not delivered" when it names none: the credential stays in the file). A manager's
rows go in one mail; before it leaves, their deliveries are journaled as being sent (an attempt with no answer),
so a run killed while the mail was in flight never sends it again: ``resume`` reports it "in doubt" instead. A
mail Graph refuses for a passing reason (429, 503, 504) is tried again by the client's retry policy
(:mod:`graph.retry`: Retry-After honoured, bounded attempts), then reported failed; ``resume`` tries a failed one
again (it did not arrive).
"""
from __future__ import annotations

import html
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graph.errors import GraphError
from provisioning.context import CommandContext
from provisioning.report.notify import mail_request, post_mail
from provisioning.run.creates import ApplyResult
from provisioning.run.permissions import explain_denied
from provisioning.run.tap import TAP_KIND, Credential, DeliverOptions, Onboarding, TapFile
from provisioning.store.folder import RunFolder
from provisioning.store.journal import OPEN_STATES, Journal, RowState
from provisioning.store.records import FollowUpOutcome, FollowUpRecord, FollowUpState
from provisioning.store.secrets import PasswordFile, SecretFilter

if TYPE_CHECKING:
    from graph.client import GraphClient

log = logging.getLogger(__name__)

KIND = "delivery"
#: Error codes of deliveries this module decided on (Graph's own codes are kept for the others).
IN_DOUBT = "DeliveryInDoubt"
NO_CREDENTIAL = "NoCredential"
NOT_AGAIN = frozenset({IN_DOUBT, NO_CREDENTIAL})


@dataclass(frozen=True, slots=True)
class Delivered:
    """What one session delivered: mails sent, rows listed in them, and the failures (one line each)."""

    mails: int = 0
    rows: int = 0
    failures: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Entry:
    row: int
    upn: str
    name: str
    secret: str
    start: str = ""
    end: str = ""


def deliver(client: GraphClient, journal: Journal, folder: RunFolder, options: DeliverOptions, *,
            credential: Credential, secrets: SecretFilter | None = None,
            stop: threading.Event | None = None) -> Delivered:
    """Send the deliveries still to do (pending, or failed with Graph's refusal); see the module's docstring."""
    follow = journal.followups()
    todo = [f for f in follow if f.kind == KIND and (
        f.state is FollowUpState.PENDING or f.state is FollowUpState.FAILED and f.error_code not in NOT_AGAIN)]
    if not todo:
        return Delivered()
    records = {r.row: r for r in journal.rows()}
    taps = {f.row: f for f in follow if f.kind == TAP_KIND}
    in_doubt = [f for f in todo if f.state is FollowUpState.PENDING and f.attempts > 0]
    journal.record_followups([(f.row, KIND, f.target, FollowUpOutcome(
        FollowUpState.FAILED, error_code=IN_DOUBT,
        message="the run stopped while this mail was being sent; it may have arrived, so it is not sent again: "
                "the credential is in the run folder")) for f in in_doubt])
    todo = [f for f in todo if f not in in_doubt]
    secrets_on_file = _credentials(folder, credential, secrets)
    by_manager: dict[str, list[tuple[FollowUpRecord, _Entry]]] = {}
    settled: list[tuple[int, str, str, FollowUpOutcome]] = []
    for f in todo:
        rec = records.get(f.row)
        if rec is None or rec.state in OPEN_STATES:
            continue  # the create is still open: resume delivers it
        if rec.state is not RowState.CREATED:
            settled.append((f.row, KIND, f.target, FollowUpOutcome(FollowUpState.NOT_DELIVERED,
                                                                   message="the user was not created")))
            continue
        tap = taps.get(f.row)
        if credential is Credential.TAP and tap is not None and tap.state is FollowUpState.PENDING:
            continue  # its pass is still to come: resume delivers it
        entry = secrets_on_file.get(f.row)
        if entry is None:
            what = "Temporary Access Pass" if credential is Credential.TAP else "generated password"
            settled.append((f.row, KIND, f.target, FollowUpOutcome(
                FollowUpState.FAILED, error_code=NO_CREDENTIAL, message=f"no {what} of this user is on file")))
            continue
        if "@" not in f.target:
            settled.append((f.row, KIND, f.target, FollowUpOutcome(
                FollowUpState.FAILED, error_code=NO_CREDENTIAL,
                message="the manager is not named by a mail address (userPrincipalName)")))
            continue
        by_manager.setdefault(f.target.lower(), []).append((f, _Entry(
            f.row, rec.upn, rec.display_name, entry.secret, entry.start, entry.end)))
    journal.record_followups(settled)
    mails = rows = 0
    failures = [f"row {row} delivery to {target}: {o.message}" for row, _, target, o in settled
                if o.state is FollowUpState.FAILED]
    for manager, listed in by_manager.items():
        if stop is not None and stop.is_set():
            break
        address = listed[0][0].target
        body = mail_request((address,), _subject(len(listed)),
                            _content([e for _, e in listed], credential), save_to_sent_items=False)
        keys = [(f.row, KIND, f.target) for f, _ in listed]
        journal.record_followups([(*k, FollowUpOutcome(FollowUpState.PENDING, attempts=1)) for k in keys])
        outcome = _send(client, options.sender, body)
        journal.record_followups([(*k, outcome) for k in keys])
        if outcome.state is FollowUpState.DONE:
            mails += 1
            rows += len(listed)
            log.info("delivery: %d credentials mailed to %s", len(listed), manager)
        else:
            failures.append(f"delivery to {address} ({len(listed)} users): {outcome.message}")
            log.warning("delivery to %s failed: %s", manager, outcome.message)
    return Delivered(mails, rows, tuple(failures))


def _credentials(folder: RunFolder, credential: Credential, secrets: SecretFilter | None) -> dict[int, _Entry]:
    """The credentials on file by row: the passes of credentials.csv, or the generated passwords of
    passwords.csv."""
    if credential is Credential.TAP:
        return {row: _Entry(row, p.upn, "", p.passcode, p.start, p.end)
                for row, p in TapFile(folder.credentials_csv, secrets).load().items() if p.passcode}
    known = PasswordFile(folder.passwords_csv).load()
    if secrets is not None:
        secrets.add_secrets(pw for _, pw in known.values())
    return {row: _Entry(row, upn, "", pw) for row, (upn, pw) in known.items()}


def _send(client: GraphClient, sender: str, body: Mapping[str, Any]) -> FollowUpOutcome:
    """One mail (the client retries a passing refusal); the outcome of its rows' deliveries."""
    try:
        post_mail(client, sender, body)
    except GraphError as exc:
        message = exc.message or str(exc)
        if exc.status == 403:
            message = explain_denied("POST", f"/users/{sender}/sendMail", f"403 {exc.code}: {message}")
        return FollowUpOutcome(FollowUpState.FAILED, 0, exc.status or None, exc.code or "GraphError", message,
                               exc.request_id)
    return FollowUpOutcome(FollowUpState.DONE, 0, 202)


def _subject(n: int) -> str:
    return f"Sign-in details for {n} new account{'s' if n != 1 else ''} in your team"


def _content(entries: list[_Entry], credential: Credential) -> str:
    """The message: who, their UPN, their pass and its validity (or their initial password), and what to do."""
    e = html.escape
    if credential is Credential.TAP:
        head = ("<tr><th>Name</th><th>User name</th><th>Temporary Access Pass</th><th>Valid from (UTC)</th>"
                "<th>Valid until (UTC)</th></tr>")
        lines = "".join(f"<tr><td>{e(x.name)}</td><td>{e(x.upn)}</td><td><code>{e(x.secret)}</code></td>"
                        f"<td>{e(x.start)}</td><td>{e(x.end)}</td></tr>" for x in entries)
        how = ("<p>Give each person their Temporary Access Pass yourself (in person or by phone), not by mail. "
               "They sign in at https://aka.ms/mysecurityinfo with their user name and the pass, within its "
               "validity, and set up their sign-in methods (Microsoft Authenticator, a passkey).</p>")
    else:
        head = "<tr><th>Name</th><th>User name</th><th>Initial password</th></tr>"
        lines = "".join(f"<tr><td>{e(x.name)}</td><td>{e(x.upn)}</td><td><code>{e(x.secret)}</code></td></tr>"
                        for x in entries)
        how = ("<p>Give each person their initial password yourself (in person or by phone); they must change it "
               "when they first sign in.</p>")
    return (f"<html><body><p>New accounts were created for these members of your team:</p>"
            f"<table border='1' cellpadding='4' cellspacing='0'>{head}{lines}</table>{how}"
            "<p>Delete this message once the credentials are handed over.</p></body></html>")


def deliver_run(console: CommandContext, client: GraphClient, journal: Journal, folder: RunFolder,
                secrets: SecretFilter, stop: threading.Event, apply: ApplyResult | None) -> Delivered:
    """A run's or resume's delivery phase (after the passes are in; nothing when the run stopped or was not asked
    to deliver), and its lines on the console."""
    onboarding = Onboarding.from_meta(journal.meta())
    if onboarding.deliver is None or stop.is_set() or apply is not None and (
            apply.fatal is not None or apply.interrupted):
        return Delivered()
    done = deliver(client, journal, folder, onboarding.deliver, credential=onboarding.credential, secrets=secrets,
                   stop=stop)
    if done.mails and console.verbosity >= 0:
        console.out.write(f"delivered the credentials of {done.rows} users to {done.mails} managers\n")
    for line in done.failures:
        console.err.write(f"warning: not delivered: {line}\n")
    nobody = sum(1 for f in journal.followups([FollowUpState.NOT_DELIVERED]) if f.kind == KIND and not f.target)
    if nobody and console.verbosity >= 0:
        where = folder.credentials_csv if onboarding.uses_tap else folder.passwords_csv
        console.out.write(f"not delivered: {nobody} users have no manager; their credentials are only in {where}\n")
    return done
