"""Where the embedded defaults live: files shipped inside installed wheels, found without importing them."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from kerec.errors import KerecError

DEFAULT_DATASET = "ml-100k"


def package_dir(package: str, install_hint: str) -> Path:
    """The folder of an installed top-level package, located without executing its code."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise KerecError(f"package {package!r} is not installed; {install_hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def default_dataset_dir() -> Path:
    """MovieLens-100k with its Freebase KG, as shipped in the ``recbole==1.2.1`` wheel."""
    path = package_dir("recbole", "run .ci/setup, or `pip install --no-deps recbole==1.2.1`")
    path = path / "dataset_example" / DEFAULT_DATASET
    if not (path / f"{DEFAULT_DATASET}.inter").is_file():
        raise KerecError(f"{path} lacks {DEFAULT_DATASET}.inter; reinstall with `pip install --no-deps recbole==1.2.1`")
    return path
