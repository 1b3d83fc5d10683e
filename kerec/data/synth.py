"""A generator of realistic recommendation data at any size, written as RecBole atomic files.

The data has a planted structure that KG and text really carry, so a KG- or text-aware model has
something to find (and a benchmark measures cost on data shaped like a real catalogue):

* ``tastes`` latent tastes. Every item has one taste; every user a taste mixture drawn from a
  Dirichlet(0.1), so most users lean on one or two tastes.
* Item popularity follows a power law (Zipf, exponent 1 over a seeded random rank).
* Each interaction draws a taste from the user's mixture and an item of that taste by popularity;
  10% are drawn from global popularity instead (taste-free noise). User activity is a power law with a
  floor of :data:`MIN_PER_USER` interactions. Ratings are higher where the item's taste is the user's.
* The KG (``.kg``/``.link``): every item is an entity ``film/<id>`` with a director and a subject of its
  own taste (90%; else any), actors mostly of its taste (80%), and a language (taste-free hub); every
  person has a nationality (taste-free hub). Entity ids are readable slugs (``person/ada_varga_12``),
  since atomic files carry no separate entity names.
* Item text (``.item``): a title made of its taste's words (70% per word) and genres of its taste.
* ``.net``: friend links, 80% between users of the same main taste.

Everything is vectorised numpy, drawn from one seeded generator, and written in chunks, so the same
seed gives the same bytes and 10⁶ items / 10⁷ interactions fit in a few GiB.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kerec.errors import KerecError

MIN_PER_USER = 5  # a per-user 8:1:1 split needs a few interactions per user
NOISE = 0.10  # share of interactions drawn from global popularity, taste-free
CHUNK = 1_000_000  # rows per write and per vectorised step: bounds the memory of both
RELATIONS = ("film.film.directed_by", "film.film.subject", "film.film.starring", "film.film.language",
             "people.person.nationality")
_WORDS = ("shadow night river empire garden star machine ocean winter harbor crown signal forest ember glass "
          "mirror storm desert iron silver velvet thunder echo orbit canyon lantern hollow summit tide frost "
          "ghost circus rebel orchard comet island engine violet raven atlas meadow quarry spiral cobalt "
          "falcon marble ashes beacon citadel drift fable galaxy hazard ivory jungle kingdom legend mosaic "
          "nomad oracle prism quest relic saga temple utopia vortex willow zenith anchor bandit cipher "
          "dynasty eclipse frontier gambit horizon inferno jester karma labyrinth monsoon nebula outpost "
          "phantom quiver requiem sentinel tempest umbra vanguard wander xenon yonder zephyr").split()
_GENRES = ("Action Adventure Animation Comedy Crime Documentary Drama Fantasy Horror Musical Mystery "
           "Romance Sci-Fi Thriller War Western Noir Family Sport History Biography Satire Heist Spy").split()
_FIRST = ("ada bela cyra dario elio faye goran hana ivo juna kasi lior mira noor oren pia quin rafe sela "
          "tomas uma vito wren xena yuri zora").split()
_LAST = ("varga lindqvist okafor moreau tanaka ruiz novak haddad keller silva brandt ito petrov costa "
         "dubois meyer horvat quinn abara falk").split()
_LANGUAGES = ("english", "french", "spanish", "japanese", "hindi", "korean")
_COUNTRIES = ("velmora", "ostria", "kalden", "brisca", "tarnia", "lumeria", "corvale", "ystria")


@dataclass(frozen=True)
class SynthConfig:
    """Sizes and knobs of one synthetic dataset; see the module doc for what each shapes."""

    users: int
    items: int
    interactions: int
    triples: int
    seed: int = 2020
    tastes: int = 20
    friends: float = 5.0  # mean friend links per user in .net (0: no .net file)
    name: str = "synth"

    def __post_init__(self) -> None:
        for field, least in (("users", 2), ("items", 2), ("tastes", 1)):
            if getattr(self, field) < least:
                raise KerecError(f"synth: --{field} must be at least {least}, got {getattr(self, field)}")
        if self.interactions < MIN_PER_USER * self.users:
            raise KerecError(f"synth: --interactions must be at least {MIN_PER_USER} per user "
                             f"({MIN_PER_USER * self.users:,} for {self.users:,} users), got {self.interactions:,}")
        if self.interactions > self.users * self.items // 2:
            raise KerecError(f"synth: {self.interactions:,} interactions fill more than half of the "
                             f"{self.users:,} × {self.items:,} matrix; ask for fewer or add users/items")
        if self.triples < self.min_triples:
            raise KerecError(f"synth: --triples must be at least {self.min_triples:,} (a director and a subject "
                             f"per item and a nationality per person), got {self.triples:,}")
        if not 0 <= self.friends <= self.users / 4:
            raise KerecError(f"synth: --friends must be between 0 and users/4, got {self.friends}")
        if not self.name or any(c in self.name for c in "/\\\t\n."):
            raise KerecError(f"synth: dataset name {self.name!r} must be a plain file stem")

    @property
    def tastes_used(self) -> int:
        return min(self.tastes, self.items)

    @property
    def directors(self) -> int:
        return max(self.tastes_used, self.items // 10)

    @property
    def actors(self) -> int:
        return max(2 * self.tastes_used, self.items // 4)

    @property
    def min_triples(self) -> int:
        return 2 * self.items + self.directors + self.actors


@dataclass(frozen=True)
class SynthReport:
    """What was written: the folder and each file's row count."""

    directory: Path
    rows: dict[str, int]


