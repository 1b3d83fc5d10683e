"""Fine-tuning recipes: one YAML file, typed and checked before anything is loaded or trained.

Sections (each optional; unknown sections or keys are errors that name the key and list the valid ones):
``dataset`` (:class:`kerec.data.DatasetSpec`, shared with evaluation configs), ``retriever`` (:class:`RetrieverSection`), ``data``
(:class:`~kerec.finetune.data.DataConfig`), ``llm`` (:class:`LLMSection`), ``soft_prompt``
(:class:`SoftPromptSection`), ``train`` (:class:`TrainSection`), and ``out`` (the output folder).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from kerec.finetune.batches import RECENT_ITEMS
from kerec.finetune.data import DataConfig
from kerec.finetune.errors import RecipeError
from kerec.finetune.model import ADAPTERS
from kerec.finetune.soft_prompt import PLACEMENTS
from kerec.layered_yaml import read_layered
from kerec.data.spec import DatasetSpec, renamed_keys
from kerec.errors import KerecError


@dataclass(frozen=True)
class RetrieverSection:
    """``checkpoint``: a retriever checkpoint (``kerec train retriever``), ``"default"``, or None to build
    a fresh kerec retriever with the sizes below and pretrain it for ``pretrain_epochs`` (L_R + λ_K·L_K)
    before joint tuning. With a checkpoint, its dataset and split are used."""

    checkpoint: str | None = None
    embedding_dim: int = 64
    num_layers: int = 2
    kg_layers: int = 1
    pretrain_epochs: int = 20
    pretrain_lr: float = 5e-3

    def __post_init__(self) -> None:
        _at_least(self, "retriever", ("embedding_dim", "num_layers"), 1)
        _at_least(self, "retriever", ("kg_layers", "pretrain_epochs"), 0)
        _positive(self, "retriever", ("pretrain_lr",))


@dataclass(frozen=True)
class LLMSection:
    """``model``: "default" (SmolLM2-135M-Instruct), a local folder or a Hugging Face id;
    ``quantization``: None or "nf4" (QLoRA; CUDA); ``adapter``: "lora" or "frozen"."""

    model: str = "default"
    quantization: str | None = None
    dtype: str | None = None
    adapter: str = "lora"
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        if self.quantization not in (None, "nf4"):
            raise RecipeError(f"llm.quantization must be null or 'nf4', got {self.quantization!r}")
        if self.adapter not in ADAPTERS:
            raise RecipeError(f"llm.adapter must be one of {', '.join(ADAPTERS)}, got {self.adapter!r}")
        if self.quantization and self.adapter != "lora":
            raise RecipeError("llm.quantization 'nf4' needs llm.adapter 'lora' (4-bit weights cannot be trained)")
        if self.dtype not in (None, "float32", "bfloat16", "float16"):
            raise RecipeError(f"llm.dtype must be null, float32, bfloat16 or float16, got {self.dtype!r}")
        _at_least(self, "llm", ("lora_r", "lora_alpha"), 1)
        if not 0 <= self.lora_dropout < 1:
            raise RecipeError(f"llm.lora_dropout must be in [0, 1), got {self.lora_dropout}")
        object.__setattr__(self, "target_modules", tuple(self.target_modules))


@dataclass(frozen=True)
class SoftPromptSection:
    """``enabled``: graph soft prompt on/off (off: text-only prompts, the GNN learns from L_R and L_K only);
    ``graph_tokens`` context tokens, plus one per candidate with ``candidate_tokens``; ``placement``:
    ``prefix`` (all soft tokens before the text) or ``inline`` (at the compact prompt's placeholders: the
    context tokens in the user line, each candidate's after its letter); ``relevance``, ``recency`` (the
    m most recent history items each candidate is compared with, 0: off, at most
    :data:`~kerec.finetune.batches.RECENT_ITEMS`) and ``letter_slots``: see
    :class:`~kerec.finetune.soft_prompt.GraphSoftPrompt` (all need candidate tokens)."""

    enabled: bool = True
    graph_tokens: int = 2
    candidate_tokens: bool = True
    hidden_dim: int = 256
    placement: str = "prefix"
    relevance: bool = False  # add the candidate's standardised GNN score along a learnt direction
    letter_slots: bool = False  # candidate slots start as their letters' input embeddings
    recency: int = 0  # add the candidate's standardised cosine with the m most recent history items (0: off)

    def __post_init__(self) -> None:
        _at_least(self, "soft_prompt", ("graph_tokens", "hidden_dim"), 1)
        if (self.relevance or self.letter_slots) and not self.candidate_tokens:
            raise RecipeError("soft_prompt.relevance and soft_prompt.letter_slots shape the candidate tokens: "
                              "they need candidate_tokens: true")
        if not 0 <= self.recency <= RECENT_ITEMS:
            raise RecipeError(f"soft_prompt.recency must be between 0 and {RECENT_ITEMS}, got {self.recency}")
        if self.recency and not self.candidate_tokens:
            raise RecipeError("soft_prompt.recency shapes the candidate tokens: it needs candidate_tokens: true")
        if self.placement not in PLACEMENTS:
            raise RecipeError(f"soft_prompt.placement must be one of {', '.join(PLACEMENTS)}, got {self.placement!r}")


@dataclass(frozen=True)
class TrainSection:
    """Optimisation. ``max_steps``: optimiser steps (None: ``epochs`` passes over the samples);
    ``batch_size`` samples per micro-batch, ``grad_accum`` micro-batches per step; ``lr`` for LoRA,
    ``graph_lr`` for the projector and the GNN (one optimiser, two parameter groups); ``lambda_r``/
    ``lambda_k`` weigh BPR and the KG loss; ``max_length`` caps soft tokens + prompt + answer;
    ``batch_by_kind``: each micro-batch holds ranking or explanation samples only (shuffled batches), so
    the short ranking prompts are not padded to the explanations' length; ``residual`` β > 0 trains the
    answer letter on the letter logits plus β times the candidates' standardised GNN scores (the LLM learns
    what the GNN misses, as the fused ranking uses it; 0: on the letter logits alone)."""

    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 4
    grad_accum: int = 4
    batch_by_kind: bool = False
    lr: float = 2e-4
    graph_lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 10
    max_grad_norm: float = 1.0
    lambda_r: float = 0.1
    lambda_k: float = 0.01
    residual: float = 0.0
    bpr_batch_size: int = 1024
    kg_batch_size: int = 1024
    max_length: int = 2048
    mixed_precision: str = "no"
    save_every: int = 100
    log_every: int = 5
    seed: int = 2020

    def __post_init__(self) -> None:
        _at_least(self, "train", ("epochs", "batch_size", "grad_accum", "bpr_batch_size", "kg_batch_size",
                                  "max_length", "save_every", "log_every"), 1)
        _at_least(self, "train", ("warmup_steps",), 0)
        if self.max_steps is not None and self.max_steps < 1:
            raise RecipeError(f"train.max_steps must be >= 1 or null, got {self.max_steps}")
        _positive(self, "train", ("lr", "graph_lr", "max_grad_norm"))
        for name in ("lambda_r", "lambda_k", "residual", "weight_decay"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise RecipeError(f"train.{name} must be a number >= 0, got {value!r}")
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise RecipeError(f"train.mixed_precision must be 'no', 'bf16' or 'fp16', got {self.mixed_precision!r}")


@dataclass(frozen=True)
class Recipe:
    dataset: DatasetSpec = field(default_factory=DatasetSpec)
    retriever: RetrieverSection = field(default_factory=RetrieverSection)
    data: DataConfig = field(default_factory=DataConfig)
    llm: LLMSection = field(default_factory=LLMSection)
    soft_prompt: SoftPromptSection = field(default_factory=SoftPromptSection)
    train: TrainSection = field(default_factory=TrainSection)
    out: str = "finetune-runs/run"

    def __post_init__(self) -> None:
        _check_prompt_placement(self.data, self.soft_prompt)
        if self.soft_prompt.enabled:
            k = self.soft_prompt.graph_tokens + (self.data.candidates if self.soft_prompt.candidate_tokens else 0)
            if k >= self.train.max_length:
                raise RecipeError(f"soft_prompt: {k} soft tokens (graph_tokens {self.soft_prompt.graph_tokens}"
                                  f"{f' + {self.data.candidates} candidate tokens' if self.soft_prompt.candidate_tokens else ''})"
                                  f" do not fit train.max_length {self.train.max_length}, which must also hold the prompt")

    @property
    def soft_tokens(self) -> int:
        """k, the soft tokens per ranking prompt (0 without a soft prompt)."""
        if not self.soft_prompt.enabled:
            return 0
        return self.soft_prompt.graph_tokens + (self.data.candidates if self.soft_prompt.candidate_tokens else 0)

    @property
    def added_tokens(self) -> int:
        """Positions the soft prompt adds to an encoded prompt: k before the text with prefix placement,
        0 inline (each soft token takes its placeholder's position, already counted in the prompt)."""
        return self.soft_tokens if self.soft_prompt.placement == "prefix" else 0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["llm"]["target_modules"] = list(self.llm.target_modules)
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "recipe") -> Recipe:
        if not isinstance(raw, dict):
            raise RecipeError(f"{source}: expected a mapping of sections, got {type(raw).__name__}")
        sections = {f.name: f for f in fields(cls)}
        unknown = sorted(set(raw) - set(sections))
        if unknown:
            raise RecipeError(f"{source}: unknown section(s) {unknown}; valid sections: {sorted(sections)}")
        parts: dict[str, Any] = {}
        for name, value in raw.items():
            if name == "out":
                if not isinstance(value, str) or not value:
                    raise RecipeError(f"{source}: out must be a folder path, got {value!r}")
                parts[name] = value
                continue
            kind = _SECTIONS[name]
            value = value or {}
            if not isinstance(value, dict):
                raise RecipeError(f"{source}: section {name!r} must be a mapping, got {type(value).__name__}")
            valid = sorted(f.name for f in fields(kind))
            bad = sorted(set(value) - set(valid))
            if bad:
                hint = renamed_keys(bad) if name == "dataset" else ""
                raise RecipeError(f"{source}: unknown key(s) {', '.join(f'{name}.{k}' for k in bad)}; "
                                  f"valid keys of {name!r}: {valid}" + (f" ({hint})" if hint else ""))
            value = {k: _number(v) if "float" in str(f.type) else v
                     for f in fields(kind) for k, v in value.items() if k == f.name}
            try:
                parts[name] = kind(**value)
            except (RecipeError, KerecError) as exc:
                raise RecipeError(f"{source}: {exc}") from None
            except TypeError as exc:
                raise RecipeError(f"{source}: section {name!r}: {exc}") from None
        try:
            return cls(**parts)
        except RecipeError as exc:
            raise RecipeError(f"{source}: {exc}") from None

    @classmethod
    def from_saved(cls, raw: dict[str, Any], source: str) -> Recipe:
        """A recipe saved in a finetune checkpoint; those saved before the dataset section was shared with
        evaluation configs (2026-12-05) name ``dataset.seed``, read here as ``dataset.split_seed``."""
        dataset = dict(raw.get("dataset") or {})
        if "seed" in dataset and "split_seed" not in dataset:
            dataset["split_seed"] = dataset.pop("seed")
        return cls.from_dict({**raw, "dataset": dataset}, source)

    def replace(self, **sections: dict[str, Any]) -> Recipe:
        """A copy with some keys changed, e.g. ``recipe.replace(train={"max_steps": 5})`` (checked again)."""
        raw = self.to_dict()
        for name, values in sections.items():
            if name == "out":
                raw["out"] = values
            else:
                raw.setdefault(name, {}).update(values)
        return Recipe.from_dict(raw)


