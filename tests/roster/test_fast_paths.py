"""The column-wise fast paths give exactly what the plain per-cell rules give (properties, with hypothesis).

Validation answers most questions for a whole column at once (provisioning.validation.colscan, the UPN column
regexes, the batched transliteration, the suffix assignment, identity keys, repeated rows, tenant matching); each
test here states the per-cell rule in the simplest Python and checks the fast path against it on generated columns
full of the characters that matter: blanks of every kind, formula triggers, phone numbers, control characters, NULs,
accents and characters that share UTF-8 bytes with Unicode blanks (é ends in the same byte as U+2029).
"""
from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from provisioning.models import Roster
from provisioning.roster import derive
from provisioning.roster.identity import identity_key, identity_keys
from provisioning.validation import rules
from provisioning.validation.checks import Collector, check_cells, check_field
from provisioning.validation.colscan import plain_phones, plain_upns, scan
from provisioning.validation.patterns import PHONE_COLUMN, UPN_SHAPES

TRICKY = ("aZ09 .-+=@()/;,\t\r\n\x00\x07\x1c\x7f\xa0\x85\u2029\u2000\u3000\u1680éćøß'_!#^~\u00e9\u0661"
          "\u200b\u200c\u200d\u202e\u2060\ufeff\u00ad\u0628xe")  # zero-width, direction, soft hyphen, Arabic
cells = st.text(alphabet=TRICKY, max_size=8)
columns = st.lists(cells, min_size=0, max_size=30)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _roster(n: int) -> Roster:
    return Roster(path="r.csv", sheet=None, kind="csv", headers=("c",), header_row=1,
                  row_numbers=tuple(range(2, n + 2)), columns=((),))


BLANKS = {ch for ch in map(chr, range(0x110000)) if ch.isspace()} | {"\u200b", "\u2060", "\ufeff"}


def _strip(v: str) -> str:
    while v and v[0] in BLANKS:
        v = v[1:]
    while v and v[-1] in BLANKS:
        v = v[:-1]
    return v


def _reference_cells(col: list[str], label: str, secret: bool) -> tuple[list[tuple], list[str]]:
    """The per-cell rules of check_cells, one cell at a time, no shortcuts: trim, then the formula rule on
    the trimmed text (on the text as is, blanks skipped, for a secret), control and invisible characters."""
    found, out = [], list(col)
    for i, v in enumerate(col):
        t = v if secret else _strip(v)
        if t.startswith(("\t", "\r")) or _strip(t)[:1] in ("=", "+", "-", "@"):
            f = rules.formula_problem(t, label)
            if f:
                found.append((i, f[0]))
        if _CONTROL.search(v):
            found.append((i, "control-char"))
        if rules.invisible_problem(t, label):
            found.append((i, "invisible-char"))
        if not secret and t != v:
            out[i] = t
            found.append((i, "whitespace-trimmed"))
    return found, out


@settings(max_examples=400, deadline=None)
@given(columns, st.booleans())
def test_check_cells_finds_exactly_what_the_per_cell_rules_find(col, secret):
    collector = Collector(_roster(len(col)))
    original = tuple(col)
    _, mine = check_cells(original, "c", collector, secret=secret)
    expected, trimmed = _reference_cells(col, "c", secret)
    assert sorted((i.row - 2, i.code) for i in collector.issues) == sorted(expected)
    assert list(mine) == trimmed and original == tuple(col)


@settings(max_examples=200, deadline=None)
@given(st.lists(cells, min_size=1, max_size=6), st.integers(1024, 1100), st.booleans())
def test_check_cells_on_a_column_of_few_values_finds_what_the_per_cell_rules_find(values, size, secret):
    col = [values[(i * 7) % len(values)] for i in range(size)]  # long, few distinct values, interleaved
    collector = Collector(_roster(len(col)))
    _, mine = check_cells(tuple(col), "c", collector, secret=secret)
    expected, trimmed = _reference_cells(col, "c", secret)
    assert sorted((i.row - 2, i.code) for i in collector.issues) == sorted(expected)
    assert list(mine) == trimmed


