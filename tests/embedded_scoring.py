"""The reference for scoring prompts given as input embeddings: each prompt alone, unpadded, positions
0..n-1 (as vLLM's ``prompt_embeds`` does), letters renormalised as every kerec backend does."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from kerec.llm.base import flat_ids, letter_token_ids, renormalised_letter_logprobs


def embedded_letter_logprobs(model: Any, tokenizer: Any, embeds: list[torch.Tensor], num_choices: list[int]) -> list[np.ndarray]:
    """Row ``i``: a log-distribution over ``num_choices[i]`` letters for the prompt ``embeds[i]`` (n, hidden)."""
    out = []
    for e, n in zip(embeds, num_choices):
        letters = letter_token_ids(lambda t: tokenizer.encode(t, add_special_tokens=False), n)
        with torch.no_grad():
            logits = model(inputs_embeds=e[None]).logits[0, -1].float()
        out.append(renormalised_letter_logprobs(torch.log_softmax(logits, -1)[flat_ids(letters)].numpy()[None], letters)[0])
    return out
