"""One definition per pattern: validation (per value and its whole-column fast path), derivation and the sandbox
agree on the characters of a UPN and of a mailNickname, one by one (the sandbox keeps its own copy, since it
imports nothing of provisioning)."""
from __future__ import annotations

from provisioning.models import Roster
from provisioning.roster.derive import mail_nickname_from, make_upns
from provisioning.validation import rules
from provisioning.validation.checks import Collector, check_field
from provisioning.validation.colscan import scan
from sandbox import userrules

#: printable ASCII, blanks and a few letters Entra refuses (accents, a letter outside Latin-1, a dotless i)
CHARS = [chr(c) for c in range(0x20, 0x7F)] + ["\t", "\xa0", "é", "ß", "ı", "\u0628", "\u200b"]
DOMAINS = {"contoso.com": {"isVerified": True, "authenticationType": "Managed"}}


def _roster(n: int) -> Roster:
    return Roster(path="r.csv", sheet=None, kind="csv", headers=("c",), header_row=1,
                  row_numbers=tuple(range(2, n + 2)), columns=((),))


def _column_codes(name: str, values: list[str]) -> set[str]:
    """The codes the whole-column check (validation's fast path) finds in ``values``."""
    out = Collector(_roster(len(values)))
    check_field(name, values, name, out, scan(values))
    return {i.code for i in out.issues}


def test_a_upn_character_validation_accepts_is_kept_by_derivation_and_accepted_by_the_sandbox():
    for ch in CHARS:
        upn = f"a{ch}b@contoso.com"
        valid = not rules.upn_problems(upn, "userPrincipalName")
        assert valid is not bool(_column_codes("userPrincipalName", [upn, "x@contoso.com"])), repr(ch)
        assert valid is (userrules.check_upn(upn, DOMAINS, None) is None), repr(ch)
        literal = f"a{ch}b".replace("{", "{{").replace("}", "}}")
        derived = make_upns(literal + "@{domain}", "contoso.com", {}, [0])[0][0]
        assert derived == (upn if valid else "ab@contoso.com"), repr(ch)


def test_a_mail_nickname_character_validation_accepts_is_kept_by_derivation_and_accepted_by_the_sandbox():
    for ch in CHARS:
        nick = f"a{ch}b"
        valid = rules.mail_nickname_problem(nick, "mailNickname") is None
        assert valid is (userrules.check_values({"mailNickname": nick}) is None), repr(ch)
        assert mail_nickname_from(f"{nick}@contoso.com") == (nick if valid else "ab"), repr(ch)



def test_the_dots_of_a_upn_validation_refuses_are_refused_by_the_sandbox_and_dropped_by_derivation():
    """A user name (before '@') may not start or end with '.' nor hold '..' (an e-mail address's dot-atom): the
    per-value rule, the column's fast path and the sandbox agree, and derivation never makes such a name."""
    cases = {"a.b": None, "a.b.c": None, ".ab": "upn-dots", "a..b": "upn-dots", "ab.": "upn-dot-before-at",
             "..ab": "upn-dots", ".": "upn-dots"}
    for local, code in cases.items():
        upn = f"{local}@contoso.com"
        codes = {c for c, _ in rules.upn_problems(upn, "userPrincipalName")}
        assert (code in codes) if code else not codes, local
        assert _column_codes("userPrincipalName", [upn, "x@contoso.com"]) == codes, local
        assert (userrules.check_upn(upn, DOMAINS, None) is None) is (code is None), local
        derived = make_upns(f"{local}x@{{domain}}", "contoso.com", {}, [0])[0][0]
        assert not rules.upn_problems(derived, "userPrincipalName"), (local, derived)