@settings(max_examples=300, deadline=None)
@given(columns)
def test_scan_bounds_lengths_and_names_every_blank_edged_cell(col):
    found = scan(col)
    if not found.exact:
        assert found.max_bytes >= max(map(len, col), default=0)
        assert [i for i, v in enumerate(col) if _strip(v) != v] == [
            i for i in found.edge_blank_rows if _strip(col[i]) != col[i]]
        assert found.invisible or not any(rules.invisible_problem(v, "c") for v in col)
        assert found.formula_like or not any(rules.formula_problem(v, "c") for v in col if _strip(v) == v)
        assert found.lengths is not None and [i for i, n in enumerate(found.lengths) if n == 0] == [
            i for i, v in enumerate(col) if not v]
    else:
        assert any("\x00" in v for v in col)


upn_cells = st.one_of(
    st.just(""),
    st.text(alphabet="ab.-_'@Zé 9", min_size=1, max_size=12),
    st.builds(lambda a, b: f"{a}@{b}", st.text(alphabet="ab.-_'!Z9", min_size=0, max_size=66),
              st.text(alphabet="ab.-9", min_size=0, max_size=50)),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(upn_cells, max_size=20))
def test_upn_column_check_equals_the_per_value_rules(col):
    collector = Collector(_roster(len(col)))
    check_field("userPrincipalName", list(col), "userPrincipalName", collector, scan(col))
    expected = [(i, code) for i, v in enumerate(col) if v for code, _ in rules.upn_problems(v, "userPrincipalName")]
    assert [(i.row - 2, i.code) for i in collector.issues] == expected


# accents both composed and combining, full-width letters, a ligature, emoji with ZWJ, skin tone and variation
# selector, a keycap, a flag, a tag character, symbols that NFKC turns into letters (TM) or that decompose
# canonically (≠ = "=" + U+0338), Hangul jamo that compose
names = st.text(alphabet="AaÉéØøßÞþŁłİı Nñ-'.\u00e0\u0300\x00\u0301eＰｒｉｙａﬁ😀👩\u200d💻\U0001F3FB\ufe0f1\u20e3"
                         "\U0001F1EC\U0001F1E7\U000E0067™€½≠=\u0338\u1100\u1161\u00a0\u200b", max_size=10)
_SYMBOLIC = {"Sc", "Sk", "Sm", "So", "Cs", "Cf", "Co", "Cn", "Me"}


def _kept(ch: str) -> bool:
    """The symbol rule for one character, stated plainly."""
    return ch.isascii() or not (unicodedata.category(ch) in _SYMBOLIC or "\ufe00" <= ch <= "\ufe0f"
                                or "\U000e0100" <= ch <= "\U000e01ef")


def _material(text: str) -> str:
    """A name as UPN derivation sees it: NFC, symbols out, NFKC, symbols out."""
    composed = "".join(filter(_kept, unicodedata.normalize("NFC", text)))
    return "".join(filter(_kept, unicodedata.normalize("NFKC", composed)))


@settings(max_examples=300, deadline=None)
@given(st.lists(names, max_size=25))
def test_batched_transliteration_equals_upn_part_per_value(values):
    from anyascii import anyascii

    expected = [re.sub(r"[^A-Za-z0-9'.\-_!#^~]+", "", "".join(map(anyascii, _material(v))).lower()) for v in values]
    assert [derive.upn_part(v) for v in values] == expected
    assert derive.upn_parts(values) == expected


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), names))
def test_transliteration_of_a_text_equals_anyascii_per_character_of_its_material(text):
    from anyascii import anyascii

    assert derive.transliterate(text) == "".join(anyascii(ch) for ch in _material(text))


