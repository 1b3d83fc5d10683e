"""TransformersLLM on the real default model, SmolLM2-135M-Instruct, on CPU.

The first run converts the packaged GGUF into ``$KEREC_HOME/models/`` (~40-80 s on 2 cores); later runs
load the converted folder (~1-2 s). Prompts are kept short: every forward pass here is a real one.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from kerec.llm import LLMError, TransformersLLM, default_model_dir, load_llm
from kerec.llm.default_model import _MARKER

pytestmark = pytest.mark.slow


def chat(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def llm() -> Iterator[TransformersLLM]:
    import torch

    # These forward passes are tiny; on a small shared CI box several OpenMP threads contend for the
    # cores and run several times slower than one.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield TransformersLLM(batch_size=4, progress=False)
    torch.set_num_threads(threads)


def test_default_is_the_converted_smollm2(llm: TransformersLLM) -> None:
    assert llm.name == "SmolLM2-135M-Instruct.Q4_1" and llm.source == default_model_dir()
    assert (llm.source / "model.safetensors").is_file() and (llm.source / "tokenizer.json").is_file()
    assert llm.model.config.num_hidden_layers == 30 and llm.tokenizer.padding_side == "left"


def test_each_letter_has_its_bare_and_spaced_token(llm: TransformersLLM) -> None:
    ids = llm._letter_ids(20)
    assert ids[0] == sorted([llm.tokenizer.convert_tokens_to_ids("A"), llm.tokenizer.encode(" A")[0]])
    assert all(len(v) == 2 for v in ids) and len({t for v in ids for t in v}) == 40


def test_letter_logprobs_are_normalised_deterministic_and_independent_of_batching(llm: TransformersLLM) -> None:
    prompts = [chat("Pick A, B or C."), chat("Which letter do you like best among A, B, C, D and E? One letter."),
               chat("Say a letter.")]
    out = llm.letter_logprobs(prompts, 5)
    assert out.shape == (3, 5) and out.dtype == np.float64 and np.isfinite(out).all()
    np.testing.assert_allclose(np.exp(out).sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_array_equal(llm.letter_logprobs(prompts, 5), out)
    # Left padding with corrected positions: a prompt scores the same alone and padded in a batch.
    alone = np.concatenate([llm.letter_logprobs([p], 5) for p in prompts])
    np.testing.assert_allclose(alone, out, atol=1e-4)


def test_letter_logprobs_match_a_direct_computation(llm: TransformersLLM) -> None:
    import torch

    prompt = chat("Answer with one letter: A, B or C?")
    ids = llm.tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        logp = torch.log_softmax(llm.model(**ids).logits[0, -1].double(), dim=-1)
    per_letter = torch.stack([torch.logsumexp(logp[[llm.tokenizer.encode(x)[0], llm.tokenizer.encode(" " + x)[0]]], 0)
                              for x in "ABC"])
    expected = (per_letter - torch.logsumexp(per_letter, 0)).numpy()
    np.testing.assert_allclose(llm.letter_logprobs([prompt], 3)[0], expected, atol=1e-5)


def test_the_letter_a_prompt_asks_for_wins(llm: TransformersLLM) -> None:
    # SmolLM2-135M leans to "A" whatever the question; asked to repeat a letter, it does (p≈0.5-0.6 here).
    out = llm.letter_logprobs([chat(f"Repeat exactly this letter: {x}") for x in "BCDE"], 5)
    assert list(out.argmax(axis=1)) == [1, 2, 3, 4]


def test_generate_is_deterministic_at_temperature_zero_and_batch_independent(llm: TransformersLLM) -> None:
    prompts = [chat("What is the capital of France? Answer in one word."), chat("Say hello.")]
    out = llm.generate(prompts, max_new_tokens=8)
    assert all(isinstance(t, str) and t for t in out) and "Paris" in out[0]
    assert llm.generate(prompts, max_new_tokens=8) == out
    assert [llm.generate([p], max_new_tokens=8)[0] for p in prompts] == out


def test_sampling_is_seeded_and_leaves_the_global_rng_alone(llm: TransformersLLM) -> None:
    import torch

    state = torch.random.get_rng_state()
    prompt = [chat("Write a short sentence about cats.")]
    first = llm.generate(prompt, max_new_tokens=8, temperature=1.2, seed=7)
    assert llm.generate(prompt, max_new_tokens=8, temperature=1.2, seed=7) == first
    assert torch.equal(torch.random.get_rng_state(), state)


def test_bad_arguments_are_named(llm: TransformersLLM) -> None:
    with pytest.raises(LLMError, match="num_choices must be between 1 and 20"):
        llm.letter_logprobs([chat("x")], 0)
    with pytest.raises(LLMError, match="max_new_tokens must be a positive integer"):
        llm.generate([chat("x")], max_new_tokens=0)
    with pytest.raises(LLMError, match="unknown quantization 'int3'"):
        TransformersLLM(quantization="int3")
    with pytest.raises(LLMError, match=r"cannot load LLM '/nonexistent/model'.*'default', a local model folder"):
        TransformersLLM("/nonexistent/model")


def test_the_conversion_is_reused(llm: TransformersLLM) -> None:
    files = [llm.source / "model.safetensors", llm.source / _MARKER]
    before = [f.stat().st_mtime_ns for f in files]
    again = load_llm("default", progress=False)
    assert isinstance(again, TransformersLLM) and again.source == llm.source
    assert [f.stat().st_mtime_ns for f in files] == before
    assert json.loads(files[1].read_text())["gguf"] == "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_a_missing_or_stale_conversion_is_not_trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      llm: TransformersLLM) -> None:
    monkeypatch.setenv("KEREC_HOME", str(tmp_path))
    with pytest.raises(LLMError, match="holds no current conversion"):
        default_model_dir(convert=False)
    stale = tmp_path / "models" / llm.source.name
    stale.mkdir(parents=True)
    (stale / _MARKER).write_text(json.dumps({"gguf": "SmolLM2-135M-Instruct.Q4_1.gguf", "size": 1}))
    with pytest.raises(LLMError, match="holds no current conversion"):
        default_model_dir(convert=False)


def test_nf4_runs_on_cpu_close_to_float32(llm: TransformersLLM) -> None:
    # bitsandbytes' CPU path is slow; one short prompt. NF4 rounds the weights, so compare loosely.
    quantized = TransformersLLM(quantization="nf4", progress=False)
    prompt = [chat("Answer with the letter B. Options: A, B, C, D.")]
    assert quantized.name.endswith("+nf4")
    assert type(quantized.model.model.layers[0].mlp.up_proj).__name__ == "Linear4bit"
    q, f = np.exp(quantized.letter_logprobs(prompt, 4)), np.exp(llm.letter_logprobs(prompt, 4))
    np.testing.assert_allclose(q.sum(), 1.0, atol=1e-9)
    assert np.abs(q - f).max() < 0.15


def test_int8_is_quantized_close_to_float32_and_cpu_only(llm: TransformersLLM) -> None:
    quantized = load_llm("default+int8", progress=False)
    assert isinstance(quantized, TransformersLLM) and quantized.name.endswith("+int8")
    assert type(quantized.model.model.layers[0].mlp.up_proj).__name__ == "Linear"  # the dynamic int8 module
    assert type(quantized.model.model.layers[0].mlp.up_proj).__module__.startswith("torch.ao.nn.quantized")
    prompts = [chat(f"Repeat exactly this letter: {x}") for x in "BCDE"]
    q, f = quantized.letter_logprobs(prompts, 5), llm.letter_logprobs(prompts, 5)
    np.testing.assert_allclose(np.exp(q).sum(axis=1), 1.0, atol=1e-9)
    assert list(q.argmax(axis=1)) == list(f.argmax(axis=1)) == [1, 2, 3, 4]
    # int8 rounding moves some probability mass (total variation 0.03–0.26 on these prompts), never the answer.
    assert (0.5 * np.abs(np.exp(q) - np.exp(f)).sum(axis=1)).max() < 0.35
    assert quantized.generate([chat("Say hello.")], max_new_tokens=8)[0]
    with pytest.raises(LLMError, match="CPU only"):
        TransformersLLM(quantization="int8", device="cuda")


def test_bf16_is_named_and_close_to_float32(llm: TransformersLLM) -> None:
    import torch

    half = load_llm("default+bf16", progress=False)
    assert isinstance(half, TransformersLLM) and half.name.endswith("+bf16") and not llm.name.endswith("+bf16")
    assert half.model.model.layers[0].mlp.up_proj.weight.dtype == torch.bfloat16
    prompts = [chat(f"Repeat exactly this letter: {x}") for x in "BCDE"]
    h, f = half.letter_logprobs(prompts, 5), llm.letter_logprobs(prompts, 5)
    np.testing.assert_allclose(np.exp(h).sum(axis=1), 1.0, atol=1e-9)
    assert list(h.argmax(axis=1)) == list(f.argmax(axis=1)) == [1, 2, 3, 4]
    # Closer to float32 than int8 is: total variation 0.003–0.03 on these prompts (int8: up to 0.26).
    assert (0.5 * np.abs(np.exp(h) - np.exp(f)).sum(axis=1)).max() < 0.1


def test_a_lora_adapter_is_merged_and_matches_peft(llm: TransformersLLM, tmp_path: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model

    # A random adapter (B not zero-initialised), so that it changes the answers.
    torch.manual_seed(0)
    base = TransformersLLM(progress=False)
    peft_model = get_peft_model(base.model, LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj"],
                                                       init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "adapter")
    prompts = [chat(f"Repeat exactly this letter: {x}") for x in "BCDE"]
    base.model = peft_model.eval()
    want = base.letter_logprobs(prompts, 5)
    tuned = load_llm(f"default@{tmp_path / 'adapter'}", progress=False)
    assert tuned.name.endswith(f"@{tmp_path / 'adapter'}")
    got = tuned.letter_logprobs(prompts, 5)
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert np.abs(got - llm.letter_logprobs(prompts, 5)).max() > 0.05  # the adapter does change the scores
