"""Fine-tuning checkpoints: one folder per save, plain data only (read back with ``weights_only=True``).

``<out>/step-<n>/`` holds

* ``retriever.pt`` — the tuned GNN as an ordinary retriever checkpoint (:class:`kerec.gnn.checkpoint.Checkpoint`:
  weights, model args, dataset ids and fingerprint, split, versions), loadable by ``Recommender.load``;
* ``adapter/`` — the LoRA adapter weights (peft's ``save_pretrained``; absent for a frozen LLM);
* ``finetune.pt`` — format tag, step, the recipe as a dict, the base LLM's identity (name, model type,
  hidden size, vocabulary, layers), the projector's weights and arguments, versions;
* ``optimizer.pt`` — optimiser and scheduler state, for resuming.

``<out>/latest`` names the newest folder.
"""
from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from kerec.finetune.errors import FinetuneCheckpointError
from kerec.gnn.checkpoint import describe, read_torch_file

FORMAT = "kerec-finetune/1"
_IDENTITY = ("model_type", "hidden_size", "vocab_size", "num_hidden_layers")


@dataclass(frozen=True)
class FinetuneState:
    """The contents of ``finetune.pt``."""

    step: int
    recipe: dict[str, Any]
    base_model: dict[str, Any]
    projector: dict[str, torch.Tensor] | None
    projector_args: dict[str, Any]
    versions: dict[str, str]


def base_identity(name: str, config: Any) -> dict[str, Any]:
    """What a checkpoint records of its base LLM: ``name`` and the config fields that fix its shapes."""
    return {"name": name, **{k: getattr(config, k, None) for k in _IDENTITY}}


def check_base(saved: dict[str, Any], current: dict[str, Any], where: Path) -> None:
    """Raise unless a checkpoint's base LLM is the one loaded now (adapters only fit their base model)."""
    if saved != current:
        diff = {k: (saved.get(k), current.get(k)) for k in set(saved) | set(current) if saved.get(k) != current.get(k)}
        raise FinetuneCheckpointError(
            f"{where} was tuned on base model {saved.get('name')!r}, but the recipe loads {current.get('name')!r} "
            f"(differs in {sorted(diff)}: saved vs now {diff}); resume with the recipe that made it")


def versions() -> dict[str, str]:
    out = {"torch": str(torch.__version__)}
    for dist in ("kerec", "transformers", "peft", "accelerate", "bitsandbytes", "torch-geometric"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def save_state(folder: Path, state: FinetuneState, optimizer: dict[str, Any] | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"format": FORMAT, **state.__dict__}, folder / "finetune.pt")
    if optimizer is not None:
        torch.save(optimizer, folder / "optimizer.pt")


def load_state(folder: str | Path) -> FinetuneState:
    folder = resolve(folder)
    raw = _load(folder / "finetune.pt")
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise FinetuneCheckpointError(f"{folder}: not a kerec fine-tuning checkpoint (expected format {FORMAT!r}; "
                                      f"finetune.pt holds {describe(raw)})")
    missing = sorted(set(FinetuneState.__dataclass_fields__) - set(raw))
    if missing:
        raise FinetuneCheckpointError(f"{folder}: finetune.pt lacks {missing}; truncated or from another version?")
    return FinetuneState(**{k: raw[k] for k in FinetuneState.__dataclass_fields__})


def load_optimizer(folder: Path) -> dict[str, Any]:
    return _load(resolve(folder) / "optimizer.pt")


def resolve(folder: str | Path) -> Path:
    """A checkpoint folder, or a run folder (its ``latest``)."""
    folder = Path(folder)
    if (folder / "latest").is_file():
        folder = folder / (folder / "latest").read_text(encoding="utf-8").strip()
    if not (folder / "finetune.pt").is_file():
        raise FinetuneCheckpointError(f"{folder}: no fine-tuning checkpoint here (no finetune.pt, no 'latest')")
    return folder


def fingerprint(folder: str | Path) -> str:
    """A content hash of the checkpoint ``folder`` resolves to (its ``finetune.pt`` and adapter files, not the
    optimizer): what results computed from it are keyed by, so a run retrained into the same folder is not
    mistaken for the old one."""
    import hashlib

    step = resolve(folder)
    digest = hashlib.sha256()
    for path in [step / "finetune.pt", *sorted((step / "adapter").glob("*"))]:
        if path.is_file():
            digest.update(path.name.encode())
            with path.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()[:16]


def _load(path: Path) -> Any:
    if not path.exists():
        raise FinetuneCheckpointError(f"{path}: missing; the checkpoint folder is incomplete")
    return read_torch_file(path, FinetuneCheckpointError)


def save_adapter(llm: Any, folder: Path) -> None:
    """LoRA weights only (peft's ``save_pretrained`` of a ``PeftModel``)."""
    llm.save_pretrained(folder / "adapter")


def load_adapter(llm: Any, folder: Path) -> None:
    """Load ``folder/adapter`` into an LLM already wrapped with the same LoRA config."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    path = folder / "adapter" / "adapter_model.safetensors"
    if not path.is_file():
        raise FinetuneCheckpointError(f"{path}: missing; this checkpoint has no LoRA adapter (frozen LLM?)")
    try:
        weights = load_file(str(path))
    except Exception as exc:  # safetensors raises its own SafetensorError (header too small, not fully covered…)
        raise FinetuneCheckpointError(f"{path}: cannot be read, the adapter file is empty, truncated or not "
                                      f"safetensors ({str(exc).strip()[:200] or type(exc).__name__})") from None
    result = set_peft_model_state_dict(llm, weights)
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise FinetuneCheckpointError(f"{path}: adapter weights do not fit this model ({unexpected[:3]}…)")
