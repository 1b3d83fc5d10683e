from __future__ import annotations

import torch

from kerec.finetune.soft_prompt import GraphInputs, GraphSoftPrompt, splice


def inputs(b: int = 3, c: int = 5, f: int = 4, d: int = 8) -> GraphInputs:
    torch.manual_seed(0)
    cand_mask = torch.ones(b, c, dtype=torch.bool)
    cand_mask[0, 3:] = False
    fact_mask = torch.ones(b, f, dtype=torch.bool)
    fact_mask[1] = False  # a row without facts
    return GraphInputs(torch.randn(b, d), torch.randn(b, c, d), cand_mask, torch.randn(b, f, d), fact_mask)


def test_shapes_and_masks() -> None:
    proj = GraphSoftPrompt(graph_dim=8, llm_dim=32, graph_tokens=2, max_candidates=20, hidden_dim=16, embedding_rms=0.05)
    tokens, mask = proj(inputs())
    assert tokens.shape == (3, 2 + 5, 32) and mask.shape == (3, 7) and proj.num_tokens(5) == 7
    assert mask[0].tolist() == [True, True, True, True, True, False, False]
    # RMS-normalised then scaled: every token starts at the LLM's embedding scale
    assert torch.allclose(tokens.pow(2).mean(-1).sqrt(), torch.full((3, 7), 0.05), rtol=1e-3)
    only_context = GraphSoftPrompt(graph_dim=8, llm_dim=32, graph_tokens=3, candidate_tokens=False)
    assert only_context(inputs())[0].shape == (3, 3, 32)


def test_pooling_ignores_masked_facts_and_is_zero_without_facts() -> None:
    proj = GraphSoftPrompt(graph_dim=8, llm_dim=32)
    x = inputs()
    pooled = proj.pool(x.user, x.facts, x.fact_mask)
    assert torch.equal(pooled[1], torch.zeros(8))
    garbage = x.facts.clone()
    garbage[0, 2:] = 1e6
    mask = x.fact_mask.clone()
    mask[0, 2:] = False
    a = proj.pool(x.user, x.facts, mask)[0]
    b = proj.pool(x.user, garbage, mask)[0]
    assert torch.allclose(a, b)


def test_splice_puts_soft_tokens_before_the_text_after_left_padding() -> None:
    text = torch.arange(2 * 4 * 1, dtype=torch.float).view(2, 4, 1) + 100
    text_mask = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]])
    soft = -torch.ones(2, 2, 1)
    soft_mask = torch.tensor([[True, False], [True, True]])
    emb, mask = splice(soft, soft_mask, text, text_mask)
    assert emb.shape == (2, 6, 1)
    assert emb[0, :, 0].tolist() == [100, -1, -1, 101, 102, 103]
    assert mask[0].tolist() == [0, 1, 0, 1, 1, 1] and mask[1].tolist() == [1] * 6
    assert emb[1, :2, 0].tolist() == [-1, -1]
