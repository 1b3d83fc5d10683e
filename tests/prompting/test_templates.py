"""The packaged templates render exactly what the LLM stage expects; malformed templates and wrong inputs fail
with errors that name the file or the input."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from kerec.prompting import (PromptError, available_prompts, chat_inputs, explanation_inputs, load_prompt, prompts_dir,
                             ranking_inputs)

UNFILLED = re.compile(r"\{[A-Za-z_]\w*\}")
FACTS = [("f3a9c1", "Heat (1995) and Casino (1995) share the genre Crime"), ("f77b20", "Casino (1995) stars Robert De Niro")]


def test_packaged_templates_are_the_four_versioned_ones() -> None:
    assert prompts_dir().name == "prompts" and prompts_dir().parent.name == "_assets"
    assert available_prompts() == ["chat", "explanation", "ranking", "ranking-compact"]
    for name in available_prompts():
        prompt = load_prompt(name)
        assert prompt.name == name and prompt.version == (2 if name == "ranking-compact" else 1) and prompt.description
        assert [m["role"] for m in prompt.messages(**_dummy(prompt))] == ["system", "user"]


def test_ranking_prompt_letters_candidates_in_order_and_ends_with_the_answer_instruction() -> None:
    prompt = load_prompt("ranking")
    titles = ["Babe (1995)", "Seven (1995)", "Fargo (1996)", "Clerks (1994)", "Speed (1994)"]
    system, user = prompt.messages(**ranking_inputs(["Toy Story (1995)", "Heat (1995)"], titles, FACTS))
    text = user["content"]
    lines = text.splitlines()
    assert [line for line in lines if re.match(r"[A-T]\. ", line)] == [f"{l}. {t}" for l, t in zip("ABCDE", titles)]
    assert "1. Toy Story (1995)" in lines and "2. Heat (1995)" in lines
    assert f"[f3a9c1] {FACTS[0][1]}" in lines and f"[f77b20] {FACTS[1][1]}" in lines
    assert lines[-1] == "Which candidate will the user choose next? Answer with ONE letter from A to E and nothing else."
    assert "single letter" in system["content"]
    assert not UNFILLED.search(text) and not UNFILLED.search(system["content"])


def test_ranking_prompt_with_twenty_candidates_runs_to_t_and_empty_parts_say_none() -> None:
    _, user = load_prompt("ranking").messages(**ranking_inputs([], [f"Item {i}" for i in range(20)], []))
    assert "T. Item 19" in user["content"] and "from A to T" in user["content"]
    assert user["content"].count("(none)") == 2  # no history, no facts


def test_explanation_prompt_cites_fact_ids() -> None:
    system, user = load_prompt("explanation").messages(**explanation_inputs("Casino (1995)", FACTS))
    assert "Recommended item: Casino (1995)" in user["content"]
    assert f"[f3a9c1] {FACTS[0][1]}" in user["content"] and "[f77b20]" in user["content"]
    assert "like [f3a9c1]" in user["content"] and "one or two sentences" in user["content"]
    assert not UNFILLED.search(user["content"])


def test_chat_prompt_carries_the_conversation_candidates_and_facts() -> None:
    turns = [("user", "Something like Heat?"), ("assistant", "Do you like crime films?"), ("user", "Yes,\nvery much")]
    _, user = load_prompt("chat").messages(**chat_inputs(turns, ["Casino (1995)", "Ronin (1998)"], FACTS))
    assert "User: Something like Heat?\nAssistant: Do you like crime films?\nUser: Yes, very much" in user["content"]
    assert "A. Casino (1995)\nB. Ronin (1998)" in user["content"] and "[f77b20]" in user["content"]
    assert not UNFILLED.search(user["content"])


def test_braces_in_titles_and_facts_are_text_not_template_fields() -> None:
    _, user = load_prompt("ranking").messages(**ranking_inputs(["{history}"], ["Set {x}"], [("f1", "a {b} c")]))
    assert "A. Set {x}" in user["content"] and "[f1] a {b} c" in user["content"] and "1. {history}" in user["content"]


def test_missing_unexpected_and_non_text_inputs_are_named() -> None:
    prompt = load_prompt("explanation")
    with pytest.raises(PromptError, match=r"missing example_id.*unexpected facs"):
        prompt.messages(item="Casino", facs="x", facts="y")
    with pytest.raises(PromptError, match=r"input 'item' must be a string, got list"):
        prompt.messages(item=["Casino"], facts="x", example_id="f1")


def test_unknown_prompt_lists_the_available_ones() -> None:
    with pytest.raises(PromptError, match=r"unknown prompt 'rankng'.*available: chat, explanation, ranking"):
        load_prompt("rankng")
    with pytest.raises(PromptError, match="unknown prompt"):
        load_prompt("../README")


GOOD = """name: demo
version: 2
description: d
input_variables: [x]
messages:
  - role: user
    content: "say {x}"
"""


@pytest.mark.parametrize(("text", "error"), [
    ("name: demo\nversion: [1\n", r"demo\.yaml: not valid YAML"),
    ("- just\n- a list\n", r"demo\.yaml: expected a mapping"),
    (GOOD.replace("description: d\n", ""), r"demo\.yaml: missing keys \['description'\]"),
    (GOOD + "extra: 1\n", r"demo\.yaml: .*unknown keys \['extra'\]"),
    (GOOD.replace("name: demo", "name: other"), r"demo\.yaml: name 'other' differs from the file name 'demo'"),
    (GOOD.replace("version: 2", "version: two"), r"demo\.yaml: version must be a positive integer"),
    (GOOD.replace("[x]", "[x, y]"), r"demo\.yaml: input_variables \['x', 'y'\] do not match .* \['x'\]"),
    (GOOD.replace("role: user", "role: robot"), r"demo\.yaml: messages\[0\] needs a role in system, user, assistant"),
    (GOOD.replace('"say {x}"', '"say {x"'), r"demo\.yaml: bad template text"),
])
def test_malformed_template_files_are_named(tmp_path: Path, text: str, error: str) -> None:
    (tmp_path / "demo.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(PromptError, match=error):
        load_prompt("demo", tmp_path)


def test_a_well_formed_template_from_any_folder_loads(tmp_path: Path) -> None:
    (tmp_path / "demo.yaml").write_text(GOOD, encoding="utf-8")
    prompt = load_prompt("demo", tmp_path)
    assert prompt.version == 2 and prompt.messages(x="hi") == [{"role": "user", "content": "say hi"}]


def _dummy(prompt) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {name: "x" for name in prompt.input_variables}
