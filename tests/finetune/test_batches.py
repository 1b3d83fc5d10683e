from __future__ import annotations

from pathlib import Path

import pytest

from kerec.finetune.batches import collate, encode, render
from kerec.finetune.data import InstructionSample
from kerec.finetune.soft_prompt import SOFT_TOKEN as P


@pytest.fixture(scope="module")
def tokenizer(tiny_llm: Path):  # noqa: ANN201
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_llm)


def sample(content: str, answer: str = "B", items: tuple[int, ...] = (4, 5)) -> InstructionSample:
    messages = [{"role": "system", "content": "You rank."}, {"role": "user", "content": content}]
    return InstructionSample("ranking", 0, items[1], (), items, (), messages, answer)


def test_each_placeholder_becomes_one_slot_and_the_text_is_untouched(tokenizer) -> None:  # noqa: ANN001
    s = sample(f"The user{P}{P} chose Heat\nA{P} B{P}")
    enc = encode(tokenizer, s)
    assert len(enc.slots) == len(enc.prompt)
    placed = [n for n, slot in enumerate(enc.slots) if slot >= 0]
    assert [enc.slots[n] for n in placed] == [0, 1, 2, 3]  # the projector's order: user tokens, then A, B
    assert all(enc.prompt[n] == tokenizer.pad_token_id for n in placed)
    assert placed[1] == placed[0] + 1  # the two user tokens are adjacent, as in the text
    text = [t for t, slot in zip(enc.prompt, enc.slots) if slot < 0]
    assert tokenizer.decode(text) == render(tokenizer, s.messages).replace(P, "")
    assert tokenizer.decode(enc.prompt[placed[2] - 1]) == "A" and tokenizer.decode(enc.prompt[placed[3] - 1]) == " B"


def test_without_the_soft_prompt_the_placeholders_vanish(tokenizer) -> None:  # noqa: ANN001
    s = sample(f"The user{P} chose Heat\nA{P} B{P}")
    enc = encode(tokenizer, s, soft=False)
    assert enc.slots == ()
    assert enc.prompt == tokenizer.encode(render(tokenizer, s.messages).replace(P, ""), add_special_tokens=False)
    assert P not in tokenizer.decode(enc.prompt) and "The user chose Heat\nA B" in tokenizer.decode(enc.prompt)
    # A prompt without placeholders has no slots either way.
    assert encode(tokenizer, sample("A. Heat\nB. Babe")).slots == ()


def test_collate_aligns_slots_with_left_padding(tokenizer) -> None:  # noqa: ANN001
    short = encode(tokenizer, sample(f"A{P} B{P}"))
    long = encode(tokenizer, sample(f"Some longer history here\nA{P} B{P} C{P}", items=(1, 2, 3)))
    plain = encode(tokenizer, sample("A. Heat\nB. Babe"))
    batch = collate([short, long, plain], tokenizer.pad_token_id)
    width = batch.input_ids.shape[1]
    for b, enc in enumerate((short, long)):
        start = width - len(enc.prompt) - len(enc.answer)
        assert batch.slots[b, :start].eq(-1).all() and batch.slots[b, start + len(enc.prompt):].eq(-1).all()
        assert batch.slots[b, start:start + len(enc.prompt)].tolist() == list(enc.slots)
    assert batch.slots[2].eq(-1).all()
    assert batch.slots[0].ge(0).sum() == 2 and batch.slots[1].ge(0).sum() == 3


def test_collate_right_aligns_the_last_history_items(tokenizer) -> None:  # noqa: ANN001
    from kerec.finetune.batches import RECENT_ITEMS

    def with_history(history: tuple[int, ...]) -> InstructionSample:
        s = sample("A. Heat\nB. Babe")
        return InstructionSample(s.kind, s.user, s.target, history, s.items, s.facts, s.messages, s.answer)

    long = tuple(range(100, 100 + RECENT_ITEMS + 5))
    rows = [encode(tokenizer, with_history(h)) for h in ((7, 8), long, ())]
    assert rows[0].recent == (7, 8) and rows[1].recent == long[-RECENT_ITEMS:] and rows[2].recent == ()
    batch = collate(rows, tokenizer.pad_token_id)
    assert batch.recent.shape == (3, RECENT_ITEMS)
    assert batch.recent[0, -2:].tolist() == [7, 8] and batch.recent_mask[0].tolist() == [False] * (RECENT_ITEMS - 2) + [True, True]
    assert batch.recent[1].tolist() == list(long[-RECENT_ITEMS:]) and batch.recent_mask[1].all()
    assert not batch.recent_mask[2].any()
