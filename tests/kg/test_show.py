"""kerec.kg.show on the tiny dataset, whose answers are worked out by hand below, and once on MovieLens.

Tiny KG facts used here (degree = incident facts): m.d1 directs i1 and i3 and has a nationality (3);
i1 -sequel-> i3; genre m.g1: i2, i4 (2); language m.en: i5, i6 (2); class=Drama: i1, i3, i5 (3);
class=Comedy: i2, i3 (2); class=Action: i4, i6 (2); release_year=1990: i1, i3 (2); =1991: i2 (1);
=1995: i4, i5 (2); =1999: i6 (1). Histories, oldest first: u1 i1 i2 i3 i4; u2 i1 i3 i5; u3 i2 i4 i5 i6.
"""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kerec.data import Dataset, KerecError, UnknownIdError
from kerec.kg import GraphStoreError, MemoryStore, build_ckg
from kerec.kg.model import Fact, NodeRef
from kerec.kg.show import ShowError, Subgraph, edge_label, render, short_relation, user_subgraph

W4, W5 = 1 / math.log(4), 1 / math.log(5)  # link weights of degree-2 and degree-3 nodes


def ent(ident: str) -> NodeRef:
    return NodeRef("Entity", ident)


def item(ident: str) -> NodeRef:
    return NodeRef("Item", ident)


def routes(sg: Subgraph) -> set[tuple[str, str, tuple[str, ...]]]:
    return {(p.source, p.target, tuple(x.id for x in p.via)) for p in sg.paths}


@pytest.fixture(scope="module")
def store(tiny_store: MemoryStore) -> MemoryStore:
    return tiny_store


@pytest.fixture(scope="module")
def real_store(ml100k: Dataset) -> MemoryStore:
    s = MemoryStore()
    s.load(build_ckg(ml100k), progress=False)
    return s


def test_default_candidates_tie_by_item_id(store: MemoryStore) -> None:
    # u2 reaches i2 via Comedy, i4 via 1995, i6 via m.en: one degree-2 link each, so a three-way tie.
    sg = user_subgraph(store, "u2")
    assert sg.history == ("i5", "i3", "i1") and sg.history_total == 3
    assert sg.ratings == {"i1": 4.0, "i3": 2.0, "i5": 5.0}
    assert sg.candidates == ("i2", "i4", "i6")
    assert sg.scores == pytest.approx({"i2": W4, "i4": W4, "i6": W4})


def test_default_candidates_rank_by_discounted_links(store: MemoryStore) -> None:
    # u3 reaches i3 via Comedy (degree 2) and Drama (degree 3), i1 via Drama only.
    sg = user_subgraph(store, "u3")
    assert sg.candidates == ("i3", "i1")
    assert sg.scores == pytest.approx({"i3": W4 + W5, "i1": W5})
    assert user_subgraph(store, "u3", max_candidates=1).candidates == ("i3",)
    # u1: i5 via Drama (3) and 1995 (2) beats i6 via Action (2).
    u1 = user_subgraph(store, "u1")
    assert u1.candidates == ("i5", "i6") and u1.scores == pytest.approx({"i5": W4 + W5, "i6": W4})


def test_default_candidates_exclude_the_whole_history(store: MemoryStore) -> None:
    # Shown: i6, i5. i4 is reached through 1995 and Action, but u3 rated it earlier, so it is no candidate.
    sg = user_subgraph(store, "u3", history_limit=2)
    assert sg.history == ("i6", "i5") and sg.history_total == 4
    assert sg.candidates == ("i1", "i3")  # both via Drama only: a tie, broken by id
    assert routes(sg) == {("i5", "i1", ("class=Drama",)), ("i5", "i3", ("class=Drama",))}


def test_no_candidates_gives_an_empty_picture(store: MemoryStore) -> None:
    sg = user_subgraph(store, "u2", max_candidates=0)
    assert sg.candidates == () and sg.paths == () and sg.entities == () and sg.facts == ()


def test_paths_and_linking_nodes_kept(store: MemoryStore) -> None:
    sg = user_subgraph(store, "u2")
    assert routes(sg) == {("i3", "i2", ("class=Comedy",)), ("i5", "i4", ("release_year=1995",)),
                          ("i5", "i6", ("m.en",))}
    assert sg.entities == (ent("class=Comedy"), ent("release_year=1995"), ent("m.en"))
    assert sg.degrees == {ent("class=Comedy"): 2, ent("release_year=1995"): 2, ent("m.en"): 2}
    assert sg.entities_left_out == 0 and len(sg.facts) == 6
    assert sg.kinds[ent("class=Comedy")] == "attribute" and sg.kinds[ent("m.en")] == "entity"
    assert sg.kinds[item("i5")] == "history" and sg.kinds[item("i6")] == "candidate"


def test_max_entities_serves_candidates_in_rank_order(store: MemoryStore) -> None:
    # By node rank alone Comedy and m.en would be kept (ties by key); the candidate pass keeps
    # one link for i2 and then one for i4, leaving i6 unexplained.
    sg = user_subgraph(store, "u2", max_entities=2)
    assert sg.entities == (ent("class=Comedy"), ent("release_year=1995"))
    assert routes(sg) == {("i3", "i2", ("class=Comedy",)), ("i5", "i4", ("release_year=1995",))}
    assert sg.entities_left_out == 1 and sg.candidates == ("i2", "i4", "i6")


