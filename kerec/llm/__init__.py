"""LLMs: one :class:`LLM` interface (letter log-probabilities for ranking, generation for explanations and
chat) and its backends — transformers in-process (the CPU default), vLLM's engine, and a vLLM server over
its OpenAI-compatible API. Backends take chat message lists (see :mod:`kerec.prompting`) and know nothing
of the GNN or the graph store.
"""
from __future__ import annotations

from kerec.llm.base import (LETTERS, LLM, LLMError, Messages, generates_on_cpu, letter_token_ids,
                            renormalised_letter_logprobs)
from kerec.llm.default_model import DEFAULT_MODEL, default_gguf, default_model_dir, models_dir
from kerec.llm.openai_backend import OpenAICompatibleLLM
from kerec.llm.registry import SPECS, load_llm
from kerec.llm.transformers_backend import TransformersLLM
from kerec.llm.vllm_backend import VLLMLLM

__all__ = [
    "DEFAULT_MODEL", "LETTERS", "LLM", "LLMError", "Messages", "OpenAICompatibleLLM", "SPECS", "TransformersLLM",
    "VLLMLLM", "default_gguf", "default_model_dir", "generates_on_cpu", "letter_token_ids", "load_llm", "models_dir",
    "renormalised_letter_logprobs",
]
