from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kerec.data import KerecError
from kerec.gnn.checkpoint import Checkpoint, CheckpointError
from kerec.gnn.train import TrainConfig, TrainingError
from kerec.gnn import (RetrieverSpec, evaluate_embeddings, load_retriever, make_checkpoint, popularity,
                             prepare, prepare_from_checkpoint, train_retriever)

from .synthetic import write_synthetic


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory):
    return prepare(str(write_synthetic(tmp_path_factory.mktemp("synth"))), split="random", seed=1)


FAST = TrainConfig(epochs=40, lr=0.02, batch_size=128, patience=40, seed=3)


@pytest.mark.parametrize("spec", [RetrieverSpec(model="bpr", embedding_dim=16),
                                  RetrieverSpec(model="kerec", embedding_dim=16, use_text=False)])
def test_training_finds_the_planted_genres(synth, spec: RetrieverSpec) -> None:
    model, graph, state = train_retriever(synth, spec, FAST, progress=False)
    with torch.no_grad():
        trained = evaluate_embeddings(model(graph), synth, "valid").metrics["recall@10"]
    pop = popularity(synth, "valid").metrics["recall@10"]
    # Each user's held-out items are mostly from the user's genre (8 of 10 interactions):
    # a model that learnt the genres ranks them far above popularity.
    assert trained > pop + 0.25, (trained, pop)
    assert state.best_epoch >= 1 and state.history[state.best_epoch - 1].valid["ndcg@10"] == state.best_score


def test_model_ends_on_its_best_validation_epoch(synth) -> None:
    config = TrainConfig(epochs=30, lr=0.2, batch_size=64, patience=3, seed=0)  # too hot: validation wobbles
    model, graph, state = train_retriever(synth, RetrieverSpec(model="bpr", embedding_dim=8), config, progress=False)
    with torch.no_grad():
        final = evaluate_embeddings(model(graph), synth, "valid").metrics["ndcg@10"]
    assert final == pytest.approx(state.best_score)
    assert len(state.history) - state.best_epoch <= 3  # stopped within `patience` checks of the best


def test_same_seed_same_result(synth) -> None:
    spec, config = RetrieverSpec(model="kerec", embedding_dim=8, use_text=False), TrainConfig(epochs=3, batch_size=128, seed=5)
    a = train_retriever(synth, spec, config, progress=False)[2].history
    b = train_retriever(synth, spec, config, progress=False)[2].history
    assert [h.loss for h in a] == [h.loss for h in b]


def test_nan_loss_names_the_step(synth) -> None:
    broken_text = np.full((synth.dataset.num_items, 4), np.nan, dtype=np.float32)  # poisons every item vector
    with pytest.raises(TrainingError, match=r"at epoch 1, step 1"):
        train_retriever(synth, RetrieverSpec(model="kerec", embedding_dim=8), TrainConfig(epochs=1),
                        item_text=broken_text, progress=False)


def test_config_rejects_unknown_keys_and_bad_values() -> None:
    with pytest.raises(KerecError, match=r"unknown train config key\(s\) \['learning_rate'\]"):
        TrainConfig.from_dict({"learning_rate": 0.1})
    with pytest.raises(KerecError, match="epochs must be at least 1"):
        TrainConfig(epochs=0)
    with pytest.raises(KerecError, match="lr must be a positive number"):
        TrainConfig(lr=float("nan"))
    with pytest.raises(KerecError, match="unknown retriever 'kgat'"):
        RetrieverSpec(model="kgat")
    with pytest.raises(KerecError, match="unknown loss 'hinge'; choose one of bpr, softmax, full, inbatch"):
        TrainConfig(loss="hinge")
    with pytest.raises(KerecError, match="temperature must be a positive number, got 0"):
        TrainConfig(loss="softmax", temperature=0)


def test_ranking_losses_match_hand_computed_values() -> None:
    from kerec.gnn.models import Embeddings
    from kerec.gnn.train import bpr_loss, ranking_loss, softmax_loss

    emb = Embeddings(torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([[2.0, 1.0], [1.0, 1.0], [0.0, 0.5]]))
    users, pos, neg = torch.tensor([0, 1]), torch.tensor([0, 2]), torch.tensor([[1, 2], [0, 1]])
    # scores: user 0 -> items (2, 1, 0); user 1 -> items (2, 2, 1)
    bpr = (np.log1p(np.exp(1 - 2)) + np.log1p(np.exp(0 - 2)) + np.log1p(np.exp(2 - 1)) * 2) / 4
    assert bpr_loss(emb, users, pos, neg).item() == pytest.approx(bpr)
    soft = lambda p, ns, t: np.log(np.exp(np.array([p, *ns]) / t).sum()) - p / t  # noqa: E731
    for t in (1.0, 0.5):
        want = (soft(2, [1, 0], t) + soft(1, [2, 2], t)) / 2
        assert softmax_loss(emb, users, pos, neg, t).item() == pytest.approx(want, rel=1e-6)
        assert ranking_loss(TrainConfig(loss="softmax", temperature=t))(emb, users, pos, neg).item() == pytest.approx(want, rel=1e-6)
    assert ranking_loss(TrainConfig()) is bpr_loss


