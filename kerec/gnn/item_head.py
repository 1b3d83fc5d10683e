r"""A closed-form item–item head fused into a retriever's scores after training.

EASE (Steck, WWW 2019) is the item–item model

.. math:: B = \arg\min_B \|X - XB\|_F^2 + \lambda \|B\|_F^2 \quad \text{s.t. } \mathrm{diag}(B) = 0,
          \qquad B = -P / \mathrm{diag}(P),\; P = (X^\top X + \lambda I)^{-1},

with ``X`` the (U, I) 0/1 matrix of training interactions: a user's score of item ``j`` is
:math:`\sum_{i \in \mathrm{train}(u)} B_{ij}`. It is full-rank and has negative weights, where the GNN's
scores are a rank-``d`` dot product; the two make different errors, and their mix ranks better than
either alone (the validation search is in ``eval/results/retriever-head/``). Fusion is per user:

.. math:: s(u, j) = z_u(e_u \cdot e_j) + \alpha\, z_u\big((XB)_{uj}\big),

``z_u`` standardising over all items of the user's row, so ``α`` does not depend on either part's scale.
``λ`` and ``α`` are chosen on the validation split (:func:`kerec.gnn.pipeline.fit_item_head`); ``α = 0`` is
the GNN alone. The GNN is trained without the head (the head has no gradient-trained parameters), and
the KG fact scores stay the GNN's.

Cost: ``P`` is a dense (I, I) inverse, O(I³) time and O(I²) memory: about a second for a few thousand
items. Above :data:`MAX_ITEMS` (10,000) items the head is EASE over the catalogue's ``MAX_ITEMS`` most popular
training items (its *support*; the other items get head score 0): with popularity as skewed as real
catalogues', those items hold most interactions. On ml-100k (``eval/results/head_support/ml-100k``,
validation NDCG@10) EASE over the 1,000 most popular of 1,682 items (96% of the training pairs) fused at
0.2700 against 0.2692 over all of them, over 500 items (78%) at 0.2667; the GNN alone 0.2461. A low-rank
head (PureSVD, rank 16–256) and an item-kNN head (cosine, top 20–200 neighbours), tried by hand on RecBole's
split with the default retriever, fused at best at 0.2693 and 0.2681 where EASE reached 0.2769, and were left
out: what the head adds is EASE's full-rank, negative weights.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from kerec.data import KerecError

# The head's largest support. A (20k, 20k) float64 fit passed a 10 GiB memory guard (eval/results/scale) and
# takes ~7 min per λ tried; (10k, 10k) needs ~2.4 GB and ~1 min per λ, and on a generated 10⁴-item catalogue
# 1,000 popular items already fused as well as all 10,000 (eval/results/head_support).
MAX_ITEMS = 10_000


def check_size(num_items: int) -> None:
    """Refuse a dense Gram matrix over more than :data:`MAX_ITEMS` items (the head itself goes to a support)."""
    if num_items > MAX_ITEMS:
        raise KerecError(f"the item–item head needs a dense {num_items:,}×{num_items:,} inverse; it supports at most "
                         f"{MAX_ITEMS:,} items. Set model.item_head: false (CLI: --no-item-head) for this dataset")


def popular_support(train_pairs: np.ndarray, num_items: int, size: int = MAX_ITEMS) -> Tensor:
    """shape: (min(size, I),) long, ascending — the ``size`` items with the most training pairs (ties: the
    lower index): the head's support above :data:`MAX_ITEMS` items."""
    counts = np.bincount(np.asarray(train_pairs, dtype=np.int64).reshape(-1, 2)[:, 1], minlength=num_items)
    order = np.lexsort((np.arange(num_items), -counts))[: min(size, num_items)]
    return torch.from_numpy(np.sort(order))


def on_support(train_pairs: np.ndarray, support: Tensor, num_items: int) -> np.ndarray:
    """shape: (m, 2) — the pairs whose item is in ``support``, items renumbered to their position in it."""
    pairs = np.asarray(train_pairs, dtype=np.int64).reshape(-1, 2)
    position = np.full(num_items, -1, dtype=np.int64)
    position[support.numpy()] = np.arange(len(support))
    kept = pairs[position[pairs[:, 1]] >= 0]
    return np.stack([kept[:, 0], position[kept[:, 1]]], axis=1)


def item_gram(train_pairs: np.ndarray, num_users: int, num_items: int) -> Tensor:
    """shape: (I, I) float64 — ``XᵀX`` of the 0/1 training matrix (co-occurrence counts; repeated pairs count
    once). Computed once per search: :func:`ease_weights` takes it for every λ."""
    check_size(num_items)
    x = interaction_matrix(train_pairs, num_users, num_items).double()
    with warnings.catch_warnings():  # torch's sparse product warns that its sparse support is beta
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse.mm(x.t(), x).to_dense()


