from __future__ import annotations

import pytest
import torch

from kerec.finetune.errors import FinetuneError
from kerec.finetune.soft_prompt import GraphInputs, GraphSoftPrompt, fill_slots, splice


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


def test_fill_slots_writes_soft_tokens_exactly_at_their_slots() -> None:
    text = torch.arange(2 * 6, dtype=torch.float).view(2, 6, 1) + 100  # row b, position p: 100 + 6b + p
    soft = -torch.arange(1, 2 * 4 + 1, dtype=torch.float).view(2, 4, 1)  # row 0: -1..-4, row 1: -5..-8
    # Row 0 has 3 candidates' worth of tokens (the 4th is a padded candidate); row 1 uses all 4.
    soft_mask = torch.tensor([[True, True, True, False], [True, True, True, True]])
    slots = torch.tensor([[-1, 0, -1, 1, 2, -1], [0, -1, 1, 2, -1, 3]])
    out = fill_slots(soft.requires_grad_(), soft_mask, text, slots)
    assert out.shape == text.shape
    assert out[0, :, 0].tolist() == [100, -1, 102, -2, -3, 105]
    assert out[1, :, 0].tolist() == [-5, 107, -6, -7, 110, -8]
    assert -4 not in out.flatten().tolist()  # the padded candidate's token appears nowhere
    out.sum().backward()  # differentiable in the soft tokens: each placed token once, the masked one never
    assert soft.grad[:, :, 0].tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]


def test_fill_slots_keeps_rows_without_slots_and_refuses_misplaced_tokens() -> None:
    text = torch.zeros(2, 4, 1)
    soft = torch.ones(2, 2, 1)
    mask = torch.ones(2, 2, dtype=torch.bool)
    slots = torch.tensor([[-1, 0, 1, -1], [-1, -1, -1, -1]])  # row 1: a prompt without placeholders
    assert fill_slots(soft, mask, text, slots)[:, :, 0].tolist() == [[0, 1, 1, 0], [0, 0, 0, 0]]
    with pytest.raises(FinetuneError, match="row 0: the prompt has 1 soft-token placeholders for the projector's 2"):
        fill_slots(soft, mask, text, torch.tensor([[-1, 0, -1, -1], [-1] * 4]))
    with pytest.raises(FinetuneError, match="row 0: the prompt has 3 soft-token placeholders"):
        fill_slots(soft, mask, text, torch.tensor([[0, 0, 1, -1], [-1] * 4]))
    with pytest.raises(FinetuneError, match="row 1: .*2 soft-token placeholders for the projector's 1"):
        fill_slots(soft, torch.tensor([[True, True], [True, False]]), text, torch.tensor([[0, 1, -1, -1], [0, 1, -1, -1]]))
    with pytest.raises(FinetuneError, match="names soft token 2, but the projector made 2 per row"):
        fill_slots(soft, mask, text, torch.tensor([[0, 1, 2, -1], [-1] * 4]))


def test_standardised_scores_by_hand_and_padding_stays_zero() -> None:
    from kerec.finetune.soft_prompt import standardised_scores

    user = torch.tensor([[1.0, 0.0]])
    cands = torch.tensor([[[1.0, 5.0], [2.0, 0.0], [3.0, 0.0], [100.0, 0.0]]])  # scores 1, 2, 3, (padding)
    mask = torch.tensor([[True, True, True, False]])
    # mean 2, population std sqrt(2/3) over the three real candidates
    z = 1 / (2 / 3) ** 0.5
    want = torch.tensor([[-z, 0.0, z, 0.0]])
    assert torch.allclose(standardised_scores(user, cands, mask), want, atol=1e-5)
    # One candidate (an explanation sample): score 0 and a finite gradient, not NaN.
    one = torch.randn(1, 1, 2, requires_grad=True)
    z = standardised_scores(user, one, torch.ones(1, 1, dtype=torch.bool))
    (z.sum() * 0).backward()
    assert z.item() == 0.0 and torch.isfinite(one.grad).all()


