"""Nobody twice, offline: one person spelled in two Unicode forms, byte-identical rows, namesakes, emoji in names,
and derived UPNs matched to the tenant's users (``validate`` and ``run``'s validation agree)."""
from __future__ import annotations

import io
from pathlib import Path

import provision
from provisioning.models import ExistingUser, Severity
from provisioning.roster.reader import load_roster
from provisioning.validation.engine import check_roster, validate_roster

DATA = Path(__file__).resolve().parents[1] / "data" / "identity"
REPEAT = ("row {r} repeats row {m}: the same givenName, surname and displayName{form}, and no other identity field "
          "(employeeId, mail, userPrincipalName...) tells them apart{extra}; delete one of the rows, or if they are "
          "two people give each their employeeId")
FORM = " (written in another Unicode form or case)"


def _validate_cli(path: Path, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = provision.main(["validate", str(path), "--out", str(path.parent / "issues.csv"), *args], stdout=out,
                          stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_one_person_in_two_unicode_forms_or_twice_is_an_error_not_a_second_account(tmp_path):
    roster = tmp_path / "r.csv"
    roster.write_bytes((DATA / "one-person-twice.csv").read_bytes())
    v = validate_roster(load_roster(roster), default_domain="contoso.com")
    issues = [(i.row, i.column, i.code, i.severity, i.message) for i in v.issues]
    assert issues == [
        (3, "displayName", "duplicate-row", Severity.ERROR, REPEAT.format(r=3, m=2, form=FORM, extra="")),
        (5, "displayName", "duplicate-row", Severity.ERROR, REPEAT.format(r=5, m=4, form=FORM, extra="")),
        (7, "displayName", "duplicate-row", Severity.ERROR, REPEAT.format(r=7, m=6, form="", extra="")),
        (8, "displayName", "duplicate-row", Severity.ERROR,
         REPEAT.format(r=8, m=6, form="", extra=" (the rows differ only in department)")),
    ]
    # the later rows are excluded and show the UPN of the row they repeat: no priya.raman2@, no dup.row2@
    assert [(r.row, r.upn, r.has_errors) for r in v.rows] == [
        (2, "jose.nunez@contoso.com", False), (3, "jose.nunez@contoso.com", True),
        (4, "priya.raman@contoso.com", False), (5, "priya.raman@contoso.com", True),
        (6, "dup.row@contoso.com", False), (7, "dup.row@contoso.com", True), (8, "dup.row@contoso.com", True)]
    # the validate command says the same
    code, out, err = _validate_cli(roster, "--domain", "contoso.com")
    assert code == 1
    assert "3 valid, 4 with errors; 4 errors, 0 warnings" in err
    assert REPEAT.format(r=5, m=4, form=FORM, extra="") in out


def test_typed_values_that_differ_only_in_unicode_form_or_case_are_duplicates(tmp_path):
    import unicodedata

    roster = tmp_path / "r.csv"
    nick = unicodedata.normalize("NFD", "zoë")
    roster.write_text("givenName,surname,userPrincipalName,mailNickname,employeeId\n"
                      f"Ann,Lee,ann.lee@contoso.com,zoë,E7\n"
                      f"Bo,Ek,\uff41nn.lee@contoso.com,{nick},\uff25\uff17\n"
                      "Cy,Do,cy@contoso.com,cy,e7\n", encoding="utf-8")
    found = {(i.row, i.code): i.message for i in check_roster(load_roster(roster)).issues
             if i.code.startswith("duplicate")}
    assert found == {
        (3, "duplicate-upn"): "userPrincipalName 'ａnn.lee@contoso.com' is already used in row 2; each user needs "
                              "their own",
        (3, "duplicate-mail-nickname"): f"mailNickname {nick!r} is already used in row 2; each user needs their own",
        (3, "duplicate-employee-id"): "employeeId 'Ｅ７' is already used in row 2; each user needs their own",
        (4, "duplicate-employee-id"): "employeeId 'e7' is already used in row 2; each user needs their own",
    }


def test_namesakes_with_different_employee_ids_get_two_upns_and_a_warning_that_says_how_to_tell(tmp_path):
    v = validate_roster(load_roster(DATA / "namesakes.csv"), default_domain="contoso.com")
    assert [(r.row, r.upn, r.has_errors) for r in v.rows] == [(2, "ann.lee@contoso.com", False),
                                                              (3, "ann.lee2@contoso.com", False)]
    assert [(i.row, i.code, i.message) for i in v.issues] == [(
        3, "upn-suffixed", "row 3 has the same name as row 2; they get different userPrincipalNames "
                           "('ann.lee@contoso.com', 'ann.lee2@contoso.com'); their employeeIds differ, so they are "
                           "taken for two people (if they are one, delete one row; to choose the UPN, fill in "
                           "userPrincipalName)")]


def test_namesakes_without_ids_that_differ_in_an_identity_field_get_advice(tmp_path):
    roster = tmp_path / "r.csv"
    roster.write_text("givenName,surname,mobilePhone\nAnn,Lee,+1 555 0100\nAnn,Lee,+1 555 0199\n", encoding="utf-8")
    v = validate_roster(load_roster(roster), default_domain="contoso.com")
    assert [(i.row, i.code, i.message) for i in v.issues] == [(
        3, "upn-suffixed", "row 3 has the same name as row 2; they get different userPrincipalNames "
                           "('ann.lee@contoso.com', 'ann.lee2@contoso.com'); if they are one person delete one row, "
                           "if two give each an employeeId (or fill in userPrincipalName)")]


def test_emoji_and_symbols_never_become_words_in_a_derived_upn():
    v = validate_roster(load_roster(DATA / "emoji.csv"), default_domain="contoso.com")
    assert [(r.upn, r.fields["mailNickname"]) for r in v.rows] == [
        ("ann.smiles@contoso.com", "ann.smiles"), ("kim.dev@contoso.com", "kim.dev"),
        ("bo.ek@contoso.com", "bo.ek"), ("cy.do@contoso.com", "cy.do")]
    assert v.rows[0].fields["displayName"] == "Ann\U0001F600 Smiles"  # displayName keeps what was typed
    assert not v.issues


class FakeTenant:
    verified_domains = frozenset({"contoso.com"})
    federated_domains: frozenset[str] = frozenset()
    default_domain = "contoso.com"

    def __init__(self, *users: ExistingUser) -> None:
        self.users = {u.userPrincipalName.lower(): u for u in users}
        self.calls = 0

    def lookup(self, upns):
        self.calls += 1
        return {u.lower(): self.users[u.lower()] for u in upns if u.lower() in self.users}


def test_rows_in_the_other_unicode_form_are_matched_to_the_tenants_users_not_suffixed():
    tenant = FakeTenant(ExistingUser("1", "zoe.bronte@contoso.com", "Zoë Brontë"),
                        ExistingUser("2", "jose.nunez@contoso.com", "José Núñez"),
                        ExistingUser("3", "priya.raman@contoso.com", "Priya Raman"),
                        ExistingUser("4", "mia.sorensen@contoso.com", "Mia Sørensen", "E001"))
    v = validate_roster(load_roster(DATA / "export-other-form.csv"), tenant=tenant)
    assert [r.upn for r in v.rows] == list(tenant.users)
    assert tenant.calls == 1  # each row is its base's user: one bulk lookup, no numbered forms asked about
    assert [(i.row, i.code) for i in v.issues] == [(2, "user-exists"), (3, "user-exists"), (4, "user-exists"),
                                                   (5, "user-exists")]
    assert v.issues[0].message == ("userPrincipalName 'zoe.bronte@contoso.com' already belongs to this person in "
                                   "the tenant (Zoë Brontë); the row is matched to that user: skipped, or updated "
                                   "with --existing update")


def test_namesakes_are_matched_to_their_own_accounts_whatever_the_row_order():
    tenant = FakeTenant(ExistingUser("1", "ann.lee@contoso.com", "Ann Lee", "E100"),
                        ExistingUser("2", "ann.lee2@contoso.com", "Ann Lee", "E200"),
                        ExistingUser("9", "bo.ek@contoso.com", "Bo Ek", "E900"))
    roster = load_roster(DATA / "namesakes.csv")
    swapped = roster.__class__(**{**{f: getattr(roster, f) for f in ("path", "sheet", "kind", "headers",
                                                                     "header_row", "row_numbers", "column_map")},
                                  "columns": tuple(tuple(reversed(c)) for c in roster.columns)})
    for r, upns in ((roster, ["ann.lee@contoso.com", "ann.lee2@contoso.com"]),
                    (swapped, ["ann.lee2@contoso.com", "ann.lee@contoso.com"])):
        v = validate_roster(r, tenant=tenant)
        assert [u.upn for u in v.rows] == upns
        assert [i.code for i in v.issues] == ["user-exists", "user-exists"]


def test_a_true_namesake_in_the_tenant_gives_the_next_free_number_with_a_warning(tmp_path):
    tenant = FakeTenant(ExistingUser("1", "ann.lee@contoso.com", "Ann Lee", "E999"),
                        ExistingUser("2", "ann.lee2@contoso.com", "Ann Lee-Smith"))
    v = validate_roster(load_roster(DATA / "namesakes.csv"), tenant=tenant)
    assert [r.upn for r in v.rows] == ["ann.lee3@contoso.com", "ann.lee4@contoso.com"]
    assert [(i.row, i.code, i.message) for i in v.issues] == [
        (2, "upn-suffixed", "userPrincipalName 'ann.lee@contoso.com' already belongs to another person in the tenant "
                            "(Ann Lee, employeeId E999); derived 'ann.lee3@contoso.com' instead; if this row is that "
                            "person, fill in userPrincipalName 'ann.lee@contoso.com'"),
        (3, "upn-suffixed", "userPrincipalName 'ann.lee@contoso.com' already belongs to another person in the tenant "
                            "(Ann Lee, employeeId E999); derived 'ann.lee4@contoso.com' instead; if this row is that "
                            "person, fill in userPrincipalName 'ann.lee@contoso.com'")]
    assert tenant.calls <= 3  # in bulk: a few rounds, not one per row or per number
