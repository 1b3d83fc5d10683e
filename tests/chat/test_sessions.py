"""The chat session table: bounded per client as well as in total, idle expiry, and a dropped conversation
says so on its next turn. Before this, one client opening 3,000 sessions pushed a live conversation out of
the 1,000-slot table and its next turn silently started over (no per-client bound, no record of the drop)."""
from __future__ import annotations

import pytest

from kerec.api import Recommender
from kerec.chat import ChatEngine
from kerec.chat.sessions import SessionTable


def table(now: list[float], **kw: int) -> SessionTable:
    return SessionTable(**{"max_sessions": 5, "max_per_client": 2, "ttl_s": 10.0, "remember_dropped": 100, **kw},
                        clock=lambda: now[0])


def test_one_client_cannot_push_out_another_clients_conversation() -> None:
    now = [0.0]
    sessions = table(now)
    live = sessions.open("alice-1", "10.0.0.1").session
    for i in range(3000):  # a flood from one address, far past the total bound
        sessions.open(f"flood-{i}", "10.0.0.2")
    again = sessions.open("alice-1", "10.0.0.1")
    assert again.session is live and again.dropped is None
    assert len(sessions) == 3  # alice's one + the flooder's last two
    # the flooder's own earlier sessions were dropped, and each says why on its next turn
    assert "one client may keep at most 2 conversations" in (sessions.open("flood-2990", "10.0.0.2").dropped or "")
    # only the last remember_dropped (100) drops are remembered: the memory is bounded too
    assert sessions.open("flood-0", "10.0.0.2").dropped is None


def test_the_total_bound_drops_the_least_recently_used_and_remembers_why() -> None:
    now = [0.0]
    sessions = table(now)
    for client in range(6):  # six clients, one session each: one more than the total bound
        sessions.open(f"s{client}", f"10.0.0.{client}")
    assert len(sessions) == 5
    reopened = sessions.open("s0", "10.0.0.0")
    assert reopened.dropped == ("dropped because the server keeps at most 5 conversations and it was the least "
                                "recently used")
    assert sessions.open("s0", "10.0.0.0").dropped is None  # said once; the new conversation goes on


def test_idle_expiry_is_reported_and_a_reset_is_not() -> None:
    now = [0.0]
    sessions = table(now)
    sessions.open("a", None)
    sessions.open("b", None)
    now[0] = 11.0
    assert len(sessions) == 0
    assert sessions.open("a", None).dropped == "dropped after more than 10 s without a message"
    assert sessions.reset("a") is True and sessions.reset("a") is False  # live, then unknown
    assert sessions.reset("b") is False  # expired earlier: no live conversation; forgets the drop too
    assert sessions.open("b", None).dropped is None and sessions.open("a", None).dropped is None


def test_unknown_ids_and_clients_without_an_address_are_not_counted_per_client() -> None:
    now = [0.0]
    sessions = table(now, max_sessions=100)
    for i in range(10):
        assert sessions.open(f"local-{i}", None).dropped is None
    assert len(sessions) == 10  # the Python API passes no client: only the total bound applies


def test_the_engine_says_a_dropped_conversation_was_dropped(films_rec: Recommender) -> None:
    engine = ChatEngine(films_rec, max_sessions=3, max_sessions_per_client=2)
    engine.chat("mine", "something like Fargo, no horror", client="10.0.0.1")
    for i in range(5):
        engine.chat(f"other-{i}", "comedy", client="10.0.0.2")
    kept = engine.chat("mine", "more", client="10.0.0.1")
    assert kept.dropped is None and kept.constraints["genres_out"] == ["Horror"]  # the flood did not reach it
    for i in range(3):
        engine.chat(f"new-{i}", "drama", client=f"10.0.1.{i}")  # three other clients fill the total bound
    reply = engine.chat("mine", "more", client="10.0.0.1")
    assert reply.dropped and "keeps at most 3 conversations" in reply.dropped
    assert reply.text.startswith("Your earlier conversation was dropped because the server keeps at most 3")
    assert reply.constraints["genres_out"] == [] and reply.to_dict()["dropped"] == reply.dropped


def test_bad_bounds_are_refused(films_rec: Recommender) -> None:
    from kerec.chat import ChatError

    with pytest.raises(ChatError, match="max_sessions_per_client must be a positive integer"):
        ChatEngine(films_rec, max_sessions_per_client=0)
