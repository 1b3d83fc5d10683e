"""The OpenAI-compatible backend: an LLM served over HTTP by vLLM (``vllm serve`` /
``python -m vllm.entrypoints.openai.api_server``), the way vLLM is deployed in production.

Requests use the Chat Completions API, so the server applies the model's chat template with the generation
prompt. Letter scores use two vLLM extensions of it: ``logprob_token_ids`` (the log-probabilities of
exactly the letters' variant tokens at the first answer position) with ``return_tokens_as_token_ids``
(tokens reported as ``token_id:<id>``, so ``"A"`` and ``" A"`` stay apart); the letters' token ids come
from the server's ``/tokenize`` endpoint, so no local tokenizer is needed. Only the standard library is
used (urllib); prompts are sent ``max_concurrency`` at a time so the server can batch them.
"""
from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from kerec.llm.base import (LLMError, Messages, check_generation, check_num_choices, check_prompts, flat_ids,
                            letter_token_ids, renormalised_letter_logprobs)

_TOKEN_ID = re.compile(r"token_id:(\d+)")


class OpenAICompatibleLLM:
    """An :class:`~kerec.llm.LLM` behind a vLLM OpenAI-compatible server.

    ``base_url``: the server, with or without the trailing ``/v1`` (``http://127.0.0.1:8000``);
    ``model``: the served model name; ``api_key``: sent as a bearer token when given (``--api-key``);
    ``timeout``: seconds per request.
    """

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, timeout: float = 120.0,
                 max_concurrency: int = 8) -> None:
        if not re.match(r"https?://", base_url):
            raise LLMError(f"LLM server URL {base_url!r} must start with http:// or https://")
        if not model:
            raise LLMError("give the served model name (the server's --served-model-name, or its --model)")
        self.root = re.sub(r"/v1/?$", "", base_url.rstrip("/"))
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.max_concurrency = max_concurrency
        self._letters: dict[int, list[list[int]]] = {}

    @property
    def name(self) -> str:
        return self.model

    def letter_logprobs(self, prompts: Sequence[Messages], num_choices: int) -> np.ndarray:
        """shape: (len(prompts), num_choices), float64; each row a log-distribution over letters A…."""
        check_prompts(prompts)
        check_num_choices(num_choices)
        letters = self._letter_ids(num_choices)
        columns = flat_ids(letters)
        rows = self._map(lambda chat: self._variant_logprobs(chat, columns), prompts)
        return renormalised_letter_logprobs(np.array(rows, dtype=np.float64).reshape(len(prompts), len(columns)), letters)

    def generate(self, prompts: Sequence[Messages], *, max_new_tokens: int = 96, temperature: float = 0.0,
                 seed: int = 0) -> list[str]:
        """One reply per prompt (``seed`` is sent with every request)."""
        check_prompts(prompts)
        check_generation(max_new_tokens, temperature)

        def reply(chat: Messages) -> str:
            body = self._post("/v1/chat/completions", {"model": self.model, "messages": chat,
                                                       "max_tokens": max_new_tokens, "temperature": temperature,
                                                       "seed": seed})
            try:
                return str(body["choices"][0]["message"]["content"] or "").strip()
            except (KeyError, IndexError, TypeError) as exc:
                raise LLMError(f"{self.root}: unexpected chat completion response {str(body)[:200]}") from exc

        return self._map(reply, prompts)

    def _variant_logprobs(self, chat: Messages, columns: list[int]) -> list[float]:
        body = self._post("/v1/chat/completions", {
            "model": self.model, "messages": chat, "max_tokens": 1, "temperature": 0.0, "logprobs": True,
            "logprob_token_ids": columns, "return_tokens_as_token_ids": True})
        try:
            entries = body["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
            found = {int(m.group(1)): float(e["logprob"]) for e in entries if (m := _TOKEN_ID.fullmatch(e["token"]))}
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise LLMError(f"{self.root}: unexpected logprobs in the chat completion response {str(body)[:200]}") from exc
        missing = [t for t in columns if t not in found]
        if missing:
            raise LLMError(f"{self.root} returned no log-probability for letter tokens {missing}; letter ranking "
                           "needs a vLLM server that accepts logprob_token_ids (vLLM 0.32 does)")
        return [found[t] for t in columns]

    def _letter_ids(self, num_choices: int) -> list[list[int]]:
        if num_choices not in self._letters:
            def encode(text: str) -> list[int]:
                body = self._post("/tokenize", {"model": self.model, "prompt": text, "add_special_tokens": False})
                return [int(t) for t in body["tokens"]]

            self._letters[num_choices] = letter_token_ids(encode, num_choices)
        return self._letters[num_choices]

    def _map(self, fn: Any, prompts: Sequence[Messages]) -> list[Any]:
        with ThreadPoolExecutor(max_workers=max(1, min(self.max_concurrency, len(prompts)))) as pool:
            return list(pool.map(fn, prompts))

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        url = self.root + path
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(url, data=json.dumps(payload).encode("utf-8"), headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", errors="replace")[:300]
            raise LLMError(f"LLM server {url} answered HTTP {exc.code}: {detail}") from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise LLMError(f"cannot reach the LLM server at {url} ({reason}); start one with `python -m "
                           "vllm.entrypoints.openai.api_server --model …` or check the URL") from exc
        except ValueError as exc:
            raise LLMError(f"LLM server {url} did not answer JSON ({exc})") from exc

    def __repr__(self) -> str:
        return f"OpenAICompatibleLLM(base_url={self.root!r}, model={self.model!r})"
