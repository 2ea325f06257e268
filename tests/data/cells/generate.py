"""Write the rosters of tests/data/cells/ (cells a user's export really had: footer lines, formulas behind
blanks, arithmetic in phone columns, invisible characters, Excel's text prefix) and tests/data/encodings/
(one file per encoding problem). Run: ``python tests/data/cells/generate.py``. The invisible characters are
written as escapes here so that this script can be read; the files hold the characters themselves."""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
ENCODINGS = HERE.parent / "encodings"
HEADER = "givenName,surname,userPrincipalName,mobilePhone,businessPhones\n"

CELLS: dict[str, str] = {
    # a report's footer lines below the people; row 6 has only a given name: a person with errors, no footer
    "footer.csv": HEADER + "Ann,Lee,ann.lee@contoso.com,,\nBo,Ek,bo.ek@contoso.com,,\n\n"
                  "Total: 2 employees,,,,\nPage 1 of 1,,,,\nGenerated on 2024-05-02 by Workday,,,,\n"
                  "End of report,,,,\n3 records,,,,\nPaige,,,,\n",
    # formulas behind an ASCII blank, U+00A0, U+3000, a tab, U+2003; arithmetic where a phone number belongs
    "formulas.csv": HEADER + " =1+1,Lee,ann.lee@contoso.com,,\n"
                    "Bo,\u00a0=HYPERLINK(\"http://x.example\"),bo.ek@contoso.com,,\n"
                    "\u3000@SUM(A1),Do,cy.do@contoso.com,,\n"
                    "Di,Fo,di.fo@contoso.com,+1+1,\n"
                    "Ed,Gu,ed.gu@contoso.com,,-2+3\n"
                    "Flo,Ha,flo.ha@contoso.com,+1 (555) 010-0100 ext. 12,+44 20 7946 0958\n"
                    "Gil,In,gil.in@contoso.com,\u2003+1 555 0100,555.0100 x7\n",
    # spoofing: a right-to-left override, zero-width characters inside names, a soft hyphen; a Persian name
    # with its zero width non-joiner (part of the spelling) and a zero width space at the end (trimmed)
    "invisible.csv": "givenName,surname,displayName,userPrincipalName\n"
                     "Ann,Lee,Ann\u202eeeL,ann.lee@contoso.com\n"
                     "Bo,E\u200bk,Bo Ek,bo.ek@contoso.com\n"
                     "Cy,Do\u200d,Cy Do,cy.do@contoso.com\n"
                     "Di,Fo,Di\u00adFo,di.fo@contoso.com\n"
                     "Ed,Gu,Ed Gu\u2066,ed.gu@contoso.com\n"
                     "\u0645\u062d\u0645\u062f\u200c\u0631\u0636\u0627,Karimi,,mr.karimi@contoso.com\n"
                     "Flo,Ha\u200b,,flo.ha@contoso.com\n",
    # what export-users and results CSVs write: Excel's text prefix before formula-looking text; O'Brien is data
    "apostrophes.csv": "givenName,surname,userPrincipalName,mobilePhone,businessPhones,jobTitle\n"
                       "Ann,O'Brien,ann.obrien@contoso.com,'+1 555 0100,'+1 555 0101,Engineer\n"
                       "Bo,'t Hooft,bo.thooft@contoso.com,'+44 20 7946 0958,,'Lead\n"
                       "Cy,Do,cy.do@contoso.com,,,'=1+1\n",
}
_BASE = "givenName,surname,userPrincipalName\n"
ENCODED: dict[str, bytes] = {
    "mac-roman.csv": (_BASE + "Søren,Kierkegård,soren.kierkegaard@contoso.com\n"
                      "Karen,Blixen,karen.blixen@contoso.com\n").encode("mac_roman"),
    "cp1250.csv": (_BASE + "Antonín,Dvořák,antonin.dvorak@contoso.com\n"
                   "Leoš,Janáček,leos.janacek@contoso.com\n").encode("cp1250"),
    # a UTF-8 file, edited once by a program that wrote one name in Latin-1 (line 4)
    "utf8-stray-latin1.csv": (_BASE + "José,Núñez,jose.nunez@contoso.com\nZoë,Ærø,zoe.aero@contoso.com\n"
                              ).encode("utf-8") + "Renée,Noël,renee.noel@contoso.com\n".encode("latin-1")
                             + "Åsa,Öberg,asa.oberg@contoso.com\n".encode(),
}

if __name__ == "__main__":
    for name, text in CELLS.items():
        (HERE / name).write_bytes(text.encode("utf-8"))
    ENCODINGS.mkdir(exist_ok=True)
    for name, data in ENCODED.items():
        (ENCODINGS / name).write_bytes(data)
