"""The 20-candidate protocol's draws and metrics (LLaRA / K-RagRec): pure functions over a split.

``prepared``: anything with ``split`` (train/valid/test (n, 2) index pairs, ``split.part(name)``) and
``allowed_items`` ((I,) bool), e.g. :class:`kerec.gnn.Prepared`. Random negatives: per held-out user, one
held-out item of the part (drawn with the seed) plus ``negatives`` recommendable items the user never
interacted with (in any part), shuffled. Every draw is seeded per (seed, part, user), so a user's task does
not depend on which other users are evaluated. Metrics per user: ACC = HR@1, Recall@3/5 = HR@3/5,
ValidRatio = the top answer is one of the candidates; ties keep the presented (shuffled) order. Used by
``kerec eval`` and by ``kerec train fusion`` (the weight chosen on the same validation tasks).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PARTS = {"valid": 1, "test": 2}
CANDIDATE_METRICS = ("acc", "recall@3", "recall@5", "valid_ratio")


@dataclass(frozen=True)
class Task:
    user: int
    items: np.ndarray  # (C,) item indices in the order presented
    targets: frozenset[int]


def _seen(prepared: object) -> dict[int, np.ndarray]:
    split = prepared.split  # type: ignore[attr-defined]
    pairs = np.concatenate([split.train, split.valid, split.test])
    order = np.argsort(pairs[:, 0], kind="stable")
    users, starts = np.unique(pairs[order, 0], return_index=True)
    return {int(u): items for u, items in zip(users, np.split(pairs[order, 1], starts[1:]))}


def held_out(prepared: object, part: str) -> dict[int, np.ndarray]:
    pairs = prepared.split.part(part)  # type: ignore[attr-defined]
    out: dict[int, list[int]] = {}
    for u, i in pairs:
        out.setdefault(int(u), []).append(int(i))
    return {u: np.asarray(v) for u, v in sorted(out.items())}


def sample_users(prepared: object, part: str, n: int, seed: int) -> list[int]:
    """``n`` held-out users of ``part`` (all when n is 0 or larger), drawn with ``seed``, ascending."""
    users = list(held_out(prepared, part))
    if n == 0 or n >= len(users):
        return users
    rng = np.random.default_rng([seed, PARTS[part]])
    return sorted(users[j] for j in rng.choice(len(users), size=n, replace=False))


def negative_tasks(prepared: object, part: str, users: Sequence[int], seed: int, negatives: int) -> list[Task]:
    allowed = np.flatnonzero(prepared.allowed_items)  # type: ignore[attr-defined]
    seen, held = _seen(prepared), held_out(prepared, part)
    tasks = []
    for u in users:
        rng = np.random.default_rng([seed, PARTS[part], u])
        target = int(rng.choice(held[u]))
        pool = np.setdiff1d(allowed, seen[u], assume_unique=False)
        items = np.concatenate([[target], rng.choice(pool, size=min(negatives, pool.size), replace=False)])
        tasks.append(Task(u, rng.permutation(items), frozenset({target})))
    return tasks


def rank_metrics(scores: Sequence[np.ndarray], tasks: Sequence[Task]) -> dict[str, np.ndarray]:
    """Per-user ACC, Recall@3, Recall@5, ValidRatio of ranking each task's candidates by ``scores``."""
    out: dict[str, list[float]] = {m: [] for m in CANDIDATE_METRICS}
    for s, t in zip(scores, tasks):
        order = t.items[np.argsort(-np.asarray(s), kind="stable")]
        out["acc"].append(float(int(order[0]) in t.targets))
        out["recall@3"].append(float(bool(t.targets & set(order[:3].tolist()))))
        out["recall@5"].append(float(bool(t.targets & set(order[:5].tolist()))))
        out["valid_ratio"].append(float(int(order[0]) in set(t.items.tolist())))
    return {k: np.asarray(v) for k, v in out.items()}
