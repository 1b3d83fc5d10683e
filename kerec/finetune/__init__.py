"""Joint instruction tuning of the LLM with the GNN retriever (DESIGN.md, "Joint training").

* :mod:`~kerec.finetune.data` — ranking and explanation samples from the training split
  (:mod:`~kerec.finetune.prompt_inputs`: the compact ranking prompt's inputs);
* :mod:`~kerec.finetune.soft_prompt` — the graph soft prompt (GNN vectors → LLM input embeddings), placed
  before the text or inline at the prompt's placeholders;
* :mod:`~kerec.finetune.model` / :mod:`~kerec.finetune.train` — ``L = L_LLM + λ_R·L_R + λ_K·L_K`` over LoRA
  (or QLoRA) adapters, the projector and the GNN, through accelerate;
* :mod:`~kerec.finetune.recipe` — checked YAML recipes (``finetune/*.yaml``);
* :mod:`~kerec.finetune.scoring` — letter log-probabilities from a tuned checkpoint (evaluation hook).

Run a recipe with ``python -m kerec.finetune --recipe finetune/cpu-tiny.yaml``.
"""
from __future__ import annotations

from kerec.finetune.data import DataConfig, InstructionBuilder, InstructionSample
from kerec.finetune.errors import FinetuneCheckpointError, FinetuneError, RecipeError
from kerec.finetune.recipe import Recipe, load_recipe
from kerec.finetune.soft_prompt import SOFT_TOKEN, GraphInputs, GraphSoftPrompt, fill_slots, splice

__all__ = [
    "DataConfig", "FinetuneCheckpointError", "FinetuneError", "GraphInputs", "GraphSoftPrompt", "InstructionBuilder",
    "InstructionSample", "Recipe", "RecipeError", "SOFT_TOKEN", "fill_slots", "load_recipe", "splice",
]
