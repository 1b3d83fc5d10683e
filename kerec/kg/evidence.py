"""Evidence for recommendations: the KG facts that link a user's history to each candidate, grouped into
readable statements, ranked by information, and kept best first (the subgraph retrieval of DESIGN.md).

One :class:`Evidence` is one piece of knowledge about a candidate:

* a *linking node* ``x`` and every history item it links to the candidate (``A —r→ x ←r'— C``, Freebase
  storing most links in both directions, so all the fact pairs through ``x`` are one statement carrying
  all their fact ids);
* a direct fact between a history item and the candidate (``C is the sequel of A``);
* one of the candidate's own attributes whose value has a name (``C — genre: Drama``).

Text is built from item titles, entity names and relation roles only. A node without a name (most Freebase
people and companies) is described by what the catalogue knows of it: its relation and the films it links,
the user's own history first (best rated, then most recent), then the most popular others, "Fargo (1996)
is directed by the director of Raising Arizona (1987), Blood Simple (1984) and 4 other films". The facts
behind that description are carried too (:attr:`Evidence.context`), so every film a text names is a cited
fact's end. A raw id is never shown.

Order: by :func:`kerec.kg.information.information` (a person, a subject or a sequel through a node that
links few films, from a film the user rated highly, before genre, language, country, year and rating),
then by the scorer's relevance (:data:`FactScorer`: the GNN's fact scores in production, a degree-based
prior without one; a statement scores the mean over its route facts), then paths before attributes, then text.
"""
from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from kerec.kg.information import LOW_INFORMATION, best_role, information, noun, role
from kerec.kg.model import Fact, NodeRef, Path
from kerec.kg.store import GraphStore

__all__ = ["LISTED", "Evidence", "EvidenceBuilder", "FactScorer", "Source", "join_words", "noun", "order_items"]

FactScorer = Callable[[Sequence[Fact]], Sequence[float]]
"""Scores for facts, one per fact, higher = more relevant to the user (e.g. the GNN's fact scores)."""

LISTED = 3  # films an evidence text names for one linking node; the rest are counted


class Source(NamedTuple):
    """A history item an evidence text names, with the user's rating of it (None where unknown)."""

    item: str
    title: str
    rating: float | None


@dataclass(frozen=True)
class Evidence:
    """One readable statement about ``candidate`` backed by ``facts`` (all in the graph store).

    ``kind``: "path" (links history items, ``sources``, to the candidate; ``source`` is the first) or
    "attribute" (the candidate's own named attribute; ``source`` is None). ``via``: the linking node (None
    for a direct fact and an attribute). ``role``: what the link is to the candidate, ``source_role`` to
    the history items (the same unless the node is, say, the candidate's director and the history items'
    writer; :mod:`kerec.kg.information`). ``information``: of the less informative of the two. ``linked``:
    the history items it links in all, of which ``sources`` are the ones the text names, best first.
    ``name``: the linking node's or attribute value's name, None where it has none. ``context``: facts
    behind the description of an unnamed node (it and the other films named)."""

    candidate: str
    kind: str
    text: str
    facts: tuple[Fact, ...]
    source: str | None
    score: float = 0.0
    information: float = 0.0
    role: str = ""
    sources: tuple[Source, ...] = ()
    linked: int = 0
    name: str | None = None
    source_role: str = ""
    via: NodeRef | None = None
    context: tuple[Fact, ...] = field(default=(), repr=False)

    @property
    def fact_ids(self) -> tuple[str, ...]:
        """Every fact the text rests on: the route's, then the description's."""
        return tuple(dict.fromkeys(f.id for f in self.facts + self.context))

    @property
    def low(self) -> bool:
        """Whether this says only catalogue metadata (genre, language, country, year, content rating)."""
        return self.role in LOW_INFORMATION or self.source_role in LOW_INFORMATION


def order_items(items: Sequence[str] | set[str], first: Sequence[str], popularity: Mapping[str, float] | None,
                limit: int | None = None) -> list[str]:
    """``items`` with those in ``first`` leading in its order, then the rest most popular first (ties and
    no ``popularity``: item id order): how a description picks the films it names. ``limit``: only the
    first so many (a hub links a thousand films; a description names three)."""
    rank = {item: n for n, item in enumerate(first)}
    pop = popularity or {}

    def key(i: str) -> tuple[int, float, str]:
        return (rank.get(i, len(rank)), -pop.get(i, 0.0), i)
    return sorted(items, key=key) if limit is None else heapq.nsmallest(limit, items, key=key)


