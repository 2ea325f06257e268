"""OData query building: string literals, ``eq``/``in`` filters, and query strings for ``$batch`` item URLs."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import quote

#: What ``GraphClient.iter_users`` selects by default (non-default properties only come back when selected); here,
#: not in :mod:`graph.client`, so that ``export-users --help`` need not load requests.
DEFAULT_USER_SELECT: tuple[str, ...] = (
    "id", "userPrincipalName", "displayName", "givenName", "surname", "mail", "jobTitle", "department",
    "officeLocation", "mobilePhone", "businessPhones", "usageLocation", "accountEnabled", "employeeId",
    "createdDateTime")

#: Characters left as they are in query values: OData syntax reads better unescaped and Graph accepts it.
_SAFE = "$,()'@:=*!~-_."


def quote_string(value: str) -> str:
    """An OData string literal: single quotes around, an embedded ``'`` doubled (``O'Neil`` -> ``'O''Neil'``)."""
    return "'" + value.replace("'", "''") + "'"


def eq(prop: str, value: str) -> str:
    """``prop eq 'value'``."""
    return f"{prop} eq {quote_string(value)}"


def in_(prop: str, values: Iterable[str]) -> str:
    """``prop in ('a','b')`` (Graph supports ``in`` on userPrincipalName, mail, id, ... without advanced headers)."""
    vals = list(values)
    if not vals:
        raise ValueError("an 'in' filter needs at least one value")
    return f"{prop} in ({','.join(quote_string(v) for v in vals)})"


def query_string(params: Mapping[str, object]) -> str:
    """``$filter=...&$select=...`` with values percent-encoded (spaces, ``#``, ``&``, ``+``, non-ASCII)."""
    return "&".join(f"{quote(str(k), safe='$')}={quote(str(v), safe=_SAFE)}" for k, v in params.items()
                    if v is not None)


def user_path(id_or_upn: str) -> str:
    """The path of one user: ``/users/{id}``, ``/users/{upn}`` (``#`` as ``%23``), or ``/users('$x@y')``.

    A UPN starting with ``$`` must use the key-in-parentheses form (graph-facts 1.4).
    """
    if id_or_upn.startswith("$"):
        return f"/users({quote(quote_string(id_or_upn), safe=_SAFE)})"
    return "/users/" + quote(id_or_upn, safe="@'!~*()-_.")
