"""Bad --mapping files get one line naming the file, the key and what to do (exit 2), never an internal error;
naming templates are plain field names in braces (no str.format lookups on user text)."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

import provision
from provisioning.exitcodes import ExitStatus

DATA = Path(__file__).resolve().parents[1] / "data" / "mapping"
ROSTER = DATA / "hr-export.csv"
HINT = "write field names in braces, like {givenName}.{surname}@{domain} ({givenName:.1}: its first letter)"


def validate(tmp_path: Path, mapping: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = provision.main(["validate", str(ROSTER), "--mapping", str(DATA / mapping),
                           "--out", str(tmp_path / "issues.csv")], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("mapping, message", [
    ("columns-list.json", "'columns' is a list; it must be an object like {\"First Name\": \"givenName\", ...}"),
    ("template-unbalanced.json", "naming_template '{givenName.{surname}@{domain}': an unbalanced '{' or '}' "
                                 f"(write {{{{ or }}}} for a brace as text); {HINT}"),
    ("template-attribute.json", "naming_template '{givenName.__class__}@{domain}': {givenName.__class__} looks up "
                                f"an attribute or an index, which templates do not do; {HINT}"),
    ("template-index.json", "naming_template '{givenName[0]}{surname}@{domain}': {givenName[0]} looks up an "
                            f"attribute or an index, which templates do not do; {HINT}"),
    ("template-conversion.json", "naming_template '{givenName!r}@{domain}': {givenName!r} is not a plain field "
                                 "name (no !conversions or :formats other than :.N for the first N characters); "
                                 f"{HINT}"),
    ("template-format-spec.json", "display_name_template '{surname:>10}, {givenName}': {surname:>10} is not a "
                                  "plain field name (no !conversions or :formats other than :.N for the first N "
                                  f"characters); {HINT}"),
    ("template-number.json", 'naming_template is a number; give a text such as "{givenName}.{surname}@{domain}"'),
    ("domain-number.json", 'domain is a number; give the UPN domain as a text, like "contoso.com"'),
    ("constant-null.json", "constants: 'jobTitle' is null; give a text such as \"US\" (or remove the key to use "
                           "the roster's column)"),
])
def test_bad_mapping_file_one_line_exit_2(tmp_path, mapping, message):
    code, out, err = validate(tmp_path, mapping)
    assert (code, out, err) == (ExitStatus.USAGE, "", f"error: {DATA / mapping}: {message}\n")
    assert not (tmp_path / "issues.csv").exists()


def test_mapping_naming_columns_the_roster_lacks_names_the_mapping(tmp_path):
    code, out, err = validate(tmp_path, "renamed-columns.json")
    assert (code, out) == (ExitStatus.USAGE, "")
    assert err == (f"error: {ROSTER}: the mapping file {DATA / 'renamed-columns.json'} maps givenName to column "
                   "'Given Name', which the roster does not have (it has: 'First', 'Last', 'Title'); fix the "
                   "column name in the mapping file or the roster\n")


def test_first_letter_template_still_works(tmp_path):
    code, _, err = validate(tmp_path, "initials.json")
    assert code == ExitStatus.OK, err
    from provisioning.roster.reader import load_roster
    from provisioning.validation.engine import check_roster

    checked = check_roster(load_roster(ROSTER, mapping=DATA / "initials.json"))
    assert list(checked.values["userPrincipalName"]) == ["alee@contoso.com", "bray@contoso.com"]
    with (tmp_path / "issues.csv").open(encoding="utf-8-sig") as fh:
        assert list(csv.reader(fh)) == [["file", "row", "column", "severity", "code", "message"]]


def test_an_optional_mapped_column_the_roster_lacks_is_a_warning(tmp_path):
    """An HR export whose "Job Title" column was renamed: nobody's jobTitle would be set, and nothing said so."""
    code, out, err = validate(tmp_path, "optional-renamed.json")
    assert code == ExitStatus.OK, err
    with (tmp_path / "issues.csv").open(encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    mapping = DATA / "optional-renamed.json"
    assert [(r["row"], r["column"], r["severity"], r["code"], r["message"]) for r in rows] == [
        ("", column, "warning", "mapped-column-missing",
         f"the mapping file {mapping} maps {field} to column {column!r}, which the roster does not have (it has: "
         f"'First', 'Last', 'Title'): nobody gets a {field} from this file; fix the column name in the mapping file "
         "or the roster if that is not meant")
        for column, field in (("Job Title", "jobTitle"), ("Dept", "department"))]
