"""Readable texts for items and users, the input of the text encoder.

Item text, one per item index: ``"<title (year)>. <field>: <values>. … <relation>: <entity names>"``

* the title is :meth:`Dataset.item_title`; when the item has no title field but its KG entity has a
  name, that name is the title;
* then every other non-empty ``.item`` token / token_seq field in the catalogue's column order,
  labelled with its name (``class`` reads as ``genres``; underscores become spaces); token_seq values
  are joined by ", "; the year is left out when the title already carries it; float and float_seq
  fields are left out;
* then, only where the dataset names its KG entities, the names of the entities one hop from the item's
  entity, grouped by relation in first-seen triple order: ``directed by: A, B``; an edge pointing *into*
  the item reads ``<relation> of`` (``(m1, sequel, m3)`` gives m3 ``sequel of: <m1's name>``);
  relations named by bare numbers (KGAT) read ``related`` both ways; at most ``max_entities`` names
  per item, so texts stay inside the encoder's 256-token window.

User text: ``"<field>: <value>; …. history: <title>; <title>; …"`` — the user's ``attribute_fields``
(age, gender, occupation; near-unique ones such as zip codes are not attribute fields), then the titles
of up to ``max_items`` of the user's **training** items, most recent first (ties: higher rating first,
then earlier in ``train_pairs``); without timestamps, highest rated first (ties: order in
``train_pairs``). A user without training items gets ``history: none``. Only ``train_pairs`` decide
which items appear, so validation/test items never leak into a user's text; the ratings and timestamps
used to order them belong to those same training interactions.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from kerec.data.dataset import TITLE_FIELDS, YEAR_FIELDS, Dataset, FieldValue
from kerec.errors import KerecError

FIELD_LABELS: Mapping[str, str] = {"class": "genres", "genre": "genres"}
MAX_ENTITIES = 20
MAX_HISTORY = 10
NO_HISTORY = "history: none"
_UNNAMED_RELATION = "related"  # undirected on purpose: "related of" says nothing more


def item_texts(dataset: Dataset, *, max_entities: int = MAX_ENTITIES) -> list[str]:
    """One text per item index (``len == dataset.num_items``), built by the rules in the module doc."""
    neighbours = _entity_neighbours(dataset, max_entities) if dataset.entity_names else {}
    out = []
    for item in range(dataset.num_items):
        entity = int(dataset.item_entity[item])
        title = dataset.item_title(item)
        if not _has_field(dataset.item_fields, TITLE_FIELDS, item) and entity in dataset.entity_names:
            title = dataset.entity_names[entity]
        parts = [title, *_field_parts(dataset.item_fields, item, title)]
        parts += [f"{label}: {', '.join(names)}" for label, names in neighbours.get(entity, {}).items()]
        out.append(". ".join(parts))
    return out


def user_texts(dataset: Dataset, train_pairs: np.ndarray, *, max_items: int = MAX_HISTORY) -> list[str]:
    """One text per user index (``len == dataset.num_users``) from training pairs only.

    ``train_pairs``: shape (n, 2), dtype int — (user index, item index); pass the training split.
    """
    pairs = np.asarray(train_pairs, dtype=np.int64).reshape(-1, 2)
    if pairs.size and (pairs.min() < 0 or pairs[:, 0].max() >= dataset.num_users
                       or pairs[:, 1].max() >= dataset.num_items):
        raise KerecError(f"train_pairs hold indices outside {dataset.num_users} users × "
                         f"{dataset.num_items} items; pass (user, item) index pairs of this dataset")
    histories = _ranked_histories(dataset, pairs, max_items)
    fields = dataset.attribute_fields.get("user", ())
    out = []
    for user in range(dataset.num_users):
        features = [f"{_label(f)}: {v}" for f in fields if (v := _value_text(dataset.user_fields[f][user]))]
        items = histories.get(user)
        history = ("history: " + "; ".join(dataset.item_title(i) for i in items)) if items else NO_HISTORY
        out.append(". ".join(filter(None, ["; ".join(features), history])))
    return out


def _ranked_histories(dataset: Dataset, pairs: np.ndarray, max_items: int) -> dict[int, list[int]]:
    """user → up to ``max_items`` distinct training items, best first (rule in the module doc)."""
    rating, timestamp = _pair_signals(dataset, pairs)
    recency = np.nan_to_num(timestamp, nan=-np.inf)
    # lexsort sorts by the last key first: user, then newest, then highest rating, then position.
    order = np.lexsort((np.arange(len(pairs)), -rating, -recency, pairs[:, 0]))
    out: dict[int, list[int]] = {}
    for row in order:
        user, item = int(pairs[row, 0]), int(pairs[row, 1])
        history = out.setdefault(user, [])
        if len(history) < max_items and item not in history:
            history.append(item)
    return out


def _pair_signals(dataset: Dataset, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rating and timestamp of each pair's latest interaction; (1.0, NaN) for a pair with none.

    ``pairs``: shape (n, 2). Returns two arrays of shape (n,), dtype float64.
    """
    inter, num_items = dataset.interactions, dataset.num_items
    keys = inter.user * num_items + inter.item
    order = np.lexsort((np.nan_to_num(inter.timestamp, nan=-np.inf), keys))  # by key, then oldest first
    sorted_keys = keys[order]
    last = np.ones(len(sorted_keys), dtype=bool)
    last[:-1] = sorted_keys[1:] != sorted_keys[:-1]
    unique_keys, latest = sorted_keys[last], order[last]
    wanted = pairs[:, 0] * num_items + pairs[:, 1]
    pos = np.searchsorted(unique_keys, wanted)
    found = pos < len(unique_keys)
    found[found] = unique_keys[pos[found]] == wanted[found]
    rating = np.ones(len(wanted), dtype=np.float64)
    timestamp = np.full(len(wanted), np.nan, dtype=np.float64)
    rating[found] = inter.rating[latest[pos[found]]]
    timestamp[found] = inter.timestamp[latest[pos[found]]]
    return rating, timestamp


