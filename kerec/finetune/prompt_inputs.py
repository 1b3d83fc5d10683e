"""Inputs of ``prompts/ranking-compact.yaml``, the compact ranking prompt with inline soft-token places.

The template holds the wording; this fills its variables: ``profile`` (the user's ``graph_tokens``
placeholders), ``history`` (the last few titles on one line, oldest first), ``candidates`` (lettered A…,
each followed by its placeholder, with or without its title), the facts shown as text (none in
training) and the letter range. The placeholders
(:data:`~kerec.finetune.soft_prompt.SOFT_TOKEN`) come in the projector's token order — the user's context
tokens, then one per candidate in letter order — and each follows text directly (no space), so removing
them for text-only scoring leaves clean text (``"A. Heat (1995)"``, ``"A B C"``).
"""
from __future__ import annotations

from collections.abc import Sequence

from kerec.finetune.errors import FinetuneError
from kerec.finetune.soft_prompt import SOFT_TOKEN
from kerec.prompting import LETTERS, lettered
from kerec.prompting.inputs import NONE, Fact, fact_lines, one_line


def compact_ranking_inputs(history_titles: Sequence[str], candidate_titles: Sequence[str], *,
                           profile_tokens: int, titles: bool, facts: Sequence[Fact] = ()) -> dict[str, str]:
    """The inputs of ``ranking-compact.yaml``: ``profile_tokens`` placeholders for the user, the history
    as ``"a; b; c"`` (``(none)`` when empty), the candidates as ``"A. title<p>"`` lines (``titles``) or
    ``"A<p> B<p> …"`` on one line, and ``facts`` (``(id, text)`` pairs) as a ``Facts:`` block of ``[id] text``
    lines ending in a newline, or nothing when there are none (the prompt as tuned). Raises :class:`~kerec.prompting.PromptError` for 0 or more than 20
    candidates and :class:`FinetuneError` for a title holding the placeholder (it would misplace the
    soft tokens)."""
    if profile_tokens < 1:
        raise FinetuneError(f"the compact prompt needs >= 1 user soft token (soft_prompt.graph_tokens), got {profile_tokens}")
    for title in (*history_titles, *candidate_titles):
        if SOFT_TOKEN in str(title):
            raise FinetuneError(f"the title {title!r} holds the soft-token placeholder {SOFT_TOKEN!r}")
    lines = lettered(candidate_titles).split("\n")  # also checks 1..20 candidates with real titles
    if titles:
        candidates = "\n".join(line + SOFT_TOKEN for line in lines)
    else:
        candidates = " ".join(LETTERS[n] + SOFT_TOKEN for n in range(len(lines)))
    history = "; ".join(one_line(t) for t in history_titles)
    block = f"Facts:\n{fact_lines(facts)}\n" if facts else ""
    return {"profile": SOFT_TOKEN * profile_tokens, "history": history or NONE, "candidates": candidates,
            "facts": block, "first_letter": LETTERS[0], "last_letter": LETTERS[len(lines) - 1]}
