"""Write the Unicode-form fixtures of tests/roster/test_identity.py and tests/run/test_identity_e2e.py.

The NFD and full-width spellings are built with unicodedata/escapes here because editors silently recompose them.
Run ``python tests/data/identity/generate.py``; the CSVs are committed.
"""
from __future__ import annotations

import unicodedata
from pathlib import Path

HERE = Path(__file__).resolve().parent
NFD = "NFD"


def nfd(text: str) -> str:
    return unicodedata.normalize(NFD, text)


def full_width(text: str) -> str:
    """ASCII letters and digits as their full-width forms (U+FF01..U+FF5E), as East Asian input methods type them."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text)


def write(name: str, header: str, rows: list[str]) -> None:
    (HERE / name).write_bytes(("\n".join([header, *rows]) + "\n").encode("utf-8"))


def main() -> None:
    # one file, each person twice in two Unicode forms, plus a byte-identical pair; nothing tells them apart
    write("one-person-twice.csv", "givenName,surname,department", [
        "José,Núñez,Sales",                      # 2
        f"{nfd('José')},{nfd('Núñez')},Sales",   # 3 repeats 2 (NFD, as macOS writes it)
        "Priya,Raman,Ops",                       # 4
        f"{full_width('Priya')},Raman,Ops",      # 5 repeats 4 (full-width)
        "Dup,Row,HR",                            # 6
        "Dup,Row,HR",                            # 7 repeats 6 (byte-identical)
        "Dup,Row,Legal",                         # 8 repeats 6: only the department differs
    ])
    # two people with one name, told apart by their employeeIds; a third with the same name and no id
    write("namesakes.csv", "givenName,surname,employeeId,jobTitle", [
        "Ann,Lee,E100,Engineer",                 # 2 ann.lee@
        "Ann,Lee,E200,Accountant",               # 3 ann.lee2@ (namesake)
    ])
    # the same people exported twice: first composed, then in the other Unicode form
    people = [("Zoë", "Brontë", ""), ("José", "Núñez", ""), ("Priya", "Raman", ""), ("Mia", "Sørensen", "E001")]
    header = "givenName,surname,employeeId"
    write("export-nfc.csv", header, [f"{g},{s},{e}" for g, s, e in people])
    write("export-other-form.csv", header, [f"{nfd(g)},{nfd(s)},{e}" for g, s, e in people[:2]]
          + [f"{full_width(people[2][0])},{people[2][1]},", f"{people[3][0]},{people[3][1]},{full_width('E001')}"])
    # emoji and other symbols in names: never words in the UPN; displayName keeps them
    write("emoji.csv", "givenName,surname", [
        "Ann\U0001F600,Smiles",                  # 2 ann.smiles@ (anyascii would say "grinning")
        "\U0001F469\u200d\U0001F4BB Kim,Dev\u2122",  # 3 kim.dev@ (woman technologist ZWJ sequence, trade mark)
        "Bo\u2764\ufe0f,Ek\U0001F1EC\U0001F1E7",  # 4 bo.ek@ (heart + variation selector, flag)
        "Cy\u20ac,Do\U0001F44D\U0001F3FD",         # 5 cy.do@ (euro sign, thumbs up + skin tone)
    ])


if __name__ == "__main__":
    main()
