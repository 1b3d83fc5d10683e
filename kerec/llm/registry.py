"""``load_llm(spec)``: one string names a backend and a model (for config files and the command line)."""
from __future__ import annotations

from typing import Any

from kerec.llm.base import LLM, LLMError
from kerec.llm.default_model import DEFAULT_MODEL

SPECS = ("auto", "default[@adapter]", "default+int8", "default+bf16", "transformers:<model id or folder>[@adapter][+int8|+nf4|+bf16]",
         "vllm:<model id or folder>[@adapter]", "openai:<url>#<model>")


def load_llm(spec: str, **options: Any) -> LLM:
    """The backend a spec names; ``options`` go to its constructor (``device=``, ``batch_size=``…).

    ``"auto"`` — ``"default+bf16"`` on a CPU that computes bf16 natively (same ranking as float32: same top
    letter on 20 of 20 prompts, Spearman 0.995; twice as fast), else ``"default"`` (:func:`auto_spec`);
    ``"default"`` — SmolLM2-135M-Instruct with transformers on CPU, float32; ``"transformers:<id or path>"``;
    ``"vllm:<id or path>"`` (``vllm:default`` is the converted SmolLM2); ``"openai:<url>#<model>"`` — a
    vLLM OpenAI-compatible server at ``url`` serving ``model``. A transformers spec may end in ``+int8``
    (CPU dynamic int8), ``+nf4`` (bitsandbytes 4-bit) or ``+bf16`` (bfloat16 weights and activations; on
    CPUs with AVX512-BF16 about as fast as int8 and closer to float32): ``default+int8`` is the quantized SmolLM2.
    ``@<folder>`` after a transformers or vLLM model applies a LoRA adapter (a ``kerec finetune`` step's
    ``adapter/``): ``default@runs/ft/step-20/adapter+int8``, ``vllm:default@runs/ft/step-20/adapter``.
    """
    if spec == "auto":
        spec = auto_spec()
    base, plus, quant = spec.rpartition("+")
    if plus and quant in ("int8", "nf4", "bf16") and (base.startswith(DEFAULT_MODEL) or base.startswith("transformers:")):
        options = ({"dtype": "bfloat16"} if quant == "bf16" else {"quantization": quant}) | options
        spec = base
    if not spec.startswith("openai:") and "@" in spec:
        spec, _, adapter = spec.partition("@")
        if not adapter:
            raise LLMError(f"LLM spec {spec + '@'!r} names no adapter folder after '@'")
        options = {"adapter": adapter} | options
    backend, _, rest = spec.partition(":")
    if spec == DEFAULT_MODEL:
        backend, rest = "transformers", DEFAULT_MODEL
    elif backend not in ("transformers", "vllm", "openai") or not rest:
        raise LLMError(f"unknown LLM spec {spec!r}; expected one of: {', '.join(SPECS)}")
    if backend == "transformers":
        from kerec.llm.transformers_backend import TransformersLLM

        return TransformersLLM(rest, **options)
    if backend == "vllm":
        from kerec.llm.vllm_backend import VLLMLLM

        return VLLMLLM(rest, **options)
    url, _, model = rest.rpartition("#")
    if not url or not model:
        raise LLMError(f"LLM spec {spec!r} lacks the model: write openai:<url>#<model>, "
                       "e.g. openai:http://127.0.0.1:8000#SmolLM2")
    from kerec.llm.openai_backend import OpenAICompatibleLLM

    return OpenAICompatibleLLM(url, model, **options)


def auto_spec() -> str:
    """What ``"auto"`` loads here: ``"default+bf16"`` where the CPU computes bf16 natively, else ``"default"``."""
    return "default+bf16" if cpu_has_bf16() else "default"


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 / AMX, as oneDNN reports)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
