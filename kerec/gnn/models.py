"""Retrievers: plain ``nn.Module``s with keyword-only sizes; the graph arrives in ``forward``.

Every retriever maps a :class:`~kerec.gnn.graph.TrainingGraph` to final user and item embeddings,
scored by dot product. Registered names (see :data:`MODELS`): ``bpr`` (BPR-MF), ``lightgcn`` (PyG's
LightGCN), ``kerec`` (the knowledge-enhanced retriever below).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kerec.gnn.graph import TrainingGraph, propagate
from kerec.gnn.item_head import HeadTerm, ItemHead, standardised


@dataclass(frozen=True)
class Embeddings:
    """``users``: (U, d); ``items``: (I, d). Scores are ``users @ items.T``, or with a fitted item–item
    ``head`` (:mod:`kerec.gnn.item_head`) that product standardised per user plus α times the head's."""

    users: Tensor
    items: Tensor
    head: HeadTerm | None = None

    def scores(self, users: Tensor) -> Tensor:
        """shape: (B, I) — every item's score for each user in ``users`` (B,)."""
        dot = self.users[users] @ self.items.T
        if self.head is None:
            return dot
        return standardised(dot) + self.head.weight * self.head.scores(users)

    def without_head(self) -> Embeddings:
        """The GNN's own scores (the head left out)."""
        return Embeddings(self.users, self.items)


