"""Fusion of the retriever's and the LLM's scores over one user's candidates — the one place it is written.

``fused = (1 − w)·z(GNN) + w·z(LLM)`` with ``z`` standardising over the candidates (mean 0, standard
deviation 1; a constant row becomes 0), so ``w`` does not depend on either score's scale: ``w = 0`` is the
GNN alone, ``w = 1`` the LLM alone. ``w`` is chosen on validation (:func:`choose_weight`) and saved with the
checkpoint it belongs to. Imports nothing of kerec.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

WEIGHTS = tuple(round(0.1 * i, 1) for i in range(11))  # the validation sweep: 0.0, 0.1, … 1.0


def standardise(x: Sequence[float] | np.ndarray) -> np.ndarray:
    """shape: (N,) → (N,) float64 — ``(x − mean) / std`` over the row; a constant row becomes zeros."""
    x = np.asarray(x, dtype=np.float64)
    sd = x.std()
    return (x - x.mean()) / sd if sd > 0 else np.zeros_like(x)


def fuse(gnn: np.ndarray, llm: np.ndarray | None, weight: float) -> np.ndarray:
    """shape: (N,) — ``(1 − w)·z(gnn) + w·z(llm)``; without LLM scores, ``z(gnn)``."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"fusion weight must be between 0 and 1, got {weight}")
    if llm is None:
        return standardise(gnn)
    gnn, llm = np.asarray(gnn), np.asarray(llm)
    if gnn.shape != llm.shape:
        raise ValueError(f"GNN and LLM scores differ in shape: {gnn.shape} vs {llm.shape}")
    return (1 - weight) * standardise(gnn) + weight * standardise(llm)


def fuse_all(gnn: Sequence[np.ndarray], llm: Sequence[np.ndarray], weight: float) -> list[np.ndarray]:
    """:func:`fuse` for each user's row."""
    return [fuse(g, lp, weight) for g, lp in zip(gnn, llm)]


def choose_weight(gnn: Sequence[np.ndarray], llm: Sequence[np.ndarray],
                  quality: Callable[[list[np.ndarray]], float],
                  weights: Sequence[float] = WEIGHTS) -> tuple[float, dict[str, float]]:
    """The weight whose fused validation rows score best by ``quality`` (e.g. mean ACC; ties: the smaller
    weight, so the LLM must earn its share), and the whole sweep ``{str(w): quality}``."""
    sweep = {float(w): float(quality(fuse_all(gnn, llm, w))) for w in weights}
    best = max(sweep, key=lambda w: (sweep[w], -w))
    return best, {str(w): v for w, v in sweep.items()}