def _field_parts(fields: Mapping[str, Sequence[FieldValue]], item: int, title: str) -> list[str]:
    parts = []
    for name, column in fields.items():
        value = column[item]
        if name in TITLE_FIELDS or _is_number(value):
            continue
        text = _value_text(value)
        if not text or (name in YEAR_FIELDS and f"({text})" in title):
            continue
        parts.append(f"{_label(name)}: {text}")
    return parts


def _entity_neighbours(dataset: Dataset, max_entities: int) -> dict[int, dict[str, list[str]]]:
    """entity → relation label → names of named one-hop neighbours, for item entities only."""
    item_entities = {int(e) for e in dataset.item_entity if e >= 0}
    relation_names = dataset.relations.ids
    out: dict[int, dict[str, list[str]]] = {}
    counts: dict[int, int] = {}
    for head, rel, tail in dataset.triples.tolist():
        for own, other, suffix in ((head, tail, ""), (tail, head, " of")):
            name = dataset.entity_names.get(other)
            if own not in item_entities or name is None or counts.get(own, 0) >= max_entities:
                continue
            label = _relation_label(relation_names[rel])
            key = label if label == _UNNAMED_RELATION else label + suffix
            names = out.setdefault(own, {}).setdefault(key, [])
            if name not in names:
                names.append(name)
                counts[own] = counts.get(own, 0) + 1
    return out


def _relation_label(relation: str) -> str:
    """``film.film.directed_by`` → ``directed by``; a bare number (KGAT ids) → ``related``."""
    label = relation.rsplit(".", 1)[-1].rsplit("/", 1)[-1].replace("_", " ").strip()
    return _UNNAMED_RELATION if not label or label.isdigit() else label


def _label(field: str) -> str:
    return FIELD_LABELS.get(field, field.replace("_", " "))


def _value_text(value: FieldValue) -> str:
    """Token → itself; token_seq → ", "-joined; float → ``%g`` (NaN and None → "")."""
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if np.isnan(value) else f"{value:g}"
    if isinstance(value, tuple):
        return ", ".join(t for v in value if (t := _value_text(v)))
    return str(value).strip()


def _is_number(value: FieldValue) -> bool:
    """float and float_seq values: measurements, not words; they stay out of item texts."""
    return isinstance(value, float) or (isinstance(value, tuple) and any(isinstance(v, float) for v in value))


def _has_field(fields: Mapping[str, Sequence[FieldValue]], names: Sequence[str], row: int) -> bool:
    return any(name in fields and bool(fields[name][row]) for name in names)
