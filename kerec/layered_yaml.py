"""YAML files that start from another: a top-level ``base: other.yaml`` (relative to the file) reads that
file first, then this file's keys replace the base's, section by section (``train: {residual: 3}`` changes
only ``train.residual``; a key whose value is not a mapping replaces the base's value whole). Finetune
recipes and evaluation configs are read this way."""
from __future__ import annotations

from pathlib import Path
from typing import Any


def read_layered(path: Path, error: type[Exception], what: str, shipped: str) -> dict[str, Any]:
    """The merged mapping of ``path`` and its chain of bases, ``base`` removed. Every problem raises
    ``error`` naming the file: missing (``what``: "recipe"; ``shipped``: where the shipped ones are), not
    YAML, not a mapping, a ``base`` that is not a file name, and bases that form a cycle."""
    return _read(Path(path), error, what, shipped, ())


def _read(path: Path, error: type[Exception], what: str, shipped: str, seen: tuple[Path, ...]) -> dict[str, Any]:
    import yaml

    if not path.is_file():
        raise error(f"{path}: no such {what} file (the shipped ones are in {shipped})")
    if path.resolve() in seen:
        raise error(f"{path}: 'base' {what}s form a cycle ({' -> '.join(str(p) for p in seen)})")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise error(f"{path}: a {what} is a mapping of sections, got {type(raw).__name__}")
    base = raw.pop("base", None)
    if base is None:
        return raw
    if not isinstance(base, str):
        raise error(f"{path}: base must be a {what} file name, got {base!r}")
    merged = _read(path.parent / base, error, what, shipped, seen + (path.resolve(),))
    for name, value in raw.items():
        both = isinstance(value, dict) and isinstance(merged.get(name), dict)
        merged[name] = {**merged[name], **value} if both else value
    return merged
