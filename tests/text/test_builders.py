"""Item and user texts on the tiny datasets, against hand-written strings."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from kerec.data import Dataset, Interactions, KerecError
from kerec.text import item_texts, user_texts

TINY_ITEMS = [
    "Alpha (1990). genres: Drama",
    "Beta (1991). genres: Comedy",
    "Gamma (1990). genres: Drama, Comedy",
    "Delta (1995). genres: Action",
    "Epsilon (1995). genres: Drama",
    "Zeta (1999). genres: Action",
]


def _pairs(tiny: Dataset, *pairs: tuple[str, str]) -> np.ndarray:
    return np.array([(tiny.users.index(u), tiny.items.index(i)) for u, i in pairs], dtype=np.int64)


def test_item_texts_without_entity_names(tiny: Dataset) -> None:
    assert not tiny.entity_names
    assert item_texts(tiny) == TINY_ITEMS


def test_item_texts_add_named_kg_neighbours(tiny: Dataset) -> None:
    names = {"m.1": "Alpha film", "m.3": "Gamma film", "m.d1": "Dee Director", "m.g1": "Noir",
             "m.en": "English", "m.c1": "France"}
    named = dataclasses.replace(tiny, entity_names={tiny.entities.index(e): n for e, n in names.items()})
    assert item_texts(named) == [
        "Alpha (1990). genres: Drama. directed by: Dee Director. sequel: Gamma film",
        "Beta (1991). genres: Comedy. genre: Noir",
        "Gamma (1990). genres: Drama, Comedy. directed by: Dee Director. sequel of: Alpha film",
        "Delta (1995). genres: Action. genre: Noir",
        "Epsilon (1995). genres: Drama. language: English",
        "Zeta (1999). genres: Action. language: English",
    ]
    assert item_texts(named, max_entities=1)[0] == "Alpha (1990). genres: Drama. directed by: Dee Director"


def test_item_texts_take_entity_name_as_title_when_no_title_field(tiny_kgat: Dataset) -> None:
    assert item_texts(tiny_kgat) == [f"item {i}" for i in range(6)]
    named = dataclasses.replace(tiny_kgat, entity_names={0: "Film Zero", 2: "Film Two", 6: "Somebody"})
    assert item_texts(named) == [
        "Film Zero. related: Somebody, Film Two",
        "item 1",
        "Film Two. related: Somebody, Film Zero",
        "item 3", "item 4", "item 5",
    ]


def test_user_texts_most_recent_first(tiny: Dataset) -> None:
    assert user_texts(tiny, tiny.interactions.pairs()) == [
        "age: 20; gender: F. history: Delta (1995); Gamma (1990); Beta (1991); Alpha (1990)",
        "age: 30; gender: M. history: Epsilon (1995); Gamma (1990); Alpha (1990)",
        "age: 20; gender: M. history: Zeta (1999); Epsilon (1995); Delta (1995); Beta (1991)",
        "age: 30; gender: F. history: Zeta (1999)",
    ]
    assert user_texts(tiny, tiny.interactions.pairs(), max_items=2)[0] == \
        "age: 20; gender: F. history: Delta (1995); Gamma (1990)"


def test_user_texts_use_only_the_given_training_pairs(tiny: Dataset) -> None:
    # Held out: u1's Delta and Gamma, u2's Epsilon, all of u4 (who then has no history).
    train = _pairs(tiny, ("u1", "i1"), ("u1", "i2"), ("u2", "i3"), ("u2", "i1"), ("u3", "i6"), ("u3", "i2"))
    texts = user_texts(tiny, train)
    assert texts == [
        "age: 20; gender: F. history: Beta (1991); Alpha (1990)",
        "age: 30; gender: M. history: Gamma (1990); Alpha (1990)",
        "age: 20; gender: M. history: Zeta (1999); Beta (1991)",
        "age: 30; gender: F. history: none",
    ]
    assert "Delta" not in texts[0] and "Epsilon" not in texts[1]


def test_user_texts_without_timestamps_rank_by_rating_then_pair_order(tiny: Dataset) -> None:
    inter = tiny.interactions
    untimed = dataclasses.replace(tiny, interactions=Interactions(
        inter.user, inter.item, inter.rating, np.full(len(inter), np.nan)))
    train = _pairs(tiny, ("u1", "i3"), ("u1", "i4"), ("u1", "i2"), ("u1", "i1"), ("u1", "i4"))
    # ratings: i1 5, i2 4, i3 3, i4 5 -> the two 5s in train order (i4 before i1), duplicate i4 once.
    assert user_texts(untimed, train)[0] == \
        "age: 20; gender: F. history: Delta (1995); Alpha (1990); Beta (1991); Gamma (1990)"


def test_user_texts_reject_indices_outside_the_dataset(tiny: Dataset) -> None:
    with pytest.raises(KerecError, match="outside 4 users"):
        user_texts(tiny, np.array([[0, 6]]))
