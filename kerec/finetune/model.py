"""The jointly trained model: the LLM (frozen, LoRA, or QLoRA), the soft-prompt projector and the GNN.

:class:`JointModel` is a plain ``nn.Module`` holding the three as submodules, so one optimiser covers all
trainable parameters and accelerate/DDP wrap it unchanged. Its ``forward`` returns the three losses;
the trainer weighs them: ``L = L_LLM + λ_R·L_R + λ_K·L_K``. ``L_LLM`` reaches the GNN through the soft
prompt (the projector reads the GNN's differentiable user, item and fact vectors).

With ``residual`` β > 0, a ranking row's answer letter is trained on ``ℓ + β·z`` — ``ℓ`` the letter logits
at the answer position restricted to the row's candidates, ``z`` their retrieval scores as the GNN ranks with
them (with its item–item head when fitted), standardised over the row
(:func:`~kerec.finetune.soft_prompt.serving_scores`) — instead of the full-vocabulary logits: the LLM is
trained for the fused ranking (GNN + LLM) and learns what the retriever misses rather than copying it.
The answer's other tokens (the end-of-turn marker) keep their full-vocabulary cross-entropy.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kerec.finetune.batches import Batch
from kerec.finetune.errors import FinetuneError
from kerec.finetune.graph_features import graph_inputs
from kerec.finetune.soft_prompt import PLACEMENTS, GraphSoftPrompt, fill_slots, serving_scores, splice
from kerec.gnn.graph import TrainingGraph
from kerec.gnn.models import Embeddings, KnowledgeRetriever
from kerec.gnn.train import bpr_loss

ADAPTERS = ("lora", "frozen")


class JointModel(nn.Module):
    """``llm``: a causal LM (transformers or peft-wrapped) exposing ``get_input_embeddings()``;
    ``gnn``: kerec's retriever; ``projector``: the soft prompt, or None for text-only prompts;
    ``placement``: where the soft tokens go, ``"prefix"`` (before the text) or ``"inline"`` (at the
    prompt's placeholder positions, ``batch.slots``); ``residual`` β ≥ 0 with ``letter_ids`` (shape (C,),
    the token id of each candidate letter as the answer spells it) for the residual letter loss: training
    with β > 0 needs them, scoring (:meth:`logits`) does not."""

    def __init__(self, *, llm: nn.Module, gnn: KnowledgeRetriever, projector: GraphSoftPrompt | None,
                 placement: str = "prefix", residual: float = 0.0, letter_ids: Sequence[int] | None = None) -> None:
        super().__init__()
        if placement not in PLACEMENTS:
            raise FinetuneError(f"unknown soft-prompt placement {placement!r}; choose one of {', '.join(PLACEMENTS)}")
        self.llm, self.gnn, self.projector, self.placement = llm, gnn, projector, placement
        self.residual = float(residual)
        self.register_buffer("letter_ids", torch.tensor(list(letter_ids or []), dtype=torch.long), persistent=False)

    def inputs(self, graph: TrainingGraph, batch: Batch, emb: Embeddings | None = None, *,
               soft_prompt: bool = True) -> tuple[Tensor, Tensor]:
        """The LLM's input embeddings (B, L', D) and attention mask (B, L'): the text's token embeddings
        with the soft prompt spliced in — before the text (prefix: L' = k + L) or at the placeholder
        positions (inline: L' = L) — or the text alone without a projector or with ``soft_prompt=False``
        (L' = L). The model is never changed by a call, so concurrent callers may differ in ``soft_prompt``."""
        text = self.llm.get_input_embeddings()(batch.input_ids)
        mask = batch.attention_mask
        projector = self.projector if soft_prompt else None
        inline = projector is not None and self.placement == "inline"
        if not inline and bool((batch.slots >= 0).any()):
            # Placeholder positions hold pad ids: read as text they would silently corrupt the prompt.
            raise FinetuneError(f"the prompts hold soft-token placeholders, but the model has "
                                f"{'no soft prompt' if projector is None else 'prefix placement'}; "
                                "use placement 'inline', or encode with soft=False to drop them")
        if projector is None:
            return text, mask
        with self._graph_precision():
            emb = emb if emb is not None else self.gnn(graph)
            knowledge = self.gnn.knowledge(graph)
        soft, soft_mask = projector(graph_inputs(self.gnn, graph, emb, knowledge, batch.users, batch.items,
                                                      batch.item_mask, batch.facts, batch.fact_mask,
                                                      batch.recent, batch.recent_mask))
        if not inline:
            return splice(soft, soft_mask, text, mask)
        return fill_slots(soft, soft_mask, text, batch.slots), mask

    def prompt_embeddings(self, graph: TrainingGraph, batch: Batch, *, soft_prompt: bool = True) -> list[Tensor]:
        """Each row's unpadded input embeddings, shape (n_b, D): what an engine that takes prompt
        embeddings (vLLM's ``prompt_embeds``) needs to reproduce :meth:`logits` — masked positions (padding,
        masked soft tokens) take no position there either."""
        text, mask = self.inputs(graph, batch, soft_prompt=soft_prompt)
        return [row[m.bool()] for row, m in zip(text, mask)]

    def logits(self, graph: TrainingGraph, batch: Batch, keep: int, emb: Embeddings | None = None, *,
               soft_prompt: bool = True) -> Tensor:
        """shape: (B, keep, V) — next-token logits at the last ``keep`` positions of each row, with the
        soft prompt spliced in (:meth:`inputs`). ``emb``: this step's ``gnn(graph)`` if already computed."""
        text, mask = self.inputs(graph, batch, emb, soft_prompt=soft_prompt)
        # Left padding shifts real tokens right; positions count real tokens only (as at inference).
        positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
        out = self.llm(inputs_embeds=text, attention_mask=mask, position_ids=positions, logits_to_keep=keep)
        return out.logits

    def forward(self, graph: TrainingGraph, batch: Batch, bpr: Sequence[Tensor] | None = None,
                kg: Sequence[Tensor] | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """``(L_LLM, L_R, L_K)``. ``bpr``: (users (n,), positives (n,), negatives (n, K)) for BPR over the
        GNN's embeddings; ``kg``: (triples (m, 3), corrupted tails (m,)) for the KG loss; either may be
        None (its loss is 0). L_LLM is the mean cross-entropy over answer tokens only."""
        answer = batch.labels.shape[1]
        with self._graph_precision():
            needed = self.projector is not None or bpr is not None or self.residual > 0
            emb = self.gnn(graph) if needed else None
        logits = self.logits(graph, batch, answer + 1, emb)[:, :-1].float()
        if self.residual > 0:
            l_llm = self._residual_loss(logits, batch, emb)
        else:
            l_llm = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.labels.reshape(-1), ignore_index=-100)
        zero = l_llm.new_zeros(())
        with self._graph_precision():
            l_r = bpr_loss(emb, *bpr) if bpr is not None else zero
            l_k = self.gnn.kg_loss(graph, *kg) if kg is not None else zero
        return l_llm, l_r, l_k

    def _residual_loss(self, logits: Tensor, batch: Batch, emb: Embeddings) -> Tensor:
        """Mean cross-entropy over answer tokens, a ranking row's letter scored over its candidates' letters
        by ``ℓ + β·z`` (see the module docstring). ``logits`` (B, A, V) predict ``batch.labels`` (B, A)."""
        labels = batch.labels
        valid = labels != -100
        per_token = F.cross_entropy(logits.transpose(1, 2), labels.clamp(min=0), reduction="none")
        ranking = batch.item_mask.sum(-1) > 1  # explanation rows name one item
        if bool(ranking.any()):
            rows = ranking.nonzero().squeeze(-1)
            first = valid.long().argmax(-1)[rows]  # the answer's first token: the letter
            c = batch.items.shape[1]
            if c > self.letter_ids.numel():  # none: built without a tokenizer (for scoring, not training)
                raise FinetuneError(f"{c} candidates, but the residual loss (train.residual) knows "
                                    f"{self.letter_ids.numel()} letters' token ids; build the model with the tokenizer")
            letters = self.letter_ids[:c]
            letter_logits = logits[rows, first][:, letters]
            with self._graph_precision():
                z = serving_scores(emb, batch.users[rows], batch.items[rows], batch.item_mask[rows])
            fused = (letter_logits + self.residual * z).masked_fill(~batch.item_mask[rows], float("-inf"))
            target = labels[rows, first].unsqueeze(-1) == letters
            if not bool(target.any(-1).all()):
                raise FinetuneError("a ranking answer does not start with a candidate letter's token; the residual "
                                    "loss needs answers the tokenizer spells as one letter token (train.residual: 0)")
            per_token = per_token.index_put((rows, first), F.cross_entropy(fused, target.float().argmax(-1),
                                                                            reduction="none"))
        return (per_token * valid).sum() / valid.sum().clamp(min=1)

    def _graph_precision(self) -> torch.autocast:
        """The GNN runs in float32 under mixed precision (``train.mixed_precision``): its sparse products
        have no bf16 kernel on CPU, and a model this small gains nothing from half precision; only the
        LLM (and the projector feeding it) runs under autocast."""
        return torch.autocast(next(self.gnn.parameters()).device.type, enabled=False)


def wrap_llm(model: Any, *, adapter: str, quantized: bool, lora_r: int = 8, lora_alpha: int = 16,
             lora_dropout: float = 0.05, target_modules: Sequence[str] = ("q_proj", "k_proj", "v_proj", "o_proj"),
             gradient_checkpointing: bool = False) -> nn.Module:
    """The LLM ready to train: ``adapter="lora"`` adds peft LoRA adapters (after
    ``prepare_model_for_kbit_training`` when ``quantized``: QLoRA); ``"frozen"`` freezes every weight
    (only the projector and the GNN learn)."""
    if adapter not in ADAPTERS:
        raise FinetuneError(f"unknown adapter {adapter!r}; choose one of {', '.join(ADAPTERS)}")
    if adapter == "frozen":
        for p in model.parameters():
            p.requires_grad_(False)
        if gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        return model
    try:
        from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    except ImportError as exc:
        raise FinetuneError(f"LoRA needs peft ({exc}); run `pip install peft`") from exc
    if quantized:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
    elif gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    missing = [m for m in target_modules if m not in names]
    if missing:
        raise FinetuneError(f"llm.target_modules {missing} are not modules of this model; it has e.g. "
                            f"{sorted(n for n in names if n.endswith('proj'))[:12]}")
    config = LoraConfig(r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
                        target_modules=list(target_modules), task_type="CAUSAL_LM")
    return get_peft_model(model, config)