@dataclass
class _Group:
    """A statement being built: the facts of every route through one linking node (or one direct link)."""

    target: str
    via: NodeRef | None
    sources: set[str] = field(default_factory=set)
    facts: set[Fact] = field(default_factory=set)
    source_noun: str = ""  # what the node is to the history items ("director")
    target_noun: str = ""  # what it is to the candidate
    role: str = ""  # the less informative of the two: what the statement's information rests on
    ordered: list[str] = field(default_factory=list)  # sources, best first (rating, then recency)
    others: list[str] = field(default_factory=list)  # an unnamed node's other films in its role, most popular first
    in_role: int = 0  # films the unnamed node links in that role, less the candidate
    context: tuple[Fact, ...] = ()  # the facts linking it to the others named


class EvidenceBuilder:
    """Builds, ranks and renders evidence from one graph store. ``popularity``: item id → how many users
    chose it, so that a description names the best-known films first (item id order without it)."""

    def __init__(self, store: GraphStore, *, popularity: Mapping[str, float] | None = None) -> None:
        self.store = store
        self.popularity = dict(popularity or {})
        self._catalogue: int | None = None
        # node → role → film → the facts linking them: a store holds one dataset and is not changed under
        # a builder, and hubs have thousands of facts
        self._films: dict[NodeRef, dict[str, dict[str, list[Fact]]]] = {}
        # (node, role) → its films most popular first, sorted once: a hub (a language) links most of the
        # catalogue, and re-sorting it for every statement made evidence grow with the catalogue
        # (eval/results/scale: 154 ms p50 at 100,000 items)
        self._ranked: dict[tuple[NodeRef, str], list[str]] = {}

    @property
    def catalogue_items(self) -> int:
        if self._catalogue is None:
            self._catalogue = max(len(self.store.node_index("Item")), 1)
        return self._catalogue

    def collect(self, history: Sequence[str], candidates: Sequence[str], *, max_hops: int = 2,
                attributes: bool = True, ratings: Mapping[str, float] | None = None) -> dict[str, list[Evidence]]:
        """Every statement per candidate, unscored (score 0), in information order: routes of ≤ 2 facts
        from a history item, plus the candidate's named attributes. Every candidate gets a (possibly empty)
        list. ``ratings``: the user's rating of each history item. ``max_hops`` above 2 finds no more."""
        return self._build(history, candidates, None, top=None, max_hops=max_hops, attributes=attributes,
                           ratings=ratings)

    def best(self, history: Sequence[str], candidates: Sequence[str], scorer: FactScorer | None = None, *,
             top: int = 5, max_hops: int = 2, attributes: bool = True, ratings: Mapping[str, float] | None = None,
             older: Sequence[str] = ()) -> dict[str, list[Evidence]]:
        """``rank(collect(history, candidates), scorer, top=top)``, the same result, without rendering
        the text of statements that cannot make a candidate's top (hub entities give thousands).
        ``older``: more history items (oldest first, all before ``history``), searched only for the
        candidates that ``history`` links by nothing but catalogue metadata (genre, year…): a person or a
        subject shared with a film seen long ago says more than a genre shared with last week's."""
        scorer = scorer or self._prior
        out = self._build(history, candidates, scorer, top=top, max_hops=max_hops, attributes=attributes,
                          ratings=ratings)
        thin = [c for c, ev in out.items() if not any(e.kind == "path" and not e.low for e in ev)]
        if older and thin:
            out.update(self._build([*older, *history], thin, scorer, top=top, max_hops=max_hops,
                                   attributes=attributes, ratings=ratings))
        return out

    def rank(self, evidence: Mapping[str, Sequence[Evidence]], scorer: FactScorer | None = None, *,
             top: int = 5) -> dict[str, list[Evidence]]:
        """The ``top`` evidence per candidate (module docstring's order), each scored by ``scorer`` (the
        prior ``1 / log(2 + degree)`` of the linking node without one) as the mean over its route facts."""
        facts = sorted({f for ev in evidence.values() for e in ev for f in e.facts})
        scores = dict(zip(facts, (scorer or self._prior)(facts)))
        out = {}
        for cand, ev in evidence.items():
            scored = [replace(e, score=_mean(scores, set(e.facts))) for e in ev]
            scored.sort(key=_order)
            out[cand] = scored[:top]
        return out

    # ------------------------------------------------------------------ building
    def _build(self, history: Sequence[str], candidates: Sequence[str], scorer: FactScorer | None, *,
               top: int | None, max_hops: int, attributes: bool,
               ratings: Mapping[str, float] | None) -> dict[str, list[Evidence]]:
        paths = self.store.paths(history, candidates, max_hops=max_hops) if history and candidates else []
        own = self.store.incident_facts([NodeRef("Item", c) for c in candidates]) if attributes else {}
        values = {f.other(node) for node, facts in own.items() for f in facts}
        names = dict(self.store.names(values | {NodeRef("Item", c) for c in candidates}))
        groups = _groups(paths)
        attrs = [(node, f) for node, facts in own.items() for f in facts
                 if f.other(node).label == "Entity" and names.get(f.other(node))]
        linked = self._linked_items({(g.via, g.source_noun) for g in groups if g.via is not None}
                                    | {(f.other(node), noun(f.relation)) for node, f in attrs})
        rated = dict(ratings or {})
        infos: dict[str, list[tuple[float, object]]] = {c: [] for c in candidates}
        for g in groups:
            best_rating = max((rated[s] for s in g.sources if s in rated), default=None)
            n = 2 if g.via is None else linked[(g.via, g.source_noun)]
            infos[g.target].append((information(g.role, linked_items=n, catalogue_items=self.catalogue_items,
                                                rating=best_rating), g))
        for node, f in attrs:
            infos[node.id].append((information(f.relation, linked_items=linked[(f.other(node), noun(f.relation))],
                                               catalogue_items=self.catalogue_items), (node, f)))
        # Information orders first, so a statement below the top-th information cannot be kept: score
        # (the GNN's facts: the costly part) only the others, then keep the top by (information, score),
        # ties broken by text: render those.
        if top is not None:
            for cand, ds in infos.items():
                if ds:
                    bar = heapq.nlargest(top, (d[0] for d in ds))[-1]
                    infos[cand] = [d for d in ds if d[0] >= bar]
        needed = sorted({f for ds in infos.values() for _, what in ds for f in _facts_of(what)})
        scores = dict(zip(needed, scorer(needed))) if scorer else {}
        kept: dict[str, list[tuple[float, float, object]]] = {}
        for cand, ds in infos.items():
            drafts = [(info, _mean(scores, _facts_of(what)), what) for info, what in ds]
            if drafts and top is not None:
                bar2 = heapq.nlargest(top, (d[:2] for d in drafts))[-1]
                drafts = [d for d in drafts if d[:2] >= bar2]
            kept[cand] = drafts
        names |= self.store.names({g.via for ds in kept.values() for _, _, g in ds
                                   if isinstance(g, _Group) and g.via is not None} - names.keys())
        need = self._list(kept, history, rated, names)
        names |= self.store.names({n for n in need if n not in names})
        out: dict[str, list[Evidence]] = {c: [] for c in candidates}
        for cand, ds in kept.items():
            ev = []
            for info, score, what in ds:
                if isinstance(what, _Group):
                    ev.append(self._path_evidence(what, info, score, names, rated))
                else:
                    node, f = what  # type: ignore[misc]
                    ev.append(Evidence(cand, "attribute", _attribute_text(node, f, names), (f,), None, score, info,
                                       noun(f.relation), name=names[f.other(node)], source_role=noun(f.relation)))
            ev.sort(key=_order)
            out[cand] = ev if top is None else ev[:top]
        return out

    def _list(self, kept: Mapping[str, list[tuple[float, float, object]]], history: Sequence[str],
              rated: Mapping[str, float], names: Mapping[NodeRef, str | None]) -> set[NodeRef]:
        """Choose the films each kept group's text names: its history items best first (rating, then
        recency), then for an unnamed node its most popular other films *in the same role* (a director's
        films, not the ones he acted in), with the facts saying so; returns the nodes whose names it needs."""
        recency = {h: n for n, h in enumerate(history)}
        groups = [d[2] for ds in kept.values() for d in ds if isinstance(d[2], _Group)]
        unnamed = {g.via for g in groups if g.via is not None and g.via.label != "Item" and not names.get(g.via)}
        films = self._films_of(unnamed)
        need: set[NodeRef] = set()
        for g in groups:
            g.ordered = sorted(g.sources, key=lambda s: (-rated.get(s, 0.0), -recency.get(s, -1), s))
            if g.via in unnamed:
                same_role = films[g.via].get(g.source_noun, {})
                g.others = self._most_popular(g.via, g.source_noun, same_role, g.sources | {g.target}, LISTED)
                g.in_role = len(same_role) - (g.target in same_role)
                shown_others = g.others[: max(LISTED - len(g.ordered[:LISTED]), 0)]
                g.context = tuple(f for o in shown_others for f in same_role[o])
            need |= {NodeRef("Item", i) for i in g.ordered[:LISTED] + g.others[:LISTED]}
            if g.via is not None:
                need.add(g.via)
        return need

    def _path_evidence(self, g: _Group, info: float, score: float, names: Mapping[NodeRef, str | None],
                       rated: Mapping[str, float]) -> Evidence:
        sources, others = g.ordered, g.others
        title = names.get(NodeRef("Item", g.target)) or f"item {g.target}"
        shown = [Source(s, _title(names, s), rated.get(s)) for s in sources[:LISTED]]
        facts = tuple(sorted(g.facts))
        if g.via is None:  # a direct fact between the history item and the candidate
            f = facts[0]
            head, tail = (shown[0].title, title) if f.head.id == sources[0] else (title, shown[0].title)
            return Evidence(g.target, "path", f"{tail} is the {noun(f.relation)} of {head}", facts, sources[0], score,
                            info, g.role, tuple(shown), len(sources), source_role=g.source_noun)
        name = names.get(g.via)
        if name or g.via.label == "Item":
            films = [s.title for s in shown]
            rest = len(sources) - len(shown)
            listing = join_words(films + ([f"{rest} more of your films"] if rest else []))
        else:  # unnamed: described by the films it links in its role, the user's first, then the most popular
            films = [s.title for s in shown] + [_title(names, o) for o in others[: max(LISTED - len(shown), 0)]]
            rest = g.in_role - len(films)
            listing = join_words(films + ([f"{rest} other film{'s' * (rest != 1)}"] if rest > 0 else []))
        text = _linked_text(title, g, name, listing)
        return Evidence(g.target, "path", text, facts, sources[0], score, info, g.target_noun, tuple(shown),
                        len(sources), name, g.source_noun, g.via, g.context)

    def _films_of(self, nodes: set[NodeRef]) -> dict[NodeRef, dict[str, dict[str, list[Fact]]]]:
        """The catalogue films each node links, by role, with the facts that link them (cached)."""
        for x, fs in self.store.incident_facts(sorted(nodes - self._films.keys())).items():
            by_role: dict[str, dict[str, list[Fact]]] = defaultdict(lambda: defaultdict(list))
            for f in fs:
                if f.other(x).label == "Item" and f.other(x) != x:
                    by_role[noun(f.relation)][f.other(x).id].append(f)
            self._films[x] = {r: dict(films) for r, films in by_role.items()}
        return {x: self._films[x] for x in nodes}

    def _most_popular(self, node: NodeRef, role: str, films: Mapping[str, object], exclude: set[str],
                      limit: int) -> list[str]:
        """``order_items(films - exclude, [], popularity, limit)``, from the node's films in ``role`` sorted
        once: a statement's cost no longer grows with the hub's degree."""
        ranked = self._ranked.get((node, role))
        if ranked is None:
            ranked = self._ranked[(node, role)] = order_items(films.keys(), [], self.popularity)
        out: list[str] = []
        for item in ranked:
            if len(out) == limit:
                break
            if item not in exclude:
                out.append(item)
        return out

    def _linked_items(self, keys: set[tuple[NodeRef, str]]) -> dict[tuple[NodeRef, str], int]:
        """How many catalogue films each node links in each role."""
        films = self._films_of({x for x, _ in keys})
        return {(x, r): max(len(films[x].get(r, ())), 1) for x, r in keys}

    def _prior(self, facts: Sequence[Fact]) -> list[float]:
        """Facts through rare nodes say more than facts through hubs: ``1 / log(2 + degree)`` of the
        fact's non-item end (its tail for item–item facts)."""
        ends = [f.head if f.tail.label == "Item" and f.head.label != "Item" else f.tail for f in facts]
        degree = {n: len(fs) for n, fs in self.store.incident_facts(sorted(set(ends))).items()}
        return [1.0 / math.log(2 + degree.get(e, 0)) for e in ends]


