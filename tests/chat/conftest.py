"""A retriever trained once per test session on :mod:`tests.chat.films`, and a Recommender over it."""
from __future__ import annotations

from pathlib import Path

import pytest

from kerec.api import Recommender

from .films import write_films


@pytest.fixture(scope="session")
def films_trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from kerec.cli import main

    root = tmp_path_factory.mktemp("chat")
    data = write_films(root / "films")
    out = root / "run"
    assert main(["train", "retriever", "--data", str(data), "--no-text", "--dim", "16", "--epochs", "40",
                 "--batch-size", "64", "--lr", "0.01", "--out", str(out)]) == 0
    return data, out / "retriever.pt"


@pytest.fixture(scope="session")
def films_rec(films_trained: tuple[Path, Path]) -> Recommender:
    data, ckpt = films_trained
    return Recommender.load(ckpt, data=str(data), llm=None)
