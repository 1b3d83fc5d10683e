"""The vector cache, tested with a counting fake encoder (the cache, not the model, is under test)."""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from kerec.data import KerecError
from kerec.text import TextEncoder, default_cache_dir, encode_cached
from kerec.text.cache import encoder_dir, text_key


class CountingEncoder:
    """Deterministic unit vectors from a text's hash; records every text it is asked to encode."""

    def __init__(self, name: str = "fake", dim: int = 4) -> None:
        self.name, self.dim = name, dim
        self.calls: list[list[str]] = []

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = True) -> np.ndarray:
        self.calls.append(list(texts))
        return np.stack([self.vector(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def vector(self, text: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(f"{self.name}|{text}".encode()).digest()[:8], "little")
        v = np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
        return v / np.linalg.norm(v)


def _file(cache: Path, encoder: CountingEncoder, text: str) -> Path:
    key = text_key(text)
    return encoder_dir(cache, encoder.name) / key[:2] / f"{key}.f32"


def test_fake_is_a_text_encoder() -> None:
    assert isinstance(CountingEncoder(), TextEncoder)


def test_second_call_hits_the_cache(tmp_path: Path) -> None:
    enc = CountingEncoder()
    texts = ["a", "b", "a", "c"]
    first = encode_cached(enc, texts, cache_dir=tmp_path, progress=False)
    assert enc.calls == [["a", "b", "c"]]  # a duplicate is encoded once
    assert first.shape == (4, 4) and first.dtype == np.float32
    np.testing.assert_array_equal(first, np.stack([enc.vector(t) for t in texts]))
    second = encode_cached(enc, texts, cache_dir=tmp_path, progress=False)
    assert enc.calls == [["a", "b", "c"]]
    np.testing.assert_array_equal(second, first)


def test_only_new_texts_are_encoded(tmp_path: Path) -> None:
    enc = CountingEncoder()
    encode_cached(enc, ["a", "b"], cache_dir=tmp_path, progress=False)
    out = encode_cached(enc, ["b", "new", "a"], cache_dir=tmp_path, progress=False)
    assert enc.calls == [["a", "b"], ["new"]]
    np.testing.assert_array_equal(out, np.stack([enc.vector(t) for t in ("b", "new", "a")]))


def test_encoders_do_not_share_vectors(tmp_path: Path) -> None:
    one, other = CountingEncoder("one"), CountingEncoder("other")
    encode_cached(one, ["a"], cache_dir=tmp_path, progress=False)
    out = encode_cached(other, ["a"], cache_dir=tmp_path, progress=False)
    assert other.calls == [["a"]]
    np.testing.assert_array_equal(out[0], other.vector("a"))


@pytest.mark.parametrize("garbage", [b"", b"not a vector", np.full(4, 0.9, "<f4").tobytes(),
                                     np.array([1, 0, 0, np.nan], "<f4").tobytes()],
                         ids=["empty", "wrong-size", "not-unit", "nan"])
def test_corrupt_file_is_reencoded_and_rewritten(tmp_path: Path, garbage: bytes) -> None:
    enc = CountingEncoder()
    encode_cached(enc, ["a", "b"], cache_dir=tmp_path, progress=False)
    _file(tmp_path, enc, "a").write_bytes(garbage)
    out = encode_cached(enc, ["a", "b"], cache_dir=tmp_path, progress=False)
    assert enc.calls == [["a", "b"], ["a"]]
    np.testing.assert_array_equal(out[0], enc.vector("a"))
    assert _file(tmp_path, enc, "a").read_bytes() == enc.vector("a").astype("<f4").tobytes()
    encode_cached(enc, ["a", "b"], cache_dir=tmp_path, progress=False)
    assert len(enc.calls) == 2


def test_unwritable_cache_warns_and_still_returns_vectors(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    enc = CountingEncoder()
    with pytest.warns(RuntimeWarning, match="could not write 1 vectors"):
        out = encode_cached(enc, ["a"], cache_dir=blocker, progress=False)
    np.testing.assert_array_equal(out[0], enc.vector("a"))


def test_empty_text_list_does_not_call_the_encoder(tmp_path: Path) -> None:
    enc = CountingEncoder()
    assert encode_cached(enc, [], cache_dir=tmp_path).shape == (0, 4)
    assert enc.calls == []


def test_default_cache_dir_follows_kerec_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEREC_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "text-cache"
    monkeypatch.delenv("KEREC_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "kerec" / "text-cache"


def test_encoder_returning_the_wrong_shape_is_an_error(tmp_path: Path) -> None:
    class Short(CountingEncoder):
        def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = True) -> np.ndarray:
            return super().encode(texts)[:1]

    with pytest.raises(KerecError, match=r"returned shape \(1, 4\) for 2 texts"):
        encode_cached(Short(), ["a", "b"], cache_dir=tmp_path, progress=False)
