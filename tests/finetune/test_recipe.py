from __future__ import annotations

from pathlib import Path

import pytest

from kerec.finetune.errors import RecipeError
from kerec.finetune.recipe import Recipe, load_recipe

RECIPES = Path(__file__).resolve().parents[2] / "finetune"


@pytest.mark.parametrize("name", ["cpu-tiny.yaml", "gpu-qlora.yaml"])
def test_shipped_recipes_load(name: str) -> None:
    recipe = load_recipe(RECIPES / name)
    assert recipe.soft_tokens > 0


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
    with pytest.raises(RecipeError, match=r"22 soft tokens .* do not fit train.max_length 16"):
        Recipe.from_dict({"train": {"max_length": 16}})
    with pytest.raises(RecipeError, match="needs llm.adapter 'lora'"):
        Recipe.from_dict({"llm": {"quantization": "nf4", "adapter": "frozen"}})


def test_yaml_exponent_without_a_dot_is_a_number(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("train:\n  lr: 2e-4\n")
    assert load_recipe(path).train.lr == pytest.approx(2e-4)
