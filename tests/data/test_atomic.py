from pathlib import Path

import numpy as np
import pytest

from kerec.data import DataFormatError, Dataset, load_atomic, load_dataset
from kerec.data.atomic import read_atomic_file

from ..conftest import TINY_ATOMIC


def test_tiny_counts_and_fields(tiny: Dataset) -> None:
    assert tiny.describe() == {
        "users": 4, "items": 6, "interactions": 12, "kg_triples": 8, "kg_entities": 10, "kg_relations": 5,
        "item_entity_links": 6, "social_links": 1, "item_attribute_facts": 13, "user_attribute_facts": 8,
    }
    assert tiny.items.ids == ("i1", "i2", "i3", "i4", "i5", "i6")  # .item order fixes the indices
    assert tiny.item_title(tiny.items.index("i3")) == "Gamma (1990)"
    assert tiny.item_fields["class"][tiny.items.index("i3")] == ("Drama", "Comedy")
    # zip_code is near-unique, so it is a feature but not a KG fact.
    assert tiny.attribute_fields == {"item": ("release_year", "class"), "user": ("age", "gender")}
    assert tiny.entities.external(int(tiny.item_entity[tiny.items.index("i4")])) == "m.4"
    assert tiny.social.tolist() == [[tiny.users.index("u1"), tiny.users.index("u2")]]
    u1 = tiny.interactions.user == tiny.users.index("u1")
    assert tiny.interactions.rating[u1].tolist() == [5, 4, 3, 5]
    assert tiny.interactions.has_timestamps


def test_attributes_expand_sequences(tiny: Dataset) -> None:
    i3 = tiny.items.index("i3")
    assert sorted((a.field, a.value) for a in tiny.attributes("item") if a.owner == i3) == [
        ("class", "Comedy"), ("class", "Drama"), ("release_year", "1990")]


def test_explicit_attribute_fields(tmp_path: Path) -> None:
    ds = load_atomic(TINY_ATOMIC, attribute_fields={"item": ("class",), "user": ()})
    assert len(ds.attributes("item")) == 7 and ds.attributes("user") == []
    with pytest.raises(DataFormatError, match="'genre' is not a item field"):
        load_atomic(TINY_ATOMIC, attribute_fields={"item": ("genre",)})


def test_linked_only_keeps_ids(ml100k: Dataset) -> None:
    linked = ml100k.with_linked_items_only()
    assert len(linked.interactions) == 97_554  # RecBole's KG-model view of ml-100k
    assert linked.items == ml100k.items


def test_embedded_default_counts(ml100k: Dataset) -> None:
    info = ml100k.describe()
    assert (info["users"], info["items"], info["interactions"], info["kg_triples"], info["item_entity_links"]) == (
        943, 1682, 100_000, 91_631, 1598)
    assert info["kg_relations"] == 24
    assert ml100k.item_title(ml100k.items.index("1")) == "Toy Story (1995)"


def _copy_tiny(tmp_path: Path, **replace: str) -> Path:
    for f in TINY_ATOMIC.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    for name, text in replace.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


INTER_HEAD = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"


@pytest.mark.parametrize(("files", "where", "what"), [
    ({"tiny.inter": "user_id\titem_id\n"}, "tiny.inter:1", "is not 'name:type'"),
    ({"tiny.inter": "user_id:token\titem_id:tok\n"}, "tiny.inter:1", "unknown type 'tok'"),
    ({"tiny.inter": INTER_HEAD + "u1\ti1\t5\t1\nu1\ti2\t5\n"}, "tiny.inter:3", "expected 4 tab-separated columns"),
    ({"tiny.inter": INTER_HEAD + "u1\ti1\tfive\t1\n"}, "tiny.inter:2", "'rating' (float) expects a number, got 'five'"),
    ({"tiny.inter": INTER_HEAD + "u1\ti1\t\t1\n"}, "tiny.inter:2", "rating must be a number"),
    ({"tiny.inter": INTER_HEAD + "u1\ti9\t5\t1\n"}, "tiny.inter:2", "item 'i9' is not in the .item file"),
    ({"tiny.inter": ""}, "tiny.inter:1", "empty file"),
    ({"tiny.inter": INTER_HEAD}, "tiny.inter:2", "no data rows"),
    ({"tiny.link": "item_id:token\tentity_id:token\ni1\tm.1\ni2\tm.404\n"}, "tiny.link:3", "entity 'm.404', which no .kg triple"),
    ({"tiny.link": "item_id:token\tentity_id:token\ni7\tm.1\n"}, "tiny.link:2", "unknown item 'i7'"),
    ({"tiny.link": "item_id:token\tentity_id:token\ni1\tm.1\ni2\tm.1\n"}, "tiny.link:3", "already linked to item 'i1'"),
    ({"tiny.kg": "head_id:token\trelation_id:token\n"}, "tiny.kg:2", "no data rows"),
    ({"tiny.kg": "head_id:token\trelation_id:token\ttail_id:token\nm.1\tr\n"}, "tiny.kg:2", "expected 3"),
    ({"tiny.item": "item_id:token\tclass:token_seq\ni1\tA\ni1\tB\n"}, "tiny.item:3", "item 'i1' repeats line 2"),
    ({"tiny.net": "source_id:token\ttarget_id:token\nu1\tu99\n"}, "tiny.net:2", "unknown user 'u99'"),
])
def test_malformed_files_name_file_and_line(tmp_path: Path, files: dict[str, str], where: str, what: str) -> None:
    folder = _copy_tiny(tmp_path, **files)
    with pytest.raises(DataFormatError) as info:
        load_atomic(folder)
    assert where in str(info.value)
    assert what in str(info.value)


def test_not_utf8_names_line(tmp_path: Path) -> None:
    folder = _copy_tiny(tmp_path)
    (folder / "tiny.item").write_bytes(b"item_id:token\tmovie_title:token_seq\ni1\tCaf\xe9\n")
    with pytest.raises(DataFormatError, match=r"tiny.item:2: not UTF-8"):
        load_atomic(folder)


def test_read_atomic_file_types(tmp_path: Path) -> None:
    path = tmp_path / "x.item"
    path.write_text("item_id:token\tscore:float\tvec:float_seq\ttags:token_seq\na\t1.5\t1 2\tx y\nb\t\t\t\n")
    table = read_atomic_file(path)
    assert table.rows[0] == ("a", 1.5, (1.0, 2.0), ("x", "y"))
    assert table.rows[1][0] == "b" and np.isnan(table.rows[1][1]) and table.rows[1][2:] == ((), ())
    assert table.lines == [2, 3]


def test_missing_folder_and_inter(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="no such dataset folder"):
        load_dataset(tmp_path / "nope")
    with pytest.raises(DataFormatError, match="expected exactly one"):
        load_dataset(tmp_path)
