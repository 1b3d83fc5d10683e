"""The guards in front of the app, over a real socket: uvicorn serving the app in a thread on a loopback
port, spoken to with raw HTTP so the client can misbehave (announce a body it never sends, send a foreign
Host header)."""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from kerec.api import Recommender
from kerec.kg.server import free_port
from kerec.serve import ServeConfig, create_app


@pytest.fixture(scope="module")
def port(serve_rec: Recommender) -> Iterator[int]:
    app = create_app(serve_rec, config=ServeConfig(body_timeout_s=0.5))
    chosen = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=chosen, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield chosen
    server.should_exit = True
    thread.join(timeout=10)


def exchange(port: int, request: bytes) -> bytes:
    """Send ``request`` and read until the server closes the connection (the socket timeout bounds the wait)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(request)
        received = b""
        while chunk := s.recv(65536):
            received += chunk
    return received


def test_a_body_that_never_arrives_gets_408_and_the_connection_closed(port: int) -> None:
    """Before, a client announcing more Content-Length than it sent held the connection (and a worker) open
    for as long as it liked. Here it announces 100 bytes and sends 8: the answer comes, and then EOF."""
    answer = exchange(port, b"POST /recommend HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                            b"Content-Length: 100\r\n\r\n{\"user\":")
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b'"type":"request_timeout"' in answer and b"did not arrive within 0.5 s (8 bytes came)" in answer


def test_a_whole_body_is_answered_and_a_foreign_host_refused(port: int) -> None:
    body = b'{"user":"u0","k":2,"explain":false}'
    answer = exchange(port, b"POST /recommend HTTP/1.1\r\nHost: localhost:%d\r\nContent-Type: application/json\r\n"
                            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (port, len(body), body))
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    refused = exchange(port, b"GET /health HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
    assert refused.startswith(b"HTTP/1.1 400 ") and b'"type":"untrusted_host"' in refused, refused[:300]
