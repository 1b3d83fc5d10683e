"""Reader for KGAT-style datasets: ``train.txt``/``test.txt`` ("user item item …") and ``kg_final.txt``
("head relation tail"), all integer remap ids. In KGAT's convention item ``i`` *is* entity ``i``.

Optional KGAT side files give readable ids: ``user_list.txt``, ``item_list.txt``, ``entity_list.txt``,
``relation_list.txt`` ("org_id remap_id [freebase_id]", one header line).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from kerec.data.dataset import Dataset, Interactions
from kerec.errors import DataFormatError
from kerec.data.idmap import IdMap
from kerec.data.splits import Split
from kerec.data.textio import iter_lines

REQUIRED = ("train.txt", "test.txt", "kg_final.txt")


def is_kgat_dir(directory: Path) -> bool:
    return all((directory / f).is_file() for f in REQUIRED)


def _ints(path: Path, number: int, cells: list[str], what: str) -> list[int]:
    try:
        values = [int(c) for c in cells]
    except ValueError:
        raise DataFormatError(path, number, f"expected {what} as non-negative integers, got {' '.join(cells)!r}") from None
    if any(v < 0 for v in values):
        raise DataFormatError(path, number, f"expected {what} as non-negative integers, got {' '.join(cells)!r}")
    return values


def _read_pairs(path: Path) -> list[tuple[int, int]]:
    pairs: list[tuple[int, int]] = []
    saw_line = False
    for number, line in iter_lines(path):
        cells = line.split()
        if not cells:
            continue
        saw_line = True
        user, *items = _ints(path, number, cells, "'user item item …'")
        pairs.extend((user, i) for i in items)
    if not saw_line:
        raise DataFormatError(path, 1, "empty file; expected lines of 'user item item …'")
    return pairs


def _read_kg(path: Path) -> np.ndarray:
    rows: list[list[int]] = []
    for number, line in iter_lines(path):
        cells = line.split()
        if not cells:
            continue
        if len(cells) != 3:
            raise DataFormatError(path, number, f"expected 3 columns 'head relation tail', got {len(cells)}")
        rows.append(_ints(path, number, cells, "'head relation tail'"))
    if not rows:
        raise DataFormatError(path, 1, "empty file; expected lines of 'head relation tail'")
    return np.asarray(rows, dtype=np.int64)


def _read_names(path: Path) -> dict[int, list[str]]:
    """remap_id → [org_id, extra…] from a KGAT list file (first line is a header)."""
    if not path.is_file():
        return {}
    out: dict[int, list[str]] = {}
    for number, line in iter_lines(path):
        cells = line.split()
        if number == 1 or not cells:
            continue
        if len(cells) < 2:
            raise DataFormatError(path, number, "expected 'org_id remap_id …'")
        remap = _ints(path, number, cells[1:2], "remap_id")[0]
        out[remap] = [cells[0], *cells[2:]]
    return out


def load_kgat(directory: str | Path) -> Dataset:
    """Load a KGAT dataset; ``given_split`` holds its train/test files (valid is empty)."""
    directory = Path(directory)
    for f in REQUIRED:
        if not (directory / f).is_file():
            raise DataFormatError(directory / f, None, f"file not found; a KGAT dataset needs {', '.join(REQUIRED)}")
    train = _read_pairs(directory / "train.txt")
    test = _read_pairs(directory / "test.txt")
    kg = _read_kg(directory / "kg_final.txt")
    names = {k: _read_names(directory / f"{k}_list.txt") for k in ("user", "item", "entity", "relation")}

    num_users = max(u for u, _ in train + test) + 1
    num_items = max(max(i for _, i in train + test) + 1, max(names["item"], default=-1) + 1)
    num_entities = max(int(kg[:, [0, 2]].max()) + 1, num_items)
    num_relations = int(kg[:, 1].max()) + 1
    users = IdMap("user", (str(u) for u in range(num_users)))
    items = IdMap("item", (str(i) for i in range(num_items)))
    entities = IdMap("entity", (names["entity"].get(e, [str(e)])[0] for e in range(num_entities)))
    relations = IdMap("relation", (names["relation"].get(r, [str(r)])[0] for r in range(num_relations)))
    if len(entities) != num_entities or len(relations) != num_relations:
        raise DataFormatError(directory / "entity_list.txt", None, "org_id values are not unique")

    in_kg = np.zeros(num_entities, dtype=bool)
    in_kg[kg[:, 0]] = True
    in_kg[kg[:, 2]] = True
    item_entity = np.where(in_kg[:num_items], np.arange(num_items), -1).astype(np.int64)

    pairs = np.asarray(train + test, dtype=np.int64)
    n = len(pairs)
    interactions = Interactions(pairs[:, 0].copy(), pairs[:, 1].copy(), np.ones(n, np.float32),
                                np.full(n, np.nan))
    split = Split(train=pairs[: len(train)].copy(), valid=np.zeros((0, 2), np.int64),
                  test=pairs[len(train):].copy(), protocol="given")
    item_fields = {}
    if names["item"]:
        item_fields["org_id"] = [names["item"].get(i, [None])[0] for i in range(num_items)]
    digest = hashlib.sha256()
    for f in sorted(directory.glob("*.txt")):
        digest.update(f.name.encode())
        digest.update(f.read_bytes())
    return Dataset(
        name=directory.name, source=directory, users=users, items=items, entities=entities,
        relations=relations, interactions=interactions, triples=kg, item_entity=item_entity,
        item_fields=item_fields, given_split=split, fingerprint=digest.hexdigest()[:16],
    )
