"""Explanations that say what the knowledge is, on a planted dataset where only KG paths can explain a pick.

Films (ids i1..i8, Freebase-style entities m.1..m.8, every link stored in both directions as Freebase does):

* the unnamed director m.coen directed Fargo (i1), Blood Simple (i3) and The Big Lebowski (i4), and *wrote*
  Raising Arizona (i2) and Heat (i6), which he did not direct;
* unnamed actors m.a1 and m.a2 play in Fargo and The Big Lebowski only; m.a3 in Raising Arizona, The Big
  Lebowski, Heat and Casino (i7);
* the unnamed Freebase genre m.crime links every film but Titanic (i5) and Alien (i8); the language m.en
  links all eight; .item classes and years are named attribute values.

User u1 rated Fargo 5, Raising Arizona 4, Blood Simple 2; nobody rated The Big Lebowski or Titanic, so no
collaborative signal can explain them: only the KG can. Popularity (users who chose a film): Casino 3,
Heat 2, the others 1 or 0, so a description of m.a3 names Casino before Heat although i6 < i7.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from kerec.data import load_dataset
from kerec.explain import TitleIndex, check, template
from kerec.kg import MemoryStore, build_ckg
from kerec.kg.describe import node_labels, short_title
from kerec.kg.evidence import Evidence, EvidenceBuilder
from kerec.kg.model import NodeRef
from kerec.kg.summary import summarise

FILMS = {"i1": ("Fargo", 1996, "Crime Drama"), "i2": ("Raising Arizona", 1987, "Comedy"),
         "i3": ("Blood Simple", 1984, "Crime"), "i4": ("Big Lebowski, The", 1998, "Comedy Crime"),
         "i5": ("Titanic", 1997, "Drama"), "i6": ("Heat", 1995, "Crime"),
         "i7": ("Casino", 1995, "Crime Drama"), "i8": ("Alien", 1979, "Drama")}
LINKS = [("film.film.directed_by", "film.director.film", "m.coen", ["i1", "i3", "i4"]),
         ("film.film.written_by", "film.writer.film", "m.coen", ["i2", "i6"]),
         ("film.film.actor", "film.actor.film", "m.a1", ["i1", "i4"]),
         ("film.film.actor", "film.actor.film", "m.a2", ["i1", "i4"]),
         ("film.film.actor", "film.actor.film", "m.a3", ["i2", "i4", "i6", "i7"]),
         ("film.film.genre", "film.film_genre.films_in_this_genre", "m.crime", ["i1", "i2", "i3", "i4", "i6", "i7"]),
         ("film.film.language", "film.language.films", "m.en", list(FILMS))]
RATINGS = [("u1", "i1", 5), ("u1", "i2", 4), ("u1", "i3", 2), ("u2", "i7", 4), ("u3", "i7", 4), ("u4", "i7", 3),
           ("u2", "i6", 5), ("u3", "i6", 3), ("u5", "i8", 4), ("u5", "i5", 1)]
LEBOWSKI, TITANIC = "Big Lebowski, The (1998)", "Titanic (1997)"


def write_planted(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "planted.item").write_text("item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
                                         + "".join(f"{i}\t{t}\t{y}\t{c}\n" for i, (t, y, c) in FILMS.items()))
    (folder / "planted.link").write_text("item_id:token\tentity_id:token\n" + "".join(f"{i}\tm.{i[1:]}\n" for i in FILMS))
    rows = [f"m.{i[1:]}\t{forward}\t{node}\n{node}\t{backward}\tm.{i[1:]}\n"
            for forward, backward, node, items in LINKS for i in items]
    (folder / "planted.kg").write_text("head_id:token\trelation_id:token\ttail_id:token\n" + "".join(rows))
    (folder / "planted.inter").write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n" + "".join(
        f"{u}\t{i}\t{r}\t{n}\n" for n, (u, i, r) in enumerate(RATINGS)))
    return folder


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[MemoryStore, TitleIndex]:
    ds = load_dataset(write_planted(tmp_path_factory.mktemp("planted") / "planted"))
    store = MemoryStore()
    store.load(build_ckg(ds), progress=False)
    return store, TitleIndex({ds.items.external(i): ds.item_title(i) for i in range(ds.num_items)})


POPULARITY = {"i7": 3.0, "i6": 2.0, "i1": 1.0, "i2": 1.0, "i3": 1.0, "i8": 1.0, "i5": 1.0}


def evidence_of(store: MemoryStore, candidate: str) -> list[Evidence]:
    history = [h.item for h in store.history("u1")]
    ratings = {h.item: h.rating for h in store.history("u1")}
    return EvidenceBuilder(store, popularity=POPULARITY).best(history, [candidate], ratings=ratings)[candidate]


def test_unnamed_nodes_are_described_by_their_films(planted: tuple[MemoryStore, TitleIndex]) -> None:
    store, _ = planted
    history = [h.item for h in store.history("u1")]
    ratings = {h.item: h.rating for h in store.history("u1")}
    every = EvidenceBuilder(store, popularity=POPULARITY).collect(history, ["i4"], ratings=ratings)["i4"]
    ev = {e.via.id if e.via else e.text: e for e in every}
    # The director: the user's films he directed, best rated first; not Raising Arizona or Heat, which he
    # wrote: a description names only films in the role it states.
    assert ev["m.coen"].text == f"{LEBOWSKI} is directed by the director of Fargo (1996) and Blood Simple (1984)"
    assert [s.item for s in ev["m.coen"].sources] == ["i1", "i3"] and ev["m.coen"].role == "director"
    # An actor: the user's film first, then the most popular others (Casino before Heat), with the facts
    # that say so cited alongside the route's.
    a3 = ev["m.a3"]
    assert a3.text == f"{LEBOWSKI} features an actor from Raising Arizona (1987), Casino (1995) and Heat (1995)"
    described = {f.other(NodeRef("Entity", "m.a3")).id for f in a3.context}
    assert described == {"i6", "i7"} and set(store.facts(list(a3.fact_ids))) == set(a3.fact_ids)
    # A hub is counted, not listed: the genre's other films beyond the three named.
    assert ev["m.crime"].text == (f"{LEBOWSKI} shares a genre with Fargo (1996), Raising Arizona (1987), "
                                  "Blood Simple (1984) and 2 other films")
    assert ev["m.crime"].low and not a3.low
    assert not any("unnamed" in e.text or "m." in e.text for e in ev.values())


def test_information_orders_the_evidence(planted: tuple[MemoryStore, TitleIndex]) -> None:
    store, _ = planted
    ev = evidence_of(store, "i4")
    # idf over 8 films: m.a1, m.a2 act in 2 (log 4); m.coen directed 3 (log 8/3); m.a3 acts in 4 (log 2);
    # then metadata at weight 0.15: class=Comedy (2 films, 0.21) before m.crime (6 films, 0.04).
    assert [e.via.id if e.via else e.role for e in ev] == ["m.a1", "m.a2", "m.coen", "m.a3", "class=Comedy"]


def test_one_sentence_names_the_linking_film_the_relations_and_the_rating(planted: tuple[MemoryStore, TitleIndex]) -> None:
    store, titles = planted
    ev = evidence_of(store, "i4")
    text = summarise(ev).text
    assert text == ("Shares 2 actors and the director with Fargo (1996), which you rated 5 [1][2][3]; "
                    "also an actor with Raising Arizona (1987), which you rated 4 [4].")
    explanation = template(ev)
    assert explanation.text == text and explanation.cited == (1, 2, 3, 4)
    # Grounded like an LLM's text: every cited fact in the store, linking u1's history, the prose too.
    history = {h.item for h in store.history("u1")}
    assert check(text, ev, store, history, "i4", titles) == ((1, 2, 3, 4), None)
    # A chat reply numbers across picks: the same sentence, its own numbers.
    assert summarise(ev, number=lambda n: n + 10).text.endswith("rated 4 [14].")


def test_a_pick_linked_only_by_metadata_says_so(planted: tuple[MemoryStore, TitleIndex]) -> None:
    store, titles = planted
    ev = evidence_of(store, "i5")  # Titanic: Drama with Fargo, English with everything
    assert ev and all(e.low for e in ev)
    text = summarise(ev).text
    # The language links all 8 films (no information): not said; the candidate's own year completes it.
    year = next(n for n, e in enumerate(ev, 1) if e.kind == "attribute" and e.role == "release year")
    drama = next(n for n, e in enumerate(ev, 1) if e.name == "Drama" and e.kind == "path")
    assert text == f"Shares the genre Drama with Fargo (1996), which you rated 5 [{drama}]; also its release year is 1997 [{year}]."
    history = {h.item for h in store.history("u1")}
    assert check(text, ev, store, history, "i5", titles)[1] is None


def test_node_labels_and_short_titles(planted: tuple[MemoryStore, TitleIndex]) -> None:
    store, _ = planted
    coen, a3, crime = NodeRef("Entity", "m.coen"), NodeRef("Entity", "m.a3"), NodeRef("Entity", "m.crime")
    labels = node_labels(store, [coen, a3, crime], first=["i3"], popularity=POPULARITY)
    # Director and writer weigh the same: alphabetical, "director"; its films in that role, i3 first.
    assert labels[coen] == "director of Blood Simple, Fargo +1"
    assert labels[a3] == "actor in Casino, Heat +2"
    # The role on the facts a picture draws wins over the node's others.
    written = [f for f in store.incident_facts([coen])[coen] if f.relation == "film.film.written_by"]
    assert node_labels(store, [coen], facts={coen: written})[coen] == "writer of Raising Arizona, Heat"  # id order
    assert node_labels(store, [crime], exclude={"i1", "i2", "i3", "i4", "i6"})[crime] == "genre of Casino"
    assert short_title("Big Lebowski, The (1998)") == "The Big Lebowski" and short_title("Fargo (1996)") == "Fargo"


def test_older_history_is_searched_for_picks_linked_only_by_metadata(planted: tuple[MemoryStore, TitleIndex]) -> None:
    store, _ = planted
    builder = EvidenceBuilder(store, popularity=POPULARITY)
    ratings = {"i1": 5.0, "i2": 4.0}
    # Casino from Fargo alone: crime, drama, English. From Raising Arizona, seen earlier: the actor m.a3.
    recent = builder.best(["i1"], ["i7", "i4"], ratings=ratings)
    assert all(e.low for e in recent["i7"]) and not recent["i4"][0].low
    both = builder.best(["i1"], ["i7", "i4"], ratings=ratings, older=["i2"])
    assert both["i7"][0].via == NodeRef("Entity", "m.a3") and both["i7"][0].sources[0].item == "i2"
    assert both["i4"] == recent["i4"]  # a pick the recent history already explains is left as it was
    assert summarise(both["i7"]).text.startswith("Shares an actor with Raising Arizona (1987), which you rated 4 [1]")


def _unnamed(n: int, role: str, films: list[tuple[str, float | None]], *, linked: int | None = None,
             name: str | None = None) -> Evidence:
    """A path statement through entity ``m.n`` in ``role`` linking candidate c to the history ``films``."""
    from kerec.kg.evidence import Source

    via = NodeRef("Entity", f"m.{n}")
    sources = tuple(Source(f, f"{f.title()} (1990)", r) for f, r in films)
    return Evidence("c", "path", "", (), sources[0].item, information=1.0 / n, role=role, sources=sources,
                    linked=len(films) if linked is None else linked, name=name, source_role=role, via=via)


def test_unnamed_nodes_of_one_role_are_said_once_and_each_film_once() -> None:
    actor = _unnamed(1, "actor", [("fargo", 5.0)])
    nominations = [_unnamed(2, "award nomination", [("heat", 4.0), ("kull", 2.0)]),
                   _unnamed(3, "award nomination", [("kull", 2.0)])]
    text = summarise([actor, *nominations]).text
    # Before: "…; also an award nomination with 2 of your films: Heat (1990) and Kull (1990) [2], and an award
    # nomination with Kull (1990) [3]." — Kull twice, the two nominations in two clauses.
    assert text == ("Shares an actor with Fargo (1990), which you rated 5 [1]; "
                    "also 2 award nominations with 2 of your films: Heat (1990) and Kull (1990) [2][3].")
    many = [_unnamed(2 + k, "production company", [(f"f{k}", 5.0), (f"g{k}", 4.0)]) for k in range(3)]
    text = summarise([actor, *many]).text
    assert "3 production companies with 6 films you rated 4 or 5: F0 (1990), G0 (1990), F1 (1990) and 3 more [2][3][4]" in text
    partly = [_unnamed(2, "actor", [("heat", None)], linked=4), _unnamed(3, "actor", [("kull", None), ("heat", None)])]
    assert summarise([actor, *partly]).text.endswith("also 2 actors with Heat (1990), Kull (1990) and more of your films [2][3].")


def test_a_role_named_and_unnamed_is_counted_after_the_name() -> None:
    drama = _unnamed(1, "genre", [("fargo", 5.0)], name="Romance")
    other = _unnamed(2, "genre", [("fargo", 5.0)])
    # Before: "Shares a genre and the genre Romance with …".
    assert summarise([drama, other]).text == "Shares the genre Romance and another genre with Fargo (1990), which you rated 5 [1][2]."
    third = _unnamed(3, "genre", [("fargo", 5.0)])
    assert summarise([drama, other, third]).text.startswith("Shares the genre Romance and 2 more genres with Fargo (1990)")
