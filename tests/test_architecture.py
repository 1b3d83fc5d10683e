"""kerec's imports follow the floors of kerec/DESIGN.md: one way down, and no cycle.

Every import is counted, at module level, inside functions and under ``TYPE_CHECKING`` alike: an import
placed inside a function to dodge a cycle is still an upward import."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "kerec"
ENTRY_NAMES = {"cli", "__main__"}


def floors() -> dict[str, int]:
    """Top-level module or subpackage name → floor, read from the table in kerec/DESIGN.md."""
    out: dict[str, int] = {}
    for line in (PACKAGE / "DESIGN.md").read_text(encoding="utf-8").splitlines():
        m = re.match(r"\|\s*(\d+)\s*\|([^|]*)\|", line)
        if m:
            for name in re.findall(r"`([\w.]+)`", m.group(2)):
                out.setdefault(name, int(m.group(1)))
    return out


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The kerec modules ``name`` imports (``from a import b`` counts ``a.b`` when that is a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from a import b` imports the module a.b when there is one, else the name b of module a
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:  # `import kerec.gnn.models` names the module; a.b.c → nearest module
                t = t.rpartition(".")[0]
            if t and t.startswith("kerec") and t != name:
                found.add(t)
    return found


def floor_of(module: str, table: dict[str, int]) -> int:
    parts = module.split(".")
    if module == "kerec":  # the root holds __version__ (importable by all) and faces loaded on first use
        return -1
    if parts[-1] in ENTRY_NAMES:
        return table["cli"]
    if parts[1] not in table:
        raise AssertionError(f"{module} stands on no floor: add `{parts[1]}` to the table in kerec/DESIGN.md")
    return table[parts[1]]


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(name, path, set(mods)) for name, path in mods.items()}


def test_the_design_doc_names_floors_for_every_subpackage() -> None:
    table = floors()
    assert table["errors"] == 0 and table["data"] == 2 and table["api"] == 6 and table["cli"] == 10
    for name in {m.split(".")[1] for m in modules() if m != "kerec"}:
        floor_of(f"kerec.{name}", table)  # raises for a subpackage missing from the table


def test_every_import_points_down_the_floors() -> None:
    table = floors()
    bad = []
    for module, targets in graph().items():
        if module == "kerec":
            continue  # kerec.Recommender / kerec.evaluate, imported on first use
        for target in targets:
            same_package = module.split(".")[:2] == target.split(".")[:2]
            entry = module.split(".")[-1] in ENTRY_NAMES
            if target.split(".")[-1] in ENTRY_NAMES and not entry and module != "kerec":
                bad.append(f"{module} imports the entry point {target}")
            elif entry and target.split(".")[-1] in ENTRY_NAMES:
                continue  # an entry point routes to another
            elif not same_package and floor_of(target, table) >= floor_of(module, table):
                bad.append(f"{module} (floor {floor_of(module, table)}) imports {target} "
                           f"(floor {floor_of(target, table)})")
    assert not bad, "imports against kerec/DESIGN.md:\n" + "\n".join(sorted(bad))


def test_only_entry_points_make_process_wide_changes() -> None:
    importers = sorted(m for m, ts in graph().items() if "kerec.process" in ts)
    assert importers, "nothing imports kerec.process: the entry points no longer freeze the collector"
    assert all(m.split(".")[-1] in ENTRY_NAMES for m in importers), importers


def strongly_connected(g: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles() -> None:
    g = graph()
    g["kerec"] = set()  # the root's faces (kerec.Recommender, kerec.evaluate) are loaded on first use
    cycles = strongly_connected(g)
    assert not cycles, "import cycles:\n" + "\n".join(" ↔ ".join(c) for c in cycles)


@pytest.mark.parametrize("bad", ["upward", "cycle"])
def test_the_checks_catch_a_planted_violation(bad: str) -> None:
    g = {"kerec.data.x": {"kerec.api"}, "kerec.api": set()} if bad == "upward" else \
        {"kerec.gnn.a": {"kerec.gnn.b"}, "kerec.gnn.b": {"kerec.gnn.a"}}
    if bad == "cycle":
        assert strongly_connected(g) == [["kerec.gnn.a", "kerec.gnn.b"]]
    else:
        assert floor_of("kerec.data.x", floors()) < floor_of("kerec.api", floors())
