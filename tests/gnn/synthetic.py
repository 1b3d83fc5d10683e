"""A synthetic dataset with a planted answer: 40 users each like one of 4 genres; every item has one
genre entity in the KG and a sequel link. A working retriever must find each user's genre."""
from __future__ import annotations

from pathlib import Path

import numpy as np

USERS, ITEMS, GENRES = 40, 48, 4


def write_synthetic(out: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    inter = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    for u in range(USERS):
        liked = [i for i in range(ITEMS) if i % GENRES == u % GENRES]
        for t, i in enumerate(rng.choice(liked, size=8, replace=False)):
            inter.append(f"u{u}\ti{i}\t5\t{t}")
        for i in rng.choice(ITEMS, size=2, replace=False):  # noise
            inter.append(f"u{u}\ti{i}\t3\t{100 + int(i)}")
    (out / "synth.inter").write_text("\n".join(inter) + "\n")
    (out / "synth.item").write_text("item_id:token\tmovie_title:token_seq\tclass:token_seq\n"
                                    + "".join(f"i{i}\tMovie {i}\tG{i % GENRES}\n" for i in range(ITEMS)))
    (out / "synth.kg").write_text("head_id:token\trelation_id:token\ttail_id:token\n"
                                  + "".join(f"m.{i}\tfilm.film.genre\tm.g{i % GENRES}\n" for i in range(ITEMS))
                                  + "".join(f"m.{i}\tfilm.film.sequel\tm.{i + GENRES}\n" for i in range(ITEMS - GENRES)))
    (out / "synth.link").write_text("item_id:token\tentity_id:token\n" + "".join(f"i{i}\tm.{i}\n" for i in range(ITEMS)))
    return out
