"""Regenerate the sample rosters in this folder: ``python samples/generate.py``.

roster.csv / roster.xlsx      25 realistic users (accents, a manager chain), clean: `validate` exits 0
roster-entra.csv              the same users in the Entra admin center bulk-create format
roster-m365.csv               the same users in the Microsoft 365 admin center "add multiple users" format
hr-workday.csv, hr-bamboohr.csv   HR exports for templates/mapping-workday.json and mapping-bamboohr.json
roster-with-errors.xlsx       one row per row-level rule; column "Expected" names the code the row triggers
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from provisioning.roster.derive import make_upn_maker  # noqa: E402
from provisioning.roster.template import ENTRA_HEADERS, ENTRA_VERSION_LINE  # noqa: E402

# givenName, surname, jobTitle, department, usageLocation, city, country, employeeId, manager index, mobile
PEOPLE = [
    ("Ingrid", "Søndergaard", "Chief Executive Officer", "Executive", "DK", "Copenhagen", "Denmark", "00001", None),
    ("José", "Núñez-Ødegård", "VP Engineering", "Engineering", "ES", "Madrid", "Spain", "00002", 0),
    ("Chloé", "Lefèvre", "VP Sales", "Sales", "FR", "Paris", "France", "00003", 0),
    ("Jürgen", "Groß", "VP Finance", "Finance", "DE", "München", "Germany", "00004", 0),
    ("Siobhán", "O'Brien", "Engineering Manager", "Engineering", "IE", "Dublin", "Ireland", "00005", 1),
    ("Zoë", "Smith", "Software Engineer", "Engineering", "GB", "London", "United Kingdom", "00006", 4),
    ("Łukasz", "Wiśniewski", "Software Engineer", "Engineering", "PL", "Kraków", "Poland", "00007", 4),
    ("Ana", "Conceição", "Software Engineer", "Engineering", "PT", "Lisboa", "Portugal", "00008", 4),
    ("François", "Dupont", "Site Reliability Engineer", "Engineering", "FR", "Lyon", "France", "00009", 4),
    ("Björk", "Guðmundsdóttir", "Designer", "Engineering", "IS", "Reykjavík", "Iceland", "00010", 1),
    ("Mehmet", "Yılmaz", "QA Engineer", "Engineering", "TR", "İstanbul", "Türkiye", "00011", 4),
    ("Nguyễn", "Văn An", "Data Engineer", "Engineering", "VN", "Hà Nội", "Viet Nam", "00012", 1),
    ("Renée", "Zellweger", "Account Executive", "Sales", "CH", "Zürich", "Switzerland", "00013", 2),
    ("Åsa", "Lindström", "Account Executive", "Sales", "SE", "Göteborg", "Sweden", "00014", 2),
    ("Dmitrij", "Šimić", "Sales Engineer", "Sales", "HR", "Zagreb", "Croatia", "00015", 2),
    ("Mary", "Ann Lee", "Sales Manager", "Sales", "US", "Seattle", "United States", "00016", 2),
    ("Kwame", "Mensah", "Account Executive", "Sales", "GH", "Accra", "Ghana", "00017", 15),
    ("Priya", "Raghunathan", "Sales Operations Analyst", "Sales", "IN", "Bengaluru", "India", "00018", 15),
    ("Héloïse", "Château", "Controller", "Finance", "BE", "Bruxelles", "Belgium", "00019", 3),
    ("Søren", "Kierkegård", "Accountant", "Finance", "DK", "Aarhus", "Denmark", "00020", 18),
    ("Ana", "Müller", "Payroll Specialist", "Finance", "AT", "Wien", "Austria", "00021", 18),
    ("Tomás", "Ó Súilleabháin", "Financial Analyst", "Finance", "IE", "Cork", "Ireland", "00022", 18),
    ("Yuki", "Tanaka", "Treasury Analyst", "Finance", "JP", "Tokyo", "Japan", "00023", 3),
    ("Ólafur", "Þórðarson", "Internal Auditor", "Finance", "IS", "Akureyri", "Iceland", "00024", 3),
    ("Zoë", "Smith", "Software Engineer", "Engineering", "NZ", "Auckland", "New Zealand", "00025", 4),
]
PASSWORDS = [f"Sample#{i:02d}Pass!x" for i in range(len(PEOPLE))]  # sample data only, not real credentials

_, _make = make_upn_maker("{givenName}.{surname}@{domain}", "contoso.com")


def upns() -> list[str]:
    """Each person's UPN as the default template derives it (the second Zoë Smith gets zoe.smith2)."""
    out: list[str] = []
    for p in PEOPLE:
        upn = _make(p[0], p[1])
        n = 2
        base = upn
        while upn in out:
            upn = base.replace("@", f"{n}@")
            n += 1
        out.append(upn)
    return out


