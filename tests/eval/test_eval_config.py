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
    for path in sorted((ROOT / "eval" / "configs").glob("*.yaml")):  # every shipped eval config, bases resolved
        if not path.stem.startswith("retriever"):  # those are retriever settings (a config's retriever.base)
            assert load_eval_config(path, check_paths=False).name == path.stem


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
    (make(systems=["kerec", "joint"], protocols={"candidates": {}}), "system(s) joint need a fine-tuned checkpoint"),
    (make(systems=["kerec", "gnn-tuned"]), "systems gnn-tuned are scored on the 20-candidate protocol"),
    (make(systems=["kerec", "gnn-recency"]), "systems gnn-recency are scored on the 20-candidate protocol"),
    (make(systems=["kerec", "gnn-recency"], protocols={"candidates": {"recency": 0}}),
     "protocols.candidates.recency must be at least 1, got 0"),
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
    with pytest.raises(EvalConfigError, match="no such evaluation config file"):
        load_eval_config(tmp_path / "absent.yaml")


def test_digest_is_stable_and_separates_settings() -> None:
    assert digest({"a": 1, "b": [1, 2]}) == digest({"b": (1, 2), "a": 1})
    assert digest({"seed": 1}) != digest({"seed": 2})


def test_a_config_can_start_from_a_base_key_by_key(tmp_path: Path) -> None:
    (tmp_path / "parent.yaml").write_text("name: parent\nseeds: [1]\nsystems: [pop, kerec]\nprotocols: {full: {}}\n"
                                          "llm: {spec: default, batch_size: 4}\n")
    (tmp_path / "child.yaml").write_text("base: parent.yaml\nname: child\nseeds: [2]\nllm: {batch_size: 2}\n")
    child = load_eval_config(tmp_path / "child.yaml", check_paths=False)
    assert (child.name, child.seeds, child.systems) == ("child", (2,), ("pop", "kerec"))
    assert (child.llm.spec, child.llm.batch_size) == ("default", 2)  # llm.spec from the base, batch_size its own
    (tmp_path / "nameless.yaml").write_text("base: parent.yaml\nseeds: [3]\n")
    with pytest.raises(EvalConfigError, match="needs its own 'name'.*'parent'"):
        load_eval_config(tmp_path / "nameless.yaml", check_paths=False)
    (tmp_path / "loop.yaml").write_text("base: loop.yaml\nname: loop\n")
    with pytest.raises(EvalConfigError, match="form a cycle"):
        load_eval_config(tmp_path / "loop.yaml", check_paths=False)
    # The shipped seed-2021 config is the seed-2020 one with another name and seed, nothing else.
    configs = ROOT / "eval" / "configs"
    a = load_eval_config(configs / "finetune-residual.yaml", check_paths=False).to_dict()
    b = load_eval_config(configs / "finetune-residual-seed2021.yaml", check_paths=False).to_dict()
    assert {k for k in a if a[k] != b[k]} == {"name", "seeds"}


def test_system_train_overrides_one_system_only() -> None:
    from kerec.eval.systems import settings, train_key

    config = config_from_dict(make(systems=["pop", "kerec", "lightgcn"],
                                   retriever={"train": {"epochs": 60, "patience": 10},
                                              "system_train": {"lightgcn": {"epochs": 400, "patience": 50}}}))
    plain = config_from_dict(make(systems=["pop", "kerec", "lightgcn"], retriever={"train": {"epochs": 60, "patience": 10}}))
    assert (settings(config, "lightgcn")[1].epochs, settings(config, "lightgcn")[1].patience) == (400, 50)
    assert (settings(config, "kerec")[1].epochs, settings(config, "kerec")[1].patience) == (60, 10)
    assert train_key(config, "kerec", 1) == train_key(plain, "kerec", 1)  # kerec's trained models stay cached
    assert train_key(config, "lightgcn", 1) != train_key(plain, "lightgcn", 1)


@pytest.mark.parametrize("system_train, needle", [
    ({"lightgcm": {"epochs": 9}}, "retriever.system_train.lightgcm: 'lightgcm' is not a trained retriever system"),
    ({"lightgcn": {"epoch": 9}}, "unknown retriever.system_train.lightgcn key(s) 'epoch'"),
    ({"lightgcn": {"seed": 9}}, "retriever.system_train.lightgcn.seed cannot be set here"),
    ({"lightgcn": 9}, "retriever.system_train.lightgcn must be a mapping"),
])
def test_system_train_mistakes_are_named(system_train: dict[str, object], needle: str) -> None:
    with pytest.raises(EvalConfigError, match=needle.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        config_from_dict(make(systems=["pop", "kerec", "lightgcn"], retriever={"system_train": system_train}))