@settings(max_examples=300, deadline=None)
@given(names, names)
def test_both_unicode_forms_of_a_name_give_one_upn_part_and_one_identity_key(a, b):
    text = a + b
    forms = {unicodedata.normalize(f, text) for f in ("NFC", "NFD")}
    assert len({derive.upn_part(v) for v in forms}) == 1
    assert len({identity_key(v) for v in forms}) == 1


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(names, st.text(alphabet="aAΣσςİiıß\x00 .@Ｐ", max_size=6)), max_size=20))
def test_identity_keys_of_a_column_equal_nfkc_then_casefold_per_value(col):
    assert list(identity_keys(col)) == [unicodedata.normalize("NFKC", v).casefold() for v in col]


templates = st.sampled_from(["{givenName}.{surname}@{domain}", "{givenName:.1}{surname}@{domain}",
                             "{surname}.{givenName}.x@{domain}", "{givenName}@{domain}.{surname}",
                             "{givenName}.{surname}", "{givenName:.2}.{surname}@{domain}", "a..{surname}@b@{domain}",
                             "{{x}}{givenName}@{domain}"])
long_names = st.one_of(names, st.text(alphabet="ab.", min_size=60, max_size=70))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(long_names, long_names), max_size=20), templates,
       st.sampled_from(["contoso.com", "Contoso.COM", "x@y.com", ""]))
def test_column_upns_equal_the_row_by_row_maker(rows, template, domain):
    given_names, surnames = [r[0] for r in rows], [r[1] for r in rows]
    _, make = derive.make_upn_maker(template, domain)
    expected = [make(g, s) if "givenName" in template else make(s) for g, s in rows]
    upns, locals_ = derive.make_upns(template, domain, {"givenName": given_names, "surname": surnames},
                                     list(range(len(rows))))
    assert upns == expected
    assert locals_ == [u.rpartition("@")[0] for u in expected]


typed_upns = st.one_of(st.just(""), st.text(alphabet="ab@.c\n ;(é", max_size=8),
                       st.text(alphabet="ab", min_size=63, max_size=70).map(lambda t: t + "@x.com"))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(typed_upns, st.booleans()), max_size=20))
def test_mail_nicknames_equal_the_per_row_rule(rows):
    upns = [u for u, _ in rows]
    derived = [i for i, (u, d) in enumerate(rows) if d and "@" in u]  # a derived UPN always has a domain
    locals_ = [upns[i].rpartition("@")[0] for i in derived]
    typed = [i for i, u in enumerate(upns) if u and i not in derived]
    got = derive.mail_nicknames(upns, derived, locals_, typed)
    expected = [u.rpartition("@")[0] if i in derived else derive.mail_nickname_from(u) if u else ""
                for i, u in enumerate(upns)]
    assert got == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(names, names), min_size=1, max_size=20),
       st.sampled_from(["{givenName} {surname}", "{surname}, {givenName}", "{givenName:.1}. {surname}",
                        "{givenName}", "{surname} ({givenName:.3})"]))
def test_display_names_equal_the_row_by_row_format(rows, template):
    given_names, surnames = [r[0] for r in rows], [r[1] for r in rows]
    got = derive.display_names(template, {"givenName": given_names, "surname": surnames}, len(rows))
    expected = []
    for g, s in rows:
        text = template.format(givenName=g, surname=s).strip(" ,")
        expected.append(re.sub(r"\s{2,}", " ", text) if "  " in text else text)
    assert got == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from(["a@x.com", "A@x.com", "a2@x.com", "b@x.com", "a3@x.com"])),
                max_size=15),
       st.sets(st.sampled_from(["a@x.com", "a2@x.com", "c@x.com"]), max_size=2))
def test_suffixes_are_unique_new_and_keep_the_first_holder(candidates, given_upns):
    taken = set(given_upns)
    out = derive.assign_suffixes(candidates, taken)
    keys = [u.lower() for u in out if u]
    assert len(keys) == len(set(keys)) and not set(keys) & set(given_upns)
    assert [u is None for u in out] == [c is None for c in candidates]
    seen: set[str] = set()
    for c, u in zip(candidates, out, strict=True):
        if c is None:
            continue
        if c.lower() not in seen and c.lower() not in given_upns:
            assert u == c  # the first row deriving a free name keeps it
        else:
            assert u != c and re.fullmatch(re.escape(c.split("@")[0]) + r"\d+@x\.com", u)
        seen.add(c.lower())
    assert set(keys) <= taken


