"""Deterministic train/valid/test splits and their TSV import/export.

A split is three arrays of (user, item) index pairs. Two protocols:

* :func:`random_split` — per user, shuffle with a seed and cut 8:1:1; the per-user counts follow
  RecBole 1.2.1's ``_calcu_split_ids``, the shuffle is numpy's (to reuse RecBole's exact split, export
  it as TSV and read it with :func:`load_split`);
* :func:`leave_one_out` — per user by timestamp: last → test, second-to-last → valid, rest → train
  (the LLaRA / K-RagRec protocol). A user with 2 interactions gets train + test, with 1 only train.

Every user who has a valid or test pair keeps at least one train pair.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kerec.errors import DataFormatError, KerecError
from kerec.data.textio import iter_lines

if TYPE_CHECKING:
    from kerec.data.dataset import Dataset

PARTS = ("train", "valid", "test")


@dataclass(frozen=True)
class Split:
    """``train``/``valid``/``test``: shape (n, 2), dtype int64 — (user index, item index) pairs."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    protocol: str = ""

    def part(self, name: str) -> np.ndarray:
        if name not in PARTS:
            raise KerecError(f"unknown split part {name!r}; expected one of {', '.join(PARTS)}")
        return getattr(self, name)

    def sizes(self) -> dict[str, int]:
        return {p: int(self.part(p).shape[0]) for p in PARTS}


def _user_groups(users: np.ndarray) -> list[np.ndarray]:
    """Row indices per user, users in ascending index order, rows in original order."""
    order = np.argsort(users, kind="stable")
    bounds = np.flatnonzero(np.diff(users[order])) + 1
    return [g for g in np.split(order, bounds) if g.size]


def split_counts(total: int, ratios: Sequence[float]) -> list[int]:
    """Per-user part sizes, as RecBole 1.2.1's ``Dataset._calcu_split_ids``.

    >>> split_counts(10, (0.8, 0.1, 0.1)), split_counts(5, (0.8, 0.1, 0.1))
    ([8, 1, 1], [3, 1, 1])
    """
    counts = [int(r * total) for r in ratios]
    counts[0] = total - sum(counts[1:])
    for i in range(1, len(ratios)):
        if counts[0] <= 1:
            break
        if 0 < ratios[-i] * total < 1:
            counts[-i] += 1
            counts[0] -= 1
    return counts


def random_split(dataset: Dataset, ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 2020) -> Split:
    """Per-user random split with ``ratios`` (train, valid, test); the same seed gives the same split."""
    if len(ratios) != 3 or any(r < 0 for r in ratios) or not np.isclose(sum(ratios), 1.0):
        raise KerecError(f"ratios must be three non-negative numbers summing to 1, got {tuple(ratios)}")
    pairs = dataset.interactions.pairs()
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for group in _user_groups(pairs[:, 0]):
        rows = group[rng.permutation(group.size)]
        a, b, _ = split_counts(rows.size, ratios)
        for k, chunk in enumerate((rows[:a], rows[a:a + b], rows[a + b:])):
            parts[k].append(chunk)
    return Split(*(_take(pairs, p) for p in parts), protocol=f"random{tuple(ratios)} seed={seed}")


def leave_one_out(dataset: Dataset) -> Split:
    """Per-user leave-one-out by timestamp (ties broken by file order)."""
    inter = dataset.interactions
    if not inter.has_timestamps:
        raise KerecError(f"dataset {dataset.name!r} has no timestamps; leave-one-out needs them "
                         "(use random_split instead)")
    pairs = inter.pairs()
    parts: list[list[np.ndarray]] = [[], [], []]
    for group in _user_groups(pairs[:, 0]):
        rows = group[np.argsort(inter.timestamp[group], kind="stable")]
        n_held = {1: 0, 2: 1}.get(rows.size, 2)
        train, held = rows[: rows.size - n_held], rows[rows.size - n_held:]
        parts[0].append(train)
        if n_held == 2:
            parts[1].append(held[:1])
        parts[2].append(held[-1:] if n_held else held)
    return Split(*(_take(pairs, p) for p in parts), protocol="leave-one-out")


def _take(pairs: np.ndarray, chunks: list[np.ndarray]) -> np.ndarray:
    rows = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)
    return pairs[np.sort(rows)]


