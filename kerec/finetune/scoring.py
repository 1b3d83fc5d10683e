"""Evaluation hook: candidate-letter log-probabilities from a tuned checkpoint, soft prompt included.

``kerec.llm`` backends take text only, so scoring with graph soft tokens lives here. The letter scoring is
the one every backend uses (:func:`kerec.llm.base.letter_token_ids`, :func:`~kerec.llm.base.renormalised_letter_logprobs`):
the probability of each candidate's letter (``"A"`` or ``" A"``) as the first answer token, renormalised
over the candidates' letters, so the 20-candidate protocol can compare the LLM before and after tuning.

>>> ranker = TunedRanker.load("finetune-runs/cpu-tiny")          # a run folder (its latest) or step-N
>>> ranker.letter_logprobs(["1", "2"], [cands_1, cands_2])       # (2, 20); history = training split
>>> ranker.joint_scores(["1", "2"], [cands_1, cands_2])          # ℓ + β·z(tuned GNN), a residual run's ranking

Two engines run the LLM: ``engine="transformers"`` (the joint model itself) and ``engine="vllm"``: the
tuned LoRA adapter served by vLLM (``enable_lora``) and each prompt sent as input embeddings
(``enable_prompt_embeds``): the text's token embeddings with the graph soft tokens spliced in, built here
by the projector and the GNN. Both give the same scores up to float error.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from kerec.data import Dataset, UnknownIdError
from kerec.finetune import checkpoint as ck
from kerec.finetune import setup
from kerec.finetune.batches import Encoded, collate, encode
from kerec.finetune.data import InstructionBuilder, InstructionSample
from kerec.finetune.errors import FinetuneError
from kerec.finetune.model import JointModel
from kerec.finetune.recipe import Recipe
from kerec.finetune.soft_prompt import serving_scores
from kerec.gnn.checkpoint import Checkpoint
from kerec.kg.store import GraphStore
from kerec.llm.base import flat_ids, letter_token_ids, renormalised_letter_logprobs


ENGINES = ("transformers", "vllm")


class TunedRanker:
    """A tuned joint model ready to score candidate lists. Build with :meth:`load` (or directly from a
    :class:`~kerec.finetune.model.JointModel` during training)."""

    def __init__(self, model: JointModel, tokenizer: Any, builder: InstructionBuilder, graph: Any, *,
                 device: str = "cpu", batch_size: int = 8, progress: bool = False, engine: Any = None) -> None:
        self.model, self.tokenizer, self.builder, self.graph = model, tokenizer, builder, graph.to(device)
        self.device, self.batch_size, self.progress = device, batch_size, progress
        self.engine = engine  # a VLLMLLM taking prompt embeddings, or None: the joint model scores
        self._letters: dict[int, list[list[int]]] = {}
        self._emb: Any = None  # the tuned GNN's embeddings, computed on first use

    @classmethod
    def load(cls, path: str | Path, *, data: str | None = None, device: str = "cpu", batch_size: int = 8,
             progress: bool = False, engine: str = "transformers", engine_kwargs: dict[str, Any] | None = None,
             dataset: Dataset | None = None, store: GraphStore | None = None) -> TunedRanker:
        """``path``: a checkpoint folder (``step-N``) or a run folder (its ``latest``); ``data``: the dataset
        folder if not the recipe's; ``engine``: "transformers" or "vllm" (``engine_kwargs`` go to
        ``vllm.LLM``). ``dataset``/``store``: that dataset and an in-process store of its KG when the caller
        has loaded them already (a :class:`~kerec.api.Recommender`), so the KG is not loaded again. Fails if
        the recipe's base LLM is not the one the checkpoint was tuned on."""
        if engine not in ENGINES:
            raise FinetuneError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
        folder = ck.resolve(path)
        state = ck.load_state(folder)
        recipe = Recipe.from_saved(state.recipe, f"{folder}/finetune.pt")
        served = None
        if engine == "vllm":  # first: vLLM's start-up scan of loaded modules must not meet bitsandbytes (peft)
            if recipe.llm.quantization is not None:
                raise FinetuneError("engine='vllm' serves the base weights in their stored dtype; a 4-bit "
                                    "(nf4) recipe is scored with engine='transformers'")
            from kerec.llm.vllm_backend import VLLMLLM

            adapter = folder / "adapter" if recipe.llm.adapter == "lora" else None
            served = VLLMLLM(recipe.llm.model, adapter=adapter, progress=progress,
                             **({"enable_prompt_embeds": True, "dtype": "float32"} | (engine_kwargs or {})))
        kg = store.to_tensors(add_inverse=True) if store is not None else None
        prepared, gnn, graph, _ = setup.from_retriever_checkpoint(Checkpoint.load(folder / "retriever.pt"),
                                                                  dataset or data or recipe.dataset.folder, kg=kg)
        base = setup.load_llm(recipe, device)
        ck.check_base(state.base_model, ck.base_identity(base.name, base.model.config), folder)
        model = setup.joint_model(replace(recipe, llm=replace(recipe.llm, gradient_checkpointing=False)), base.model, gnn)
        if model.projector is not None:
            model.projector.load_state_dict(state.projector)
        if recipe.llm.adapter == "lora":
            ck.load_adapter(model.llm, folder)
        if recipe.llm.quantization is None:
            model.to(device)
        else:  # 4-bit weights were placed at load time and cannot be moved
            gnn.to(device)
            if model.projector is not None:
                model.projector.to(device)
        model.eval()
        builder = setup.builder(recipe, prepared, gnn, graph, store=store)
        return cls(model, base.tokenizer, builder, graph, device=device, batch_size=batch_size, progress=progress,
                   engine=served)

    def samples(self, users: Sequence[str], candidates: Sequence[Sequence[str]], *,
                facts_in_prompt: int | None = None) -> list[InstructionSample]:
        """Ranking prompts for external user and item ids; the history is the user's whole training split,
        candidates lettered in the order given. ``facts_in_prompt``: facts per candidate shown as text
        (0: none; None: as tuned, see :meth:`InstructionBuilder.ranking_parts`)."""
        builder = self.builder
        out = []
        for u, items in self._indices(users, candidates):
            history = builder.history.get(u, [])
            parts = builder.ranking_parts(u, history, items, facts=facts_in_prompt)
            out.append(InstructionSample("ranking", u, -1, tuple(history), tuple(items), parts.facts, parts.messages, ""))
        return out

    def _indices(self, users: Sequence[str], candidates: Sequence[Sequence[str]]) -> list[tuple[int, list[int]]]:
        """Each user's index and its candidates' item indices; unknown ids fail, named."""
        if len(users) != len(candidates):
            raise FinetuneError(f"{len(users)} users but {len(candidates)} candidate lists")
        ds = self.builder.dataset
        projector = self.model.projector
        slots = projector.max_candidates if projector is not None and projector.candidate_tokens else None
        out = []
        for user, cands in zip(users, candidates):
            if slots is not None and len(cands) > slots:
                raise FinetuneError(f"{len(cands)} candidates, but this model was tuned with at most {slots} "
                                    "(data.candidates): its soft prompt has one slot per candidate")
            if user not in ds.users:
                raise UnknownIdError("user", user, "not in the dataset the model was tuned on")
            missing = [c for c in cands if c not in ds.items]
            if missing:
                raise UnknownIdError("item", missing[0], f"{len(missing)} candidate(s) are not in the catalogue")
            out.append((ds.users.index(user), [ds.items.index(c) for c in cands]))
        return out

    @property
    def text_facts(self) -> int:
        """Facts per candidate for the facts-as-text rows: the recipe's ``data.facts_in_prompt``, at least 1."""
        return max(1, self.builder.config.facts_in_prompt)

    def letter_logprobs(self, users: Sequence[str], candidates: Sequence[Sequence[str]], *, soft_prompt: bool = True,
                        facts_in_prompt: int | None = None) -> np.ndarray:
        """shape: (len(users), C) float64, C the longest list; each row a log-distribution over the letters of
        its candidates (shorter lists: -inf beyond their length). ``soft_prompt=False`` scores without graph
        tokens (text only), for the ablation."""
        return self.score(self.samples(users, candidates, facts_in_prompt=facts_in_prompt), soft_prompt=soft_prompt)

    @property
    def residual(self) -> float:
        """β of the residual letter loss the model was tuned with (``train.residual``; 0: none)."""
        return self.model.residual

    def gnn_scores(self, users: Sequence[str], candidates: Sequence[Sequence[str]]) -> np.ndarray:
        """shape: (len(users), C) float64 — the tuned GNN's retrieval score of each candidate (its item–item
        head included when fitted), standardised over the row: the ``z`` of the residual loss
        (:func:`~kerec.finetune.soft_prompt.serving_scores`); -inf beyond a shorter list's length."""
        rows = self._indices(users, candidates)
        width = max(len(c) for _, c in rows)
        items = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.bool)
        for row, (_, cands) in enumerate(rows):
            items[row, : len(cands)] = torch.tensor(cands, dtype=torch.long)
            mask[row, : len(cands)] = True
        with torch.inference_mode():
            if self._emb is None:
                self._emb = self.model.gnn(self.graph)
            z = serving_scores(self._emb, torch.tensor([u for u, _ in rows]).to(self.device), items.to(self.device),
                               mask.to(self.device)).double().cpu()
        return z.masked_fill(~mask, float("-inf")).numpy()

    def joint_scores(self, users: Sequence[str], candidates: Sequence[Sequence[str]]) -> np.ndarray:
        """shape: (len(users), C) — the ranking a residual run was trained for: the soft-prompt letter
        log-probabilities plus β times :meth:`gnn_scores` (the softmax over letters of ``ℓ + β·z``, up to a
        per-row constant). Fails for a model tuned without ``train.residual``."""
        if self.residual <= 0:
            raise FinetuneError("joint scores need a model tuned with the residual letter loss (train.residual > 0); "
                                "this one was not: fuse its letter scores with a GNN instead (eval system 'fused')")
        return self.letter_logprobs(users, candidates) + self.residual * self.gnn_scores(users, candidates)

    def score(self, samples: Sequence[InstructionSample], *, soft_prompt: bool = True) -> np.ndarray:
        """Letter log-probabilities of ranking ``samples`` (see :meth:`letter_logprobs`); without the soft
        prompt, an inline prompt's placeholders are dropped from the text."""
        width = max(len(s.items) for s in samples)
        out = np.full((len(samples), width), -np.inf)
        soft = soft_prompt and self.model.projector is not None
        encoded = [encode(self.tokenizer, s, with_answer=False, soft=soft) for s in samples]
        order = sorted(range(len(samples)), key=lambda i: len(encoded[i].prompt))
        starts = range(0, len(order), self.batch_size)
        for start in tqdm(starts, desc="tuned LLM ranking", disable=not self.progress or len(starts) <= 1):
            rows = order[start:start + self.batch_size]
            self._score_rows(rows, [encoded[i] for i in rows], out, soft)
        return out

    def _score_rows(self, rows: list[int], encoded: list[Encoded], out: np.ndarray, soft: bool) -> None:
        batch = collate(encoded, self.tokenizer.pad_token_id).to(self.device)
        if self.engine is not None:
            with torch.inference_mode():
                embeds = self.model.prompt_embeddings(self.graph, batch, soft_prompt=soft)
            scored = self.engine.letter_logprobs_embedded([e.float() for e in embeds], [len(e.items) for e in encoded])
            for row, enc, lp in zip(rows, encoded, scored):
                out[row, : len(enc.items)] = lp
            return
        with torch.inference_mode():
            logits = self.model.logits(self.graph, batch, 1, soft_prompt=soft)[:, -1].float()
        logp = torch.log_softmax(logits, -1).cpu()
        for row, enc, lp in zip(rows, encoded, logp):
            letters = self._letter_ids(len(enc.items))
            cols = torch.tensor(flat_ids(letters))
            out[row, : len(enc.items)] = renormalised_letter_logprobs(lp[cols].numpy()[None], letters)[0]

    def _letter_ids(self, n: int) -> list[list[int]]:
        if n not in self._letters:
            self._letters[n] = letter_token_ids(lambda t: self.tokenizer.encode(t, add_special_tokens=False), n)
        return self._letters[n]
