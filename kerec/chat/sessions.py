"""The chat engine's session table: bounded in total and per client, with idle expiry, and a memory of
the conversations it dropped so that the next turn under a dropped id says so instead of silently
starting over.

Bounds: at most ``max_sessions`` conversations (least recently used dropped first) and at most
``max_per_client`` per client (a client opening one more drops its own least recently used, never
someone else's: so one client opening thousands of sessions cannot push out other people's live
conversations). A session idle longer than ``ttl_s`` is dropped. The ids of the last ``remember_dropped``
dropped conversations are kept with the reason, and handed out once, on the next turn under that id.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from kerec.chat.state import SessionState


@dataclass
class Session:
    """One conversation: its state, the client that opened it (None: not counted per client) and its lock."""

    state: SessionState
    client: str | None
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class Opened:
    """:meth:`SessionTable.open`'s answer. ``dropped``: why an earlier conversation under this id was dropped,
    when it was (a fresh session was started in its place); None otherwise."""

    session: Session
    dropped: str | None


class SessionTable:
    """Thread-safe; see the module docstring. ``clock``: seconds, monotonic (tests pass a fake one)."""

    def __init__(self, *, max_sessions: int, max_per_client: int, ttl_s: float, clock: Callable[[], float],
                 remember_dropped: int = 10_000) -> None:
        self.max_sessions, self.max_per_client, self.ttl_s = max_sessions, max_per_client, ttl_s
        self.remember_dropped = remember_dropped
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()  # least recently used first
        self._by_client: dict[str, OrderedDict[str, None]] = {}  # the same order, per client
        self._dropped: OrderedDict[str, str] = OrderedDict()  # session id -> why it was dropped
        self._lock = threading.Lock()

    def open(self, session_id: str, client: str | None) -> Opened:
        """The live session ``session_id`` (marked most recently used), or a new one opened by ``client``."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            session = self._sessions.get(session_id)
            dropped = None
            if session is None:
                dropped = self._dropped.pop(session_id, None)
                if client is not None and len(self._by_client.get(client, ())) >= self.max_per_client:
                    oldest = next(iter(self._by_client[client]))
                    self._drop(oldest, f"dropped because one client may keep at most {self.max_per_client} "
                                       "conversations and it was that client's least recently used")
                session = self._sessions[session_id] = Session(SessionState(last_used=now), client)
            self._sessions.move_to_end(session_id)
            if session.client is not None:
                self._by_client.setdefault(session.client, OrderedDict())[session_id] = None
                self._by_client[session.client].move_to_end(session_id)
            session.state.last_used = now
            while len(self._sessions) > self.max_sessions:
                self._drop(next(iter(self._sessions)), f"dropped because the server keeps at most "
                                                       f"{self.max_sessions} conversations and it was the least "
                                                       "recently used")
            return Opened(session, dropped)

    def reset(self, session_id: str) -> bool:
        """Forget ``session_id`` (and that it was ever dropped); True if it was a live conversation."""
        with self._lock:
            self._dropped.pop(session_id, None)
            if session_id not in self._sessions:
                return False
            self._remove(session_id)
            return True

    def __len__(self) -> int:
        """Live sessions (expired ones are dropped first)."""
        with self._lock:
            self._expire(self._clock())
            return len(self._sessions)

    def _expire(self, now: float) -> None:
        while self._sessions:
            session_id, oldest = next(iter(self._sessions.items()))
            if now - oldest.state.last_used <= self.ttl_s:
                break
            self._drop(session_id, f"dropped after more than {self.ttl_s:g} s without a message")

    def _drop(self, session_id: str, why: str) -> None:
        self._remove(session_id)
        self._dropped[session_id] = why
        self._dropped.move_to_end(session_id)
        while len(self._dropped) > self.remember_dropped:
            self._dropped.popitem(last=False)

    def _remove(self, session_id: str) -> None:
        session = self._sessions.pop(session_id)
        if session.client is not None:
            mine = self._by_client[session.client]
            del mine[session_id]
            if not mine:
                del self._by_client[session.client]