_SECTIONS = {"dataset": DatasetSpec, "retriever": RetrieverSection, "data": DataConfig, "llm": LLMSection,
             "soft_prompt": SoftPromptSection, "train": TrainSection}


def _check_prompt_placement(data: DataConfig, sp: SoftPromptSection) -> None:
    """The compact prompt and inline placement only make sense together: one has the placeholders, the
    other fills them."""
    if data.prompt == "ranking-compact" and not (sp.enabled and sp.placement == "inline" and sp.candidate_tokens):
        raise RecipeError("data.prompt 'ranking-compact' holds a place for each soft token: it needs soft_prompt "
                          f"enabled: true, placement: inline and candidate_tokens: true (got enabled: {sp.enabled}, "
                          f"placement: {sp.placement}, candidate_tokens: {sp.candidate_tokens})")
    if sp.placement == "inline" and data.prompt != "ranking-compact":
        raise RecipeError(f"soft_prompt.placement 'inline' needs data.prompt 'ranking-compact' (the {data.prompt!r} "
                          "prompt has no places for soft tokens); use placement 'prefix' with it")


def load_recipe(path: str | Path) -> Recipe:
    """Read and check a recipe file; every problem raises :class:`RecipeError` naming the file and key.
    A top-level ``base: other.yaml`` (relative to the file) starts from that recipe: this file's keys
    replace the base's, section by section (``train: {residual: 3}`` changes only ``train.residual``)."""
    path = Path(path)
    return Recipe.from_dict(read_layered(path, RecipeError, "recipe", "finetune/"), str(path))


def _number(value: Any) -> Any:
    """PyYAML reads ``2e-4`` (no dot) as a string; a float field takes it as the number it spells."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _at_least(obj: object, section: str, names: tuple[str, ...], low: int) -> None:
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise RecipeError(f"{section}.{name} must be an integer >= {low}, got {value!r}")


def _positive(obj: object, section: str, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(obj, name)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise RecipeError(f"{section}.{name} must be a positive number, got {value!r}")
