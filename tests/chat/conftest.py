"""A retriever trained once per test session on :mod:`tests.chat.films`, and a Recommender over it."""
from __future__ import annotations

from pathlib import Path

import pytest

from kerec.api import Recommender

from .films import write_films
from ..tiny_retriever import train_tiny_retriever


@pytest.fixture(scope="session")
def films_trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("chat")
    data = write_films(root / "films")
    out = root / "run"
    return data, train_tiny_retriever(data, out)


@pytest.fixture(scope="session")
def films_rec(films_trained: tuple[Path, Path]) -> Recommender:
    data, ckpt = films_trained
    return Recommender.load(ckpt, data=str(data), llm=None)
