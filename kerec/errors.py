"""kerec's errors: the base class and the two that every layer raises (malformed files, unknown ids)."""
from __future__ import annotations

from pathlib import Path


class KerecError(Exception):
    """Base class of every error kerec raises on purpose."""


class DataFormatError(KerecError, ValueError):
    """A dataset file is malformed; carries the file, the 1-based line and what was expected."""

    def __init__(self, path: str | Path, line: int | None, message: str) -> None:
        self.path = Path(path)
        self.line = line
        self.detail = message
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {message}")


class UnknownIdError(KerecError, KeyError):
    """An external id (user, item, entity, relation) that the dataset does not have."""

    def __init__(self, kind: str, external_id: object, hint: str = "") -> None:
        self.kind = kind
        self.external_id = external_id
        self.hint = hint
        super().__init__(kind, external_id)

    def __str__(self) -> str:
        msg = f"unknown {self.kind} id {self.external_id!r}"
        return f"{msg}; {self.hint}" if self.hint else msg
