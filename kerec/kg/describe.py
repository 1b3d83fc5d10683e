"""Short labels for KG nodes without a name (most Freebase people and companies), by what the catalogue
knows of them: their role and the films they link, "director of Fargo, Raising Arizona +3".

The role is the most informative one (:func:`kerec.kg.information.best_role`) among the facts given for
the node (those a picture draws), else among all its facts; the films named are those it links *in that
role*, so a person who directed one film and acted in ten is "director of" only the one. Films in
``first`` lead in its order (the user's own), then the most popular (:func:`kerec.kg.evidence.order_items`).
Titles are shortened for a label: the trailing year dropped, a trailing article put in front
("Godfather, The (1972)" → "The Godfather").
"""
from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence

from kerec.kg.evidence import order_items
from kerec.kg.information import best_role, noun, role
from kerec.kg.model import Fact, NodeRef
from kerec.kg.store import GraphStore

_YEAR = re.compile(r"\s*\((\d{4}|\d{4}[–-]\d{4})\)\s*$")
_ARTICLE = re.compile(r"^(.*), (The|A|An)$")


def short_title(title: str) -> str:
    """``"Godfather, The (1972)"`` → ``"The Godfather"``; ``"Fargo (1996)"`` → ``"Fargo"``."""
    base = _YEAR.sub("", title).strip()
    m = _ARTICLE.match(base)
    return f"{m.group(2)} {m.group(1)}" if m else base


def node_labels(store: GraphStore, nodes: Sequence[NodeRef], *, facts: Mapping[NodeRef, Sequence[Fact]] | None = None,
                first: Sequence[str] = (), exclude: Collection[str] = (), popularity: Mapping[str, float] | None = None,
                listed: int = 2) -> dict[NodeRef, str]:
    """A label for each of ``nodes`` (module docstring): the role and up to ``listed`` films, "+n" for the
    rest, never ``exclude``'s films (the item a page is about); "director (no film in the catalogue)" for
    a node linking none."""
    incident = store.incident_facts(list(dict.fromkeys(nodes)))
    chosen: dict[NodeRef, tuple[str, list[str]]] = {}
    for x in dict.fromkeys(nodes):
        own = incident[x]
        basis = [f for f in (facts or {}).get(x, ()) if x in (f.head, f.tail)] or own
        nouns = {noun(f.relation) for f in basis}
        if not nouns:
            chosen[x] = ("entity", [])
            continue
        r = best_role(nouns)
        films = {f.other(x).id for f in own if noun(f.relation) == r and f.other(x).label == "Item" and f.other(x) != x}
        chosen[x] = (r, order_items(films - set(exclude), first, popularity))
    names = store.names({NodeRef("Item", i) for _, films in chosen.values() for i in films[:listed]})
    out = {}
    for x, (r, films) in chosen.items():
        if not films:
            out[x] = f"{r} (no film in the catalogue)"
            continue
        titles = [short_title(names.get(NodeRef("Item", i)) or f"item {i}") for i in films[:listed]]
        more = f" +{len(films) - listed}" if len(films) > listed else ""
        out[x] = f"{r} {role(r).prep} {', '.join(titles)}{more}"
    return out
