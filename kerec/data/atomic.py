"""Reader for RecBole atomic files: ``.inter``, ``.item``, ``.user``, ``.kg``, ``.link``, ``.net``.

Each file is tab-separated with a typed header ``name:type`` (types: token, token_seq, float,
float_seq). Every row is checked before anything is built, so a bad file fails whole with its name
and line, and nothing half-read escapes.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kerec.data.dataset import Dataset, FieldValue, Interactions, TITLE_FIELDS, YEAR_FIELDS
from kerec.errors import DataFormatError
from kerec.data.idmap import IdMap
from kerec.data.textio import iter_lines

FIELD_TYPES = ("token", "token_seq", "float", "float_seq")
SUFFIXES = ("inter", "item", "user", "kg", "link", "net")


@dataclass(frozen=True)
class AtomicTable:
    """A parsed atomic file: its typed fields, and per row its 1-based line number and values."""

    path: Path
    fields: tuple[tuple[str, str], ...]
    lines: list[int]
    rows: list[tuple[FieldValue, ...]]

    def column(self, name: str) -> list[FieldValue]:
        return [row[self.position(name)] for row in self.rows]

    def position(self, name: str) -> int:
        for i, (field_name, _) in enumerate(self.fields):
            if field_name == name:
                return i
        raise DataFormatError(self.path, 1, f"missing field {name!r}; the header has "
                              f"{', '.join(f'{n}:{t}' for n, t in self.fields)}")

    def has(self, name: str) -> bool:
        return any(n == name for n, _ in self.fields)


def _parse_header(path: Path, line: str) -> tuple[tuple[str, str], ...]:
    fields = []
    for column in line.split("\t"):
        name, sep, kind = column.partition(":")
        if not sep or not name:
            raise DataFormatError(path, 1, f"header column {column!r} is not 'name:type' "
                                  f"(types: {', '.join(FIELD_TYPES)})")
        if kind not in FIELD_TYPES:
            raise DataFormatError(path, 1, f"header column {column!r} has unknown type {kind!r}; "
                                  f"expected one of {', '.join(FIELD_TYPES)}")
        fields.append((name, kind))
    names = [n for n, _ in fields]
    if len(set(names)) != len(names):
        raise DataFormatError(path, 1, f"header repeats a field name: {names}")
    return tuple(fields)


def _parse_value(path: Path, number: int, name: str, kind: str, text: str) -> FieldValue:
    if kind == "token":
        return text
    if kind == "token_seq":
        return tuple(text.split())
    try:
        if kind == "float":
            return float(text) if text.strip() else math.nan
        return tuple(float(v) for v in text.split())
    except ValueError:
        raise DataFormatError(path, number, f"field {name!r} ({kind}) expects a number, got {text!r}") from None


def read_atomic_file(path: str | Path) -> AtomicTable:
    """Parse one atomic file, checking the header, the column count and every typed value."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, None, "file not found")
    lines = iter_lines(path)
    first = next(lines, None)
    if first is None or not first[1].strip():
        raise DataFormatError(path, 1, "empty file; expected a header of 'name:type' columns")
    fields = _parse_header(path, first[1])
    numbers: list[int] = []
    rows: list[tuple[FieldValue, ...]] = []
    for number, line in lines:
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) != len(fields):
            raise DataFormatError(path, number, f"expected {len(fields)} tab-separated columns "
                                  f"({', '.join(n for n, _ in fields)}), got {len(cells)}")
        rows.append(tuple(_parse_value(path, number, n, k, c) for (n, k), c in zip(fields, cells)))
        numbers.append(number)
    if not rows:
        raise DataFormatError(path, 2, "no data rows after the header")
    return AtomicTable(path, fields, numbers, rows)


