"""Export of the collaborative KG to the tensors a GNN takes (``edge_index``, ``edge_type``)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from kerec.kg.model import Label, NodeRef

if TYPE_CHECKING:
    import torch

INTERACTED = "interacted"
INVERSE_SUFFIX = "#inverse"


@dataclass(frozen=True)
class CKGTensors:
    """The collaborative KG as a typed edge list over one node index space.

    Node layout: items ``[0, num_items)``, other KG nodes (entities, attribute values)
    ``[num_items, num_items + num_entities)``, users after them — items first, as in KGAT.

    Shapes: ``edge_index``: (2, E), dtype long (source, target); ``edge_type``: (E,), dtype long,
    indexing ``relations``. With inverses, relation ``r + R`` is the inverse of relation ``r``.
    Edges are sorted by (type, source, target), so equal graphs give equal tensors.
    """

    edge_index: torch.Tensor
    edge_type: torch.Tensor
    relations: tuple[str, ...]
    num_items: int
    num_entities: int
    num_users: int

    @property
    def num_nodes(self) -> int:
        return self.num_items + self.num_entities + self.num_users

    @property
    def num_relations(self) -> int:
        return len(self.relations)

    def offset(self, label: Label) -> int:
        return {"Item": 0, "Entity": self.num_items, "User": self.num_items + self.num_entities}[label]


def build_tensors(node_index: Mapping[Label, Mapping[str, int]], facts: Iterable[tuple[NodeRef, str, NodeRef]],
                  *, interactions: np.ndarray | None = None, add_inverse: bool = True) -> CKGTensors:
    """Edge tensors from per-label node indices and ``(head, relation, tail)`` facts.

    ``interactions``: shape (n, 2), dtype int — (user index, item index) pairs, normally the *training*
    split only, so held-out interactions never reach the GNN; None leaves user–item edges out.
    """
    sizes = {label: len(node_index.get(label, {})) for label in ("Item", "Entity", "User")}
    offsets = {"Item": 0, "Entity": sizes["Item"], "User": sizes["Item"] + sizes["Entity"]}
    rows = [(offsets[h.label] + node_index[h.label][h.id], rel, offsets[t.label] + node_index[t.label][t.id])
            for h, rel, t in facts]
    relations = sorted({rel for _, rel, _ in rows})
    rel_id = {r: i for i, r in enumerate(relations)}
    return edge_tensors(np.asarray([s for s, _, _ in rows], dtype=np.int64),
                        np.asarray([rel_id[r] for _, r, _ in rows], dtype=np.int64),
                        np.asarray([d for _, _, d in rows], dtype=np.int64), relations, sizes["Item"], sizes["Entity"],
                        sizes["User"], interactions=interactions, add_inverse=add_inverse)


def edge_tensors(src: np.ndarray, types: np.ndarray, dst: np.ndarray, relations: Sequence[str], num_items: int,
                 num_entities: int, num_users: int, *, interactions: np.ndarray | None = None,
                 add_inverse: bool = True) -> CKGTensors:
    """:class:`CKGTensors` from facts already given as node indices (``src``, ``dst`` (F,) in the layout
    above) and indices ``types`` (F,) into ``relations`` (sorted names, each used), each fact once: what
    :func:`build_tensors` does after looking nodes up."""
    relations = list(relations)
    s, d, t = (np.asarray(x, dtype=np.int64).reshape(-1) for x in (src, dst, types))
    if interactions is not None and len(interactions):
        pairs = np.asarray(interactions, dtype=np.int64).reshape(-1, 2)
        s = np.concatenate([s, num_items + num_entities + pairs[:, 0]])
        d = np.concatenate([d, pairs[:, 1]])
        t = np.concatenate([t, np.full(len(pairs), len(relations), dtype=np.int64)])
        relations.append(INTERACTED)
    if add_inverse:
        n_rel = len(relations)
        relations += [r + INVERSE_SUFFIX for r in relations]
        s, d, t = np.concatenate([s, d]), np.concatenate([d, s]), np.concatenate([t, t + n_rel])
    import torch  # here, not at module level: the graph store itself needs no torch

    order = np.lexsort((d, s, t))
    return CKGTensors(
        edge_index=torch.from_numpy(np.stack([s[order], d[order]])),
        edge_type=torch.from_numpy(t[order]),
        relations=tuple(relations), num_items=num_items, num_entities=num_entities, num_users=num_users,
    )
