"""Samples → token ids → left-padded batches.

A prompt is rendered with the tokenizer's chat template and generation prompt (as
:class:`kerec.llm.TransformersLLM` renders it at inference time), so the answer starts at the next token.
The answer's tokens are what the template appends for an assistant turn with that content (the answer text
and the end-of-turn marker), and only they are trained on. Batches are left-padded: every row ends with its
answer, so the loss needs logits for the last few positions only (``logits_to_keep``), not the whole
(B, L, vocab) tensor.

An inline soft prompt's placeholders (:data:`~kerec.finetune.soft_prompt.SOFT_TOKEN`) never reach the
tokenizer: the rendered text is split on them, the pieces are tokenized one by one, and each placeholder
becomes one position (a pad id the model overwrites) whose slot says which soft token goes there. Scored
without the soft prompt, the placeholders are removed from the text before it is tokenized.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from kerec.finetune.data import InstructionSample
from kerec.finetune.errors import FinetuneError
from kerec.finetune.soft_prompt import SOFT_TOKEN

RECENT_ITEMS = 20
"""How many of the history's most recent items a batch carries (``soft_prompt.recency`` reads ≤ this many)."""


@dataclass(frozen=True)
class Encoded:
    """One sample as token ids: ``prompt`` (up to the generation prompt), ``answer`` (may be empty when
    only scoring); ``slots``: per prompt position, -1 for text or ``n`` for the row's soft token ``n``
    (inline placement), empty when the prompt has no placeholder; ``recent``: the history's last
    :data:`RECENT_ITEMS` items, oldest first (what a projector with ``recency`` reads)."""

    prompt: list[int]
    answer: list[int]
    user: int
    items: tuple[int, ...]
    facts: tuple[tuple[int, int, int], ...]
    slots: tuple[int, ...] = ()
    recent: tuple[int, ...] = ()


@dataclass(frozen=True)
class Batch:
    """Shapes: ``input_ids``, ``attention_mask`` (B, L) left-padded; ``labels`` (B, A) — the last A
    tokens of each row, -100 where a shorter answer leaves room; ``users`` (B,); ``items`` (B, C) with
    ``item_mask`` (B, C) bool; ``facts`` (B, F, 3) with ``fact_mask`` (B, F) bool; ``slots`` (B, L) long —
    the soft token placed at each position (inline placement), -1 for text and padding; ``recent`` (B, H)
    the history's last items, oldest first, right-aligned (padding first), with ``recent_mask`` (B, H) bool."""

    input_ids: Tensor
    attention_mask: Tensor
    labels: Tensor
    users: Tensor
    items: Tensor
    item_mask: Tensor
    facts: Tensor
    fact_mask: Tensor
    slots: Tensor
    recent: Tensor
    recent_mask: Tensor

    def to(self, device: torch.device | str) -> Batch:
        return Batch(**{k: v.to(device) for k, v in self.__dict__.items()})

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])


def render(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    try:
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    except Exception as exc:  # jinja raises its own types for a missing or failing template
        raise FinetuneError(f"cannot apply the tokenizer's chat template ({type(exc).__name__}: {exc}); "
                            "fine-tuning needs an instruction-tuned model with a chat template") from exc


def answer_text(tokenizer: Any, messages: list[dict[str, str]], answer: str) -> str:
    """What the chat template appends after the generation prompt for an assistant turn ``answer``
    (``"B<|im_end|>\\n"`` for SmolLM2); ``answer`` + EOS for templates that rewrite earlier turns."""
    prefix = render(tokenizer, messages)
    full = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": answer}], tokenize=False)
    if full.startswith(prefix) and answer in full[len(prefix):]:
        return full[len(prefix):]
    return answer + (tokenizer.eos_token or "")


def encode(tokenizer: Any, sample: InstructionSample, *, with_answer: bool = True, soft: bool = True) -> Encoded:
    """Token ids of ``sample`` (no special tokens added beyond the template's). ``soft=False``: the text
    without its soft-token placeholders (scoring without the soft prompt)."""
    text = render(tokenizer, sample.messages)
    if soft:
        prompt, slots = tokenize_with_slots(tokenizer, text)
    else:
        prompt, slots = tokenizer.encode(text.replace(SOFT_TOKEN, ""), add_special_tokens=False), []
    answer = tokenizer.encode(answer_text(tokenizer, sample.messages, sample.answer), add_special_tokens=False) \
        if with_answer else []
    return Encoded(prompt, answer, sample.user, sample.items, sample.facts, tuple(slots),
                   tuple(sample.history[-RECENT_ITEMS:]))


def tokenize_with_slots(tokenizer: Any, text: str) -> tuple[list[int], list[int]]:
    """``text``'s token ids with one position per :data:`SOFT_TOKEN` placeholder (holding the pad id), and
    the slots: -1 per text token, ``0, 1, …`` for the placeholders in order; no slots without placeholders.
    The pieces between placeholders are tokenized separately, so no text token spans a soft token."""
    pieces = text.split(SOFT_TOKEN)
    if len(pieces) == 1:
        return tokenizer.encode(text, add_special_tokens=False), []
    fill = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids: list[int] = []
    slots: list[int] = []
    for n, piece in enumerate(pieces):
        if n:
            ids.append(fill)
            slots.append(n - 1)
        part = tokenizer.encode(piece, add_special_tokens=False) if piece else []
        ids += part
        slots += [-1] * len(part)
    return ids, slots


def collate(rows: Sequence[Encoded], pad_id: int) -> Batch:
    """Left-pad ``rows`` into one :class:`Batch` (candidate and fact lists padded with masked zeros)."""
    if not rows:
        raise FinetuneError("cannot collate an empty batch")
    seqs = [r.prompt + r.answer for r in rows]
    width = max(len(s) for s in seqs)
    answer_width = max(1, max(len(r.answer) for r in rows))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), answer_width), -100, dtype=torch.long)
    cands = max(len(r.items) for r in rows)
    facts = max(len(r.facts) for r in rows)
    items = torch.zeros((len(rows), cands), dtype=torch.long)
    item_mask = torch.zeros((len(rows), cands), dtype=torch.bool)
    fact_rows = torch.zeros((len(rows), facts, 3), dtype=torch.long)
    fact_mask = torch.zeros((len(rows), facts), dtype=torch.bool)
    slots = torch.full((len(rows), width), -1, dtype=torch.long)
    depth = max(len(r.recent) for r in rows)
    recent = torch.zeros((len(rows), depth), dtype=torch.long)
    recent_mask = torch.zeros((len(rows), depth), dtype=torch.bool)
    for b, (r, s) in enumerate(zip(rows, seqs)):
        ids[b, width - len(s):] = torch.tensor(s)
        mask[b, width - len(s):] = 1
        if r.slots:
            slots[b, width - len(s): width - len(s) + len(r.prompt)] = torch.tensor(r.slots)
        if r.answer:
            labels[b, answer_width - len(r.answer):] = torch.tensor(r.answer)
        items[b, : len(r.items)] = torch.tensor(r.items)
        item_mask[b, : len(r.items)] = True
        if r.facts:
            fact_rows[b, : len(r.facts)] = torch.tensor(r.facts)
            fact_mask[b, : len(r.facts)] = True
        if r.recent:
            recent[b, depth - len(r.recent):] = torch.tensor(r.recent)
            recent_mask[b, depth - len(r.recent):] = True
    return Batch(ids, mask, labels, torch.tensor([r.user for r in rows]), items, item_mask, fact_rows, fact_mask, slots,
                 recent, recent_mask)
