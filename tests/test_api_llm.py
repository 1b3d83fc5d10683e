"""recommend() with the real LLM (SmolLM2-135M-Instruct via transformers, on CPU) on the synthetic dataset:
the LLM ranks the GNN's candidates by letter probability and explains picks; every cited fact is checked."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from kerec.api import Recommender, Settings
from kerec.explain import SOURCES, check

from .test_api import trained  # noqa: F401 - the module-scoped trained retriever fixture

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rec(trained: tuple[Path, Path]) -> Iterator[Recommender]:  # noqa: F811
    import torch

    from kerec.llm import TransformersLLM

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny forward passes: one thread beats contending OpenMP threads on 2 cores
    data, ckpt = trained
    yield Recommender.load(ckpt, data=str(data), llm=TransformersLLM(batch_size=8, progress=False),
                           settings=Settings(candidates=8, fusion_weight=0.5, explanation_tokens=40,
                                                            explanations="llm"))
    torch.set_num_threads(threads)


def test_llm_scores_every_candidate_and_fusion_uses_them(rec: Recommender) -> None:
    recs = rec.recommend("u0", k=8, explain=False)
    assert len(recs) == 8 and all(r.llm_logprob is not None for r in recs)
    probs = np.exp([r.llm_logprob for r in recs])
    assert probs.sum() == pytest.approx(1.0, abs=1e-6)  # the 8 candidates are all the LLM could answer
    assert all(r.item_id in rec.dataset.items for r in recs)
    gnn_only = [r.item_id for r in sorted(recs, key=lambda r: -r.gnn_score)]
    fused = [r.item_id for r in recs]
    z = lambda x: (np.asarray(x) - np.mean(x)) / np.std(x)  # noqa: E731
    expect = 0.5 * z([r.gnn_score for r in recs]) + 0.5 * z([r.llm_logprob for r in recs])
    assert [r.score for r in recs] == pytest.approx(list(expect))
    assert sorted(fused) == sorted(gnn_only)


def test_llm_explanations_are_checked_and_the_path_recorded(rec: Recommender) -> None:
    recs = rec.recommend("u1", k=3)
    history = set(rec.history("u1"))
    for r in recs:
        assert r.explanation and r.explanation_source in SOURCES
        if r.explanation_source in ("llm", "llm-retry", "template"):
            numbers, reason = check(r.explanation, r.evidence, rec.store, history, r.item_id)
            assert reason is None and numbers
            assert set(rec.store.facts(list(r.cited_facts))) == set(r.cited_facts)
        if r.explanation_source != "llm":
            assert r.rejected or r.explanation_source == "none"


def test_auto_explanations_are_templated_when_the_llm_runs_on_this_cpu(rec: Recommender) -> None:
    assert rec.llm is not None and rec.llm.on_cpu and rec.writes_explanations
    auto = rec.with_settings(explanations="auto")
    assert not auto.writes_explanations and rec.writes_explanations  # a new object; the original is unchanged
    recs = auto.recommend("u1", k=3)
    assert {r.explanation_source for r in recs} <= {"template", "none"} and not any(r.rejected for r in recs)


def test_train_fusion_chooses_on_validation_and_serving_reads_it_back(trained: tuple[Path, Path],  # noqa: F811
                                                                      rec: Recommender, tmp_path: Path) -> None:
    """`kerec train fusion` (choose_fusion_weight + save_fusion_choice) writes the weight into the checkpoint;
    a Recommender loaded with the same LLM spec uses it, one with another LLM does not."""
    import shutil

    from kerec.api.tuning import choose_fusion_weight, save_fusion_choice
    from kerec.fusion import WEIGHTS
    from kerec.gnn import Checkpoint

    data, ckpt = trained
    choice, sweep = choose_fusion_weight(rec, "default", users=12, negatives=7, seed=3, progress=False)
    assert set(sweep) == {str(w) for w in WEIGHTS} and choice.users == 12
    assert choice.valid_acc == max(sweep.values()) and choice.weight in WEIGHTS
    assert all(v < choice.valid_acc for w, v in sweep.items() if float(w) < choice.weight)  # ties: the smaller weight
    copy = shutil.copy(ckpt, tmp_path / "retriever.pt")
    save_fusion_choice(copy, choice)
    assert Checkpoint.load(copy).fusion == choice
    same = Recommender.load(copy, data=str(data), llm="default")
    assert same.fusion_weight == choice.weight and same.fusion_source.startswith("checkpoint")
    other = same.with_llm(rec.llm)  # an LLM given as an object: not the one the weight was chosen for
    assert other.fusion_weight == 0.0 and "chosen for 'default'" in other.fusion_source
