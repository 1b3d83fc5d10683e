"""What the parser matches against: the catalogue's titles, genres and years, read once from the dataset.

Titles are matched on a normal form (:func:`normalise`): accents dropped, lower case, apostrophes
removed, other punctuation as spaces, a trailing ``(1995)`` removed and a leading article dropped — so
"Shawshank Redemption, The (1994)", "the shawshank redemption" and "Shawshank Redemption" meet.
A title with a parenthesised alternative ("Seven (Se7en)") is known under both. Titles shared by several
items resolve to the most popular (training interactions; ties by lower index) unless a year follows.

Genres are the values of the item field ``class``/``genre``/``genres``/``category`` (ml-100k: Comedy,
Film-Noir, Sci-Fi, …; the graph store holds the same values as attribute entities such as
``class=Comedy``). Years come from ``release_year``/``year``; an item without one never meets a year
constraint.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kerec.chat.vocab import GENRE_SYNONYMS
from kerec.data import Dataset
from kerec.data.dataset import YEAR_FIELDS

GENRE_FIELDS = ("class", "genre", "genres", "category", "categories")
ARTICLES = ("the", "a", "an", "il", "la", "le", "les", "l", "el", "der", "die", "das")
_TRAILING_ARTICLE = re.compile(r"^(.*), (the|a|an|il|la|le|les|l'|el|der|die|das)$", re.IGNORECASE)
_YEAR_SUFFIX = re.compile(r"\s*\((\d{4})\)\s*$")
_PAREN = re.compile(r"\(([^()]*)\)")


def normalise(text: str) -> str:
    """``"Children's Sci-Fi, The!"`` → ``"childrens sci fi the"``: accents off, lower case, apostrophes
    removed, every other non-alphanumeric run one space."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower().replace("&", " and ")
    text = re.sub(r"['’`´]", "", text)
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


def title_key(text: str) -> str:
    """The matching key of a title or a phrase: :func:`normalise`, leading article dropped."""
    words = normalise(text).split()
    if len(words) > 1 and words[0] in ARTICLES:
        words = words[1:]
    return " ".join(words)


def title_variants(title: str) -> list[str]:
    """Keys a catalogue title is known by: the title, and each parenthesised alternative."""
    base = _YEAR_SUFFIX.sub("", title).strip()
    variants = [_PAREN.sub(" ", base).strip()] + [alt.strip() for alt in _PAREN.findall(base)]
    out = []
    for v in variants:
        m = _TRAILING_ARTICLE.match(v)
        if m:
            v = f"{m.group(2)} {m.group(1)}"
        key = title_key(v)
        if key and key not in out:
            out.append(key)
    return out


def genre_forms(name: str) -> list[str]:
    """The normalised words naming a genre: its name, plural, and :data:`~kerec.chat.vocab.GENRE_SYNONYMS`."""
    base = normalise(name)
    forms = [base, base + "s"] + list(GENRE_SYNONYMS.get(name.lower(), ()))
    return [f for f in dict.fromkeys(forms) if f]


def display_title(title: str) -> str:
    """How a person would write a catalogue title: "Usual Suspects, The (1995)" → "The Usual Suspects"."""
    base = _PAREN.sub(" ", _YEAR_SUFFIX.sub("", title)).strip()
    m = _TRAILING_ARTICLE.match(" ".join(base.split()))
    return f"{m.group(2)} {m.group(1)}" if m else " ".join(base.split())


@dataclass(frozen=True)
class Catalogue:
    """Per item index: ``titles``; ``years`` shape (I,) float64, NaN when unknown; ``genres`` shape
    (I, G) bool over ``genre_names``. ``keys``: title key → item indices, most popular first."""

    titles: tuple[str, ...]
    keys: dict[str, tuple[int, ...]]
    years: np.ndarray
    genre_names: tuple[str, ...]
    genres: np.ndarray
    max_key_words: int
    keys_by_words: dict[int, tuple[str, ...]]  # word count → title keys (numbers left out): the fuzzy pools
    genre_words: frozenset[str]  # every normalised genre form

    def genre_index(self, name: str) -> int:
        return self.genre_names.index(name)

    def genre_mask(self, names: Sequence[str], *, every: bool) -> np.ndarray:
        """shape: (I,) bool — items with every (``every=True``) or any of the genres ``names``."""
        if not names:
            return np.full(len(self.titles), every)
        cols = self.genres[:, [self.genre_index(n) for n in names]]
        return cols.all(axis=1) if every else cols.any(axis=1)

    def item_genres(self, item: int) -> list[str]:
        return [g for g, has in zip(self.genre_names, self.genres[item]) if has]

    def item_year(self, item: int) -> int | None:
        y = self.years[item]
        return None if np.isnan(y) else int(y)


def build_catalogue(dataset: Dataset, popularity: np.ndarray) -> Catalogue:
    """Index ``dataset``'s titles, genres and years; ``popularity`` (I,) orders items sharing a title."""
    n = dataset.num_items
    titles = tuple(dataset.item_title(i) for i in range(n))
    keyed: dict[str, list[int]] = {}
    for i, title in enumerate(titles):
        for key in title_variants(title):
            keyed.setdefault(key, []).append(i)
    keys = {k: tuple(sorted(v, key=lambda i: (-float(popularity[i]), i))) for k, v in keyed.items()}
    years = np.full(n, np.nan)
    field = next((f for f in YEAR_FIELDS if f in dataset.item_fields), None)
    if field is not None:
        for i, value in enumerate(dataset.item_fields[field]):
            text = str(value[0] if isinstance(value, tuple) and value else value or "")
            if text.isdigit() and 1800 <= int(text) <= 2100:
                years[i] = float(text)
    genre_field = next((f for f in GENRE_FIELDS if f in dataset.item_fields), None)
    per_item: list[tuple[str, ...]] = [()] * n
    if genre_field is not None:
        per_item = [tuple(str(v) for v in (value if isinstance(value, tuple) else (value,)) if v)
                    for value in dataset.item_fields[genre_field]]
    names = tuple(sorted({g for gs in per_item for g in gs if normalise(g) not in ("", "unknown")}))
    col = {g: j for j, g in enumerate(names)}
    genres = np.zeros((n, len(names)), dtype=bool)
    for i, gs in enumerate(per_item):
        for g in gs:
            if g in col:
                genres[i, col[g]] = True
    by_words: dict[int, list[str]] = {}
    for key in keys:
        if not key.replace(" ", "").isdigit():
            by_words.setdefault(len(key.split()), []).append(key)
    return Catalogue(titles, keys, years, names, genres, max((len(k.split()) for k in keys), default=1),
                     {n: tuple(ks) for n, ks in by_words.items()},
                     frozenset(f for g in names for f in genre_forms(g)))
