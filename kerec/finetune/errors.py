"""Errors raised by the fine-tuning stage."""
from __future__ import annotations

from kerec.errors import KerecError


class FinetuneError(KerecError):
    """Fine-tuning cannot start or go on; the message says what was wrong and how to fix it."""


class RecipeError(FinetuneError, ValueError):
    """A recipe file is malformed: an unknown section or key (named, with the valid ones), or an
    impossible value (named, with the allowed range)."""


class FinetuneCheckpointError(FinetuneError):
    """A fine-tuning checkpoint that is missing, unreadable, or belongs to another base model or dataset."""