PLAIN = ("givenName", "surname", "displayName", "userPrincipalName", "jobTitle", "department", "usageLocation",
         "city", "country", "employeeId", "mobilePhone", "businessPhones", "manager", "accountEnabled")


def plain_rows() -> list[list[str]]:
    u = upns()
    return [[g, s, f"{g} {s}", u[i], t, d, loc, city, country, eid, f"+1 555 01{i:02d}", f"+1 555 02{i:02d}",
             u[m] if m is not None else "", "Yes"]
            for i, (g, s, t, d, loc, city, country, eid, m) in enumerate(PEOPLE)]


def write_plain() -> None:
    rows = plain_rows()
    with (HERE / "roster.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(PLAIN)
        w.writerows(rows)
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "Users"
    ws.append(PLAIN)
    for r in rows:
        ws.append(r)
    for row in ws.iter_rows(min_row=2):
        for cell in row:
            cell.number_format = "@"
    wb.save(HERE / "roster.xlsx")


def write_entra() -> None:
    u = upns()
    with (HERE / "roster-entra.csv").open("w", newline="", encoding="utf-8") as f:
        f.write(ENTRA_VERSION_LINE + "\r\n")
        w = csv.writer(f)
        w.writerow(ENTRA_HEADERS)
        for i, (g, s, t, d, loc, city, country, _, _) in enumerate(PEOPLE):
            w.writerow([f"{g} {s}", u[i], PASSWORDS[i], "No", g, s, t, d, loc, "", "", country, "", city, "",
                        f"+1 555 02{i:02d}", f"+1 555 01{i:02d}"])


M365 = ("User Name", "First Name", "Last Name", "Display Name", "Job Title", "Department", "Office Number",
        "Office Phone", "Mobile Phone", "Fax", "Alternate email address", "Address", "City", "State or Province",
        "ZIP or Postal Code", "Country or Region")


def write_m365() -> None:
    u = upns()
    with (HERE / "roster-m365.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(M365)
        for i, (g, s, t, d, _, city, country, _, _) in enumerate(PEOPLE):
            w.writerow([u[i], g, s, f"{g} {s}", t, d, "", f"+1 555 02{i:02d}", f"+1 555 01{i:02d}", "", "", "",
                        city, "", "", country])


def write_hr() -> None:
    u = upns()
    with (HERE / "hr-workday.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["Employee_ID", "Legal_First_Name", "Legal_Last_Name", "Business_Title",
                    "Supervisory_Organization", "Cost_Center", "Location", "Work_Country_ISO", "Hire_Date",
                    "Worker_Type", "Manager_Work_Email"])
        for i, (g, s, t, d, loc, city, _, eid, m) in enumerate(PEOPLE[:24]):
            w.writerow([eid, g, s, t, d, f"CC-{d[:3].upper()}", city, loc, f"2024-{(i % 12) + 1:02d}-01",
                        "Employee", u[m] if m is not None else ""])
    with (HERE / "hr-bamboohr.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter=";")
        w.writerow(["Employee #", "First Name", "Last Name", "Job Title", "Department", "Division", "Location",
                    "Country", "Hire Date", "Mobile Phone", "Work Phone", "Reporting to", "Employment Status"])
        for i, (g, s, t, d, _, city, country, eid, m) in enumerate(PEOPLE[:24]):
            w.writerow([eid, g, s, t, d, "Contoso Europe", city, country, f"2023-{(i % 12) + 1:02d}-15",
                        f"+1 555 01{i:02d}", f"+1 555 02{i:02d}",
                        f"{PEOPLE[m][0]} {PEOPLE[m][1]}" if m is not None else "", "Full-Time"])


ERR_COLS = ("Expected", "givenName", "surname", "displayName", "userPrincipalName", "mailNickname", "password",
            "accountEnabled", "jobTitle", "department", "employeeId", "usageLocation", "businessPhones", "mail",
            "employeeHireDate", "preferredLanguage", "passwordPolicies", "onPremisesImmutableId", "manager",
            "licenses")


def error_rows() -> list[dict[str, str]]:
    """One row per rule; every other cell is valid."""
    long_local = "a" * 65
    rows = [
        ("whitespace-trimmed", {"department": " Sales "}),
        ("formula-cell", {"jobTitle": '=HYPERLINK("http://x.example","Click")'}),
        ("display-name-missing", {"givenName": "", "surname": "", "displayName": ""}),
        ("upn-no-domain", {"userPrincipalName": ""}),
        ("upn-at-sign", {"userPrincipalName": "ann.lee.contoso.com"}),
        ("upn-invalid-chars", {"userPrincipalName": "josé.núñez@contoso.com"}),
        ("upn-dot-before-at", {"userPrincipalName": "ann.lee.@contoso.com"}),
        ("upn-local-too-long", {"userPrincipalName": f"{long_local}@contoso.com"}),
        ("upn-domain-too-long", {"userPrincipalName": f"ann@{'d' * 45}.com"}),
        ("upn-too-long", {"userPrincipalName": f"{'b' * 65}@{'e' * 44}.com"}),
        ("upn-domain-invalid", {"userPrincipalName": "ann@contoso"}),
        ("immutable-id-invalid", {"onPremisesImmutableId": "abc$def_1"}),
        ("mail-nickname-invalid", {"mailNickname": "ann lee"}),
        ("field-too-long", {"employeeId": "12345678901234567"}),
        ("boolean-invalid", {"accountEnabled": "maybe"}),
        ("usage-location-invalid", {"usageLocation": "UK"}),
        ("usage-location-required", {"licenses": "SPE_E3", "usageLocation": ""}),
        ("phone-multiple", {"businessPhones": "+1 555 0100; +1 555 0101"}),
        ("mail-invalid", {"mail": "ann@@contoso.com"}),
        ("date-invalid", {"employeeHireDate": "31/12/2024"}),
        ("language-invalid", {"preferredLanguage": "English"}),
        ("password-policies-invalid", {"passwordPolicies": "NeverExpire"}),
        ("manager-invalid", {"manager": "Bob"}),
        ("password-too-short", {"password": "Ab1!x"}),
        ("password-too-long", {"password": "Ab1!" * 65}),
        ("password-non-ascii", {"password": "Pässwörd123!"}),
        ("password-invalid-char", {"password": "Abc\tdef123!"}),
        ("password-weak", {"password": "alllowercase"}),
        ("password-contains-name", {"password": "Xy!user28z2024"}),
        ("duplicate-upn", {"userPrincipalName": "USER29@contoso.com".replace("29", "28")}),
        ("duplicate-mail-nickname", {"mailNickname": "nick28"}),
        ("duplicate-employee-id", {"employeeId": "E028"}),
        ("excel-error", {"jobTitle": "#N/A"}),  # openpyxl writes "#N/A" as an error cell
        ("formula-no-value", {"jobTitle": '=UPPER("tester")'}),  # a formula, no saved value (see write_errors)
        ("upn-dots", {"userPrincipalName": ".ann.lee@contoso.com"}),
    ]
    out = []
    for i, (code, over) in enumerate(rows):
        base = {"givenName": "Test", "surname": f"User{i}", "displayName": f"Test User{i}",
                "userPrincipalName": f"user{i}@contoso.com", "mailNickname": f"nick{i}", "password": "",
                "accountEnabled": "Yes", "jobTitle": "Tester", "department": "QA", "employeeId": f"E{i:03d}",
                "usageLocation": "US", "businessPhones": "+1 555 0100", "mail": "", "employeeHireDate": "2024-09-01",
                "preferredLanguage": "en-US", "passwordPolicies": "", "onPremisesImmutableId": "", "manager": "",
                "licenses": ""}
        base.update(over)
        base["Expected"] = code
        out.append(base)
    return out


def write_errors() -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "Users"
    ws.append(ERR_COLS)
    for row in error_rows():
        ws.append([row[c] for c in ERR_COLS])
    for row in ws.iter_rows(min_row=2):
        for cell in row:
            cell.number_format = "@"
            if isinstance(cell.value, str) and cell.value.startswith("=") and row[0].value != "formula-no-value":
                cell.data_type = "s"  # keep the formula text as text: the sample shows what HR exports contain
    wb.save(HERE / "roster-with-errors.xlsx")


if __name__ == "__main__":
    write_plain()
    write_entra()
    write_m365()
    write_hr()
    write_errors()
