"""Turn a kerec split folder into a RecBole "benchmark" dataset folder.

Input: ``DIR/{train,valid,test}.tsv``, header ``user_id<TAB>item_id``, original MovieLens ids.
Output: ``ROOT/NAME/NAME.{train,valid,test}.inter`` (RecBole's ``benchmark_filename`` layout,
so RecBole uses exactly these pairs and does no filtering or splitting of its own), plus
``NAME.kg`` copied from the recbole wheel's ``dataset_example/ml-100k`` and ``NAME.link``
restricted to the split's items whose entity occurs in the KG.

No ``.item``/``.user`` file is written on purpose: RecBole adds every item of a ``.item``
file to the ranking pool, so the wheel's 1,682-item file would add the 84 unlinked items
that kerec's split does not contain and change what "full ranking" means.

Standard library only, and RecBole is located without being imported.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import asdict, dataclass
from pathlib import Path

PARTS = ("train", "valid", "test")
HEADER = ("user_id", "item_id")


class SplitError(ValueError):
    """The split folder is not a valid kerec split."""


@dataclass(frozen=True)
class SplitInfo:
    """What was read from the split and written for RecBole."""

    split_dir: str
    sha256: str  # of train.tsv + valid.tsv + test.tsv, in that order
    dataset_name: str
    dataset_dir: str
    train: int
    valid: int
    test: int
    users: int
    items: int
    linked_items: int  # split items with a .link row whose entity is in the KG
    unlinked_items: int
    kg_triples: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def recbole_ml100k_dir() -> Path:
    """The wheel's ``recbole/dataset_example/ml-100k`` folder, found without importing recbole."""
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise SplitError("recbole is not installed in this interpreter; run eval/recbole/setup.sh")
    folder = Path(list(spec.submodule_search_locations)[0]) / "dataset_example" / "ml-100k"
    if not (folder / "ml-100k.kg").is_file():
        raise SplitError(f"{folder}/ml-100k.kg not found: is this the recbole 1.2.1 wheel?")
    return folder


def read_pairs(path: Path) -> list[tuple[str, str]]:
    """Read one split file; fail with file and line on anything unexpected."""
    if not path.is_file():
        raise SplitError(f"{path} not found (a split folder holds train.tsv, valid.tsv, test.tsv)")
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or tuple(lines[0].split("\t")) != HEADER:
        found = lines[0] if lines else "<empty file>"
        raise SplitError(f"{path}:1: header must be 'user_id<TAB>item_id', found {found!r}")
    pairs = []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
            raise SplitError(f"{path}:{number}: expected two tab-separated ids, found {line!r}")
        pairs.append((fields[0].strip(), fields[1].strip()))
    if not pairs:
        raise SplitError(f"{path}: no interactions")
    return pairs


def read_split(split_dir: Path) -> tuple[dict[str, list[tuple[str, str]]], str]:
    """All three parts, checked for duplicate pairs within and across parts, and their sha256."""
    digest = hashlib.sha256()
    parts: dict[str, list[tuple[str, str]]] = {}
    seen: dict[tuple[str, str], str] = {}
    for part in PARTS:
        path = split_dir / f"{part}.tsv"
        parts[part] = read_pairs(path)
        digest.update(path.read_bytes())
        for pair in parts[part]:
            if pair in seen:
                raise SplitError(
                    f"pair user={pair[0]} item={pair[1]} occurs in {seen[pair]}.tsv and again "
                    f"in {part}.tsv: a split must not repeat a pair"
                )
            seen[pair] = part
    return parts, digest.hexdigest()


def _write_tsv(path: Path, header: str, rows: list[str]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(header + "\n" + "".join(row + "\n" for row in rows), encoding="utf-8")
    tmp.replace(path)


def write_atomic(split_dir: Path, root: Path) -> SplitInfo:
    """Write the benchmark dataset folder for ``split_dir`` under ``root`` and describe it."""
    parts, sha = read_split(split_dir)
    name = f"kerec-{sha[:12]}"
    out = root / name
    out.mkdir(parents=True, exist_ok=True)
    for part, pairs in parts.items():
        _write_tsv(
            out / f"{name}.{part}.inter",
            "user_id:token\titem_id:token",
            [f"{u}\t{i}" for u, i in pairs],
        )

    source = recbole_ml100k_dir()
    kg_lines = (source / "ml-100k.kg").read_text(encoding="utf-8").splitlines()
    entities = set()
    for line in kg_lines[1:]:
        head, _, tail = line.split("\t")
        entities.update((head, tail))
    _write_tsv(out / f"{name}.kg", kg_lines[0], kg_lines[1:])

    items = {i for pairs in parts.values() for _, i in pairs}
    link_lines = (source / "ml-100k.link").read_text(encoding="utf-8").splitlines()
    kept = [
        line
        for line in link_lines[1:]
        if line.split("\t")[0] in items and line.split("\t")[1] in entities
    ]
    # RecBole's item/entity merge assumes every .link row names an item that is in the
    # interactions and an entity that is in the KG; its own filter for that is skipped
    # in benchmark mode, so the restriction is done here.
    _write_tsv(out / f"{name}.link", link_lines[0], kept)

    return SplitInfo(
        split_dir=str(split_dir.resolve()),
        sha256=sha,
        dataset_name=name,
        dataset_dir=str(out.resolve()),
        train=len(parts["train"]),
        valid=len(parts["valid"]),
        test=len(parts["test"]),
        users=len({u for pairs in parts.values() for u, _ in pairs}),
        items=len(items),
        linked_items=len(kept),
        unlinked_items=len(items) - len(kept),
        kg_triples=len(kg_lines) - 1,
    )
