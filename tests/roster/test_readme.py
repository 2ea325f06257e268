"""templates/README.md is generated from the code and lists every column, alias and rule code."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from provisioning.codes import ROSTER_ERRORS, RULES
from provisioning.fields import FIELDS

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def test_readme_is_up_to_date_and_complete():
    spec = importlib.util.spec_from_file_location("make_readme", TEMPLATES / "make_readme.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = (TEMPLATES / "README.md").read_text(encoding="utf-8")
    assert text == module.render(), "run python templates/make_readme.py"
    for code in list(RULES) + list(ROSTER_ERRORS):
        assert f"| `{code}` |" in text
    for f in FIELDS:
        assert f"| `{f.name}` |" in text
    assert "mapping-workday.json" in text and "mapping-bamboohr.json" in text
