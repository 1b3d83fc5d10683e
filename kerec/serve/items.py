"""An item's KG facts as readable lines (``GET /items/{id}``)."""
from __future__ import annotations

from collections.abc import Mapping

from kerec.kg.describe import node_labels
from kerec.kg.model import NodeRef
from kerec.kg.show import short_relation
from kerec.kg.store import GraphStore
from kerec.serve.schemas import FactOut, ItemResponse, NodeOut


def item_facts(store: GraphStore, item: str, limit: int = 500, *,
               popularity: Mapping[str, float] | None = None) -> ItemResponse:
    """The item's title and up to ``limit`` facts touching it (sorted by relation, then the other end); a
    node without a name is described by its role and its other films, most popular first (``popularity``:
    item id → users who chose it), "director of Fargo, Raising Arizona +3". Raises
    :class:`~kerec.data.UnknownIdError` for an id the store does not hold."""
    facts = store.neighbourhood(item)[:limit]
    me = NodeRef("Item", item)
    others = [f.other(me) for f in facts]
    names = store.names([me, *others])
    unnamed = [n for n in dict.fromkeys(others) if not names.get(n) and n.label != "Item"]
    described = node_labels(store, unnamed, facts={n: [f for f in facts if n in (f.head, f.tail)] for n in unnamed},
                            exclude={item}, popularity=popularity)

    def shown(node: NodeRef) -> str:
        if name := names.get(node):
            return name
        if node.label == "Item":
            return f"item {node.id} (no title)"
        return described[node]

    title = names.get(me) or f"item {item}"
    out = []
    for f, other in zip(facts, others):
        rel = short_relation(f.relation).replace("_", " ")
        out.append(FactOut(id=f.id, relation=f.relation, direction="out" if f.head == me else "in",
                           other=NodeOut(key=other.key, label=other.label, id=other.id, name=shown(other)),
                           text=f"{shown(f.head) if f.head != me else title} —{rel}→ "
                                f"{shown(f.tail) if f.tail != me else title}"))
    return ItemResponse(item_id=item, title=title, facts=out)