def synthesize(config: SynthConfig, out: str | Path) -> SynthReport:
    """Write ``<name>.inter/.item/.kg/.link`` (and ``.net`` when ``friends > 0``) into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(config.seed)
    k = config.tastes_used
    item_taste = rng.integers(0, k, size=config.items)
    popularity = _zipf_weights(config.items, rng)
    mixture = rng.dirichlet(np.full(k, 0.1), size=config.users).astype(np.float32)
    rows = {"item": _write_items(out / f"{config.name}.item", item_taste, k, rng)}
    users, items = _interactions(config, item_taste, popularity, mixture, rng)
    rows["inter"] = _write_interactions(out / f"{config.name}.inter", users, items, item_taste, mixture, rng)
    del users, items
    rows.update(_write_kg(out, config, item_taste, rng))
    if config.friends > 0:
        rows["net"] = _write_net(out / f"{config.name}.net", config, mixture.argmax(axis=1), rng)
    return SynthReport(out, rows)


# ---- drawing --------------------------------------------------------------------------------------------
def _zipf_weights(n: int, rng: np.random.Generator) -> np.ndarray:
    """shape: (n,) float64 summing to 1 — weight ∝ 1 / rank, ranks a seeded permutation."""
    rank = rng.permutation(n) + 1
    w = 1.0 / rank
    return w / w.sum()


def _by_group(weights: np.ndarray, group: np.ndarray, k: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """For each group g < k: its members (ascending) and their cumulative weights, normalised to 1."""
    members, cumulative = [], []
    for g in range(k):
        idx = np.flatnonzero(group == g)
        c = np.cumsum(weights[idx])
        members.append(idx)
        cumulative.append(c / c[-1] if len(c) else c)
    return members, cumulative


def _draw_in_groups(groups: np.ndarray, members: list[np.ndarray], cumulative: list[np.ndarray],
                    fallback: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One member per row of ``groups``, by weight within the group (an empty group: ``fallback``'s)."""
    out = np.empty(len(groups), dtype=np.int64)
    u = rng.random(len(groups))
    full = np.cumsum(fallback)
    full /= full[-1]
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        if len(members[g]):
            out[rows] = members[g][np.minimum(np.searchsorted(cumulative[g], u[rows]), len(members[g]) - 1)]
        else:
            out[rows] = np.minimum(np.searchsorted(full, u[rows]), len(full) - 1)
    return out


