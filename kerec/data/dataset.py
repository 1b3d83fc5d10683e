"""The one typed dataset object every reader produces."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kerec.data.idmap import IdMap

FieldValue = str | float | tuple[str, ...] | tuple[float, ...] | None

TITLE_FIELDS = ("title", "movie_title", "item_name", "name")
YEAR_FIELDS = ("release_year", "year")


@dataclass(frozen=True)
class Interactions:
    """Parallel arrays, one row per interaction.

    Shapes: ``user``, ``item``: (n,) int64 indices into the dataset's IdMaps; ``rating``: (n,) float32
    (1.0 where the source has none); ``timestamp``: (n,) float64 (NaN where the source has none).
    """

    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray
    timestamp: np.ndarray

    def __len__(self) -> int:
        return int(self.user.shape[0])

    @property
    def has_timestamps(self) -> bool:
        return len(self) > 0 and not bool(np.isnan(self.timestamp).any())

    def pairs(self) -> np.ndarray:
        """shape: (n, 2), dtype: int64 — (user, item) per interaction."""
        return np.stack([self.user, self.item], axis=1)


@dataclass(frozen=True)
class Attribute:
    """One readable fact from a feature table: ``owner`` (item or user index) has ``value`` for ``field``."""

    owner_kind: str  # "item" | "user"
    owner: int
    field: str
    value: str


@dataclass
class Dataset:
    """A validated dataset: interactions, side features, KG triples and the item ↔ entity alignment.

    ``triples``: shape (T, 3), dtype int64 — (head entity, relation, tail entity) indices.
    ``item_entity``: shape (num_items,), dtype int64 — the linked entity index, or -1.
    ``social``: shape (S, 2), dtype int64 — (source user, target user) links from a ``.net`` file.
    ``item_fields`` / ``user_fields``: field name → one value per item / user (None when absent).
    ``attribute_fields``: the ``.item``/``.user`` fields that become readable KG facts.
    ``given_split``: the train/test split a format ships with (KGAT's train.txt/test.txt), else None.
    """

    name: str
    source: Path | None
    users: IdMap
    items: IdMap
    entities: IdMap
    relations: IdMap
    interactions: Interactions
    triples: np.ndarray
    item_entity: np.ndarray
    social: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    item_fields: Mapping[str, Sequence[FieldValue]] = field(default_factory=dict)
    user_fields: Mapping[str, Sequence[FieldValue]] = field(default_factory=dict)
    attribute_fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    entity_names: Mapping[int, str] = field(default_factory=dict)
    given_split: object | None = None  # kerec.data.splits.Split; typed loosely to avoid a cycle
    fingerprint: str = ""

    @property
    def num_users(self) -> int:
        return len(self.users)

    @property
    def num_items(self) -> int:
        return len(self.items)

    @property
    def num_linked_items(self) -> int:
        return int((self.item_entity >= 0).sum())

    def item_title(self, item: int) -> str:
        """A readable name for item index ``item``: "Toy Story (1995)", or the external id."""
        title = _first_field(self.item_fields, TITLE_FIELDS, item)
        if isinstance(title, tuple):
            title = " ".join(str(t) for t in title)
        if not title:
            return f"item {self.items.external(item)}"
        year = _first_field(self.item_fields, YEAR_FIELDS, item)
        if isinstance(year, str) and year.isdigit():
            return f"{title} ({year})"
        return str(title)

    def attributes(self, kind: str) -> list[Attribute]:
        """The readable facts of the ``attribute_fields`` of ``kind`` ("item" or "user")."""
        table = self.item_fields if kind == "item" else self.user_fields
        out: list[Attribute] = []
        for name in self.attribute_fields.get(kind, ()):
            for owner, value in enumerate(table[name]):
                values = value if isinstance(value, tuple) else (value,)
                for v in values:
                    if v is not None and str(v) != "":
                        out.append(Attribute(kind, owner, name, str(v)))
        return out

    def describe(self) -> dict[str, int]:
        """The counts ``kerec data info`` prints."""
        return {
            "users": self.num_users,
            "items": self.num_items,
            "interactions": len(self.interactions),
            "kg_triples": int(self.triples.shape[0]),
            "kg_entities": len(self.entities),
            "kg_relations": len(self.relations),
            "item_entity_links": self.num_linked_items,
            "social_links": int(self.social.shape[0]),
            "item_attribute_facts": len(self.attributes("item")),
            "user_attribute_facts": len(self.attributes("user")),
        }

    def with_linked_items_only(self) -> Dataset:
        """The same dataset with interactions restricted to KG-linked items (RecBole's KG-model view).

        Item ids and indices are unchanged; only interactions with unlinked items are dropped.
        """
        keep = self.item_entity[self.interactions.item] >= 0
        inter = Interactions(*(a[keep] for a in (self.interactions.user, self.interactions.item,
                                                 self.interactions.rating, self.interactions.timestamp)))
        return Dataset(**{**self.__dict__, "interactions": inter, "given_split": None,
                          "fingerprint": self.fingerprint + ":linked-only"})


def _first_field(table: Mapping[str, Sequence[FieldValue]], names: Sequence[str], row: int) -> FieldValue:
    for name in names:
        if name in table:
            return table[name][row]
    return None
