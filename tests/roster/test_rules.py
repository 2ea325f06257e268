"""Every rule on its sample row, with the exact message; derivation, suffixes, tenant checks, properties."""
from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioning.codes import RULES
from provisioning.models import ExistingUser, Severity
from provisioning.roster.derive import make_upn_maker
from provisioning.roster.reader import load_roster
from provisioning.validation.engine import validate_roster
from provisioning.validation.passwords import (
    ALPHABET,
    SAFE_SYMBOLS,
    generate_password,
    generate_passwords,
    password_problems,
)
from provisioning.validation.rules import upn_problems

ROOT = Path(__file__).resolve().parents[2]

EXACT = {
    "whitespace-trimmed": "department ' Sales ': leading/trailing blanks removed (now 'Sales'); check the cell",
    "upn-dot-before-at": "userPrincipalName 'ann.lee.@contoso.com': a '.' cannot stand right before '@'; remove it",
    "upn-no-domain": "userPrincipalName is empty and no domain is known to derive it; fill in userPrincipalName, "
                     "or give a domain with --domain or a mapping file's \"domain\" setting",
    "usage-location-invalid": "usageLocation 'UK': not a two-letter ISO 3166 country code; use e.g. US, GB, DE",
    "boolean-invalid": "accountEnabled 'maybe': not a Yes/No value; write Yes or No (also accepted: true/false, "
                       "y/n, 1/0)",
    "field-too-long": "employeeId '12345678901234567': 17 characters, employeeId allows at most 16; shorten it",
    "password-weak": "password: the password must mix 3 of: lower-case, upper-case, digits, symbols; make it "
                     "stronger or leave the cell empty to generate one",
    "duplicate-upn": "userPrincipalName 'USER28@contoso.com' is already used in row 30; each user needs their own",
    "formula-cell": "jobTitle '=HYPERLINK(\"http://x.example\",\"Click\")': a spreadsheet would run this as a "
                    "formula; remove the leading '=' (or type the value as plain text)",
    "phone-multiple": "businessPhones '+1 555 0100; +1 555 0101': Graph takes only one office phone number; keep one",
    "manager-invalid": "manager 'Bob': give the manager's userPrincipalName, like ann.lee@contoso.com",
    "date-invalid": "employeeHireDate '31/12/2024': not a date; write it as YYYY-MM-DD, e.g. 2024-09-01",
}


def test_each_rule_on_its_sample_row():
    roster = load_roster(ROOT / "samples" / "roster-with-errors.xlsx")
    v = validate_roster(roster)
    expected = {r.row: r.cells[0] for r in roster.rows}
    by_row: dict[int, list] = {}
    for i in v.issues:
        by_row.setdefault(i.row, []).append(i)
    covered = {"unknown-column"}
    for row, code in expected.items():
        codes = [i.code for i in by_row.get(row, [])]
        assert code in codes, (row, code, codes)
        covered.add(code)
        mine = next(i for i in by_row[row] if i.code == code)
        assert mine.severity is RULES[code].severity
        if code in EXACT:
            assert mine.message == EXACT[code]
    from provisioning.run.chain import CODES as RETRY_CODES  # retry: tests/followups/test_retry_chain.py
    from provisioning.validation.people import CODES as PEOPLE_CODES  # exact texts: tests/run/test_people_e2e.py
    from provisioning.validation.references import CODES as PREFLIGHT_CODES  # pre-flight: tests/followups/test_pure.py

    tenant_only = {"upn-missing", "upn-suffixed", "upn-domain-unverified", "immutable-id-required",
                   "user-exists", "control-char", "excel-error-ignored", "duplicate-row"} | set(PREFLIGHT_CODES) | \
        set(RETRY_CODES) | set(PEOPLE_CODES) | {"totals-row", "hidden-row", "hidden-sheet-skipped",
                                               "header-row-found"} | {
        "phone-invalid", "not-a-person", "invisible-char", "encoding-guessed", "mapped-column-missing"}
    # control-char: test_messages.py; excel-error-ignored (an unknown column): test_excel_errors.py; the sheet
    # layout codes (hidden sheets and rows, totals rows, title rows): test_excel_layout.py; duplicate-row:
    # test_identity.py; phone, footer, invisible, encoding: test_csv_cells.py and test_encodings.py;
    # mapped-column-missing: test_mapping_files.py
    assert set(RULES) - covered == tenant_only  # covered by the tests below
    assert [r.has_errors for r in v.rows].count(False) == 1  # only the whitespace row goes ahead


