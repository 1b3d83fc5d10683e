"""A readable picture of one user's knowledge subgraph (``kerec kg show``): recent history items on the
left, the KG nodes linking them in the middle, candidate items on the right. :func:`user_subgraph` picks
what to show (reading only the graph store); :func:`render` draws it as PNG, SVG or a self-contained HTML
page (the SVG inline plus a table of every fact shown). The rules, the same on every run and backend:

* **History**: the user's ``history_limit`` most recent items, most recent first.
* **Default candidates**: items outside the user's *whole* history reached from the shown history through
  exactly one intermediate node ``x`` (any KG node but a user), scored ``sum over distinct x of
  1 / log(2 + degree(x))`` with ``degree`` = incident facts, so hubs such as a genre or "English" count
  for little. Highest score first, ties by item id (string order).
* **Linking nodes** (path intermediates that are not a shown item) rank by ``pairs(x) / degree(x)``, the
  (history, candidate) pairs ``x`` connects per fact it has, then lower degree, then node key. At most
  ``max_entities`` are kept: first each candidate, best first, gets the nodes of its best-ranked path (so
  every reachable candidate keeps one explanation while room lasts), then the remaining room goes to the
  other paths in rank order. A path is kept when all its intermediates are; direct paths always are.
* **Labels**: items show their title, named entities their name; an entity without a name is described by
  its role on the drawn facts and the films it links in that role, the shown history first, then the
  most popular (:func:`kerec.kg.describe.node_labels`): ``"director of Fargo, Raising Arizona +3"``.
* **Edge labels**: the relation's last segment (``film.film.directed_by`` → "directed_by"). Freebase
  holds most links in both directions, so an edge names only its facts whose head is an item (the film's
  own property) when it has any; distinct names are joined by " / ".
"""
from __future__ import annotations

import html
import io
import math
import sys
import textwrap
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import Any, Literal

from kerec.errors import KerecError
from kerec.kg.describe import node_labels
from kerec.kg.model import Fact, NodeRef, Path
from kerec.kg.store import GraphStore

SUFFIXES = (".png", ".svg", ".html")
NodeKind = Literal["history", "candidate", "entity", "attribute", "item"]
KIND_STYLE: dict[NodeKind, tuple[str, str]] = {  # kind -> (colour, legend text), in legend order
    "history": ("#4C72B0", "history item"), "entity": ("#DD8452", "KG entity"),
    "attribute": ("#C9A227", "attribute value"), "item": ("#937860", "linking item"),
    "candidate": ("#55A868", "candidate item")}


class ShowError(KerecError, ValueError):
    """Bad arguments to :func:`user_subgraph` or :func:`render`; the message says what is allowed."""


@dataclass(frozen=True)
class Subgraph:
    """What :func:`render` draws: one user's shown history, candidates and the paths kept between them."""

    user: str
    history: tuple[str, ...]  # shown history item ids, most recent first
    ratings: dict[str, float]  # shown history item -> the user's rating
    history_total: int  # items the user has rated in all
    candidates: tuple[str, ...]  # candidate item ids, best first
    scores: dict[str, float]  # candidate -> link score (see module docstring); 0.0 if not reached
    paths: tuple[Path, ...]  # kept paths, sorted by (source, target, hops, fact ids)
    entities: tuple[NodeRef, ...]  # kept linking nodes, in the order they were chosen
    entities_left_out: int  # linking nodes on some path that did not fit in ``max_entities``
    degrees: dict[NodeRef, int]  # incident-fact count of every kept linking node
    labels: dict[NodeRef, str]  # display text of every node shown
    kinds: dict[NodeRef, NodeKind]  # every node shown -> its kind (picks the colour)

    @property
    def facts(self) -> tuple[Fact, ...]:
        """Every distinct fact on a kept path, in path order."""
        return tuple(dict.fromkeys(f for p in self.paths for f in p.facts))


def short_relation(relation: str) -> str:
    """The last segment of a dotted relation name: ``"film.film.directed_by"`` → ``"directed_by"``."""
    return relation.rsplit(".", 1)[-1]


def edge_label(facts: Sequence[Fact]) -> str:
    """The label of an edge carrying ``facts`` (see the module docstring)."""
    item_headed = [f for f in facts if f.head.label == "Item"]
    return " / ".join(sorted({short_relation(f.relation) for f in item_headed or facts}))


