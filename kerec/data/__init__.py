"""Datasets: readers for RecBole atomic and KGAT files, the typed :class:`Dataset`, IdMaps and splits.

This stage imports nothing else of kerec.
"""
from __future__ import annotations

from pathlib import Path

from kerec.data.atomic import load_atomic
from kerec.data.dataset import Attribute, Dataset, Interactions
from kerec.data.embedded import DEFAULT_DATASET, default_dataset_dir
from kerec.data.spec import FORMATS, DatasetSpec
from kerec.data.history import pair_timestamps, popularity_scores, training_histories
from kerec.errors import DataFormatError, KerecError, UnknownIdError
from kerec.data.idmap import IdMap
from kerec.data.kgat import is_kgat_dir, load_kgat
from kerec.data.splits import (ColdStartSplit, Split, cold_start_split, cold_user_holdout, gnn_holdout, leave_one_out,
                               load_split, random_split, save_split, without_pairs)


__all__ = [
    "Attribute", "ColdStartSplit", "DataFormatError", "Dataset", "DatasetSpec", "DEFAULT_DATASET", "FORMATS", "IdMap", "Interactions",
    "KerecError", "Split", "UnknownIdError", "cold_start_split", "cold_user_holdout",
    "default_dataset_dir", "gnn_holdout", "leave_one_out",
    "load_atomic", "load_dataset", "load_kgat", "load_split", "pair_timestamps", "popularity_scores", "random_split",
    "save_split", "training_histories", "without_pairs",
]


def load_dataset(path: str | Path | None = None, *, format: str = "auto") -> Dataset:
    """Load a dataset folder; ``None`` or ``"ml-100k"`` is the embedded default.

    ``format``: "atomic" (RecBole ``.inter``/``.item``/``.user``/``.kg``/``.link``/``.net``),
    "kgat" (``train.txt``/``test.txt``/``kg_final.txt``), or "auto" (KGAT if its three files exist).
    """
    if format not in FORMATS:
        raise KerecError(f"unknown dataset format {format!r}; expected one of {', '.join(FORMATS)}")
    if path is None or str(path) == DEFAULT_DATASET:
        return load_atomic(default_dataset_dir())
    directory = Path(path).expanduser()
    if not directory.is_dir():
        raise DataFormatError(directory, None, "no such dataset folder (give a folder of atomic or KGAT files)")
    if format == "kgat" or (format == "auto" and is_kgat_dir(directory)):
        return load_kgat(directory)
    return load_atomic(directory)
