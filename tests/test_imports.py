"""The import rules of docs/architecture.md, read from the source with :mod:`ast` (no module is imported).

Inside ``provisioning`` imports point one way, down the pipeline:
``cli > commands > api, watcher > report > run > validation > roster > leaves``. ``report`` never imports ``roster``
or ``validation``; ``run`` never imports ``report`` or ``api``; nothing but ``cli`` imports ``commands``; ``graph``
imports nothing of ``provisioning``; ``sandbox`` imports none of ``provision``, ``provisioning`` and ``graph``;
nothing imports ``tests``; and there is no cycle between modules anywhere. An import inside a function counts like
any other (a function-level import is allowed only for an optional heavy dependency, never to dodge a rule). A
failure names every offending arrow.
"""
from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("provision", "provisioning", "graph", "sandbox", "bench", "tests")

#: The layers of provisioning, top first; a module may import its own layer's modules and any layer below.
LAYERS = (
    ("cli",),
    ("commands",),
    ("api", "watcher"),
    ("report",),
    ("run",),
    ("store",),
    ("validation",),
    ("roster",),
    ("__init__", "errors", "exitcodes", "models", "fields", "settings", "context", "cells", "codes", "targets",
     "portable", "bulk"),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _sources() -> Iterator[Path]:
    yield ROOT / "provision.py"
    for package in PACKAGES[1:]:
        yield from sorted((ROOT / package).rglob("*.py"))


def _is_module(name: str) -> bool:
    path = ROOT / name.replace(".", "/")
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def imports_of(path: Path) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import of this project's code in ``path``, relative ones resolved."""
    name = _module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            # ``from provisioning.run import journal`` imports the module provisioning.store.journal
            targets = [f"{base}.{a.name}" if _is_module(f"{base}.{a.name}") else base for a in node.names]
        else:
            continue
        for target in targets:
            if target.split(".")[0] in PACKAGES:
                yield node.lineno, target


#: Third-party packages that cost a noticeable share of start-up (``--help`` must not wait for them).
HEAVY = frozenset({"pandas", "numpy", "openpyxl", "msal", "requests", "python_calamine", "cryptography"})


def _in_functions(tree: ast.AST) -> set[int]:
    """The lines of the import statements made inside a function (or a ``TYPE_CHECKING`` block: types only)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or (
                isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)):
            lines |= {n.lineno for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))}
    return lines


def _top_level_packages(path: Path) -> set[str]:
    """The packages a module imports when it is imported (its own module-level statements only)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    deferred = _in_functions(tree)
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and node.lineno not in deferred:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            out |= {n.split(".")[0] for n in names if n and not getattr(node, "level", 0)}
    return out


def heavy_on_import(module: str, graph: dict[str, list[tuple[int, str]]]) -> str | None:
    """The heavy third-party package importing ``module`` loads, following module-level imports, or None."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen or name not in graph:
            continue
        seen.add(name)
        path = ROOT / (name.replace(".", "/") + ("/__init__.py" if (ROOT / name.replace(".", "/")).is_dir()
                                                  else ".py"))
        found = _top_level_packages(path) & HEAVY
        if found:
            return sorted(found)[0]
        deferred = _in_functions(ast.parse(path.read_text(encoding="utf-8")))
        todo += [t for line, t in graph[name] if line not in deferred]
        todo += [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]  # a.b imports a first
    return None


def function_level_imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) for each import of this project's code made inside a function."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    lines = {n.lineno for f in functions for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))}
    for line, target in imports_of(path):
        if line in lines:
            yield line, target


def unjustified_deferrals(graph: dict[str, list[tuple[int, str]]]) -> list[str]:
    """Imports of the project's own modules inside functions that are not for a heavy dependency with a comment.

    A deferred import is allowed only where the module it imports loads a heavy third-party package (:data:`HEAVY`)
    and the import (or the line above it) says so in a comment. It still counts as an arrow for the layer rules and
    the cycle check, so deferring can never hide a cycle."""
    out = []
    for path in _sources():
        if path.relative_to(ROOT).parts[0] not in ("provisioning", "graph"):
            continue
        text = path.read_text(encoding="utf-8").splitlines()
        for line, target in sorted(set(function_level_imports(path))):
            commented = "#" in text[line - 1] or text[line - 2].strip().startswith("#")
            heavy = heavy_on_import(target, graph)
            if not (heavy and commented):
                why = "loads no heavy package" if not heavy else f"defers {heavy} without a comment saying so"
                out.append(f"{_module_name(path)}:{line} -> {target}: {why}")
    return out


def _type_only(path: Path) -> set[int]:
    """The lines of the imports under ``if TYPE_CHECKING:`` (for annotations only: never run)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.lineno for block in ast.walk(tree) if isinstance(block, ast.If) and "TYPE_CHECKING" in
            ast.unparse(block.test) for n in ast.walk(block) if isinstance(n, (ast.Import, ast.ImportFrom))}


def _graph(*, runtime: bool = False) -> dict[str, list[tuple[int, str]]]:
    """Every module's imports; with ``runtime``, only those that run (a ``TYPE_CHECKING`` import makes no cycle,
    but it must still point down the layers)."""
    out = {}
    for p in _sources():
        skip = _type_only(p) if runtime else set()
        out[_module_name(p)] = [(line, t) for line, t in imports_of(p) if line not in skip]
    return out


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "provisioning" and len(parts) > 1 else ("__init__" if module == "provisioning"
                                                                              else None)


