"""The real default LLM (SmolLM2-135M-Instruct) through the whole joint loop, at a tiny size."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kerec.finetune.train import finetune

from .conftest import tiny_recipe

pytestmark = pytest.mark.slow


def test_smollm2_joint_steps(synth_dir: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    recipe = tiny_recipe(synth_dir, Path("unused"), tmp_path / "run",
                         llm={"model": "default", "target_modules": ["q_proj", "v_proj"]},
                         data={"ranking_samples": 8, "explanation_samples": 0, "candidates": 6},
                         train={"max_steps": 2, "batch_size": 2, "lr": 1e-3, "graph_lr": 1e-3})
    result = finetune(recipe, progress=False)
    assert result.steps == 2 and all(np.isfinite(h.loss) for h in result.history)
    # SmolLM2 already answers with a letter: its answer loss starts far below uniform (ln 49152 ≈ 10.8)
    assert result.history[0].loss_llm < 8
    assert (result.checkpoint / "adapter" / "adapter_model.safetensors").is_file()