def _order(e: Evidence) -> tuple[float, float, bool, str]:
    return (-e.information, -e.score, e.kind != "path", e.text)


def _facts_of(what: object) -> set[Fact]:
    """The route facts of a draft: a group's, or an attribute's one fact."""
    return what.facts if isinstance(what, _Group) else {what[1]}  # type: ignore[index]


def _mean(scores: Mapping[Fact, float], facts: set[Fact]) -> float:
    # Exactly rounded and in sorted order, so that best() and rank(collect()) agree to the last bit.
    return float(math.fsum(scores[f] for f in sorted(facts)) / len(facts)) if scores else 0.0


def _groups(paths: Sequence[Path]) -> list[_Group]:
    """Paths of ≤ 2 facts grouped into statements: by (candidate, linking node) for 2-fact paths, by
    (history item, candidate) for direct ones. A node that is more than one thing (a person who directed
    and wrote) keeps only the paths of one role: the best-weighted role it has for both the candidate and
    a history item, else its best role for each side (a "director of C is also a writer of A" statement),
    so that every film a statement names has the role it says."""
    direct: dict[tuple[str, str], _Group] = {}
    through: dict[tuple[str, NodeRef], list[Path]] = defaultdict(list)
    for p in paths:
        if len(p.facts) == 1:
            g = direct.setdefault((p.target, p.source), _Group(p.target, None))
            g.sources.add(p.source)
            g.facts.update(p.facts)
        elif len(p.facts) == 2:
            through[(p.target, p.nodes[1])].append(p)
    groups = list(direct.values())
    for g in groups:
        g.source_noun = g.target_noun = g.role = noun(min(g.facts).relation)
    for (target, via), ps in through.items():
        source_nouns = {noun(p.facts[0].relation) for p in ps}
        target_nouns = {noun(p.facts[1].relation) for p in ps}
        shared = source_nouns & target_nouns
        sn, tn = (best_role(shared),) * 2 if shared else (best_role(source_nouns), best_role(target_nouns))
        g = _Group(target, via, source_noun=sn, target_noun=tn, role=min((sn, tn), key=lambda r: (role(r).weight, r)))
        for p in ps:
            if noun(p.facts[0].relation) == sn and noun(p.facts[1].relation) == tn:
                g.sources.add(p.source)
                g.facts.update(p.facts)
        groups.append(g)
    return sorted(groups, key=lambda g: (g.target, g.via or NodeRef("Item", ""), sorted(g.sources)))