def candidate_scores(store: GraphStore, history: Sequence[str], exclude: set[str]) -> dict[str, float]:
    """Items reached from ``history`` through one intermediate node (not in ``exclude``) and their
    scores, ``sum over distinct linking x of 1 / log(2 + degree(x))`` (exactly rounded, order-free)."""
    hist = [NodeRef("Item", h) for h in dict.fromkeys(history)]
    first = store.incident_facts(hist)
    links = sorted({x for h in hist for f in first[h] if (x := f.other(h)) != h and x.label != "User"})
    second = store.incident_facts(links)
    weights: dict[str, list[float]] = defaultdict(list)
    for x in links:
        weight = 1.0 / math.log(2 + len(second[x]))
        for c in {f.other(x) for f in second[x]}:
            if c.label == "Item" and c != x and c.id not in exclude:
                weights[c.id].append(weight)
    return {c: math.fsum(w) for c, w in weights.items()}


def select_linking_nodes(paths: Sequence[Path], candidates: Sequence[str], shown: set[NodeRef],
                         degree: dict[NodeRef, int], max_entities: int) -> tuple[NodeRef, ...]:
    """Choose at most ``max_entities`` intermediate nodes (not in ``shown``) by the rule in the module
    docstring; returns them in the order chosen."""
    pairs: dict[NodeRef, set[tuple[str, str]]] = defaultdict(set)
    for p in paths:
        for x in p.via:
            if x not in shown:
                pairs[x].add((p.source, p.target))
    ranked = sorted(pairs, key=lambda x: (-len(pairs[x]) / max(degree[x], 1), degree[x], x.label, x.id))
    rank = {x: i for i, x in enumerate(ranked)}

    def cost(p: Path) -> tuple[int, int, str]:
        return max((rank[x] for x in p.via if x in rank), default=-1), p.hops, p.id

    ordered = sorted(paths, key=cost)
    kept: dict[NodeRef, None] = {}

    def try_keep(p: Path) -> bool:
        new = [x for x in dict.fromkeys(p.via) if x in rank and x not in kept]
        if len(kept) + len(new) > max_entities:
            return False
        kept.update(dict.fromkeys(new))
        return True

    for c in candidates:
        mine = [p for p in ordered if p.target == c]
        if any(all(x in kept or x not in rank for x in p.via) for p in mine):
            continue  # already explained by a direct path or by nodes kept for an earlier candidate
        for p in mine:
            if try_keep(p):
                break
    for p in ordered:
        try_keep(p)
    return tuple(kept)


def user_subgraph(store: GraphStore, user: str, candidates: Sequence[str] | None = None, *,
                  history_limit: int = 10, max_candidates: int = 5, max_entities: int = 12,
                  max_hops: int = 2, popularity: Mapping[str, float] | None = None) -> Subgraph:
    """The subgraph linking ``user``'s most recent ``history_limit`` items to candidate items.

    ``candidates`` None picks up to ``max_candidates`` unseen items by the rule in the module docstring;
    given ones keep their order. ``popularity`` (item id → users who chose it) orders the films an unnamed
    node's label names after the shown history. Raises :class:`~kerec.data.UnknownIdError` for an unknown user or item,
    :class:`ShowError` for a limit below its minimum or a candidate that is also a shown history item.
    """
    for name, value, least in (("history_limit", history_limit, 1), ("max_candidates", max_candidates, 0),
                               ("max_entities", max_entities, 0)):
        if value < least:
            raise ShowError(f"{name} must be at least {least}, got {value}")
    rated = store.history(user)
    recent = rated[::-1][:history_limit]
    shown = tuple(h.item for h in recent)
    if candidates is None:
        scores = candidate_scores(store, shown, exclude={h.item for h in rated})
        chosen = tuple(sorted(scores, key=lambda c: (-scores[c], c))[:max_candidates])
    else:
        chosen = tuple(dict.fromkeys(candidates))
        store.require("Item", list(chosen))
        if clash := [c for c in chosen if c in shown]:
            raise ShowError(f"candidate item(s) {', '.join(clash)} are among user {user}'s {len(shown)} shown "
                            "history items; choose other items or a smaller history_limit")
        reached = candidate_scores(store, shown, exclude=set(shown))
        scores = {c: reached.get(c, 0.0) for c in chosen}
    found = store.paths(shown, chosen, max_hops=max_hops)
    outer = {NodeRef("Item", i) for i in shown + chosen}
    linking = sorted({x for p in found for x in p.via if x not in outer})
    degree = {x: len(fs) for x, fs in store.incident_facts(linking).items()}
    entities = select_linking_nodes(found, chosen, outer, degree, max_entities)
    kept = set(entities)
    paths = tuple(p for p in found if all(x in kept or x in outer for x in p.via))
    kinds = _node_kinds(shown, chosen, entities, paths)
    return Subgraph(user, shown, {h.item: h.rating for h in recent}, len(rated), chosen,
                    {c: scores[c] for c in chosen}, paths, entities, len(linking) - len(entities),
                    {x: degree[x] for x in entities}, _labels(store, kinds, paths, popularity), kinds)


