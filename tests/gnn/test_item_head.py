from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kerec.data import KerecError
from kerec.gnn.checkpoint import Checkpoint
from kerec.gnn.item_head import HeadTerm, ItemHead, ease_weights, interaction_matrix, item_gram, standardised
from kerec.gnn.models import Embeddings
from kerec.gnn.train import TrainConfig
from kerec.gnn import (RetrieverSpec, evaluate_embeddings, fit_item_head, load_retriever, make_checkpoint,
                             prepare, prepare_from_checkpoint, train_retriever)

from .synthetic import write_synthetic


def test_ease_weights_match_the_closed_form_by_hand() -> None:
    # Users: {0, 1}, {0, 1}, {1, 2}. Gram X^T X = [[2, 2, 0], [2, 3, 1], [0, 1, 1]]; with λ = 1 it is
    # G = [[3, 2, 0], [2, 4, 1], [0, 1, 2]], det 14, and B = -P / diag(P) with P = G^-1, diag(B) = 0.
    pairs = np.array([[0, 0], [0, 1], [1, 0], [1, 1], [2, 1], [2, 2], [2, 2]])  # the repeat counts once
    p = np.linalg.inv(np.array([[3.0, 2, 0], [2, 4, 1], [0, 1, 2]]))
    want = -p / np.diag(p)
    np.fill_diagonal(want, 0)
    assert want[0, 1] == pytest.approx(4 / 6) and want[2, 0] == pytest.approx(-2 / 7)  # 14·P = [[7,-4,2],[-4,6,-3],[2,-3,8]]; B_ij = -P_ij / P_jj
    gram = item_gram(pairs, 3, 3)
    assert torch.equal(gram, torch.tensor([[2.0, 2, 0], [2, 3, 1], [0, 1, 1]], dtype=torch.float64))
    got = ease_weights(gram, reg=1.0)
    assert torch.allclose(got, torch.tensor(want, dtype=torch.float32), atol=1e-6)
    # A user's head score of item j sums B's rows of the user's items: user 2 has items 1 and 2.
    history = interaction_matrix(pairs, 3, 3)
    raw = (history.to_dense() @ got)[2]
    assert torch.allclose(raw, torch.tensor(want[1] + want[2], dtype=torch.float32), atol=1e-6)


def test_standardised_rows_and_constant_rows() -> None:
    out = standardised(torch.tensor([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]]))
    assert torch.allclose(out[0], torch.tensor([-1.0, 0.0, 1.0]))
    assert torch.equal(out[1], torch.zeros(3))


def test_fused_scores_are_standardised_gnn_plus_weighted_head() -> None:
    users, items = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[3.0, 0.0], [1.0, 2.0], [0.0, 4.0]])
    pairs = np.array([[0, 0], [1, 2]])
    b = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    emb = Embeddings(users, items, HeadTerm(interaction_matrix(pairs, 2, 3), b, 0.5))
    got = emb.scores(torch.tensor([0, 1]))
    dot = users @ items.T
    head = torch.stack([b[0], b[2]])  # user 0 has item 0, user 1 item 2
    assert torch.allclose(got, standardised(dot) + 0.5 * standardised(head))
    assert torch.equal(emb.without_head().scores(torch.tensor([0])), dot[:1])


def test_head_scores_under_inference_mode_on_an_ml100k_sized_history() -> None:
    # ml-100k's 78k training pairs: torch's sparse index_select fails under inference_mode from ~30k entries
    # (TunedRanker.gnn_scores and serving score there); the result must equal the grad-mode one.
    rng = np.random.default_rng(0)
    pairs = np.stack([rng.integers(0, 943, 80_000), rng.integers(0, 1_600, 80_000)], axis=1)
    head = HeadTerm(interaction_matrix(pairs, 943, 1_600), torch.randn(1_600, 1_600), 0.5)
    users = torch.tensor([0, 5, 942])
    expected = head.scores(users)
    with torch.inference_mode():
        got = head.scores(users)
    assert torch.equal(got, expected)


def test_head_is_refused_for_baselines_and_covers_the_popular_items_of_huge_catalogues() -> None:
    with pytest.raises(KerecError, match="item_head is part of kerec's retriever"):
        RetrieverSpec(model="bpr", item_head=True)
    with pytest.raises(KerecError, match="supports at most 10,000 items"):
        item_gram(np.array([[0, 0]]), 1, 10_001)
    # Above 10,000 items the head's buffer is (10,000, 10,000) over a support, not (I, I): 0.4 GB, not 40 GB.
    big = ItemHead(num_items=100_000)
    assert big.partial and tuple(big.weights.shape) == (10_000, 10_000) and tuple(big.support.shape) == (10_000,)
    small = ItemHead(num_items=500)
    assert not small.partial and set(small.state_dict()) == {"weights", "mix", "reg"}  # old checkpoints' keys
    with pytest.raises(ValueError, match="covers 10,000 of 100,000 items: give the support"):
        big.set(torch.zeros(10_000, 10_000), mix=1.0, reg=1.0)
    with pytest.raises(KerecError, match="reg must be positive"):
        ease_weights(torch.eye(2, dtype=torch.float64), reg=0.0)


def test_popular_support_picks_the_most_interacted_items_ties_by_index() -> None:
    from kerec.gnn.item_head import on_support, popular_support

    pairs = np.array([[0, 5], [1, 5], [2, 5], [0, 2], [1, 2], [0, 7], [1, 0], [2, 9]])  # 5: 3, 2: 2, then 0/7/9: 1
    assert popular_support(pairs, 10, 3).tolist() == [0, 2, 5]
    assert on_support(pairs, torch.tensor([0, 2, 5]), 10).tolist() == [[0, 2], [1, 2], [2, 2], [0, 1], [1, 1], [1, 0]]


