"""A disk cache of text vectors, one file per (encoder, text).

Layout: ``<cache_dir>/<encoder slug>/<sha256(text)[:2]>/<sha256(text)>.f32``, each file the raw
float32 bytes of one unit vector. Keys are per text, not per list, so a catalogue that changes a few
items re-encodes only those. The encoder's ``name`` is the model's identity: two encoders with the same
name share vectors (a local model folder whose weights change in place keeps its stale vectors — clear
its folder, or give the new weights a new path).

A file that cannot be read, has the wrong size, or does not hold a finite unit vector counts as a miss
and is rewritten; writes go through a temporary file and an atomic rename, so concurrent runs and
interrupted writes never leave a half-written vector that a later run trusts.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kerec.errors import KerecError
from kerec.text.encoder import TextEncoder

_SUFFIX = ".f32"
_NORM_TOLERANCE = 1e-3


def default_cache_dir() -> Path:
    """``$KEREC_HOME/text-cache``, else ``~/.cache/kerec/text-cache``."""
    from kerec.paths import kerec_home

    return kerec_home() / "text-cache"


def text_key(text: str) -> str:
    """sha256 hex digest of the UTF-8 text: the cache key of one text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def encoder_dir(cache_dir: Path, encoder_name: str) -> Path:
    """The folder of one encoder's vectors: a readable slug of its name plus a hash against collisions."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", encoder_name).strip("._")[-60:] or "encoder"
    return cache_dir / f"{slug}-{hashlib.sha256(encoder_name.encode('utf-8')).hexdigest()[:12]}"


def encode_cached(encoder: TextEncoder, texts: Sequence[str], *, cache_dir: Path | None = None,
                  batch_size: int = 64, progress: bool = True) -> np.ndarray:
    """Vectors of ``texts`` from the cache, encoding (once each) only the texts it lacks.

    Returns shape (len(texts), encoder.dim), dtype float32, rows L2-normalised, in the order of
    ``texts``. Duplicate texts are encoded once. The encoder is not called when every text is cached.
    """
    if isinstance(texts, str):
        raise TypeError("encode_cached() takes a sequence of texts, not one string; wrap it in a list")
    if len(texts) == 0:
        return np.zeros((0, encoder.dim), dtype=np.float32)
    folder = encoder_dir(Path(cache_dir) if cache_dir is not None else default_cache_dir(), encoder.name)
    dim = encoder.dim
    keys = [text_key(t) for t in texts]
    found: dict[str, np.ndarray] = {}
    missing: dict[str, str] = {}
    for key, text in zip(keys, texts):
        if key not in found and key not in missing:
            vector = _read(_path(folder, key), dim)
            if vector is None:
                missing[key] = text
            else:
                found[key] = vector
    if missing:
        found.update(_encode_and_store(encoder, folder, missing, batch_size=batch_size, progress=progress))
    return np.stack([found[k] for k in keys])


def _encode_and_store(encoder: TextEncoder, folder: Path, missing: dict[str, str], *,
                      batch_size: int, progress: bool) -> dict[str, np.ndarray]:
    """Encode the ``missing`` texts (key → text) and write their vectors; returns key → shape (dim,)."""
    vectors = np.asarray(encoder.encode(list(missing.values()), batch_size=batch_size, progress=progress),
                         dtype=np.float32)
    if vectors.shape != (len(missing), encoder.dim):
        raise KerecError(f"text encoder {encoder.name!r} returned shape {vectors.shape} for "
                         f"{len(missing)} texts; expected ({len(missing)}, {encoder.dim})")
    failed = 0
    for key, vector in zip(missing, vectors):
        failed += not _write(_path(folder, key), vector)
    if failed:
        warnings.warn(f"could not write {failed} vectors to the text cache {folder}; they will be "
                      f"encoded again next time (set KEREC_HOME or cache_dir to a writable folder)",
                      RuntimeWarning, stacklevel=3)
    return dict(zip(missing, vectors))


def _path(folder: Path, key: str) -> Path:
    return folder / key[:2] / f"{key}{_SUFFIX}"


def _read(path: Path, dim: int) -> np.ndarray | None:
    """The cached vector, shape (dim,), or None when absent or not a finite unit vector of that size."""
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    if len(raw) != 4 * dim:
        return None
    vector = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    if not np.isfinite(vector).all() or abs(float(np.linalg.norm(vector)) - 1.0) > _NORM_TOLERANCE:
        return None
    return vector


def _write(path: Path, vector: np.ndarray) -> bool:
    """Write atomically; False when the disk refuses (read-only, full): a cache miss only costs speed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(np.asarray(vector, dtype="<f4").tobytes())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        return False
    return True