def _node_kinds(history: Sequence[str], candidates: Sequence[str], entities: Sequence[NodeRef],
                paths: Sequence[Path]) -> dict[NodeRef, NodeKind]:
    """Every node shown and its kind; an entity is an attribute value when its id is ``field=value``
    and a fact of relation ``<kind>.<field>`` points at it (how :func:`~kerec.kg.ckg.build_ckg` makes them)."""
    kinds: dict[NodeRef, NodeKind] = {NodeRef("Item", h): "history" for h in history}
    kinds.update({NodeRef("Item", c): "candidate" for c in candidates})
    attributes = {f.tail for p in paths for f in p.facts
                  if f.relation.count(".") == 1 and f.tail.id.startswith(short_relation(f.relation) + "=")}
    for x in entities:
        kinds[x] = "item" if x.label == "Item" else "attribute" if x in attributes else "entity"
    return kinds


def _labels(store: GraphStore, kinds: dict[NodeRef, NodeKind], paths: Sequence[Path],
            popularity: Mapping[str, float] | None) -> dict[NodeRef, str]:
    """Display text of every node (see the module docstring): never a raw id posing as a name."""
    names = store.names(kinds)
    touching: dict[NodeRef, list[Fact]] = defaultdict(list)
    for f in dict.fromkeys(f for p in paths for f in p.facts):
        touching[f.head].append(f)
        touching[f.tail].append(f)
    unnamed = [n for n in kinds if not names.get(n) and n.label != "Item"]
    shown = [n.id for n, kind in kinds.items() if kind == "history"] + [n.id for n, kind in kinds.items() if kind == "candidate"]
    described = node_labels(store, unnamed, facts=touching, first=shown, popularity=popularity)
    labels: dict[NodeRef, str] = {}
    for node in kinds:
        name = names.get(node)
        if name:
            labels[node] = name
        elif node.label == "Item":
            labels[node] = f"item {node.id} (no title)"
        else:
            labels[node] = described[node]
    return labels


def render(subgraph: Subgraph, out: str | FilePath) -> FilePath:
    """Draw ``subgraph`` to ``out`` (.png, .svg or .html, by suffix), creating parent folders."""
    out = FilePath(out)
    suffix = out.suffix.lower()
    if suffix not in SUFFIXES:
        raise ShowError(f"cannot render to {str(out)!r}: the file name must end in one of {', '.join(SUFFIXES)}")
    figure = _figure(subgraph)
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".html":
        out.write_text(_html_page(subgraph, _save(figure, "svg").decode("utf-8")), encoding="utf-8")
    else:
        out.write_bytes(_save(figure, suffix[1:]))
    return out


def _save(figure: Any, fmt: str) -> bytes:
    """The figure as bytes; SVG text stays text and carries no date, so output is reproducible."""
    import matplotlib

    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "kerec"}):
        figure.savefig(buffer, format=fmt, dpi=110, metadata={"Date": None} if fmt == "svg" else None)
    return buffer.getvalue()


