from __future__ import annotations

import numpy as np
import pytest
import torch

from dataclasses import replace

from kerec.data import Dataset
from kerec.gnn.graph import build_training_graph, normalized_adjacency
from kerec.gnn.models import MODELS, KnowledgeRetriever, build_model
from kerec.gnn.sampling import NegativeSampler
from kerec.kg import MemoryStore, build_ckg


@pytest.fixture
def tiny_graph(tiny: Dataset):
    store = MemoryStore()
    store.load(build_ckg(tiny), progress=False)
    pairs = tiny.interactions.pairs()
    return build_training_graph(store.to_tensors(), pairs, item_text=np.ones((tiny.num_items, 5), np.float32))


def test_normalized_adjacency_known_values() -> None:
    # user 0 — items 0, 1; user 1 — item 1. Degrees: u0 2, u1 1, i0 1, i1 2.
    adj = normalized_adjacency(np.array([[0, 0], [0, 1], [1, 1]]), 2, 2).to_dense()
    expected = torch.zeros(4, 4)
    for u, i, w in ((0, 0, 1 / np.sqrt(2)), (0, 1, 0.5), (1, 1, 1 / np.sqrt(2))):
        expected[u, 2 + i] = expected[2 + i, u] = w
    assert torch.allclose(adj, expected)


