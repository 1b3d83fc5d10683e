"""What keeps every answer a specific JSON error instead of a 500: a host guard (DNS rebinding) and a body
guard (size limit, read timeout, UTF-8 check) in front of the app, a JSON encoder that cannot fail on odd
text, and one handler per error kind.

Error bodies look like OpenAI's: ``{"error": {"type": "...", "message": "..."}}``."""
from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Iterable
from typing import Any

import anyio

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kerec.data import KerecError, UnknownIdError
from kerec.kg.errors import GraphStoreUnavailable

log = logging.getLogger("kerec.serve")

SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]


class SafeJSONResponse(JSONResponse):
    """JSON with non-ASCII escaped: any Python string (even a lone surrogate) encodes, and the bytes are ASCII."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


def error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> SafeJSONResponse:
    return SafeJSONResponse({"error": {"type": kind, "message": message}}, status_code=status, headers=headers)


def client_of(request: Request) -> str | None:
    """Who asks, for the per-client chat-session bound: the peer address (behind a proxy, the proxy's)."""
    return request.client.host if request.client else None


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def host_name(header: str) -> str:
    """The name in a Host header, lower case, without port, brackets or a final dot ("[::1]:80" → "::1")."""
    h = header.strip().lower()
    if h.startswith("["):
        h = h[1:h.find("]")] if "]" in h else h[1:]
    elif h.count(":") == 1:
        h = h.split(":", 1)[0]
    return h.rstrip(".")


class HostGuard:
    """ASGI middleware against DNS rebinding: a web page whose own name an attacker re-points at 127.0.0.1
    reaches a loopback server from the victim's browser, with that name in the Host header. A request whose
    Host is not allowed gets 400 (JSON ``untrusted_host``).

    ``allowed``: None (the default) checks only connections that arrived on a loopback address, allowing
    localhost, 127.0.0.1, ::1 and that address; a list allows exactly those names (any port); "*" in it
    turns the check off."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str] | None) -> None:
        self.app = app
        self.allowed = None if allowed is None else frozenset(host_name(h) if h != "*" else h for h in allowed)

    def _allowed(self, scope: Scope) -> frozenset[str] | None:
        if self.allowed is not None:
            return None if "*" in self.allowed else self.allowed
        server = scope.get("server")
        if server and _is_loopback(str(server[0])):
            return frozenset((*LOOPBACK_NAMES, host_name(str(server[0]))))
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        allowed = self._allowed(scope) if scope["type"] in ("http", "websocket") else None
        if allowed is None:
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers", [])).get(b"host", b"").decode("latin-1")
        if host_name(header) in allowed:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        names = ", ".join(sorted(allowed))
        await error(400, "untrusted_host", f"the Host header {header[:100]!r} is not a name this server answers "
                    f"to ({names}): a page of another site that reaches it (DNS rebinding) is refused. Use one "
                    "of these names, or start kerec serve with --allowed-hosts")(scope, receive, send)


class BodyGuard:
    """ASGI middleware: reads a request body up to ``max_bytes`` (413 beyond, whether announced by
    Content-Length or streamed) within ``timeout_s`` (408 and the connection closed after it: a client
    announcing more than it sends cannot hold a worker), rejects a body that is not UTF-8 (400, naming
    the byte and position), then hands the app the body it read. Also adds security headers to every
    response."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float) -> None:
        self.app, self.max_bytes, self.timeout_s = app, max_bytes, timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        if scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send_with_headers)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._reject(scope, receive, send_with_headers, self._too_large(declared.decode("latin-1")))
            return
        body = bytearray()
        try:
            with anyio.fail_after(self.timeout_s):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    body += message.get("body", b"")
                    if len(body) > self.max_bytes:
                        await self._reject(scope, receive, send_with_headers,
                                           self._too_large(f"more than {len(body)}"))
                        return
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            await self._reject(scope, receive, send_with_headers, error(
                408, "request_timeout", f"the request body did not arrive within {self.timeout_s:g} s "
                f"({len(body)} bytes came); the connection is closed", headers={"Connection": "close"}))
            return
        try:
            bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            await self._reject(scope, receive, send_with_headers, error(
                400, "invalid_encoding", f"the request body is not valid UTF-8: byte 0x{body[exc.start]:02x} at "
                f"position {exc.start} ({exc.reason}); send JSON encoded as UTF-8"))
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send_with_headers)

    def _too_large(self, size: str) -> Response:
        return error(413, "request_too_large", f"the request body has {size} bytes; this server accepts at most "
                     f"{self.max_bytes} (a chat message of 10,000 characters fits)")

    @staticmethod
    async def _reject(scope: Scope, receive: Receive, send: Send, response: Response) -> None:
        await response(scope, receive, send)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        msg = str(err.get("msg", "invalid"))
        if err.get("type") == "json_invalid":
            msg = f"the body is not valid JSON ({err.get('ctx', {}).get('error', 'decode error')})"
        elif err.get("type") == "missing" and where == "body":
            msg = "the request needs a JSON body"
        parts.append(f"{where}: {msg}")
    return "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    """Map kerec's errors and the framework's to specific JSON answers (never a bare 500 with a trace)."""

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> Response:
        details = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg")), "type": e.get("type")}
                   for e in exc.errors()[:20]]  # inputs are not echoed: they may be huge or hostile
        return SafeJSONResponse({"error": {"type": "invalid_request", "message": _validation_message(exc),
                                           "details": details}}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> Response:
        kind = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        return error(exc.status_code, kind, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(GraphStoreUnavailable)
    async def store_down(_: Request, exc: GraphStoreUnavailable) -> Response:
        log.warning("graph store unavailable: %s", exc)
        return error(503, "graph_store_unavailable", f"{exc}. The request can be retried once the graph store "
                     "is back; /ready reports when it is.", headers={"Retry-After": "5"})

    @app.exception_handler(UnknownIdError)
    async def unknown(_: Request, exc: UnknownIdError) -> Response:
        return error(404, f"unknown_{exc.kind}", str(exc))

    @app.exception_handler(KerecError)
    async def bad_request(_: Request, exc: KerecError) -> Response:
        return error(400, "bad_request", str(exc))

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception) -> Response:
        log.exception("unhandled error")
        return error(500, "internal_error", f"internal error ({type(exc).__name__}); the server log has the details")
