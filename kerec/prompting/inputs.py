"""Turn titles and facts into the text inputs of the templates: lettered candidates, fact lines with ids.

A fact is ``(fact_id, text)``: the id is the stable id the graph stage gives it (``f3a9c1``…), shown to the
model as ``[f3a9c1] text`` so that a generated citation ``[f3a9c1]`` can be checked against the graph.
Whitespace runs (newlines included) inside titles and texts collapse to one space: one entry, one line.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from kerec.prompting.errors import PromptError

LETTERS = "ABCDEFGHIJKLMNOPQRST"
"""Candidate labels; ranking prompts take at most ``len(LETTERS)`` = 20 candidates (LLaRA's A–T)."""

NONE = "(none)"
_FACT_ID = re.compile(r"[A-Za-z0-9_.:-]+")
_ROLES = {"user": "User", "assistant": "Assistant"}

Fact = tuple[str, str]


def one_line(text: str) -> str:
    """``text`` with every whitespace run replaced by one space, stripped."""
    return " ".join(str(text).split())


def lettered(titles: Sequence[str]) -> str:
    """``"A. first\\nB. second…"``; 1 to 20 titles."""
    if isinstance(titles, str):
        raise PromptError("candidate titles must be a sequence of titles, not one string")
    if not titles:
        raise PromptError("no candidates: a ranking prompt needs at least one candidate")
    if len(titles) > len(LETTERS):
        raise PromptError(f"{len(titles)} candidates, but letters run only A–{LETTERS[-1]} "
                          f"(at most {len(LETTERS)}); pass the top {len(LETTERS)}")
    return "\n".join(f"{LETTERS[i]}. {_title(t, f'candidate {LETTERS[i]}')}" for i, t in enumerate(titles))


def fact_lines(facts: Sequence[Fact]) -> str:
    """``"[id] text"`` per fact, in the given order (the graph stage's ranking); ``(none)`` if empty."""
    seen: set[str] = set()
    lines = []
    for i, fact in enumerate(facts):
        if not (isinstance(fact, tuple) and len(fact) == 2):
            raise PromptError(f"fact {i} must be a (fact_id, text) tuple, got {fact!r}")
        fact_id, text = fact
        if not isinstance(fact_id, str) or not _FACT_ID.fullmatch(fact_id):
            raise PromptError(f"fact {i}: id {fact_id!r} must be letters, digits or _.:- (no spaces or brackets)")
        if fact_id in seen:
            raise PromptError(f"fact {i}: id {fact_id!r} appears twice")
        seen.add(fact_id)
        if not one_line(text):
            raise PromptError(f"fact {fact_id!r} has empty text")
        lines.append(f"[{fact_id}] {one_line(text)}")
    return "\n".join(lines) or NONE


def ranking_inputs(history_titles: Sequence[str], candidate_titles: Sequence[str],
                   facts: Sequence[Fact]) -> dict[str, str]:
    """Inputs of ``ranking.yaml``: history as ``1. title`` lines (oldest first), candidates lettered A…,
    facts as ``[id] text`` lines. Raises :class:`PromptError` for 0 or more than 20 candidates."""
    candidates = lettered(candidate_titles)
    if isinstance(history_titles, str):
        raise PromptError("history titles must be a sequence of titles, not one string")
    history = "\n".join(f"{i + 1}. {_title(t, f'history item {i + 1}')}" for i, t in enumerate(history_titles))
    return {"history": history or NONE, "candidates": candidates, "facts": fact_lines(facts),
            "first_letter": LETTERS[0], "last_letter": LETTERS[len(candidate_titles) - 1]}


def explanation_inputs(item_title: str, facts: Sequence[Fact]) -> dict[str, str]:
    """Inputs of ``explanation.yaml``: the item, its facts as ``[id] text`` lines, and the first fact's id
    as the citation example. Needs at least one fact: an explanation must rest on the graph."""
    if not facts:
        raise PromptError(f"no facts for {item_title!r}: an explanation must cite at least one fact")
    return {"item": _title(item_title, "item"), "facts": fact_lines(facts), "example_id": facts[0][0]}


def chat_inputs(conversation: Sequence[tuple[str, str]], candidate_titles: Sequence[str],
                facts: Sequence[Fact]) -> dict[str, str]:
    """Inputs of ``chat.yaml``: the turns ``(role, text)`` (role ``user`` or ``assistant``) as ``User: …``
    lines, candidates lettered A…, facts as ``[id] text`` lines. The last turn must be the user's."""
    if not conversation or conversation[-1][0] != "user":
        raise PromptError("the conversation must end with a user turn")
    lines = []
    for i, (role, text) in enumerate(conversation):
        if role not in _ROLES:
            raise PromptError(f"turn {i}: role {role!r} is not one of {', '.join(_ROLES)}")
        lines.append(f"{_ROLES[role]}: {one_line(text)}")
    return {"conversation": "\n".join(lines), "candidates": lettered(candidate_titles), "facts": fact_lines(facts)}


def _title(title: str, what: str) -> str:
    if not isinstance(title, str) or not one_line(title):
        raise PromptError(f"{what} has an empty or non-text title: {title!r}")
    return one_line(title)
