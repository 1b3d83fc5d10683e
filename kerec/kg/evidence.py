"""Evidence for recommendations: the KG facts that link a user's history to each candidate, grouped into
readable statements, scored, and kept best first (the subgraph retrieval of DESIGN.md).

One :class:`Evidence` is one *route*: a direct fact between a history item and the candidate, a pair of
facts through one intermediate node (``A —r→ x ←r'— B``), or one of the candidate's own attributes whose
value has a name. Freebase stores most links in both directions, so the 2–4 fact pairs through the same
intermediate node are one route, carrying all their fact ids. Text is built from item titles, entity names
and relation names only: a node without a name (most Freebase entities) is described by its role
("an actor"), never by its raw id.

Scoring is pluggable (:data:`FactScorer`): the GNN's fact scores in production, a degree-based prior
without one. A route's score is the mean of its facts' scores.
"""
from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from kerec.kg.model import Fact, NodeRef, Path
from kerec.kg.store import GraphStore

FactScorer = Callable[[Sequence[Fact]], Sequence[float]]
"""Scores for facts, one per fact, higher = more relevant to the user (e.g. the GNN's fact scores)."""

# Readable nouns for relation names (their last dotted segment); others fall back to the segment itself.
_NOUNS = {
    "actor": "actor", "directed_by": "director", "director": "director", "written_by": "writer",
    "writer": "writer", "produced_by": "producer", "producer": "producer", "cinematography": "cinematographer",
    "cinematographer": "cinematographer", "production_companies": "production company",
    "production_company": "production company", "films": "production company", "genre": "genre",
    "film_genre": "genre", "films_in_this_genre": "genre", "subjects": "subject", "film_subject": "subject",
    "language": "language", "country": "country", "rating": "content rating", "content_rating": "content rating",
    "award_nomination": "award nomination", "award_won": "award", "sequel": "sequel", "prequel": "prequel",
    "class": "genre", "release_year": "release year",
}


@dataclass(frozen=True)
class Evidence:
    """One readable statement about ``candidate`` backed by ``facts`` (all in the graph store).

    ``kind``: "path" (links ``source``, a history item, to the candidate) or "attribute" (the candidate's
    own named attribute; ``source`` is None)."""

    candidate: str
    kind: str
    text: str
    facts: tuple[Fact, ...]
    source: str | None
    score: float = 0.0

    @property
    def fact_ids(self) -> tuple[str, ...]:
        return tuple(f.id for f in self.facts)


def noun(relation: str) -> str:
    """``film.film.directed_by`` → "director"; ``film.actor.film`` → "actor"; unknown → last segment."""
    parts = relation.split(".")
    last = parts[-1]
    if last in ("film", "films") and len(parts) >= 3 and parts[-2] in _NOUNS:
        last = parts[-2]  # film.director.film: the head's type names the role
    return _NOUNS.get(last, last.replace("_", " "))


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