@settings(max_examples=200, deadline=None)
@given(st.lists(names, min_size=1, max_size=10), st.sampled_from(["givenName", "surname"]))
def test_display_names_with_a_missing_column_equal_the_row_by_row_format(values, present):
    got = derive.display_names("{givenName} {surname}", {present: values}, len(values))
    expected = []
    for v in values:
        text = "{givenName} {surname}".format(**{"givenName": "", "surname": "", present: v}).strip(" ,")
        expected.append(re.sub(r"\s{2,}", " ", text) if "  " in text else text)
    assert got == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="aAΣσςİiıß\x00 .@", max_size=6), max_size=15))
def test_lowered_column_equals_lower_per_value(col):
    from provisioning.roster.derive import lowered

    assert list(lowered(col)) == [v.lower() for v in col]


identity_cells = st.sampled_from(["", "Ann", "ann", "ANN", "José", unicodedata.normalize("NFD", "José"), "Ｐｒｉｙａ",
                                  "Priya", "E1", "Ｅ１", "x\x00y"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(identity_cells, identity_cells, identity_cells), max_size=12))
def test_repeated_rows_equal_the_plain_row_by_row_rule(rows):
    from provisioning.validation.people import repeated_rows

    names, emp, mail = ([r[k] for r in rows] for k in range(3))
    columns = {"displayName": names, "employeeId": emp, "mail": mail}
    found, messages = repeated_rows(columns, ("displayName", "employeeId", "mail"), (names, emp, mail),
                                    list(range(2, len(rows) + 2)), lambda f, _: f)
    expected: dict[int, int] = {}
    for i, row in enumerate(rows):
        if not row[0]:
            continue
        key = tuple(unicodedata.normalize("NFKC", v).casefold() for v in row)
        j = next(j for j in range(i + 1) if rows[j][0] and tuple(
            unicodedata.normalize("NFKC", v).casefold() for v in rows[j]) == key)
        if j != i:
            expected[i] = j
    assert found == expected and len(messages) == len(expected)


class _Tenant:
    verified_domains = frozenset({"x.com"})
    federated_domains: frozenset[str] = frozenset()
    default_domain = "x.com"

    def __init__(self, users):
        self.users = {u.userPrincipalName.lower(): u for u in users}

    def lookup(self, upns):
        return {u.lower(): self.users[u.lower()] for u in upns if u.lower() in self.users}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a@x.com", "b@x.com", "a2@x.com", ""]), st.sampled_from(["Ann", "Bo"]),
                          st.sampled_from(["", "E1", "E2", "E3"])), max_size=10),
       st.lists(st.tuples(st.sampled_from(["a@x.com", "a2@x.com", "a3@x.com", "a5@x.com", "b@x.com"]),
                          st.sampled_from(["Ann", "Bo"]), st.sampled_from(["", "E1", "E2"])), max_size=5,
                unique_by=lambda u: u[0]),
       st.sets(st.sampled_from(["a3@x.com", "c@x.com"]), max_size=2))
