"""Conversational recommendation: multi-turn sessions over a :class:`~kerec.api.Recommender`.

``ChatEngine(rec).chat(session_id, "something like Fargo, but no horror")`` → :class:`ChatReply` with
recommendations that obey every hard constraint stated so far, a grounded reply text, or a question back
when there is nothing to go on. Messages are read by rules (:mod:`kerec.chat.parse`), screened first
(:mod:`kerec.chat.guard`); ``kerec chat`` and ``kerec serve`` use the same engine. It ranks through the
Recommender's public scoring, so a known user's unconstrained request ranks as ``recommend`` ranks it.
"""
from __future__ import annotations

from kerec.chat.engine import ChatEngine, ChatReply
from kerec.chat.errors import ChatError

__all__ = ["ChatEngine", "ChatError", "ChatReply"]
