"""Full-ranking metrics against hand-computed answers and a slow pure-Python reference."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kerec.data.history import popularity_scores
from kerec.metrics import (DEFAULT_KS, METRICS, EvaluationError, RankingResult, evaluate_full_ranking, metrics_at_k,
                           parse_metric_key, topk_items)

LOG2_3 = math.log2(3)


def _one(top: list[int], relevant: set[int], ks: tuple[int, ...]) -> dict[str, float]:
    out = metrics_at_k(torch.tensor([top]), [relevant], ks)
    return {key: float(v[0]) for key, v in out.items()}


# metrics_at_k: hand-computed answers

def test_two_relevant_items_known_answer() -> None:
    # R = {2, 5}, top-5 = [5, 1, 2, 7, 3]: hits at ranks 1 and 3.
    m = _one([5, 1, 2, 7, 3], {2, 5}, (1, 3, 5))
    assert m["recall@5"] == 1.0 and m["hit@5"] == 1.0 and m["mrr@5"] == 1.0
    assert m["precision@5"] == pytest.approx(2 / 5)
    # DCG = 1/log2(2) + 1/log2(4) = 1.5; IDCG over min(2, 5) = 2 positions = 1 + 1/log2(3).
    assert m["ndcg@5"] == pytest.approx(1.5 / (1 + 1 / LOG2_3))
    assert m["ndcg@3"] == pytest.approx(m["ndcg@5"]) and m["precision@3"] == pytest.approx(2 / 3)
    # @1: one hit of two relevant; IDCG over min(2, 1) = 1 position, so NDCG@1 = 1.
    assert (m["recall@1"], m["precision@1"], m["ndcg@1"], m["mrr@1"]) == (0.5, 1.0, 1.0, 1.0)


def test_first_hit_at_rank_three() -> None:
    # R = {7}, top-5 = [1, 2, 7, 4, 5]: MRR = 1/3, DCG = 1/log2(4) = 0.5, IDCG = 1.
    m = _one([1, 2, 7, 4, 5], {7}, (2, 5))
    assert m["mrr@5"] == pytest.approx(1 / 3) and m["ndcg@5"] == pytest.approx(0.5)
    assert m["recall@5"] == 1.0 and m["precision@5"] == pytest.approx(0.2)
    assert (m["hit@2"], m["mrr@2"], m["ndcg@2"], m["recall@2"]) == (0.0, 0.0, 0.0, 0.0)


def test_no_hit_gives_zeros() -> None:
    assert set(_one([0, 1, 2], {8, 9}, (3,)).values()) == {0.0}


def test_idcg_truncated_at_k_and_recall_over_all_relevant() -> None:
    # |R| = 6 > K = 3, top-3 = [0, 9, 1]: hits at ranks 1 and 3, DCG = 1 + 1/log2(4) = 1.5;
    # IDCG over min(6, 3) = 3 positions = 1 + 1/log2(3) + 1/log2(4).
    m = _one([0, 9, 1], {0, 1, 2, 3, 4, 5}, (3,))
    assert m["ndcg@3"] == pytest.approx(1.5 / (1.5 + 1 / LOG2_3))
    assert m["recall@3"] == pytest.approx(2 / 6)  # RecBole: hits / |R|, not hits / min(|R|, K)
    assert m["precision@3"] == pytest.approx(2 / 3)


def test_rows_are_independent_and_keys_ordered() -> None:
    out = metrics_at_k(torch.tensor([[5, 1, 2], [0, 1, 2]]), [np.array([2, 5]), {8}], (3, 1))
    assert list(out) == [f"{n}@{k}" for n in METRICS for k in (1, 3)]
    np.testing.assert_allclose(out["hit@3"], [1.0, 0.0])
    np.testing.assert_allclose(out["recall@1"], [0.5, 0.0])


def test_duplicate_relevant_items_count_once_and_minus_one_never_hits() -> None:
    assert _one([5, 1, 2], np.array([2, 2, 5]), (3,)) == _one([5, 1, 2], {2, 5}, (3,))
    m = _one([3, -1, -1], {3, 4}, (3,))
    assert m["recall@3"] == 0.5 and m["precision@3"] == pytest.approx(1 / 3)


def test_metrics_subset_and_errors() -> None:
    top = torch.tensor([[0, 1, 2]])
    assert list(metrics_at_k(top, [{1}], (2,), metrics=("mrr",))) == ["mrr@2"]
    with pytest.raises(EvaluationError, match="unknown metric 'ndgc'; valid names: recall, ndcg, hit, mrr, precision"):
        metrics_at_k(top, [{1}], (2,), metrics=("ndgc",))
    with pytest.raises(EvaluationError, match="position 1 has no relevant items"):
        metrics_at_k(torch.tensor([[0, 1], [1, 2]]), [{1}, set()], (2,))
    with pytest.raises(EvaluationError, match="k=4 exceeds the 3 ranked positions"):
        metrics_at_k(top, [{1}], (4,))
    with pytest.raises(EvaluationError, match="positive integer, got 0"):
        metrics_at_k(top, [{1}], (0,))
    with pytest.raises(EvaluationError, match="2 entries"):
        metrics_at_k(top, [{1}, {2}], (2,))


def test_parse_metric_key() -> None:
    assert parse_metric_key("ndcg@20") == ("ndcg", 20)
    for bad in ("ndcg", "ndcg@0", "nDCG@20", "recall@ten"):
        with pytest.raises(EvaluationError, match="recall, ndcg, hit, mrr, precision"):
            parse_metric_key(bad)


# topk_items: tie policy, masking, validation

def test_tie_policy_lower_index_first() -> None:
    assert topk_items(torch.zeros(2, 6), 4).tolist() == [[0, 1, 2, 3], [0, 1, 2, 3]]
    scores = torch.tensor([[1.0, 3.0, 3.0, 2.0, 3.0]])
    assert topk_items(scores, 4).tolist() == [[1, 2, 4, 3]]
    assert topk_items(scores, 2).tolist() == [[1, 2]]  # three tied for two places: the lowest indices win


def test_tie_policy_matches_python_sort_on_tie_heavy_scores() -> None:
    gen = torch.Generator().manual_seed(3)
    scores = torch.randint(0, 4, (40, 30), generator=gen).double()
    scores[::7, ::5] = float("-inf")
    exclude = torch.rand(40, 30, generator=gen) < 0.3
    for k in (1, 5, 30):
        got = topk_items(scores, k, exclude=exclude).tolist()
        for row, items in enumerate(got):
            ranked = sorted((i for i in range(30) if not exclude[row, i]), key=lambda i: (-scores[row, i].item(), i))
            assert items == (ranked + [-1] * k)[:k]


def test_excluded_items_never_ranked() -> None:
    scores = torch.tensor([[9.0, 1.0, 5.0, 3.0]])
    exclude = torch.tensor([[True, False, False, False]])  # the best-scored item was seen
    assert topk_items(scores, 3, exclude=exclude).tolist() == [[2, 3, 1]]
    # An unseen item scored -inf still ranks before a seen one; no unseen item left → -1.
    scores = torch.tensor([[float("-inf"), float("-inf"), 1.0]])
    assert topk_items(scores, 3, exclude=torch.tensor([[True, False, False]])).tolist() == [[2, 1, -1]]


def test_topk_validation() -> None:
    with pytest.raises(EvaluationError, match=r"k=5 exceeds the number of items \(4\)"):
        topk_items(torch.zeros(1, 4), 5)
    with pytest.raises(EvaluationError, match="positive integer, got 0"):
        topk_items(torch.zeros(1, 4), 0)
    with pytest.raises(EvaluationError, match="NaN .*row 1, item 2"):
        topk_items(torch.tensor([[0.0, 1, 2], [0, 1, float("nan")]]), 2)
    with pytest.raises(EvaluationError, match="bool mask of shape"):
        topk_items(torch.zeros(1, 4), 2, exclude=torch.zeros(1, 3, dtype=torch.bool))
    assert topk_items(torch.tensor([[1, 3, 2]]), 2).tolist() == [[1, 2]]  # integer scores are fine


# evaluate_full_ranking

SCORES = torch.tensor([
    [9.0, 1.0, 8.0, 0.0, 0.0, 0.0],  # user 0: seen item 0 scores best
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # user 1: no target → skipped
    [0.0, 0.0, 0.0, 5.0, 0.0, 5.0],  # user 2: items 3 and 5 tie
])
TRAIN = np.array([[0, 0], [1, 2], [2, 1]])
TEST = np.array([[0, 1], [2, 3], [2, 4]])


def _evaluate(**kwargs: object) -> RankingResult:
    args: dict[str, object] = dict(num_users=3, num_items=6, target=TEST, exclude=[TRAIN], ks=(1, 2))
    args.update(kwargs)
    return evaluate_full_ranking(lambda u: SCORES[u], **args)  # type: ignore[arg-type]


def test_evaluate_known_answer() -> None:
    calls: list[list[int]] = []

    def score_fn(users: torch.Tensor) -> torch.Tensor:
        calls.append(users.tolist())
        return SCORES[users]

    r = evaluate_full_ranking(score_fn, num_users=3, num_items=6, target=TEST, exclude=[TRAIN, np.zeros((0, 2))],
                              ks=(1, 2), keep_per_user=True)
    assert calls == [[0, 2]] and (r.num_users, r.skipped_users) == (2, 1)
    assert r.users is not None and r.users.tolist() == [0, 2]
    # user 0: item 0 masked → ranking 2, 1, 3, …; target 1 at rank 2 (rank 3 had item 0 not been masked).
    # user 2: item 1 masked → 3, 5 (tie: lower index first), 0, 2, 4; targets {3, 4}: hit at rank 1.
    assert r.per_user is not None
    np.testing.assert_allclose(r.per_user["recall@2"], [1.0, 0.5])
    np.testing.assert_allclose(r.per_user["mrr@2"], [0.5, 1.0])
    np.testing.assert_allclose(r.per_user["ndcg@2"], [1 / LOG2_3, 1 / (1 + 1 / LOG2_3)])
    np.testing.assert_allclose(r.per_user["hit@1"], [0.0, 1.0])
    np.testing.assert_allclose(r.per_user["precision@2"], [0.5, 0.5])
    assert r.metrics["recall@2"] == pytest.approx(0.75) and r.metrics["hit@1"] == pytest.approx(0.5)
    assert r.metrics == {key: pytest.approx(float(v.mean())) for key, v in r.per_user.items()}


def test_evaluate_defaults_batching_and_outputs() -> None:
    assert DEFAULT_KS == (10, 20)
    r = _evaluate(batch_size=1)
    assert r.metrics == _evaluate().metrics and r.per_user is None and r.users is None
    assert r.to_dict() == {"metrics": r.metrics, "num_users": 2, "skipped_users": 1}
    lines = r.table().splitlines()
    assert lines[0].split() == ["@1", "@2"] and lines[1].split() == ["recall", "0.2500", "0.7500"]
    assert lines[-1] == "2 users evaluated, 1 skipped (no relevant items)"


def test_evaluate_validation() -> None:
    with pytest.raises(EvaluationError, match=r"target: item index 6 at row 1 is out of range \[0, 6\)"):
        _evaluate(target=np.array([[0, 1], [2, 6]]))
    with pytest.raises(EvaluationError, match=r"exclude\[0\]: user index -1 at row 0"):
        _evaluate(exclude=[np.array([[-1, 0]])])
    with pytest.raises(EvaluationError, match=r"shape \(n, 2\)"):
        _evaluate(target=np.array([0, 1, 2]))
    with pytest.raises(EvaluationError, match=r"k=7 exceeds the number of items \(6\)"):
        _evaluate(ks=(7,))
    with pytest.raises(EvaluationError, match="unknown metric 'auc'; valid names"):
        _evaluate(metrics=("recall", "auc"))
    with pytest.raises(EvaluationError, match="nothing to evaluate"):
        _evaluate(target=np.zeros((0, 2), dtype=np.int64))
    with pytest.raises(EvaluationError, match=r"shape \(2, 6\) for 2 users, got \(2, 5\)"):
        evaluate_full_ranking(lambda u: SCORES[u, :5], num_users=3, num_items=6, target=TEST, ks=(2,))


def test_popularity_baseline() -> None:
    pop = popularity_scores(np.array([[0, 1], [1, 1], [2, 3], [0, 3], [1, 3]]), 5)
    assert pop.tolist() == [0.0, 2.0, 0.0, 3.0, 0.0]
    r = evaluate_full_ranking(lambda u: pop.expand(len(u), -1), num_users=3, num_items=5,
                              target=np.array([[2, 1], [2, 0]]), ks=(1, 2))
    # user 2 ranks 3, 1, 0, …: hit 1 at rank 2 → recall@2 = 1/2, mrr@2 = 1/2.
    assert r.metrics["recall@2"] == pytest.approx(0.5) and r.metrics["mrr@2"] == pytest.approx(0.5)


# brute-force cross-check

def _reference(scores: np.ndarray, target: np.ndarray, seen: np.ndarray, k: int) -> dict[str, list[float]]:
    """Per-user metrics@k, slowly: Python sorting and the textbook formulas, one user at a time."""
    out: dict[str, list[float]] = {name: [] for name in METRICS}
    for u in range(scores.shape[0]):
        relevant = {int(i) for uu, i in target if uu == u}
        if not relevant:
            continue
        masked = {int(i) for uu, i in seen if uu == u}
        ranked = sorted((i for i in range(scores.shape[1]) if i not in masked), key=lambda i: (-scores[u, i], i))[:k]
        ranks = [r for r, item in enumerate(ranked, start=1) if item in relevant]
        idcg = sum(1 / math.log2(r + 1) for r in range(1, min(len(relevant), k) + 1))
        out["recall"].append(len(ranks) / len(relevant))
        out["precision"].append(len(ranks) / k)
        out["hit"].append(float(bool(ranks)))
        out["mrr"].append(1 / ranks[0] if ranks else 0.0)
        out["ndcg"].append(sum(1 / math.log2(r + 1) for r in ranks) / idcg)
    return out


def test_matches_brute_force_reference() -> None:
    rng = np.random.default_rng(2024)
    num_users, num_items = 30, 50
    pairs = np.stack([rng.integers(0, num_users, 600), rng.integers(0, num_items, 600)], axis=1)
    train, valid, test = pairs[:400], pairs[400:500], pairs[500:]
    test = test[test[:, 0] % 7 != 0]  # some users have no test item
    scores = rng.integers(0, 6, (num_users, num_items)).astype(np.float64)  # many ties
    r = evaluate_full_ranking(lambda u: torch.from_numpy(scores)[u], num_users=num_users, num_items=num_items,
                              target=test, exclude=[train, valid], ks=(5, 10), batch_size=7, keep_per_user=True)
    assert r.num_users + r.skipped_users == num_users and r.num_users == len(set(test[:, 0].tolist()))
    assert r.per_user is not None
    for k in (5, 10):
        expected = _reference(scores, test, np.concatenate([train, valid]), k)
        for name in METRICS:
            np.testing.assert_allclose(r.per_user[f"{name}@{k}"], expected[name], err_msg=f"{name}@{k}")
            assert r.metrics[f"{name}@{k}"] == pytest.approx(np.mean(expected[name]))
