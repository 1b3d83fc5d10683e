from __future__ import annotations

from pathlib import Path

import pytest

from kerec.finetune.errors import RecipeError
from kerec.finetune.recipe import Recipe, load_recipe

RECIPES = Path(__file__).resolve().parents[2] / "finetune"


@pytest.mark.parametrize("name", sorted(p.name for p in RECIPES.glob("*.yaml")))
def test_shipped_recipes_load(name: str) -> None:
    recipe = load_recipe(RECIPES / name)
    assert recipe.soft_tokens > 0


def test_stacked_recipe_is_the_residual_one_on_gnn_holdout_targets() -> None:
    stacked, residual = load_recipe(RECIPES / "cpu-tiny-stacked.yaml"), load_recipe(RECIPES / "cpu-tiny-residual.yaml")
    assert stacked.data.targets == "gnn_holdout" and residual.data.targets == "train"
    assert stacked.train == residual.train and stacked.train.residual > 0


def test_gpu_recipe_is_qlora_on_a_half_billion_instruct_model() -> None:
    recipe = load_recipe(RECIPES / "gpu-qlora.yaml")
    assert recipe.llm.quantization == "nf4" and recipe.llm.adapter == "lora"
    assert "0.5B-Instruct" in recipe.llm.model or "1.5B-Instruct" in recipe.llm.model


def test_unknown_key_is_named_with_the_valid_ones(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("train:\n  lamda_r: 0.1\n")
    with pytest.raises(RecipeError, match=r"unknown key\(s\) train.lamda_r.*valid keys of 'train'.*lambda_r"):
        load_recipe(path)
    path.write_text("trian: {}\n")
    with pytest.raises(RecipeError, match=r"unknown section\(s\) \['trian'\].*'train'"):
        load_recipe(path)


def test_impossible_values_fail_before_training() -> None:
    with pytest.raises(RecipeError, match="train.lambda_r must be a number >= 0"):
        Recipe.from_dict({"train": {"lambda_r": -0.1}})
    with pytest.raises(RecipeError, match="train.lambda_k"):
        Recipe.from_dict({"train": {"lambda_k": -1}})
    with pytest.raises(RecipeError, match="train.residual"):
        Recipe.from_dict({"train": {"residual": -0.5}})
    with pytest.raises(RecipeError, match=r"22 soft tokens .* do not fit train.max_length 16"):
        Recipe.from_dict({"train": {"max_length": 16}})
    with pytest.raises(RecipeError, match="needs llm.adapter 'lora'"):
        Recipe.from_dict({"llm": {"quantization": "nf4", "adapter": "frozen"}})
    with pytest.raises(RecipeError, match="relevance and soft_prompt.letter_slots .* need candidate_tokens: true"):
        Recipe.from_dict({"soft_prompt": {"relevance": True, "candidate_tokens": False}})
    with pytest.raises(RecipeError, match="soft_prompt.recency must be between 0 and 20, got 21"):
        Recipe.from_dict({"soft_prompt": {"recency": 21}})
    with pytest.raises(RecipeError, match="soft_prompt.recency .* needs candidate_tokens: true"):
        Recipe.from_dict({"soft_prompt": {"recency": 3, "candidate_tokens": False}})


def test_yaml_exponent_without_a_dot_is_a_number(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("train:\n  lr: 2e-4\n")
    assert load_recipe(path).train.lr == pytest.approx(2e-4)


def test_the_cpu_recipe_uses_the_compact_prompt_with_inline_soft_tokens() -> None:
    recipe = load_recipe(RECIPES / "cpu-tiny.yaml")
    assert recipe.data.prompt == "ranking-compact" and recipe.soft_prompt.placement == "inline"
    assert recipe.added_tokens == 0 and recipe.soft_tokens == recipe.soft_prompt.graph_tokens + recipe.data.candidates
    assert load_recipe(RECIPES / "gpu-qlora.yaml").added_tokens == load_recipe(RECIPES / "gpu-qlora.yaml").soft_tokens


def test_prompt_and_placement_must_agree() -> None:
    compact = {"prompt": "ranking-compact"}
    assert Recipe.from_dict({"data": compact, "soft_prompt": {"placement": "inline"}}).soft_prompt.placement == "inline"
    assert Recipe.from_dict({}).soft_prompt.placement == "prefix" and Recipe.from_dict({}).data.prompt == "ranking"
    needs = r"data.prompt 'ranking-compact' holds a place for each soft token: it needs soft_prompt enabled: true, " \
            r"placement: inline and candidate_tokens: true \(got enabled: {}, placement: {}, candidate_tokens: {}\)"
    with pytest.raises(RecipeError, match=needs.format(True, "prefix", True)):
        Recipe.from_dict({"data": compact})
    with pytest.raises(RecipeError, match=needs.format(False, "inline", True)):
        Recipe.from_dict({"data": compact, "soft_prompt": {"placement": "inline", "enabled": False}})
    with pytest.raises(RecipeError, match=needs.format(True, "inline", False)):
        Recipe.from_dict({"data": compact, "soft_prompt": {"placement": "inline", "candidate_tokens": False}})
    with pytest.raises(RecipeError, match=r"placement 'inline' needs data.prompt 'ranking-compact' \(the 'ranking' prompt"):
        Recipe.from_dict({"soft_prompt": {"placement": "inline"}})


def test_unknown_prompt_or_placement_lists_the_valid_ones() -> None:
    with pytest.raises(RecipeError, match=r"recipe: soft_prompt.placement must be one of prefix, inline, got 'inlin'"):
        Recipe.from_dict({"soft_prompt": {"placement": "inlin"}})
    with pytest.raises(RecipeError, match=r"data.prompt must be one of ranking, ranking-compact, got 'compact'"):
        Recipe.from_dict({"data": {"prompt": "compact"}})
    with pytest.raises(RecipeError, match=r"data.candidate_titles: false needs data.prompt 'ranking-compact'"):
        Recipe.from_dict({"data": {"candidate_titles": False}})
    with pytest.raises(RecipeError, match=r"data.history_in_prompt must be >= 0, got -1"):
        Recipe.from_dict({"data": {"history_in_prompt": -1}})


def test_a_recipe_with_a_base_changes_only_the_keys_it_names(tmp_path: Path) -> None:
    (tmp_path / "parent.yaml").write_text("data: {ranking_samples: 100, candidates: 10}\n"
                                          "train: {lr: 1.0e-3, residual: 1.0}\nout: parent-out\n")
    (tmp_path / "child.yaml").write_text("base: parent.yaml\ntrain: {residual: 3.0}\nout: child-out\n")
    child = load_recipe(tmp_path / "child.yaml")
    assert (child.data.ranking_samples, child.data.candidates) == (100, 10)
    assert (child.train.lr, child.train.residual, child.out) == (1e-3, 3.0, "child-out")
    shipped = load_recipe(RECIPES / "cpu-tiny-residual.yaml").to_dict()
    tiny = load_recipe(RECIPES / "cpu-tiny.yaml").to_dict()
    changed = {(s, k) for s, sec in shipped.items() if isinstance(sec, dict) for k in sec if sec[k] != tiny[s][k]}
    assert changed == {("data", "ranking_samples"), ("train", "residual")}


def test_bad_or_cyclic_bases_are_named(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(RecipeError, match="form a cycle"):
        load_recipe(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("base: missing.yaml\n")
    with pytest.raises(RecipeError, match="missing.yaml: no such recipe file"):
        load_recipe(tmp_path / "c.yaml")