def test_training_graph_keeps_kg_and_drops_users(tiny_graph, tiny: Dataset) -> None:
    g = tiny_graph
    assert (g.num_users, g.num_items, g.num_entities) == (4, 6, 15)
    assert int(g.kg_edge_index.max()) < g.num_kg_nodes  # no user nodes in the KG part
    # 8 KG triples + 13 item attribute facts; user attributes and the social link are left out.
    assert g.kg_triples.shape == (21, 3) and g.kg_edge_index.shape[1] == 42
    assert bool((g.kg_triples[:, 1] < g.num_relations // 2).all())
    no_kg = build_training_graph(_tensors(tiny), tiny.interactions.pairs(), use_kg=False)
    assert no_kg.kg_edge_index.shape[1] == 0 and no_kg.kg_triples.shape[0] == 0


def _tensors(ds: Dataset):
    store = MemoryStore()
    store.load(build_ckg(ds), progress=False)
    return store.to_tensors()


@pytest.mark.parametrize("name", [m for m in MODELS if m != "ease"])  # EASE has no embeddings: test_item_head.py
def test_every_model_scores_every_item(name: str, tiny_graph) -> None:
    model = build_model(name, tiny_graph, embedding_dim=8)
    emb = model(tiny_graph)
    assert emb.users.shape == (4, 8) and emb.items.shape == (6, 8)
    assert emb.scores(torch.tensor([0, 3])).shape == (2, 6)
    assert torch.isfinite(emb.users).all() and torch.isfinite(emb.items).all()


def test_kg_changes_item_vectors(tiny_graph, tiny: Dataset) -> None:
    torch.manual_seed(0)
    model = build_model("kerec", tiny_graph, embedding_dim=8)
    no_kg_graph = build_training_graph(_tensors(tiny), tiny.interactions.pairs(), use_kg=False,
                                       item_text=np.ones((6, 5), np.float32))
    assert not torch.allclose(model(tiny_graph).items, model(no_kg_graph).items)
    assert isinstance(model, KnowledgeRetriever) and model.text is not None
    loss = model.kg_loss(tiny_graph, tiny_graph.kg_triples, torch.zeros(21, dtype=torch.long))
    loss.backward()
    assert loss.item() > 0 and model.relation.weight.grad is not None


def test_fact_scores_shape(tiny_graph) -> None:
    model = build_model("kerec", tiny_graph, embedding_dim=8)
    emb = model(tiny_graph)
    scores = model.fact_scores(tiny_graph, emb.users[:2], tiny_graph.kg_triples[:5])  # type: ignore[attr-defined]
    assert scores.shape == (2, 5)


def test_unknown_model_lists_choices(tiny_graph) -> None:
    with pytest.raises(Exception, match="choose one of bpr, lightgcn, kerec"):
        build_model("kgat", tiny_graph)


def test_negative_sampler_never_returns_seen_items() -> None:
    pairs = np.array([[0, i] for i in range(9)] + [[1, 0]])
    sampler = NegativeSampler(pairs, 10, np.random.default_rng(0))
    assert set(sampler.sample(np.zeros(200, dtype=np.int64)).ravel().tolist()) == {9}
    allowed = np.zeros(10, dtype=bool)
    allowed[[0, 5]] = True
    restricted = NegativeSampler(pairs, 10, np.random.default_rng(0), allowed)
    assert set(restricted.sample(np.ones(100, dtype=np.int64), per_user=2).ravel().tolist()) == {5}


def test_one_kg_layer_equals_edgewise_relational_mean(tiny_graph) -> None:
    """The SpMM shortcut must equal the definition: k_i = (x_i + mean_(i,r,w) x_w ⊙ e_r) / 2."""
    torch.manual_seed(1)
    model = build_model("kerec", tiny_graph, embedding_dim=4)
    x = model.kg_nodes(tiny_graph)  # type: ignore[attr-defined]
    rel = model.relation.weight  # type: ignore[attr-defined]
    src, dst = tiny_graph.kg_edge_index
    expected = x.clone()
    for i in range(tiny_graph.num_items):
        into = (dst == i).nonzero().flatten()
        if into.numel():
            msgs = torch.stack([x[src[e]] * rel[tiny_graph.kg_edge_type[e]] for e in into.tolist()])
            expected[i] = (x[i] + msgs.mean(0)) / 2
    ours = model.knowledge(tiny_graph)  # type: ignore[attr-defined]
    assert torch.allclose(ours, expected, atol=1e-6)
    # One message per distinct (node, relation) pair, fewer than the edges into items; gradients as the definition's.
    assert tiny_graph.kg_pair_node.numel() < int((dst < tiny_graph.num_items).sum())
    weights = torch.randn_like(ours)
    params = [model.entity.weight, model.relation.weight, model.item.weight]  # type: ignore[attr-defined]
    for got, want in zip(torch.autograd.grad((ours * weights).sum(), params),
                         torch.autograd.grad((expected * weights).sum(), params)):
        assert torch.allclose(got, want, atol=1e-6)


def test_propagate_gives_torch_gradients_without_transposing_each_step() -> None:
    """kerec's sparse product uses a transpose built once; values and gradients are torch's own."""
    import numpy as np
    import torch

    from kerec.gnn.graph import _transposed, normalized_adjacency, propagate

    pairs = np.random.default_rng(0).integers(0, 30, (200, 2))
    sym = normalized_adjacency(pairs, 30, 30)
    rect = torch.rand(40, 60).mul(torch.rand(40, 60) < 0.2).to_sparse_csr()
    weights = torch.randn(60, 8)
    for a, a_t in ((sym, sym), (rect, _transposed(rect))):
        x = torch.randn(60, 8, requires_grad=True)
        ours = propagate(a, a_t, x)
        (ours * weights[: ours.shape[0]]).sum().backward()
        grad, x.grad = x.grad.clone(), None
        theirs = a @ x
        (theirs * weights[: theirs.shape[0]]).sum().backward()
        assert torch.allclose(ours, theirs) and torch.allclose(grad, x.grad, atol=1e-6)
        assert ours.grad_fn is not None and "SparseProduct" in type(ours.grad_fn).__name__


def test_normalized_adjacency_with_friends_known_values() -> None:
    # user 0 — item 0; user 1 — item 0; friends 0–1 (given twice and with a self-link, counted once).
    adj = normalized_adjacency(np.array([[0, 0], [1, 0]]), 2, 1, friends=np.array([[0, 1], [1, 0], [1, 1]])).to_dense()
    # degrees: u0 2, u1 2, i0 2
    expected = torch.tensor([[0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    assert torch.allclose(adj, expected)


def test_social_links_join_the_user_graph_only_when_asked(tiny: Dataset) -> None:
    from kerec.gnn.graph import social_links

    store = MemoryStore()
    store.load(build_ckg(tiny), progress=False)
    tensors = store.to_tensors()
    links = social_links(tensors)
    assert sorted(map(tuple, links.tolist())) == sorted(map(tuple, tiny.social.tolist())) and len(links)
    pairs = tiny.interactions.pairs()
    plain = build_training_graph(tensors, pairs).ui_adj.to_dense()
    social = build_training_graph(tensors, pairs, use_social=True).ui_adj.to_dense()
    for u, v in links.tolist():
        assert plain[u, v] == 0 and social[u, v] > 0 and social[v, u] == social[u, v]
    # items stay linked to the same users
    assert torch.equal(plain[tiny.num_users:, : tiny.num_users] > 0, social[tiny.num_users:, : tiny.num_users] > 0)
    lonely = MemoryStore()
    lonely.load(build_ckg(replace(tiny, social=np.zeros((0, 2), dtype=np.int64))), progress=False)
    with pytest.raises(ValueError, match="use_social needs social links"):
        build_training_graph(lonely.to_tensors(), pairs, use_social=True)
