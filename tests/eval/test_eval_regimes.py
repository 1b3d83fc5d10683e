"""The regimes where knowledge should matter (sparsity, cold users, long tail, cold items), on planted books:
thinned to a quarter, readers keep about one book each, so only the KG's author edges carry their taste."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kerec.eval.config import EvalConfigError, config_from_dict
from kerec.eval.harness import evaluate
from kerec.eval.report import EvalReport

from .books import write_sparse_books

SYSTEMS = ["pop", "kerec", "kerec-no-kg"]


def sparse_config(data: Path) -> dict[str, object]:
    regime = {"systems": SYSTEMS, "ks": [10, 20]}
    return {"name": "sparse-books", "dataset": {"path": str(data)}, "seeds": [1, 2], "systems": SYSTEMS,
            "retriever": {"model": {"embedding_dim": 16}, "train": {"epochs": 40, "batch_size": 64, "lr": 0.02,
                                                                   "patience": 10, "lambda_k": 0.0}},
            "protocols": {"sparsity": {"keep": [0.25, 1.0], **regime}, "cold_users": {"users": 0.5, "keep": 1, **regime},
                          "long_tail": {"head": 0.2, **regime}, "cold_start": {"fraction": 0.2, "systems": ["kerec", "kerec-no-kg"]}},
            "anchors": {"recbole": []}}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> EvalReport:
    root = tmp_path_factory.mktemp("sparse-books")
    config = config_from_dict(sparse_config(write_sparse_books(root / "books")))
    return evaluate(config, out=root / "report", work=root / "work", progress=False)


def test_kg_carries_the_planted_signal_when_training_is_thinned(run: EvalReport) -> None:
    quarter = run.results["sparsity"]["per_keep"]["0.25"]
    mean = {s: np.mean([m["recall@10"] for m in quarter["per_seed"][s].values()]) for s in SYSTEMS}
    assert mean["kerec"] > mean["kerec-no-kg"] + 0.15 and mean["kerec"] > mean["pop"] + 0.15, mean
    gain = quarter["kg_gain"]["recall@10"]
    assert gain["mean_a"] == pytest.approx(mean["kerec"]) and gain["mean_b"] == pytest.approx(mean["kerec-no-kg"])
    assert gain["p_value"] < 0.05 and gain["users"] > 50


def test_every_regime_is_reported(run: EvalReport) -> None:
    r = run.results
    cold_users = r["cold_users"]["per_seed"]["kerec"]["1"]["users"]
    assert 0 < cold_users <= 48 and r["cold_users"]["kg_gain"]["recall@10"]["users"] == cold_users
    tail = r["long_tail"]
    assert 0 < tail["tail_test_pairs"] < tail["test_pairs"] and tail["per_seed"]["pop"]["1"]["users"] > 0
    cold = r["cold_start"]
    assert set(cold["systems"]) == {"kerec", "kerec-no-kg"} and set(cold["systems"]["kerec"]["1"]) == {
        "model", "popularity", "random"}  # the section keeps its shape
    assert cold["kg_gain"]["recall@20"]["a"] == "kerec"
    md = (run.out / "report.md").read_text()
    for needle in ("**KG gain, 25% of training:**", "**KG gain, cold users:**", "**KG gain, long-tail items:**",
                   "**KG gain, cold-start items**", "## Regimes where knowledge should matter"):
        assert needle in md
    assert (run.out / "sparsity.png").is_file()
    saved = json.loads((run.out / "results.json").read_text())
    assert saved["sparsity"]["keep"] == [0.25, 1.0]


def test_thinning_keeps_a_quarter_and_holds_the_rest_back(run: EvalReport, tmp_path: Path) -> None:
    from kerec.eval.systems import Regime, Systems

    config = config_from_dict(sparse_config(write_sparse_books(tmp_path / "books")))
    systems = Systems(config, tmp_path / "work", progress=False)
    full, thin = systems.prepared(), systems.prepared(Regime("keep", 0.25), 1)
    assert np.array_equal(thin.split.train, full.split.train) and np.array_equal(thin.split.test, full.split.test)
    per_user = np.bincount(thin.gnn_train[:, 0]), np.bincount(full.split.train[:, 0])
    assert (per_user[0] >= 1).all() and per_user[0].sum() < 0.4 * per_user[1].sum()
    assert not np.array_equal(thin.gnn_holdout, systems.prepared(Regime("keep", 0.25), 2).gnn_holdout)  # per seed


@pytest.mark.parametrize(("protocols", "message"), [
    ({"sparsity": {"keep": [0.0, 1.0]}}, "protocols.sparsity.keep must be distinct shares in (0, 1]"),
    ({"sparsity": {"systems": ["llm"]}}, "unknown protocols.sparsity.systems 'llm'"),
    ({"cold_users": {"keep": 0}}, "protocols.cold_users.keep must be at least 1"),
    ({"cold_users": {"users": 1.5}}, "protocols.cold_users.users must be a share in (0, 1]"),
    ({"long_tail": {"head": 1.0}}, "protocols.long_tail.head must be a share in (0, 1)"),
    ({"long_tail": {"metrics": ["auc"]}}, "unknown protocols.long_tail.metrics 'auc'"),
    ({"long_tail": {"heads": 0.2}}, "unknown key(s) 'heads' in protocols.long_tail"),
])
def test_bad_regime_sections_are_named(protocols: dict[str, object], message: str) -> None:
    data = {"name": "x", "dataset": {"path": "default"}, "protocols": protocols}
    with pytest.raises(EvalConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):
        config_from_dict(data, check_paths=False)