def test_relevance_direction_orders_tokens_by_gnn_score_and_slots_start_as_letters() -> None:
    letters = torch.randn(4, 32)
    proj = GraphSoftPrompt(graph_dim=2, llm_dim=32, graph_tokens=1, max_candidates=4, hidden_dim=8,
                           relevance=True, slot_init=letters)
    assert torch.equal(proj.slot.detach(), letters)
    with torch.no_grad():  # content MLP silenced: what is left is slot + score · relevance
        for layer in proj.candidate:
            if isinstance(layer, torch.nn.Linear):
                layer.weight.zero_(), layer.bias.zero_()
        proj.slot.zero_()
    user = torch.tensor([[1.0, 0.0]])
    cands = torch.tensor([[[3.0, 0.0], [1.0, 0.0], [2.0, 0.0], [0.0, 0.0]]])
    tokens, _ = proj(GraphInputs(user, cands, torch.ones(1, 4, dtype=torch.bool), torch.zeros(1, 0, 2),
                                 torch.zeros(1, 0, dtype=torch.bool)))
    along = tokens[0, 1:] @ proj.relevance.detach()
    assert along.argsort(descending=True).tolist() == [0, 2, 1, 3]  # the GNN's order, 3 > 2 > 1 > 0
    with pytest.raises(ValueError, match="slot_init has shape"):
        GraphSoftPrompt(graph_dim=2, llm_dim=32, max_candidates=4, slot_init=torch.zeros(3, 32))


def test_letter_slots_are_the_letters_embeddings_at_unit_rms(tiny_llm) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from kerec.finetune.setup import letter_embeddings

    model, tok = AutoModelForCausalLM.from_pretrained(tiny_llm), AutoTokenizer.from_pretrained(tiny_llm)
    rows = letter_embeddings(model, tok, 3)
    b = tok.encode("B", add_special_tokens=False)[0]
    raw = model.get_input_embeddings().weight[b].detach()
    assert torch.allclose(rows[1], raw / raw.pow(2).mean().sqrt(), atol=1e-6)
    assert torch.allclose(rows.pow(2).mean(-1), torch.ones(3), atol=1e-5)


def test_recency_scores_are_the_standardised_mean_cosine_with_the_recent_items() -> None:
    from kerec.finetune.soft_prompt import recency_scores

    cands = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0], [5.0, 5.0]]])  # the last one is padding
    recent = torch.tensor([[[9.0, 9.0], [2.0, 0.0], [0.0, 1.0]]])  # the first one is padding
    got = recency_scores(cands, recent, torch.tensor([[False, True, True]]), torch.tensor([[True, True, True, False]]))
    mean = torch.tensor([0.5, 0.5, -0.5])  # mean cosine with (1, 0) and (0, 1), scale-free
    z = (mean - mean.mean()) / (mean.var(unbiased=False) + 1e-6).sqrt()
    assert torch.allclose(got, torch.cat([z, torch.zeros(1)]).unsqueeze(0), atol=1e-5)
    # A row without recent items (no history) scores 0 everywhere, not NaN.
    none = recency_scores(cands, recent, torch.zeros(1, 3, dtype=torch.bool), torch.ones(1, 4, dtype=torch.bool))
    assert torch.equal(none, torch.zeros(1, 4))


def test_recency_direction_orders_tokens_by_similarity_to_the_last_items_only() -> None:
    proj = GraphSoftPrompt(graph_dim=2, llm_dim=32, graph_tokens=1, max_candidates=3, hidden_dim=8, recency=1)
    with torch.no_grad():  # content MLP and slots silenced: what is left is recency · direction
        for layer in proj.candidate:
            if isinstance(layer, torch.nn.Linear):
                layer.weight.zero_(), layer.bias.zero_()
        proj.slot.zero_()
    cands = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])
    # History oldest first: an old item along (1, 0), the most recent along (0, 1); recency=1 reads the last.
    recent = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    ones = torch.ones(1, 2, dtype=torch.bool)
    tokens, _ = proj(GraphInputs(torch.zeros(1, 2), cands, torch.ones(1, 3, dtype=torch.bool), torch.zeros(1, 0, 2),
                                 torch.zeros(1, 0, dtype=torch.bool), recent, ones))
    along = tokens[0, 1:] @ proj.recency.detach()
    assert along.argsort(descending=True).tolist() == [1, 2, 0]
    with pytest.raises(ValueError, match="needs GraphInputs.recent"):
        proj(GraphInputs(torch.zeros(1, 2), cands, torch.ones(1, 3, dtype=torch.bool), torch.zeros(1, 0, 2),
                         torch.zeros(1, 0, dtype=torch.bool)))
    with pytest.raises(ValueError, match="recency must be >= 0 and needs candidate tokens"):
        GraphSoftPrompt(graph_dim=2, llm_dim=32, candidate_tokens=False, recency=3)
