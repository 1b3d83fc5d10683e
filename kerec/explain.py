"""Grounded explanations: the LLM explains a pick citing numbered evidence, every citation is checked
against the graph store, and an explanation that fails the check is never shown.

Evidence is numbered ``[1]..[m]`` in the prompt (short numbers suit small LLMs better than 17-character
fact ids); each number stands for one :class:`~kerec.kg.evidence.Evidence` and so for its fact ids. An
explanation is *grounded* when it cites at least one number, every number it cites is one of the item's
evidence, and every fact behind those numbers exists in the store and links the user's history to the item
(a path from a history item) or belongs to the item (its own attribute). The paths taken, recorded in
:attr:`Explanation.source`:

* ``"llm"`` — the first generation was grounded;
* ``"llm-retry"`` — the first was not; a second one, given only the top evidence, was;
* ``"template"`` — neither was: the explanation is built from the top evidence's own text;
* ``"none"`` — the item has no evidence at all: a fixed sentence says so, citing nothing.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from kerec.kg.evidence import Evidence
from kerec.kg.model import NodeRef
from kerec.kg.store import GraphStore

CITATION = re.compile(r"\[([^\[\]]{1,24})\]")
SOURCES = ("llm", "llm-retry", "template", "none")
NO_EVIDENCE = "No fact in the knowledge graph links this title to your history; it was ranked by similar users' tastes."


@dataclass(frozen=True)
class Explanation:
    text: str
    source: str  # one of SOURCES
    cited: tuple[int, ...]  # 1-based evidence numbers cited (checked)
    fact_ids: tuple[str, ...]  # the facts behind them, all found in the store
    rejected: tuple[str, ...] = ()  # generations that failed the check, with the reason


def citations(text: str) -> list[str]:
    """The bracketed tokens of ``text`` in order: ``"a [1] b [2][x]"`` → ``["1", "2", "x"]``;
    comma lists inside one bracket (``[1, 3]``) count as several."""
    out = []
    for group in CITATION.findall(text):
        out.extend(tok.strip() for tok in group.split(",") if tok.strip())
    return out


def check(text: str, evidence: Sequence[Evidence], store: GraphStore, history: Collection[str],
          item: str) -> tuple[tuple[int, ...], str | None]:
    """``(cited numbers, None)`` when ``text`` is grounded, else ``((), reason)``."""
    tokens = citations(text)
    if not tokens:
        return (), "cites no evidence"
    numbers = []
    for tok in tokens:
        if not tok.isdigit() or not 1 <= int(tok) <= len(evidence):
            return (), f"cites [{tok}], which is not one of the item's evidence [1]..[{len(evidence)}]"
        numbers.append(int(tok))
    numbers = sorted(set(numbers))
    cited = [evidence[n - 1] for n in numbers]
    ids = [fid for e in cited for fid in e.fact_ids]
    found = store.facts(ids)
    missing = sorted(set(ids) - set(found))
    if missing:
        return (), f"cites facts not in the graph store: {', '.join(missing)}"
    target = NodeRef("Item", item)
    for n, e in zip(numbers, cited):
        ends = {node for fid in e.fact_ids for node in (found[fid].head, found[fid].tail)}
        if target not in ends:
            return (), f"[{n}] does not concern the recommended item"
        if e.kind == "path" and not any(node.label == "Item" and node.id in history for node in ends - {target}):
            return (), f"[{n}] does not link the item to the user's history"
    return tuple(numbers), None


def template(evidence: Sequence[Evidence], *, top: int = 2) -> Explanation:
    """The fallback: the top evidence's own statements, cited."""
    if not evidence:
        return Explanation(NO_EVIDENCE, "none", (), ())
    chosen = evidence[:top]
    text = "Recommended because " + "; and ".join(f"{e.text} [{n}]" for n, e in enumerate(chosen, 1)) + "."
    return Explanation(text, "template", tuple(range(1, len(chosen) + 1)), tuple(f for e in chosen for f in e.fact_ids))


def grounded(generate: Callable[[int], str], evidence: Sequence[Evidence], store: GraphStore,
             history: Collection[str], item: str, *, attempts: int = 2) -> Explanation:
    """Ask ``generate(attempt)`` (attempt 0, then retries) until a text passes :func:`check`; after
    ``attempts`` failures, the template. Nothing is generated for an item without evidence."""
    if not evidence:
        return template(evidence)
    rejected = []
    for attempt in range(attempts):
        text = generate(attempt).strip()
        numbers, reason = check(text, evidence, store, history, item)
        if reason is None:
            return Explanation(text, SOURCES[min(attempt, 1)], numbers,
                               tuple(f for n in numbers for f in evidence[n - 1].fact_ids), tuple(rejected))
        rejected.append(f"{reason}: {text[:200]!r}")
    fallback = template(evidence)
    return Explanation(fallback.text, fallback.source, fallback.cited, fallback.fact_ids, tuple(rejected))
