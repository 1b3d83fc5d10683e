"""Which dataset and split a run uses: the one type of the ``dataset:`` section that finetune recipes and
evaluation configs share (they used to have twin sections that drifted: ``seed`` vs ``split_seed``, None
vs "default")."""
from __future__ import annotations

from dataclasses import dataclass

from kerec.errors import KerecError

FORMATS = ("auto", "atomic", "kgat")  # dataset file formats: auto-detected, RecBole atomic files, KGAT files

RENAMED = {"seed": "split_seed"}  # old key → new key, named in the error (saved recipes are migrated)


@dataclass(frozen=True)
class DatasetSpec:
    """``path``: "default" (the embedded ml-100k + Freebase KG) or a folder of RecBole atomic / KGAT files
    (``None`` is read as "default"); ``format``: auto, atomic or kgat; ``split``: "random" (per-user 8:1:1
    with ``split_seed``), "loo" (leave-one-out by time), or a folder of train/valid/test.tsv (e.g.
    ``eval/anchors/ml100k-recbole-split``); ``linked_only``: keep only KG-linked items (RecBole's KG-model
    protocol)."""

    path: str = "default"
    format: str = "auto"
    split: str = "random"
    split_seed: int = 2020
    linked_only: bool = True

    def __post_init__(self) -> None:
        if self.path is None:
            object.__setattr__(self, "path", "default")
        if not isinstance(self.path, str) or not self.path:
            raise KerecError(f"dataset.path must be 'default' or a folder, got {self.path!r}")
        if self.format not in FORMATS:
            raise KerecError(f"dataset.format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if not isinstance(self.split, str) or not self.split:
            raise KerecError(f"dataset.split must be 'random', 'loo' or a split folder, got {self.split!r}")
        if isinstance(self.split_seed, bool) or not isinstance(self.split_seed, int):
            raise KerecError(f"dataset.split_seed must be an integer, got {self.split_seed!r}")
        if not isinstance(self.linked_only, bool):
            raise KerecError(f"dataset.linked_only must be true or false, got {self.linked_only!r}")

    @property
    def folder(self) -> str | None:
        """The dataset folder, or None for the embedded default (what the readers take)."""
        return None if self.path == "default" else self.path


def renamed_keys(keys: object) -> str:
    """A hint for keys that were renamed (empty when none were): "dataset.seed is now dataset.split_seed"."""
    if not isinstance(keys, (set, list, tuple, dict)):
        return ""
    old = [k for k in keys if k in RENAMED]
    return "; ".join(f"dataset.{k} is now dataset.{RENAMED[k]}" for k in old)
