"""The retrieval stage as serving uses it, built once from a trained retriever: every item's score for a
user (the GNN's, with its item–item head when fitted), the same score for a profile made of items (a
session's liked items), the cold-user basis (popularity) and the GNN's relevance of KG facts.

``recommend``, chat and the batch evaluation all score through this object, so they cannot disagree.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from kerec.data.history import popularity_scores
from kerec.gnn.graph import TrainingGraph
from kerec.gnn.item_head import standardised
from kerec.gnn.models import Embeddings, KnowledgeRetriever, Retriever
from kerec.gnn.pipeline import Prepared, fact_scorer
from kerec.kg.evidence import FactScorer


class Retrieval:
    """A trained retriever on its data and split: ``prepared`` (dataset, split, KG tensors, item mask),
    ``model`` and ``graph``. The embeddings and the KG's relation vectors are computed once here."""

    def __init__(self, prepared: Prepared, model: Retriever, graph: TrainingGraph) -> None:
        self.prepared, self.model, self.graph = prepared, model, graph
        with torch.no_grad():
            self._emb = model(graph)
            self._knowledge = model.knowledge(graph) if isinstance(model, KnowledgeRetriever) else None
        self.popularity = popularity_scores(prepared.split.train, prepared.dataset.num_items).numpy().astype(np.float64)
        self.allowed_items = prepared.allowed_items

    @property
    def num_items(self) -> int:
        return self.prepared.dataset.num_items

    def user_scores(self, user: int) -> np.ndarray:
        """shape: (I,) float64 — the retriever's score of every item for user index ``user`` (the item head
        included when fitted: :meth:`Embeddings.scores`)."""
        with torch.no_grad():
            return self._emb.scores(torch.tensor([user]))[0].numpy().astype(np.float64)

    def profile_scores(self, items: Sequence[int]) -> np.ndarray:
        """shape: (I,) float64 — every item's score for a user made of ``items`` (indices): the mean of their
        vectors stands in for the user vector (in LightGCN-style models a user's vector is built from the
        vectors of their items), and a fitted item head scores the same items as that user's history row."""
        idx = torch.as_tensor(list(items), dtype=torch.long)
        if idx.numel() == 0:
            raise ValueError("a profile needs at least one item")
        with torch.no_grad():
            dot = (self._emb.items @ self._emb.items[idx].mean(0))[None]
            head = self._emb.head
            if head is None:
                return dot[0].numpy().astype(np.float64)
            row = torch.zeros(1, self.num_items)
            row[0, idx] = 1.0
            return (standardised(dot) + head.weight * standardised(row @ head.weights))[0].numpy().astype(np.float64)

    def profile_vector(self, items: Sequence[int]) -> torch.Tensor:
        """shape: (d,) — the mean vector of ``items``, the taste vector facts are scored against."""
        return self._emb.items[torch.as_tensor(list(items), dtype=torch.long)].mean(0)

    def user_vector(self, user: int) -> torch.Tensor:
        """shape: (d,) — the retriever's vector of user index ``user``."""
        return self._emb.users[user]

    def fact_scorer(self, vector: torch.Tensor, node_index: Mapping[str, Mapping[str, int]]) -> FactScorer | None:
        """The GNN's relevance of KG facts to a taste ``vector`` (d,) — a user's vector, or a profile's; None
        for models without fact scores (BPR, LightGCN)."""
        emb = Embeddings(vector.unsqueeze(0), self._emb.items)
        return fact_scorer(self.model, self.graph, emb, 0, node_index, self.prepared.graph_kg.relations,
                           knowledge=self._knowledge)

    @property
    def item_embeddings(self) -> torch.Tensor:
        """shape: (I, d) — the retriever's item vectors (for features such as recency cosine)."""
        return self._emb.items