def test_linking_nodes_prefer_pairs_per_fact(store: MemoryStore) -> None:
    # u1 -> i5: Drama links (i1, i5) and (i3, i5) with 3 facts (2/3) and beats 1995 (1 pair / 2 facts).
    assert user_subgraph(store, "u1", max_entities=1).entities == (ent("class=Drama"),)
    assert user_subgraph(store, "u1", max_entities=2).entities == (ent("class=Drama"), ent("class=Action"))
    full = user_subgraph(store, "u1")
    assert full.entities == (ent("class=Drama"), ent("class=Action"), ent("release_year=1995"))
    assert len(full.paths) == 4


def test_given_candidates_and_direct_paths(store: MemoryStore) -> None:
    # i1 is in u2's history but not among the 2 shown, so it may be asked for.
    sg = user_subgraph(store, "u2", ["i1", "i1"], history_limit=2)
    assert sg.history == ("i5", "i3") and sg.candidates == ("i1",)
    assert sg.scores == pytest.approx({"i1": W5 + W4 + W5})  # via m.d1, 1990, Drama
    # Drama: 2 pairs / 3 facts; 1990: 1 / 2; m.d1: 1 / 3.
    assert sg.entities == (ent("class=Drama"), ent("release_year=1990"), ent("m.d1"))
    assert ("i3", "i1", ()) in routes(sg) and len(sg.paths) == 5
    small = user_subgraph(store, "u2", ["i1"], history_limit=2, max_entities=1)
    assert routes(small) == {("i3", "i1", ()), ("i3", "i1", ("class=Drama",)), ("i5", "i1", ("class=Drama",))}
    none = user_subgraph(store, "u2", ["i1"], history_limit=2, max_entities=0)
    assert routes(none) == {("i3", "i1", ())} and none.entities_left_out == 3


def test_labels_never_pass_a_raw_id_off_as_a_name(store: MemoryStore) -> None:
    sg = user_subgraph(store, "u2", ["i1"], history_limit=2)
    assert sg.labels[item("i1")] == "Alpha (1990)"
    assert sg.labels[ent("class=Drama")] == "Drama" and sg.labels[ent("release_year=1990")] == "1990"
    # Unnamed Freebase nodes are described by their role and films: shown history first (u2's recent
    # i3 before i1), then the others by popularity (i6 chosen by more users than i5).
    assert sg.labels[ent("m.d1")] == "director of Gamma, Alpha"
    assert user_subgraph(store, "u2").labels[ent("m.en")] == "language of Epsilon, Zeta"
    assert user_subgraph(store, "u2", ["i6"], history_limit=1).labels[ent("m.en")] == "language of Epsilon, Zeta"
    popular = user_subgraph(store, "u2", ["i2"], history_limit=1, popularity={"i6": 9.0, "i5": 1.0})
    assert all("unnamed" not in label and "m." not in label for label in popular.labels.values())


def test_edge_labels() -> None:
    film, person = item("i9"), ent("m.p")
    forward = Fact.of(film, "film.film.directed_by", person)
    backward = Fact.of(person, "film.director.film", film)
    assert short_relation("film.film.directed_by") == "directed_by" and short_relation("social") == "social"
    assert edge_label([forward, backward]) == "directed_by"
    assert edge_label([Fact.of(person, "people.person.nationality", ent("m.c"))]) == "nationality"


def test_errors_are_specific(store: MemoryStore) -> None:
    with pytest.raises(UnknownIdError, match="unknown user id 'nobody'"):
        user_subgraph(store, "nobody")
    with pytest.raises(UnknownIdError, match="unknown item id 'nope'"):
        user_subgraph(store, "u2", ["i2", "nope"])
    with pytest.raises(ShowError, match="i3 are among user u2's 3 shown history items"):
        user_subgraph(store, "u2", ["i2", "i3"])
    with pytest.raises(ShowError, match="history_limit must be at least 1, got 0"):
        user_subgraph(store, "u2", history_limit=0)
    with pytest.raises(GraphStoreError, match="max_hops"):
        user_subgraph(store, "u2", max_hops=4)
    with pytest.raises(ShowError, match=r"\.png, \.svg, \.html") as bad:
        render(user_subgraph(store, "u2"), "picture.jpg")
    assert isinstance(bad.value, KerecError)


def test_render_png_svg_html(store: MemoryStore, tmp_path: Path) -> None:
    sg = user_subgraph(store, "u2", ["i1"], history_limit=2)
    png = render(sg, tmp_path / "new" / "folder" / "u2.png")
    assert png == tmp_path / "new" / "folder" / "u2.png"
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    svg = render(sg, str(tmp_path / "u2.svg"))
    root = ET.parse(svg).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    text = svg.read_text()
    assert "Knowledge subgraph of user u2" in text and "director of Gamma" in text and "unnamed" not in text
    assert render(sg, tmp_path / "again.svg").read_text() == text  # reproducible: no date, fixed ids
    page = render(sg, tmp_path / "u2.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "http-equiv" not in page
    assert len(sg.facts) == 8
    for f in sg.facts:
        assert f.id in page
    assert page.count("<tr><td>") == len(sg.facts) and "film.film.sequel" in page


@pytest.mark.slow
def test_real_user_1(real_store: MemoryStore, tmp_path: Path) -> None:
    sg = user_subgraph(real_store, "1")
    rated = [h.item for h in real_store.history("1")]
    assert sg.history == tuple(reversed(rated[-10:]))
    assert len(sg.candidates) == 5 and not set(sg.candidates) & set(rated)
    assert [sg.scores[c] for c in sg.candidates] == sorted(sg.scores.values(), reverse=True)
    assert {p.target for p in sg.paths} == set(sg.candidates)  # each candidate keeps an explanation
    assert 0 < len(sg.entities) <= 12
    assert all(label != node.id for node, label in sg.labels.items())
    data = render(sg, tmp_path / "u1.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