def _linked_text(title: str, g: _Group, name: str | None, listing: str) -> str:
    """The statement of a linking node (module docstring), its role the same for both films or not."""
    same = g.source_noun == g.target_noun
    if g.via is not None and g.via.label == "Item":
        return f"{title} and {listing} are both linked to {name or 'another film'} ({g.target_noun})"
    if name:
        if same:
            return f"{title} shares the {g.target_noun} {name} with {listing}"
        return f"{name}, the {g.target_noun} of {title}, is also {role(g.source_noun).one()} of {listing}"
    if same:
        return f"{title} {role(g.target_noun).lead} {listing}"
    return f"the {g.target_noun} of {title} is also {role(g.source_noun).one()} of {listing}"


def _attribute_text(node: NodeRef, fact: Fact, names: Mapping[NodeRef, str | None]) -> str:
    return f"{names.get(node) or node.id} — {noun(fact.relation)}: {names[fact.other(node)]}"


def _title(names: Mapping[NodeRef, str | None], item: str) -> str:
    return names.get(NodeRef("Item", item)) or f"item {item}"


def join_words(words: Sequence[str], last: str = "and") -> str:
    """``[a]`` → a; ``[a, b, c]`` → "a, b and c" (``last="or"``: "a, b or c"). Explanations and chat replies
    both list this way."""
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + f" {last} {words[-1]}"
