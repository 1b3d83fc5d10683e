"""Input helpers: lettering, fact lines, and the limits they enforce."""
from __future__ import annotations

import pytest

from kerec.prompting import LETTERS, PromptError, chat_inputs, explanation_inputs, fact_lines, lettered, ranking_inputs


def test_letters_are_a_to_t() -> None:
    assert LETTERS == "ABCDEFGHIJKLMNOPQRST" and len(LETTERS) == 20


def test_ranking_inputs_on_a_known_case() -> None:
    inputs = ranking_inputs(["Heat", "Casino"], ["Babe", "Seven\n(1995)"], [("1", "Heat  is a\tcrime film"), ("f2", "x")])
    assert inputs == {"history": "1. Heat\n2. Casino", "candidates": "A. Babe\nB. Seven (1995)",
                      "facts": "[1] Heat is a crime film\n[f2] x", "first_letter": "A", "last_letter": "B"}


@pytest.mark.parametrize(("candidates", "error"), [
    ([], "no candidates"),
    ([f"t{i}" for i in range(21)], r"21 candidates, but letters run only A–T \(at most 20\)"),
    (["ok", "  "], "candidate B has an empty or non-text title"),
    ("Babe", "not one string"),
])
def test_bad_candidate_lists_are_rejected(candidates: list[str], error: str) -> None:
    with pytest.raises(PromptError, match=error):
        ranking_inputs([], candidates, [])


@pytest.mark.parametrize(("facts", "error"), [
    ([("f1", "a"), ("f1", "b")], "'f1' appears twice"),
    ([("f 1", "a")], "must be letters, digits"),
    ([("[f1]", "a")], "must be letters, digits"),
    ([("f1", " ")], "'f1' has empty text"),
    ([["f1", "a"]], r"must be a \(fact_id, text\) tuple"),
])
def test_bad_facts_are_rejected(facts: list, error: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(PromptError, match=error):
        fact_lines(facts)


def test_explanation_needs_a_fact_and_uses_the_first_id_as_example() -> None:
    assert explanation_inputs("Casino", [("f9", "a"), ("f2", "b")])["example_id"] == "f9"
    with pytest.raises(PromptError, match="must cite at least one fact"):
        explanation_inputs("Casino", [])


def test_chat_inputs_need_a_final_user_turn_and_known_roles() -> None:
    with pytest.raises(PromptError, match="must end with a user turn"):
        chat_inputs([("user", "hi"), ("assistant", "hello")], ["A"], [])
    with pytest.raises(PromptError, match="role 'bot'"):
        chat_inputs([("bot", "hi"), ("user", "hello")], ["A"], [])


def test_lettered_keeps_order() -> None:
    assert lettered(["x", "y", "z"]) == "A. x\nB. y\nC. z"
