"""How much a KG fact tells a person, written once: what a relation is to a film (its :class:`Role`) and
the information of a route through a linking node.

A shared director says more than a shared genre, and a director of 3 films more than a production company
of 60. The information of a route from a history item ``h`` through a node ``x`` to a candidate is

    information = weight(role of the relation) × log(catalogue items / items linked to x) × liking(rating of h)

* ``weight``: how much a person deciding what to watch cares about the link (:data:`ROLES`): 1 for the
  people who made the film and what it is about (director, writer, actor, subject, sequel), 0.1–0.15 for
  catalogue metadata that a thousand films share (:data:`LOW_INFORMATION`: genre, language, country,
  release year, content rating), 0.5 for a relation kerec has no role for;
* ``log(N / n)``: the inverse document frequency of ``x`` over the catalogue (``n`` the items it links,
  at least 1), so hubs ("English", "Drama") say little;
* ``liking``: a route from a film the user rated highly supports the pick; one from a film they rated low
  hardly does (:func:`liking`).

Relation names are matched on their last dotted segment (Freebase's ``film.film.directed_by``), or on the
one before it when the last is ``film``/``films`` (``film.director.film``: the head's type is the role).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from kerec.errors import KerecError

SUPPORTING_RATING = 4.0  # ratings at or above this (on a 1–5 scale) support a pick and are said in explanations


@dataclass(frozen=True)
class Role:
    """What a linking node is to the films it links. ``lead``: how an evidence text introduces a node of
    this role that has no name ("is directed by the director of" + titles); ``article``: "the" for roles a
    film has one of, else "a"/"an"."""

    noun: str
    plural: str
    weight: float
    lead: str
    article: str = "a"
    prep: str = "of"  # in a short label: "director of Fargo", "actor in Fargo"

    @property
    def low(self) -> bool:
        """Whether this is catalogue metadata (:data:`LOW_INFORMATION`) rather than knowledge about the film."""
        return self.noun in LOW_INFORMATION

    def one(self) -> str:
        """``"the director"``, ``"an actor"``."""
        article = self.article if self.article == "the" else ("an" if self.noun[:1] in "aeiou" else "a")
        return f"{article} {self.noun}"

    def count(self, n: int) -> str:
        """``"the director"`` for 1, ``"2 actors"`` for 2."""
        return self.one() if n == 1 else f"{n} {self.plural}"


def _role(noun: str, weight: float, lead: str, *, plural: str | None = None, article: str = "a",
          prep: str = "of") -> Role:
    return Role(noun, plural or noun + "s", weight, lead, article, prep)


ROLES: dict[str, Role] = {r.noun: r for r in (
    _role("director", 1.0, "is directed by the director of", article="the"),
    _role("writer", 1.0, "is written by a writer of"),
    _role("actor", 1.0, "features an actor from", prep="in"),
    _role("subject", 1.0, "shares a subject with"),
    _role("sequel", 1.0, "is in a film series with"),
    _role("prequel", 1.0, "is in a film series with"),
    _role("producer", 0.8, "is produced by a producer of"),
    _role("composer", 0.8, "has music by the composer of", article="the"),
    _role("cinematographer", 0.6, "is shot by the cinematographer of", article="the"),
    _role("production company", 0.5, "is made by the production company of", plural="production companies"),
    _role("award", 0.4, "won an award also won by"),
    _role("award nomination", 0.4, "shares an award nomination with"),
    _role("genre", 0.15, "shares a genre with"),
    _role("language", 0.1, "shares a language with"),
    _role("country", 0.1, "shares a country with", plural="countries"),
    _role("release year", 0.1, "shares a release year with"),
    _role("content rating", 0.1, "has the content rating of"),
)}
LOW_INFORMATION = frozenset({"genre", "language", "country", "release year", "content rating"})
UNKNOWN_WEIGHT = 0.5

# Relation segment → role noun (Freebase's both directions, RecBole's .item fields, common synonyms).
_NOUNS = {
    "actor": "actor", "starring": "actor", "directed_by": "director", "director": "director",
    "written_by": "writer", "writer": "writer", "story_by": "writer", "produced_by": "producer",
    "producer": "producer", "executive_produced_by": "producer", "music": "composer", "composer": "composer",
    "cinematography": "cinematographer", "cinematographer": "cinematographer",
    "production_companies": "production company", "production_company": "production company",
    "films": "production company", "genre": "genre", "film_genre": "genre", "films_in_this_genre": "genre",
    "class": "genre", "subjects": "subject", "film_subject": "subject", "language": "language",
    "country": "country", "rating": "content rating", "content_rating": "content rating",
    "award_nomination": "award nomination", "award_won": "award", "sequel": "sequel", "prequel": "prequel",
    "release_year": "release year", "year": "release year",
}


@lru_cache(maxsize=4096)  # a dataset has tens of relations; evidence asks about each of them a million times
def noun(relation: str) -> str:
    """``film.film.directed_by`` → "director"; ``film.actor.film`` → "actor"; unknown → last segment with
    spaces (``music.track.recorded_by`` → "recorded by")."""
    parts = relation.split(".")
    last = parts[-1]
    if last in ("film", "films") and len(parts) >= 3 and parts[-2] in _NOUNS:
        last = parts[-2]  # film.director.film: the head's type names the role
    return _NOUNS.get(last, last.replace("_", " "))


@lru_cache(maxsize=4096)
def role(relation: str) -> Role:
    """The :class:`Role` of ``relation``; one of weight :data:`UNKNOWN_WEIGHT` for a relation kerec does
    not know ("shares a recorded by with" reads badly, but says only what the store holds)."""
    name = noun(relation)
    return ROLES.get(name) or _role(name, UNKNOWN_WEIGHT, f"shares {'an' if name[:1] in 'aeiou' else 'a'} {name} with")


def best_role(nouns: set[str] | frozenset[str]) -> str:
    """The most informative of several role nouns (ties: alphabetical), for a node that is more than one
    thing (a person who directed one film and wrote another)."""
    return min(nouns, key=lambda r: (-role(r).weight, r))


def liking(rating: float | None) -> float:
    """How much a history item rated ``rating`` supports a pick: 1 at :data:`SUPPORTING_RATING` or above,
    0.75 at 3 or unknown (implicit feedback), 0.5 at 2 or below."""
    if rating is None or 2.0 < rating < SUPPORTING_RATING:
        return 0.75
    return 1.0 if rating >= SUPPORTING_RATING else 0.5


def information(relation: str, *, linked_items: int, catalogue_items: int, rating: float | None = None) -> float:
    """The information of a route through a node of ``relation`` that links ``linked_items`` catalogue
    items (module docstring). ``rating``: the user's rating of the history item the route starts from
    (None for the candidate's own attributes, and where unknown)."""
    if catalogue_items < 1:
        raise KerecError(f"catalogue_items must be at least 1, got {catalogue_items}")
    idf = math.log(max(catalogue_items, 2) / max(min(linked_items, catalogue_items), 1))
    return role(relation).weight * idf * liking(rating)
