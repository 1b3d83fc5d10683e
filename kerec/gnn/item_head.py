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
items. Catalogues above :data:`MAX_ITEMS` are refused with a clear error.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from kerec.data import KerecError

MAX_ITEMS = 20_000  # a (20k, 20k) float64 inverse takes ~3 GB and a few minutes; beyond, use no head


def check_size(num_items: int) -> None:
    """Refuse a catalogue the dense head cannot hold, before anything (training included) is spent on it."""
    if num_items > MAX_ITEMS:
        raise KerecError(f"the item–item head needs a dense {num_items:,}×{num_items:,} inverse; it supports at most "
                         f"{MAX_ITEMS:,} items. Set model.item_head: false (CLI: --no-item-head) for this dataset")


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
    p = torch.linalg.inv(gram + reg * torch.eye(gram.shape[0], dtype=gram.dtype))
    b = -p / p.diagonal()
    b.diagonal().zero_()
    return b.float()


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
    """What a fused score needs from the head: the training matrix ``history`` (U, I) sparse, the
    weights (I, I) and the mix ``weight`` α."""

    history: Tensor
    weights: Tensor
    weight: float

    def scores(self, users: Tensor) -> Tensor:
        """shape: (B, I) — the head's standardised scores for ``users`` (B,)."""
        # torch 2.13's sparse index_select updates its output in place outside inference mode once the matrix
        # holds ~30k+ entries, which fails under torch.inference_mode(); the rows selected are the same.
        with torch.inference_mode(False):
            rows = torch.index_select(self.history, 0, users.to(torch.long))
        return standardised(rows @ self.weights)


class ItemHead(nn.Module):
    """The head's state, saved with the retriever's ``state_dict``: ``weights`` (I, I), ``mix`` α and
    ``reg`` λ (scalars). Unfitted (α = 0) it changes nothing."""

    def __init__(self, *, num_items: int) -> None:
        super().__init__()
        # The (I, I) buffer is allocated here, with the model: 40 GB at 100,000 items. Refuse at once rather
        # than run out of memory, or train for hours and fail when the head is fitted.
        check_size(num_items)
        self.register_buffer("weights", torch.zeros(num_items, num_items))
        self.register_buffer("mix", torch.zeros(()))
        self.register_buffer("reg", torch.zeros(()))

    @property
    def active(self) -> bool:
        return float(self.mix) > 0

    def set(self, weights: Tensor, *, mix: float, reg: float) -> None:
        if weights.shape != self.weights.shape:
            raise ValueError(f"head weights of shape {tuple(weights.shape)} for {tuple(self.weights.shape)}")
        self.weights.copy_(weights)
        self.mix.fill_(mix)
        self.reg.fill_(reg)

    def term(self, train_pairs: Tensor, num_users: int) -> HeadTerm:
        return HeadTerm(interaction_matrix(train_pairs, num_users, self.weights.shape[0]), self.weights, float(self.mix))
