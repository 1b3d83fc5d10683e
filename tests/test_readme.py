"""The README's two opening commands are the project's contract with a fresh machine."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```bash\n(.*?)```", text, re.DOTALL)
    assert block is not None, "README.md must open with a bash block of two commands"
    assert text.index(block.group(0)) < text.index("\n## "), "the commands must come before any section"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_opens_with_two_commands() -> None:
    commands = _readme_commands()
    assert len(commands) == 2
    assert "kerec quickstart" in commands[0] and "pytest" in commands[1]
    assert all(c.startswith("bash .ci/setup && ") for c in commands)


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert _readme_commands()[1] in ci


def test_the_layout_table_matches_the_tree() -> None:
    """Every path the README's Layout table names exists, and every kerec subpackage and top-level module is in it."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    named = {p.rstrip("/") for row in layout.splitlines() if row.startswith("| `")
             for p in re.findall(r"`([\w./-]+)`", row.split("|")[1])}
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert not missing, f"the Layout table names paths that do not exist: {missing}"
    package = ROOT / "kerec"
    parts = {f"kerec/{p.name}" for p in package.iterdir()
             if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py" and p.stem not in ("__init__", "__main__"))}
    absent = sorted(parts - named)
    assert not absent, f"kerec parts missing from the README's Layout table: {absent}"


def test_every_relative_link_in_the_docs_resolves() -> None:
    docs = [ROOT / "README.md", *(ROOT / d / "README.md" for d in ("kerec", "eval", "finetune", "kg_store", "prompts"))]
    broken = []
    for doc in docs:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text(encoding="utf-8")):
            if not target.startswith(("http://", "https://", "mailto:")) and not (doc.parent / target).exists():
                broken.append(f"{doc.relative_to(ROOT)}: {target}")
    assert not broken, "broken links:\n" + "\n".join(broken)
