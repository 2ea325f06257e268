"""The registry of issue codes: every rule's stable code, severity and one-line description.

Scripts and the report key on these codes; :data:`RULES` is the one table the README (templates/make_readme.py),
the ``validate`` output and the tests use. Any stage may raise an issue (the roster reader, validation, the retry
chain), so the registry is a leaf that imports nothing but the models.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from provisioning.models import Issue, Severity

E, W = Severity.ERROR, Severity.WARNING


@dataclass(frozen=True, slots=True)
class Rule:
    """One validation rule: its stable code, severity and a one-line description."""

    code: str
    severity: Severity
    description: str


RULES: Mapping[str, Rule] = {r.code: r for r in (
    Rule("unknown-column", W, "A column that is no roster field; kept and carried to the report, not sent."),
    Rule("mapped-column-missing", W, "The mapping file maps a field to a column the roster does not have (a "
                                     "renamed column in the HR export?): nobody gets that field from this file."),
    Rule("encoding-guessed", W, "The CSV file is not UTF-8 and was read in the one encoding in which its names read "
                                "as letters (Mac OS Roman, Windows-1250...); check the names, or save the file as "
                                "CSV UTF-8."),
    Rule("whitespace-trimmed", W, "Leading/trailing blanks were removed from a cell."),
    Rule("control-char", E, "A cell holds a NUL or control character (not tab or line break): a corrupt export."),
    Rule("formula-cell", E, "A cell a spreadsheet would run as a formula (its first character after any blanks is "
                            "= + - @, or it starts with tab or CR; phone numbers such as +1 555 0100 are fine)."),
    Rule("invisible-char", E, "A cell holds an invisible or text-direction character (Unicode format characters "
                              "such as U+200B, U+202E, U+00AD soft hyphen), which can make a name or address look "
                              "like another."),
    Rule("not-a-person", E, "A footer line of an export ('Total: 2 employees', 'Page 1 of 1', 'Generated on ...') "
                            "in one cell, or a label such as 'Total' with its count in the next cells; not sent."),
    Rule("phone-invalid", E, "businessPhones, mobilePhone or faxNumber is not a phone number (digits with an "
                             "optional leading +, spaces, - . / ( ), optionally an extension x123 or ext. 123); "
                             "+1+1, -2+3 and =... are formulas, reported here instead of as formula-cell."),
    Rule("excel-error", E, "An Excel cell shows an error value (#N/A, #DIV/0!, #REF!, #VALUE!, #NAME?...) instead of "
                           "data."),
    Rule("formula-no-value", E, "An Excel cell holds a formula whose result was never saved (written by a program "
                                "that does not calculate)."),
    Rule("excel-error-ignored", W, "An Excel error value or a formula without a saved value in a column that is not "
                                   "sent to Entra ID; the row goes ahead."),
    Rule("totals-row", E, "The row is an Excel table's totals row (its Total/SUBTOTAL line), not a person; it is "
                          "not sent."),
    Rule("hidden-row", W, "The row is hidden in Excel (filtered out or hidden by hand); it is provisioned like any "
                          "other row."),
    Rule("hidden-sheet-skipped", W, "Hidden sheets before the sheet read were not read (a hidden sheet is read only "
                                    "with --sheet)."),
    Rule("header-row-found", W, "Title rows above the column names were skipped; the header is the first row with "
                                "known column names (or the row given with --header-row)."),
    Rule("display-name-missing", E, "displayName is empty and cannot be derived from givenName/surname."),
    Rule("upn-missing", E, "userPrincipalName is empty and the naming template gives nothing for the row."),
    Rule("upn-no-domain", E, "userPrincipalName must be derived but no domain is known (--domain, mapping "
                             "'domain', or a tenant)."),
    Rule("upn-at-sign", E, "userPrincipalName must have exactly one '@' with text on both sides."),
    Rule("upn-invalid-chars", E, "userPrincipalName has characters outside A-Z a-z 0-9 ' . - _ ! # ^ ~."),
    Rule("upn-dot-before-at", E, "userPrincipalName has a '.' right before '@'."),
    Rule("upn-dots", E, "userPrincipalName starts with '.' or has '..' before '@' (an e-mail address's dot rules)."),
    Rule("upn-local-too-long", E, "userPrincipalName has more than 64 characters before '@'."),
    Rule("upn-domain-too-long", E, "userPrincipalName has more than 48 characters after '@'."),
    Rule("upn-too-long", E, "userPrincipalName has more than 113 characters."),
    Rule("upn-domain-invalid", E, "The domain after '@' is not a domain name (labels of letters, digits, '-')."),
    Rule("upn-suffixed", W, "A derived userPrincipalName was taken (a namesake in the file or the tenant, or a typed "
                            "UPN); a number was added. The message says how to tell namesakes apart."),
    Rule("upn-domain-unverified", E, "The UPN's domain is not a verified domain of the tenant (tenant checks)."),
    Rule("immutable-id-required", E, "The UPN's domain is federated, so onPremisesImmutableId is required."),
    Rule("immutable-id-invalid", E, "onPremisesImmutableId must not contain '$' or '_'."),
    Rule("user-exists", W, "The derived UPN (or a numbered form of it) already belongs to this person in the tenant "
                           "(same employeeId, or same displayName); the run skips the row, or updates it with "
                           "--existing update."),
    Rule("employee-id-matched", W, "The row's employeeId belongs to a tenant user whose userPrincipalName is not the "
                                   "row's: the row is that person (skipped, or updated with --existing update, its "
                                   "userPrincipalName included)."),
    Rule("employee-id-conflict", E, "The row's userPrincipalName belongs to one tenant user and its employeeId to "
                                    "another; the message names both."),
    Rule("user-deleted", E, "The row's employeeId, userPrincipalName or mailNickname belongs to a user in Deleted "
                            "users (restorable for 30 days); --restore-deleted restores that account and updates it "
                            "to the row, else delete it permanently to create a new one."),
    Rule("mail-nickname-invalid", E, "mailNickname has characters Entra rejects (non-ASCII, space, @ ( ) \\ [ ] "
                                     "\" ; : < > ,)."),
    Rule("field-too-long", E, "A value is longer than Graph allows for that property."),
    Rule("boolean-invalid", E, "A Yes/No cell holds something else (accepted: yes/no, true/false, y/n, 1/0)."),
    Rule("usage-location-invalid", E, "usageLocation is not a two-letter ISO 3166 country code."),
    Rule("usage-location-required", E, "licenses are given but usageLocation is empty (licences need it)."),
    Rule("phone-multiple", E, "businessPhones holds more than one number; Graph takes only one."),
    Rule("mail-invalid", E, "mail / otherMails is not a plain ASCII email address."),
    Rule("date-invalid", E, "employeeHireDate is not a date (YYYY-MM-DD)."),
    Rule("language-invalid", E, "preferredLanguage is not a language tag such as en-US."),
    Rule("password-policies-invalid", E, "passwordPolicies is not DisablePasswordExpiration and/or "
                                         "DisableStrongPassword."),
    Rule("manager-invalid", E, "manager is not a UPN (alias@domain), or is the user itself."),
    Rule("password-too-short", E, "The password has fewer than 8 characters."),
    Rule("password-too-long", E, "The password has more than 256 characters."),
    Rule("password-non-ascii", E, "The password has non-ASCII characters."),
    Rule("password-invalid-char", E, "The password has a control character or tab."),
    Rule("password-weak", E, "The password does not mix 3 of: lower-case, upper-case, digits, symbols."),
    Rule("password-contains-name", E, "The password contains the user's name."),
    Rule("duplicate-row", E, "The row repeats an earlier row's person: identical in every identity field (see "
                             "\"Nobody twice\" above), after Unicode normalisation."),
    Rule("duplicate-upn", E, "Two rows have the same userPrincipalName (ignoring case and Unicode form)."),
    Rule("duplicate-mail-nickname", E, "Two rows have the same mailNickname (ignoring case and Unicode form)."),
    Rule("duplicate-employee-id", E, "Two rows have the same employeeId (ignoring case and Unicode form)."),
    # checked in pre-flight against the tenant (provisioning.validation.references)
    Rule("group-not-found", E, "A name or id in groups matches no group in the tenant."),
    Rule("group-ambiguous", E, "A name in groups matches several groups; give the group's object id."),
    Rule("license-not-found", E, "A SKU part number or id in licenses is not subscribed in the tenant."),
    Rule("license-seats", E, "More rows ask for a licence than it has free seats; the last rows are refused."),
    Rule("manager-not-found", E, "manager is neither a user in the tenant nor a valid row of the roster."),
    # retry: a row bound to the account an earlier run of the chain created for it (provisioning.run.chain)
    Rule("retry-bound-edited", E, "retry: the row's user was created by an earlier run and a property was edited; "
                                  "use --existing update to change the account, or undo the edit."),
    Rule("retry-bound-missing", E, "retry: the account an earlier run created for the row is not in the tenant "
                                   "any more; no second account is created."),
    Rule("retry-password-lost", E, "retry: the roster gave the row a password, which the report does not copy, "
                                   "and the roster changed or is gone; type it again or leave it empty on "
                                   "purpose."),
    Rule("retry-formula-empty", E, "retry: the roster's cell held a formula with no calculated value (or an error "
                                   "value), so the report's cell is empty; type the value, or retry again with it "
                                   "left empty on purpose."),
)}

#: Roster-level problems: not issues but a RosterError (exit status 2). Listed for the README.
ROSTER_ERRORS: Mapping[str, str] = {
    "roster-unreadable": "The file cannot be read or decoded, or is not CSV/xlsx/xlsm.",
    "roster-encoding": "The CSV file is not UTF-8 and its encoding is uncertain (it reads as different names in "
                       "cp1252 and cp1250, say), or it is UTF-8 with a few lines in another encoding; the message "
                       "names the line. Save it as CSV UTF-8, or give --encoding NAME.",
    "roster-no-header": "The file is empty or has no header row (no sheet with known headers).",
    "roster-missing-columns": "A required field has no column and cannot be derived.",
    "roster-duplicate-header": "A header appears twice, or two headers mean the same field.",
}


def issue(row: int, column: str, code: str, message: str) -> Issue:
    """An :class:`Issue` with the severity the registry gives ``code``."""
    return Issue(row, column, code, RULES[code].severity, message)
