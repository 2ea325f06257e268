"""Exact messages: every rule code of codes.RULES on its row, and every roster-level error.

Each message names the column as written in the roster (the issue also carries the row number as the user sees it
in Excel) and says what to do. The one-rule-per-row sample is samples/roster-with-errors.xlsx (its "Expected"
column names the rule of the row); tenant-only rules use a fake tenant.
"""
from __future__ import annotations

import io
from pathlib import Path

import pytest

import provision
from provisioning.codes import ROSTER_ERRORS, RULES
from provisioning.errors import RosterError
from provisioning.models import ExistingUser, Severity
from provisioning.roster.reader import load_roster
from provisioning.validation.engine import validate_roster

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "roster-with-errors.xlsx"
DATA = ROOT / "tests" / "data"

#: (Excel row, column as written, code, exact message) for every row of the sample.
SAMPLE_MESSAGES = [
    (2, 'department', 'whitespace-trimmed',
     "department ' Sales ': leading/trailing blanks removed (now 'Sales'); check the cell"),
    (3, 'jobTitle', 'formula-cell',
     'jobTitle \'=HYPERLINK("http://x.example","Click")\': a spreadsheet would run this as a formula; remove the leading \'=\' (or type the value as plain text)'),
    (4, 'displayName', 'display-name-missing',
     'displayName is empty and givenName/surname are too; fill in displayName or givenName and surname'),
    (5, 'userPrincipalName', 'upn-no-domain',
     'userPrincipalName is empty and no domain is known to derive it; fill in userPrincipalName, or give a domain with --domain or a mapping file\'s "domain" setting'),
    (6, 'userPrincipalName', 'upn-at-sign',
     "userPrincipalName 'ann.lee.contoso.com': needs exactly one '@' between the user name and the domain, like ann.lee@contoso.com; fix the value"),
    (7, 'userPrincipalName', 'upn-invalid-chars',
     "userPrincipalName 'josé.núñez@contoso.com': 'é' 'ñ' 'ú' not allowed before '@' (only A-Z a-z 0-9 ' . - _ ! # ^ ~; no accents or spaces); remove or replace them"),
    (8, 'userPrincipalName', 'upn-dot-before-at',
     "userPrincipalName 'ann.lee.@contoso.com': a '.' cannot stand right before '@'; remove it"),
    (9, 'userPrincipalName', 'upn-local-too-long',
     "userPrincipalName 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@contoso.com': 65 characters before '@', at most 64 allowed; shorten it"),
    (10, 'userPrincipalName', 'upn-domain-too-long',
     "userPrincipalName 'ann@ddddddddddddddddddddddddddddddddddddddddddddd.com': 49 characters after '@', at most 48 allowed; use a shorter domain"),
    (11, 'userPrincipalName', 'upn-too-long',
     "userPrincipalName 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb@eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee.com': 114 characters, at most 113 allowed; shorten it"),
    (12, 'userPrincipalName', 'upn-domain-invalid',
     "userPrincipalName 'ann@contoso': 'contoso' is not a domain name; use one of the tenant's domains such as contoso.com"),
    (13, 'onPremisesImmutableId', 'immutable-id-invalid',
     "onPremisesImmutableId 'abc$def_1': '$' and '_' are not allowed; fix the value"),
    (14, 'mailNickname', 'mail-nickname-invalid',
     'mailNickname \'ann lee\': \' \' (space) not allowed (ASCII only; no spaces or @ ( ) \\ [ ] " ; : < > ,); remove them or leave the cell empty to derive it'),
    (15, 'employeeId', 'field-too-long',
     "employeeId '12345678901234567': 17 characters, employeeId allows at most 16; shorten it"),
    (16, 'accountEnabled', 'boolean-invalid',
     "accountEnabled 'maybe': not a Yes/No value; write Yes or No (also accepted: true/false, y/n, 1/0)"),
    (17, 'usageLocation', 'usage-location-invalid',
     "usageLocation 'UK': not a two-letter ISO 3166 country code; use e.g. US, GB, DE"),
    (18, 'usageLocation', 'usage-location-required',
     "licenses 'SPE_E3' are given but usageLocation is empty; licences need it (e.g. US, GB)"),
    (19, 'businessPhones', 'phone-multiple',
     "businessPhones '+1 555 0100; +1 555 0101': Graph takes only one office phone number; keep one"),
    (20, 'mail', 'mail-invalid',
     "mail 'ann@@contoso.com': not a plain email address (ASCII, name@domain); fix it"),
    (21, 'employeeHireDate', 'date-invalid',
     "employeeHireDate '31/12/2024': not a date; write it as YYYY-MM-DD, e.g. 2024-09-01"),
    (22, 'preferredLanguage', 'language-invalid',
     "preferredLanguage 'English': not a language tag; use e.g. en-US or fr-FR"),
    (23, 'passwordPolicies', 'password-policies-invalid',
     "passwordPolicies 'NeverExpire': use DisablePasswordExpiration, DisableStrongPassword, or both separated by a comma"),
    (24, 'manager', 'manager-invalid',
     "manager 'Bob': give the manager's userPrincipalName, like ann.lee@contoso.com"),
    (25, 'password', 'password-too-short',
     'password: the password has 5 characters; use at least 8, or leave the cell empty to have one generated'),
    (26, 'password', 'password-too-long',
     'password: the password has 260 characters; use at most 256'),
    (27, 'password', 'password-non-ascii',
     'password: the password has non-ASCII characters (accents, emoji...), which Entra rejects; use ASCII letters, digits and symbols'),
    (28, 'password', 'password-invalid-char',
     'password: the password has a character Entra does not allow (a tab or control character); use letters, digits and symbols'),
    (29, 'password', 'password-weak',
     'password: the password must mix 3 of: lower-case, upper-case, digits, symbols; make it stronger or leave the cell empty to generate one'),
    (30, 'password', 'password-contains-name',
     "password: the password contains the user's name, which Entra rejects; choose another"),
    (31, 'userPrincipalName', 'duplicate-upn',
     "userPrincipalName 'USER28@contoso.com' is already used in row 30; each user needs their own"),
    (32, 'mailNickname', 'duplicate-mail-nickname',
     "mailNickname 'nick28' is already used in row 30; each user needs their own"),
    (33, 'employeeId', 'duplicate-employee-id',
     "employeeId 'E028' is already used in row 30; each user needs their own"),
    (34, 'jobTitle', 'excel-error',
     'jobTitle: the cell shows the Excel error #N/A instead of a value; type the value'),
    (35, 'jobTitle', 'formula-no-value',
     'jobTitle: the cell holds the formula =UPPER("tester") but no calculated value was saved (the file was written '
     'by a program that does not calculate); open the workbook in Excel, let it calculate and save, or type the '
     'value'),
    (36, 'userPrincipalName', 'upn-dots',
     "userPrincipalName '.ann.lee@contoso.com': the part before '@' cannot start with '.' (an e-mail address's rule); "
     "remove it"),
]
UNKNOWN_COLUMN = ("column(s) 'Expected' are not roster fields; they are kept and carried to the report but not sent "
                  "to Entra ID (map them with --mapping if needed)")