class EvidenceBuilder:
    """Builds, scores and ranks evidence from one graph store. Names and titles are read once per call."""

    def __init__(self, store: GraphStore) -> None:
        self.store = store

    def collect(self, history: Sequence[str], candidates: Sequence[str], *, max_hops: int = 2,
                attributes: bool = True) -> dict[str, list[Evidence]]:
        """Unscored evidence per candidate: every route of ≤ ``max_hops`` facts from a history item, plus
        the candidate's named attributes. Every candidate gets a (possibly empty) list."""
        paths = self.store.paths(history, candidates, max_hops=max_hops) if history and candidates else []
        own = self.store.incident_facts([NodeRef("Item", c) for c in candidates]) if attributes else {}
        nodes = {n for p in paths for n in p.nodes} | {NodeRef("Item", c) for c in candidates}
        nodes |= {f.other(node) for node, facts in own.items() for f in facts}
        names = self.store.names(nodes)
        out: dict[str, list[Evidence]] = {c: [] for c in candidates}
        for (source, via, target), route in _routes(paths).items():
            out[target].append(Evidence(target, "path", _path_text(route, source, via, target, names),
                                        tuple(sorted({f for p in route for f in p.facts})), source))
        for node, facts in own.items():
            for f in facts:
                value = f.other(node)
                if value.label == "Entity" and names.get(value):
                    out[node.id].append(Evidence(node.id, "attribute", _attribute_text(node, f, names), (f,), None))
        return out

    def best(self, history: Sequence[str], candidates: Sequence[str], scorer: FactScorer | None = None, *,
             top: int = 5, max_hops: int = 2, attributes: bool = True) -> dict[str, list[Evidence]]:
        """``rank(collect(history, candidates), scorer, top=top)``, the same result, without rendering
        the text of routes that cannot make a candidate's top (hub entities give tens of thousands of
        routes per user; the text of each costs more than its score)."""
        paths = self.store.paths(history, candidates, max_hops=max_hops) if history and candidates else []
        own = self.store.incident_facts([NodeRef("Item", c) for c in candidates]) if attributes else {}
        values = {f.other(node) for node, facts in own.items() for f in facts}
        names = dict(self.store.names(values | {NodeRef("Item", c) for c in candidates}))
        routes = _routes(paths)
        attrs = [(node, f) for node, facts in own.items() for f in facts
                 if f.other(node).label == "Entity" and names.get(f.other(node))]
        facts = sorted({f for route in routes.values() for p in route for f in p.facts} | {f for _, f in attrs})
        scores = dict(zip(facts, scorer(facts) if scorer else self._prior(facts)))
        drafts: dict[str, list[tuple[float, object, set[Fact]]]] = {c: [] for c in candidates}
        for key, route in routes.items():
            fs = set(route[0].facts) if len(route) == 1 else {f for p in route for f in p.facts}
            # The mean in sorted fact order, as rank() takes it (two terms add the same in either order).
            terms = sorted(fs) if len(fs) > 2 else fs
            drafts[key[2]].append((float(sum(scores[f] for f in terms) / len(fs)), key, fs))
        for node, f in attrs:
            drafts[node.id].append((float(scores[f]), node, {f}))
        # Only routes scoring at least the top-th best can be kept (ties broken by text): render those.
        kept = {}
        for cand, ds in drafts.items():
            if ds:
                bar = heapq.nlargest(top, (d[0] for d in ds))[-1]
                kept[cand] = [d for d in ds if d[0] >= bar]
        path_nodes = {n for ds in kept.values() for _, key, _ in ds if not isinstance(key, NodeRef)
                      for p in routes[key] for n in p.nodes}
        names |= self.store.names(path_nodes - names.keys())
        out: dict[str, list[Evidence]] = {c: [] for c in candidates}
        for cand, ds in kept.items():
            ev = []
            for score, key, unsorted in ds:
                fs = tuple(sorted(unsorted))
                if not isinstance(key, NodeRef):  # a route (source, via, target); else the candidate's node
                    source, via, target = key
                    ev.append(Evidence(cand, "path", _path_text(routes[key], source, via, target, names), fs,
                                       source, score))
                else:
                    ev.append(Evidence(cand, "attribute", _attribute_text(key, fs[0], names), fs, None, score))
            ev.sort(key=lambda e: (-e.score, e.kind != "path", e.text))
            out[cand] = ev[:top]
        return out

    def rank(self, evidence: Mapping[str, Sequence[Evidence]], scorer: FactScorer | None = None, *,
             top: int = 5) -> dict[str, list[Evidence]]:
        """The ``top`` evidence per candidate by score (highest first; ties: paths before attributes,
        then text). Without ``scorer`` the prior is used: ``1 / log(2 + degree)`` of the linking node."""
        facts = sorted({f for ev in evidence.values() for e in ev for f in e.facts})
        scores = dict(zip(facts, scorer(facts) if scorer else self._prior(facts)))
        out = {}
        for cand, ev in evidence.items():
            scored = [Evidence(e.candidate, e.kind, e.text, e.facts, e.source,
                               float(sum(scores[f] for f in e.facts) / len(e.facts))) for e in ev]
            scored.sort(key=lambda e: (-e.score, e.kind != "path", e.text))
            out[cand] = scored[:top]
        return out

    def _prior(self, facts: Sequence[Fact]) -> list[float]:
        """Facts through rare nodes say more than facts through hubs: ``1 / log(2 + degree)`` of the
        fact's non-item end (its tail for item–item facts)."""
        ends = [f.head if f.tail.label == "Item" and f.head.label != "Item" else f.tail for f in facts]
        degree = {n: len(fs) for n, fs in self.store.incident_facts(sorted(set(ends))).items()}
        return [1.0 / math.log(2 + degree.get(e, 0)) for e in ends]


def _routes(paths: Sequence[Path]) -> dict[tuple[str, NodeRef | None, str], list[Path]]:
    """Paths grouped by (source, intermediate node or None, target); only ≤ 2-fact paths."""
    routes: dict[tuple[str, NodeRef | None, str], list[Path]] = defaultdict(list)
    for p in paths:
        if len(p.facts) == 1:
            routes[(p.source, None, p.target)].append(p)
        elif len(p.facts) == 2:
            routes[(p.source, p.nodes[1], p.target)].append(p)
    return routes


def _attribute_text(node: NodeRef, fact: Fact, names: Mapping[NodeRef, str | None]) -> str:
    return f"{names.get(node) or node.id} — {noun(fact.relation)}: {names[fact.other(node)]}"


def _path_text(route: Sequence[Path], source: str, via: NodeRef | None, target: str,
               names: Mapping[NodeRef, str | None]) -> str:
    a = names.get(NodeRef("Item", source)) or f"item {source}"
    b = names.get(NodeRef("Item", target)) or f"item {target}"
    if via is None:
        f = route[0].facts[0]
        head, tail = (a, b) if f.head.id == source else (b, a)
        return f"{tail} is the {noun(f.relation)} of {head}"
    relations = sorted({f.relation for p in route for f in p.facts})
    # Prefer the item's own property (film.film.directed_by) for the noun: it reads as the role of ``via``.
    own = [r for r in relations if r.startswith(("film.film.", "item."))] or relations
    role = noun(own[0])
    name = names.get(via)
    if via.label == "Item":
        return f"{a} and {b} are both linked to {name or 'another film'} ({role})"
    if name:
        return f"{a} and {b} share the {role} {name}"
    return f"{a} and {b} share {_article(role)} {role}"
