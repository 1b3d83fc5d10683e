"""Errors raised by the prompting stage."""
from __future__ import annotations

from kerec.errors import KerecError


class PromptError(KerecError, ValueError):
    """A prompt template is unknown or malformed, or was given wrong inputs."""
