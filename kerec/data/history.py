"""Tables derived from a dataset's interactions and a split, written once: each training pair's timestamp,
each user's training history in time order, and item popularity.

Every stage that needs one of them (the retriever's holdout, the Recommender's ``history="train"``,
fine-tuning batches, the evaluation harness, chat's cold-start basis) imports it from here.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from kerec.errors import KerecError

if TYPE_CHECKING:
    from kerec.data.dataset import Dataset


def pair_timestamps(ds: Dataset, pairs: np.ndarray) -> np.ndarray:
    """shape: (n,) — each (user, item) index pair's interaction timestamp (the last listed when a pair
    repeats; 0 when missing or when the dataset has no timestamps)."""
    inter = ds.interactions
    stamps = np.nan_to_num(np.asarray(inter.timestamp, dtype=np.float64), nan=0.0)
    when = {(int(u), int(i)): float(t) for u, i, t in zip(inter.user, inter.item, stamps)}
    return np.array([when.get((int(u), int(i)), 0.0) for u, i in pairs], dtype=np.float64)


def training_histories(ds: Dataset, train: np.ndarray) -> dict[int, list[int]]:
    """Each user's training items (indices), oldest first; equal or missing timestamps order by external
    item id, so the order is the same on every machine. Users without training pairs are absent."""
    rows = sorted((int(u), float(t), ds.items.external(int(i)), int(i))
                  for (u, i), t in zip(train, pair_timestamps(ds, train)))
    out: dict[int, list[int]] = {}
    for u, _, _, i in rows:
        out.setdefault(u, []).append(i)
    return out


def popularity_scores(train: np.ndarray, num_items: int) -> torch.Tensor:
    """Training interactions per item, shape: (num_items,), dtype: float32 — the Pop baseline's scores and
    the cold-user basis of ``recommend`` and chat."""
    if isinstance(num_items, bool) or not isinstance(num_items, int) or num_items <= 0:
        raise KerecError(f"num_items must be a positive integer, got {num_items!r}")
    pairs = np.asarray(train)
    if pairs.ndim != 2 or pairs.shape[1] != 2:
        raise KerecError(f"train must have shape (n, 2) of (user, item) index pairs, got {pairs.shape}")
    items = pairs[:, 1].astype(np.int64, copy=False)
    bad = np.flatnonzero((items < 0) | (items >= num_items))
    if bad.size:
        raise KerecError(f"train: item index {int(items[bad[0]])} at row {int(bad[0])} is out of range [0, {num_items})")
    return torch.from_numpy(np.bincount(items, minlength=num_items).astype(np.float32))