def test_derived_upns_are_unique_and_only_land_on_the_same_persons_account(rows, existing, typed_upns):
    from provisioning.models import ExistingUser
    from provisioning.validation.people import Person, unique_upns

    users = [ExistingUser(str(k), upn, name, emp or None) for k, (upn, name, emp) in enumerate(existing)]
    tenant = _Tenant(users)
    person = Person([r[1] for r in rows], [r[2] for r in rows], list(range(2, len(rows) + 2)))
    typed = {u: 100 + k for k, u in enumerate(sorted(typed_upns))}
    got = unique_upns([r[0] for r in rows], list(range(len(rows))), {}, typed, person, tenant)
    finals = [u.lower() for u in got.final if u]
    assert len(finals) == len(set(finals)) and not set(finals) & set(typed)
    assert [bool(u) for u in got.final] == [bool(r[0]) for r in rows]
    for k, upn in enumerate(got.final):
        user = tenant.users.get(upn.lower()) if upn else None
        if user is not None:  # on an existing account only when it is this row's person
            assert k in got.matched and person.same_as(k, user)
        else:
            assert k not in got.matched
        if upn and upn != rows[k][0]:
            assert k in got.matched or k in got.suffixed


phone_cells = st.one_of(st.text(alphabet="+-0123456789 ().;,/xet\u00a0=", max_size=10),
                        st.builds(lambda a, b: f"+{a} {b}", st.integers(0, 999), st.integers(0, 99999)))


@settings(max_examples=400, deadline=None)
@given(st.lists(phone_cells, max_size=20), st.booleans())
def test_phone_like_columns_check_cells_equals_the_per_cell_rules(col, secret):
    # columns made mostly of phone characters, where the numpy scan may declare the column free of formulas
    collector = Collector(_roster(len(col)))
    _, mine = check_cells(tuple(col), "c", collector, secret=secret)
    expected, trimmed = _reference_cells(col, "c", secret)
    assert sorted((i.row - 2, i.code) for i in collector.issues) == sorted(expected)
    assert list(mine) == trimmed


def _phone_reference(col, name):
    """The phone issues the per-value rule gives each cell of ``col``, as (index, code), in order."""
    expected = []
    for i, v in enumerate(col):
        parts = [p.strip() for p in re.split(r"[;,]", v) if p.strip()] if name == "businessPhones" else [v]
        if not v:
            continue
        if len(parts) > 1 and not any(rules.phone_problem(p, name) for p in parts):
            expected.append((i, "phone-multiple"))
        elif rules.phone_problem(v, name):
            expected.append((i, "phone-invalid"))
    return expected


@settings(max_examples=400, deadline=None)
@given(st.lists(phone_cells, max_size=20), st.sampled_from(["mobilePhone", "faxNumber", "businessPhones"]))
def test_phone_column_check_equals_the_per_value_rule(col, name):
    collector = Collector(_roster(len(col)))
    check_field(name, list(col), name, collector, scan(col))
    assert sorted((i.row - 2, i.code) for i in collector.issues if i.code.startswith("phone")) == \
        _phone_reference(col, name)


def test_blanks_and_invisible_characters_are_the_documented_sets():
    import unicodedata

    from provisioning.cells import BLANKS as blanks
    from provisioning.cells import INVISIBLE

    assert set(blanks) == BLANKS
    assert {ch for ch in map(chr, range(0x110000)) if INVISIBLE.fullmatch(ch)} == {
        ch for ch in map(chr, range(0x110000)) if unicodedata.category(ch) == "Cf"}


footer_cells = st.one_of(st.just(""), st.just(" "), st.sampled_from(["Total: 2", "Page 1 of 1", "Ann", "2 users",
                                                                     "Total", "Page", "Count:", "1", "of", "2024"]),
                         cells)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(*[footer_cells] * 5), min_size=1, max_size=12))
def test_footer_rows_are_the_rows_with_one_filled_cell_reading_like_a_footer(rows):
    from provisioning.validation.engine import check_roster

    n = len(rows)
    headers = ("givenName", "notes", "userPrincipalName", "employeeId", "city")
    columns = tuple(tuple(r[j] for r in rows) for j in range(len(headers)))
    roster = Roster(path="r.csv", sheet=None, kind="csv", headers=headers, header_row=1,
                    row_numbers=tuple(range(2, n + 2)), columns=columns,
                    column_map={h: (None if h == "notes" else h) for h in headers})
    found = [i.row - 2 for i in check_roster(roster, default_domain="contoso.com").issues if i.code == "not-a-person"]
    assert found == _footers(rows)


