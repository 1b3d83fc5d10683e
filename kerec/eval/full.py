"""Full ranking of the test split, streamed in batches of users into a resumable shard.

Each batch goes through :func:`kerec.eval.evaluate_full_ranking` (its conventions: train and valid items
masked, ties by lower item index, users without test items skipped) restricted to the batch's users; the
per-user values of the configured metrics and Recall@1..``curve_max_k`` are kept.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from kerec.eval.config import FullSection
from kerec.metrics.ranking import evaluate_full_ranking
from kerec.eval.shards import Shard, batches
from kerec.eval.systems import Trained, score_fn


@dataclass(frozen=True)
class FullResult:
    """Per-user test metrics of one system at one seed. ``users``: user indices, ascending;
    ``per_user``: ``{"recall@10": (U,) array, ...}``; ``curve``: mean Recall@K for K = 1..curve_max_k."""

    users: np.ndarray
    per_user: dict[str, np.ndarray]
    curve: np.ndarray

    @property
    def means(self) -> dict[str, float]:
        return {k: float(v.mean()) for k, v in self.per_user.items()}


def _rows_of(pairs: np.ndarray, users: np.ndarray) -> np.ndarray:
    return pairs[np.isin(pairs[:, 0], users)]


def full_ranking(trained: Trained, section: FullSection, shard: Shard, *, progress: bool = True,
                 target: np.ndarray | None = None) -> FullResult:
    """Evaluate (or resume) one system's test full ranking; every finished batch is in ``shard``. ``target``:
    the (user, item) test pairs that count (default: the whole test split; a regime passes a part of it)."""
    prepared = trained.prepared
    split, ds = prepared.split, prepared.dataset
    target = split.test if target is None else target
    users = np.unique(target[:, 0])
    done = shard.done_users()
    todo = [u for u in users.tolist() if u not in done]
    keys = [f"{m}@{k}" for m in section.metrics for k in sorted(section.ks)]
    max_k = min(max(section.curve_max_k, *section.ks), int(prepared.allowed_items.sum()))
    ks = sorted(set(range(1, max_k + 1)) | set(section.ks))
    metrics = tuple(dict.fromkeys(("recall", *section.metrics)))
    scorer = score_fn(trained)
    bar = tqdm(total=len(users), initial=len(users) - len(todo), desc=f"full ranking {trained.system} seed {trained.seed}",
               unit="user", disable=not progress)
    for chunk in batches(todo, section.batch_size):
        batch = np.asarray(chunk, dtype=np.int64)
        result = evaluate_full_ranking(
            lambda u: scorer(u.numpy()), num_users=ds.num_users, num_items=ds.num_items,
            target=_rows_of(target, batch), exclude=[_rows_of(split.train, batch), _rows_of(split.valid, batch)],
            ks=ks, metrics=metrics, batch_size=len(batch), keep_per_user=True)
        assert result.per_user is not None and result.users is not None
        shard.append({"users": result.users.tolist(),
                      **{k: result.per_user[k].tolist() for k in keys},
                      "curve": [result.per_user[f"recall@{k}"].tolist() for k in range(1, max_k + 1)]})
        bar.update(len(batch))
    bar.close()
    return _collect(shard, keys, max_k)


def _collect(shard: Shard, keys: list[str], max_k: int) -> FullResult:
    records = shard.records()
    users = np.asarray([u for r in records for u in r["users"]], dtype=np.int64)
    order = np.argsort(users, kind="stable")
    per_user = {k: np.asarray([v for r in records for v in r[k]], dtype=np.float64)[order] for k in keys}
    curve_rows = np.concatenate([np.asarray(r["curve"], dtype=np.float64).T.reshape(-1, max_k) for r in records])
    return FullResult(users[order], per_user, curve_rows.mean(axis=0))
