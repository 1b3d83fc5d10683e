"""The 20-candidate protocol (LLaRA / K-RagRec), moved here from ``eval/bench_llm_ranking.py``.

Random negatives: per held-out user, one held-out item of the split (drawn with the seed) plus
``negatives`` recommendable items the user never interacted with (in any split), shuffled; the LLM
letters them A–T in that order. GNN top-20: the candidate retriever's own top-20 (train and valid items
masked), shuffled; a hit is any of the user's test items. Metrics per user: ACC = HR@1, Recall@3/5 =
HR@3/5, ValidRatio = the top answer is one of the candidates (1 by construction of letter scoring and of
score-based ranking). Ties keep the presented (shuffled) order. Every draw is seeded per (seed, part, user),
so a user's task does not depend on which other users are evaluated.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from kerec import fusion
from kerec.metrics.candidates import (CANDIDATE_METRICS, PARTS, Task, held_out, negative_tasks, rank_metrics,
                                      sample_users)
from kerec.eval.shards import Shard, batches
from kerec.eval.systems import Trained, score_fn

__all__ = ["CANDIDATE_METRICS", "PARTS", "Task", "choose_weight", "held_out", "llm_scores", "negative_tasks",
           "rank_metrics", "recency_scores", "retriever_scores", "sample_users", "top_tasks"]  # draws: kerec.metrics.candidates
LetterScorer = Callable[[list[str], list[list[str]]], np.ndarray]  # external ids -> (B, C) log-probs


def top_tasks(trained: Trained, users: Sequence[int], seed: int, size: int = 20) -> list[Task]:
    """The retriever's own top-``size`` per test user (train and valid masked), shuffled with the seed."""
    prepared = trained.prepared
    split, held = prepared.split, held_out(prepared, "test")
    known: dict[int, list[int]] = {}
    for u, i in np.concatenate([split.train, split.valid]):
        known.setdefault(int(u), []).append(int(i))
    scores = score_fn(trained)(np.asarray(users, dtype=np.int64)).numpy()
    tasks = []
    for row, u in zip(scores, users):
        row = row.copy()
        row[known.get(u, [])] = -np.inf
        top = np.argsort(-row, kind="stable")[:size]
        top = top[np.isfinite(row[top])]
        rng = np.random.default_rng([seed, 3, u])
        tasks.append(Task(u, rng.permutation(top), frozenset(int(i) for i in held[u])))
    return tasks


def retriever_scores(trained: Trained, tasks: Sequence[Task], batch: int = 512) -> list[np.ndarray]:
    """The system's scores of each task's candidates, in the presented order."""
    scorer, out = score_fn(trained), []
    for chunk in batches(tasks, batch):
        rows = scorer(np.asarray([t.user for t in chunk], dtype=np.int64)).numpy()
        out.extend(row[t.items].astype(np.float64) for row, t in zip(rows, chunk))
    return out


def recency_scores(items: torch.Tensor, tasks: Sequence[Task], histories: dict[int, list[int]], m: int) -> list[np.ndarray]:
    """Each task's candidates' mean cosine with the user's ``m`` most recent ``histories`` items (oldest
    first; :func:`kerec.data.history.training_histories`) in the item embeddings ``items`` (I, d):
    :func:`kerec.finetune.soft_prompt.recent_cosine`, the feature ``soft_prompt.recency`` hands the tuned LLM,
    here without one. A user without history scores 0."""
    from kerec.finetune.soft_prompt import recent_cosine

    items = items.detach().float()
    out = []
    for t in tasks:
        recent = torch.as_tensor(histories.get(t.user, [])[-m:], dtype=torch.long)
        cos = recent_cosine(items[torch.as_tensor(t.items)][None], items[recent][None],
                            torch.ones(1, len(recent), dtype=torch.bool))
        out.append(cos[0].numpy().astype(np.float64))
    return out


def choose_weight(gnn: Sequence[np.ndarray], llm: Sequence[np.ndarray], tasks: Sequence[Task]) -> tuple[float, dict[str, float]]:
    """The fusion weight (:mod:`kerec.fusion`) with the best validation ACC over ``tasks`` (ties: the
    smaller weight), and the sweep."""
    return fusion.choose_weight(gnn, llm, lambda rows: float(rank_metrics(rows, tasks)["acc"].mean()))


def llm_scores(scorer: LetterScorer, tasks: Sequence[Task], ids: tuple[object, object], shard: Shard, *,
               batch: int, label: str, progress: bool = True) -> list[np.ndarray]:
    """Letter log-probabilities of each task's candidates, streamed into ``shard`` (resumed from it).
    ``ids``: the dataset's user and item IdMaps (external ids go to the LLM side)."""
    users_map, items_map = ids
    done = {u: lp for r in shard.records() for u, lp in zip(r["users"], r["llm"])}
    todo = [t for t in tasks if t.user not in done]
    bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), desc=label, unit="user", disable=not progress)
    for chunk in batches(todo, batch):
        logprobs = scorer([users_map.external(t.user) for t in chunk],  # type: ignore[attr-defined]
                          [[items_map.external(int(i)) for i in t.items] for t in chunk])  # type: ignore[attr-defined]
        rows = [[float(v) for v in lp[: len(t.items)]] for lp, t in zip(logprobs, chunk)]
        shard.append({"users": [t.user for t in chunk], "llm": rows})
        done.update({t.user: row for t, row in zip(chunk, rows)})
        bar.update(len(chunk))
    bar.close()
    return [np.asarray(done[t.user], dtype=np.float64) for t in tasks]