def test_full_softmax_loss_matches_hand_computed_values() -> None:
    from kerec.gnn.models import Embeddings
    from kerec.gnn.train import full_softmax_loss, ranking_loss

    emb = Embeddings(torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([[2.0, 1.0], [1.0, 1.0], [0.0, 0.5]]))
    users, pos = torch.tensor([0, 1]), torch.tensor([0, 2])
    # scores: user 0 -> items (2, 1, 0); user 1 -> items (2, 2, 1): -log softmax at the positive, whole catalogue
    ce = lambda row, p, t: np.log(np.exp(np.array(row) / t).sum()) - row[p] / t  # noqa: E731
    for t in (1.0, 0.5):
        want = (ce([2, 1, 0], 0, t) + ce([2, 2, 1], 2, t)) / 2
        assert full_softmax_loss(emb, users, pos, t).item() == pytest.approx(want, rel=1e-6)
        assert ranking_loss(TrainConfig(loss="full", temperature=t))(emb, users, pos, None).item() == pytest.approx(want, rel=1e-6)
    # Items outside `allowed` are not in the softmax: user 0 without item 1 -> items (2, ·, 0).
    allowed = torch.tensor([True, False, True])
    want = (ce([2, 0], 0, 1.0) + ce([2, 1], 1, 1.0)) / 2
    assert full_softmax_loss(emb, users, pos, 1.0, allowed).item() == pytest.approx(want, rel=1e-6)


def test_inbatch_softmax_loss_matches_hand_computed_values() -> None:
    from kerec.gnn.models import Embeddings
    from kerec.gnn.train import inbatch_softmax_loss, item_log_share, ranking_loss

    emb = Embeddings(torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]),
                     torch.tensor([[2.0, 1.0], [1.0, 1.0], [0.0, 0.5]]))
    users, pos = torch.tensor([0, 1, 2]), torch.tensor([0, 2, 1])
    # s(u, batch items 0, 2, 1): user 0 -> (2, 0, 1); user 1 -> (2, 1, 2); user 2 -> (3, 0.5, 2)
    rows = np.array([[2, 0, 1], [2, 1, 2], [3, 0.5, 2]])
    log_q = np.log(np.array([0.5, 0.3, 0.2]))[[0, 2, 1]]  # shares of items 0, 1, 2 in batch order
    ce = lambda row, p: np.log(np.exp(row).sum()) - row[p]  # noqa: E731
    for t in (1.0, 0.5):
        logits = rows / t - log_q
        want = np.mean([ce(logits[i], i) for i in range(3)])
        got = inbatch_softmax_loss(emb, users, pos, torch.log(torch.tensor([0.5, 0.3, 0.2])), t)
        assert got.item() == pytest.approx(want, rel=1e-6)
    # An item twice in the batch is not a negative of its own copy: rows 0 and 1 both hold item 0.
    twice = inbatch_softmax_loss(emb, users, torch.tensor([0, 0, 1]), torch.zeros(3))
    rows = np.array([[2, 2, 1], [2, 2, 2], [3, 3, 2]])
    want = np.mean([ce(rows[0][[0, 2]], 0), ce(rows[1][[1, 2]], 0), ce(rows[2], 2)])
    assert twice.item() == pytest.approx(want, rel=1e-6)
    # The shares come from the training pairs; the loss cannot run without them.
    share = item_log_share(torch.tensor([[0, 0], [1, 0], [1, 2], [2, 0]]), 3).exp()
    assert share.tolist() == pytest.approx([3 / 4.5, 0.5 / 4.5, 1 / 4.5], rel=1e-6)
    with pytest.raises(KerecError, match="inbatch loss needs"):
        ranking_loss(TrainConfig(loss="inbatch"))
    # In groups of 2, rows 0–1 are a batch of their own and row 2 one alone (its positive its only logit: loss 0).
    lq = torch.log(torch.tensor([0.5, 0.3, 0.2]))
    pair = inbatch_softmax_loss(emb, users[:2], pos[:2], lq, 1.0)
    grouped = inbatch_softmax_loss(emb, users, pos, lq, 1.0, group=2)
    assert grouped.item() == pytest.approx(pair.item() * 2 / 3, rel=1e-6)
    assert inbatch_softmax_loss(emb, users, pos, lq, 1.0, group=3).item() == pytest.approx(
        inbatch_softmax_loss(emb, users, pos, lq, 1.0).item())
    with pytest.raises(KerecError, match="inbatch_group must be 0"):
        TrainConfig(loss="inbatch", inbatch_group=-1)


