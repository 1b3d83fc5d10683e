"""The collaborative KG built from a dataset: what a graph store holds.

Items are merged with their linked KG entity, so a fact about the entity is a fact about the item.
Node indices (``idx``) are kept per label: items and users follow the dataset's IdMaps; the other KG
nodes are the unlinked entities in entity order, then the attribute values (``class=Comedy``) from
``.item``/``.user`` fields in first-seen order.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kerec.data import Dataset
from kerec.kg.model import Fact, NodeRef
from kerec.kg.tensors import CKGTensors, edge_tensors

SOCIAL_RELATION = "social"


@dataclass(frozen=True)
class NodeRow:
    id: str
    idx: int
    name: str | None = None  # item title, attribute value, or None for ids without a known name
    entity: str | None = None  # the KG entity an item is merged with
    kind: str = ""  # entities: "kg" or "attribute"


@dataclass(frozen=True)
class InteractionRow:
    user: str
    item: str
    rating: float
    timestamp: float | None


@dataclass(frozen=True)
class CollaborativeKG:
    """Everything a graph store loads, in plain rows; ``fingerprint`` identifies the content."""

    name: str
    fingerprint: str
    users: tuple[NodeRow, ...]
    items: tuple[NodeRow, ...]
    entities: tuple[NodeRow, ...]
    interactions: tuple[InteractionRow, ...]
    facts: tuple[Fact, ...]
    duplicate_facts: int = 0

    def counts(self) -> dict[str, int]:
        return {"users": len(self.users), "items": len(self.items), "entities": len(self.entities),
                "interactions": len(self.interactions), "facts": len(self.facts)}


def attribute_relation(kind: str, field: str) -> str:
    return f"{kind}.{field}"


def build_ckg(dataset: Dataset) -> CollaborativeKG:
    """Turn a dataset into nodes, interactions and facts (KG triples, attributes, social links)."""
    item_of_entity = {int(e): i for i, e in enumerate(dataset.item_entity) if e >= 0}
    items = tuple(NodeRow(dataset.items.external(i), i, dataset.item_title(i),
                          dataset.entities.external(int(e)) if e >= 0 else None)
                  for i, e in enumerate(dataset.item_entity))
    users = tuple(NodeRow(u, i) for i, u in enumerate(dataset.users.ids))
    entities: list[NodeRow] = []
    entity_ref: dict[int, NodeRef] = {}
    for e, ext in enumerate(dataset.entities.ids):
        if e in item_of_entity:
            entity_ref[e] = NodeRef("Item", items[item_of_entity[e]].id)
        else:
            entity_ref[e] = NodeRef("Entity", ext)
            entities.append(NodeRow(ext, len(entities), dataset.entity_names.get(e), kind="kg"))

    facts: list[Fact] = []
    relations = dataset.relations.ids
    for h, r, t in dataset.triples.tolist():
        facts.append(Fact.of(entity_ref[h], relations[r], entity_ref[t]))
    attribute_ids: dict[str, NodeRef] = {}
    for kind, owners, label in (("item", dataset.items, "Item"), ("user", dataset.users, "User")):
        for a in dataset.attributes(kind):
            key = f"{a.field}={a.value}"
            if key not in attribute_ids:
                if key in dataset.entities:
                    raise ValueError(f"attribute value {key!r} collides with a KG entity id")
                attribute_ids[key] = NodeRef("Entity", key)
                entities.append(NodeRow(key, len(entities), a.value, kind="attribute"))
            facts.append(Fact.of(NodeRef(label, owners.external(a.owner)),  # type: ignore[arg-type]
                                 attribute_relation(kind, a.field), attribute_ids[key]))
    for s, t in dataset.social.tolist():
        facts.append(Fact.of(NodeRef("User", users[s].id), SOCIAL_RELATION, NodeRef("User", users[t].id)))
    unique = tuple({f.id: f for f in facts}.values())

    inter = dataset.interactions
    timestamps = np.where(np.isnan(inter.timestamp), None, inter.timestamp).tolist()
    rows = tuple(InteractionRow(users[u].id, items[i].id, float(r), t)
                 for u, i, r, t in zip(inter.user.tolist(), inter.item.tolist(), inter.rating.tolist(), timestamps))
    return CollaborativeKG(dataset.name, dataset.fingerprint, users, items, tuple(entities), rows, unique,
                           duplicate_facts=len(facts) - len(unique))


def ckg_tensors(dataset: Dataset, *, add_inverse: bool = True) -> CKGTensors:
    """The tensors a store loaded with :func:`build_ckg` exports (``MemoryStore.to_tensors``), computed from
    the dataset's arrays without building a store: the same node indices, relations and sorted edges
    (tested equal), at a fraction of the time and memory. Training uses it; serving reads the store."""
    num_items = dataset.num_items
    item_of_entity = np.full(len(dataset.entities), -1, dtype=np.int64)
    linked = dataset.item_entity >= 0
    item_of_entity[dataset.item_entity[linked]] = np.flatnonzero(linked)
    unlinked = item_of_entity < 0
    kg_nodes = int(unlinked.sum())  # entities not merged with an item: Entity nodes before the attribute values
    node = np.where(unlinked, num_items + np.cumsum(unlinked) - 1, item_of_entity)  # KG entity → node index
    names: dict[str, int] = {}  # relation name → its id here (first seen); sorted at the end, as stores export

    def rel(name: str) -> int:
        return names.setdefault(name, len(names))
    kg_rel = np.asarray([rel(r) for r in dataset.relations.ids], dtype=np.int64)
    triples = dataset.triples.reshape(-1, 3)
    heads, types, tails = [node[triples[:, 0]]], [kg_rel[triples[:, 1]]], [node[triples[:, 2]]]
    values: dict[str, int] = {}  # attribute value ("class=Comedy") → its index after the KG entities
    rows: dict[str, list[tuple[int, int, int]]] = {"item": [], "user": []}
    for kind in rows:
        for a in dataset.attributes(kind):
            key = f"{a.field}={a.value}"
            if key not in values:
                if key in dataset.entities:
                    raise ValueError(f"attribute value {key!r} collides with a KG entity id")
                values[key] = len(values)
            rows[kind].append((a.owner, rel(attribute_relation(kind, a.field)), values[key]))
    first_user = num_items + kg_nodes + len(values)
    for kind, owner_offset in (("item", 0), ("user", first_user)):
        table = np.asarray(rows[kind], dtype=np.int64).reshape(-1, 3)
        heads.append(owner_offset + table[:, 0])
        types.append(table[:, 1])
        tails.append(num_items + kg_nodes + table[:, 2])
    social = dataset.social.reshape(-1, 2)
    heads.append(first_user + social[:, 0])
    types.append(np.full(len(social), rel(SOCIAL_RELATION), dtype=np.int64))
    tails.append(first_user + social[:, 1])
    facts = np.unique(np.stack([np.concatenate(heads), np.concatenate(types), np.concatenate(tails)], 1), axis=0)
    used = np.unique(facts[:, 1])  # relations no fact uses are not exported
    local = {i: n for n, i in names.items()}
    order = sorted(used.tolist(), key=lambda i: local[i])
    sorted_id = np.zeros(len(names), dtype=np.int64)
    sorted_id[order] = np.arange(len(order))
    return edge_tensors(facts[:, 0], sorted_id[facts[:, 1]], facts[:, 2], [local[i] for i in order], num_items,
                        kg_nodes + len(values), dataset.num_users, add_inverse=add_inverse)