def _footers(rows: list[tuple[str, ...]]) -> list[int]:
    """The footer rule row by row: the indexes of the rows that read as an export's footer line."""
    expected = []
    for k, row in enumerate(rows):
        filled = [v for v in map(_strip, row) if v]
        # one cell; or a label cell ("Total", "Page") and numbers, dates or "of" in the others, four at most
        shape = len(filled) == 1 or (2 <= len(filled) <= 4 and rules.FOOTER_LABEL.match(f"\x00{filled[0]}\x00")
                                     and all(rules.FOOTER_COUNT.fullmatch(v) for v in filled[1:]))
        if shape and rules.footer_problem(" ".join(filled), k + 2):
            expected.append(k)
    return expected


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["Ann", "Bo", "", " ", "Total: 2"]), st.sampled_from(["Oslo", "", "\t"]),
                          st.sampled_from(["", "ann@contoso.com", "Page 1 of 1"])), min_size=1, max_size=6),
       st.integers(1030, 1100))
def test_footer_rows_among_columns_of_few_distinct_values(pattern, n):
    # long columns of few values are checked value by value (no cell lengths): blank-only cells must still count
    # as empty once trimmed
    from provisioning.validation.engine import check_roster

    rows = [pattern[(k * 5) % len(pattern)] for k in range(n)]
    headers = ("givenName", "city", "userPrincipalName")
    columns = tuple(tuple(r[j] for r in rows) for j in range(len(headers)))
    roster = Roster(path="r.csv", sheet=None, kind="csv", headers=headers, header_row=1,
                    row_numbers=tuple(range(2, n + 2)), columns=columns, column_map={h: h for h in headers})
    found = [i.row - 2 for i in check_roster(roster, default_domain="contoso.com").issues if i.code == "not-a-person"]
    assert found == _footers(rows)


plain_phone_cells = st.one_of(st.just(""), st.builds(lambda a, b, c: f"{a}{b}{c}",
                                                     st.sampled_from(["", "+", "+ ", "(", "+("]), st.integers(0, 999),
                                                     st.text(alphabet="0123456789 ().-/", max_size=9)))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=TRICKY + "\U000e0020\U0001d173\U000110bd\U0001f600\U00010348\ud800\u1ec5\u2019",
                        max_size=8), max_size=20))
def test_the_invisible_character_table_answers_what_the_regex_answers(col):
    from provisioning.cells import INVISIBLE
    from provisioning.validation.colscan import _has_invisible

    joined = "\x00" + "\x00".join(col) + "\x00"
    assert _has_invisible(joined) == (INVISIBLE.search(joined) is not None)


prefix_cells = st.text(alphabet="'=+-@ \t\r\n\"a,;1\u00a0\u3000é", max_size=5)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(prefix_cells, min_size=3, max_size=3), min_size=1, max_size=8),
       st.sampled_from([",", ";", "\t"]), st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16"]),
       st.integers(1, 64))
def test_the_byte_search_for_text_prefixes_misses_no_prefixed_field(rows, delimiter, encoding, chunk):
    import csv
    import io
    import tempfile
    from pathlib import Path

    from provisioning.cells import looks_like_formula
    from provisioning.roster import reader

    text = io.StringIO()
    csv.writer(text, delimiter=delimiter).writerows([["givenName", "surname", "notes"], *rows])
    data = text.getvalue().encode(encoding, errors="replace")
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "r.csv"
        p.write_bytes(data)
        background = reader._Background(p, digest=True, text=True)
        fast = reader._read_csv(p, data[:reader._HEAD + 1], encoding, prefixed=background.may_hold_text_prefix)
        plain = reader._read_csv(p, data[:reader._HEAD + 1], encoding)
    assert fast == plain  # with the shortcut, the cells read are the same
    prefixed = encoding != "utf-16" and any(v[:1] == "'" and looks_like_formula(v[1:])
                                            for col in _raw_columns(data, encoding, delimiter) for v in col)
    event(f"a prefixed field: {prefixed}")
    pieces = [data[k:k + chunk] for k in range(0, len(data), chunk)]
    found = any(reader._prefix_bytes(piece, pieces[k - 1][-1] if k else -1) for k, piece in enumerate(pieces))
    assert found or not prefixed  # in chunks as the thread reads them, too


