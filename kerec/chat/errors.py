"""Errors of the conversation stage."""
from __future__ import annotations

from kerec.errors import KerecError


class ChatError(KerecError):
    """A chat call the caller must fix (a bad session id or ``k``); odd *message text* never raises —
    it comes back as a :attr:`~kerec.chat.ChatReply.notice`."""