@pytest.mark.parametrize("loss", [{"loss": "softmax", "negatives": 8}, {"loss": "full", "temperature": 0.5},
                                  {"loss": "inbatch", "temperature": 0.5},
                                  {"loss": "inbatch", "temperature": 0.5, "inbatch_group": 32}])
def test_softmax_losses_train_and_find_the_planted_genres(synth, loss: dict) -> None:
    config = TrainConfig(epochs=40, lr=0.02, batch_size=128, patience=40, seed=3, **loss)
    model, graph, _ = train_retriever(synth, RetrieverSpec(model="kerec", embedding_dim=16, use_text=False), config,
                                      progress=False)
    with torch.no_grad():
        trained = evaluate_embeddings(model(graph), synth, "valid").metrics["recall@10"]
    assert trained > popularity(synth, "valid").metrics["recall@10"] + 0.25


def test_checkpoint_round_trip_and_bad_files(synth, tmp_path: Path, tiny) -> None:
    spec = RetrieverSpec(model="kerec", embedding_dim=8, use_text=False)
    config = TrainConfig(epochs=2, batch_size=128)
    model, graph, state = train_retriever(synth, spec, config, progress=False)
    path = make_checkpoint(model, graph, synth, spec, config, state).save(tmp_path / "r.pt")
    ckpt = Checkpoint.load(path)
    again, graph2 = load_retriever(ckpt, prepare_from_checkpoint(ckpt, str(synth.dataset.source)))
    with torch.no_grad():
        assert torch.equal(model(graph).items, again(graph2).items)
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated"):
        Checkpoint.load(truncated)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(CheckpointError, match="not a kerec retriever checkpoint"):
        Checkpoint.load(other)
    with pytest.raises(CheckpointError, match="trained on dataset 'synth'"):
        prepare_from_checkpoint(ckpt, "tests/data/tiny_atomic")


def test_cold_start_slice_ranks_from_side_information(tmp_path: Path) -> None:
    from kerec.gnn import evaluate_cold_start

    prepared = prepare(str(write_synthetic(tmp_path / "s")), split="random", seed=1, cold_fraction=0.25)
    assert prepared.cold is not None and not prepared.allowed_items[prepared.cold.cold_items].any()
    # KG only (no text in this data): a cold item's genre entity still places it near its genre's users.
    model, graph, _ = train_retriever(prepared, RetrieverSpec(model="kerec", embedding_dim=16, use_text=False),
                                      TrainConfig(epochs=40, lr=0.02, batch_size=128, lambda_k=0.0, seed=3), progress=False)
    results = evaluate_cold_start(model, graph, prepared, random_draws=5)
    assert set(results) == {"model", "popularity", "random"}
    assert results["model"].metrics["recall@10"] > results["random"].metrics["recall@10"] + 0.1, \
        {k: r.metrics["recall@10"] for k, r in results.items()}


def test_gnn_holdout_pairs_stay_out_of_the_graph_and_survive_a_checkpoint(tmp_path: Path, monkeypatch) -> None:
    import kerec.gnn.pipeline as retriever

    grams = []  # the pairs the item head is fitted on
    item_gram = retriever.item_gram
    monkeypatch.setattr(retriever, "item_gram", lambda pairs, *a: grams.append(pairs) or item_gram(pairs, *a))
    source = write_synthetic(tmp_path / "s")
    prepared = prepare(str(source), split="random", seed=1, gnn_holdout_fraction=0.2)
    held = {(int(u), int(i)) for u, i in prepared.gnn_holdout}
    assert held and held <= {(int(u), int(i)) for u, i in prepared.split.train}
    spec = RetrieverSpec(model="kerec", embedding_dim=8, use_text=False, item_head=True)
    config = TrainConfig(epochs=2, batch_size=128)
    model, graph, state = train_retriever(prepared, spec, config, progress=False)
    in_graph = {(int(u), int(i)) for u, i in graph.train_pairs}
    assert in_graph == {(int(u), int(i)) for u, i in prepared.split.train} - held
    assert len(grams) == 1 and {(int(u), int(i)) for u, i in grams[0]} == in_graph  # the item head: the GNN's pairs
    ckpt = Checkpoint.load(make_checkpoint(model, graph, prepared, spec, config, state).save(tmp_path / "r.pt"))
    again = prepare_from_checkpoint(ckpt, str(source))
    assert np.array_equal(again.gnn_holdout, prepared.gnn_holdout)
    assert np.array_equal(again.split.train, prepared.split.train)  # still masked as seen
    _, graph2 = load_retriever(ckpt, again)
    assert torch.equal(graph2.train_pairs, graph.train_pairs)
