"""Every cross-reference in a docstring or comment (``:func:`provisioning.x.f```, ``:mod:``, ``:class:``...) names
something that exists: a module moved or a function renamed leaves no reference behind that points nowhere."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REF = re.compile(r":(?:func|mod|class|meth|data|attr|exc):`~?((?:provisioning|graph|sandbox)(?:\.\w+)+)`")


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            if not hasattr(obj, name):
                # a dataclass field or an instance attribute set in __init__ is not on the class
                annotations = getattr(obj, "__annotations__", {})
                init = getattr(getattr(obj, "__init__", None), "__code__", None)
                return name in annotations or (init is not None and name in init.co_names)
            obj = getattr(obj, name)
        return True
    return False


def test_every_cross_reference_names_something_that_exists() -> None:
    broken = []
    for path in sorted([*ROOT.glob("provisioning/**/*.py"), *ROOT.glob("graph/*.py"), *ROOT.glob("sandbox/*.py")]):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            for ref in REF.findall(line):
                if not _resolves(ref):
                    broken.append(f"{path.relative_to(ROOT)}:{number}: {ref}")
    assert not broken, "references to nothing:\n" + "\n".join(broken)


def test_the_checker_tells_a_broken_reference() -> None:
    assert _resolves("provisioning.store.journal.Journal.snapshot")
    assert _resolves("provisioning.roster")
    assert not _resolves("provisioning.runner.Session")
    assert not _resolves("provisioning.store.journal.no_such_function")
