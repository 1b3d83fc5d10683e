"""A second domain for the evaluation harness: books with author and publisher relations, no years.

Planted signal: 48 readers each read books of one of 6 authors (8 books each) — author taste decides
almost everything; every book has one author and one of 3 publishers in the KG. A retriever that learns
either the collaborative signal or the author links must beat popularity and random by far.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

READERS, BOOKS, AUTHORS, PUBLISHERS = 48, 48, 6, 3


def write_books(out: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    author = {b: b % AUTHORS for b in range(BOOKS)}
    inter = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    for r in range(READERS):
        liked = [b for b in range(BOOKS) if author[b] == r % AUTHORS]
        for t, b in enumerate(rng.choice(liked, size=7, replace=False)):
            inter.append(f"r{r}\tb{b}\t5\t{t}")
        inter.append(f"r{r}\tb{int(rng.integers(BOOKS))}\t2\t50")  # noise
    (out / "books.inter").write_text("\n".join(dict.fromkeys(inter)) + "\n")
    (out / "books.item").write_text("item_id:token\ttitle:token_seq\n"
                                    + "".join(f"b{b}\tBook number {b}\n" for b in range(BOOKS)))
    (out / "books.kg").write_text("head_id:token\trelation_id:token\ttail_id:token\n"
                                  + "".join(f"e.b{b}\tbook.written_by\te.author{author[b]}\n" for b in range(BOOKS))
                                  + "".join(f"e.b{b}\tbook.published_by\te.pub{b % PUBLISHERS}\n" for b in range(BOOKS)))
    (out / "books.link").write_text("item_id:token\tentity_id:token\n" + "".join(f"b{b}\te.b{b}\n" for b in range(BOOKS)))
    return out


SPARSE_READERS, SPARSE_BOOKS = 96, 60


def write_sparse_books(out: Path, seed: int = 0) -> Path:
    """Planted for the sparsity protocol: 96 readers read 6 of the 10 books of one of 6 authors, no noise; titles
    say nothing of the author. Thinned to a quarter, most readers keep one training book, so no reader links
    two books: only the KG's ``written_by`` edges tie a reader's book to the rest of its author's."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    inter = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    for r in range(SPARSE_READERS):
        liked = [b for b in range(SPARSE_BOOKS) if b % AUTHORS == r % AUTHORS]
        inter += [f"r{r}\tb{b}\t5\t{t}" for t, b in enumerate(rng.choice(liked, size=6, replace=False))]
    (out / "books.inter").write_text("\n".join(inter) + "\n")
    (out / "books.item").write_text("item_id:token\ttitle:token_seq\n"
                                    + "".join(f"b{b}\tBook number {b}\n" for b in range(SPARSE_BOOKS)))
    (out / "books.kg").write_text("head_id:token\trelation_id:token\ttail_id:token\n"
                                  + "".join(f"e.b{b}\tbook.written_by\te.author{b % AUTHORS}\n" for b in range(SPARSE_BOOKS)))
    (out / "books.link").write_text("item_id:token\tentity_id:token\n"
                                    + "".join(f"b{b}\te.b{b}\n" for b in range(SPARSE_BOOKS)))
    return out