def find_atomic_files(directory: Path, name: str | None = None) -> dict[str, Path]:
    """The atomic files of dataset ``name`` (default: the single ``*.inter`` file's stem) in ``directory``."""
    if name is None:
        inters = sorted(directory.glob("*.inter"))
        if len(inters) != 1:
            raise DataFormatError(directory, None, f"expected exactly one *.inter file, found {len(inters)}"
                                  + ("; pass the dataset name" if inters else ""))
        name = inters[0].stem
    files = {s: directory / f"{name}.{s}" for s in SUFFIXES}
    if not files["inter"].is_file():
        raise DataFormatError(files["inter"], None, "file not found; an atomic dataset needs a .inter file")
    return {s: p for s, p in files.items() if p.is_file()}


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def _feature_table(table: AtomicTable, id_field: str, ids: IdMap, kind: str) -> dict[str, list[FieldValue]]:
    """Feature columns aligned to ``ids``; rows for ids not seen elsewhere are added to ``ids``."""
    pos = table.position(id_field)
    seen: dict[str, int] = {}
    for number, row in zip(table.lines, table.rows):
        key = str(row[pos])
        if key in seen:
            raise DataFormatError(table.path, number, f"{kind} {key!r} repeats line {seen[key]}")
        seen[key] = number
        ids.add(key)
    columns: dict[str, list[FieldValue]] = {}
    for i, (name, _) in enumerate(table.fields):
        if name == id_field:
            continue
        column: list[FieldValue] = [None] * len(ids)
        for row in table.rows:
            column[ids.index(str(row[pos]))] = row[i]
        columns[name] = column
    return columns


