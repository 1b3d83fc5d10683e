"""kerec over HTTP: a FastAPI app (:func:`create_app`) with JSON endpoints for recommendations, chat, item
facts and health, an OpenAI-compatible chat endpoint, and a web chat page at ``/``. ``kerec serve`` runs it
with uvicorn (:mod:`kerec.serve.cli`). Needs the ``[serve]`` extra (fastapi, uvicorn)."""
from __future__ import annotations

from kerec.serve.config import ServeConfig

__all__ = ["ServeConfig", "create_app"]


def __getattr__(name: str) -> object:
    # FastAPI is an optional extra: importing kerec.serve must not need it until an app is built.
    if name == "create_app":
        from kerec.serve.app import create_app

        return create_app
    raise AttributeError(name)
