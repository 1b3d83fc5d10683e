from pathlib import Path

import pytest

from kerec.data import DataFormatError, Dataset, load_dataset, load_kgat

from ..conftest import TINY_KGAT


def test_tiny_kgat_known_answer(tiny_kgat: Dataset) -> None:
    assert (tiny_kgat.num_users, tiny_kgat.num_items, len(tiny_kgat.interactions)) == (3, 6, 11)
    assert tiny_kgat.triples.tolist() == [[0, 0, 6], [2, 0, 6], [1, 1, 7], [3, 1, 7], [0, 2, 2]]
    # Item i is entity i; items 4 and 5 appear in no triple, so they are not linked.
    assert tiny_kgat.item_entity.tolist() == [0, 1, 2, 3, -1, -1]
    split = tiny_kgat.given_split
    assert split.train.tolist() == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 3], [2, 1], [2, 3], [2, 4]]
    assert split.test.tolist() == [[0, 3], [1, 4], [2, 5]]
    assert split.valid.shape == (0, 2)
    assert not tiny_kgat.interactions.has_timestamps


def test_auto_format_detects_kgat() -> None:
    assert load_dataset(TINY_KGAT).given_split is not None
    assert load_dataset(TINY_KGAT, format="kgat").num_items == 6


def test_list_files_give_names(tmp_path: Path) -> None:
    for f in TINY_KGAT.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "relation_list.txt").write_text("org_id remap_id\ndirected_by 0\ngenre 1\nsequel 2\n")
    ds = load_kgat(tmp_path)
    assert ds.relations.ids == ("directed_by", "genre", "sequel")


@pytest.mark.parametrize(("name", "text", "where", "what"), [
    ("train.txt", "0 1 x\n", "train.txt:1", "non-negative integers"),
    ("train.txt", "0 1\n-1 2\n", "train.txt:2", "non-negative integers"),
    ("kg_final.txt", "0 0 6\n1 2\n", "kg_final.txt:2", "expected 3 columns"),
    ("test.txt", "", "test.txt:1", "empty file"),
])
def test_malformed_kgat(tmp_path: Path, name: str, text: str, where: str, what: str) -> None:
    for f in TINY_KGAT.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / name).write_text(text)
    with pytest.raises(DataFormatError) as info:
        load_kgat(tmp_path)
    assert where in str(info.value) and what in str(info.value)


def test_missing_kgat_file(tmp_path: Path) -> None:
    (tmp_path / "train.txt").write_text("0 1\n")
    with pytest.raises(DataFormatError, match="test.txt: file not found"):
        load_kgat(tmp_path)
