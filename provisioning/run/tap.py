"""Temporary Access Pass onboarding (``run --credential tap``): the tenant's TAP policy, read and checked before any
write, the body of each pass's request, and ``credentials.csv``, the only file that ever holds a pass.

Graph: ``GET /policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass``
(Policy.Read.AuthenticationMethod) gives ``state`` and the lifetime bounds; ``POST
/users/{id}/authentication/temporaryAccessPassMethods`` (UserAuthenticationMethod.ReadWrite.All) answers 201 with
the pass, shown that once (a later read returns it as null), and a second pass replaces the first: a row's pass is
requested once, its method id journaled, and the pass itself written here only.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graph.errors import GraphError
from provisioning.cells import csv_safe
from provisioning.errors import ConfigError, UsageError
from provisioning.run.permissions import explain_denied
from provisioning.store.records import FollowUpSeed
from provisioning.store.secrets import PasswordFile, SecretFilter, open_private_csv

if TYPE_CHECKING:
    from graph.client import GraphClient

POLICY_PATH = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass"
#: The follow-up kind of a pass in the journal (its target is always this word; its target_id the method id).
TAP_KIND = "tap"
TAP_TARGET = "temporaryAccessPass"
#: The journal's ``password_source`` of a ``--credential tap`` create: its password was generated and forgotten.
UNKEPT = "unkept"


class Credential(str, Enum):
    """What a created user signs in with first (``--credential``)."""

    PASSWORD = "password"  # the roster's or a generated password, in passwords.csv
    TAP = "tap"  # a Temporary Access Pass, in credentials.csv; the create's random password is never kept


@dataclass(frozen=True, slots=True)
class TapOptions:
    """``--tap-lifetime MINUTES`` (None: the policy's default) and ``--tap-usable-once``."""

    lifetime_minutes: int | None = None
    usable_once: bool = False

    def body(self) -> dict[str, Any]:
        """The request body of one pass: only what was asked for (the policy gives the rest)."""
        out: dict[str, Any] = {}
        if self.lifetime_minutes is not None:
            out["lifetimeInMinutes"] = self.lifetime_minutes
        if self.usable_once:
            out["isUsableOnce"] = True
        return out


@dataclass(frozen=True, slots=True)
class DeliverOptions:
    """``--deliver managers --deliver-from UPN [--deliver-passwords]``: whose mailbox sends the deliveries, and
    whether passwords may be mailed."""

    sender: str
    passwords: bool = False


@dataclass(frozen=True, slots=True)
class Onboarding:
    """A run's credential options (``RunOptions.onboarding``), journaled in its meta for ``resume`` and ``retry``."""

    credential: Credential = Credential.PASSWORD
    tap: TapOptions = TapOptions()
    deliver: DeliverOptions | None = None

    @property
    def uses_tap(self) -> bool:
        return self.credential is Credential.TAP

    def check(self, *, reset_passwords: bool = False) -> None:
        """The combinations that make sense (:class:`UsageError`, exit 2, otherwise)."""
        tap = self.uses_tap
        if not tap and self.tap != TapOptions():
            raise UsageError("--tap-lifetime and --tap-usable-once only apply with --credential tap")
        if self.deliver is not None:
            if not self.deliver.sender:
                raise UsageError("--deliver managers needs --deliver-from UPN: the mailbox that sends the mails")
            if tap and self.deliver.passwords:
                raise UsageError("--deliver-passwords only applies with --credential password")
            if not tap and not self.deliver.passwords:
                raise UsageError("--deliver managers with --credential password mails passwords: give "
                                 "--deliver-passwords to say so, or use --credential tap")
        if tap and reset_passwords:
            raise UsageError("--reset-passwords writes passwords.csv; it does not go with --credential tap")

    def meta(self) -> dict[str, Any]:
        """The journal's record of these options (never a secret)."""
        return {"credential": self.credential.value, "tap_lifetime": self.tap.lifetime_minutes,
                "tap_usable_once": self.tap.usable_once,
                "deliver_from": self.deliver.sender if self.deliver is not None else None,
                "deliver_passwords": bool(self.deliver is not None and self.deliver.passwords)}

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> Onboarding:
        """The options back from a journal's meta (a journal from before them: the password default)."""
        lifetime, sender = meta.get("tap_lifetime"), meta.get("deliver_from")
        return cls(Credential(meta.get("credential") or Credential.PASSWORD.value),
                   TapOptions(int(lifetime) if lifetime else None, bool(meta.get("tap_usable_once"))),
                   DeliverOptions(str(sender), bool(meta.get("deliver_passwords"))) if sender else None)

    def rows(self, creates: Iterable[Any], bound: Iterable[int] = ()) -> tuple[set[int], set[int]]:
        """(rows that get a pass, rows whose credential is delivered) of a plan's creates (``Action`` values) and a
        retry's rows ``bound`` to accounts an earlier run created (they get the pass they lack)."""
        creates = list(creates)
        if self.uses_tap:
            new = {a.row for a in creates} | set(bound)
            return new, new if self.deliver is not None else set()
        generated = {a.row for a in creates if a.user is not None and a.user.password_generated}
        return set(), generated if self.deliver is not None else set()


def deliver_only_new(seeds: Iterable[FollowUpSeed]) -> list[FollowUpSeed]:
    """A TAP retry: a row whose pass an earlier run issued has it in that run's file, so this run delivers only
    the passes it issues itself."""
    seeds = list(seeds)
    issuing = {s.row for s in seeds if s.kind == TAP_KIND}
    return [s for s in seeds if s.kind != "delivery" or s.row in issuing]


@dataclass(frozen=True, slots=True)
class TapPolicy:
    """The tenant's Temporary Access Pass policy, as far as a run cares."""

    enabled: bool
    minimum: int
    maximum: int
    default: int
    usable_once: bool

    @classmethod
    def from_graph(cls, doc: Mapping[str, Any]) -> TapPolicy:
        return cls(enabled=str(doc.get("state") or "").lower() == "enabled",
                   minimum=int(doc.get("minimumLifetimeInMinutes") or 60),
                   maximum=int(doc.get("maximumLifetimeInMinutes") or 480),
                   default=int(doc.get("defaultLifetimeInMinutes") or 60),
                   usable_once=bool(doc.get("isUsableOnce")))

    def describe(self) -> str:
        once = "one-time use only" if self.usable_once else "one-time or multi-use"
        return (f"{'enabled' if self.enabled else 'disabled'}, lifetime {self.minimum}..{self.maximum} minutes "
                f"(default {self.default}), {once}")


class TapPolicyError(ConfigError):
    """The tenant's TAP policy does not allow the passes this run would issue (exit 3)."""


ENABLE_HOW = ("enable it in the Entra admin center under Protection > Authentication methods > Policies > "
              "Temporary Access Pass (Enable, target the users), or run with --credential password")


def read_tap_policy(client: GraphClient) -> TapPolicy:
    """The tenant's TAP policy; a 403 names the permission it needs (exit 3)."""
    try:
        return TapPolicy.from_graph(client.get(POLICY_PATH))
    except GraphError as exc:
        if exc.status == 403:
            raise ConfigError(explain_denied("GET", POLICY_PATH, exc.message or str(exc))) from exc
        raise


def check_tap_policy(policy: TapPolicy, options: TapOptions) -> None:
    """Refuse, before any write, passes the policy would refuse: a disabled policy (exit 3), a lifetime outside
    its bounds (exit 2)."""
    if not policy.enabled:
        raise TapPolicyError(f"--credential tap: the tenant's Temporary Access Pass policy is disabled, so no pass "
                             f"can be issued; {ENABLE_HOW}")
    lifetime = options.lifetime_minutes
    if lifetime is not None and not policy.minimum <= lifetime <= policy.maximum:
        raise UsageError(f"--tap-lifetime {lifetime}: the tenant's Temporary Access Pass policy allows "
                         f"{policy.minimum} to {policy.maximum} minutes; give a lifetime in that range (or none "
                         f"for the policy's default, {policy.default} minutes)")


@dataclass(frozen=True, slots=True)
class IssuedPass:
    """One pass as written to credentials.csv (times in UTC, ISO 8601)."""

    row: int
    upn: str
    passcode: str
    start: str
    end: str


def issued_from(row: int, upn: str, answer: Mapping[str, Any]) -> IssuedPass:
    """The pass of a 201 answer, with its end time computed from its start and lifetime."""
    start_text = str(answer.get("startDateTime") or answer.get("createdDateTime") or "")
    try:
        start = dt.datetime.fromisoformat(start_text.replace("Z", "+00:00"))
        end = (start + dt.timedelta(minutes=int(answer.get("lifetimeInMinutes") or 0))).astimezone(dt.UTC)
        end_text = end.strftime("%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        end_text = ""
    return IssuedPass(row, upn, str(answer.get("temporaryAccessPass") or ""), start_text, end_text)


class TapFile:
    """``credentials.csv``: ``row,userPrincipalName,temporaryAccessPass,startDateTime,endDateTime``.

    Created with mode 0600 (``O_EXCL``) before the first pass is requested (:meth:`prepare`); each pass is
    appended, flushed and fsync'd as soon as its answer arrives, before the journal records it done. Every pass
    written or read back is registered with the run's :class:`SecretFilter` so that run.log never shows it."""

    COLUMNS = ("row", "userPrincipalName", "temporaryAccessPass", "startDateTime", "endDateTime")

    def __init__(self, path: Path, secrets: SecretFilter | None = None) -> None:
        self.path = Path(path)
        self.secrets = secrets
        self._lock = threading.Lock()
        self._fh: io.TextIOWrapper | None = None

    def prepare(self) -> None:
        """Create the file (owner-only, with its header) if it is not there; refuse a link or a file others can
        read."""
        with self._lock:
            self._open()

    def _open(self) -> io.TextIOWrapper:
        if self._fh is None:
            self._fh = open_private_csv(self.path, self.COLUMNS)
        return self._fh

    def add(self, issued: IssuedPass) -> None:
        """Append one pass; return once it is on disk."""
        if self.secrets is not None:
            self.secrets.add_secrets([issued.passcode])
        with self._lock:
            fh = self._open()
            csv.writer(fh).writerow((issued.row, csv_safe(issued.upn), issued.passcode, issued.start, issued.end))
            fh.flush()
            os.fsync(fh.fileno())

    def load(self) -> dict[int, IssuedPass]:
        """The passes on disk by row (the last line of a row wins); each is registered with the secret filter."""
        out: dict[int, IssuedPass] = {}
        if not self.path.is_file():
            return out
        with open(self.path, newline="", encoding="utf-8") as fh:
            for rec in csv.DictReader(fh):
                try:
                    row = int(rec["row"])
                    out[row] = IssuedPass(row, rec["userPrincipalName"], rec["temporaryAccessPass"],
                                          rec["startDateTime"], rec["endDateTime"])
                except (KeyError, ValueError, TypeError):
                    continue
        if self.secrets is not None:
            self.secrets.add_secrets(p.passcode for p in out.values())
        return out

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None


class UnkeptPasswords(PasswordFile):
    """``--credential tap``: the random password a create needs is sent and forgotten, never written or shown
    (the user signs in with the pass)."""

    def add(self, entries: Sequence[tuple[int, str, str]]) -> None:
        return