def _rule_broken(source: str, target: str) -> str | None:
    """Why the arrow ``source -> target`` breaks a rule, or None."""
    top_s, top_t = source.split(".")[0], target.split(".")[0]
    if top_t == "tests" and top_s != "tests":
        return "nothing imports tests"
    if top_s == "sandbox" and top_t in ("provision", "provisioning", "graph"):
        return "sandbox imports none of provision, provisioning, graph"
    if top_s == "graph" and top_t in ("provision", "provisioning"):
        return "graph imports nothing of provisioning"
    if top_s != "provisioning" or top_t != "provisioning":
        return None
    layer_s, layer_t = _layer(source), _layer(target)
    if layer_t == "commands" and layer_s not in ("commands", "cli"):
        return "nothing imports commands"
    if layer_s == "commands" and layer_t == "commands" and target not in ("provisioning.commands",) \
            and source != "provisioning.commands":
        return "no command imports another command"
    if layer_s not in RANK or layer_t not in RANK:
        return f"{layer_s if layer_s not in RANK else layer_t!r} is not in the layer table of this test"
    if layer_s == "__init__" or layer_s == layer_t:
        return None
    if RANK[layer_t] < RANK[layer_s]:
        return f"{layer_s} may not import {layer_t} (imports point down: " \
               f"{' > '.join('/'.join(names) for names in LAYERS[:-1])} > leaves)"
    if layer_s == "report" and layer_t in ("roster", "validation"):
        return "report never imports roster or validation (the report is built from the journal)"
    return None


def broken_arrows(graph: dict[str, list[tuple[int, str]]]) -> list[str]:
    out = []
    for source, arrows in graph.items():
        for line, target in sorted(set(arrows)):
            why = _rule_broken(source, target)
            if why:
                out.append(f"{source}:{line} -> {target}: {why}")
    return out


def cycles(graph: dict[str, list[tuple[int, str]]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan), each sorted."""
    edges = {m: sorted({t for _, t in arrows if t in graph and t != m}) for m, arrows in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


#: Arrows still being removed by the Step 10 branches (library run API; report from the journal). Each entry must
#: still occur (a stale entry fails), and the sets must be empty when Step 10 is done.
PENDING_ARROWS: frozenset[str] = frozenset()
PENDING_DEFERRED: frozenset[str] = frozenset()
PENDING_CYCLES: frozenset[str] = frozenset()


def _pending(found: list[str], key: object, pending: frozenset[str]) -> list[str]:
    keys = {key(f) for f in found}  # type: ignore[operator]
    assert pending <= keys, f"no longer found, remove from the pending set: {sorted(pending - keys)}"
    return [f for f in found if key(f) not in pending]  # type: ignore[operator]


def test_every_import_points_down_the_pipeline() -> None:
    broken = _pending(broken_arrows(_graph()), lambda b: re.sub(r":\d+ ->", " ->", b.split(": ")[0]),
                      PENDING_ARROWS)
    assert not broken, "imports against the rules of docs/architecture.md:\n" + "\n".join(broken)


def test_a_deferred_import_is_for_a_heavy_dependency_and_says_so() -> None:
    deferred = _pending(unjustified_deferrals(_graph()), lambda d: d.split(":")[0], PENDING_DEFERRED)
    assert not deferred, "imports inside functions (move them to the top; fix the layering if that makes a " \
                         "cycle):\n" + "\n".join(deferred)


def test_there_is_no_import_cycle() -> None:
    found = [c for c in cycles(_graph(runtime=True)) if not set(c) <= PENDING_CYCLES]
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


@pytest.mark.parametrize(("source", "target", "why"), [
    ("provisioning.run.creates", "provisioning.report.files", "run may not import report"),
    ("provisioning.report.workbook", "provisioning.roster.reader", "report never imports roster"),
    ("provisioning.watcher", "provisioning.commands.run", "nothing imports commands"),
    ("provisioning.commands.watch", "provisioning.commands.run", "no command imports another command"),
    ("graph.http", "provisioning.errors", "graph imports nothing of provisioning"),
    ("sandbox.app", "graph.odata", "sandbox imports none"),
    ("bench.throughput", "tests.conftest", "nothing imports tests"),
    ("provisioning.report.notify", "provisioning.validation.rules", "report never imports roster or validation"),
])
def test_the_checker_names_a_broken_arrow(source: str, target: str, why: str) -> None:
    assert why in (_rule_broken(source, target) or "")
    assert broken_arrows({source: [(7, target)]}) == [f"{source}:7 -> {target}: {_rule_broken(source, target)}"]


def test_the_checker_finds_a_cycle_and_allows_downward_arrows() -> None:
    assert _rule_broken("provisioning.commands.run", "provisioning.api") is None
    assert _rule_broken("provisioning.report.files", "provisioning.store.journal") is None
    assert _rule_broken("provisioning.roster.reader", "provisioning.codes") is None
    assert cycles({"a": [(1, "b")], "b": [(1, "c")], "c": [(1, "a")], "d": [(1, "a")]}) == [["a", "b", "c"]]


def test_the_checker_knows_which_modules_load_a_heavy_package() -> None:
    graph = _graph()
    # pandas only inside a function (a CSV with quotes); numpy through roster.derive -> roster.identity
    assert heavy_on_import("provisioning.roster.reader", graph) == "numpy"
    assert heavy_on_import("provisioning.codes", graph) is None
    assert heavy_on_import("provisioning.exitcodes", graph) is None
    assert heavy_on_import("sandbox.cli", graph) == "cryptography"  # through sandbox/__init__.py