def _positions(sg: Subgraph) -> tuple[dict[NodeRef, tuple[float, float]], int]:
    """Column layout: history at x=0, candidates at x=2, each linking node at ``2 * t`` where ``t`` is its
    earliest fraction along a kept path; linking nodes ordered by the mean height of their neighbours."""
    columns: dict[float, list[NodeRef]] = {0.0: [NodeRef("Item", h) for h in sg.history],
                                           2.0: [NodeRef("Item", c) for c in sg.candidates]}
    depth: dict[NodeRef, float] = {}
    for p in sg.paths:
        for k, x in enumerate(p.nodes[1:-1], start=1):
            if x in sg.entities:
                depth[x] = min(depth.get(x, 2.0), 2.0 * k / p.hops)
    for x in sg.entities:
        columns.setdefault(depth[x], []).append(x)
    height = max([len(nodes) for nodes in columns.values()] + [1])
    pos: dict[NodeRef, tuple[float, float]] = {}

    def place(x_coord: float, nodes: list[NodeRef]) -> None:
        for i, node in enumerate(nodes):  # centres of equal slots, so short columns spread out
            pos[node] = (x_coord, (height - 1) / 2 - (i + 0.5) * height / len(nodes) + 0.5)

    place(0.0, columns.pop(0.0))
    place(2.0, columns.pop(2.0))
    neighbours: dict[NodeRef, set[NodeRef]] = defaultdict(set)
    for f in sg.facts:
        neighbours[f.head].add(f.tail)
        neighbours[f.tail].add(f.head)
    for x_coord in sorted(columns):
        def centre(n: NodeRef) -> float:
            ys = [pos[m][1] for m in neighbours[n] if m in pos]
            return -sum(ys) / len(ys) if ys else 0.0
        place(x_coord, sorted(columns[x_coord], key=lambda n: (centre(n), sg.labels[n], n.id)))
    return pos, height


