"""Fixed tenant data and the knobs (frozen configuration) of the sandbox.

Knob semantics (Python names; the CLI options of ``sandbox serve`` map onto them):

- ``write_quota=(3000, 150)``: per app+tenant write bucket, N writes per SECONDS (graph-facts 3.2).
- ``ru_quota=None``: per app+tenant resource-unit bucket; ``None`` means Graph's figure for the tenant size
  (S 3,500 / M 5,000 / L 8,000 RU per 10 s).
- ``tenant_wide_write_quota=(18000, 300)``: the tenant-wide (all apps) write bucket.
- ``tenant_size=None``: ``"S"``, ``"M"`` or ``"L"``; ``None`` derives it from the user count
  (S < 50, M 50-500, L > 500).
- ``latency_ms=(0, 0)``: mean and jitter (uniform +-jitter) added to every Graph answer, outside any lock.
- ``replication_lag_ms=0``: a user created less than this long ago is invisible to reads and PATCH
  (404) while POST uniqueness is immediate (graph-facts 5; UNCONFIRMED duration, hence a knob).
- ``token_lifetime=3599``: ``expires_in`` and the JWT ``exp`` of issued tokens.
- ``clock_offset_s=0``: the token endpoint's clock runs this many seconds off the machine's (-7200: as seen from a
  client whose clock is two hours fast); client assertions are judged, and tokens stamped, by that clock.
- ``faults={"503": 0.0, "reset": 0.0, "slow": 0.0, "lost": 0.0, "token500": 0.0, "token429": 0.0}``: per-request
  probabilities; the first four on Graph paths only, ``token500``/``token429`` on the token endpoint only (an
  Entra outage or throttling: HTTP 500 or 429 with ``Retry-After``).
- ``slow_ms=30000``: delay of a "slow" answer.
- ``users=0``: pre-seeded users (``seed.user00001@contoso.com`` ...), added at start when missing.
- ``seed=None``: seed of the fault/latency RNG.
- ``roles``: application permissions put in issued tokens.
- ``directory_roles``: directory role template ids the app holds (the tokens' ``wids``); a PATCH that resets
  another user's password needs one of :data:`PASSWORD_RESET_ROLES` (default: User Administrator).
- ``object_quota=300000``: directory object quota (graph-facts 3.6) -> 403 Directory_QuotaExceeded.
- ``throttle_code="TooManyRequests"``: code of 429 bodies (UNCONFIRMED item 3: may be set to
  ``"Request_ThrottledTemporarily"``).
- ``skus={"ENTERPRISEPACK": 25, "SPE_E5": 5, "EXCHANGESTANDARD": 10, "FLOW_FREE": 10000}``: seats
  (``prepaidUnits.enabled``) per SKU part number of ``GET /subscribedSkus``; given values are merged into the
  defaults, an unknown part number adds a SKU (skuId derived from the name); ``"PART=SEATS"`` strings accepted.
- ``assign_license_requires_both=True``: ``assignLicense`` without ``addLicenses`` or ``removeLicenses`` -> 400
  (UNCONFIRMED item 10; False accepts a missing array as empty).
- ``mailbox_requires_license=False``: when True, ``sendMail`` from a user holding no SKU with an Exchange plan
  -> 404 MailboxNotEnabledForRESTAPI (real mailboxes need an Exchange licence and some provisioning time).
- ``secret_expired=False``: when True, the client secret is expired: a token request with it -> 401
  invalid_client AADSTS7000222 (the certificate credential still works).
- ``tap_policy={"state": "enabled", "defaultLifetimeInMinutes": 60, "defaultLength": 8,
  "minimumLifetimeInMinutes": 60, "maximumLifetimeInMinutes": 480, "isUsableOnce": False}``: the tenant's
  Temporary Access Pass policy (:mod:`sandbox.tap`; the defaults are the get page's example); given values are merged
  into the current ones. Short names are accepted (``state``, ``default``, ``length``, ``min``, ``max``, ``once``),
  also as one ``"state=disabled,min=60,max=480"`` string. Lifetimes 10..43200 with min <= default <= max, length
  8..48 (the policy resource page's bounds).
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

TENANT_ID = "8a6f2c1e-3b4d-4e5f-9a7b-0c1d2e3f4a5b"
TENANT_NAME = "Contoso (sandbox)"
CLIENT_ID = "5c2b9e7a-1d3f-4a6b-8c9d-e0f1a2b3c4d5"
APP_NAME = "Bulk provisioning (sandbox)"
SP_OBJECT_ID = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_ROOT = "https://graph.microsoft.com"

#: (id, authenticationType, isDefault, isInitial, isVerified)
DOMAINS: tuple[tuple[str, str, bool, bool, bool], ...] = (
    ("contoso.onmicrosoft.com", "Managed", False, True, True),
    ("contoso.com", "Managed", True, False, True),
    ("fabrikam.com", "Managed", False, False, True),
    ("unverified.contoso.net", "Managed", False, False, False),
    ("federated.contoso.com", "Federated", False, False, True),
)

DEFAULT_ROLES: tuple[str, ...] = (
    "User.ReadWrite.All", "Domain.Read.All", "Organization.Read.All",
    "GroupMember.ReadWrite.All", "Group.Read.All", "Mail.Send",
    "UserAuthenticationMethod.ReadWrite.All", "Policy.Read.AuthenticationMethod",
)
#: Directory roles (template ids, the ``wids`` claim) the sandbox's app holds: User Administrator, so a password
#: reset by PATCH passes as it does for an app assigned that role (user-update page: app-only password resets need
#: a directory role besides the permission).
USER_ADMINISTRATOR = "fe930be7-5e62-47db-91af-98c3a49a38b1"
PASSWORD_RESET_ROLES = frozenset({USER_ADMINISTRATOR, "966707d0-3269-4727-9be2-8c3a10f19b9d",
                                  "729827e3-9c14-49f7-bb1b-9608f156bbb8", "c4e39bd9-1100-46d3-8c65-fb160da0071f",
                                  "7be44c8a-adaf-4e2a-84d6-ab2649e08a13", "62e90394-69f5-4237-9190-012177145e10"})
DEFAULT_DIRECTORY_ROLES: tuple[str, ...] = (USER_ADMINISTRATOR,)
FAULT_KINDS: tuple[str, ...] = ("503", "reset", "slow", "lost", "token500", "token429")
DEFAULT_SKU_SEATS: dict[str, int] = {"ENTERPRISEPACK": 25, "SPE_E5": 5, "EXCHANGESTANDARD": 10, "FLOW_FREE": 10000}
DEFAULT_TAP_POLICY: dict[str, Any] = {
    "state": "enabled", "defaultLifetimeInMinutes": 60, "defaultLength": 8, "minimumLifetimeInMinutes": 60,
    "maximumLifetimeInMinutes": 480, "isUsableOnce": False}
TAP_POLICY_ALIASES: dict[str, str] = {
    "default": "defaultLifetimeInMinutes", "length": "defaultLength", "min": "minimumLifetimeInMinutes",
    "max": "maximumLifetimeInMinutes", "once": "isUsableOnce"}
RU_BY_SIZE: dict[str, int] = {"S": 3500, "M": 5000, "L": 8000}
RU_WINDOW_S = 10.0


@dataclass(frozen=True)
class Knobs:
    """Runtime knobs of a sandbox; see the module docstring for their meaning."""

    write_quota: tuple[int, float] = (3000, 150.0)
    ru_quota: tuple[int, float] | None = None
    tenant_wide_write_quota: tuple[int, float] = (18000, 300.0)
    tenant_size: str | None = None
    latency_ms: tuple[float, float] = (0.0, 0.0)
    replication_lag_ms: float = 0.0
    token_lifetime: int = 3599
    clock_offset_s: float = 0.0
    faults: Mapping[str, float] = field(default_factory=lambda: {k: 0.0 for k in FAULT_KINDS})
    slow_ms: float = 30000.0
    users: int = 0
    seed: int | None = None
    roles: tuple[str, ...] = DEFAULT_ROLES
    directory_roles: tuple[str, ...] = DEFAULT_DIRECTORY_ROLES
    object_quota: int = 300000
    throttle_code: str = "TooManyRequests"
    skus: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_SKU_SEATS))
    assign_license_requires_both: bool = True
    mailbox_requires_license: bool = False
    secret_expired: bool = False
    tap_policy: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_TAP_POLICY))

    def ru_for_size(self, user_count: int) -> tuple[int, float]:
        """The RU bucket (capacity, window seconds) for the current tenant."""
        if self.ru_quota is not None:
            return self.ru_quota
        size = self.tenant_size or ("S" if user_count < 50 else "M" if user_count <= 500 else "L")
        return RU_BY_SIZE[size], RU_WINDOW_S

    def fault_rate(self, kind: str) -> float:
        """Probability of fault ``kind`` per request."""
        return float(self.faults.get(kind, 0.0))


def _quota(value: Any, name: str) -> tuple[int, float]:
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*", value)
        if not m:
            raise ValueError(f"{name}: expected N/SECONDS, got {value!r}")
        value = (int(m.group(1)), float(m.group(2)))
    n, s = value
    if int(n) < 1 or float(s) <= 0:
        raise ValueError(f"{name}: N and SECONDS must be positive")
    return int(n), float(s)


def _skus(value: Any, base: Mapping[str, int]) -> dict[str, int]:
    items = value.items() if isinstance(value, Mapping) else (
        str(v).partition("=")[::2] if isinstance(v, str) else v for v in value)
    merged = dict(base)
    for part, seats in items:
        part = str(part).strip().upper()
        if not re.fullmatch(r"[A-Z0-9_]+", part):
            raise ValueError(f"skus: invalid SKU part number {part!r}")
        try:
            n = int(seats)
        except (TypeError, ValueError):
            raise ValueError(f"skus: seats for {part} must be a whole number, got {seats!r}") from None
        if n < 0:
            raise ValueError(f"skus: seats for {part} must not be negative")
        merged[part] = n
    return merged


def _tap_policy(value: Any, base: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    items = value.items() if isinstance(value, Mapping) else (str(v).partition("=")[::2] for v in value)
    names = {k.lower(): k for k in DEFAULT_TAP_POLICY}
    merged = dict(base)
    for key, raw in items:
        key = str(key).strip()
        name = TAP_POLICY_ALIASES.get(key.lower()) or names.get(key.lower())
        if name is None:
            raise ValueError(f"tap_policy: unknown setting {key!r} (expected state, default, length, min, max, once "
                             "or the policy's property names)")
        if name == "state":
            state = str(raw).strip().lower()
            if state not in ("enabled", "disabled"):
                raise ValueError(f"tap_policy: state must be enabled or disabled, got {raw!r}")
            merged[name] = state
        elif name == "isUsableOnce":
            text = str(raw).strip().lower()
            if not isinstance(raw, bool) and text not in ("true", "false", "yes", "no", "1", "0"):
                raise ValueError(f"tap_policy: once must be true or false, got {raw!r}")
            merged[name] = raw if isinstance(raw, bool) else text in ("true", "yes", "1")
        else:
            if isinstance(raw, bool) or not re.fullmatch(r"\s*\d+\s*", str(raw)):
                raise ValueError(f"tap_policy: {key} must be a whole number, got {raw!r}")
            merged[name] = int(raw)
    lo, hi, default = (merged[k] for k in ("minimumLifetimeInMinutes", "maximumLifetimeInMinutes",
                                          "defaultLifetimeInMinutes"))
    if not 10 <= lo <= hi <= 43200:
        raise ValueError(f"tap_policy: lifetimes must satisfy 10 <= min <= max <= 43200, got min {lo}, max {hi}")
    if not lo <= default <= hi:
        raise ValueError(f"tap_policy: the default lifetime {default} is outside min {lo} .. max {hi}")
    if not 8 <= merged["defaultLength"] <= 48:
        raise ValueError(f"tap_policy: length must be between 8 and 48, got {merged['defaultLength']}")
    return merged


def make_knobs(base: Knobs | None = None, **changes: Any) -> Knobs:
    """Validate and normalise knob values (strings as on the command line are accepted too)."""
    base = base or Knobs()
    fields = {f.name for f in dataclasses.fields(Knobs)}
    unknown = set(changes) - fields
    if unknown:
        raise TypeError(f"unknown sandbox knob(s): {', '.join(sorted(unknown))}")
    out: dict[str, Any] = {}
    for key, value in changes.items():
        if key in ("write_quota", "tenant_wide_write_quota"):
            value = _quota(value, key)
        elif key == "ru_quota":
            value = None if value is None else _quota(value, key)
        elif key == "tenant_size":
            if value is not None and str(value).upper() not in RU_BY_SIZE:
                raise ValueError("tenant_size must be S, M or L")
            value = None if value is None else str(value).upper()
        elif key == "latency_ms":
            if isinstance(value, str):
                mean, _, jitter = value.partition(":")
                value = (float(mean), float(jitter or 0))
            elif isinstance(value, (int, float)):
                value = (float(value), 0.0)
            value = (max(0.0, float(value[0])), max(0.0, float(value[1])))
        elif key == "faults":
            merged = dict(base.faults)
            for kind, rate in dict(value).items():
                if kind not in FAULT_KINDS:
                    raise ValueError(f"unknown fault kind {kind!r} (expected one of {', '.join(FAULT_KINDS)})")
                rate = float(rate)
                if not 0.0 <= rate <= 1.0:
                    raise ValueError(f"fault rate for {kind} must be between 0 and 1")
                merged[kind] = rate
            value = merged
        elif key in ("roles", "directory_roles"):
            value = tuple(value)
        elif key == "skus":
            value = _skus(value, base.skus)
        elif key == "tap_policy":
            value = _tap_policy(value, base.tap_policy)
        elif key in ("assign_license_requires_both", "mailbox_requires_license", "secret_expired"):
            value = bool(value)
        elif key == "clock_offset_s":
            value = float(value)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError("clock_offset_s must be a finite number of seconds")
        elif key in ("replication_lag_ms", "slow_ms"):
            value = max(0.0, float(value))
        elif key in ("token_lifetime", "users", "object_quota"):
            value = int(value)
            if value < 0:
                raise ValueError(f"{key} must not be negative")
        out[key] = value
    return dataclasses.replace(base, **out)