def test_a_head_over_a_support_scores_as_ease_over_those_items(tmp_path: Path) -> None:
    """A catalogue larger than the head's limit: the fitted head is EASE over the most popular items, its
    scores those items' EASE scores (0 elsewhere, before standardising), and it survives a checkpoint."""
    from kerec.gnn.item_head import on_support, popular_support
    from kerec.gnn.models import ItemItemOnly

    prepared = prepare(str(write_synthetic(tmp_path / "data")), seed=1, linked_only=False)
    ds, train = prepared.dataset, prepared.gnn_train
    spec = RetrieverSpec(model="ease")
    model, graph, state = train_retriever(prepared, spec, TrainConfig(seed=1), progress=False)
    model.head = ItemHead(num_items=ds.num_items, max_items=20)  # 20 of the 48 items
    search = fit_item_head(model, graph, prepared, weights=(1.0,))
    support = popular_support(train, ds.num_items, 20)
    assert torch.equal(model.head.support, support) and search["support"]["items"] == 20
    reg = search["reg"]
    b = ease_weights(item_gram(on_support(train, support, ds.num_items), ds.num_users, 20), float(reg))
    users = torch.arange(ds.num_users)
    raw = torch.zeros(ds.num_users, ds.num_items)
    raw[:, support] = interaction_matrix(on_support(train, support, ds.num_items), ds.num_users, 20).to_dense() @ b
    got = model.head.term(graph.train_pairs, ds.num_users).scores(users)
    assert torch.allclose(got, standardised(raw), atol=1e-5) and raw[:, support].abs().sum() > 0
    # saved and loaded with the retriever (the support is a buffer of the state_dict)
    path = make_checkpoint(model, graph, prepared, spec, TrainConfig(seed=1), state).save(tmp_path / "ease.pt")
    again = ItemItemOnly(num_users=ds.num_users, num_items=ds.num_items)
    again.head = ItemHead(num_items=ds.num_items, max_items=20)
    again.load_state_dict(Checkpoint.load(path).state_dict)
    assert torch.equal(again.head.support, support) and torch.equal(again.head.weights, model.head.weights)



@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory):
    return prepare(str(write_synthetic(tmp_path_factory.mktemp("synth"))), split="random", seed=1)


def test_head_is_chosen_on_validation_and_survives_a_checkpoint(synth, tmp_path: Path) -> None:
    spec = RetrieverSpec(model="kerec", embedding_dim=8, use_text=False, item_head=True)
    config = TrainConfig(epochs=3, batch_size=128, seed=2)  # barely trained: the head has room to help
    model, graph, state = train_retriever(synth, spec, config, progress=False)
    search = state.post["item_head"]
    with torch.no_grad():
        emb = model(graph)
        fused = evaluate_embeddings(emb, synth, "valid").metrics["ndcg@10"]
        gnn = evaluate_embeddings(emb.without_head(), synth, "valid").metrics["ndcg@10"]
    assert search["valid_gnn"] == pytest.approx(gnn)
    assert fused == pytest.approx(max(search["valid_fused"].values()))  # the chosen mix is the best on valid
    assert float(model.head.mix) == search["weight"] and float(model.head.reg) == search["reg"]
    assert search["weight"] > 0 and fused > gnn  # planted genres: co-occurrence alone ranks them well
    ckpt = Checkpoint.load(make_checkpoint(model, graph, synth, spec, config, state).save(tmp_path / "r.pt"))
    assert ckpt.metrics["item_head"]["weight"] == search["weight"]
    again, graph2 = load_retriever(ckpt, prepare_from_checkpoint(ckpt, str(synth.dataset.source)))
    with torch.no_grad():
        assert torch.allclose(again(graph2).scores(torch.arange(5)), emb.scores(torch.arange(5)))


def test_refitting_starts_from_the_gnn_alone(synth) -> None:
    spec = RetrieverSpec(model="kerec", embedding_dim=8, use_text=False, item_head=True)
    model, graph, state = train_retriever(synth, spec, TrainConfig(epochs=2, batch_size=128, seed=4), progress=False)
    again = fit_item_head(model, graph, synth, weights=(0.0,))
    assert again["weight"] == 0.0 and not model.head.active
    with torch.no_grad():
        assert model(graph).head is None
    assert again["valid_gnn"] == pytest.approx(state.post["item_head"]["valid_gnn"])


def test_ease_alone_is_a_baseline_that_finds_the_planted_genres(synth) -> None:
    from kerec.gnn import popularity

    model, graph, state = train_retriever(synth, RetrieverSpec(model="ease"), TrainConfig(), progress=False)
    assert state.history == [] and state.post["item_head"]["weight"] == 1.0
    with torch.no_grad():
        recall = evaluate_embeddings(model(graph), synth, "valid").metrics["recall@10"]
    # 8 of each user's 10 items share a genre: co-occurrence alone ranks the held-out ones high.
    assert recall > popularity(synth, "valid").metrics["recall@10"] + 0.25
    with pytest.raises(KerecError, match="no side information"):
        model.forget_items(torch.tensor([0]))


def test_cli_defaults_are_the_benchmarked_config() -> None:
    from kerec.gnn import default_settings, load_config

    root = Path(__file__).resolve().parents[2]
    assert default_settings() == load_config(root / "eval" / "configs" / "retriever-head.yaml")
    spec, config = default_settings("lightgcn")
    assert not spec.item_head and config.loss == "bpr"
