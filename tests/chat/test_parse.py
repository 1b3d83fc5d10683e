"""kerec.chat.parse on the embedded ml-100k catalogue (real titles, genres and years)."""
from __future__ import annotations

import numpy as np
import pytest

from kerec.chat.catalogue import Catalogue, build_catalogue, display_title, title_variants
from kerec.chat.parse import parse_message
from kerec.data import Dataset


@pytest.fixture(scope="module")
def cat(ml100k: Dataset) -> Catalogue:
    return build_catalogue(ml100k, np.zeros(ml100k.num_items))


def read(cat: Catalogue, message: str) -> tuple[list[tuple[str, str]], object]:
    p = parse_message(message, cat)
    return [(cat.titles[m.item], m.polarity) for m in p.mentions], p


def test_title_keys() -> None:
    assert title_variants("Usual Suspects, The (1995)") == ["usual suspects"]
    assert title_variants("Seven (Se7en) (1995)") == ["seven", "se7en"]
    assert display_title("Usual Suspects, The (1995)") == "The Usual Suspects"


@pytest.mark.parametrize("message, expected", [
    ("something like Fargo", [("Fargo (1996)", "like")]),
    ("I loved toy story and the usual suspects", [("Toy Story (1995)", "like"), ("Usual Suspects, The (1995)", "like")]),
    ("like Fargp and toy stroy", [("Fargo (1996)", "like"), ("Toy Story (1995)", "like")]),  # typos
    ("I hated Fargo", [("Fargo (1996)", "dislike")]),
    ("nothing like Fargo", [("Fargo (1996)", "dislike")]),
    ("like Fargo but not Toy Story", [("Fargo (1996)", "like"), ("Toy Story (1995)", "exclude")]),
    ("I've seen Fargo", [("Fargo (1996)", "exclude")]),
    ("Fargo was awful", [("Fargo (1996)", "dislike")]),
    ("I liked the shawshank redemption", [("Shawshank Redemption, The (1994)", "like")]),
    ("I want heat", []),  # a one-word title in lower case without a trigger is a plain word
    ("Heat", [("Heat (1995)", "like")]),
])
def test_titles(cat: Catalogue, message: str, expected: list[tuple[str, str]]) -> None:
    assert read(cat, message)[0] == expected


@pytest.mark.parametrize("message, lo, hi, out", [
    ("nothing before 1990", 1990, None, ()), ("after 2000", 2001, None, ()), ("before 1980", None, 1979, ()),
    ("something from the 90s", 1990, 1999, ()), ("early 80s", 1980, 1983, ()), ("1980-1990", 1980, 1990, ()),
    ("between 1970 and 1975", 1970, 1975, ()), ("1990 or later", 1990, None, ()), ("until 1985", None, 1985, ()),
    ("nothing from the 80s", None, None, ((1980, 1989),)), ("the nineties", 1990, 1999, ()),
])
def test_years(cat: Catalogue, message: str, lo: int | None, hi: int | None, out: tuple) -> None:
    _, p = read(cat, message)
    assert (p.year_min, p.year_max, p.years_out) == (lo, hi, out)


def test_genres_hard_soft_and_negated(cat: Catalogue) -> None:
    _, p = read(cat, "I'd like a comedy, not a drama, no horror or sci-fi")
    assert p.genres_in == ("Comedy",) and set(p.genres_out) == {"Drama", "Horror", "Sci-Fi"}
    _, p = read(cat, "a comedy or a romance")
    assert p.genres_in == () and p.soft_genres == {"Comedy": 1.0, "Romance": 1.0}
    _, p = read(cat, "something funny but not too dark")
    assert p.soft_genres["Comedy"] > 0 and p.soft_genres["Film-Noir"] < 0 and not p.genres_in
    _, p = read(cat, "Something like Star Wars but newer")
    assert [cat.titles[m.item] for m in p.mentions] == ["Star Wars (1977)"] and p.soft_year == 1
    assert not p.genres_in  # "Wars" inside the title is not the genre War


def test_unknown_titles_more_and_reset(cat: Catalogue) -> None:
    _, p = read(cat, "I liked Foobar Quux")
    assert p.not_found == ("Foobar Quux",) and not p.mentions and not p.recognised
    assert read(cat, "none of those")[1].more and read(cat, "Start over!")[1].reset
    assert not read(cat, "hello there")[1].recognised
