"""What a retriever trains on: the user–item graph of the training split and the KG around the items.

Built from :class:`~kerec.kg.tensors.CKGTensors` (the graph store's export) plus the training pairs, so
held-out interactions never enter message passing.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from kerec.kg.ckg import SOCIAL_RELATION
from kerec.kg.tensors import INVERSE_SUFFIX, CKGTensors


@dataclass(frozen=True)
class TrainingGraph:
    """Tensors a retriever's ``forward`` receives.

    Node spaces: users ``[0, num_users)``; KG nodes ``[0, num_items + num_entities)`` with items first
    (so item ``i`` is KG node ``i``).

    Shapes:
        ``train_pairs``: (n, 2) long — (user, item) training interactions.
        ``ui_adj``: sparse (U + I, U + I) float — symmetric-normalised user–item adjacency
        D^-1/2 A D^-1/2 with users first, items after (LightGCN's propagation matrix).
        ``ui_links``: sparse CSR (U + I, U + I) float — the same graph unnormalised (0/1), for PyG's
        LightGCN, which normalises itself (a sparse input runs ~6x faster than an edge list there).
        ``kg_edge_index``: (2, E) long over KG nodes, both directions; ``kg_edge_type``: (E,) long.
        ``kg_triples``: (T, 3) long — forward facts (head, relation, tail) for the KG loss.
        ``kg_pair_node``, ``kg_pair_relation``: (P,) long — the distinct (KG node, relation) pairs whose edges
        lead into items; a KG layer's message of pair ``p`` is ``k[node_p] ⊙ e[relation_p]``, computed once
        however many items it reaches.
        ``kg_item_adj``: sparse CSR (I, P) float — row ``i`` holds ``1 / deg(i)`` at every pair with an edge into
        item ``i``: one sparse product of the (P, d) messages gives every item's relational mean. (Per-relation
        means, (R · I, d), cost 47x more rows at 10⁵ items and 16 relations.)
        ``kg_item_adj_t``: sparse CSR (P, I) — ``kg_item_adj`` transposed once, for the backward pass of
        :func:`propagate` (``ui_adj`` is symmetric: its own transpose).
        ``item_text``: (I, D_text) float or None — text vectors of the items.
    """

    num_users: int
    num_items: int
    num_entities: int
    num_relations: int
    train_pairs: torch.Tensor
    ui_adj: torch.Tensor
    ui_links: torch.Tensor
    kg_edge_index: torch.Tensor
    kg_edge_type: torch.Tensor
    kg_triples: torch.Tensor
    kg_pair_node: torch.Tensor
    kg_pair_relation: torch.Tensor
    kg_item_adj: torch.Tensor
    kg_item_adj_t: torch.Tensor
    item_text: torch.Tensor | None = None

    @property
    def num_kg_nodes(self) -> int:
        return self.num_items + self.num_entities

    def to(self, device: torch.device | str) -> TrainingGraph:
        moved = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in self.__dict__.items()}
        return TrainingGraph(**moved)


class _SparseProduct(torch.autograd.Function):
    """``a @ x`` whose backward multiplies by ``a_t``, a transpose built once: torch's own backward of a
    sparse CSR product transposes ``a`` on every call (a sort over all its entries), which at 5·10⁶
    interactions was half of each training step."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, a_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.a_t = a_t
        return a @ x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[None, None, torch.Tensor]:  # type: ignore[override]
        return None, None, ctx.a_t @ grad


