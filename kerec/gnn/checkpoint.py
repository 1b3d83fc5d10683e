"""Retriever checkpoints: weights, config as plain data, id maps, the split and versions.

Saved with ``torch.save`` and read back with ``weights_only=True``: only tensors and plain
containers, never pickled live objects.
"""
from __future__ import annotations

import importlib.metadata
import pickle
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from kerec.data import KerecError, UnknownIdError

FORMAT = "kerec-retriever/1"
FUSION_KEYS = ("weight", "llm", "chosen_on", "valid_acc", "users")


class CheckpointError(KerecError):
    """A file that is not a usable kerec retriever checkpoint (or belongs to another dataset)."""


@dataclass(frozen=True)
class FusionChoice:
    """The fusion weight chosen on the validation split for one LLM (``kerec train fusion``), saved in the
    retriever checkpoint it was chosen with: ``llm`` the LLM spec, ``chosen_on`` what chose it (protocol and
    split), ``valid_acc`` its validation ACC over ``users`` users."""

    weight: float
    llm: str
    chosen_on: str
    valid_acc: float
    users: int

    @classmethod
    def from_dict(cls, raw: object, path: Path) -> FusionChoice:
        """Strict: exactly the fields, each of its type; anything else is a :class:`CheckpointError`."""
        if not isinstance(raw, dict) or set(raw) != set(FUSION_KEYS):
            keys = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
            raise CheckpointError(f"{path}: the saved fusion choice must have exactly {list(FUSION_KEYS)}, got {keys}")
        types = {"weight": float, "llm": str, "chosen_on": str, "valid_acc": float, "users": int}
        for key, kind in types.items():
            value = raw[key]
            if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else kind):
                raise CheckpointError(f"{path}: fusion.{key} must be {kind.__name__}, got {value!r}")
        if not 0.0 <= float(raw["weight"]) <= 1.0:
            raise CheckpointError(f"{path}: fusion.weight must be between 0 and 1, got {raw['weight']}")
        return cls(float(raw["weight"]), raw["llm"], raw["chosen_on"], float(raw["valid_acc"]), raw["users"])

    def to_dict(self) -> dict[str, Any]:
        return {"weight": self.weight, "llm": self.llm, "chosen_on": self.chosen_on, "valid_acc": self.valid_acc,
                "users": self.users}


