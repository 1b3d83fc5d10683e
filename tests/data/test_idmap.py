from pathlib import Path

import pytest

from kerec.data import DataFormatError, IdMap, UnknownIdError


def test_first_seen_order_and_round_trip(tmp_path: Path) -> None:
    ids = IdMap("item", ["b", "a", "b", "c"])
    assert ids.ids == ("b", "a", "c") and ids.index("c") == 2 and ids.external(1) == "a"
    assert ids.indices(["c", "b"]).tolist() == [2, 0]
    ids.save(tmp_path / "items.json")
    assert IdMap.load(tmp_path / "items.json") == ids


def test_unknown_ids_are_specific() -> None:
    ids = IdMap("user", ["u1"])
    with pytest.raises(UnknownIdError) as info:
        ids.index("u2")
    assert str(info.value) == "unknown user id 'u2'; the dataset has 1 users"
    with pytest.raises(UnknownIdError, match="out of range"):
        ids.external(5)


def test_corrupt_file(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"kind": "item", "ids": ["a", "a"]}')
    with pytest.raises(DataFormatError, match="duplicate ids"):
        IdMap.load(tmp_path / "x.json")
