"""The in-process graph store: dicts of nodes and facts, the embedded default (no server needed)."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from kerec.kg.ckg import CollaborativeKG
from kerec.kg.model import LABELS, Fact, Label, NodeRef
from kerec.kg.store import GraphStore, HistoryItem, StoreInfo, StoreStats

_NODE_KINDS: dict[str, Label] = {"users": "User", "items": "Item", "entities": "Entity"}


class MemoryStore(GraphStore):
    """Holds the collaborative KG in Python dicts; same interface and answers as the Bolt store."""

    def __init__(self) -> None:
        self.uri = "memory://"
        self.clear()

    def clear(self) -> None:
        self._info: StoreInfo | None = None
        self._nodes: dict[Label, dict[str, dict[str, object]]] = {label: {} for label in LABELS}
        self._facts: dict[str, Fact] = {}
        self._incident: dict[NodeRef, list[str]] = defaultdict(list)
        self._history: dict[str, list[HistoryItem]] = defaultdict(list)
        self._interactions = 0

    def info(self) -> StoreInfo | None:
        return self._info

    def _begin(self, ckg: CollaborativeKG) -> None:
        self._info = StoreInfo(ckg.name, ckg.fingerprint, complete=False)

    def _complete(self) -> None:
        if self._info is not None:
            self._info = StoreInfo(self._info.name, self._info.fingerprint, complete=True)

    def _write(self, kind: str, rows: Sequence[dict[str, object]]) -> None:
        if kind in _NODE_KINDS:
            table = self._nodes[_NODE_KINDS[kind]]
            for row in rows:
                table[str(row["id"])] = dict(row)
        elif kind == "interactions":
            for row in rows:
                ts = row["timestamp"]
                self._history[str(row["user"])].append(
                    HistoryItem(str(row["item"]), float(row["rating"]), None if ts is None else float(ts)))  # type: ignore[arg-type]
            self._interactions += len(rows)
        elif kind.startswith("facts_"):
            for row in rows:
                fact = Fact.from_row(str(row["row"]))
                if fact.id in self._facts:
                    continue
                self._facts[fact.id] = fact
                self._incident[fact.head].append(fact.id)
                if fact.tail != fact.head:
                    self._incident[fact.tail].append(fact.id)
        else:
            raise ValueError(f"unknown write kind {kind!r}")

    def existing(self, label: Label, ids: Sequence[str]) -> set[str]:
        table = self._nodes[label]
        return {i for i in ids if i in table}

    def incident_facts(self, nodes: Sequence[NodeRef]) -> dict[NodeRef, list[Fact]]:
        facts = self._facts
        return {n: [facts[f] for f in sorted(self._incident.get(n, ()))] for n in nodes}

    def facts(self, fact_ids: Sequence[str]) -> dict[str, Fact]:
        return {f: self._facts[f] for f in fact_ids if f in self._facts}

    def _history_rows(self, user: str) -> list[HistoryItem]:
        return list(self._history.get(user, ()))

    def _names(self, label: Label, ids: Sequence[str]) -> dict[str, str | None]:
        table = self._nodes[label]
        key = "name"
        return {i: table[i].get(key) for i in ids if i in table}  # type: ignore[misc]

    def stats(self) -> StoreStats:
        relations: dict[str, int] = defaultdict(int)
        for f in self._facts.values():
            relations[f.relation] += 1
        return StoreStats(self._info.name if self._info else None, len(self._nodes["User"]),
                          len(self._nodes["Item"]), len(self._nodes["Entity"]), self._interactions,
                          len(self._facts), dict(sorted(relations.items())))

    def _node_index(self, label: Label) -> dict[str, int]:
        return {i: int(row["idx"]) for i, row in self._nodes[label].items()}  # type: ignore[call-overload]

    def _all_facts(self) -> Iterable[Fact]:
        return self._facts.values()
