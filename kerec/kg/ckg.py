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
    num_items, kg_entities = dataset.num_items, len(dataset.entities)
    item_of_entity = np.full(kg_entities, -1, dtype=np.int64)
    linked = dataset.item_entity >= 0
    item_of_entity[dataset.item_entity[linked]] = np.flatnonzero(linked)
    unlinked = item_of_entity < 0
    node = np.where(unlinked, num_items + np.cumsum(unlinked) - 1, item_of_entity)  # KG entity → node index
    src, rel, dst = [node[dataset.triples[:, 0]]], [np.asarray(dataset.relations.ids, dtype=object)[dataset.triples[:, 1]]
                                                     if len(dataset.triples) else np.zeros(0, dtype=object)], [node[dataset.triples[:, 2]]]
    values: dict[str, int] = {}
    first_attribute = num_items + int(unlinked.sum())
    user_rows: list[tuple[int, str, str]] = []
    for kind in ("item", "user"):
        heads, names, tails = [], [], []
        for a in dataset.attributes(kind):
            key = f"{a.field}={a.value}"
            if key not in values:
                if key in dataset.entities:
                    raise ValueError(f"attribute value {key!r} collides with a KG entity id")
                values[key] = len(values)
            heads.append(a.owner)
            names.append(attribute_relation(kind, a.field))
            tails.append(values[key])
        if kind == "item":
            src.append(np.asarray(heads, dtype=np.int64))
            rel.append(np.asarray(names, dtype=object))
            dst.append(first_attribute + np.asarray(tails, dtype=np.int64))
        else:
            user_rows = list(zip(heads, names, tails))
    num_entities = int(unlinked.sum()) + len(values)
    users0 = num_items + num_entities
    if user_rows:
        src.append(users0 + np.asarray([h for h, _, _ in user_rows], dtype=np.int64))
        rel.append(np.asarray([r for _, r, _ in user_rows], dtype=object))
        dst.append(first_attribute + np.asarray([t for _, _, t in user_rows], dtype=np.int64))
    if len(dataset.social):
        src.append(users0 + dataset.social[:, 0])
        rel.append(np.full(len(dataset.social), SOCIAL_RELATION, dtype=object))
        dst.append(users0 + dataset.social[:, 1])
    s, d = np.concatenate(src).astype(np.int64), np.concatenate(dst).astype(np.int64)
    names, types = np.unique(np.concatenate(rel).astype(str), return_inverse=True)
    facts = np.unique(np.stack([s, types.reshape(-1).astype(np.int64), d], axis=1), axis=0)  # each fact once
    return edge_tensors(facts[:, 0], names[facts[:, 1]], facts[:, 2], num_items, num_entities, dataset.num_users,
                        add_inverse=add_inverse)
