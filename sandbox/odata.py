"""A small OData ``$filter`` parser (the subset Graph supports by default on directory objects).

Supported: ``prop eq 'v'`` (also ``eq null``, ``eq true``), ``prop in ('a','b')``, ``startsWith(prop,'v')``,
``and`` / ``or`` and parentheses. ``ne``, ``not`` and ``endsWith`` are advanced queries (graph-facts 5): they need
``ConsistencyLevel: eventual`` plus ``$count=true`` and are refused otherwise. String comparison is
case-insensitive like the directory's. The parser returns a predicate over a resource's property dict.

More than 15 clauses joined by ``or`` -> 400 Request_UnsupportedQuery "Too many child clauses specified in search
filter expression containing 'OR' operators: 18. Max allowed: 15." (graph-facts addendum, public 2019 capture).
The directory expands ``prop in (...)`` into ``or`` clauses, so each value counts as one clause (the sandbox's
reading: ``in`` with 16 values is refused the same way); an ``or`` group in parentheses is counted into the
enclosing one.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Predicate = Callable[[dict[str, Any]], bool]

_TOKEN = re.compile(r"\s*(?:('(?:[^']|'')*')|([A-Za-z_][A-Za-z0-9_./]*)|(-?\d+(?:\.\d+)?)|([(),]))")


MAX_OR_CLAUSES = 15
MSG_TOO_MANY_OR = ("Too many child clauses specified in search filter expression containing 'OR' operators: {0}. "
                   "Max allowed: {1}.")


class FilterError(Exception):
    """A rejected ``$filter``; ``unsupported_property`` names the property when that is the reason,
    ``unsupported_query`` is set when the message is Graph's own Request_UnsupportedQuery text."""

    def __init__(self, message: str, unsupported_property: str | None = None, unsupported_query: bool = False):
        super().__init__(message)
        self.unsupported_property = unsupported_property
        self.unsupported_query = unsupported_query


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise FilterError(f"Syntax error at position {pos} in '{text}'.")
        s, ident, num, punct = m.groups()
        if s is not None:
            out.append(("str", s[1:-1].replace("''", "'")))
        elif ident is not None:
            low = ident.lower()
            if low in ("true", "false"):
                out.append(("lit", low == "true"))
            elif low == "null":
                out.append(("lit", None))
            else:
                out.append(("id", ident))
        elif num is not None:
            out.append(("lit", float(num) if "." in num else int(num)))
        else:
            out.append(("p", punct))
        pos = m.end()
    return out


def _norm(v: Any) -> Any:
    return v.lower() if isinstance(v, str) else v


def _values(doc: dict[str, Any], prop: str) -> list[Any]:
    v = doc.get(prop)
    return [_norm(x) for x in v] if isinstance(v, list) else [_norm(v)]


class _Parser:
    def __init__(self, text: str, props: dict[str, str], advanced: bool):
        self.toks = _tokens(text)
        self.i = 0
        self.text = text
        self.props = props  # lower-case name -> canonical name
        self.advanced = advanced
        self.clauses: list[int] = []  # clauses of each open or-group

    def peek(self) -> tuple[str, Any] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, Any]:
        tok = self.peek()
        if tok is None:
            raise FilterError(f"Syntax error: unexpected end of '{self.text}'.")
        self.i += 1
        return tok

    def expect(self, kind: str, value: Any = None) -> Any:
        tok = self.take()
        if tok[0] != kind or (value is not None and tok[1] != value):
            raise FilterError(f"Syntax error at token {self.i} in '{self.text}'.")
        return tok[1]

    def keyword(self, word: str) -> bool:
        tok = self.peek()
        if tok and tok[0] == "id" and tok[1].lower() == word:
            self.i += 1
            return True
        return False

    def prop(self, name: str) -> str:
        canonical = self.props.get(name.lower())
        if canonical is None:
            raise FilterError("unsupported", unsupported_property=name)
        return canonical

    def parse(self) -> Predicate:
        pred = self.or_expr()
        if self.peek() is not None:
            raise FilterError(f"Syntax error at token {self.i} in '{self.text}'.")
        return pred

    def or_expr(self) -> Predicate:
        self.clauses.append(0)
        parts = [self.disjunct()]
        while self.keyword("or"):
            parts.append(self.disjunct())
        count = self.clauses.pop()
        if count > MAX_OR_CLAUSES:
            raise FilterError(MSG_TOO_MANY_OR.format(count, MAX_OR_CLAUSES), unsupported_query=True)
        if self.clauses and len(parts) > 1:
            self.clauses[-1] += count - 1  # a parenthesised or-group adds its clauses to the enclosing one
        return parts[0] if len(parts) == 1 else (lambda d: any(p(d) for p in parts))

    def disjunct(self) -> Predicate:
        self.clauses[-1] += 1
        return self.and_expr()

    def and_expr(self) -> Predicate:
        parts = [self.unary()]
        while self.keyword("and"):
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda d: all(p(d) for p in parts))

    def literal(self) -> Any:
        kind, value = self.take()
        if kind not in ("str", "lit"):
            raise FilterError(f"Syntax error at token {self.i} in '{self.text}'.")
        return value

    def unary(self) -> Predicate:
        tok = self.peek()
        if tok == ("p", "("):
            self.take()
            inner = self.or_expr()
            self.expect("p", ")")
            return inner
        if tok and tok[0] == "id" and tok[1].lower() == "not":
            self.take()
            if not self.advanced:
                raise FilterError("unsupported", unsupported_property="not")
            inner = self.unary()
            return lambda d: not inner(d)
        name = self.expect("id")
        low = name.lower()
        if low in ("startswith", "endswith") and self.peek() == ("p", "("):
            self.take()
            prop = self.prop(self.expect("id"))
            self.expect("p", ",")
            arg = _norm(self.literal())
            self.expect("p", ")")
            if low == "endswith":
                if not self.advanced:
                    raise FilterError("unsupported", unsupported_property=prop)
                return lambda d: any(isinstance(v, str) and v.endswith(arg) for v in _values(d, prop))
            return lambda d: any(isinstance(v, str) and v.startswith(arg) for v in _values(d, prop))
        prop = self.prop(name)
        op = self.expect("id").lower()
        if op == "in":
            self.expect("p", "(")
            items = {_norm(self.literal())}
            n = 1
            while self.peek() == ("p", ","):
                self.take()
                items.add(_norm(self.literal()))
                n += 1
            self.expect("p", ")")
            self.clauses[-1] += n - 1
            return lambda d: any(v in items for v in _values(d, prop))
        value = _norm(self.literal())
        if op == "eq":
            return lambda d: value in _values(d, prop)
        if op == "ne":
            if not self.advanced:
                raise FilterError("unsupported", unsupported_property=prop)
            return lambda d: value not in _values(d, prop)
        raise FilterError("unsupported", unsupported_property=prop)


def parse_filter(text: str, props: list[str] | tuple[str, ...], *, advanced: bool = False) -> Predicate:
    """Compile ``text`` into a predicate; raises :class:`FilterError`."""
    return _Parser(text, {p.lower(): p for p in props}, advanced).parse()
