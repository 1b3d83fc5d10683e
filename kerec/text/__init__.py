"""Text features: readable item/user texts, sentence encoders and a disk cache of their vectors.

This stage uses only :mod:`kerec.data`; sentence-transformers is imported when a model first loads.
"""
from __future__ import annotations

from kerec.text.builders import item_texts, user_texts
from kerec.text.cache import default_cache_dir, encode_cached
from kerec.text.encoder import DEFAULT_MODEL, SentenceTransformerEncoder, TextEncoder, default_model_dir

__all__ = [
    "DEFAULT_MODEL", "SentenceTransformerEncoder", "TextEncoder", "default_cache_dir", "default_model_dir",
    "encode_cached", "item_texts", "user_texts",
]