class Retriever(nn.Module):
    """Base class: ``forward(graph) -> Embeddings``; ``ego(users, items)`` gives the layer-0
    embeddings that L2 regularisation applies to; ``kg_loss`` is 0 for models without a KG."""

    def forward(self, graph: TrainingGraph) -> Embeddings:  # pragma: no cover - abstract
        raise NotImplementedError

    def ego(self, users: Tensor, items: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError  # pragma: no cover - abstract

    def kg_loss(self, graph: TrainingGraph, triples: Tensor, corrupt_tails: Tensor) -> Tensor:
        return torch.zeros((), device=triples.device)

    def align_loss(self, graph: TrainingGraph, emb: Embeddings, items: Tensor) -> Tensor:
        """L_A, the graph–text alignment of ``items``; 0 for models without text."""
        return torch.zeros((), device=items.device)

    def item_id_table(self) -> tuple[Tensor, int]:
        """The parameter holding per-item ID embeddings and the row of item 0 in it."""
        raise NotImplementedError  # pragma: no cover - abstract

    @torch.no_grad()
    def forget_items(self, items: Tensor) -> None:
        """Zero the ID embeddings of ``items`` (cold-start evaluation: what is left is side information)."""
        table, offset = self.item_id_table()
        table[offset + items] = 0


class BPRMF(Retriever):
    """Matrix factorisation trained with BPR (Rendle et al., 2009): ``score(u, i) = p_u · q_i``."""

    def __init__(self, *, num_users: int, num_items: int, embedding_dim: int = 64) -> None:
        super().__init__()
        self.user = nn.Embedding(num_users, embedding_dim)
        self.item = nn.Embedding(num_items, embedding_dim)
        nn.init.xavier_normal_(self.user.weight)
        nn.init.xavier_normal_(self.item.weight)

    def forward(self, graph: TrainingGraph) -> Embeddings:
        return Embeddings(self.user.weight, self.item.weight)

    def ego(self, users: Tensor, items: Tensor) -> tuple[Tensor, Tensor]:
        return self.user(users), self.item(items)

    def item_id_table(self) -> tuple[Tensor, int]:
        return self.item.weight, 0


class LightGCN(Retriever):
    """LightGCN (He et al., SIGIR 2020) as PyG implements it, on the user–item graph (users first)."""

    def __init__(self, *, num_users: int, num_items: int, embedding_dim: int = 64, num_layers: int = 2) -> None:
        super().__init__()
        from torch_geometric.nn.models import LightGCN as PygLightGCN

        self.num_users = num_users
        self.net = PygLightGCN(num_nodes=num_users + num_items, embedding_dim=embedding_dim, num_layers=num_layers)

    def forward(self, graph: TrainingGraph) -> Embeddings:
        x = self.net.get_embedding(graph.ui_links)
        return Embeddings(x[: self.num_users], x[self.num_users:])

    def ego(self, users: Tensor, items: Tensor) -> tuple[Tensor, Tensor]:
        w = self.net.embedding.weight
        return w[users], w[self.num_users + items]

    def item_id_table(self) -> tuple[Tensor, int]:
        return self.net.embedding.weight, self.num_users


class KnowledgeRetriever(Retriever):
    r"""kerec's retriever: relation-aware KG aggregation feeding a LightGCN over the user–item graph.

    1. Item input ``x_i = q_i + W t_i`` (``t_i`` the item's text vector, when given).
    2. KG layers over items and entities (KGIN-style relational messages, mean-aggregated):
       :math:`k^{(l+1)}_v = \mathrm{mean}_{(v, r, w)}\, k^{(l)}_w \odot e_r`, and
       :math:`k_v = \frac{1}{L_K+1}\sum_l k^{(l)}_v` (``k^{(0)}`` = item inputs and entity embeddings).
    3. LightGCN propagation of ``[p_u ; k_i]`` over the normalised user–item graph, layer mean.
    4. With ``item_head``, a closed-form item–item head (:class:`~kerec.gnn.item_head.ItemHead`, EASE) fused
       into the scores once fitted after training; training itself sees the GNN alone.

    L_K (TransE, Bordes et al. 2013) on ``k^{(0)}``: :math:`\|k_h + e_r - k_t\|^2` pushed below the
    distance of a corrupted tail, as a BPR-style softplus. Relation vectors are shared by both parts.

    Shapes: ``forward`` returns users (U, d), items (I, d).
    """

    def __init__(self, *, num_users: int, num_items: int, num_entities: int, num_relations: int,
                 embedding_dim: int = 64, num_layers: int = 2, kg_layers: int = 1,
                 text_dim: int | None = None, item_head: bool = False) -> None:
        super().__init__()
        self.num_users, self.num_items, self.kg_layers, self.num_layers = num_users, num_items, kg_layers, num_layers
        self.head = ItemHead(num_items=num_items) if item_head else None
        self.user = nn.Embedding(num_users, embedding_dim)
        self.item = nn.Embedding(num_items, embedding_dim)
        self.entity = nn.Embedding(max(num_entities, 1), embedding_dim)
        self.relation = nn.Embedding(max(num_relations, 1), embedding_dim)
        self.text = nn.Linear(text_dim, embedding_dim, bias=False) if text_dim else None
        # L_A's own view of the text (RLMRec-Con): a small MLP, so alignment does not just copy the input.
        self.text_view = nn.Sequential(nn.Linear(text_dim, embedding_dim), nn.LeakyReLU(),
                                       nn.Linear(embedding_dim, embedding_dim)) if text_dim else None
        self.align_temperature = 0.2
        for emb in (self.user, self.item, self.entity, self.relation):
            nn.init.xavier_normal_(emb.weight)

    def item_inputs(self, graph: TrainingGraph) -> Tensor:
        x = self.item.weight
        if self.text is not None:
            if graph.item_text is None:
                raise ValueError("this model was built with text_dim but the graph carries no item_text")
            x = x + self.text(graph.item_text)
        return x

    def kg_nodes(self, graph: TrainingGraph) -> Tensor:
        """shape: (I + N, d) — layer-0 KG node representations (items first)."""
        return torch.cat([self.item_inputs(graph), self.entity.weight[: graph.num_entities]])

    def knowledge(self, graph: TrainingGraph) -> Tensor:
        """shape: (I + N, d) — KG node representations after the relational aggregation layers
        (with one layer only the item rows are updated: nothing else reads the entity rows)."""
        h = self.kg_nodes(graph)
        if graph.kg_edge_index.numel() == 0 or self.kg_layers == 0:
            return h
        if self.kg_layers == 1:
            messages = h[graph.kg_pair_node] * self.relation.weight[graph.kg_pair_relation]
            items = propagate(graph.kg_item_adj, graph.kg_item_adj_t, messages)
            return torch.cat([(h[: self.num_items] + items) / 2, h[self.num_items:]])
        src, dst = graph.kg_edge_index
        degree = torch.zeros(h.shape[0], device=h.device).index_add_(0, dst, torch.ones_like(dst, dtype=h.dtype))
        inv_degree = degree.clamp(min=1).reciprocal().unsqueeze(1)
        rel = self.relation(graph.kg_edge_type)
        total = h
        for _ in range(self.kg_layers):
            h = torch.zeros_like(h).index_add_(0, dst, h[src] * rel) * inv_degree
            total = total + h
        return total / (self.kg_layers + 1)

    def forward(self, graph: TrainingGraph) -> Embeddings:
        items = self.knowledge(graph)[: self.num_items]
        x = torch.cat([self.user.weight, items])
        total = x
        for _ in range(self.num_layers):
            x = propagate(graph.ui_adj, graph.ui_adj, x)  # symmetric: its own transpose
            total = total + x
        total = total / (self.num_layers + 1)
        head = self.head.term(graph.train_pairs, self.num_users) if self.head is not None and self.head.active else None
        return Embeddings(total[: self.num_users], total[self.num_users:], head)

    def ego(self, users: Tensor, items: Tensor) -> tuple[Tensor, Tensor]:
        return self.user(users), self.item(items)

    def item_id_table(self) -> tuple[Tensor, int]:
        return self.item.weight, 0

    def kg_loss(self, graph: TrainingGraph, triples: Tensor, corrupt_tails: Tensor) -> Tensor:
        k = self.kg_nodes(graph)
        h, r, t = k[triples[:, 0]], self.relation(triples[:, 1]), k[triples[:, 2]]
        neg = k[corrupt_tails]
        pos_d = (h + r - t).pow(2).sum(-1)
        neg_d = (h + r - neg).pow(2).sum(-1)
        return F.softplus(pos_d - neg_d).mean()

    def align_loss(self, graph: TrainingGraph, emb: Embeddings, items: Tensor) -> Tensor:
        r"""L_A (RLMRec-Con, Ren et al. WWW 2024): InfoNCE between each item's final graph embedding and
        an MLP view of its text, the other items of the batch as negatives, temperature 0.2."""
        if self.text_view is None or graph.item_text is None:
            return torch.zeros((), device=items.device)
        items = torch.unique(items)
        g = F.normalize(emb.items[items], dim=-1)
        t = F.normalize(self.text_view(graph.item_text[items]), dim=-1)
        logits = g @ t.T / self.align_temperature
        return F.cross_entropy(logits, torch.arange(len(items), device=items.device))

    def fact_scores(self, graph: TrainingGraph, user_vectors: Tensor, facts: Tensor, *,
                    knowledge: Tensor | None = None) -> Tensor:
        r"""How much each KG fact speaks to each user: the affinity of the user's final vector with the
        two relational messages the fact carries, :math:`u\cdot(k_t \odot e_r) + u\cdot(k_h \odot e_{r^{-1}})`.

        Shapes: ``user_vectors`` (B, d); ``facts`` (F, 3) long (head, relation, tail) over KG nodes with
        forward relation ids; returns (B, F). ``knowledge``: :meth:`knowledge` of ``graph`` when the caller
        holds it already (inference: it is the same for every user).
        """
        k = self.knowledge(graph) if knowledge is None else knowledge
        half = graph.num_relations // 2
        to_head = k[facts[:, 2]] * self.relation(facts[:, 1])
        to_tail = k[facts[:, 0]] * self.relation(facts[:, 1] + half)
        return user_vectors @ (to_head + to_tail).T


class ItemItemOnly(Retriever):
    """EASE alone (Steck, WWW 2019): the closed-form item–item model of :mod:`kerec.gnn.item_head`
    without a GNN, as a baseline. Nothing is trained by gradient; :func:`kerec.gnn.pipeline.fit_item_head`
    fits it and chooses λ on validation."""

    def __init__(self, *, num_users: int, num_items: int) -> None:
        super().__init__()
        self.num_users, self.num_items = num_users, num_items
        self.head = ItemHead(num_items=num_items)

    def forward(self, graph: TrainingGraph) -> Embeddings:
        blank = Embeddings(torch.zeros(self.num_users, 1), torch.zeros(self.num_items, 1))
        if not self.head.active:
            return blank
        return Embeddings(blank.users, blank.items, self.head.term(graph.train_pairs, self.num_users))

    def forget_items(self, items: Tensor) -> None:
        from kerec.data import KerecError

        raise KerecError("EASE has no side information to score cold-start items with; leave it out of the "
                         "cold-start systems")


MODELS = ("bpr", "lightgcn", "kerec", "ease")


def build_model(name: str, graph: TrainingGraph, *, embedding_dim: int = 64, num_layers: int = 2,
                kg_layers: int = 1, use_text: bool = True, item_head: bool = False) -> Retriever:
    """The retriever called ``name`` sized for ``graph``; unknown names list the valid ones."""
    if name == "ease":
        return ItemItemOnly(num_users=graph.num_users, num_items=graph.num_items)
    if item_head and name != "kerec":
        from kerec.data import KerecError

        raise KerecError(f"item_head belongs to kerec's retriever; the {name!r} baseline runs as published, without it")
    if name == "bpr":
        return BPRMF(num_users=graph.num_users, num_items=graph.num_items, embedding_dim=embedding_dim)
    if name == "lightgcn":
        return LightGCN(num_users=graph.num_users, num_items=graph.num_items, embedding_dim=embedding_dim,
                        num_layers=num_layers)
    if name == "kerec":
        text_dim = graph.item_text.shape[1] if use_text and graph.item_text is not None else None
        return KnowledgeRetriever(num_users=graph.num_users, num_items=graph.num_items,
                                  num_entities=graph.num_entities, num_relations=graph.num_relations,
                                  embedding_dim=embedding_dim, num_layers=num_layers, kg_layers=kg_layers,
                                  text_dim=text_dim, item_head=item_head)
    from kerec.data import KerecError

    raise KerecError(f"unknown retriever {name!r}; choose one of {', '.join(MODELS)} (or 'pop' to evaluate popularity)")
