"""The report's honesty checks on hand-made results: under-trained systems are flagged, the headline ratio
is against the strongest converged baseline, and the code state says whether the tree was clean."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kerec.eval.command import code_state, describe_code, recorded_command
from kerec.eval.report import _versus_strongest, undertrained


def results() -> dict:
    summary = {"kerec": {"recall@20": [0.41, 0.0], "ndcg@20": [0.36, 0.0]},
               "kerec-no-kg": {"recall@20": [0.42, 0.0], "ndcg@20": [0.37, 0.0]},
               "ease": {"recall@20": [0.40, 0.0], "ndcg@20": [0.35, 0.0]},
               "lightgcn": {"recall@20": [0.405, 0.0], "ndcg@20": [0.30, 0.0]},
               "pop": {"recall@20": [0.19, 0.0], "ndcg@20": [0.15, 0.0]}}
    training = {"kerec": {"1": {"best_epoch": 30, "epochs_run": 40}},
                "ease": {"1": {"best_epoch": 0, "epochs_run": 0}},  # closed form
                "lightgcn": {"1": {"best_epoch": 60, "epochs_run": 60}, "2": {"best_epoch": 50, "epochs_run": 60}}}
    anchors = [{"name": "RecBole 1.2.1 LightGCN (external run)", "metrics": {"recall@20": [0.38, 0.0], "ndcg@20": [0.32, 0.0]},
                "epochs": {"2020": {"best_epoch": 299, "epochs_run": 300, "stopped_early": False}}},
               {"name": "RecBole 1.2.1 BPR (external run)", "metrics": {"recall@20": [0.37, 0.0], "ndcg@20": [0.31, 0.0]},
                "epochs": {"2020": {"best_epoch": 40, "epochs_run": 51, "stopped_early": True}}}]
    return {"full_summary": summary, "training": training, "anchors": anchors}


def test_every_system_whose_best_epoch_is_its_last_is_flagged() -> None:
    flagged = undertrained(results())
    assert set(flagged) == {"LightGCN", "RecBole 1.2.1 LightGCN (external run)"}
    assert flagged["LightGCN"] == ["1"]  # seed 2 stopped 10 epochs after its best


def test_the_headline_ratio_is_against_the_strongest_converged_baseline() -> None:
    line = _versus_strongest(results())
    # LightGCN (0.405) is stronger than EASE (0.400) but under-trained: EASE is the baseline; ablations don't count
    assert "(EASE" in line or "(ease" in line
    assert "0.4100 vs 0.4000 (1.025×)" in line and "under-trained: LightGCN" in line


def test_code_state_says_whether_the_tree_was_clean(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    assert code_state(tmp_path)["commit"] is None and "unknown" in describe_code(code_state(tmp_path))
    git("init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    git("add", "a.py")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "one")
    clean = code_state(tmp_path)
    assert clean["commit"] and clean["dirty"] is False and "clean tree" in describe_code(clean)
    (tmp_path / "a.py").write_text("x = 2\n")
    dirty = code_state(tmp_path)
    assert dirty["dirty"] is True and dirty["changed"] == ["a.py"] and "uncommitted changes" in describe_code(dirty)

    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.chdir(tmp_path)
    try:
        line = recorded_command("python eval/bench_x.py", ["--out", "a b"])
    finally:
        monkeypatch.undo()
    assert line.startswith("python eval/bench_x.py --out 'a b'  # code: commit ")
    assert "WITH UNCOMMITTED CHANGES (a.py)" in line
