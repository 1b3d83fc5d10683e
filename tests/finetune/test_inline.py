"""The inline soft prompt on the tiny random Llama: the projector's tokens sit exactly at the compact prompt's
placeholders, padded candidates leave none, and the language loss reaches the GNN through them."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from kerec.finetune import setup
from kerec.finetune.batches import collate, encode
from kerec.finetune.data import InstructionSample
from kerec.finetune.graph_features import graph_inputs
from kerec.finetune.soft_prompt import SOFT_TOKEN

from .conftest import COMPACT, tiny_recipe

pytestmark = pytest.mark.slow
GRAPH_TOKENS = 2


@pytest.fixture(scope="module")
def joint(synth_dir: Path, tiny_llm: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    recipe = tiny_recipe(synth_dir, tiny_llm, tmp_path_factory.mktemp("inline"), **COMPACT)
    prepared, gnn, graph, _ = setup.retriever(recipe, progress=False)
    builder = setup.builder(recipe, prepared, gnn, graph)
    base = setup.load_llm(recipe, "cpu")
    model = setup.joint_model(recipe, base.model, gnn)
    yield SimpleNamespace(recipe=recipe, prepared=prepared, graph=graph, builder=builder, tokenizer=base.tokenizer,
                          model=model)
    torch.set_num_threads(threads)


def scoring_batch(joint: SimpleNamespace, sizes: tuple[int, ...]):  # noqa: ANN201 - a Batch
    """Ranking prompts of users 0, 1, … with ``sizes`` candidates each (different sizes: padded candidates)."""
    samples = []
    for user, size in enumerate(sizes):
        history = joint.builder.history[user]
        items = list(range(3 * user, 3 * user + size))
        parts = joint.builder.ranking_parts(user, history, items)
        samples.append(InstructionSample("ranking", user, -1, tuple(history), tuple(items), parts.facts, parts.messages, ""))
    assert all(s.messages[-1]["content"].count(SOFT_TOKEN) == GRAPH_TOKENS + len(s.items) for s in samples)
    return collate([encode(joint.tokenizer, s, with_answer=False) for s in samples], joint.tokenizer.pad_token_id)


def test_soft_tokens_sit_at_the_placeholders_and_nowhere_else(joint: SimpleNamespace) -> None:
    model, graph = joint.model, joint.graph
    batch = scoring_batch(joint, (8, 5))
    with torch.no_grad():
        emb, mask = model.inputs(graph, batch)
        gnn = model.gnn
        soft, soft_mask = model.projector(graph_inputs(gnn, graph, gnn(graph), gnn.knowledge(graph), batch.users,
                                                       batch.items, batch.item_mask, batch.facts, batch.fact_mask))
        words = model.llm.get_input_embeddings()(batch.input_ids)
    assert emb.shape == words.shape and torch.equal(mask, batch.attention_mask)  # inline adds no position
    for b in range(2):
        placed = batch.slots[b] >= 0
        assert placed.sum() == soft_mask[b].sum() == GRAPH_TOKENS + (8, 5)[b]
        torch.testing.assert_close(emb[b, placed], soft[b, batch.slots[b, placed]])
        assert batch.slots[b, placed].tolist() == list(range(int(placed.sum())))  # in the projector's order
        torch.testing.assert_close(emb[b, ~placed], words[b, ~placed])
    # Row 1 has 5 candidates: the projector's 3 padded candidate tokens enter no position of any row.
    padded = soft[1, GRAPH_TOKENS + 5:]
    assert padded.shape[0] == 3 and not soft_mask[1, GRAPH_TOKENS + 5:].any()
    distance = torch.cdist(padded, emb.reshape(-1, emb.shape[-1]))
    assert distance.min() > 1e-3


def test_prompt_embeddings_are_the_unpadded_rows_of_the_inputs(joint: SimpleNamespace) -> None:
    batch = scoring_batch(joint, (8, 5, 3))
    with torch.no_grad():
        emb, mask = joint.model.inputs(joint.graph, batch)
        rows = joint.model.prompt_embeddings(joint.graph, batch)
    lengths = batch.attention_mask.sum(-1).tolist()
    assert len(set(lengths)) == 3  # the batch is padded
    for b, row in enumerate(rows):
        assert row.shape == (lengths[b], emb.shape[-1])
        torch.testing.assert_close(row, emb[b, emb.shape[1] - lengths[b]:])  # left padding: the row's tail


def test_the_lm_loss_reaches_the_gnn_through_inline_tokens(joint: SimpleNamespace) -> None:
    samples = setup.samples(joint.recipe, joint.prepared, joint.model.gnn, joint.graph, None, progress=False)
    ranking = [s for s in samples if s.kind == "ranking"][:4]
    batch = collate([encode(joint.tokenizer, s) for s in ranking], joint.tokenizer.pad_token_id)
    assert (batch.slots >= 0).sum() == 4 * (GRAPH_TOKENS + 8)
    joint.model.zero_grad(set_to_none=True)
    l_llm, _, _ = joint.model(joint.graph, batch)
    l_llm.backward()
    for name in ("user.weight", "item.weight", "relation.weight"):
        grad = dict(joint.model.gnn.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert joint.model.projector.slot.grad.abs().sum() > 0
    joint.model.zero_grad(set_to_none=True)


def test_bf16_autocast_runs_the_llm_in_half_precision_and_the_gnn_in_float32(joint: SimpleNamespace) -> None:
    """train.mixed_precision: bf16 on CPU (accelerate's autocast): the GNN's sparse products have no bf16
    kernel, so the joint model keeps the GNN out of autocast."""
    samples = setup.samples(joint.recipe, joint.prepared, joint.model.gnn, joint.graph, None, progress=False)[:4]
    batch = collate([encode(joint.tokenizer, s) for s in samples], joint.tokenizer.pad_token_id)
    with torch.no_grad():
        fp32 = joint.model(joint.graph, batch)[0]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            l_llm, _, _ = joint.model(joint.graph, batch)  # would raise in the GNN's sparse product
    assert torch.isfinite(l_llm) and l_llm.item() != fp32.item()  # it did run in half precision
    torch.testing.assert_close(l_llm, fp32, rtol=0.05, atol=0.0)
