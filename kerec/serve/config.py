"""How the HTTP service behaves: one frozen dataclass, validated on creation."""
from __future__ import annotations

from dataclasses import dataclass, fields

from kerec.data import KerecError


@dataclass(frozen=True)
class ServeConfig:
    """Limits and knobs of :func:`kerec.serve.create_app`.

    ``workers``: recommender / chat computations run at once in worker threads (more queue; the event
    loop itself never computes, so ``/health`` answers while they run). ``max_body_bytes``: larger request
    bodies get 413. ``ready_timeout_s``: how long ``/ready`` waits for the graph store before saying 503.
    ``openai_conversations``: OpenAI-style conversations (no session id) remembered to continue them.
    ``body_timeout_s``: a request body must arrive within this (408 and the connection closed otherwise).
    ``allowed_hosts``: the Host header names answered (:class:`~kerec.serve.guard.HostGuard`); None checks
    only connections to a loopback address, against localhost, 127.0.0.1, ::1 and that address; ("*",)
    turns the check off."""

    workers: int = 2
    max_body_bytes: int = 64 * 1024
    max_k: int = 100
    max_candidates: int = 1000
    max_subgraph_items: int = 10
    ready_timeout_s: float = 5.0
    model_name: str = "kerec"
    openai_conversations: int = 10_000
    body_timeout_s: float = 10.0
    allowed_hosts: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
                raise KerecError(f"ServeConfig.{f.name} must be positive, got {value}")
        if self.allowed_hosts is not None and (not self.allowed_hosts or not all(
                isinstance(h, str) and h.strip() for h in self.allowed_hosts)):
            raise KerecError(f"ServeConfig.allowed_hosts must be None or non-empty names, got {self.allowed_hosts!r}")
        if not self.model_name.strip():
            raise KerecError("ServeConfig.model_name must not be empty")
