"""One dataset-section type for finetune recipes and evaluation configs (they used to drift apart)."""
from __future__ import annotations

import pytest

from kerec.data import DatasetSpec
from kerec.errors import KerecError
from kerec.eval.config import EvalConfig, EvalConfigError, config_from_dict
from kerec.finetune.errors import RecipeError
from kerec.finetune.recipe import Recipe


def test_recipes_and_eval_configs_share_the_dataset_section() -> None:
    assert Recipe.__dataclass_fields__["dataset"].type in ("DatasetSpec", DatasetSpec)
    assert EvalConfig.__dataclass_fields__["dataset"].type in ("DatasetSpec", DatasetSpec)
    recipe = Recipe.from_dict({"dataset": {"path": None, "split": "loo", "split_seed": 7}})
    config = config_from_dict({"name": "x", "systems": ["pop"], "protocols": {"full": {}},
                               "dataset": {"split": "loo", "split_seed": 7}}, check_paths=False)
    assert recipe.dataset == config.dataset == DatasetSpec(split="loo", split_seed=7)
    assert recipe.dataset.folder is None and DatasetSpec(path="/data/books").folder == "/data/books"


def test_the_old_seed_key_is_named_and_saved_recipes_are_migrated() -> None:
    with pytest.raises(RecipeError, match="dataset.seed is now dataset.split_seed"):
        Recipe.from_dict({"dataset": {"seed": 3}})
    with pytest.raises(EvalConfigError, match="dataset.seed is now dataset.split_seed"):
        config_from_dict({"name": "x", "systems": ["pop"], "dataset": {"seed": 3}}, check_paths=False)
    saved = Recipe.from_dict({}).to_dict()
    saved["dataset"] = {**{k: v for k, v in saved["dataset"].items() if k != "split_seed"}, "seed": 3}
    assert Recipe.from_saved(saved, "old/finetune.pt").dataset.split_seed == 3


@pytest.mark.parametrize("bad, match", [({"format": "csv"}, "format must be one of"),
                                        ({"split_seed": "1"}, "split_seed must be an integer"),
                                        ({"linked_only": "yes"}, "linked_only must be true or false")])
def test_bad_values_are_named(bad: dict, match: str) -> None:
    with pytest.raises(KerecError, match=match):
        DatasetSpec(**bad)
    with pytest.raises(RecipeError, match=match):
        Recipe.from_dict({"dataset": bad})
