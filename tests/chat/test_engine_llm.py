"""The chat reply written by the real LLM (SmolLM2-135M-Instruct via transformers, on CPU): whatever it
writes, the reply shown is grounded — the LLM's own text only when every citation checks out."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kerec.api import Recommender, Settings
from kerec.chat import ChatEngine
from kerec.chat.reply import check_reply

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def llm_rec(films_trained: tuple[Path, Path]) -> Iterator[Recommender]:
    import torch

    from kerec.llm import TransformersLLM

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    data, ckpt = films_trained
    yield Recommender.load(ckpt, data=str(data), llm=TransformersLLM(progress=False), settings=Settings())
    torch.set_num_threads(threads)


def test_llm_reply_is_checked_or_replaced_by_the_template(llm_rec: Recommender) -> None:
    engine = ChatEngine(llm_rec, k=3, reply_tokens=60)
    reply = engine.chat("s", "something like Fargo, no horror")
    assert reply.text_source in ("llm", "llm-retry", "template") and len(reply.recommendations) == 3
    assert check_reply(reply.text, reply.references, reply.recommendations, llm_rec.store, {"i0"}) is None
    assert all(r.explanation_source in ("template", "none") for r in reply.recommendations)
