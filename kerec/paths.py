"""Where kerec finds what it ships and keeps what it makes: the versioned asset folders ``kg_store/`` (Cypher)
and ``prompts/`` (templates), ``$KEREC_HOME`` and the default retriever checkpoint.

They live at the repository's top level; ``kerec/_assets/<name>`` are symlinks to them, which a built
wheel turns into real folders, so the same path works in a checkout and in an installed wheel.
"""
from __future__ import annotations

from pathlib import Path

from kerec.errors import KerecError

ASSET_DIRS = ("kg_store", "prompts")


def asset_dir(name: str) -> Path:
    if name not in ASSET_DIRS:
        raise KerecError(f"unknown asset folder {name!r}; expected one of {', '.join(ASSET_DIRS)}")
    path = Path(__file__).resolve().parent / "_assets" / name
    if not path.is_dir():
        raise KerecError(f"kerec's asset folder {path} is missing; reinstall kerec")
    return path


def kerec_home() -> Path:
    """Where kerec keeps what it makes (caches, converted models, the default retriever):
    ``$KEREC_HOME``, else ``~/.cache/kerec``."""
    import os

    home = os.environ.get("KEREC_HOME")
    return Path(home) if home else Path.home() / ".cache" / "kerec"


def default_checkpoint() -> Path:
    """Where ``kerec train retriever`` writes by default and ``Recommender.load("default")`` reads."""
    return kerec_home() / "retriever" / "retriever.pt"
