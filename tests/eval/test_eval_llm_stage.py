"""The LLM stage of the evaluation: stage timing inside the real recommend() call (no LLM: fast), and the
whole LLM protocol with the real SmolLM2 on the synthetic data (slow)."""
from __future__ import annotations

from pathlib import Path

import pytest

from kerec.fusion import WEIGHTS
from kerec.eval.config import config_from_dict
from kerec.api.recommender import STAGES
from kerec.eval.explain import ground_users, summarise
from kerec.eval.shards import Shard

from ..gnn.synthetic import write_synthetic


def synthetic_config(data: Path, **changes: object) -> dict[str, object]:
    return {"name": "synth", "dataset": {"path": str(data)}, "seeds": [1],
            "retriever": {"model": {"embedding_dim": 16, "use_text": False},
                          "train": {"epochs": 20, "batch_size": 64, "lr": 0.01, "patience": 5}},
            "anchors": {"recbole": []}, **changes}


def test_recommend_times_each_stage_and_the_summary_reads_them(tmp_path: Path) -> None:
    from kerec.api import Recommender, Settings
    from kerec.eval.systems import Systems

    data = write_synthetic(tmp_path / "synth")
    config = config_from_dict(synthetic_config(data, systems=["kerec"], protocols={"full": {}}))
    trained = Systems(config, tmp_path / "work", progress=False).get("kerec", 1)
    rec = Recommender.load(trained.checkpoint, data=str(data), llm=None, settings=Settings(history="train"))
    spent: dict[str, float] = {}
    recs = rec.recommend("u3", 3, timings=spent)
    assert len(recs) == 3 and set(spent) == set(STAGES)
    assert spent["evidence"] > 0 and spent["explain"] > 0 and spent["gnn"] > 0
    again = dict(spent)
    rec.recommend("u3", 3, timings=again)  # added to what the dict holds
    assert all(again[s] > spent[s] for s in ("gnn", "evidence", "explain"))
    record = {"ms": {**spent, "total": sum(spent.values())}, "sources": {"template": 3}, "with_evidence": 3,
              "llm_tried": 0, "llm_passed": 0, "cited_facts": 4, "grounded_facts": 4}
    summary = summarise([record, {**record, "rejections": {"cites no evidence": 2, "names a film no cited fact concerns": 3}}])
    assert summary["rejections"] == {"names a film no cited fact concerns": 3, "cites no evidence": 2}  # most first
    assert summary["fallback_rate"] == 1.0 and summary["llm_grounding_rate"] is None
    assert summary["shown_grounded_share"] == 1.0 and summary["latency_ms"]["total"]["p50"] > 0


def test_grounding_over_all_users_checks_every_cited_fact_and_resumes(tmp_path: Path) -> None:
    from kerec.api import Recommender, Settings
    from kerec.eval.candidates import held_out
    from kerec.eval.systems import Systems

    data = write_synthetic(tmp_path / "synth")
    config = config_from_dict(synthetic_config(data, systems=["kerec"], protocols={"full": {}}))
    trained = Systems(config, tmp_path / "work", progress=False).get("kerec", 1)
    rec = Recommender.load(trained.checkpoint, data=str(data), llm=None,
                           settings=Settings(history="train", explanations="template"))
    users = [rec.prepared.dataset.users.external(u) for u in held_out(rec.prepared, "test")]
    shard = Shard(tmp_path / "shards", "ground", {"k": 3})
    result = ground_users(rec, users, 3, shard, progress=False, batch=5)
    assert result["users"] == len(users) > 5 and result["explanations"] == 3 * len(users)
    assert result["cited_facts"] > 0 and result["grounded_share"] == 1.0 and result["ungrounded_users"] == []
    assert len(shard.records()) == -(-len(users) // 5)  # one record per batch of 5
    before = shard.path.read_text()
    assert ground_users(rec, users, 3, shard, progress=False) == result
    assert shard.path.read_text() == before  # resumed: nothing recomputed
    # The check can fail: a store that no longer holds the facts grounds nothing.
    rec.store.facts = lambda ids: {}
    broken = ground_users(rec, users, 3, Shard(tmp_path / "shards", "broken", {"k": 3}), progress=False)
    assert broken["grounded_share"] == 0.0 and broken["ungrounded_users"]


@pytest.mark.slow
def test_llm_protocols_with_the_real_llm_and_resume(tmp_path: Path) -> None:
    from kerec.eval.harness import evaluate

    data = write_synthetic(tmp_path / "synth")
    config = config_from_dict(synthetic_config(
        data, systems=["random", "kerec", "llm", "fused"],
        protocols={"full": {"ks": [5, 10], "curve_max_k": 10},
                   "candidates": {"negatives": 7, "users": 3, "valid_users": 3, "batch": 3},
                   "explain": {"users": 1, "k": 1}},
        llm={"batch_size": 3}))
    report = evaluate(config, out=tmp_path / "out", work=tmp_path / "work", progress=False)
    stage = report.results["candidates"]["llm_stage"]
    for variant in ("random negatives", "GNN top-20"):
        rows = stage[variant]
        assert {"kerec", "random", "llm", "fused"} <= set(rows)
        assert rows["llm"]["1"]["users"] == 3 and rows["llm"]["1"]["valid_ratio"] == 1.0
    fusion = report.results["candidates"]["fusion"]["1"]
    assert fusion["weight"] in WEIGHTS and len(fusion["sweep"]) == len(WEIGHTS)
    explain = report.results["explain"]
    assert explain["users"] == 1 and explain["explanations"] == 1
    assert all(explain["latency_ms"][s]["p50"] > 0 for s in ("llm_rank", "total"))
    assert explain["shown_grounded_share"] in (None, 1.0)
    assert explain["all_users"]["users"] > 1 and explain["all_users"]["grounded_share"] == 1.0
    assert any("Does the LLM help" in h for h in report.headline)
    shards = {p: p.stat().st_mtime_ns for p in (tmp_path / "work" / "shards").glob("*.jsonl")}
    again = evaluate(config, out=tmp_path / "again", work=tmp_path / "work", progress=False)
    assert {p: p.stat().st_mtime_ns for p in shards} == shards  # no LLM call was repeated
    assert again.results["candidates"]["llm_stage"] == stage
