"""Prompts: versioned YAML templates (``prompts/``) and the helpers that fill them.

``load_prompt("ranking").messages(**ranking_inputs(history, candidates, facts))`` gives the chat message
list every :mod:`kerec.llm` backend takes. This stage knows nothing of the GNN or the graph store: it
receives titles and ``(fact_id, text)`` facts.
"""
from __future__ import annotations

from kerec.prompting.errors import PromptError
from kerec.prompting.inputs import LETTERS, Fact, chat_inputs, explanation_inputs, fact_lines, lettered, ranking_inputs
from kerec.prompting.templates import Message, Prompt, available_prompts, load_prompt, prompts_dir

__all__ = [
    "Fact", "LETTERS", "Message", "Prompt", "PromptError", "available_prompts", "chat_inputs", "explanation_inputs",
    "fact_lines", "lettered", "load_prompt", "prompts_dir", "ranking_inputs",
]
