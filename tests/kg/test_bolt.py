"""Bolt-only behaviour: connection failures are clear, and a restarted server keeps its data."""
from __future__ import annotations

from pathlib import Path

import pytest

from kerec.data import Dataset
from kerec.kg import GraphStoreUnavailable, build_ckg, open_store
from kerec.kg.bolt import BoltStore
from kerec.kg.server import LocalBoltServer, free_port

from ..conftest import BoltTarget

pytestmark = pytest.mark.bolt


def test_unreachable_uri_names_it() -> None:
    uri = f"bolt://127.0.0.1:{free_port()}"
    with pytest.raises(GraphStoreUnavailable) as info:
        BoltStore(uri, ("root", "x"), timeout=1.0)
    assert uri in str(info.value) and "kerec kg serve" in str(info.value)


def test_wrong_password(bolt: BoltTarget) -> None:
    assert bolt.auth is not None
    with pytest.raises(GraphStoreUnavailable, match="authentication failed") as info:
        BoltStore(bolt.uri, (bolt.auth[0], bolt.auth[1] + "-wrong"), database=bolt.database)
    assert bolt.uri in str(info.value)


def test_bad_uri_scheme() -> None:
    with pytest.raises(Exception, match="unknown graph store 'http://x'"):
        open_store("http://x")


def test_killed_server_fails_fast_and_restart_recovers(tmp_path: Path, tiny: Dataset) -> None:
    server = LocalBoltServer(tmp_path / "db").start()
    store = BoltStore(server.uri, server.auth, database="graph", timeout=2.0)
    store.load(build_ckg(tiny), progress=False)
    server.stop()
    with pytest.raises(GraphStoreUnavailable, match=server.uri):
        store.stats()
    server.start()  # same folder, port and password
    assert store.stats().facts == 30  # data survived; the driver reconnected by itself
    assert store.load(build_ckg(tiny), progress=False).action == "already loaded"
    store.close()
    server.stop()
