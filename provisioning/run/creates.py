"""Apply a plan's creates through Graph ``$batch``, journaled row by row, with ambiguous outcomes reconciled.

The engine hands the graph client a lazy stream of ``POST /users`` batch items (``run_batches``: chunks of at most
20, several in flight, paced by the client's write governor, 429 items re-queued after their own Retry-After). For
each chunk ``on_send`` marks the rows *sending* in the journal (after writing any generated password to
``passwords.csv``), and ``on_result`` records each row's answer as soon as it arrives:

- 201: *created*, with the object id;
- an answer whose effect is unknown (reset, timeout, 5xx: ``ambiguous``): *unknown*, then looked up by UPN in
  bulk before anything is re-sent: found = created by this run, not found = sent again in the next round;
- "Another object with the same value for property userPrincipalName already exists." to a create that this run
  had sent before: looked up and reconciled as *created* (when the user found is the one we sent); to a first
  send: the user appeared after pre-flight, so it is a *skip* (or a failure with ``--existing fail``), never a
  "created";
- any other refusal: *failed*, with Graph's status, code, message and request-id; the run goes on;
- 401/403 (credentials revoked, permission removed) or the service unavailable past the retry budget: the run
  stops sending, waits for the answers in flight, records them and reports the fatal condition.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from graph.batch import BatchRequest
from graph.errors import AuthError, ConflictError, GraphError, ServiceUnavailableError
from provisioning.errors import RunFolderLost
from provisioning.exitcodes import ExitStatus
from provisioning.run.lagretry import error_parts
from provisioning.run.permissions import explain_denied
from provisioning.run.progress import LINE_EVERY_S, PhaseProgress
from provisioning.store.durable import lost_from
from provisioning.store.journal import Journal, Outcome, RowState
from provisioning.store.secrets import PasswordFile
from provisioning.validation.tenant import find_users

if TYPE_CHECKING:
    from graph.client import GraphClient

log = logging.getLogger(__name__)

#: Error code of a row refused because its user already exists (``--existing fail``), in the report and results.csv.
EXISTS_CODE = "UserExists"

class ChunkRefused(Exception):
    """Raised by ``on_send`` to keep a chunk from leaving (the run folder can no longer record it)."""


@dataclass(frozen=True, slots=True)
class CreateItem:
    """One user to create: its roster row, UPN and the exact body (with the password, hence not in any repr)."""

    row: int
    upn: str
    body: Mapping[str, Any] = field(repr=False)
    password_generated: bool = False


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What happened to the creates of this session."""

    created: int
    failed: int
    skipped: int
    unknown: int
    pending: int
    fatal: ExitStatus | None
    fatal_message: str
    interrupted: bool
    duration_s: float
    rounds: int


def is_conflict(error: GraphError | None) -> bool:
    """True for Graph's duplicate-UPN answer (400 "Another object with the same value for property
    userPrincipalName already exists.", ObjectConflict)."""
    return isinstance(error, ConflictError) and error.on("userPrincipalName")


def same_person(found: Any, body: Mapping[str, Any]) -> bool:
    """Whether a user found by UPN is the one this run sent (displayName, and employeeId when we sent one)."""
    if found is None:
        return False
    if getattr(found, "displayName", None) not in (None, body.get("displayName")):
        return False
    sent_emp = body.get("employeeId")
    return not sent_emp or getattr(found, "employeeId", None) in (None, sent_emp)


def _error_fields(status: int, body: Any, error: GraphError | None, headers: Mapping[str, Any]) -> dict[str, Any]:
    code, message, request_id = error_parts(body, error, headers)
    return {"http_status": status or None, "error_code": code, "message": message or f"HTTP {status}",
            "request_id": request_id}


