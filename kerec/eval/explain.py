"""Explanations and latency: ``recommend(user, k)`` with the LLM, one user per call, as a user would see it.

Per item with evidence the LLM's explanations pass the grounding check (:mod:`kerec.explain`) or are
replaced by the templated fallback; recorded per user: the sources, the LLM generations tried and passed,
and whether every shown explanation's citations check out again against the store. The time of each stage
is measured inside the real call by wrapping the :class:`~kerec.api.Recommender` steps on the instance
(GNN scores, KG evidence, LLM ranking, explanations); ``total`` is the whole call.
"""
from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from kerec.api.recommender import STAGES
from kerec.eval.shards import Shard

COUNTS = ("with_evidence", "cited_facts", "grounded_facts")  # summed per batch by ground_users
def explain_users(rec: Any, users: Sequence[str], k: int, shard: Shard, *, progress: bool = True) -> list[dict[str, Any]]:
    """One record per user (resumed from ``shard``): stage times (ms) and the grounding outcomes."""
    done = {r["users"][0]: r for r in shard.records()}
    for user in tqdm([u for u in users if u not in done], desc="explanations + latency", unit="user",
                     disable=not progress):
        spent: dict[str, float] = {}
        start = time.perf_counter()
        recs = rec.recommend(user, k, timings=spent)
        total = (time.perf_counter() - start) * 1000
        record = {"users": [user], "ms": {**{s: spent.get(s, 0.0) for s in STAGES}, "total": total},
                  **_grounding(rec, user, recs)}
        shard.append(record)
        done[user] = record
    return [done[u] for u in users]


def ground_users(rec: Any, users: Sequence[str], k: int, shard: Shard, *, progress: bool = True,
                 batch: int = 64) -> dict[str, Any]:
    """Every user's top ``k`` with templated explanations (``rec`` without an LLM: cheap enough for all
    held-out users), each shown explanation re-checked against the store as in :func:`explain_users`;
    resumed from ``shard``. Returns the summed counts."""
    done = {u for r in shard.records() for u in r["users"]}
    todo = [u for u in users if u not in done]
    for start in tqdm(range(0, len(todo), batch), desc="grounding, all users", unit="batch", disable=not progress):
        chunk = todo[start:start + batch]
        ranked = rec.recommend_many(chunk, k)
        rows = [_grounding(rec, u, ranked[u]) for u in chunk]
        shard.append({"users": chunk, "counts": {key: sum(r[key] for r in rows) for key in COUNTS},
                      "explanations": sum(len(ranked[u]) for u in chunk),
                      "ungrounded_users": [u for u, r in zip(chunk, rows) if r["grounded_facts"] < r["cited_facts"]]})
    records = shard.records()
    total = {key: sum(r["counts"][key] for r in records) for key in COUNTS}
    cited = total["cited_facts"]
    return {"users": sum(len(r["users"]) for r in records), "k": k,
            "explanations": sum(r["explanations"] for r in records), "items_with_evidence": total["with_evidence"],
            "cited_facts": cited, "grounded_share": total["grounded_facts"] / cited if cited else None,
            "ungrounded_users": [u for r in records for u in r["ungrounded_users"]][:20]}


def _grounding(rec: Any, user: str, recs: Sequence[Any]) -> dict[str, Any]:
    """One user's explanations: their sources, the LLM generations tried and passed, and how many of the
    shown explanations' cited facts the store holds and the grounding check accepts."""
    from kerec.explain import check, rejection_kind

    titles = (rec.titles,) if hasattr(type(rec), "titles") else ()  # the API's own title check, where it has one
    history = set(rec.history(user))
    sources: dict[str, int] = defaultdict(int)
    rejections = Counter(rejection_kind(text) for r in recs for text in r.rejected)
    tried = passed = cited = grounded = 0
    for r in recs:
        sources[r.explanation_source] += 1
        if r.evidence:
            tried += len(r.rejected) + (r.explanation_source in ("llm", "llm-retry"))
            passed += r.explanation_source in ("llm", "llm-retry")
            _, reason = check(r.explanation, r.evidence, rec.store, history, r.item_id, *titles)
            found = rec.store.facts(list(r.cited_facts))
            cited += len(r.cited_facts)
            grounded += sum(f in found for f in r.cited_facts) if reason is None else 0
    return {"sources": dict(sources), "with_evidence": sum(bool(r.evidence) for r in recs), "llm_tried": tried,
            "llm_passed": passed, "cited_facts": cited, "grounded_facts": grounded, "items": [r.item_id for r in recs],
            "rejections": dict(rejections), "rejected_examples": [t for r in recs for t in r.rejected][:2]}


def summarise(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Grounding rates and stage latency percentiles over the users' records."""
    sources: dict[str, int] = defaultdict(int)
    rejections: Counter[str] = Counter()
    for r in records:
        for name, n in r["sources"].items():
            sources[name] += n
        rejections.update(r.get("rejections", {}))
    with_evidence = sum(r["with_evidence"] for r in records)
    tried, passed = sum(r["llm_tried"] for r in records), sum(r["llm_passed"] for r in records)
    cited, grounded = sum(r["cited_facts"] for r in records), sum(r["grounded_facts"] for r in records)
    latency = {}
    for stage in (*STAGES, "total"):
        values = np.asarray([r["ms"][stage] for r in records])
        latency[stage] = {"p50": float(np.percentile(values, 50)), "p95": float(np.percentile(values, 95))} if values.size else {}
    return {"users": len(records), "explanations": sum(sources.values()), "sources": dict(sources),
            "items_with_evidence": with_evidence,
            "llm_generations": tried, "llm_grounding_rate": passed / tried if tried else None,
            "rejections": dict(rejections.most_common()),
            "rejected_examples": [t for r in records for t in r.get("rejected_examples", [])][:5],
            "fallback_rate": sources.get("template", 0) / with_evidence if with_evidence else None,
            "shown_cited_facts": cited, "shown_grounded_share": grounded / cited if cited else None,
            "latency_ms": latency}
