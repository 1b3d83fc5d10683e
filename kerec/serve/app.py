"""The FastAPI app: :func:`create_app` wires a loaded :class:`~kerec.api.Recommender` (and a chat engine)
to HTTP. Nothing is global: every app holds its own recommender, engine, limits and worker pool.

Recommender, chat and drawing calls run in worker threads (at most ``ServeConfig.workers`` at once), so
the event loop only parses and answers: ``/health`` and ``/ready`` answer while a long request computes.
Errors map to specific JSON answers (see :mod:`kerec.serve.guard`): unknown user/item 404, bad arguments
400/422, graph store down 503 (and the next request after it is back succeeds), body too large 413.
"""
from __future__ import annotations

import functools
import tempfile
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import anyio
from fastapi import FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.staticfiles import StaticFiles
from starlette.responses import FileResponse, Response

from kerec import __version__
from kerec.chat import ChatEngine
from kerec.data import KerecError
from kerec.kg.errors import GraphStoreUnavailable
from kerec.kg.store import GraphStore, StoreInfo
from kerec.serve.config import ServeConfig
from kerec.serve.guard import BodyGuard, HostGuard, SafeJSONResponse, client_of, install_error_handlers
from kerec.serve.items import item_facts
from kerec.serve.openai_compat import openai_router
from kerec.serve.schemas import (SESSION_ID, ChatRequest, ChatResponse, ErrorResponse, Health, ItemResponse, Ready,
                                 RecommendationOut, RecommendRequest, RecommendResponse, ResetResponse)

if TYPE_CHECKING:
    from kerec.api import Recommender

T = TypeVar("T")
STATIC = Path(str(resources.files("kerec.serve") / "static"))
# The page loads only its own files; even text that slipped into markup could not run a script.
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HISTORY_SHOWN = 8  # history items drawn in the subgraph picture
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'"
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text} for code, text in (
        (400, "bad argument (the message says which)"), (404, "unknown user or item id"),
        (413, "request body too large"), (422, "malformed request"), (503, "graph store unavailable"))}