def _issues_by_row_and_code(issues):
    return {(i.row, i.code): i for i in issues}


def test_every_sample_row_has_its_exact_message():
    roster = load_roster(SAMPLE)
    found = _issues_by_row_and_code(validate_roster(roster).issues)
    expected_codes = {r.row: r.cells[0] for r in roster.rows}
    assert {row: code for row, _, code, _ in SAMPLE_MESSAGES} == expected_codes
    for row, column, code, message in SAMPLE_MESSAGES:
        issue = found[(row, code)]
        assert (issue.column, issue.message, issue.severity) == (column, message, RULES[code].severity)
    assert found[(0, "unknown-column")].message == UNKNOWN_COLUMN


class FakeTenant:
    verified_domains = frozenset({"contoso.com", "federated.contoso.com"})
    federated_domains = frozenset({"federated.contoso.com"})
    default_domain = "contoso.com"

    def __init__(self, *users: ExistingUser) -> None:
        self.users = {u.userPrincipalName.lower(): u for u in users}

    def lookup(self, upns):
        return {u.lower(): self.users[u.lower()] for u in upns if u.lower() in self.users}


TENANT_MESSAGES = {
    (2, "User name", "user-exists"): "userPrincipalName 'ann.lee@contoso.com' already belongs to this person in the "
                                     "tenant (Ann Lee, employeeId 7); the row is matched to that user: skipped, or "
                                     "updated with --existing update",
    (3, "User name", "upn-suffixed"): "userPrincipalName 'bo.ek@contoso.com' already belongs to another person in the "
                                      "tenant (Someone Else, employeeId 99); derived 'bo.ek2@contoso.com' instead; if "
                                      "this row is that person, fill in userPrincipalName 'bo.ek@contoso.com'",
    (4, "User name", "upn-domain-unverified"): "User name 'cy@fabrikam.net': 'fabrikam.net' is not a verified "
                                               "domain of the tenant; use one of: contoso.com, federated.contoso.com",
    (5, "User name", "immutable-id-required"): "User name 'di@federated.contoso.com': 'federated.contoso.com' is "
                                               "federated, so onPremisesImmutableId is required; add it or use a "
                                               "managed domain",
    (6, "User name", "upn-missing"): "userPrincipalName is empty and the naming template "
                                     "'{givenName}.{surname}@{domain}' gives nothing for this row; fill in "
                                     "userPrincipalName or givenName / surname",
}