@dataclass(frozen=True)
class Checkpoint:
    """Everything needed to rebuild and run a trained retriever.

    ``model``: registered name; ``model_args``: its keyword arguments; ``train_config``: the
    :class:`~kerec.gnn.train.TrainConfig` as a dict; ``dataset``: name, fingerprint, user/item/entity id
    lists and ``item_entity``; ``split``: {"train","valid","test"} → (n, 2) long tensors;
    ``item_text``: (I, D) or None; ``metrics``: validation (and later test) figures; ``fusion``: the fusion
    weight chosen on validation for an LLM (:class:`FusionChoice`, None until ``kerec train fusion``).
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
    fusion: FusionChoice | None = None

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        raw = {"format": FORMAT, **self.__dict__, "fusion": self.fusion.to_dict() if self.fusion else None}
        tmp = path.with_name(path.name + ".tmp")
        torch.save(raw, tmp)
        tmp.replace(path)  # a reader never sees half a file, and an old checkpoint survives a failed save
        return path

    @classmethod
    def load(cls, path: str | Path) -> Checkpoint:
        path = Path(path)
        raw = read_torch_file(path, CheckpointError)
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise CheckpointError(f"{path}: not a kerec retriever checkpoint (expected format {FORMAT!r}; "
                                  f"it holds {describe(raw)})")
        missing = sorted(set(cls.__dataclass_fields__) - {"fusion"} - set(raw))
        if missing:
            raise CheckpointError(f"{path}: checkpoint lacks {missing}; it may be truncated or from another version")
        fusion = raw.get("fusion")
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k != "fusion"},
                   fusion=None if fusion is None else FusionChoice.from_dict(fusion, path))

    def check_request(self, *, users: Sequence[str] = (), items: Sequence[str] = (), k: int | None = None) -> None:
        """Raise :class:`~kerec.data.UnknownIdError` for the first user or item id the checkpoint's dataset
        does not have, and :class:`KerecError` for a ``k`` outside 1 … the catalogue's size: what the
        commands check from the id lists alone, before loading any model."""
        if k is not None and not 1 <= k <= len(self.dataset["items"]):
            raise KerecError(f"k must be between 1 and the {len(self.dataset['items']):,} items of dataset "
                             f"{self.dataset.get('name')!r}, got {k}")
        for kind, wanted in (("user", users), ("item", items)):
            known = set(self.dataset[f"{kind}s"])
            for external in wanted:
                if external not in known:
                    raise UnknownIdError(kind, external, f"not in dataset {self.dataset.get('name')!r} the "
                                                         "retriever was trained on")

    def check_dataset(self, fingerprint: str, name: str) -> None:
        """Raise :class:`CheckpointError` unless the checkpoint was trained on this dataset."""
        if self.dataset.get("fingerprint") != fingerprint:
            raise CheckpointError(f"checkpoint was trained on dataset {self.dataset.get('name')!r} "
                                  f"(fingerprint {self.dataset.get('fingerprint')}), not on {name!r} ({fingerprint})")


_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format since torch 1.6 is a zip archive


def read_torch_file(path: Path, error: type[KerecError]) -> Any:
    """``torch.load(path, weights_only=True)``, with every way a file can be unusable named in an
    ``error(...)`` that starts with the path: missing, a folder, empty, truncated, not a torch file at all,
    or a torch file holding pickled objects that are not plain tensors and containers (someone else's
    file; refused for safety). Shared by every kerec checkpoint reader."""
    if path.is_dir():
        raise error(f"{path}: is a folder, not a checkpoint file")
    if not path.is_file():
        raise error(f"{path}: no such checkpoint file")
    size = path.stat().st_size
    if size == 0:
        raise error(f"{path}: the file is empty (0 bytes); the save that wrote it did not finish")
    with path.open("rb") as f:
        head = f.read(4)
    if head == _ZIP_MAGIC and not zipfile.is_zipfile(path):
        raise error(f"{path}: truncated ({size} bytes): a torch archive whose end is missing; "
                    "the save or the copy that wrote it did not finish")
    if head != _ZIP_MAGIC and not head.startswith(b"\x80"):  # \x80: a pickle, torch's legacy format
        raise error(f"{path}: not a torch checkpoint file (it starts with {head!r}); wrong path?")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported (global: GLOBAL \S+|operand \d+|\S+)", str(exc))
        refused = f" ({found.group(0)})" if found else ""
        raise error(f"{path}: holds pickled Python objects{refused}, not only tensors and plain containers: "
                    "not a kerec checkpoint, and not loaded (kerec reads checkpoints with weights_only)") from None
    except Exception as exc:  # torch raises several types for damaged archives
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise error(f"{path}: cannot be read as a torch checkpoint, it is damaged or truncated "
                    f"({type(exc).__name__}: {first})") from None


def describe(raw: Any) -> str:
    """What a foreign torch file holds, for an error message: its type, and a dict's first keys."""
    if isinstance(raw, dict):
        keys = sorted(map(str, raw))
        shown = ", ".join(repr(k) for k in keys[:8]) + (", …" if len(keys) > 8 else "")
        found = f", format {raw['format']!r}" if isinstance(raw.get("format"), str) else ""
        return f"a dict with keys [{shown}]{found}"
    return f"a {type(raw).__name__}"


def versions() -> dict[str, str]:
    out = {"torch": str(torch.__version__)}  # a plain str: TorchVersion is not allowed by weights_only
    for dist in ("kerec", "torch-geometric"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "unknown"
    return out
