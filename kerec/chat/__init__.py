"""Conversational recommendation: multi-turn sessions over a :class:`~kerec.api.Recommender`.

``ChatEngine(rec).chat(session_id, "something like Fargo, but no horror")`` → :class:`ChatReply` with
recommendations that obey every hard constraint stated so far, a grounded reply text, or a question back
when there is nothing to go on. Messages are read by rules (:mod:`kerec.chat.parse`), screened first
(:mod:`kerec.chat.guard`); ``Recommender.chat`` and ``kerec chat`` use the same engine.
"""
from __future__ import annotations

from kerec.chat.errors import ChatError

__all__ = ["ChatEngine", "ChatError", "ChatReply", "engine_for"]


def __getattr__(name: str) -> object:
    # The engine imports kerec.api, and kerec.api imports this package lazily: keep the import lazy here too.
    if name in ("ChatEngine", "ChatReply", "engine_for"):
        from kerec.chat import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'kerec.chat' has no attribute {name!r}")
