from __future__ import annotations

import pytest

from kerec.finetune.errors import FinetuneError
from kerec.finetune.prompt_inputs import compact_ranking_inputs
from kerec.finetune.soft_prompt import SOFT_TOKEN as P
from kerec.prompting import PromptError, load_prompt

HISTORY = ["Heat (1995)", "Casino\n(1995)"]
CANDIDATES = ["Babe (1995)", "Seven (1995)", "Fargo (1996)"]


def render(**kw: object) -> list[dict[str, str]]:
    return load_prompt("ranking-compact").messages(**compact_ranking_inputs(HISTORY, CANDIDATES, **kw))


def test_compact_prompt_letters_only_on_fixed_input() -> None:
    system, user = render(profile_tokens=2, titles=False)
    assert system == {"role": "system", "content": "You are a recommender system."}
    assert user["content"] == (
        f"The user{P}{P} recently chose: Heat (1995); Casino (1995)\n"
        "Candidates:\n"
        f"A{P} B{P} C{P}\n"
        "Which candidate will the user choose next? Answer with ONE letter from A to C.")


def test_compact_prompt_with_titles_puts_each_placeholder_after_its_candidate() -> None:
    _, user = render(profile_tokens=1, titles=True)
    lines = user["content"].split("\n")
    assert lines[0] == f"The user{P} recently chose: Heat (1995); Casino (1995)"
    assert lines[2:5] == [f"A. Babe (1995){P}", f"B. Seven (1995){P}", f"C. Fargo (1996){P}"]
    # One placeholder per soft token, in the projector's order: the user's, then A, B, C.
    assert user["content"].count(P) == 1 + 3
    # Without the soft prompt the placeholders vanish and leave clean text.
    assert user["content"].replace(P, "").split("\n")[2] == "A. Babe (1995)"


def test_compact_prompt_with_facts_as_text_adds_a_facts_block_and_nothing_else() -> None:
    facts = [("1", "Heat (1995) and Babe (1995) share the genre Drama"), ("2", "Fargo (1996) stars Frances McDormand")]
    _, plain = render(profile_tokens=1, titles=True)
    _, user = render(profile_tokens=1, titles=True, facts=facts)
    assert user["content"].split("\n") == [
        *plain["content"].split("\n")[:-1],
        "Facts:",
        "[1] Heat (1995) and Babe (1995) share the genre Drama",
        "[2] Fargo (1996) stars Frances McDormand",
        plain["content"].split("\n")[-1]]
    assert user["content"].count(P) == plain["content"].count(P)  # facts as text take no soft-token places


def test_empty_history_says_none_and_bad_inputs_are_named() -> None:
    _, user = load_prompt("ranking-compact").messages(**compact_ranking_inputs([], ["Babe"], profile_tokens=1, titles=False))
    assert user["content"].startswith(f"The user{P} recently chose: (none)\n")
    assert "from A to A." in user["content"]
    with pytest.raises(FinetuneError, match="holds the soft-token placeholder"):
        compact_ranking_inputs([f"Heat {P}"], ["Babe"], profile_tokens=1, titles=False)
    with pytest.raises(FinetuneError, match=r"needs >= 1 user soft token \(soft_prompt.graph_tokens\), got 0"):
        compact_ranking_inputs([], ["Babe"], profile_tokens=0, titles=False)
    with pytest.raises(PromptError, match="21 candidates"):
        compact_ranking_inputs([], [f"Item {i}" for i in range(21)], profile_tokens=1, titles=False)
