"""OpenAI-compatible chat: ``POST /v1/chat/completions`` and ``GET /v1/models``.

OpenAI clients are stateless: each request carries the whole conversation. The last message must be the
user's; it goes to the chat engine, in a session chosen so a conversation continues where it left off:

* with the request's ``user`` field: one session per user value;
* otherwise the session that answered the earlier messages: after each reply the server remembers the
  hash of the transcript *including* that reply, which is exactly the "earlier messages" of the client's
  next request (up to ``ServeConfig.openai_conversations`` conversations, least recently used dropped).
  A first message starts a new session; an unknown history (edited, or the server restarted) gets a
  session named by the history's hash, so a retried request lands in the same place.

``stream: true`` is answered with server-sent events in OpenAI's chunk format (the reply is computed
first, then sent as one content chunk). Sampling options (temperature, max_tokens…) are accepted and
ignored: the reply comes from the recommender, not free generation."""
from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from kerec.data import KerecError
from kerec.serve.config import ServeConfig
from kerec.serve.guard import client_of
from kerec.serve.schemas import (ChatCompletion, ChatCompletionRequest, ChatResponse, Choice, CompletionMessage,
                                 ModelCard, ModelList)

Transcript = Sequence[tuple[str, str]]


def transcript_hash(messages: Transcript) -> str:
    data = json.dumps([[role, text] for role, text in messages], ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(data.encode("ascii")).hexdigest()[:32]


class Conversations:
    """Transcript hash → chat-engine session, bounded, thread-safe (see the module docstring)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._sessions: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def session_for(self, earlier: Transcript, user: str | None) -> str:
        if user is not None:  # hashed: any user string makes a short, printable session id
            return f"openai-user:{hashlib.sha256(user.encode('utf-8')).hexdigest()[:32]}"
        if not earlier:
            return f"openai:{uuid.uuid4().hex}"
        key = transcript_hash(earlier)
        with self._lock:
            if key in self._sessions:
                self._sessions.move_to_end(key)
                return self._sessions[key]
        return f"openai:{key}"

    def remember(self, transcript: Transcript, session: str) -> None:
        key = transcript_hash(transcript)
        with self._lock:
            self._sessions[key] = session
            self._sessions.move_to_end(key)
            while len(self._sessions) > self.capacity:
                self._sessions.popitem(last=False)

    def __len__(self) -> int:
        return len(self._sessions)


def openai_router(chat: Callable[..., Awaitable[ChatResponse]], config: ServeConfig, started: int) -> APIRouter:
    """The two endpoints; ``chat(session, message, user=, k=, client=)`` runs one chat-engine turn."""
    router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])
    conversations = Conversations(config.openai_conversations)

    @router.get("/models", response_model=ModelList)
    async def models() -> ModelList:
        return ModelList(data=[ModelCard(id=config.model_name, created=started)])

    @router.post("/chat/completions", response_model=ChatCompletion,
                 responses={200: {"content": {"text/event-stream": {}},
                                  "description": "JSON, or server-sent events with stream: true"}})
    async def completions(req: ChatCompletionRequest, request: Request) -> Response | ChatCompletion:
        if req.model not in (None, config.model_name):
            raise KerecError(f"unknown model {req.model!r}; this server serves {config.model_name!r} (GET /v1/models)")
        turns = [(m.role, m.text()) for m in req.messages]
        if turns[-1][0] != "user":
            raise KerecError(f"the last message must be the user's (role 'user'), got role {turns[-1][0]!r}")
        session = conversations.session_for(turns[:-1], req.user)
        reply = await chat(session, turns[-1][1], user=req.kerec_user, k=req.kerec_k,
                           client=client_of(request))
        conversations.remember([*turns, ("assistant", reply.text)], session)
        created = int(time.time())
        ident = f"chatcmpl-{uuid.uuid4().hex}"
        model = config.model_name
        if req.stream:
            return StreamingResponse(_events(ident, created, model, reply), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        return ChatCompletion(id=ident, created=created, model=model, kerec=reply,
                              choices=[Choice(index=0, message=CompletionMessage(content=reply.text))])

    return router


def _events(ident: str, created: int, model: str, reply: ChatResponse) -> Iterator[str]:
    def chunk(delta: dict[str, Any], finish: str | None, **extra: Any) -> str:
        body = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(body, ensure_ascii=True)}\n\n"

    yield chunk({"role": "assistant", "content": reply.text}, None)
    yield chunk({}, "stop", kerec=reply.model_dump(mode="json"))
    yield "data: [DONE]\n\n"
