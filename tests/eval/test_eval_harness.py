"""The whole evaluation on a second domain (books: author/publisher relations, no years) with a planted
signal: real retrievers trained here, the report written, and a resumed run recomputing nothing."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from kerec.eval.config import config_from_dict
from kerec.eval.harness import evaluate
from kerec.eval.report import EvalReport

from .books import write_books

SYSTEMS = ["random", "pop", "lightgcn", "kerec", "kerec-no-kg"]


def books_config(data: Path) -> dict[str, object]:
    return {"name": "books", "dataset": {"path": str(data)}, "seeds": [1, 2], "systems": SYSTEMS,
            "retriever": {"model": {"embedding_dim": 16}, "train": {"epochs": 15, "batch_size": 64, "lr": 0.02,
                                                                   "patience": 5}},
            "protocols": {"full": {"ks": [5, 10], "curve_max_k": 15, "batch_size": 16},
                          "candidates": {"negatives": 9}, "cold_start": {"fraction": 0.2}},
            "anchors": {"recbole": []}}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[EvalReport, Path, Path]:
    root = tmp_path_factory.mktemp("books")
    data = write_books(root / "books")
    config = config_from_dict(books_config(data))
    work = root / "work"
    return evaluate(config, out=root / "report", work=work, progress=False), work, data


def test_planted_signal_is_found_and_baselines_lose(run: tuple[EvalReport, Path, Path]) -> None:
    report, _, _ = run
    pop, rnd = report.full_metric("pop", "recall@10")[0], report.full_metric("random", "recall@10")[0]
    for system in ("kerec", "lightgcn"):
        recall = report.full_metric(system, "recall@10")[0]
        assert recall > pop + 0.2 and recall > rnd + 0.2, (system, recall, pop, rnd)
        assert report.candidate_metric(system, "acc")[0] > report.candidate_metric("random", "acc")[0] + 0.2
    assert 0.0 <= rnd <= 0.5 and report.candidate_metric("pop", "valid_ratio")[0] == 1.0
    curve = report.results["full"]["curve"]["kerec"]
    assert len(curve) == 15 and curve == sorted(curve)  # Recall@K never falls as K grows


def test_full_ranking_agrees_with_kerec_eval(run: tuple[EvalReport, Path, Path]) -> None:
    import torch

    from kerec.eval.systems import Systems
    from kerec.gnn import evaluate_embeddings

    report, work, data = run
    systems = Systems(config_from_dict(books_config(data)), work, progress=False)
    trained = systems.get("kerec", 1)  # from the cache: the very model the report scored
    with torch.no_grad():
        expected = evaluate_embeddings(trained.model(trained.graph), trained.prepared, "test").metrics
    got = report.results["full"]["per_seed"]["kerec"]["1"]
    for key in ("recall@10", "ndcg@10", "hit@10", "mrr@10"):
        assert got[key] == pytest.approx(expected[key], abs=1e-9)


def test_report_files_and_sections(run: tuple[EvalReport, Path, Path]) -> None:
    report, work, _ = run
    files = {p.name for p in report.out.iterdir()}
    assert {"results.json", "report.md", "metric_by_system.png", "recall_at_k.png", "kg_gain_by_activity.png",
            "subgraph.png"} <= files
    md = (report.out / "report.md").read_text()
    for needle in ("## Headline", "**Does the KG help?**", "## Full ranking (test)", "### Paired test",
                   "## 20-candidate protocol", "## Cold-start items", "TensorBoard", "Packages: kerec"):
        assert needle in md
    saved = json.loads((report.out / "results.json").read_text())
    assert saved["significance"][0]["users"] > 0 and saved["slices"]["buckets"]
    tb = [v["tensorboard"] for per in saved["training"].values() for v in per.values()]
    assert tb and all(any(Path(d).iterdir()) for d in tb)  # event files were written


def test_resume_recomputes_nothing_and_an_interrupted_shard_is_completed(run: tuple[EvalReport, Path, Path]) -> None:
    report, work, data = run
    config = config_from_dict(books_config(data))
    shards = sorted((work / "shards").glob("*.jsonl"))
    before = {p: p.stat().st_mtime_ns for p in [*shards, *(work / "retrievers").rglob("retriever.pt")]}
    again = evaluate(config, out=report.out.parent / "again", work=work, progress=False)
    assert {p: p.stat().st_mtime_ns for p in before} == before
    assert again.results["full"]["per_seed"] == report.results["full"]["per_seed"]
    # Cut one shard to its header and first batch, as a killed run leaves it: the rerun does only the rest.
    shard = next(p for p in shards if p.name.startswith("kerec-seed2-full"))
    lines = shard.read_text().splitlines()
    assert len(lines) > 3
    shard.write_text("\n".join(lines[:2]) + "\n" + lines[2][:10])
    resumed = evaluate(config, out=report.out.parent / "resumed", work=work, progress=False)
    assert resumed.results["full"]["per_seed"] == report.results["full"]["per_seed"]
    assert len(shard.read_text().splitlines()) == len(lines)


def test_workers_train_in_parallel_processes_and_the_run_reuses_them(run: tuple[EvalReport, Path, Path]) -> None:
    """workers: 2 trains each retriever in its own spawned process; the result matches the in-process
    training of the fixture (same seed, same data) and the evaluation then loads it instead of retraining."""
    from kerec.eval.systems import Systems, pretrain, trainings

    report, work, data = run
    raw = books_config(data) | {"systems": ["random", "lightgcn", "kerec"], "seeds": [1], "workers": 2,
                                "protocols": {"full": {"ks": [5, 10], "curve_max_k": 15, "batch_size": 16}}}
    config = config_from_dict(raw)
    jobs = trainings(config)
    assert jobs == [("kerec", 1, None), ("lightgcn", 1, None)]  # kerec's kind first: the slowest
    parallel = work.parent / "parallel"
    pretrain(config, parallel, progress=False)
    systems = Systems(config, parallel, progress=False)
    assert all(systems.is_cached(*job) for job in jobs)
    stamps = {p: p.stat().st_mtime_ns for p in parallel.rglob("retriever.pt")}
    assert len(stamps) == 2
    again = evaluate(config, out=work.parent / "parallel-report", work=parallel, progress=False)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # loaded, not retrained
    for system in ("kerec", "lightgcn"):
        got = again.results["full"]["per_seed"][system]["1"]["recall@10"]
        assert got == pytest.approx(report.results["full"]["per_seed"][system]["1"]["recall@10"], abs=0.02), system
    assert again.results["phase_seconds"]["training"] >= 0.0
