"""A small film catalogue with a planted answer for the chat tests: 48 items with distinct titles,
one of 4 genres each (item i has genre i % 4), years spread over 1971–2010, a genre entity and a
sequel link per item in the KG; 40 users each like the items of one genre. A retriever trained on it
must steer a chat that likes one Comedy towards other Comedies."""
from __future__ import annotations

from pathlib import Path

import numpy as np

GENRES = ("Comedy", "Horror", "Drama", "Action")
TITLES = (
    "Fargo", "Toy Story", "Heat", "Alien", "Casablanca", "Vertigo", "Jaws", "Psycho", "Amadeus", "Brazil",
    "Goodfellas", "Rocky", "Platoon", "Gandhi", "Titanic", "Babe", "Clueless", "Scream", "Twister", "Speed",
    "Ghost", "Big", "Tootsie", "Airplane", "Annie Hall", "Blade Runner", "The Shining", "Star Wars",
    "Pulp Fiction", "Forrest Gump", "The Usual Suspects", "Raging Bull", "Dead Man Walking", "Groundhog Day",
    "Die Hard", "Home Alone", "Sleepless in Seattle", "The Lion King", "Mary Poppins", "The Birds",
    "Lost Highway", "Mars Attacks", "Hamlet", "Hamlet", "Batman", "Batman Returns", "Copycat", "Nixon",
)
USERS, ITEMS = 40, len(TITLES)


def year(i: int) -> int:
    return 1971 + (i * 7) % 40


def write_films(out: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    inter = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    for u in range(USERS):
        liked = [i for i in range(ITEMS) if i % len(GENRES) == u % len(GENRES)]
        for t, i in enumerate(rng.choice(liked, size=8, replace=False)):
            inter.append(f"u{u}\ti{i}\t5\t{t}")
        for i in rng.choice(ITEMS, size=2, replace=False):  # noise
            inter.append(f"u{u}\ti{i}\t3\t{100 + int(i)}")
    (out / "films.inter").write_text("\n".join(inter) + "\n")
    (out / "films.item").write_text(
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        + "".join(f"i{i}\t{t}\t{year(i)}\t{GENRES[i % len(GENRES)]}\n" for i, t in enumerate(TITLES)))
    (out / "films.kg").write_text(
        "head_id:token\trelation_id:token\ttail_id:token\n"
        + "".join(f"m.{i}\tfilm.film.genre\tm.g{i % len(GENRES)}\n" for i in range(ITEMS))
        + "".join(f"m.{i}\tfilm.film.sequel\tm.{i + len(GENRES)}\n" for i in range(ITEMS - len(GENRES))))
    (out / "films.link").write_text("item_id:token\tentity_id:token\n" + "".join(f"i{i}\tm.{i}\n" for i in range(ITEMS)))
    return out