def _raw_columns(data: bytes, encoding: str, delimiter: str) -> list[list[str]]:
    """The file's cells as csv.reader reads them, column-wise (no text prefix removed)."""
    import csv
    import io

    text = data.decode(encoding).lstrip("\ufeff")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    width = max(map(len, rows))
    return [[r[j] if j < len(r) else "" for r in rows] for j in range(width)]


def test_the_byte_search_spares_a_file_whose_apostrophes_are_inside_names(tmp_path):
    from provisioning.roster import reader

    names = tmp_path / "names.csv"
    names.write_bytes("\ufeffgivenName,surname\nSeán,O'Brien\nAnn,'t Hooft\n".encode())
    phones = tmp_path / "phones.csv"
    phones.write_bytes(b"givenName,mobilePhone\nAnn,'+1 555 0100\n")
    for digest in (True, False):
        assert not reader._Background(names, digest=digest, text=True).may_hold_text_prefix("utf-8-sig")
        # not a byte-per-ASCII encoding: look
        assert reader._Background(names, digest=digest, text=True).may_hold_text_prefix("utf-16")
        assert reader._Background(phones, digest=digest, text=True).may_hold_text_prefix("utf-8")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(phone_cells, plain_phone_cells), min_size=1, max_size=12), st.integers(0, 1100),
       st.sampled_from(["mobilePhone", "businessPhones"]))
def test_phone_columns_checked_as_validation_does_find_what_the_per_value_rule_finds(values, size, name):
    # the column as check_roster sees it: check_cells (phone=True: its scan may say "plain phone numbers only",
    # also for a long column of few values), then check_field with that scan
    col = values if size < 1024 else [values[(i * 7) % len(values)] for i in range(size)]
    collector = Collector(_roster(len(col)))
    found, cells_after = check_cells(tuple(col), name, collector, phone=True)
    check_field(name, list(cells_after), name, collector, found)
    assert sorted((i.row - 2, i.code) for i in collector.issues if i.code.startswith("phone")) == \
        _phone_reference(cells_after, name)


plain_upn_cells = st.one_of(st.just(""), st.builds(lambda a, b: f"{a}@{b}",
                                                   st.text(alphabet="ab.Z9'_!#^~-", min_size=1, max_size=64)
                                                   .filter(lambda t: not t.startswith(".")
                                                           and not t.endswith(".") and ".." not in t),
                                                   st.text(alphabet="ab.-9", min_size=1, max_size=48)
                                                   .filter(lambda t: ".." not in t)))


#: The byte tests that spare a column its regular expression: (test, the regex, cells of any kind, cells it is for).
BYTE_TESTS = {"phones": (plain_phones, PHONE_COLUMN, phone_cells, plain_phone_cells),
              "upns": (plain_upns, UPN_SHAPES, upn_cells, plain_upn_cells)}


@pytest.mark.parametrize("name", BYTE_TESTS)
@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_a_byte_test_says_yes_only_where_its_regex_matches(name, data):
    test, regex, kind, plain = BYTE_TESTS[name]
    col = data.draw(st.lists(st.one_of(kind, plain, cells), max_size=20))
    joined = "\x00" + "\x00".join(col) + "\x00"
    assert not test(joined) or regex.fullmatch(joined)


@pytest.mark.parametrize("name", BYTE_TESTS)
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_a_byte_test_knows_the_column_it_is_for(name, data):
    test, _, _, plain = BYTE_TESTS[name]
    col = data.draw(st.lists(plain, max_size=20))
    assert test("\x00" + "\x00".join(col) + "\x00")  # the fast path is the one taken for such a column