def ease_weights(gram: Tensor, reg: float) -> Tensor:
    """shape: (I, I) float32 — EASE's ``B`` from the :func:`item_gram` with L2 weight ``reg`` (items
    without training interactions get zero rows and columns)."""
    if not reg > 0:
        raise KerecError(f"item head: reg must be positive, got {reg}")
    regularised = gram.clone()  # gram + λI without an (I, I) identity and a second sum: 2 fewer dense copies
    regularised.diagonal().add_(reg)
    p = torch.linalg.inv(regularised)
    del regularised
    p.div_(-p.diagonal().clone())  # B = -P / diag(P), in place
    p.diagonal().zero_()
    return p.float()


def interaction_matrix(train_pairs: np.ndarray | Tensor, num_users: int, num_items: int) -> Tensor:
    """shape: (U, I) sparse COO float, coalesced — 1 where the user has the item in ``train_pairs``
    (COO, not CSR: scoring selects users' rows, which CSR does not support)."""
    pairs = torch.as_tensor(np.unique(np.asarray(train_pairs, dtype=np.int64).reshape(-1, 2), axis=0))
    with warnings.catch_warnings():  # "sparse invariant checks are disabled": the indices are unique and in range
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_coo_tensor(pairs.T, torch.ones(len(pairs)), (num_users, num_items)).coalesce()


def standardised(scores: Tensor) -> Tensor:
    """Each row minus its mean, divided by its standard deviation (a constant row becomes 0)."""
    std = scores.std(dim=1, keepdim=True)
    return (scores - scores.mean(dim=1, keepdim=True)) / torch.where(std > 0, std, torch.ones_like(std))


@dataclass(frozen=True)
class HeadTerm:
    """What a fused score needs from the head: the training matrix ``history`` (U, S) sparse over the
    support's items, the weights (S, S) and the mix ``weight`` α; ``support`` (S,) the items they stand for,
    out of ``num_items`` (None: every item, S = I)."""

    history: Tensor
    weights: Tensor
    weight: float
    support: Tensor | None = None
    num_items: int | None = None

    def __post_init__(self) -> None:
        if self.support is not None and self.num_items is None:
            raise ValueError("a head over a support needs num_items, the size of the catalogue it scores")

    def scores(self, users: Tensor) -> Tensor:
        """shape: (B, I) — the head's standardised scores for ``users`` (B,)."""
        # torch 2.13's sparse index_select updates its output in place outside inference mode once the matrix
        # holds ~30k+ entries, which fails under torch.inference_mode(); the rows selected are the same.
        with torch.inference_mode(False):
            rows = torch.index_select(self.history, 0, users.to(torch.long))
        raw = rows @ self.weights
        if self.support is not None:
            full = torch.zeros(raw.shape[0], self.num_items, dtype=raw.dtype)
            full[:, self.support] = raw
            raw = full
        return standardised(raw)


class ItemHead(nn.Module):
    """The head's state, saved with the retriever's ``state_dict``: ``weights`` (S, S), ``mix`` α and
    ``reg`` λ (scalars); above :data:`MAX_ITEMS` items also ``support`` (S,), the items it covers
    (S = :data:`MAX_ITEMS`; below, S = I and the support is every item). Unfitted (α = 0) it changes nothing."""

    def __init__(self, *, num_items: int, max_items: int = MAX_ITEMS) -> None:
        super().__init__()
        self.num_items = num_items
        size = min(num_items, max_items)
        self.register_buffer("weights", torch.zeros(size, size))
        if size < num_items:  # only then: checkpoints of smaller catalogues keep their keys
            self.register_buffer("support", torch.arange(size))
        self.register_buffer("mix", torch.zeros(()))
        self.register_buffer("reg", torch.zeros(()))

    @property
    def partial(self) -> bool:
        """Whether the head covers only its support (the catalogue is larger than its ``max_items``)."""
        return hasattr(self, "support")

    @property
    def active(self) -> bool:
        return float(self.mix) > 0

    def set(self, weights: Tensor, *, mix: float, reg: float, support: Tensor | None = None) -> None:
        if weights.shape != self.weights.shape:
            raise ValueError(f"head weights of shape {tuple(weights.shape)} for {tuple(self.weights.shape)}")
        if self.partial != (support is not None) or (support is not None and support.shape != self.support.shape):
            raise ValueError(f"this head covers {self.weights.shape[0]:,} of {self.num_items:,} items: "
                             + ("give the support of the weights" if self.partial else "it takes no support"))
        self.weights.copy_(weights)
        if support is not None:
            self.support.copy_(support)
        self.mix.fill_(mix)
        self.reg.fill_(reg)

    def term(self, train_pairs: Tensor, num_users: int) -> HeadTerm:
        if not self.partial:
            return HeadTerm(interaction_matrix(train_pairs, num_users, self.num_items), self.weights, float(self.mix))
        pairs = on_support(np.asarray(train_pairs), self.support, self.num_items)
        return HeadTerm(interaction_matrix(pairs, num_users, len(self.support)), self.weights, float(self.mix),
                        self.support, self.num_items)
