"""Typed, frozen values that cross module boundaries inside ``provisioning``."""
from __future__ import annotations

import dataclasses as _dc
import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol, runtime_checkable

from provisioning.bulk import gc_paused
from provisioning.fields import FIELDS


class Severity(str, Enum):
    """An error excludes the row from the run; a warning is reported and the row goes ahead."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Issue:
    """One finding about one cell, row or the roster as a whole.

    ``row`` is the row number as the user sees it in Excel or a text editor (header = row 1, or row 2 in the
    Entra admin center template whose first line is ``version:v1.0``); 0 means the roster as a whole.
    ``column`` is the column header as written in the roster (not the canonical name) where there is one.
    ``code`` is stable across releases, so scripts and the report can key on it.
    """

    row: int
    column: str
    code: str
    severity: Severity
    message: str


# --- Roster and validation (step 3). The run engine codes against these; see docs/architecture.md. ----------------


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One data row of the roster as read: ``row`` is the Excel row number; ``cells`` the original texts, aligned
    with :attr:`Roster.headers` (missing trailing cells are ``""``)."""

    row: int
    cells: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Roster:
    """A roster file as read by :func:`provisioning.roster.reader.load_roster` (no rule applied yet).

    ``kind`` is ``"csv"``, ``"entra-csv"`` (admin center bulk-create template), ``"m365-csv"`` (Microsoft 365 admin
    center "add multiple users"), ``"xlsx"``, ``"entra-xlsx"`` or ``"m365-xlsx"``. ``headers`` are the original
    header texts in order; ``header_row`` their Excel row number; ``column_map`` maps each original header to its
    canonical field (``None`` for an unknown column, kept and reported). ``sha256`` is of the file's bytes.
    ``warnings`` are the issues the reader found: roster-level ones (row 0), e.g. ``unknown-column``, and cell
    ones (with a row number; an error there excludes the row from the run). ``constants``, ``naming_template``,
    ``display_name_template`` and ``domain`` come from the ``--mapping`` file, if any.

    The cells are stored column-wise (``columns[j][i]`` is data row ``i``'s cell under ``headers[j]``, whose Excel
    row number is ``row_numbers[i]``), which is what validation works on; :attr:`rows` gives the same data as
    :class:`SourceRow` tuples, built on first use.
    """

    path: str
    sheet: str | None
    kind: str
    headers: tuple[str, ...]
    header_row: int
    row_numbers: tuple[int, ...]
    columns: tuple[tuple[str, ...], ...] = _dc.field(repr=False)
    column_map: Mapping[str, str | None] = _dc.field(default_factory=dict)
    sha256: str = ""
    warnings: tuple[Issue, ...] = ()
    constants: Mapping[str, str] = _dc.field(default_factory=dict)
    naming_template: str | None = None
    display_name_template: str | None = None
    domain: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    _cache: dict[str, Any] = _dc.field(default_factory=dict, repr=False, compare=False)

    @property
    def rows(self) -> tuple[SourceRow, ...]:
        """One :class:`SourceRow` per non-blank data row, in file order (built once, then cached)."""
        rows = self._cache.get("rows")
        if rows is None:
            width = len(self.headers)
            cols = list(self.columns) + [("",) * len(self.row_numbers)] * (width - len(self.columns))
            # a bulk step: 100,000 rows of new tuples would otherwise set off full collections of every object of
            # the process (pandas and numpy loaded: 0.07 s for a 6,000-row roster)
            with gc_paused():
                rows = self._cache["rows"] = (tuple(map(SourceRow, self.row_numbers, zip(*cols, strict=True)))
                                              if width else tuple(SourceRow(n, ()) for n in self.row_numbers))
        return rows

    def typed(self, field: str) -> tuple[str, ...]:
        """The cells of the first column mapped to ``field`` as typed (before any rule or derivation), or ()."""
        for j, header in enumerate(self.headers):
            if self.column_map.get(header) == field:
                return self.columns[j] if j < len(self.columns) else ()
        return ()

    @classmethod
    def from_rows(cls, rows: Sequence[SourceRow], **fields: Any) -> Roster:
        """A Roster from row tuples (tests, retry sources): ``Roster.from_rows(rows, path=..., headers=...)``."""
        width = len(fields["headers"])
        columns = tuple(zip(*(r.cells for r in rows), strict=False)) if rows else tuple(() for _ in range(width))
        return cls(row_numbers=tuple(r.row for r in rows), columns=columns, **fields)


#: Fields of :attr:`UserRow.fields` that are not Graph user properties and stay out of :meth:`UserRow.graph_body`.
FOLLOW_UP_FIELDS = frozenset({"groups", "licenses", "manager"})
_ORG_DATA = ("division", "costCenter")
#: the roster's DateTimeOffset properties
_DATE_FIELDS = frozenset(f.name for f in FIELDS if f.kind == "date")