def save_split(split: Split, dataset: Dataset, directory: str | Path) -> list[Path]:
    """Write ``train.tsv``, ``valid.tsv``, ``test.tsv`` with header ``user_id\\titem_id`` and external ids."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in PARTS:
        path = directory / f"{name}.tsv"
        users, items = dataset.users.ids, dataset.items.ids
        lines = [f"{users[u]}\t{items[i]}\n" for u, i in split.part(name)]
        path.write_text("user_id\titem_id\n" + "".join(lines), encoding="utf-8")
        written.append(path)
    return written


def load_split(dataset: Dataset, directory: str | Path) -> Split:
    """Read a split written by :func:`save_split` (or by another system in the same format).

    Every pair must be an interaction of ``dataset``; parts must be disjoint.
    """
    directory = Path(directory)
    known = {(int(u), int(i)) for u, i in dataset.interactions.pairs()}
    seen: dict[tuple[int, int], str] = {}
    parts = []
    for name in PARTS:
        path = directory / f"{name}.tsv"
        if not path.is_file():
            raise DataFormatError(path, None, f"file not found; a split folder holds {', '.join(p + '.tsv' for p in PARTS)}")
        rows: list[tuple[int, int]] = []
        for number, line in iter_lines(path):
            if number == 1:
                if line.split("\t") != ["user_id", "item_id"]:
                    raise DataFormatError(path, 1, f"expected header 'user_id<TAB>item_id', got {line!r}")
                continue
            if not line.strip():
                continue
            cells = line.split("\t")
            if len(cells) != 2:
                raise DataFormatError(path, number, f"expected 2 tab-separated columns, got {len(cells)}")
            if cells[0] not in dataset.users or cells[1] not in dataset.items:
                bad = "user" if cells[0] not in dataset.users else "item"
                raise DataFormatError(path, number, f"unknown {bad} id {cells[0 if bad == 'user' else 1]!r}")
            pair = (dataset.users.index(cells[0]), dataset.items.index(cells[1]))
            if pair not in known:
                raise DataFormatError(path, number, f"({cells[0]}, {cells[1]}) is not an interaction of {dataset.name}")
            if pair in seen:
                raise DataFormatError(path, number, f"({cells[0]}, {cells[1]}) is already in {seen[pair]}")
            seen[pair] = path.name
            rows.append(pair)
        parts.append(np.asarray(rows, dtype=np.int64).reshape(-1, 2))
    return Split(*parts, protocol=f"imported from {directory}")


@dataclass(frozen=True)
class ColdStartSplit:
    """A warm split for training plus a slice of items the model never sees interactions of.

    ``warm``: the original split without any pair of a cold item. ``cold_items``: shape (C,) int64.
    ``cold_pairs``: shape (n, 2) — every original interaction (train, valid or test) with a cold item:
    the targets when ranking the cold items from side information (text, KG) alone.
    """

    warm: Split
    cold_items: np.ndarray
    cold_pairs: np.ndarray


def cold_start_split(split: Split, num_items: int, *, fraction: float = 0.1, seed: int = 2020) -> ColdStartSplit:
    """Pick ``fraction`` of the items that have interactions (seeded) and move all their pairs out."""
    if not 0 < fraction < 1:
        raise KerecError(f"fraction must be between 0 and 1, got {fraction}")
    every = np.concatenate([split.train, split.valid, split.test])
    active = np.unique(every[:, 1])
    count = max(1, int(round(fraction * active.size)))
    cold = np.sort(np.random.default_rng(seed).choice(active, size=count, replace=False))
    is_cold = np.zeros(num_items, dtype=bool)
    is_cold[cold] = True
    warm = Split(*(p[~is_cold[p[:, 1]]] for p in (split.train, split.valid, split.test)),
                 protocol=f"{split.protocol}, {count} cold items removed")
    return ColdStartSplit(warm, cold, every[is_cold[every[:, 1]]])


def gnn_holdout(train: np.ndarray, *, fraction: float, seed: int = 2020, when: np.ndarray | None = None) -> np.ndarray:
    """shape: (n, 2) — a share ``fraction`` of each user's training pairs (``int(fraction · n_u)``, at least one
    pair left to the user), in ``train``'s order: drawn with ``seed``, or with ``when`` (n,) — the pairs'
    timestamps — each user's latest (ties: the later row).

    These stay in the training split (masked as seen, shown as history) but the GNN does not learn from them:
    an LLM tuned to correct the GNN (stacking) then trains on targets the GNN never saw, as at test time. The
    latest ones suit leave-one-out by time: they are each user's next items after those the GNN learnt from,
    as the test item is.
    """
    if not 0 < fraction < 1:
        raise KerecError(f"gnn holdout fraction must be between 0 and 1, got {fraction}")
    if when is not None and len(when) != len(train):
        raise KerecError(f"gnn holdout: {len(when)} timestamps for {len(train)} training pairs")
    rng = np.random.default_rng([seed, 4])
    keep: list[np.ndarray] = []
    for group in _user_groups(train[:, 0]):
        take = min(int(fraction * group.size), group.size - 1)
        if when is None:
            keep.append(group[rng.permutation(group.size)[:take]])
        else:  # oldest first, ties by row; the last ``take``
            keep.append(group[np.lexsort((group, when[group]))][group.size - take:])
    return _take(train, keep)


def without_pairs(pairs: np.ndarray, drop: np.ndarray) -> np.ndarray:
    """``pairs`` (n, 2) without the rows that appear in ``drop`` (m, 2), order kept."""
    if drop.size == 0:
        return pairs
    width = int(max(pairs[:, 1].max(initial=0), drop[:, 1].max(initial=0))) + 1
    return pairs[~np.isin(pairs[:, 0] * width + pairs[:, 1], drop[:, 0] * width + drop[:, 1])]


def cold_user_holdout(train: np.ndarray, users: np.ndarray, *, keep: int, seed: int = 2020) -> np.ndarray:
    """shape: (n, 2) — every training pair of ``users`` but ``keep`` of each (drawn with ``seed``), in ``train``'s
    order: held back, these users become cold (at most ``keep`` training interactions) while their valid and
    test pairs stay. Like :func:`gnn_holdout`'s pairs they stay masked as seen, so a model is not rewarded
    for ranking what the user already had."""
    if keep < 1:
        raise KerecError(f"cold users keep at least 1 training pair each, got keep={keep}")
    rng = np.random.default_rng([seed, 5])
    chosen = set(np.asarray(users, dtype=np.int64).tolist())
    held = [group[rng.permutation(group.size)[keep:]] for group in _user_groups(train[:, 0])
            if int(train[group[0], 0]) in chosen]
    return _take(train, held)