def _default_attribute_fields(table: AtomicTable | None, id_field: str) -> tuple[str, ...]:
    """Token fields that read as attributes: not the id, not a title, not near-unique (zip codes)."""
    if table is None:
        return ()
    chosen = []
    for i, (name, kind) in enumerate(table.fields):
        if name == id_field or name in TITLE_FIELDS or kind not in ("token", "token_seq"):
            continue
        values = {v for row in table.rows for v in (row[i] if isinstance(row[i], tuple) else (row[i],))}
        if name in YEAR_FIELDS or len(values) <= max(1, len(table.rows) // 2):
            chosen.append(name)
    return tuple(chosen)


def load_atomic(directory: str | Path, name: str | None = None, *,
                user_field: str = "user_id", item_field: str = "item_id",
                rating_field: str = "rating", time_field: str = "timestamp",
                attribute_fields: dict[str, tuple[str, ...]] | None = None) -> Dataset:
    """Load a RecBole atomic dataset from ``directory``.

    ``attribute_fields`` maps "item"/"user" to the feature fields that become KG facts; by default,
    token fields of ``.item``/``.user`` except ids, titles and near-unique fields.
    """
    directory = Path(directory)
    files = find_atomic_files(directory, name)
    tables = {s: read_atomic_file(p) for s, p in files.items()}
    inter = tables["inter"]
    users, items = IdMap("user"), IdMap("item")
    # Feature tables first so the catalogue's own order fixes item and user indices.
    item_fields = _feature_table(tables["item"], item_field, items, "item") if "item" in tables else {}
    user_fields = _feature_table(tables["user"], user_field, users, "user") if "user" in tables else {}
    interactions = _interactions(inter, users, items, user_field, item_field, rating_field, time_field,
                                 strict_items="item" in tables, strict_users="user" in tables)
    for columns, ids in ((item_fields, items), (user_fields, users)):
        for column in columns.values():
            column.extend([None] * (len(ids) - len(column)))
    entities, relations = IdMap("entity"), IdMap("relation")
    triples = _triples(tables.get("kg"), entities, relations)
    item_entity = _links(tables.get("link"), items, entities, item_field)
    social = _social(tables.get("net"), users)
    if attribute_fields is None:
        attribute_fields = {"item": _default_attribute_fields(tables.get("item"), item_field),
                            "user": _default_attribute_fields(tables.get("user"), user_field)}
    for kind, columns in (("item", item_fields), ("user", user_fields)):
        for f in attribute_fields.get(kind, ()):
            if f not in columns:
                raise DataFormatError(files.get(kind, directory), 1,
                                      f"attribute field {f!r} is not a {kind} field; have {sorted(columns)}")
    return Dataset(
        name=files["inter"].stem, source=directory, users=users, items=items, entities=entities,
        relations=relations, interactions=interactions, triples=triples, item_entity=item_entity,
        social=social, item_fields=item_fields, user_fields=user_fields,
        attribute_fields=attribute_fields, fingerprint=_digest(list(files.values())),
    )


def _interactions(table: AtomicTable, users: IdMap, items: IdMap, user_field: str, item_field: str,
                  rating_field: str, time_field: str, *, strict_items: bool, strict_users: bool) -> Interactions:
    upos, ipos = table.position(user_field), table.position(item_field)
    rpos = table.position(rating_field) if table.has(rating_field) else None
    tpos = table.position(time_field) if table.has(time_field) else None
    n = len(table.rows)
    u = np.empty(n, dtype=np.int64)
    i = np.empty(n, dtype=np.int64)
    r = np.ones(n, dtype=np.float32)
    t = np.full(n, np.nan, dtype=np.float64)
    for k, (number, row) in enumerate(zip(table.lines, table.rows)):
        user, item = str(row[upos]), str(row[ipos])
        if strict_items and item not in items:
            raise DataFormatError(table.path, number, f"item {item!r} is not in the .item file")
        if strict_users and user not in users:
            raise DataFormatError(table.path, number, f"user {user!r} is not in the .user file")
        u[k], i[k] = users.add(user), items.add(item)
        if rpos is not None:
            if not isinstance(row[rpos], float) or math.isnan(row[rpos]):
                raise DataFormatError(table.path, number, f"rating must be a number, got {row[rpos]!r}")
            r[k] = row[rpos]
        if tpos is not None:
            if not isinstance(row[tpos], float) or math.isnan(row[tpos]):
                raise DataFormatError(table.path, number, f"timestamp must be a number, got {row[tpos]!r}")
            t[k] = row[tpos]
    return Interactions(u, i, r, t)


def _triples(table: AtomicTable | None, entities: IdMap, relations: IdMap) -> np.ndarray:
    if table is None:
        return np.zeros((0, 3), dtype=np.int64)
    h, r, t = (table.position(f) for f in ("head_id", "relation_id", "tail_id"))
    out = np.empty((len(table.rows), 3), dtype=np.int64)
    for k, row in enumerate(table.rows):
        out[k] = (entities.add(str(row[h])), relations.add(str(row[r])), entities.add(str(row[t])))
    return out


def _links(table: AtomicTable | None, items: IdMap, entities: IdMap, item_field: str) -> np.ndarray:
    item_entity = np.full(len(items), -1, dtype=np.int64)
    if table is None:
        return item_entity
    ipos, epos = table.position(item_field), table.position("entity_id")
    linked_to: dict[int, int] = {}
    for number, row in zip(table.lines, table.rows):
        item, entity = str(row[ipos]), str(row[epos])
        if item not in items:
            raise DataFormatError(table.path, number, f"links unknown item {item!r} (not in .inter/.item)")
        if entity not in entities:
            raise DataFormatError(table.path, number, f"links item {item!r} to entity {entity!r}, "
                                  "which no .kg triple mentions")
        idx, e = items.index(item), entities.index(entity)
        if item_entity[idx] >= 0 and item_entity[idx] != e:
            raise DataFormatError(table.path, number, f"item {item!r} is linked to a second entity {entity!r}")
        if e in linked_to and linked_to[e] != idx:
            raise DataFormatError(table.path, number, f"entity {entity!r} is already linked to item "
                                  f"{items.external(linked_to[e])!r}")
        item_entity[idx], linked_to[e] = e, idx
    return item_entity


def _social(table: AtomicTable | None, users: IdMap) -> np.ndarray:
    if table is None:
        return np.zeros((0, 2), dtype=np.int64)
    s, t = table.position("source_id"), table.position("target_id")
    out = np.empty((len(table.rows), 2), dtype=np.int64)
    for k, (number, row) in enumerate(zip(table.lines, table.rows)):
        for value in (row[s], row[t]):
            if str(value) not in users:
                raise DataFormatError(table.path, number, f"social link names unknown user {value!r}")
        out[k] = (users.index(str(row[s])), users.index(str(row[t])))
    return out
