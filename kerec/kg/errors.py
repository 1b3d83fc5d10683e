"""Errors of the graph-store stage."""
from __future__ import annotations

from kerec.errors import KerecError


class GraphStoreError(KerecError):
    """A graph-store operation failed for a reason the caller can act on."""


class GraphStoreUnavailable(GraphStoreError):
    """The store cannot be reached or refused the credentials; names the URI."""

    def __init__(self, uri: str, reason: str) -> None:
        self.uri = uri
        self.reason = reason
        super().__init__(f"graph store at {uri} is unavailable: {reason}")


class UnknownFactError(GraphStoreError, KeyError):
    """A fact id that the store does not hold."""

    def __init__(self, fact_id: str) -> None:
        self.fact_id = fact_id
        super().__init__(fact_id)

    def __str__(self) -> str:
        return f"unknown fact id {self.fact_id!r}: no such fact in the graph store"


class StoreHoldsOtherDataset(GraphStoreError):
    """Loading dataset A into a store that already holds dataset B without ``replace=True``."""
