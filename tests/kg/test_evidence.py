"""kerec.kg.evidence on the tiny dataset (facts listed in tests/kg/test_show.py's docstring).

Item names (title and year): i1 "Alpha (1990)", i3 "Gamma (1990)", …; Freebase ids m.* have no names.
"""
from __future__ import annotations

import math

import pytest

from kerec.data import UnknownIdError
from kerec.kg import MemoryStore
from kerec.kg.evidence import EvidenceBuilder, noun
from kerec.kg.model import NodeRef


@pytest.fixture(scope="module")
def builder(tiny_store: MemoryStore) -> EvidenceBuilder:
    return EvidenceBuilder(tiny_store)


A, G = "Alpha (1990)", "Gamma (1990)"


def texts(evidence: list) -> set[str]:
    return {e.text for e in evidence}


def test_routes_are_grouped_and_rendered_from_names(builder: EvidenceBuilder) -> None:
    ev = builder.collect(["i1"], ["i3"])["i3"]
    paths = {e.text: e for e in ev if e.kind == "path"}
    # i1 -> i3: the sequel fact; the unnamed director m.d1 (described by the films it directed);
    # class=Drama; release_year=1990.
    director = f"{G} is directed by the director of {A}"
    assert set(paths) == {f"{G} is the sequel of {A}", director, f"{G} shares the genre Drama with {A}",
                          f"{G} shares the release year 1990 with {A}"}
    assert all(e.source == "i1" and e.candidate == "i3" for e in paths.values())
    assert len(paths[director].facts) == 2 and paths[director].role == "director"
    assert paths[director].via == NodeRef("Entity", "m.d1") and paths[director].name is None
    assert paths[f"{G} shares the genre Drama with {A}"].low and not paths[director].low
    # Every fact id of the evidence is real, and touches the candidate or the history item.
    store = builder.store
    for e in ev:
        found = store.facts(list(e.fact_ids))
        assert set(found) == set(e.fact_ids)
    # Raw Freebase ids never appear as names.
    assert not any("m." in e.text for e in ev)


def test_named_attributes_of_the_candidate(builder: EvidenceBuilder) -> None:
    ev = builder.collect([], ["i3"])["i3"]
    assert texts(ev) == {f"{G} — genre: Drama", f"{G} — genre: Comedy", f"{G} — release year: 1990"}
    assert all(e.kind == "attribute" and e.source is None and e.low for e in ev)


def test_information_orders_before_the_scorer(builder: EvidenceBuilder) -> None:
    ev = builder.collect(["i1"], ["i3"], attributes=False)
    # The release-year fact scores 10, every other fact 1; the director and the sequel still lead, as they
    # say more (a person and a sequel, through a node linking 2 films, against catalogue metadata).
    ranked = builder.rank(ev, lambda facts: [10.0 if f.relation == "item.release_year" else 1.0 for f in facts], top=4)
    roles = [e.role for e in ranked["i3"]]
    assert set(roles[:2]) == {"director", "sequel"} and roles[2:] == ["release year", "genre"]
    assert ranked["i3"][2].score == 10.0 and ranked["i3"][0].score == 1.0


def test_prior_prefers_rare_linking_nodes(builder: EvidenceBuilder) -> None:
    ranked = builder.rank(builder.collect(["i1"], ["i3"], attributes=False), top=4)["i3"]
    scores = {e.text: e.score for e in ranked}
    # release_year=1990 has 2 facts, class=Drama 3, m.d1 3 (two films and a nationality).
    assert scores[f"{G} shares the release year 1990 with {A}"] == pytest.approx(1 / math.log(4))
    assert scores[f"{G} shares the genre Drama with {A}"] == pytest.approx(1 / math.log(5))


def test_every_candidate_gets_a_list_and_unknown_items_fail(builder: EvidenceBuilder) -> None:
    ev = builder.collect(["i1"], ["i3", "i6"], attributes=False)
    assert ev["i6"] == []  # nothing links Alpha to Zeta
    with pytest.raises(UnknownIdError):
        builder.collect(["i1"], ["nope"])


def test_ratings_order_the_films_named(builder: EvidenceBuilder) -> None:
    # Drama links i3 to i1 and i5: the better rated history item is named first, with its rating.
    ev = builder.collect(["i1", "i5"], ["i3"], attributes=False, ratings={"i1": 2.0, "i5": 5.0})["i3"]
    drama = next(e for e in ev if e.name == "Drama")
    assert drama.text == f"{G} shares the genre Drama with Epsilon (1995) and {A}"
    assert [(s.item, s.rating) for s in drama.sources] == [("i5", 5.0), ("i1", 2.0)] and drama.linked == 2


def test_nouns() -> None:
    assert noun("film.film.directed_by") == "director"
    assert noun("film.actor.film") == "actor"
    assert noun("film.production_company.films") == "production company"
    assert noun("item.class") == "genre"
    assert noun("music.track.recorded_by") == "recorded by"


@pytest.mark.parametrize("top", [1, 2, 3, 10])
@pytest.mark.parametrize("scored", [False, True])
def test_best_equals_rank_of_collect(builder: EvidenceBuilder, top: int, scored: bool) -> None:
    # best() renders only routes that can reach the top; the answer must not change, ties included:
    # with the constant scorer every route ties and the text decides.
    scorer = (lambda facts: [1.0 for _ in facts]) if scored else None
    history, candidates = ["i1", "i2"], ["i3", "i4", "i5", "i6"]
    expected = builder.rank(builder.collect(history, candidates), scorer, top=top)
    assert builder.best(history, candidates, scorer, top=top) == expected
    assert builder.best([], candidates, scorer, top=top) == builder.rank(builder.collect([], candidates), scorer, top=top)


def test_a_hubs_films_are_sorted_once_and_give_what_order_items_gives(tiny_store: MemoryStore) -> None:
    import random

    from kerec.kg.evidence import order_items

    films = {f"i{n}": [] for n in range(30)}
    popularity = {f"i{n}": float(n % 7) for n in range(30)}  # ties: item id order
    builder = EvidenceBuilder(tiny_store, popularity=popularity)
    hub, rng = NodeRef("Entity", "hub"), random.Random(0)
    for _ in range(50):
        exclude = set(rng.sample(sorted(films), rng.randint(0, 30)))
        assert builder._most_popular(hub, "actor", films, exclude, 3) == \
            order_items(films.keys() - exclude, [], popularity, 3)
    assert list(builder._ranked) == [(hub, "actor")]  # one sort for the node's role, reused