def propagate(a: torch.Tensor, a_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """shape: (rows of ``a``, d) — ``a @ x`` for a constant sparse ``a`` with its transpose ``a_t`` at hand;
    gradients flow to ``x`` only."""
    if not x.requires_grad:
        return a @ x
    return _SparseProduct.apply(a, a_t, x)


def _transposed(a: torch.Tensor) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return a.to_sparse_coo().t().coalesce().to_sparse_csr()


def normalized_adjacency(pairs: np.ndarray, num_users: int, num_items: int, *,
                         friends: np.ndarray | None = None) -> torch.Tensor:
    """shape: (U + I, U + I), sparse CSR — D^-1/2 A D^-1/2 of the bipartite graph of ``pairs``; with
    ``friends`` ((S, 2) user pairs), those user–user links join the graph in both directions (the social
    view: a user's embedding also averages their friends', as in SocialLGN/DiffNet)."""
    pairs = np.unique(np.asarray(pairs, dtype=np.int64).reshape(-1, 2), axis=0)
    rows = np.concatenate([pairs[:, 0], num_users + pairs[:, 1]])
    cols = np.concatenate([num_users + pairs[:, 1], pairs[:, 0]])
    if friends is not None and len(friends):
        links = np.unique(np.sort(np.asarray(friends, dtype=np.int64).reshape(-1, 2), axis=1), axis=0)
        links = links[links[:, 0] != links[:, 1]]
        rows = np.concatenate([rows, links[:, 0], links[:, 1]])
        cols = np.concatenate([cols, links[:, 1], links[:, 0]])
    n = num_users + num_items
    degree = np.bincount(rows, minlength=n).astype(np.float64)
    inv_sqrt = np.zeros(n)
    inv_sqrt[degree > 0] = degree[degree > 0] ** -0.5
    values = inv_sqrt[rows] * inv_sqrt[cols]
    with warnings.catch_warnings():  # torch flags CSR as "beta" and sparse checks as off; both are fine here
        warnings.simplefilter("ignore", UserWarning)
        coo = torch.sparse_coo_tensor(torch.from_numpy(np.stack([rows, cols])), torch.from_numpy(values).float(), (n, n))
        return coo.coalesce().to_sparse_csr()


def social_links(tensors: CKGTensors) -> np.ndarray:
    """shape: (S, 2) — the export's social facts as (user, user) index pairs (empty when it has none)."""
    if SOCIAL_RELATION not in tensors.relations:
        return np.zeros((0, 2), dtype=np.int64)
    pick = tensors.edge_type == tensors.relations.index(SOCIAL_RELATION)
    users = tensors.edge_index[:, pick].T.numpy() - tensors.offset("User")
    return users[(users >= 0).all(1) & (users < tensors.num_users).all(1)]


def build_training_graph(tensors: CKGTensors, train_pairs: np.ndarray, *,
                         item_text: np.ndarray | None = None, use_kg: bool = True,
                         use_social: bool = False) -> TrainingGraph:
    """The training graph from a KG export (with inverse relations) and the training pairs.

    ``use_kg=False`` keeps the node spaces but drops every KG edge and triple (the "without KG" ablation).
    ``use_social=True`` adds the export's social links (``.net``) to the user–item propagation graph as
    user–user edges; an export without them is an error. User attributes are not used by the retrievers.
    """
    if tensors.num_relations % 2 or not all(r.endswith(INVERSE_SUFFIX) for r in tensors.relations[tensors.num_relations // 2:]):
        raise ValueError("build_training_graph needs a KG export with inverse relations (to_tensors(add_inverse=True))")
    kg_nodes = tensors.num_items + tensors.num_entities
    ei, et = tensors.edge_index, tensors.edge_type
    keep = (ei[0] < kg_nodes) & (ei[1] < kg_nodes)
    if not use_kg:
        keep &= False
    kg_edge_index, kg_edge_type = ei[:, keep], et[keep]
    forward = kg_edge_type < tensors.num_relations // 2
    triples = torch.stack([kg_edge_index[0, forward], kg_edge_type[forward], kg_edge_index[1, forward]], dim=1)
    pairs = np.asarray(train_pairs, dtype=np.int64).reshape(-1, 2)
    text = None if item_text is None else torch.as_tensor(item_text, dtype=torch.float32)
    if text is not None and text.shape[0] != tensors.num_items:
        raise ValueError(f"item_text has {text.shape[0]} rows for {tensors.num_items} items")
    friends = None
    if use_social:
        friends = social_links(tensors)
        if not len(friends):
            raise ValueError("use_social needs social links (a .net file) in the dataset; this one has none")
    pair_node, pair_relation, kg_item_adj = _item_pair_adjacency(kg_edge_index, kg_edge_type, tensors.num_items,
                                                                 tensors.num_relations)
    return TrainingGraph(
        num_users=tensors.num_users, num_items=tensors.num_items, num_entities=tensors.num_entities,
        num_relations=tensors.num_relations, train_pairs=torch.from_numpy(pairs),
        ui_adj=normalized_adjacency(pairs, tensors.num_users, tensors.num_items, friends=friends),
        ui_links=_bipartite_links(pairs, tensors.num_users, tensors.num_items),
        kg_edge_index=kg_edge_index.contiguous(), kg_edge_type=kg_edge_type.contiguous(),
        kg_triples=triples.contiguous(), item_text=text,
        kg_pair_node=pair_node, kg_pair_relation=pair_relation,
        kg_item_adj=kg_item_adj, kg_item_adj_t=_transposed(kg_item_adj),
    )


def _bipartite_links(pairs: np.ndarray, num_users: int, num_items: int) -> torch.Tensor:
    pairs = np.unique(pairs, axis=0)
    src = np.concatenate([pairs[:, 0], num_users + pairs[:, 1]])
    dst = np.concatenate([num_users + pairs[:, 1], pairs[:, 0]])
    n = num_users + num_items
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        coo = torch.sparse_coo_tensor(torch.from_numpy(np.stack([src, dst])), torch.ones(src.size), (n, n))
        return coo.coalesce().to_sparse_csr()


def _item_pair_adjacency(edge_index: torch.Tensor, edge_type: torch.Tensor, num_items: int,
                         num_relations: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The distinct (node, relation) pairs with an edge into an item, and the (I, P) mean operator over them."""
    into_items = edge_index[1] < num_items
    src, dst, rel = edge_index[0, into_items], edge_index[1, into_items], edge_type[into_items]
    width = max(num_relations, 1)  # a pair's key: node · width + relation
    keys, pair = torch.unique(src * width + rel, return_inverse=True)
    degree = torch.bincount(dst, minlength=num_items).clamp(min=1).float()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        coo = torch.sparse_coo_tensor(torch.stack([dst, pair]), degree[dst].reciprocal(), (num_items, keys.numel()))
        adj = coo.coalesce().to_sparse_csr()
    return keys // width, keys % width, adj
