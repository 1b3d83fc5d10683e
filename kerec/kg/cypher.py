"""Named Cypher queries read from ``kg_store/*.cypher`` — the store's queries are data, not code."""
from __future__ import annotations

import re
from functools import lru_cache

from kerec.paths import asset_dir
from kerec.kg.errors import GraphStoreError

_NAME = re.compile(r"^//\s*name:\s*(\S+)\s*$", re.MULTILINE)


def _strip_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//")).strip()


@lru_cache(maxsize=None)
def named_queries(filename: str) -> dict[str, str]:
    """``{name: query}`` from a file of blocks headed ``// name: <name>``; trailing ';' removed."""
    text = (asset_dir("kg_store") / filename).read_text(encoding="utf-8")
    parts = _NAME.split(text)
    queries = {}
    for name, body in zip(parts[1::2], parts[2::2]):
        query = _strip_comments(body).rstrip(";").strip()
        if name in queries:
            raise GraphStoreError(f"kg_store/{filename} defines query {name!r} twice")
        queries[name] = query
    return queries


def query(filename: str, name: str) -> str:
    try:
        return named_queries(filename)[name]
    except KeyError:
        raise GraphStoreError(f"kg_store/{filename} has no query named {name!r}") from None


@lru_cache(maxsize=None)
def schema_statements() -> tuple[str, ...]:
    text = _strip_comments((asset_dir("kg_store") / "schema.cypher").read_text(encoding="utf-8"))
    return tuple(s.strip() for s in text.split(";") if s.strip())
