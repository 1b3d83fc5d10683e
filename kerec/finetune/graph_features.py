"""The GNN side of fine-tuning: KG facts as index rows, and the vectors the soft prompt is built from.

A fact of the graph store (:class:`~kerec.kg.model.Fact`) becomes a row ``(head, relation, tail)`` over the
retriever's KG node space (items first, then entities) with its forward relation id — the rows
:meth:`~kerec.gnn.models.KnowledgeRetriever.fact_scores` takes. Facts touching users, or relations the
retriever never saw, have no row.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from kerec.finetune.soft_prompt import GraphInputs
from kerec.gnn.graph import TrainingGraph
from kerec.gnn.models import Embeddings, KnowledgeRetriever
from kerec.kg.model import Fact

FactRow = tuple[int, int, int]


class FactIndexer:
    """Maps store facts to KG-node rows. ``node_index``: label → external id → index as in the store's
    tensor export (:meth:`~kerec.kg.store.GraphStore.node_index`); ``relations``: the export's relation
    names (forward relations first, then their inverses); ``num_items``: entities start after the items."""

    def __init__(self, node_index: Mapping[str, Mapping[str, int]], relations: Sequence[str], num_items: int) -> None:
        self.node_index = node_index
        self.offsets = {"Item": 0, "Entity": num_items}
        self.rel_id = {r: i for i, r in enumerate(relations[: len(relations) // 2])}

    def row(self, fact: Fact) -> FactRow | None:
        """``(head, relation, tail)`` or None for a fact the retriever has no row for."""
        h, t = fact.head, fact.tail
        if h.label not in self.offsets or t.label not in self.offsets or fact.relation not in self.rel_id:
            return None
        hi, ti = self.node_index[h.label].get(h.id), self.node_index[t.label].get(t.id)
        if hi is None or ti is None:
            return None
        return (self.offsets[h.label] + hi, self.rel_id[fact.relation], self.offsets[t.label] + ti)

    def rows(self, facts: Sequence[Fact]) -> list[FactRow | None]:
        return [self.row(f) for f in facts]


def fact_vectors(model: KnowledgeRetriever, graph: TrainingGraph, knowledge: Tensor, facts: Tensor) -> Tensor:
    r"""The two relational messages a fact carries, summed: :math:`k_t \odot e_r + k_h \odot e_{r^{-1}}` —
    the vectors whose dot product with a user vector is
    :meth:`~kerec.gnn.models.KnowledgeRetriever.fact_scores`, kept differentiable here.

    Shapes: ``knowledge`` (I + N, d) from ``model.knowledge(graph)``; ``facts`` (..., 3) long; returns (..., d).
    """
    half = graph.num_relations // 2
    rel = facts[..., 1]
    return knowledge[facts[..., 2]] * model.relation(rel) + knowledge[facts[..., 0]] * model.relation(rel + half)


def require_knowledge_retriever(model: object) -> KnowledgeRetriever:
    """The soft prompt reads relation vectors and KG node states: only kerec's retriever has them."""
    if not isinstance(model, KnowledgeRetriever):
        from kerec.finetune.errors import FinetuneError

        raise FinetuneError(f"joint fine-tuning needs kerec's knowledge retriever (model 'kerec'), got "
                            f"{type(model).__name__}; train the retriever with model: kerec")
    return model


@torch.no_grad()
def cached_fact_scorer(model: KnowledgeRetriever, graph: TrainingGraph, indexer: FactIndexer):  # noqa: ANN201
    """A factory of per-user :data:`~kerec.kg.evidence.FactScorer` s that computes the GNN's node states
    once (``fact_scores`` recomputes them on every call). Facts without a row score 0."""
    was_training = model.training
    model.eval()
    emb = model(graph)
    knowledge = model.knowledge(graph)
    model.train(was_training)

    def for_user(user: int):  # noqa: ANN202 - returns a FactScorer
        u = emb.users[user]

        def score(facts: Sequence[Fact]) -> list[float]:
            rows = indexer.rows(facts)
            keep = [n for n, r in enumerate(rows) if r is not None]
            out = [0.0] * len(facts)
            if keep:
                with torch.no_grad():
                    vec = fact_vectors(model, graph, knowledge, torch.tensor([rows[n] for n in keep]))
                for n, v in zip(keep, (vec @ u).tolist()):
                    out[n] = v
            return out
        return score
    return for_user, emb


def graph_inputs(model: KnowledgeRetriever, graph: TrainingGraph, emb: Embeddings, knowledge: Tensor, users: Tensor,
                 items: Tensor, item_mask: Tensor, facts: Tensor, fact_mask: Tensor, recent: Tensor | None = None,
                 recent_mask: Tensor | None = None) -> GraphInputs:
    """The projector's inputs, differentiable in the GNN: ``emb = model(graph)`` and
    ``knowledge = model.knowledge(graph)`` from the same step.

    Shapes: ``users`` (B,) long; ``items`` (B, C) long (padding any valid index) with ``item_mask`` (B, C);
    ``facts`` (B, F, 3) long with ``fact_mask`` (B, F); ``recent`` (B, H) long item indices with
    ``recent_mask`` (B, H), optional. Vectors are the retriever's final user and item
    embeddings and :func:`fact_vectors` of its KG node states, all (…, d)."""
    return GraphInputs(user=emb.users[users], candidates=emb.items[items], candidate_mask=item_mask,
                       facts=fact_vectors(model, graph, knowledge, facts), fact_mask=fact_mask,
                       recent=None if recent is None else emb.items[recent], recent_mask=recent_mask)
