"""The conversation engine: sessions, one turn end to end, and the reply object.

A turn: screen the message (:mod:`kerec.chat.guard`) → read it (:mod:`kerec.chat.parse`) → merge it into
the session (:mod:`kerec.chat.state`) → ask back if there is still nothing to go on → rank the catalogue
for the session and enforce its hard constraints (:mod:`kerec.chat.retrieve`) → evidence from the graph
store, templated per-pick explanations (:func:`kerec.explain.template`) → the reply: the LLM's, checked,
or the template (:mod:`kerec.chat.reply`).

Sessions live in memory (:mod:`kerec.chat.sessions`), bounded: at most ``max_sessions`` (least recently
used dropped first) and ``max_sessions_per_client`` per client, each dropped after ``session_ttl_s`` idle,
each refusing turns past ``max_turns`` with a notice. The first turn under the id of a dropped
conversation says so (:attr:`ChatReply.dropped`, and a sentence in front of the text). Different
sessions run in parallel (one lock per session; the session table and LLM calls have their own locks).
A graph store that cannot be reached raises :class:`~kerec.kg.GraphStoreUnavailable` out of
:meth:`ChatEngine.chat` unchanged.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from kerec.api import Recommendation
from kerec.chat.catalogue import build_catalogue
from kerec.chat.errors import ChatError
from kerec.chat.guard import check_message
from kerec.chat.parse import Parsed, parse_message
from kerec.chat.reply import (Reference, acknowledgement, chat_messages, check_reply, no_match_text, question_text,
                              references, template_reply)
from kerec.chat.retrieve import evidence, rank
from kerec.chat.sessions import SessionTable
from kerec.chat.state import SessionState
from kerec.data import UnknownIdError
from kerec.explain import template, whole_sentences

if TYPE_CHECKING:
    from kerec.api import Recommender

MAX_SESSION_ID = 128
MAX_K = 20


@dataclass(frozen=True)
class ChatReply:
    """One assistant turn. ``text`` is grounded: every ``[n]`` in it is :attr:`references` entry ``n``,
    checked against the graph store. ``text_source``: "template", "llm", "llm-retry" (the checked LLM
    reply), "question" or "notice". ``understood``: what this message was read to say. ``dropped``: on the
    first turn after the conversation under this id was dropped (too many sessions, or idle too long), why;
    this turn started a new one."""

    session_id: str
    text: str
    recommendations: tuple[Recommendation, ...]
    question: str | None
    constraints: dict[str, Any]
    notice: str | None = None
    references: tuple[Reference, ...] = ()
    text_source: str = "template"
    understood: dict[str, Any] = field(default_factory=dict)
    dropped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "text": self.text,
                "recommendations": [r.to_dict() for r in self.recommendations], "question": self.question,
                "constraints": self.constraints, "notice": self.notice,
                "references": [r.to_dict() for r in self.references], "text_source": self.text_source,
                "understood": self.understood, "dropped": self.dropped}


class ChatEngine:
    """Multi-turn conversational recommendation over one :class:`~kerec.api.Recommender`."""

    def __init__(self, recommender: Recommender, *, k: int = 5, max_sessions: int = 1000,
                 max_sessions_per_client: int = 100, max_turns: int = 50, max_message_chars: int = 10_000,
                 session_ttl_s: float = 3600.0, reply_tokens: int = 160,
                 clock: Callable[[], float] = time.monotonic) -> None:
        for name, value in (("k", k), ("max_sessions", max_sessions),
                            ("max_sessions_per_client", max_sessions_per_client), ("max_turns", max_turns),
                            ("max_message_chars", max_message_chars), ("reply_tokens", reply_tokens)):
            if not isinstance(value, int) or value < 1:
                raise ChatError(f"{name} must be a positive integer, got {value!r}")
        if k > MAX_K:
            raise ChatError(f"k must be at most {MAX_K}, got {k}")
        if not session_ttl_s > 0:
            raise ChatError(f"session_ttl_s must be positive, got {session_ttl_s!r}")
        self.recommender = recommender
        self.k, self.max_sessions, self.max_turns = k, max_sessions, max_turns
        self.max_message_chars, self.session_ttl_s, self.reply_tokens = max_message_chars, session_ttl_s, reply_tokens
        self.catalogue = build_catalogue(recommender.dataset, recommender.popularity)
        self._sessions = SessionTable(max_sessions=max_sessions, max_per_client=max_sessions_per_client,
                                      ttl_s=session_ttl_s, clock=clock)
        self._llm_lock = threading.Lock()  # LLM backends are not guaranteed thread-safe

    # ------------------------------------------------------------------ public
    def chat(self, session_id: str, message: str | bytes, *, user: str | None = None,
             k: int | None = None, client: str | None = None) -> ChatReply:
        """One turn of session ``session_id``. ``user``: a known user id whose history joins the session's
        (checked; an unknown id raises :class:`~kerec.data.UnknownIdError`). ``k``: picks (default the
        engine's). ``client``: who asks (the HTTP service passes the peer address), for the per-client
        session bound; None is not counted per client. Odd message text never raises: the reply carries a
        :attr:`ChatReply.notice`."""
        self._check_session_id(session_id)
        k = self.k if k is None else k
        if not isinstance(k, int) or not 1 <= k <= MAX_K:
            raise ChatError(f"k must be an integer between 1 and {MAX_K}, got {k!r}")
        if user is not None and (not isinstance(user, str) or user not in self.recommender.dataset.users):
            raise UnknownIdError("user", str(user), "not in the dataset the retriever was trained on")
        checked = check_message(message, max_chars=self.max_message_chars)
        opened = self._sessions.open(session_id, client)
        session, dropped = opened.session, opened.dropped
        with session.lock:
            state = session.state
            if checked.text is None:
                return self._notice(session_id, state, checked.notice or "message rejected", dropped)
            if state.turns >= self.max_turns:
                return self._notice(session_id, state, f"This conversation has reached its limit of "
                                                       f"{self.max_turns} turns; start a new one (reset).", dropped)
            if user is not None:
                state.user = user
            parsed = parse_message(checked.text, self.catalogue)
            # Said first, so a person whose conversation was dropped knows why the earlier picks are gone.
            said_dropped = f"Your earlier conversation was {dropped}, so this starts a new one. " if dropped else ""
            if parsed.reset:
                session.state = state = SessionState(user=user or state.user, last_used=state.last_used)
                reply = self._ask(session_id, state, parsed, said_dropped + "Starting over. ")
            else:
                state.apply(parsed)
                state.turns += 1
                state.log.append(("user", checked.text))
                ack = said_dropped + acknowledgement(parsed, self.catalogue)
                reply = (self._ask(session_id, state, parsed, ack) if state.is_empty()
                         else self._recommend(session_id, state, parsed, ack, k))
            return replace(reply, dropped=dropped)

    def reset(self, session_id: str) -> bool:
        """Forget session ``session_id``; True if it was a live conversation, False for an unknown id
        (checked as :meth:`chat` checks it: a malformed id raises :class:`ChatError`)."""
        self._check_session_id(session_id)
        return self._sessions.reset(session_id)

    def sessions(self) -> int:
        """Live sessions (expired ones are dropped first)."""
        return len(self._sessions)

    # ------------------------------------------------------------------ sessions
    def _check_session_id(self, session_id: str) -> None:
        if not isinstance(session_id, str) or not session_id or len(session_id) > MAX_SESSION_ID \
                or not session_id.isprintable():
            raise ChatError(f"session_id must be 1 to {MAX_SESSION_ID} printable characters, got {session_id!r:.60}")

    # ------------------------------------------------------------------ replies
    def _constraints(self, state: SessionState) -> dict[str, Any]:
        return state.summary(self.catalogue, self.recommender.dataset.items.external)

    def _notice(self, session_id: str, state: SessionState, notice: str, dropped: str | None) -> ChatReply:
        return ChatReply(session_id, notice, (), None, self._constraints(state), notice=notice, text_source="notice",
                         dropped=dropped)

    def _ask(self, session_id: str, state: SessionState, parsed: Parsed, ack: str) -> ChatReply:
        text = question_text(self.catalogue, ack)
        state.log.append(("assistant", text))
        state.shown = []
        return ChatReply(session_id, text, (), text, self._constraints(state), text_source="question",
                         understood=self._understood(parsed))

    def _recommend(self, session_id: str, state: SessionState, parsed: Parsed, ack: str, k: int) -> ChatReply:
        rec = self.recommender
        ranked = rank(rec, self.catalogue, state, k)
        if not ranked.items:
            text = no_match_text(ack, state, self.catalogue)
            state.log.append(("assistant", text))
            state.shown = []
            return ChatReply(session_id, text, (), text, self._constraints(state), text_source="question",
                             understood=self._understood(parsed))
        ev = evidence(rec, ranked)
        recs = []
        for position, i in enumerate(ranked.items, 1):
            ident = rec.dataset.items.external(i)
            exp = template(ev.get(ident, []))
            recs.append(Recommendation(
                item_id=ident, title=self.catalogue.titles[i], score=float(ranked.scores[i]), rank=position,
                gnn_score=float(ranked.base[i]), llm_logprob=None, explanation=exp.text,
                explanation_source=exp.source, evidence=tuple(ev.get(ident, ())), cited_facts=exp.fact_ids,
                cited=exp.cited, basis=ranked.basis))
        refs = references(recs)
        text, source = self._words(state, ack, recs, refs, ranked.history)
        state.log.append(("assistant", text))
        state.shown = list(ranked.items)
        return ChatReply(session_id, text, tuple(recs), None, self._constraints(state), references=refs,
                         text_source=source, understood=self._understood(parsed))

    def _words(self, state: SessionState, ack: str, recs: list[Recommendation], refs: tuple[Reference, ...],
               history: list[str]) -> tuple[str, str]:
        rec = self.recommender
        if rec.llm is not None and refs:
            messages = chat_messages(state.log, recs, refs)
            said = "\n".join(text for role, text in state.log if role == "user")
            for attempt in range(rec.settings.explanation_attempts):
                with self._llm_lock:
                    [out] = rec.llm.generate([messages], max_new_tokens=self.reply_tokens,
                                             temperature=0.0 if attempt == 0 else 0.7, seed=attempt)
                out = whole_sentences(out)
                if check_reply(out, refs, recs, rec.store, set(history), titles=rec.titles, said=said) is None:
                    return ack + out, "llm" if attempt == 0 else "llm-retry"
        return template_reply(ack, state, self.catalogue, recs, refs), "template"

    def _understood(self, parsed: Parsed) -> dict[str, Any]:
        ext = self.recommender.dataset.items.external

        def items(polarity: str) -> list[dict[str, Any]]:
            return [{"item_id": ext(m.item), "title": self.catalogue.titles[m.item], "written": m.written,
                     "fuzzy": m.fuzzy} for m in parsed.mentions if m.polarity == polarity]

        return {"liked": items("like"), "disliked": items("dislike"), "excluded": items("exclude"),
                "genres_in": list(parsed.genres_in), "genres_out": list(parsed.genres_out),
                "soft_genres": dict(parsed.soft_genres), "soft_year": parsed.soft_year,
                "year_min": parsed.year_min, "year_max": parsed.year_max,
                "years_out": [list(s) for s in parsed.years_out], "not_found": list(parsed.not_found),
                "more": parsed.more, "reset": parsed.reset}
