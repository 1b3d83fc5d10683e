"""Candidates for a conversation: the GNN's item vectors scored against the session's taste, hard
constraints enforced as a mask, evidence from the graph store.

Score of item *i* (every term standardised over the catalogue, ``z``), each from the Recommender's public
scoring (:meth:`~kerec.api.Recommender.gnn_scores`, :meth:`~kerec.api.Recommender.profile_scores`: the item
head included when fitted), so a known user's unconstrained request ranks as ``recommend`` ranks it:

* ``z(s_u)``, the retriever's score for a known user *u* with history, plus
* ``z(s_l)``, its score for a profile of the items liked in the chat — the temporary history: in
  LightGCN-style models a user's vector is built from the vectors of their items, so the mean of liked
  items stands in for a user the retriever never saw; minus
* ``0.5·z(s_d)`` for the profile of disliked items;
* without either of the first two: ``z(log(1 + training interactions))`` (popularity), the cold-start basis;
* soft preferences: ``+0.5·Σ_g w_g·[i has genre g]`` and ``+0.5·s·z(year_i)`` (``s`` = +1 newer, −1 older).

The mask keeps only items the retriever may recommend, with every required genre, none of the excluded
ones, inside the year range and outside excluded year spans (an item without a year fails any year
constraint), and not liked, disliked, excluded or in the known user's history. Nothing outside the
catalogue can come out: candidates are catalogue indices.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from kerec.chat.catalogue import Catalogue
from kerec.fusion import standardise
from kerec.chat.state import SessionState
from kerec.kg.evidence import Evidence

if TYPE_CHECKING:
    from kerec.api import Recommender



@dataclass(frozen=True)
class Ranked:
    """One turn's candidates, best first. ``scores``/``base`` shape (I,); ``history``: item ids evidence
    may start from (liked items, then the known user's history)."""

    items: list[int]
    scores: np.ndarray
    base: np.ndarray
    basis: str  # "gnn" or "popularity"
    history: list[str]
    user: str | None  # the known user whose taste facts are scored against (None: none with history)
    liked: tuple[str, ...]  # liked item ids, whose mean vector joins that taste
    older: list[str]  # the known user's earlier history, searched for picks the recent one links only by metadata


def constraint_mask(state: SessionState, catalogue: Catalogue, allowed: np.ndarray,
                    seen: list[int]) -> np.ndarray:
    """shape: (I,) bool — the items every hard constraint of ``state`` allows."""
    mask = allowed.copy()
    mask &= catalogue.genre_mask(state.genres_in, every=True)
    if state.genres_out:
        mask &= ~catalogue.genre_mask(state.genres_out, every=False)
    years = catalogue.years
    if state.year_min is not None or state.year_max is not None or state.years_out:
        known = ~np.isnan(years)
        mask &= known
        y = np.where(known, years, 0.0)
        if state.year_min is not None:
            mask &= y >= state.year_min
        if state.year_max is not None:
            mask &= y <= state.year_max
        for lo, hi in state.years_out:
            mask &= ~((y >= lo) & (y <= hi))
    drop = list(state.liked) + list(state.disliked) + list(state.excluded) + seen
    if drop:
        mask[np.asarray(drop, dtype=np.int64)] = False
    return mask


def rank(rec: Recommender, catalogue: Catalogue, state: SessionState, k: int) -> Ranked:
    """The top ``k`` items for ``state`` (fewer when the constraints leave fewer)."""
    items = rec.dataset.items
    user_history = rec.history(state.user) if state.user else []  # reads the graph store
    seen = items.indices(user_history).tolist() if user_history else []
    ext = items.external
    terms: list[np.ndarray] = []
    if user_history:  # the score `recommend` ranks by, item head included
        terms.append(standardise(rec.gnn_scores(state.user)))
    if state.liked:
        terms.append(standardise(rec.profile_scores([ext(i) for i in state.liked])))
    basis = "gnn" if terms else "popularity"
    base = np.sum(terms, axis=0) if terms else standardise(np.log1p(rec.popularity))
    score = base.copy()
    if state.disliked:
        score -= 0.5 * standardise(rec.profile_scores([ext(i) for i in state.disliked]))
    if state.soft_genres:
        weights = np.array([state.soft_genres.get(g, 0.0) for g in catalogue.genre_names])
        score += 0.5 * (catalogue.genres.astype(np.float64) @ weights)
    if state.soft_year:
        years = catalogue.years
        filled = np.where(np.isnan(years), np.nanmean(years) if np.isfinite(years).any() else 0.0, years)
        score += 0.5 * state.soft_year * standardise(filled)
    mask = constraint_mask(state, catalogue, rec.prepared.allowed_items, seen)
    order = np.argsort(-np.where(mask, score, -np.inf), kind="stable")
    top = [int(i) for i in order[:k] if mask[i]]
    most = rec.settings.history_for_evidence  # most recent liked / history items evidence paths start from
    history = [ext(i) for i in list(state.liked)[-most:]]
    history += [h for h in user_history[-most:] if h not in history]
    older = [h for h in user_history[-4 * most:-most] if h not in history]  # as Recommender.recommend does
    return Ranked(top, score, base, basis, history, state.user if user_history else None,
                  tuple(ext(i) for i in state.liked), older)


def evidence(rec: Recommender, ranked: Ranked) -> dict[str, list[Evidence]]:
    """Graph-store evidence for each pick (paths from the history, the pick's named attributes), scored
    by the GNN against the session's taste — the known user's vector plus the liked items' — (the degree
    prior without one)."""
    return rec.evidence_for(ranked.history, [rec.dataset.items.external(i) for i in ranked.items],
                            user=ranked.user, profile=ranked.liked, older=ranked.older)