class Progress(PhaseProgress):
    """The create phase's progress: a :class:`~provisioning.run.progress.PhaseProgress` that also counts the users
    created and the answers 429 (the bar, made by the caller, stays the caller's to close).

    Answers move the bar, but while Graph's quota holds the writes back nothing is answered for many seconds: the
    ticker then refreshes the 429 count as the client sees them and says how long the quota wait is, so the bar
    never sits frozen at ``throttled=0``; without a bar it writes a plain line every ``every_s``.
    """

    def __init__(self, bar: Any = None, *, lines: TextIO | None = None, total: int = 0,
                 every_s: float = LINE_EVERY_S, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__("creating", lines=lines, every_s=every_s, clock=clock)
        self.bar, self.total = bar, total
        self.created = self.throttled = 0
        self._last_line = clock()
        self._throttled_count: Callable[[], int] | None = None

    def done(self, state: RowState) -> None:
        """One row answered, in ``state``."""
        if state is RowState.CREATED:
            with self._lock:
                self.created += 1
        self.advance(1, failed=int(state is RowState.FAILED))

    def set_throttled(self, n: int) -> None:
        with self._lock:
            self.throttled = n

    # the create phase also watches the client's 429 count, given first: callers never treat it as a PhaseProgress
    def watch(self, throttled_count: Callable[[], int] | None,  # type: ignore[override]
              quota_wait: Callable[[], float] | None) -> None:
        """Refresh the bar (or write a line when due) every :attr:`TICK_S` from these sources until :meth:`close`."""
        self._throttled_count = throttled_count
        super().watch(quota_wait)

    def close(self) -> None:
        """Stop the ticker (the bar itself belongs to the caller)."""
        self._stop_ticker()

    def line(self) -> str:
        """``creating: 120/400 answered, 118 created, 2 failed, 5 answered 429``, and the quota wait if any."""
        self._refresh_throttled()
        wait = self._wait()
        text = (f"creating: {self.answered}/{self.total} answered, {self.created} created, {self.failed} failed,"
                f" {self.throttled} answered 429")
        return text + (f"; waiting for Graph's write quota: {wait:.0f} s" if wait >= 1.0 else "")

    def _refresh_throttled(self) -> None:
        if self._throttled_count is not None:
            self.throttled = max(self.throttled, int(self._throttled_count()))

    def _show(self, *, refresh: bool) -> None:
        """Update the bar's text (the caller holds the lock)."""
        self._refresh_throttled()
        wait = self._wait()
        self.bar.set_description_str(f"waiting for Graph's write quota: {wait:.0f} s" if wait >= 1.0
                                     else "creating", refresh=False)
        self.bar.set_postfix(created=self.created, failed=self.failed, throttled=self.throttled, refresh=refresh)


class ApplyEngine:
    """Creates users through ``client.run_batches`` with the journal as the source of truth."""

    def __init__(self, client: GraphClient, journal: Journal, *, passwords: PasswordFile | None = None,
                 stop: threading.Event | None = None, progress: Progress | None = None,
                 fail_on_existing: bool = False, max_rounds: int = 8, conflict_lookup_s: float = 30.0,
                 throttled_count: Callable[[], int] | None = None,
                 sleep: Callable[[float], Any] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self._sleep, self._clock = sleep, clock  # the reconcile wait's, injectable so tests need not wait it out
        self.journal = journal
        self.passwords = passwords
        self.stop = stop or threading.Event()
        self.progress = progress or Progress()
        self.fail_on_existing = fail_on_existing
        self.max_rounds = max_rounds
        self.conflict_lookup_s = conflict_lookup_s
        self.throttled_count = throttled_count
        self._lock = threading.Lock()
        self._items: dict[int, CreateItem] = {}
        self._sends: dict[int, int] = {}
        self._written_pw: dict[int, str] = {}
        self._recheck: dict[int, str] = {}  # row -> "ambiguous" | "conflict-retried" | "conflict-first"
        self.fatal: ExitStatus | None = None
        self.fatal_message = ""
        #: What this session sent and heard, kept in memory too: when the journal cannot be written any more,
        #: the message still says who was created.
        self.sent: set[int] = set()
        self.answers: dict[int, Outcome] = {}
        self.lost: RunFolderLost | None = None

    # -- callbacks from the graph client's threads --------------------------------------------------------------
    def _on_send(self, chunk: Sequence[Any]) -> None:
        rows = [int(r.id) for r in chunk]
        new_pw = []
        with self._lock:
            for row in rows:
                item = self._items[row]
                if item.password_generated:
                    pw = item.body["passwordProfile"]["password"]
                    if self._written_pw.get(row) != pw:
                        new_pw.append((row, item.upn, pw))
        try:
            if self.passwords is not None and new_pw:
                self.passwords.add(new_pw)  # on disk before the request can take effect
            self.journal.mark_sending(rows)
            # checked after the writes: they went to the files a later resume opens, not to removed ones
            self.journal.check_intact()
            if self.passwords is not None:
                self.passwords.check_intact()
        except (RunFolderLost, OSError) as exc:
            path = getattr(self.passwords, "path", None) if isinstance(exc, OSError) else None
            self._folder_lost(lost_from(exc, path or self.journal.path))
            raise ChunkRefused() from exc  # this chunk must not leave: what it would create could not be recorded
        with self._lock:
            for row in rows:
                self._sends[row] = self._sends.get(row, 0) + 1
                self.sent.add(row)
            for row, _, pw in new_pw:
                self._written_pw[row] = pw
        log.debug("sending rows %s", rows)

    def _folder_lost(self, lost: RunFolderLost) -> None:
        with self._lock:
            if self.lost is None:
                self.lost = lost
        # INFO, not ERROR: the one line on stderr is the full account, built once the answers in flight are in
        self._set_fatal(ExitStatus.RUN_FOLDER_LOST, str(lost), logging.INFO)

    def _record(self, row: int, outcome: Outcome) -> None:
        """Journal an answer; when the journal cannot take it, the run stops and the answer is kept in memory
        (``answers``) for the message that says who exists."""
        with self._lock:
            self.answers[row] = outcome
        try:
            self.journal.record(row, outcome)
        except RunFolderLost as exc:
            self._folder_lost(exc)

    def _on_result(self, resp: Any) -> None:
        row = int(resp.id)
        status = int(getattr(resp, "status", 0) or 0)
        body = getattr(resp, "body", None)
        error = getattr(resp, "error", None)
        headers = getattr(resp, "headers", None) or {}
        item = self._items[row]
        if status in (200, 201) and isinstance(body, Mapping) and body.get("id") and error is None:
            rid = _error_fields(status, body, None, headers)["request_id"]
            self._final(row, Outcome(RowState.CREATED, str(body["id"]), status, request_id=rid))
            log.info("row %d created %s id=%s request-id=%s", row, item.upn, body["id"], rid)
            return
        info = _error_fields(status, body, error, headers)
        if getattr(resp, "ambiguous", False):
            with self._lock:
                self._recheck[row] = "ambiguous"
            self._record(row, Outcome(RowState.UNKNOWN, **info))
            log.info("row %d %s: outcome unknown (%s %s), will look it up before re-sending; request-id=%s",
                     row, item.upn, status, info["message"], info["request_id"])
            return
        if is_conflict(error):
            with self._lock:
                retried = self._sends.get(row, 0) > 1 or int(getattr(resp, "attempts", 1) or 1) > 1
                self._recheck[row] = "conflict-retried" if retried else "conflict-first"
            self._record(row, Outcome(RowState.UNKNOWN, **info))
            log.info("row %d %s: already exists (%s send), reconciling by lookup; request-id=%s", row, item.upn,
                     "retried" if retried else "first", info["request_id"])
            return
        if isinstance(error, AuthError) or status in (401, 403):
            message = (explain_denied("POST", "/users", GraphError.__str__(error) if error else "403")
                       if status == 403 else f"Graph refused the credentials: {error or status}")
            self._set_fatal(ExitStatus.CONFIG, message)
            self._record(row, Outcome(RowState.PENDING, **info))
            return
        if isinstance(error, ServiceUnavailableError) or status == 429 or status >= 500 or status == 0:
            self._set_fatal(ExitStatus.UNAVAILABLE, f"Graph stayed unavailable after retries: {error or status}")
            self._record(row, Outcome(RowState.PENDING, **info))
            return
        self._final(row, Outcome(RowState.FAILED, **info))
        log.info("row %d %s failed: %s %s %s request-id=%s", row, item.upn, status, info["error_code"],
                 info["message"], info["request_id"])

    def _final(self, row: int, outcome: Outcome) -> None:
        self._record(row, outcome)
        with self._lock:
            self._recheck.pop(row, None)
        self.progress.done(outcome.state)
        if self.throttled_count is not None:
            self.progress.set_throttled(self.throttled_count())

    def _set_fatal(self, status: ExitStatus, message: str, level: int = logging.ERROR) -> None:
        with self._lock:
            if self.fatal is None:
                self.fatal, self.fatal_message = status, message
                log.log(level, "stopping the run: %s", message)
        self.stop.set()

    # -- the rounds ---------------------------------------------------------------------------------------------
    def _requests(self, rows: Sequence[int]) -> Iterator[Any]:
        for row in rows:
            if self.stop.is_set():
                return
            item = self._items[row]
            yield BatchRequest(id=str(row), method="POST", url="/users", body=dict(item.body),
                               headers={"Content-Type": "application/json"})

    def run(self, items: Sequence[CreateItem], *, in_doubt: Sequence[int] = (),
            previous_sends: Mapping[int, int] | None = None,
            written_passwords: Mapping[int, str] | None = None) -> ApplyResult:
        """Create ``items``; return when each has a final state or the run must stop.

        Resume passes ``in_doubt``: rows found *sending*/*unknown* in the journal, looked up by UPN before anything
        is sent (found = created by this run; not found = sent like the pending ones). ``previous_sends`` says how
        often each row was sent by earlier sessions, so an "already exists" answer to its first send in this
        session is still recognised as the answer to a retried create; ``written_passwords`` are the generated
        passwords already in passwords.csv.
        """
        start = time.monotonic()
        governor = getattr(self.client, "governor", None)
        self.progress.watch(self.throttled_count, getattr(governor, "wait_s", None))
        try:
            return self._run(items, start, in_doubt=in_doubt, previous_sends=previous_sends,
                             written_passwords=written_passwords)
        finally:
            self.progress.close()

    def _run(self, items: Sequence[CreateItem], start: float, *, in_doubt: Sequence[int],
             previous_sends: Mapping[int, int] | None, written_passwords: Mapping[int, str] | None) -> ApplyResult:
        self._items = {i.row: i for i in items}
        self._sends = dict(previous_sends or {})
        self._written_pw = dict(written_passwords or {})
        rounds = 0
        try:
            rounds = self._rounds(items, in_doubt)
        except RunFolderLost as exc:  # a journal write between the batches (reconcile, re-queue) failed
            self._folder_lost(exc)
        return self._result(time.monotonic() - start, rounds)

    def _rounds(self, items: Sequence[CreateItem], in_doubt: Sequence[int]) -> int:
        doubt = set(in_doubt)
        todo = [i.row for i in items if i.row not in doubt]
        if doubt:
            with self._lock:
                self._recheck = {r: "ambiguous" for r in sorted(doubt)}
            resend = self.reconcile()
            if resend:
                self.journal.set_rows_state(resend, RowState.PENDING)
            todo = sorted(set(todo) | set(resend))
        rounds = 0
        while todo and not self.stop.is_set() and rounds < self.max_rounds:
            rounds += 1
            log.info("round %d: sending %d creates", rounds, len(todo))
            try:
                left = self.client.run_batches(self._requests(todo), on_send=self._on_send,
                                               on_result=self._on_result, stop=self.stop)
                # Stopped while these waited out a 429: Graph did not execute them, so they are simply pending.
                waiting = [int(r.id) for r in left or ()]
                if waiting:
                    self.journal.set_rows_state(waiting, RowState.PENDING)
            except AuthError as exc:
                self._set_fatal(ExitStatus.CONFIG, str(exc))
            except ServiceUnavailableError as exc:
                self._set_fatal(ExitStatus.UNAVAILABLE, str(exc))
            except ChunkRefused:
                pass  # _on_send has stopped the run and said why
            if self.stop.is_set():
                break
            todo = self.reconcile()
            if todo:
                self.journal.set_rows_state(todo, RowState.PENDING)
        if todo and not self.stop.is_set() and rounds >= self.max_rounds:
            self._set_fatal(ExitStatus.UNAVAILABLE, f"{len(todo)} creates still had no answer after {rounds} rounds")
        return rounds

    def reconcile(self) -> list[int]:
        """Look up every row whose outcome is in doubt; record what is found; return the rows to send again."""
        with self._lock:
            recheck = dict(self._recheck)
        if not recheck:
            return []
        resend: list[int] = []
        waiting = dict(recheck)
        deadline = self._clock() + self.conflict_lookup_s
        delay = 0.25
        while waiting:
            try:
                found = find_users(self.client, [self._items[r].upn for r in waiting])
            except AuthError as exc:
                self._set_fatal(ExitStatus.CONFIG, str(exc))
                return []
            except ServiceUnavailableError as exc:
                self._set_fatal(ExitStatus.UNAVAILABLE, str(exc))
                return []
            for row, why in list(waiting.items()):
                item = self._items[row]
                user = found.get(item.upn.lower())
                if user is not None:
                    del waiting[row]
                    self._settle_found(row, why, user)
                elif why == "ambiguous":
                    del waiting[row]  # not there: the create did not happen (or is not visible yet: a re-send
                    resend.append(row)  # then answers "already exists" and is reconciled as a retried create)
                    with self._lock:
                        self._recheck.pop(row, None)
            if not waiting:
                break
            # "already exists" but not found yet: replication lag; Graph's uniqueness check is immediate, reads lag.
            if self._clock() >= deadline or self.stop.is_set():
                for row in waiting:
                    self.journal.record(row, Outcome(RowState.UNKNOWN, message="Graph says the user exists but a "
                                                     "lookup by userPrincipalName did not find it yet; resume to "
                                                     "check again"))
                break
            self._sleep(delay)
            delay = min(delay * 2, 4.0)
        return sorted(resend)

    def _settle_found(self, row: int, why: str, user: Any) -> None:
        item = self._items[row]
        ours = why in ("ambiguous", "conflict-retried") and same_person(user, item.body)
        if ours:
            self._final(row, Outcome(RowState.CREATED, user.id, 201, message="reconciled: found by "
                                     "userPrincipalName after an unconfirmed create"))
            log.info("row %d %s reconciled as created by this run, id=%s", row, item.upn, user.id)
        elif self.fail_on_existing:
            self._final(row, Outcome(RowState.FAILED, user.id, 400, EXISTS_CODE, "a user with this "
                                     "userPrincipalName already exists (--existing fail)"))
        else:
            self._final(row, Outcome(RowState.SKIPPED, user.id, message="a user with this userPrincipalName "
                                     "already exists (it appeared after pre-flight)"))
            log.info("row %d %s already existed, skipped, id=%s", row, item.upn, user.id)

    def _result(self, duration: float, rounds: int) -> ApplyResult:
        every = self.journal.states()  # reads still work when writes do not (full disk, removed file)
        states = [every[r] for r in self._items if r in every]
        return ApplyResult(
            created=sum(s is RowState.CREATED for s in states), failed=sum(s is RowState.FAILED for s in states),
            skipped=sum(s is RowState.SKIPPED for s in states),
            unknown=sum(s in (RowState.UNKNOWN, RowState.SENDING) for s in states),
            pending=sum(s is RowState.PENDING for s in states), fatal=self.fatal, fatal_message=self.fatal_message,
            interrupted=self.stop.is_set() and self.fatal is None, duration_s=duration, rounds=rounds)
