"""The graph-store interface. Backends implement a few primitive reads and batched writes; loading
rules, path search, neighbourhoods and tensor export are written once here, so every backend gives the
same answers by construction and the contract tests check the primitives.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from kerec.data import UnknownIdError
from kerec.kg.ckg import CollaborativeKG
from kerec.kg.errors import GraphStoreError, StoreHoldsOtherDataset, UnknownFactError
from kerec.kg.model import LABELS, Fact, Label, NodeRef, Path
from kerec.kg.tensors import CKGTensors, build_tensors

MAX_HOPS = 3


@dataclass(frozen=True)
class StoreInfo:
    """Which dataset a store holds; ``complete`` is False while (or after a failed) load."""

    name: str
    fingerprint: str
    complete: bool

    def incomplete(self) -> str | None:
        """None for a finished load; otherwise what is wrong and how to fix it, in the words every place that
        reports it uses (``kg stats``, ``/ready``, ``Recommender.load``)."""
        if self.complete:
            return None
        return (f"holds an INCOMPLETE load of dataset {self.name!r}: a load started and did not finish (it failed "
                "or was stopped, or is still running); its counts are partial. Run `kerec kg load` again: it "
                "clears the partial load and starts over")


@dataclass(frozen=True)
class StoreStats:
    dataset: str | None
    users: int
    items: int
    entities: int
    interactions: int
    facts: int
    relations: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadReport:
    dataset: str
    action: str  # "loaded", "replaced", "already loaded"
    counts: dict[str, int]
    seconds: float


@dataclass(frozen=True)
class HistoryItem:
    item: str
    rating: float
    timestamp: float | None


def _batches(rows: Sequence[dict[str, object]], size: int) -> Iterator[Sequence[dict[str, object]]]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def load_plan(ckg: CollaborativeKG) -> list[tuple[str, list[dict[str, object]]]]:
    """The (write kind, rows) a load performs, in order: nodes first, then edges grouped by label pair."""
    plan: list[tuple[str, list[dict[str, object]]]] = [
        ("users", [{"id": n.id, "idx": n.idx} for n in ckg.users]),
        ("items", [{"id": n.id, "idx": n.idx, "name": n.name, "entity": n.entity} for n in ckg.items]),
        ("entities", [{"id": n.id, "idx": n.idx, "name": n.name, "kind": n.kind} for n in ckg.entities]),
        ("interactions", [{"user": r.user, "item": r.item, "rating": r.rating, "timestamp": r.timestamp}
                          for r in ckg.interactions]),
    ]
    by_pair: dict[str, list[dict[str, object]]] = defaultdict(list)
    for f in ckg.facts:
        by_pair[f"facts_{f.head.label}_{f.tail.label}"].append(
            {"fid": f.id, "rel": f.relation, "head": f.head.id, "tail": f.tail.id, "row": f.row()})
    plan.extend(sorted(by_pair.items()))
    return plan


class GraphStore(ABC):
    """A collaborative KG in a graph store. One store holds one dataset."""

    uri: str

    def ping(self) -> None:
        """Raise :class:`GraphStoreUnavailable` unless the store answers now, in one try without retries
        (what a readiness probe asks; other calls retry for a few seconds). In-process stores always answer."""

    # ---- primitives every backend implements -------------------------------------------------
    @abstractmethod
    def info(self) -> StoreInfo | None:
        """The dataset held, or None for an empty store."""

    @abstractmethod
    def clear(self) -> None:
        """Delete everything kerec put in the store."""

    @abstractmethod
    def _begin(self, ckg: CollaborativeKG) -> None:
        """Apply the schema and mark ``ckg`` as being loaded (incomplete)."""

    @abstractmethod
    def _write(self, kind: str, rows: Sequence[dict[str, object]]) -> None:
        """Write one batch of rows of ``kind`` (a name from :func:`load_plan`)."""

    @abstractmethod
    def _complete(self) -> None:
        """Mark the load complete."""

    @abstractmethod
    def existing(self, label: Label, ids: Sequence[str]) -> set[str]:
        """The subset of ``ids`` that are nodes with ``label``."""

    @abstractmethod
    def incident_facts(self, nodes: Sequence[NodeRef]) -> dict[NodeRef, list[Fact]]:
        """Every fact touching each node (either direction), sorted by fact id; unknown nodes map to []."""

    @abstractmethod
    def facts(self, fact_ids: Sequence[str]) -> dict[str, Fact]:
        """The facts with these ids that exist (unknown ids are absent from the result)."""

    @abstractmethod
    def _history_rows(self, user: str) -> list[HistoryItem]:
        """The user's interactions, any order."""

    @abstractmethod
    def _names(self, label: Label, ids: Sequence[str]) -> dict[str, str | None]:
        """Stored names (item titles, entity names) of existing nodes."""

    @abstractmethod
    def stats(self) -> StoreStats: ...

    @abstractmethod
    def _node_index(self, label: Label) -> dict[str, int]: ...

    @abstractmethod
    def _all_facts(self) -> Iterable[Fact]: ...

    def close(self) -> None:
        """Release connections; a closed store must not be used again."""

    def __enter__(self) -> GraphStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- loading -------------------------------------------------------------------------------
    def load(self, ckg: CollaborativeKG, *, batch_size: int = 10_000, progress: bool = True,
             replace: bool = False) -> LoadReport:
        """Load ``ckg``. Loading the dataset a store already holds changes nothing; a store holding
        another dataset is only overwritten with ``replace=True``; a half-finished load is cleared first.
        """
        if batch_size < 1:
            raise GraphStoreError(f"batch_size must be positive, got {batch_size}")
        start = time.perf_counter()
        held = self.info()
        if held is not None and held.complete and held.fingerprint == ckg.fingerprint:
            return LoadReport(ckg.name, "already loaded", ckg.counts(), time.perf_counter() - start)
        if held is not None and held.complete and not replace:
            raise StoreHoldsOtherDataset(
                f"{self.uri} already holds dataset {held.name!r} (fingerprint {held.fingerprint}); "
                f"pass replace=True (CLI: --replace) to overwrite it with {ckg.name!r}")
        if held is not None:
            self.clear()
        self._begin(ckg)
        plan = load_plan(ckg)
        total = sum(len(rows) for _, rows in plan)
        with tqdm(total=total, desc=f"loading {ckg.name} into {self.uri}", unit="row",
                  disable=not progress, leave=False) as bar:
            for kind, rows in plan:
                for batch in _batches(rows, batch_size):
                    self._write(kind, batch)
                    bar.update(len(batch))
        self._complete()
        action = "replaced" if held is not None and held.complete else "loaded"
        return LoadReport(ckg.name, action, ckg.counts(), time.perf_counter() - start)

    # ---- reads built on the primitives -------------------------------------------------------------
    def require(self, label: Label, ids: Sequence[str]) -> None:
        """Raise :class:`UnknownIdError` naming the first id that is not a ``label`` node."""
        found = self.existing(label, list(dict.fromkeys(ids)))
        for i in ids:
            if i not in found:
                raise UnknownIdError(label.lower(), i, f"the graph store at {self.uri} has no such {label} node")

    def node_index(self, label: Label) -> dict[str, int]:
        """External id → index of every ``label`` node: the index space of :meth:`to_tensors`."""
        return self._node_index(label)

    def fact(self, fact_id: str) -> Fact:
        found = self.facts([fact_id])
        if fact_id not in found:
            raise UnknownFactError(fact_id)
        return found[fact_id]

    def neighbourhood(self, item: str) -> list[Fact]:
        """Every fact about ``item``, sorted by (relation, other end)."""
        self.require("Item", [item])
        ref = NodeRef("Item", item)
        return sorted(self.incident_facts([ref])[ref], key=lambda f: (f.relation, f.other(ref), f.id))

    def history(self, user: str) -> list[HistoryItem]:
        """The user's interactions, oldest first (ties and missing timestamps by item id)."""
        self.require("User", [user])
        rows = self._history_rows(user)
        return sorted(rows, key=lambda h: (h.timestamp is None, h.timestamp or 0.0, h.item))

    def names(self, nodes: Iterable[NodeRef]) -> dict[NodeRef, str | None]:
        """Readable names: item titles, entity names; None where the KG has none (users, most Freebase ids)."""
        nodes = list(dict.fromkeys(nodes))
        out: dict[NodeRef, str | None] = {n: None for n in nodes if n.label == "User"}
        for label in ("Item", "Entity"):
            ids = [n.id for n in nodes if n.label == label]
            if ids:
                for ident, name in self._names(label, ids).items():
                    out[NodeRef(label, ident)] = name
        return out

    def paths(self, history: Sequence[str], candidates: Sequence[str], *, max_hops: int = 2) -> list[Path]:
        """All simple paths of ``1..max_hops`` facts from a history item to a candidate item.

        Facts are walked in either direction; intermediate nodes are any KG node but users; a path
        never revisits a node. Sorted by (source, target, hops, fact ids).
        """
        if not 1 <= max_hops <= MAX_HOPS:
            raise GraphStoreError(f"max_hops must be between 1 and {MAX_HOPS}, got {max_hops}")
        self.require("Item", list(history) + list(candidates))
        hist = [NodeRef("Item", h) for h in dict.fromkeys(history)]
        cands = [NodeRef("Item", c) for c in dict.fromkeys(candidates)]
        if not hist or not cands:
            return []
        incident = self.incident_facts(list(dict.fromkeys(hist + cands)))
        cand_set = set(cands)
        # y -> [(candidate, fact linking y to it)]: the candidate side of every join.
        into_cand: dict[NodeRef, list[tuple[NodeRef, Fact]]] = defaultdict(list)
        for c in cands:
            for f in incident[c]:
                y = f.other(c)
                if y != c and y.label != "User":
                    into_cand[y].append((c, f))
        found: list[Path] = []
        frontier: list[tuple[NodeRef, Fact, NodeRef]] = []
        for h in hist:
            for f in incident[h]:
                x = f.other(h)
                if x == h or x.label == "User":
                    continue
                if x in cand_set:
                    found.append(Path(h.id, x.id, (f,), (h, x)))
                frontier.append((h, f, x))
        if max_hops >= 2:
            for h, f1, x in frontier:
                for c, f2 in into_cand.get(x, ()):
                    if c != h and f2.id != f1.id:
                        found.append(Path(h.id, c.id, (f1, f2), (h, x, c)))
        if max_hops >= 3:
            middle = self.incident_facts(list(dict.fromkeys(x for _, _, x in frontier)))
            for h, f1, x in frontier:
                for f2 in middle[x]:
                    y = f2.other(x)
                    if y in (x, h) or f2.id == f1.id:
                        continue
                    for c, f3 in into_cand.get(y, ()):
                        if c not in (h, x) and f3.id not in (f1.id, f2.id):
                            found.append(Path(h.id, c.id, (f1, f2, f3), (h, x, y, c)))
        # Facts are tuples led by their unique id, so comparing them orders by fact ids.
        return sorted(found, key=lambda p: (p.source, p.target, len(p.facts), p.facts))

    def to_tensors(self, *, interactions: np.ndarray | None = None, add_inverse: bool = True) -> CKGTensors:
        """The stored KG facts as GNN tensors; user–item edges come from ``interactions`` (training
        pairs of user and item *indices*), never from the store, so held-out pairs cannot leak."""
        index = {label: self._node_index(label) for label in LABELS}
        return build_tensors(index, ((f.head, f.relation, f.tail) for f in self._all_facts()),
                             interactions=interactions, add_inverse=add_inverse)