def create_app(recommender: Recommender, *, chat_engine: Any = None, config: ServeConfig = ServeConfig()) -> FastAPI:
    """An app serving ``recommender``. ``chat_engine``: a :class:`kerec.chat.ChatEngine`; None: a new one
    over ``recommender``."""
    if chat_engine is None:
        chat_engine = ChatEngine(recommender)
    started = int(time.time())
    limiter = anyio.CapacityLimiter(config.workers)
    app = FastAPI(title="kerec", version=__version__, default_response_class=SafeJSONResponse,
                  docs_url=None, redoc_url=None,  # their pages load scripts from a CDN; /openapi.json stays
                  description="Knowledge-enhanced recommendations with explanations from KG facts.")
    app.state.recommender, app.state.chat_engine, app.state.config = recommender, chat_engine, config
    app.add_middleware(BodyGuard, max_bytes=config.max_body_bytes, timeout_s=config.body_timeout_s)
    app.add_middleware(HostGuard, allowed=config.allowed_hosts)  # added last: runs first
    install_error_handlers(app)

    async def compute(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=limiter)

    def check_k(k: int | None) -> None:
        if k is not None and k > config.max_k:
            raise KerecError(f"k={k} is more than this server's limit of {config.max_k}")

    async def chat_turn(session: str, message: str, *, user: str | None, k: int | None,
                        client: str | None) -> ChatResponse:
        check_k(k)
        reply = await compute(chat_engine.chat, session, message, user=user, k=k, client=client)
        data = reply.to_dict()
        data["recommendations"] = [RecommendationOut.of(r) for r in data.get("recommendations", [])]
        return ChatResponse.model_validate(data)

    @app.post("/recommend", response_model=RecommendResponse, responses=ERRORS, tags=["recommend"])
    async def recommend(req: RecommendRequest) -> RecommendResponse:
        """The user's top ``k`` items, best first, each with its explanation and numbered KG evidence."""
        check_k(req.k)
        if req.candidates is not None and len(req.candidates) > config.max_candidates:
            raise KerecError(f"{len(req.candidates)} candidates; this server ranks at most {config.max_candidates}")
        recs = await compute(recommender.recommend, req.user, req.k, exclude_seen=req.exclude_seen,
                             candidates=req.candidates, explain=req.explain)
        return RecommendResponse(user=req.user, k=req.k, recommendations=[RecommendationOut.of(r.to_dict()) for r in recs])

    @app.post("/chat", response_model=ChatResponse, responses=ERRORS, tags=["chat"])
    async def chat(req: ChatRequest, request: Request) -> ChatResponse:
        """One conversation turn; the reply may ask a question, refine earlier picks or give a notice.
        ``dropped`` says why, on the first turn after the server dropped this conversation."""
        return await chat_turn(req.session, req.message, user=req.user, k=req.k, client=client_of(request))

    @app.delete("/chat/{session:path}", response_model=ResetResponse, responses=ERRORS, tags=["chat"])
    async def reset(session: Annotated[str, PathParam(**SESSION_ID)]) -> ResetResponse:
        """Forget a conversation (a new one can start under the same id). The id follows POST /chat's rule
        (1 to 128 printable characters, "/" included, encoded or not). ``reset`` is true when a live
        conversation was forgotten, false for an id with none (never used, already reset, or dropped):
        the call succeeds either way, so a client can always reset."""
        return ResetResponse(session=session, reset=await compute(chat_engine.reset, session))

    @app.get("/items/{item_id:path}", response_model=ItemResponse, responses=ERRORS, tags=["items"])
    async def item(item_id: str) -> ItemResponse:
        """The item's title and every KG fact about it, readable (ids holding "/" work, encoded or not)."""
        return await compute(item_facts, recommender.store, item_id, popularity=recommender.item_popularity)

    @app.get("/subgraph.svg", response_class=Response, responses={**ERRORS, 200: {"content": {"image/svg+xml": {}}}},
             tags=["items"])
    async def subgraph(user: str = Query(min_length=1, max_length=200),
                       items: str = Query(min_length=1, max_length=4000, description="comma-separated item ids")) -> Response:
        """A picture of how the user's recent history links to these items through the KG (SVG)."""
        ids = [i for i in dict.fromkeys(s.strip() for s in items.split(",")) if i]
        if not ids or len(ids) > config.max_subgraph_items:
            raise KerecError(f"items must name 1 to {config.max_subgraph_items} item ids, got {len(ids)}")
        svg = await compute(_draw, recommender, user, ids)
        return Response(svg, media_type="image/svg+xml",
                        headers={"Content-Security-Policy": SVG_CSP, "Cache-Control": "no-store"})

    @app.get("/health", response_model=Health, tags=["health"])
    async def health() -> Health:
        """The process is alive (answers even while every worker is busy)."""
        return Health(status="ok")

    @app.get("/ready", response_model=Ready, responses={503: {"model": Ready}}, tags=["health"])
    async def ready() -> Response:
        """The model is loaded and the graph store answers with the recommender's dataset; 503 otherwise."""
        store = recommender.store
        llm = getattr(recommender.llm, "name", None) or (type(recommender.llm).__name__ if recommender.llm else None)
        base = {"store": store.uri, "llm": llm, "chat": True, "sessions": chat_engine.sessions()}
        try:
            with anyio.fail_after(config.ready_timeout_s):
                info = await anyio.to_thread.run_sync(_probe, store, abandon_on_cancel=True)
        except TimeoutError:
            return _not_ready(base, f"the graph store did not answer within {config.ready_timeout_s:g} s")
        except GraphStoreUnavailable as exc:
            return _not_ready(base, str(exc))
        fingerprint = recommender.dataset.fingerprint
        if info is not None and not info.complete:
            return _not_ready(base, f"the graph store {info.incomplete()}")
        if info is None or info.fingerprint != fingerprint:
            return _not_ready(base, f"the graph store does not hold the complete dataset "
                                    f"{recommender.dataset.name!r} the model was trained on")
        return SafeJSONResponse(Ready(status="ready", dataset=info.name, **base).model_dump())

    app.include_router(openai_router(chat_turn, config, started))

    @app.get("/", response_class=FileResponse, include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8",
                            headers={"Content-Security-Policy": PAGE_CSP})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _probe(store: GraphStore) -> StoreInfo | None:
    # One try first: a store that is down answers at once, not after the driver's retries (~7 s on Bolt).
    store.ping()
    return store.info()


def _not_ready(base: dict[str, Any], reason: str) -> Response:
    return SafeJSONResponse(Ready(status="unavailable", reason=reason, **base).model_dump(), status_code=503)


def _draw(recommender: Recommender, user: str, items: list[str]) -> bytes:
    from kerec.kg.show import render, user_subgraph

    store = recommender.store
    recent = {h.item for h in store.history(user)[-HISTORY_SHOWN:]}  # unknown user: UnknownIdError
    shown = [i for i in items if i not in recent]  # an item can't be drawn both as history and candidate
    sub = user_subgraph(store, user, shown, history_limit=HISTORY_SHOWN, max_entities=8,
                        popularity=recommender.item_popularity)
    with tempfile.TemporaryDirectory(prefix="kerec-serve-") as tmp:
        return render(sub, Path(tmp) / "subgraph.svg").read_bytes()
