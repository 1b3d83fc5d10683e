"""The Bolt graph store: Neo4j 5 in production, ArcadeDB's Bolt server locally and in CI.

Uses the official ``neo4j`` driver. Every query comes from ``kg_store/*.cypher`` and every value is a
parameter. Driver failures surface as :class:`GraphStoreUnavailable` naming the URI, with retries
bounded so a dead server fails in seconds rather than the driver's default ~30 s.
"""
from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from kerec.kg.ckg import CollaborativeKG
from kerec.kg.cypher import query, schema_statements
from kerec.kg.errors import GraphStoreError, GraphStoreUnavailable
from kerec.kg.model import Fact, Label, NodeRef
from kerec.kg.store import GraphStore, HistoryItem, StoreInfo, StoreStats

ENV_USER, ENV_PASSWORD, ENV_DATABASE = "KEREC_NEO4J_USER", "KEREC_NEO4J_PASSWORD", "KEREC_NEO4J_DATABASE"
CLEAR_BATCH = 10_000


def _neo4j() -> Any:
    try:
        import neo4j
    except ImportError:  # pragma: no cover - neo4j is a core dependency
        raise GraphStoreError("the Bolt store needs the `neo4j` driver: pip install neo4j") from None
    return neo4j


class BoltStore(GraphStore):
    """A graph store reached over Bolt at ``uri``.

    ``auth``: (user, password); defaults to ``$KEREC_NEO4J_USER`` / ``$KEREC_NEO4J_PASSWORD``.
    ``database``: the database name (``$KEREC_NEO4J_DATABASE``; None = the server's default).
    """

    def __init__(self, uri: str, auth: tuple[str, str] | None = None, *, database: str | None = None,
                 timeout: float = 5.0) -> None:
        neo4j = _neo4j()
        self.uri = uri
        if auth is None and os.environ.get(ENV_USER):
            auth = (os.environ[ENV_USER], os.environ.get(ENV_PASSWORD, ""))
        self.database = database or os.environ.get(ENV_DATABASE) or None
        try:
            self._driver = neo4j.GraphDatabase.driver(
                uri, auth=auth, connection_timeout=timeout, max_transaction_retry_time=timeout,
                connection_acquisition_timeout=2 * timeout)
        except (ValueError, neo4j.exceptions.ConfigurationError) as exc:
            raise GraphStoreUnavailable(uri, f"not a usable Bolt URI ({exc})") from None
        try:
            self._check()
        except GraphStoreError:
            self._driver.close()
            raise

    # ---- plumbing ------------------------------------------------------------------------------------
    def ping(self) -> None:
        self._check()

    def _check(self) -> None:
        """One query in a plain session: no retries, so a wrong URI or password fails at once."""
        with self._translated_errors(), self._driver.session(database=self.database) as session:
            session.run("RETURN 1 AS ok").consume()

    @contextmanager
    def _translated_errors(self) -> Iterator[None]:
        exc_mod = _neo4j().exceptions
        try:
            yield
        except exc_mod.AuthError as exc:
            raise GraphStoreUnavailable(self.uri, f"authentication failed ({exc.message}); check the user "
                                        f"and password (--db-user/--db-password or ${ENV_USER}/${ENV_PASSWORD})") from None
        except (exc_mod.ServiceUnavailable, exc_mod.SessionExpired, OSError) as exc:
            raise GraphStoreUnavailable(self.uri, f"cannot connect ({exc}); is the server running? "
                                        "`kerec kg serve` starts a local one") from None
        except exc_mod.Neo4jError as exc:
            raise GraphStoreError(f"{self.uri}: query failed: {exc.message or exc}") from None
        except exc_mod.DriverError as exc:
            raise GraphStoreUnavailable(self.uri, str(exc)) from None

    def _run(self, cypher: str, /, **params: object) -> list[dict[str, Any]]:
        with self._translated_errors():
            records, _, _ = self._driver.execute_query(cypher, params, database_=self.database)
        return [r.data() for r in records]

    def _named(self, filename: str, query_name: str, /, **params: object) -> list[dict[str, Any]]:
        return self._run(query(filename, query_name), **params)

    def _collected(self, query_name: str, /, **params: object) -> list[Any]:
        records = self._named("read.cypher", query_name, **params)
        if not records:
            return []
        key = next(iter(records[0]))
        return list(records[0][key] or [])

    def close(self) -> None:
        self._driver.close()

    # ---- writes ----------------------------------------------------------------------------------------
    def info(self) -> StoreInfo | None:
        rows = self._named("read.cypher", "meta")
        if not rows or rows[0]["name"] is None:
            return None
        return StoreInfo(rows[0]["name"], rows[0]["fingerprint"], bool(rows[0]["complete"]))

    def clear(self) -> None:
        while self._named("import.cypher", "clear_batch", limit=CLEAR_BATCH)[0]["deleted"]:
            pass

    def _begin(self, ckg: CollaborativeKG) -> None:
        for statement in schema_statements():
            self._run(statement)
        self._named("import.cypher", "meta_begin", name=ckg.name, fingerprint=ckg.fingerprint)

    def _write(self, kind: str, rows: Sequence[dict[str, object]]) -> None:
        self._named("import.cypher", kind, rows=list(rows))

    def _complete(self) -> None:
        self._named("import.cypher", "meta_complete")

    # ---- reads -----------------------------------------------------------------------------------------
    def existing(self, label: Label, ids: Sequence[str]) -> set[str]:
        return set(self._collected(f"existing_{label}", ids=list(ids)))

    def incident_facts(self, nodes: Sequence[NodeRef]) -> dict[NodeRef, list[Fact]]:
        out: dict[NodeRef, dict[str, Fact]] = {n: {} for n in nodes}
        by_label: dict[str, list[str]] = defaultdict(list)
        for n in nodes:
            by_label[n.label].append(n.id)
        for label, ids in by_label.items():
            # One record per node with a list of strings: strings are invisible to the garbage
            # collector, so a large answer adds almost no collector work.
            for record in self._named("read.cypher", f"incident_{label}", ids=ids):
                facts = out[NodeRef(label, record["k"])]  # type: ignore[arg-type]
                for row in record["rows"]:
                    fact = Fact.from_row(row)
                    facts[fact.id] = fact
        return {n: [facts[f] for f in sorted(facts)] for n, facts in out.items()}

    def facts(self, fact_ids: Sequence[str]) -> dict[str, Fact]:
        facts = (Fact.from_row(row) for row in self._collected("facts_by_id", fids=list(dict.fromkeys(fact_ids))))
        return {f.id: f for f in facts}

    def _history_rows(self, user: str) -> list[HistoryItem]:
        return [HistoryItem(i, float(r), None if ts is None else float(ts))
                for i, ts, r in self._collected("history", user=user)]

    def _names(self, label: Label, ids: Sequence[str]) -> dict[str, str | None]:
        return {k: name for k, name in self._collected(f"names_{label}", ids=list(ids))}

    def stats(self) -> StoreStats:
        held = self.info()
        counts = {label: self._named("read.cypher", f"count_{label}")[0]["n"] for label in ("User", "Item", "Entity")}
        relations = {r["rel"]: r["n"] for r in self._named("read.cypher", "count_relations")}
        return StoreStats(held.name if held else None, counts["User"], counts["Item"], counts["Entity"],
                          self._named("read.cypher", "count_interactions")[0]["n"],
                          sum(relations.values()), dict(sorted(relations.items())))

    def _node_index(self, label: Label) -> dict[str, int]:
        return {k: int(idx) for k, idx in self._collected(f"node_index_{label}")}

    def _all_facts(self) -> Iterable[Fact]:
        return (Fact.from_row(row) for row in self._collected("all_facts"))
