"""The graph-store vocabulary: node references, facts with stable ids, and paths."""
from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Literal, NamedTuple

Label = Literal["User", "Item", "Entity"]
LABELS: tuple[Label, ...] = ("User", "Item", "Entity")


class NodeRef(NamedTuple):
    """A node of the collaborative KG by label and external id (an item is merged with its KG entity)."""

    label: Label
    id: str

    @property
    def key(self) -> str:
        return f"{self.label}:{self.id}"

    @classmethod
    def parse(cls, key: str) -> NodeRef:
        label, sep, ident = key.partition(":")
        if not sep or label not in LABELS:
            raise ValueError(f"not a node key {key!r}; expected 'User:…', 'Item:…' or 'Entity:…'")
        return cls(label, ident)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return self.key


# Hub nodes recur in thousands of facts: share one NodeRef per key instead of a copy per fact.
_node = lru_cache(maxsize=1 << 17)(NodeRef.parse)


def fact_id(head: NodeRef, relation: str, tail: NodeRef) -> str:
    """A stable id from the fact's content, the same in every store and every load order."""
    digest = hashlib.blake2b(f"{head.key}|{relation}|{tail.key}".encode(), digest_size=8).hexdigest()
    return f"f{digest}"


class Fact(NamedTuple):
    """One directed KG fact ``head —relation→ tail`` with its stable id."""

    id: str
    head: NodeRef
    relation: str
    tail: NodeRef

    @classmethod
    def of(cls, head: NodeRef, relation: str, tail: NodeRef) -> Fact:
        return cls(fact_id(head, relation, tail), head, relation, tail)

    @classmethod
    def from_keys(cls, fid: str, head: str, relation: str, tail: str) -> Fact:
        return cls(fid, _node(head), relation, _node(tail))

    def row(self) -> str:
        """``"id<TAB>head key<TAB>relation<TAB>tail key"`` — the fact as one string (ids never hold tabs)."""
        return f"{self.id}\t{self.head.key}\t{self.relation}\t{self.tail.key}"

    @classmethod
    def from_row(cls, row: str) -> Fact:
        fid, head, relation, tail = row.split("\t")
        return cls.from_keys(fid, head, relation, tail)

    def other(self, node: NodeRef) -> NodeRef:
        """The endpoint that is not ``node`` (``node`` itself for a self-loop)."""
        return self.tail if node == self.head else self.head


class Path(NamedTuple):
    """A walk from a history item to a candidate item over facts (each fact's own direction kept).

    ``nodes`` has ``len(facts) + 1`` entries: source item, intermediate nodes, target item.
    Facts, paths and node references are named tuples: path search makes thousands per query, and
    tuples are several times cheaper to build, hash and compare than frozen dataclasses.
    """

    source: str
    target: str
    facts: tuple[Fact, ...]
    nodes: tuple[NodeRef, ...]

    @property
    def id(self) -> str:
        return "/".join(f.id for f in self.facts)

    @property
    def hops(self) -> int:
        return len(self.facts)

    @property
    def via(self) -> tuple[NodeRef, ...]:
        return self.nodes[1:-1]
