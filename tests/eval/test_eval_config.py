"""The evaluation config: typed, and every mistake caught before any work with the valid choices listed."""
from __future__ import annotations

from pathlib import Path

import pytest

from kerec.eval.config import SYSTEMS, EvalConfigError, config_from_dict, digest, load_eval_config

ROOT = Path(__file__).resolve().parents[2]
OK = {"name": "t", "systems": ["pop", "kerec"], "protocols": {"full": {}}}


def make(**changes: object) -> dict[str, object]:
    return {**OK, **changes}


def test_shipped_configs_parse() -> None:
    for name in ("quick", "default"):
        config = load_eval_config(ROOT / "eval" / "configs" / f"{name}.yaml", check_paths=False)
        assert config.name == name and "kerec" in config.systems and config.protocols.full is not None
    assert len(load_eval_config(ROOT / "eval/configs/default.yaml", check_paths=False).seeds) == 3


def test_defaults_fill_missing_sections() -> None:
    config = config_from_dict(OK)
    assert config.protocols.full.ks == (10, 20) and config.dataset.path == "default"
    assert config.retriever_systems == ("pop", "kerec") and config.llm_systems == ()


@pytest.mark.parametrize("data, needle", [
    (make(bogus=1), "unknown key(s) 'bogus' in the top level; valid keys: name, dataset"),
    (make(dataset={"pth": "x"}), "'pth' in dataset; valid keys: path, format"),
    (make(systems=["kerec", "kerec-no-graph"]), "unknown system(s) 'kerec-no-graph'; valid: " + ", ".join(SYSTEMS)),
    (make(protocols={"full": {"metrics": ["recall", "auc"]}}), "unknown protocols.full.metrics 'auc'; valid: recall, ndcg"),
    (make(protocols={"fulll": {}}), "unknown key(s) 'fulll' in protocols; valid keys: full, candidates, explain, cold_start"),
    (make(protocols={}), "no protocol to run"),
    (make(seeds=[1, 1]), "distinct"),
    (make(seeds=3), "seeds must be a list"),
    (make(systems=["kerec", "llm"]), "add a protocols.candidates section"),
    (make(systems=["kerec", "llm-tuned"], protocols={"candidates": {}}), "need a fine-tuned checkpoint: set llm.finetune"),
    (make(systems=["kerec", "fused"], protocols={"candidates": {}}), "add 'llm'"),
    (make(systems=["pop", "llm"], protocols={"candidates": {}}), "must be a trained retriever among systems"),
    (make(retriever={"train": {"epoch": 3}}), "unknown retriever.train key(s) 'epoch'; valid: epochs"),
    (make(retriever={"train": {"seed": 3}}), "use the top-level seeds list"),
    (make(protocols={"cold_start": {"systems": ["pop"]}}), "unknown protocols.cold_start.systems 'pop'"),
    (make(threads="two"), "threads must be an integer"),
    (make(workers=0), "workers must be at least 1, got 0"),
    (make(llm={"tuned_engine": "tgi"}), "unknown llm.tuned_engine 'tgi'; valid: transformers, vllm"),
    (make(significance={"test": "ks"}), "valid: auto, wilcoxon, ttest, permutation"),
])
def test_mistakes_are_named_with_the_valid_choices(data: dict[str, object], needle: str) -> None:
    with pytest.raises(EvalConfigError) as err:
        config_from_dict(data, check_paths=False)
    assert needle in str(err.value)


def test_missing_folders_fail_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(EvalConfigError, match="dataset.path .* is not a folder"):
        config_from_dict(make(dataset={"path": str(tmp_path / "nowhere")}))
    (tmp_path / "split").mkdir()
    (tmp_path / "split" / "train.tsv").write_text("")
    with pytest.raises(EvalConfigError, match=r"missing valid.tsv, test.tsv"):
        config_from_dict(make(dataset={"split": str(tmp_path / "split")}))
    with pytest.raises(EvalConfigError, match="no evaluation config at"):
        load_eval_config(tmp_path / "absent.yaml")


def test_digest_is_stable_and_separates_settings() -> None:
    assert digest({"a": 1, "b": [1, 2]}) == digest({"b": (1, 2), "a": 1})
    assert digest({"seed": 1}) != digest({"seed": 2})
