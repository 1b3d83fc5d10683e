"""One conversation's state: what the person said so far, merged turn by turn, and its JSON summary."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from kerec.chat.catalogue import Catalogue
from kerec.chat.parse import Parsed

SOFT_LIMIT = 2.0  # soft genre weights are clipped to ±SOFT_LIMIT however often they are repeated


@dataclass
class SessionState:
    """Mutable; owned by one session and only touched under that session's lock.

    Merging rules (:meth:`apply`): a mention moves an item between liked / disliked / excluded (the latest
    word wins); a genre said *in* leaves *out* and the reverse; a stated year bound replaces the earlier
    one (and drops the other bound if they now cross); excluded year spans and soft weights accumulate;
    "something else" excludes the last recommendations."""

    user: str | None = None
    liked: dict[int, None] = field(default_factory=dict)  # insertion-ordered sets of catalogue indices
    disliked: dict[int, None] = field(default_factory=dict)
    excluded: dict[int, None] = field(default_factory=dict)
    genres_in: list[str] = field(default_factory=list)
    genres_out: list[str] = field(default_factory=list)
    year_min: int | None = None
    year_max: int | None = None
    years_out: list[tuple[int, int]] = field(default_factory=list)
    soft_genres: dict[str, float] = field(default_factory=dict)
    soft_year: int = 0
    shown: list[int] = field(default_factory=list)  # the last turn's recommendations
    log: list[tuple[str, str]] = field(default_factory=list)  # (role, text) turns, for the LLM prompt
    turns: int = 0
    last_used: float = field(default_factory=time.monotonic)

    def apply(self, parsed: Parsed) -> None:
        for m in parsed.mentions:
            for group in (self.liked, self.disliked, self.excluded):
                group.pop(m.item, None)
            {"like": self.liked, "dislike": self.disliked, "exclude": self.excluded}[m.polarity][m.item] = None
        for g in parsed.genres_in:
            if g in self.genres_out:
                self.genres_out.remove(g)
            if g not in self.genres_in:
                self.genres_in.append(g)
        for g in parsed.genres_out:
            if g in self.genres_in:
                self.genres_in.remove(g)
            if g not in self.genres_out:
                self.genres_out.append(g)
        for g, w in parsed.soft_genres.items():
            self.soft_genres[g] = max(-SOFT_LIMIT, min(SOFT_LIMIT, self.soft_genres.get(g, 0.0) + w))
        self.soft_genres = {g: w for g, w in self.soft_genres.items() if w}
        if parsed.soft_year:
            self.soft_year = parsed.soft_year
        if parsed.year_min is not None:
            self.year_min = parsed.year_min
            if self.year_max is not None and self.year_max < self.year_min and parsed.year_max is None:
                self.year_max = None
        if parsed.year_max is not None:
            self.year_max = parsed.year_max
            if self.year_min is not None and self.year_min > self.year_max and parsed.year_min is None:
                self.year_min = None
        self.years_out.extend(s for s in parsed.years_out if s not in self.years_out)
        if parsed.more:
            self.excluded.update(dict.fromkeys(i for i in self.shown if i not in self.liked and i not in self.disliked))

    def is_empty(self) -> bool:
        """Nothing to recommend from: no item, genre, year or preference, and no known user."""
        return not (self.user or self.liked or self.genres_in or self.genres_out or self.soft_genres
                    or self.soft_year or self.year_min is not None or self.year_max is not None or self.years_out)

    def summary(self, catalogue: Catalogue, item_id: Any) -> dict[str, Any]:
        """JSON-able: ``{"user", "liked", "disliked", "excluded" ([{"item_id", "title"}]), "genres_in",
        "genres_out", "year_range" ([min or None, max or None]), "years_out" ([[lo, hi]]), "soft"
        ({"genres": {genre: weight}, "year": "older" | "newer" | None})}``. ``item_id``: index → external id."""
        def items(group: dict[int, None]) -> list[dict[str, str]]:
            return [{"item_id": item_id(i), "title": catalogue.titles[i]} for i in group]

        return {"user": self.user, "liked": items(self.liked), "disliked": items(self.disliked),
                "excluded": items(self.excluded), "genres_in": list(self.genres_in),
                "genres_out": list(self.genres_out), "year_range": [self.year_min, self.year_max],
                "years_out": [list(s) for s in self.years_out],
                "soft": {"genres": dict(sorted(self.soft_genres.items())),
                         "year": {-1: "older", 1: "newer"}.get(self.soft_year)}}