def _figure(sg: Subgraph) -> Any:
    """A matplotlib Figure of the subgraph (no pyplot state is left behind)."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:  # switching an already-running pyplot would close its figures
        matplotlib.use("Agg")
    import networkx as nx
    from matplotlib.figure import Figure

    pos, height = _positions(sg)
    graph = nx.Graph()
    graph.add_nodes_from(pos)
    for f in sg.facts:
        graph.add_edge(f.head, f.tail)
        graph.edges[f.head, f.tail].setdefault("facts", []).append(f)
    inches = max(4.5, 0.75 * height + 2.2)
    figure = Figure(figsize=(16, inches))
    ax = figure.add_axes((0.01, 0.7 / inches, 0.98, 1 - 1.75 / inches))  # room for title and legend
    ax.set_axis_off()
    ax.set_xlim(-1.45, 3.45)
    ax.set_ylim(-height / 2, height / 2)
    nx.draw_networkx_edges(graph, pos, ax=ax, edge_color="#9a9a9a", width=1.1, alpha=0.8)
    _edge_texts(ax, graph, pos, (4.9 / (0.98 * 16), height / (inches - 1.75)))
    for kind, (colour, legend) in KIND_STYLE.items():
        nodes = [n for n in pos if sg.kinds[n] == kind]
        if nodes:
            nx.draw_networkx_nodes(graph, pos, nodelist=nodes, ax=ax, node_color=colour, node_size=170,
                                   node_shape="o" if kind in ("history", "candidate") else "s",
                                   edgecolors="white", label=legend)
    _node_texts(ax, sg, pos)
    for x_coord, header in ((0.0, "history (most recent first)"), (1.0, "linking KG nodes"),
                            (2.0, "candidates (best first)")):
        ax.text(x_coord, height / 2 + 0.1, header, ha="center", va="bottom", fontsize=10, fontweight="bold")
    if pos:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(KIND_STYLE), frameon=False, fontsize=9)
    figure.suptitle(_title(sg), fontsize=12)
    return figure


def _edge_texts(ax: Any, graph: Any, pos: dict[NodeRef, tuple[float, float]],
                units_per_inch: tuple[float, float]) -> None:
    """Relation names on the edges. Edges fanning into one linking node from one side with the same name
    share one label, near that node on the line towards their mean far end (a hub's fan would otherwise
    stack dozens of copies); a label is moved along its line when it would overlap one already placed."""
    fans: dict[tuple[tuple[float, float], float, str], list[float]] = defaultdict(list)
    for u, v, data in graph.edges(data=True):
        near, far = sorted((pos[u], pos[v]), key=lambda xy: (abs(xy[0] - 1), xy))
        fans[(near, far[0], edge_label(data["facts"]))].append(far[1])
    placed: list[tuple[float, float, float]] = []  # x, y, half width
    half_height = 0.09 * units_per_inch[1]
    for ((x0, y0), x1, text), ys in sorted(fans.items()):
        y1 = sum(ys) / len(ys)
        balanced = abs(x0 - 1) == abs(x1 - 1)  # both ends equally central (a direct path): start mid-span
        spots = (0.5, 0.38, 0.62, 0.26, 0.74) if balanced else (0.3, 0.42, 0.18, 0.54, 0.1)
        half_width = (0.03 + 0.029 * len(text)) * units_per_inch[0]
        points = [(x0 + t * (x1 - x0), y0 + t * (y1 - y0)) for t in spots]
        free = [(x, y) for x, y in points if all(abs(x - px) > hw + half_width or abs(y - py) > 2 * half_height
                                                 for px, py, hw in placed)]
        x, y = (free or points)[0]
        placed.append((x, y, half_width))
        ax.text(x, y, text, ha="center", va="center", fontsize=7, color="#444444", zorder=3,
                bbox={"boxstyle": "round,pad=0.12", "fc": "white", "ec": "none", "alpha": 0.85})


def _node_texts(ax: Any, sg: Subgraph, pos: dict[NodeRef, tuple[float, float]]) -> None:
    """History labels left of their node, candidate labels right, linking-node labels on theirs."""
    for node, (x, y) in pos.items():
        kind = sg.kinds[node]
        text = "\n".join(textwrap.fill(line, 30) for line in sg.labels[node].split("\n"))
        if kind == "history":
            text += f"\nrated {sg.ratings[node.id]:g}"
            ax.text(x - 0.06, y, text, ha="right", va="center", fontsize=8)
        elif kind == "candidate":
            ax.text(x + 0.06, y, text + f"\nscore {sg.scores[node.id]:.2f}", ha="left", va="center", fontsize=8)
        else:  # the box sits on the node, so edges end at its border instead of crossing the text
            ax.text(x, y, text, ha="center", va="center", fontsize=7.5, linespacing=1.0, zorder=4,
                    bbox={"boxstyle": "round,pad=0.3", "fc": "#fffaf3", "ec": KIND_STYLE[kind][0], "lw": 1.4})


def _title(sg: Subgraph) -> str:
    if not sg.history:
        return f"Knowledge subgraph of user {sg.user}: the user has rated no items"
    def count(n: int, noun: str) -> str:
        return f"{n} {noun}{'' if n == 1 else 's'}"
    more = f", {sg.entities_left_out} more left out" if sg.entities_left_out else ""
    return (f"Knowledge subgraph of user {sg.user}: {len(sg.history)} most recent of "
            f"{count(sg.history_total, 'rated item')} → {count(len(sg.candidates), 'candidate')}\n"
            f"{count(len(sg.entities), 'linking node')} shown{more}; {count(len(sg.paths), 'path')}, "
            f"{count(len(sg.facts), 'fact')}")


def _html_page(sg: Subgraph, svg: str) -> str:
    """A self-contained page: the SVG inline and a table of every fact shown."""
    def cell(node: NodeRef) -> str:
        label = sg.labels.get(node, "").replace("\n", " ")
        return f"{html.escape(label)} <code>{html.escape(node.key)}</code>"

    rows = "\n".join(f"<tr><td>{cell(f.head)}</td><td>{html.escape(f.relation)}</td><td>{cell(f.tail)}</td>"
                     f"<td><code>{html.escape(f.id)}</code></td></tr>" for f in sg.facts)
    title = html.escape(_title(sg).replace("\n", "; "))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title><style>
body{{font-family:sans-serif;margin:1.5em}} svg{{max-width:100%;height:auto}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:0.25em 0.5em;text-align:left;font-size:0.9em}}</style></head><body>
<h1>Knowledge subgraph of user {html.escape(sg.user)}</h1>
<figure>{svg[svg.index("<svg"):]}</figure>
<h2>Facts shown ({len(sg.facts)})</h2>
<table><thead><tr><th>head</th><th>relation</th><th>tail</th><th>fact id</th></tr></thead><tbody>
{rows}
</tbody></table></body></html>
"""
