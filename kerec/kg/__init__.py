"""The knowledge-graph stage: the collaborative KG (:mod:`kerec.kg.ckg`), graph stores behind one
interface (in-process memory, Bolt for Neo4j / ArcadeDB), path retrieval and tensor export.
"""
from __future__ import annotations

from kerec.kg.ckg import CollaborativeKG, build_ckg, ckg_tensors
from kerec.kg.errors import GraphStoreError, GraphStoreUnavailable, StoreHoldsOtherDataset, UnknownFactError
from kerec.kg.memory import MemoryStore
from kerec.kg.model import Fact, NodeRef, Path
from kerec.kg.store import GraphStore, HistoryItem, LoadReport, StoreInfo, StoreStats
from kerec.kg.tensors import CKGTensors

__all__ = [
    "CKGTensors", "CollaborativeKG", "Fact", "GraphStore", "GraphStoreError", "GraphStoreUnavailable",
    "HistoryItem", "LoadReport", "MemoryStore", "NodeRef", "Path", "StoreHoldsOtherDataset", "StoreInfo",
    "StoreStats", "UnknownFactError", "build_ckg", "ckg_tensors", "open_store",
]


def open_store(uri: str = "memory", *, auth: tuple[str, str] | None = None, database: str | None = None) -> GraphStore:
    """``"memory"`` → a new in-process store; ``bolt://…`` / ``neo4j://…`` → a :class:`BoltStore`."""
    if uri in ("memory", "memory://"):
        return MemoryStore()
    if uri.split("://", 1)[0] in ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc"):
        from kerec.kg.bolt import BoltStore

        return BoltStore(uri, auth, database=database)
    raise GraphStoreError(f"unknown graph store {uri!r}; use 'memory' or a bolt:// / neo4j:// URI")
