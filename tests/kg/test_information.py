"""kerec.kg.information: the one weighting of how much a KG link tells a person, on hand-computed values."""
from __future__ import annotations

import math

import pytest

from kerec.data import KerecError
from kerec.kg.information import LOW_INFORMATION, best_role, information, liking, noun, role

N = 1000  # catalogue items


def test_relations_map_to_roles() -> None:
    assert [noun(r) for r in ("film.film.directed_by", "film.director.film", "film.film.actor", "film.actor.film",
                              "film.film.written_by", "film.film_genre.films_in_this_genre", "item.class",
                              "item.release_year", "film.film.rating", "film.film.subjects", "film.film.sequel",
                              "film.production_company.films", "film.film.award_nomination")] == [
        "director", "director", "actor", "actor", "writer", "genre", "genre", "release year", "content rating",
        "subject", "sequel", "production company", "award nomination"]
    assert noun("music.track.recorded_by") == "recorded by"
    assert role("music.track.recorded_by").weight == 0.5 and role("music.track.recorded_by").one() == "a recorded by"
    assert {r for r in ("genre", "language", "country", "release year", "content rating")} == LOW_INFORMATION
    assert role("film.film.genre").low and not role("film.film.actor").low
    assert role("film.film.directed_by").count(1) == "the director" and role("film.film.actor").count(2) == "2 actors"
    assert role("film.film.actor").one() == "an actor" and role("film.film.production_companies").count(3) == \
        "3 production companies"
    assert best_role({"actor", "director", "genre"}) == "actor"  # equal weights: alphabetical
    assert best_role({"producer", "genre"}) == "producer"


def test_liking() -> None:
    assert [liking(r) for r in (5.0, 4.0, 3.0, None, 2.0, 1.0)] == [1.0, 1.0, 0.75, 0.75, 0.5, 0.5]


def test_information_is_weight_times_idf_times_liking() -> None:
    assert information("film.film.directed_by", linked_items=4, catalogue_items=N, rating=5.0) == \
        pytest.approx(math.log(250))
    assert information("film.film.genre", linked_items=100, catalogue_items=N, rating=3.0) == \
        pytest.approx(0.15 * math.log(10) * 0.75)
    assert information("film.film.language", linked_items=N, catalogue_items=N) == 0.0  # links everything
    with pytest.raises(KerecError):
        information("film.film.actor", linked_items=1, catalogue_items=0)


def test_a_known_order() -> None:
    # What a person learns most from, first: a director of 3 films and a sequel beat an actor of 30 films,
    # which beats a production company of 60, an award nomination of 100, and then the metadata: a rare
    # genre (5 films), a release year (40), the language English (900). A rating of 2 halves a link.
    links = {
        "sequel": ("film.film.sequel", 2, 5.0),
        "director of 3": ("film.film.directed_by", 3, 5.0),
        "director of 3, from a film rated 2": ("film.film.directed_by", 3, 2.0),
        "actor of 30": ("film.film.actor", 30, 4.0),
        "production company of 60": ("film.film.production_companies", 60, 4.0),
        "award nomination of 100": ("film.film.award_nomination", 100, 4.0),
        "genre of 5": ("film.film.genre", 5, 5.0),
        "release year of 40": ("item.release_year", 40, 5.0),
        "language of 900": ("film.film.language", 900, 5.0),
    }
    order = sorted(links, key=lambda k: -information(links[k][0], linked_items=links[k][1], catalogue_items=N,
                                                     rating=links[k][2]))
    assert order == ["sequel", "director of 3", "actor of 30", "director of 3, from a film rated 2",
                     "production company of 60", "award nomination of 100", "genre of 5", "release year of 40",
                     "language of 900"]