def test_tenant_rules_exact_messages_with_headers_as_written(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("First name,Last name,Employee number,Name,User name\n"
                 "Ann,Lee,7,Ann Lee,\nBo,Ek,8,Bo Ek,\nCy,Do,9,Cy Do,cy@fabrikam.net\n"
                 "Di,Fo,10,Di Fo,di@federated.contoso.com\n,,11,Nobody,\n", encoding="utf-8")
    tenant = FakeTenant(ExistingUser("1", "ann.lee@contoso.com", "Ann Lee", "7"),
                        ExistingUser("2", "bo.ek@contoso.com", "Someone Else", "99"))
    found = _issues_by_row_and_code(validate_roster(load_roster(p), tenant=tenant).issues)
    for (row, column, code), message in TENANT_MESSAGES.items():
        issue = found[(row, code)]
        assert (issue.column, issue.message, issue.severity) == (column, message, RULES[code].severity)
    from provisioning.run.chain import CODES as RETRY_CODES  # exact texts: tests/followups/test_retry_chain.py
    from provisioning.validation.people import CODES as PEOPLE_CODES  # exact texts: tests/run/test_people_e2e.py
    from provisioning.validation.references import CODES as PREFLIGHT_CODES  # exact texts: tests/followups/test_pure.py

    covered = {code for _, _, code, _ in SAMPLE_MESSAGES} | {code for _, _, code in TENANT_MESSAGES} | {
        "unknown-column", "control-char", "excel-error-ignored", "duplicate-row"} | set(PREFLIGHT_CODES) | \
        set(RETRY_CODES) | set(PEOPLE_CODES) | {"totals-row", "hidden-row", "hidden-sheet-skipped",
                                               "header-row-found"} | {
        "phone-invalid", "not-a-person", "invisible-char", "encoding-guessed", "mapped-column-missing"}
    # control-char: test below; excel-error-ignored: test_excel_errors.py; the sheet layout codes: test_excel_layout.py;
    # duplicate-row: test_identity.py; phone, footer, invisible, encoding: test_csv_cells.py and test_encodings.py;
    # mapped-column-missing: test_mapping_files.py
    assert covered == set(RULES)


def test_upn_dots_exact_messages(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("Name,User name\nAnn Lee,.ann@contoso.com\nBo Ek,bo..ek@contoso.com\nCy Do,cy.do@contoso.com\n",
                 encoding="utf-8")
    issues = validate_roster(load_roster(p)).issues
    assert [(i.row, i.column, i.code, i.severity, i.message) for i in issues] == [
        (2, "User name", "upn-dots", Severity.ERROR,
         "User name '.ann@contoso.com': the part before '@' cannot start with '.' (an e-mail address's rule); "
         "remove it"),
        (3, "User name", "upn-dots", Severity.ERROR,
         "User name 'bo..ek@contoso.com': the part before '@' cannot hold '..' (an e-mail address's rule); "
         "remove one '.'"),
    ]


def test_messages_use_the_header_as_written(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("First name,Last name,Email address,Hire date\nAnn,Lee,ann@@x.com,31/12/2024\n", encoding="utf-8")
    v = validate_roster(load_roster(p), default_domain="contoso.com")
    assert [(i.row, i.column, i.message) for i in v.issues if i.severity is Severity.ERROR] == [
        (2, "Email address", "Email address 'ann@@x.com': not a plain email address (ASCII, name@domain); fix it"),
        (2, "Hire date", "Hire date '31/12/2024': not a date; write it as YYYY-MM-DD, e.g. 2024-09-01"),
    ]


#: roster-level error code -> (file under tests/data, exact message after "<path>: ")
ROSTER_LEVEL = {
    "roster-unreadable": ("bad/binary.csv", None),
    "roster-encoding": ("encodings/utf8-stray-latin1.csv", None),  # exact texts: test_encodings.py
    "roster-no-header": ("no-header.csv", "the roster is empty; it needs a header row and one row per user"),
    "roster-missing-columns": ("missing-columns.csv",
                               "required column(s) missing: displayName (or givenName and surname to derive it); "
                               "userPrincipalName (or givenName and surname to derive it). Add them, or map your "
                               "headers with --mapping"),
    "roster-duplicate-header": ("duplicate-header.csv",
                                "the header 'surname' appears twice (columns B and D); rename or remove one"),
}


@pytest.mark.parametrize("code", sorted(ROSTER_ERRORS))
def test_roster_level_errors_exact(code):
    name, message = ROSTER_LEVEL[code]
    path = DATA / name
    with pytest.raises(RosterError) as info:
        load_roster(path)
    if message is not None:
        assert info.value.detail == message
    out, err = io.StringIO(), io.StringIO()
    assert provision.main(["validate", str(path)], stdout=out, stderr=err) == 2
    assert err.getvalue() == f"error: {path}: {info.value.detail}\n" and out.getvalue() == ""


def test_password_cells_are_never_quoted_nor_trimmed(tmp_path):
    p = tmp_path / "pw.csv"
    p.write_text("givenName,surname,userPrincipalName,Initial password,jobTitle\n"
                 "Ann,Lee,ann@contoso.com,=Secr3t!pass,Eng\n"
                 "Bo,Ek,bo@contoso.com, Sp4ced out! ,Ops\n"
                 "Cy,Do,cy@contoso.com,Ctl\x07Pass9!,Ops\x01\n", encoding="utf-8")
    v = validate_roster(load_roster(p))
    found = {(i.row, i.column, i.code): i.message for i in v.issues}
    assert found == {
        (2, "Initial password", "formula-cell"): "Initial password: the password starts with '=', so a spreadsheet "
                                                 "would run it as a formula; choose another password (it is not "
                                                 "repeated here)",
        (4, "Initial password", "control-char"): "Initial password: contains a NUL or control character (often a "
                                                 "corrupt or binary export); retype the cell or export the roster "
                                                 "again",
        (4, "Initial password", "password-invalid-char"): found[(4, "Initial password", "password-invalid-char")],
        (4, "jobTitle", "control-char"): "jobTitle 'Ops\\x01': contains a NUL or control character (often a "
                                         "corrupt or binary export); retype the cell or export the roster again",
    }
    text = " ".join(i.message for i in v.issues)
    assert "Secr3t" not in text and "Sp4ced" not in text and "Ctl" not in text
    assert v.rows[1].password == " Sp4ced out! "  # Entra allows blanks; the administrator's password is kept


def test_entra_block_sign_in_not_yes_or_no_is_reported_once(tmp_path):
    out, err = io.StringIO(), io.StringIO()
    code = provision.main(["validate", str(DATA / "entra-block-sign-in-nein.csv"), "--out", str(tmp_path / "i.csv")],
                          stdout=out, stderr=err)
    assert code == 1
    import csv

    with (tmp_path / "i.csv").open(encoding="utf-8-sig") as fh:
        rows = [(r["row"], r["code"], r["message"]) for r in csv.DictReader(fh)]
    assert rows == [("3", "boolean-invalid", "Block sign in (Yes/No) [accountEnabled] Required 'Nein': not a Yes/No "
                                             "value; write Yes or No (also accepted: true/false, y/n, 1/0)")]
    assert "1 valid, 1 with errors; 1 error, 0 warnings" in err.getvalue()
