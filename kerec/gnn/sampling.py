"""Negative sampling for BPR and the KG loss."""
from __future__ import annotations

import numpy as np


class NegativeSampler:
    """Uniform negatives that the user has not interacted with in training.

    ``pairs``: shape (n, 2) int — (user, item) training pairs; ``allowed``: optional bool mask (I,) of items
    that may be drawn (e.g. only KG-linked items under RecBole's protocol).
    """

    def __init__(self, pairs: np.ndarray, num_items: int, rng: np.random.Generator,
                 allowed: np.ndarray | None = None) -> None:
        self.num_items = num_items
        self.rng = rng
        self.seen = np.unique(pairs[:, 0].astype(np.int64) * num_items + pairs[:, 1])
        self.pool = np.flatnonzero(allowed) if allowed is not None else np.arange(num_items)

    def sample(self, users: np.ndarray, per_user: int = 1) -> np.ndarray:
        """shape: (len(users), per_user) int64 — items outside each user's training items."""
        users = np.repeat(np.asarray(users, dtype=np.int64), per_user)
        items = self.pool[self.rng.integers(0, self.pool.size, size=users.size)]
        for _ in range(100):
            clash = self._seen(users * self.num_items + items)
            if not clash.any():
                break
            items[clash] = self.pool[self.rng.integers(0, self.pool.size, size=int(clash.sum()))]
        return items.reshape(-1, per_user)

    def _seen(self, keys: np.ndarray) -> np.ndarray:
        """Membership of ``keys`` in the sorted ``seen`` keys by binary search (np.isin hashes: 30x slower)."""
        if self.seen.size == 0:
            return np.zeros(keys.shape, dtype=bool)
        at = np.minimum(np.searchsorted(self.seen, keys), self.seen.size - 1)
        return self.seen[at] == keys