def graph_datetime(value: str) -> str:
    """A date or date-time the ``date-invalid`` rule accepts (ISO 8601: ``2024-03-01``, ``2024-03-01 09:30``,
    ``2024-03-01T09:30:00+02:00``) as the UTC DateTimeOffset Graph takes, ``2024-03-01T07:30:00Z``; a date alone
    is midnight UTC, a time without an offset is taken as UTC. Text the rule refuses is returned unchanged."""
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class UserRow:
    """One roster row after derivation and validation (valid or not).

    ``fields``: canonical Graph property -> value (``str``; ``bool`` for ``accountEnabled``; ``list[str]`` for
    ``businessPhones``/``otherMails``/``groups``/``licenses``; ``manager`` is a UPN). Neither ``password`` nor
    ``forceChangePasswordNextSignIn`` is in ``fields``: see ``password`` (never in repr/str/logs),
    ``password_generated`` and ``force_change_password``. ``derived`` names the fields this tool filled in;
    ``extras`` holds the unknown columns (original header -> text). ``has_errors`` excludes the row from a run.
    """

    row: int
    fields: Mapping[str, Any]
    password: str = _dc.field(repr=False, compare=False)
    password_generated: bool = False
    force_change_password: bool = True
    derived: frozenset[str] = frozenset()
    extras: Mapping[str, str] = _dc.field(default_factory=dict)
    has_errors: bool = False

    @property
    def upn(self) -> str:
        """The userPrincipalName ("" when it could not be derived)."""
        return str(self.fields.get("userPrincipalName", ""))

    @property
    def groups(self) -> tuple[str, ...]:
        """Group names or ids to add the user to (follow-up step)."""
        return tuple(self.fields.get("groups", ()))

    @property
    def licenses(self) -> tuple[str, ...]:
        """SKU part numbers or ids to assign (follow-up step)."""
        return tuple(self.fields.get("licenses", ()))

    @property
    def manager(self) -> str | None:
        """The manager's UPN, or None (follow-up step)."""
        return self.fields.get("manager") or None

    def graph_body(self) -> dict[str, Any]:
        """The exact JSON body for ``POST /users``: every provided Graph property plus ``passwordProfile``.

        ``groups``, ``licenses`` and ``manager`` are left out (follow-up calls); ``division``/``costCenter`` go
        into ``employeeOrgData``; ``employeeHireDate`` becomes a UTC DateTimeOffset (:func:`graph_datetime`).
        """
        body: dict[str, Any] = {}
        org: dict[str, str] = {}
        for name, value in self.fields.items():
            if name in FOLLOW_UP_FIELDS:
                continue
            if name in _ORG_DATA:
                org[name] = value
            elif isinstance(value, list):
                body[name] = list(value)
            elif name in _DATE_FIELDS:
                body[name] = graph_datetime(value)
            else:
                body[name] = value
        if org:
            body["employeeOrgData"] = org
        body["passwordProfile"] = {"password": self.password,
                                   "forceChangePasswordNextSignIn": self.force_change_password}
        return body


@dataclass(frozen=True, slots=True)
class Validation:
    """Result of :func:`provisioning.validation.engine.validate_roster`: one :class:`UserRow` per source row
    (same order, valid or not) and every issue (roster-level first, then by row)."""

    rows: tuple[UserRow, ...]
    issues: tuple[Issue, ...]

    @property
    def error_count(self) -> int:
        """Number of issues of severity error."""
        return sum(1 for i in self.issues if i.severity is Severity.ERROR)

    @property
    def valid_rows(self) -> tuple[UserRow, ...]:
        """The rows without errors."""
        return tuple(r for r in self.rows if not r.has_errors)


@dataclass(frozen=True, slots=True)
class ExistingUser:
    """A user already in the tenant, as returned by :meth:`TenantView.lookup`."""

    id: str
    userPrincipalName: str
    displayName: str | None = None
    employeeId: str | None = None
    mail: str | None = None


@runtime_checkable
class TenantView(Protocol):
    """What validation may ask of a tenant. Domains are lower-case.

    ``lookup`` takes UPNs (any case) and returns the ones that exist, keyed by lower-case UPN; it is called in bulk
    (once per round of candidates), never once per row.
    """

    @property
    def verified_domains(self) -> frozenset[str]: ...

    @property
    def federated_domains(self) -> frozenset[str]: ...

    @property
    def default_domain(self) -> str: ...

    def lookup(self, upns: Collection[str]) -> Mapping[str, ExistingUser]:
        """Existing users among ``upns``, keyed by lower-case UPN."""
        ...


@dataclass(frozen=True, slots=True)
class DeletedUser:
    """A user in Deleted users (restorable for 30 days after ``deleted``)."""

    id: str
    userPrincipalName: str
    displayName: str = ""
    mailNickname: str = ""
    employeeId: str = ""
    deleted: str = ""  # deletedDateTime as Graph gives it

    @property
    def upn(self) -> str:
        """The UPN it had: a leading copy of its object id (without hyphens) is removed, should Graph have
        prefixed the UPN of the deleted user with it (UNCONFIRMED, docs/graph-facts-local.md)."""
        prefix = self.id.replace("-", "").lower()
        low = self.userPrincipalName.lower()
        return self.userPrincipalName[len(prefix):] if prefix and low.startswith(prefix) and "@" in low[
            len(prefix):] else self.userPrincipalName
