"""The 20-candidate protocol: tasks drawn correctly and per user, metrics and fusion with known answers."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kerec.eval.candidates import Task, choose_weight, negative_tasks, rank_metrics, sample_users
from kerec.fusion import fuse_all
from kerec.gnn import prepare

from ..gnn.synthetic import write_synthetic


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    return prepare(str(write_synthetic(tmp_path_factory.mktemp("cand") / "synth")))


def test_tasks_hold_one_target_and_never_seen_negatives(prepared) -> None:  # noqa: ANN001
    users = sample_users(prepared, "test", 0, seed=3)
    tasks = negative_tasks(prepared, "test", users, seed=3, negatives=19)
    split = prepared.split
    for t in tasks:
        seen = set(np.concatenate([split.train, split.valid, split.test])[
            np.concatenate([split.train, split.valid, split.test])[:, 0] == t.user, 1].tolist())
        held = set(split.test[split.test[:, 0] == t.user, 1].tolist())
        (target,) = t.targets
        assert target in held and target in t.items.tolist()
        assert len(set(t.items.tolist())) == 20 and not (set(t.items.tolist()) - {target}) & seen


def test_a_users_task_does_not_depend_on_the_other_users(prepared) -> None:  # noqa: ANN001
    everyone = {t.user: t for t in negative_tasks(prepared, "test", sample_users(prepared, "test", 0, 5), 5, 9)}
    some = sample_users(prepared, "test", 7, 5)
    assert len(some) == 7
    for t in negative_tasks(prepared, "test", some, 5, 9):
        assert t.items.tolist() == everyone[t.user].items.tolist()


def test_rank_metrics_known_answer() -> None:
    tasks = [Task(0, np.array([10, 11, 12, 13, 14, 15]), frozenset({12})),
             Task(1, np.array([10, 11, 12, 13, 14, 15]), frozenset({15}))]
    scores = [np.array([0.9, 0.1, 1.0, 0, 0, 0]), np.array([5, 4, 3, 2, 1, 0.5])]  # hit at 1; hit at 6
    m = rank_metrics(scores, tasks)
    assert m["acc"].tolist() == [1, 0] and m["recall@3"].tolist() == [1, 0] and m["recall@5"].tolist() == [1, 0]
    assert m["valid_ratio"].tolist() == [1, 1]
    tie = rank_metrics([np.zeros(6)], [Task(0, np.array([7, 8, 9, 1, 2, 3]), frozenset({7}))])
    assert tie["acc"].tolist() == [1]  # ties keep the presented order


def test_fusion_weight_is_chosen_on_validation_ties_to_the_smaller() -> None:
    tasks = [Task(0, np.array([1, 2, 3]), frozenset({3}))]
    gnn, llm = [np.array([3.0, 2.0, 1.0])], [np.array([0.0, 0.0, 5.0])]
    weight, sweep = choose_weight(gnn, llm, tasks)
    assert sweep["0.0"] == 0.0 and sweep["1.0"] == 1.0
    assert weight == min(float(w) for w, v in sweep.items() if v == 1.0)
    assert fuse_all(gnn, llm, 0.0)[0].argmax() == 0 and fuse_all(gnn, llm, 1.0)[0].argmax() == 2


def test_recency_scores_compare_candidates_with_the_users_last_items_only() -> None:
    import torch

    from kerec.eval.candidates import recency_scores

    items = torch.tensor([[1.0, 0.0], [0.0, 3.0], [2.0, 2.0], [-1.0, 0.0]])  # scale must not matter (cosine)
    tasks = [Task(0, np.array([0, 1, 2, 3]), frozenset({1})), Task(1, np.array([3, 0]), frozenset({3}))]
    got = recency_scores(items, tasks, {0: [0, 0, 1]}, m=1)  # user 0's last item is 1; user 1 has none
    assert np.allclose(got[0], [0.0, 1.0, 2 ** -0.5, 0.0]) and got[1].tolist() == [0.0, 0.0]
    two = recency_scores(items, tasks[:1], {0: [3, 0, 1]}, m=2)[0]  # mean over items 0 and 1
    assert np.allclose(two, [0.5, 0.5, 2 ** -0.5, -0.5])