def _draw_weighted(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    c = np.cumsum(weights)
    return np.minimum(np.searchsorted(c / c[-1], rng.random(n)), len(c) - 1)


def _unique_pairs(draw: Callable[[int], tuple[np.ndarray, np.ndarray]], target: int, width: int,
                  rng: np.random.Generator, keep_first_of: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exactly ``target`` distinct pairs (a, b) with b < ``width``, drawn by ``draw(n)`` until enough, in a
    seeded random order. ``keep_first_of``: the number of distinct ``a`` whose every value keeps at least
    one pair when the surplus is dropped (so no user vanishes from the .inter file)."""
    keys = np.zeros(0, dtype=np.int64)
    for _ in range(50):
        a, b = draw(max(int((target - len(keys)) * 1.2), 1000))
        keys = np.unique(np.concatenate([keys, a * width + b]))
        if len(keys) >= target:
            break
    else:
        raise KerecError(f"synth: could not draw {target:,} distinct pairs; the sizes leave too little room")
    surplus = len(keys) - target
    if surplus:
        droppable = np.ones(len(keys), dtype=bool)
        if keep_first_of is not None:
            _, first = np.unique(keys // width, return_index=True)
            droppable[first] = False
        drop = rng.choice(np.flatnonzero(droppable), size=surplus, replace=False)
        keys = np.delete(keys, drop)
    keys = keys[rng.permutation(len(keys))]
    return keys // width, keys % width


def _interactions(config: SynthConfig, item_taste: np.ndarray, popularity: np.ndarray, mixture: np.ndarray,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) index arrays of ``config.interactions`` distinct pairs; every user has at least one."""
    k = config.tastes_used
    activity = _zipf_weights(config.users, rng) ** 0.5  # flatter than items: heavy users, not one user
    activity /= activity.sum()
    members, cumulative = _by_group(popularity, item_taste, k)
    cum_mix = np.cumsum(mixture, axis=1)
    first = True

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        nonlocal first
        if first:  # the floor: MIN_PER_USER per user, the rest by activity
            base = np.repeat(np.arange(config.users), MIN_PER_USER)
            users = np.concatenate([base, _draw_weighted(activity, max(n - len(base), 0), rng)])
            first = False
        else:
            users = _draw_weighted(activity, n, rng)
        items = np.empty(len(users), dtype=np.int64)
        for s in range(0, len(users), CHUNK):
            u = users[s:s + CHUNK]
            r = rng.random((len(u), 1), dtype=np.float32)
            taste = np.minimum((cum_mix[u] < r).sum(axis=1), k - 1)
            picked = _draw_in_groups(taste, members, cumulative, popularity, rng)
            noise = rng.random(len(u)) < NOISE
            picked[noise] = _draw_weighted(popularity, int(noise.sum()), rng)
            items[s:s + CHUNK] = picked
        return users, items

    return _unique_pairs(draw, config.interactions, config.items, rng, keep_first_of=config.users)


# ---- writing --------------------------------------------------------------------------------------------
def _write_rows(path: Path, header: str, columns: list[np.ndarray]) -> int:
    """Tab-separated rows, written a chunk at a time; every column is already an array of strings or ints."""
    n = len(columns[0])
    with path.open("w", encoding="utf-8", newline="\n") as f:
        f.write(header + "\n")
        for s in range(0, n, CHUNK):
            parts = [c[s:s + CHUNK].astype(str) for c in columns]
            f.write("\n".join("\t".join(row) for row in zip(*parts)))
            f.write("\n")
    return n


def _write_items(path: Path, item_taste: np.ndarray, k: int, rng: np.random.Generator) -> int:
    """``.item``: id, a title of the item's taste words, a year, genres of its taste (the text signal)."""
    n = len(item_taste)
    words = np.array(_WORDS)
    # Each taste owns a disjoint slice of the vocabulary where there are enough words, else shares it.
    per_taste = max(len(words) // k, 3)
    own = (item_taste[:, None] * per_taste + rng.integers(0, per_taste, size=(n, 2))) % len(words)
    anywhere = rng.integers(0, len(words), size=(n, 2))
    pick = np.where(rng.random((n, 2)) < 0.7, own, anywhere)
    genre_of = np.array(_GENRES)
    g1 = item_taste % len(genre_of)
    g2 = np.where(rng.random(n) < 0.8, (item_taste * 7 + 3) % len(genre_of), rng.integers(0, len(genre_of), n))
    years = rng.integers(1950, 2025, size=n)
    titles = np.char.add(np.char.add(np.char.capitalize(words[pick[:, 0]]), " "), np.char.capitalize(words[pick[:, 1]]))
    genres = np.where(g1 == g2, genre_of[g1], np.char.add(np.char.add(genre_of[g1], " "), genre_of[g2]))
    ids = np.arange(1, n + 1)
    return _write_rows(path, "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq",
                       [ids, titles, years, genres])


def _write_interactions(path: Path, users: np.ndarray, items: np.ndarray, item_taste: np.ndarray,
                        mixture: np.ndarray, rng: np.random.Generator) -> int:
    """``.inter``: ratings higher where the item's taste is the user's; timestamps over three years."""
    order = np.lexsort((items, users))  # the file reads user by user, as MovieLens' does not need to
    users, items = users[order], items[order]
    ratings = np.empty(len(users), dtype=np.int64)
    for s in range(0, len(users), CHUNK):
        u, i = users[s:s + CHUNK], items[s:s + CHUNK]
        fit = mixture[u, item_taste[i]]
        ratings[s:s + CHUNK] = np.clip(np.rint(2.6 + 2.4 * fit + rng.normal(0, 0.7, len(u))), 1, 5)
    stamps = 880_000_000 + rng.integers(0, 3 * 365 * 86_400, size=len(users))
    return _write_rows(path, "user_id:token\titem_id:token\trating:float\ttimestamp:float",
                       [users + 1, items + 1, ratings, stamps])


def _people(count: int, prefix: str) -> np.ndarray:
    """Readable, distinct person ids: ``person/ada_varga_12``."""
    idx = np.arange(count)
    first = np.array(_FIRST)[idx % len(_FIRST)]
    last = np.array(_LAST)[(idx // len(_FIRST)) % len(_LAST)]
    names = np.char.add(np.char.add(first, "_"), last)
    return np.char.add(np.char.add(np.char.add(f"{prefix}/", names), "_"), idx.astype(str))


def _write_kg(out: Path, config: SynthConfig, item_taste: np.ndarray, rng: np.random.Generator) -> dict[str, int]:
    """``.kg`` and ``.link``: directors, subjects and actors of the item's taste; language and nationality hubs."""
    n, k = config.items, config.tastes_used
    item_entity = np.char.add("film/", np.arange(1, n + 1).astype(str))
    directors, actors = _people(config.directors, "director"), _people(config.actors, "actor")
    subjects = np.array([f"subject/{w}_{t}" for t in range(k) for w in ("theme", "motif", "setting")])
    director_taste = rng.integers(0, k, size=len(directors))
    actor_taste = rng.integers(0, k, size=len(actors))

    def of_taste(taste: np.ndarray, group: np.ndarray, weights: np.ndarray, loyal: float) -> np.ndarray:
        members, cumulative = _by_group(weights, group, k)
        picked = _draw_in_groups(taste, members, cumulative, weights, rng)
        stray = rng.random(len(taste)) < 1 - loyal
        picked[stray] = _draw_weighted(weights, int(stray.sum()), rng)
        return picked

    heads, rels, tails = [], [], []

    def add(h: np.ndarray, relation: int, t: np.ndarray) -> None:
        heads.append(h)
        rels.append(np.full(len(h), relation))
        tails.append(t)

    add(item_entity, 0, directors[of_taste(item_taste, director_taste, _zipf_weights(len(directors), rng), 0.9)])
    add(item_entity, 1, subjects[item_taste * 3 + rng.integers(0, 3, n)])
    people = np.concatenate([directors, actors])
    add(people, 4, np.char.add("country/", np.array(_COUNTRIES))[_draw_weighted(_zipf_weights(len(_COUNTRIES), rng),
                                                                                 len(people), rng)])
    rest = config.triples - 2 * n - len(people)
    languages = min(n, rest // 4)
    lang_items = rng.choice(n, size=languages, replace=False)
    lang_weights = np.array([0.7, 0.1, 0.08, 0.06, 0.04, 0.02])
    add(item_entity[lang_items], 3, np.char.add("language/", np.array(_LANGUAGES))[_draw_weighted(lang_weights, languages, rng)])
    actor_weights = _zipf_weights(len(actors), rng)
    members, cumulative = _by_group(actor_weights, actor_taste, k)

    def draw_cast(m: int) -> tuple[np.ndarray, np.ndarray]:
        films = rng.integers(0, n, size=m)
        cast = _draw_in_groups(item_taste[films], members, cumulative, actor_weights, rng)
        stray = rng.random(m) < 0.2
        cast[stray] = _draw_weighted(actor_weights, int(stray.sum()), rng)
        return films, cast

    starring = rest - languages
    if starring > n * len(actors) // 2:
        raise KerecError(f"synth: {config.triples:,} triples need more than half of all film–actor pairs; "
                         "ask for fewer triples or more items")
    if starring:
        films, cast = _unique_pairs(draw_cast, starring, len(actors), rng)
        order = np.lexsort((cast, films))
        add(item_entity[films[order]], 2, actors[cast[order]])
    relation = np.array(RELATIONS)[np.concatenate(rels)]
    kg_rows = _write_rows(out / f"{config.name}.kg", "head_id:token\trelation_id:token\ttail_id:token",
                          [np.concatenate(heads), relation, np.concatenate(tails)])
    link_rows = _write_rows(out / f"{config.name}.link", "item_id:token\tentity_id:token",
                            [np.arange(1, n + 1), item_entity])
    return {"kg": kg_rows, "link": link_rows}


def _write_net(path: Path, config: SynthConfig, main_taste: np.ndarray, rng: np.random.Generator) -> int:
    """``.net``: directed friend links, 80% to a user of the same main taste."""
    k = config.tastes_used
    target = int(round(config.friends * config.users))
    members, cumulative = _by_group(np.ones(config.users), main_taste, k)

    def draw(m: int) -> tuple[np.ndarray, np.ndarray]:
        source = rng.integers(0, config.users, size=m)
        friend = _draw_in_groups(main_taste[source], members, cumulative, np.ones(config.users), rng)
        stray = rng.random(m) < 0.2
        friend[stray] = rng.integers(0, config.users, size=int(stray.sum()))
        keep = friend != source
        return source[keep], friend[keep]

    source, friend = _unique_pairs(draw, target, config.users, rng)
    order = np.lexsort((friend, source))
    return _write_rows(path, "source_id:token\ttarget_id:token", [source[order] + 1, friend[order] + 1])

