"""The OpenAI-compatible backend against a small local HTTP server that mimics vLLM's.

vLLM is not installed in CI, so this server imitates the three things the backend uses, in vLLM 0.32's
response format: ``POST /tokenize``, and ``POST /v1/chat/completions`` with ``logprob_token_ids`` +
``return_tokens_as_token_ids`` (logprobs entries named ``token_id:<id>``, ``-9999.0`` for zero probability)
or plain generation. The letter scores it returns are fixed, so the expected result is computed by hand.
"""
from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from kerec.llm import LLMError, OpenAICompatibleLLM

# "A" and " A" are tokens 10 and 20; "B" is 11 but " B" splits in two; "C"/" C" are 12/22.
VOCAB = {"A": [10], " A": [20], "B": [11], " B": [7, 11], "C": [12], " C": [22]}
LOGPROBS = {10: np.log(0.1), 20: np.log(0.1), 11: np.log(0.3), 12: np.log(0.05), 22: -9999.0, 99: np.log(0.4)}
CHAT = [{"role": "user", "content": "Pick one: A, B or C."}]


class FakeVLLM(BaseHTTPRequestHandler):
    requests: list[tuple[str, dict[str, Any], str | None]] = []
    honours_logprob_token_ids = True

    def do_POST(self) -> None:  # noqa: N802  (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append((self.path, body, self.headers.get("Authorization")))
        if body.get("model") != "smollm2":
            return self._send(404, {"error": {"message": f"The model `{body.get('model')}` does not exist."}})
        if self.path == "/tokenize":
            return self._send(200, {"count": 1, "max_model_len": 2048, "tokens": VOCAB[body["prompt"]]})
        if self.path == "/v1/chat/completions":
            return self._send(200, self._completion(body))
        self._send(404, {"detail": "Not Found"})

    def _completion(self, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("logprobs"):
            text = f"  echo: {body['messages'][-1]['content']} t={body['temperature']} seed={body['seed']}  "
            return {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}
        wanted = body["logprob_token_ids"] if self.honours_logprob_token_ids else [99, 10, 11]
        top = [{"token": f"token_id:{t}", "logprob": float(LOGPROBS[t]), "bytes": None} for t in wanted]
        content = [{"token": "token_id:99", "logprob": float(LOGPROBS[99]), "bytes": None, "top_logprobs": top}]
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": "B"},
                             "logprobs": {"content": content}, "finish_reason": "length"}]}

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[str]:
    FakeVLLM.requests = []
    FakeVLLM.honours_logprob_token_ids = True
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeVLLM)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_letter_logprobs_add_variants_and_renormalise_over_letters(server: str) -> None:
    llm = OpenAICompatibleLLM(server + "/v1", "smollm2", api_key="secret")
    out = llm.letter_logprobs([CHAT, CHAT], 3)
    # A: 0.1 + 0.1; B: 0.3 (" B" is two tokens, so not a first-token form); C: 0.05 + 0  →  / 0.55
    np.testing.assert_allclose(np.exp(out), [[0.2 / 0.55, 0.3 / 0.55, 0.05 / 0.55]] * 2, rtol=1e-9)
    chats = [body for path, body, _ in FakeVLLM.requests if path == "/v1/chat/completions"]
    assert len(chats) == 2 and chats[0]["messages"] == CHAT and chats[0]["max_tokens"] == 1
    assert chats[0]["logprob_token_ids"] == [10, 20, 11, 12, 22] and chats[0]["return_tokens_as_token_ids"] is True
    assert {auth for _, _, auth in FakeVLLM.requests} == {"Bearer secret"}
    tokenized = [body["prompt"] for path, body, _ in FakeVLLM.requests if path == "/tokenize"]
    assert sorted(tokenized) == sorted(VOCAB)
    llm.letter_logprobs([CHAT], 3)
    assert sum(path == "/tokenize" for path, _, _ in FakeVLLM.requests) == len(VOCAB)  # letter ids are cached


def test_a_server_that_ignores_logprob_token_ids_is_an_error_not_a_guess(server: str) -> None:
    FakeVLLM.honours_logprob_token_ids = False
    with pytest.raises(LLMError, match=r"no log-probability for letter tokens \[20, 12, 22\].*logprob_token_ids"):
        OpenAICompatibleLLM(server, "smollm2").letter_logprobs([CHAT], 3)


def test_generate_returns_stripped_replies_in_order_and_forwards_the_options(server: str) -> None:
    chats = [[{"role": "user", "content": f"q{i}"}] for i in range(5)]
    out = OpenAICompatibleLLM(server, "smollm2").generate(chats, max_new_tokens=7, temperature=0.5, seed=3)
    assert out == [f"echo: q{i} t=0.5 seed=3" for i in range(5)]
    assert {body["max_tokens"] for _, body, _ in FakeVLLM.requests} == {7}


def test_http_errors_carry_the_servers_message(server: str) -> None:
    with pytest.raises(LLMError, match=r"/v1/chat/completions answered HTTP 404: .*model `other` does not exist"):
        OpenAICompatibleLLM(server, "other").generate([CHAT])


def test_an_unreachable_server_is_named() -> None:
    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    llm = OpenAICompatibleLLM(f"http://127.0.0.1:{port}", "smollm2", timeout=5)
    with pytest.raises(LLMError, match=rf"cannot reach the LLM server at http://127.0.0.1:{port}/tokenize"):
        llm.letter_logprobs([CHAT], 2)
    with pytest.raises(LLMError, match=rf"cannot reach the LLM server at http://127.0.0.1:{port}/v1/chat/completions"):
        llm.generate([CHAT])


def test_an_empty_batch_gives_an_empty_result(server: str) -> None:
    llm = OpenAICompatibleLLM(server, "smollm2")
    assert llm.letter_logprobs([], 3).shape == (0, 3) and llm.generate([]) == []
