"""Retriever checkpoints: weights, config as plain data, id maps, the split and versions.

Saved with ``torch.save`` and read back with ``weights_only=True``: only tensors and plain
containers, never pickled live objects.
"""
from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from kerec.data import KerecError

FORMAT = "kerec-retriever/1"


class CheckpointError(KerecError):
    """A file that is not a usable kerec retriever checkpoint (or belongs to another dataset)."""


@dataclass(frozen=True)
class Checkpoint:
    """Everything needed to rebuild and run a trained retriever.

    ``model``: registered name; ``model_args``: its keyword arguments; ``train_config``: the
    :class:`~kerec.gnn.train.TrainConfig` as a dict; ``dataset``: name, fingerprint, user/item/entity id
    lists and ``item_entity``; ``split``: {"train","valid","test"} → (n, 2) long tensors;
    ``item_text``: (I, D) or None; ``metrics``: validation (and later test) figures.
    """

    model: str
    model_args: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    train_config: dict[str, Any]
    dataset: dict[str, Any]
    split: dict[str, torch.Tensor]
    item_text: torch.Tensor | None
    metrics: dict[str, Any]
    versions: dict[str, str]

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"format": FORMAT, **self.__dict__}, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Checkpoint:
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: no such checkpoint file")
        try:
            raw = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several types for truncated or foreign files
            raise CheckpointError(f"{path}: cannot be read as a kerec checkpoint ({type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0][:200]}); is it truncated?") from None
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise CheckpointError(f"{path}: not a kerec retriever checkpoint (expected format {FORMAT!r})")
        missing = sorted(set(cls.__dataclass_fields__) - set(raw))
        if missing:
            raise CheckpointError(f"{path}: checkpoint lacks {missing}; it may be truncated or from another version")
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__})

    def check_dataset(self, fingerprint: str, name: str) -> None:
        """Raise :class:`CheckpointError` unless the checkpoint was trained on this dataset."""
        if self.dataset.get("fingerprint") != fingerprint:
            raise CheckpointError(f"checkpoint was trained on dataset {self.dataset.get('name')!r} "
                                  f"(fingerprint {self.dataset.get('fingerprint')}), not on {name!r} ({fingerprint})")


def versions() -> dict[str, str]:
    out = {"torch": str(torch.__version__)}  # a plain str: TorchVersion is not allowed by weights_only
    for dist in ("kerec", "torch-geometric"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "unknown"
    return out