def test_transliteration_and_collision_suffixes():
    v = validate_roster(load_roster(ROOT / "tests" / "data" / "derive.csv"), default_domain="contoso.com")
    assert [r.upn for r in v.rows] == ["jose.nunez-odegard@contoso.com", "ann.lee@contoso.com",
                                       "ann.lee2@contoso.com", "ann.lee3@contoso.com"]
    assert [r.fields["mailNickname"] for r in v.rows][0] == "jose.nunez-odegard"
    assert v.rows[0].fields["displayName"] == "José Núñez-Ødegård"
    assert {"userPrincipalName", "displayName", "mailNickname", "password", "accountEnabled"} <= v.rows[0].derived
    assert [i.message for i in v.issues if i.code == "upn-suffixed"][0] == (
        "row 4 has the same name as row 3; they get different userPrincipalNames ('ann.lee@contoso.com', "
        "'ann.lee2@contoso.com'); their employeeIds differ, so they are taken for two people (if they are one, "
        "delete one row; to choose the UPN, fill in userPrincipalName)")
    assert v.rows[0].password not in repr(v.rows[0]) and v.rows[0].password not in str(v.rows[0])
    body = v.rows[0].graph_body()
    assert body["passwordProfile"]["forceChangePasswordNextSignIn"] is True and body["accountEnabled"] is True


class FakeTenant:
    verified_domains = frozenset({"contoso.com", "fabrikam.com", "federated.contoso.com"})
    federated_domains = frozenset({"federated.contoso.com"})
    default_domain = "contoso.com"

    def __init__(self, users):
        self.users = {u.userPrincipalName.lower(): u for u in users}
        self.calls = 0

    def lookup(self, upns):
        self.calls += 1
        return {u.lower(): self.users[u.lower()] for u in upns if u.lower() in self.users}


def test_tenant_collisions_same_person_and_domains(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("givenName,surname,employeeId,userPrincipalName\nAnn,Lee,1,\nBo,Ek,2,\nCy,Do,3,cy@unverified.contoso.net\n"
                 "Di,Fo,4,di@federated.contoso.com\n", encoding="utf-8")
    tenant = FakeTenant([ExistingUser("id1", "ann.lee@contoso.com", "Ann Lee", "99"),
                         ExistingUser("id2", "ann.lee2@contoso.com", "Someone", None),
                         ExistingUser("id3", "bo.ek@contoso.com", "Bo Ek", "2")])
    v = validate_roster(load_roster(p), tenant=tenant)
    assert [r.upn for r in v.rows] == ["ann.lee3@contoso.com", "bo.ek@contoso.com", "cy@unverified.contoso.net",
                                       "di@federated.contoso.com"]
    assert tenant.calls == 3  # in bulk: one round per candidate generation
    codes = {(i.row, i.code) for i in v.issues}
    assert {(3, "user-exists"), (2, "upn-suffixed"), (4, "upn-domain-unverified"),
            (5, "immutable-id-required")} <= codes
    # the rows are built before the domains are checked (while pre-flight reads them): their errors still count
    assert [r.has_errors for r in v.rows] == [False, False, True, True]
    msg = next(i.message for i in v.issues if i.code == "upn-domain-unverified")
    assert msg == ("userPrincipalName 'cy@unverified.contoso.net': 'unverified.contoso.net' is not a verified "
                   "domain of the tenant; use one of: contoso.com, fabrikam.com, federated.contoso.com")


def test_template_with_nothing_gives_upn_missing(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("givenName,surname,displayName\n,,Ann Lee\n", encoding="utf-8")
    v = validate_roster(load_roster(p), default_domain="contoso.com")
    assert [(i.code, i.severity) for i in v.issues] == [("upn-missing", Severity.ERROR)]


names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=0, max_size=80)


@settings(max_examples=300, deadline=None)
@given(names, names)
def test_every_generated_upn_passes_the_validators(givenname, surname):
    _, make = make_upn_maker("{givenName}.{surname}@{domain}", "contoso.com")
    upn = make(givenname, surname)
    if upn:
        assert upn_problems(upn, "userPrincipalName") == []


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=8, max_value=64))
def test_every_generated_password_passes_the_policy(length):
    pw = generate_password(length)
    assert len(pw) == length and password_problems(pw) == []
    assert pw[0] not in "=+-@"


def test_a_roster_of_passwords_comes_from_one_stream_and_each_is_its_own():
    pws = generate_passwords(5000, 12)
    assert len(pws) == 5000 and len(set(pws)) == 5000
    assert all(len(p) == 12 and password_problems(p) == [] and p[0] not in "=+-@" for p in pws)
    # the characters of one class about equally often: the deletions leave no modulo bias (the rejection of
    # slices without every class favours the smaller classes, digits and symbols, as a whole)
    counts = {c: 0 for c in ALPHABET}
    for p in pws:
        for c in p:
            counts[c] += 1
    for cls in (string.ascii_lowercase, string.ascii_uppercase, string.digits, SAFE_SYMBOLS):
        mean = sum(counts[c] for c in cls) / len(cls)
        assert all(0.8 * mean < counts[c] < 1.2 * mean for c in cls), (cls, counts)
    assert generate_passwords(0) == []
    with pytest.raises(ValueError):
        generate_passwords(3, 7)
