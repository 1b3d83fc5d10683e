"""Choosing the fusion weight on the validation split, and saving it with the checkpoint it belongs to.

Protocol (LLaRA / K-RagRec's 20 candidates; the very tasks ``kerec eval``'s ``candidates`` section draws,
:mod:`kerec.metrics.candidates`): for up to ``users`` validation users, one of their validation items plus
``negatives`` recommendable items they never interacted with, shuffled; the history shown is the training
split only. GNN and LLM score each
list (:meth:`~kerec.api.Recommender.score_candidates`), and :func:`kerec.fusion.choose_weight` keeps the
weight with the best ACC (ties: the smaller). ``kerec train fusion`` runs it and writes the choice into the
retriever checkpoint (:class:`~kerec.gnn.checkpoint.FusionChoice`), which ``Recommender.load`` reads back.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tqdm.auto import tqdm

from kerec import fusion
from kerec.api.recommender import Recommender
from kerec.errors import KerecError
from kerec.gnn.checkpoint import Checkpoint, FusionChoice
from kerec.metrics.candidates import negative_tasks, rank_metrics, sample_users


def choose_fusion_weight(rec: Recommender, llm_spec: str, *, users: int = 300, negatives: int = 19, seed: int = 2020,
                         batch: int = 8, progress: bool = True) -> tuple[FusionChoice, dict[str, float]]:
    """The weight for ``rec``'s LLM (named ``llm_spec`` in the saved choice) on the validation tasks ``kerec
    eval`` draws (:mod:`kerec.metrics.candidates`), and the sweep of validation ACC by weight."""
    if rec.llm is None:
        raise KerecError("choosing a fusion weight needs an LLM: load the Recommender with llm=...")
    if not 1 <= negatives <= 19:
        raise KerecError(f"negatives must be between 1 and 19 (20 letters), got {negatives}")
    rec = rec.with_settings(history="train")  # the held-out item must not be in the history shown
    tasks = negative_tasks(rec.prepared, "valid", sample_users(rec.prepared, "valid", users, seed), seed, negatives)
    if not tasks:
        raise KerecError("no validation user with a held-out item: the split has an empty validation part")
    ext_user, ext_item = rec.dataset.users.external, rec.dataset.items.external
    scored = []
    for start in tqdm(range(0, len(tasks), batch), desc="validation: fusion weight", unit="batch", disable=not progress):
        chunk = tasks[start:start + batch]
        scored.extend(rec.score_candidates([ext_user(t.user) for t in chunk],
                                           [[ext_item(int(i)) for i in t.items] for t in chunk]))
    weight, sweep = fusion.choose_weight([s.gnn for s in scored], [s.llm for s in scored],
                                         lambda rows: float(rank_metrics(rows, tasks)["acc"].mean()))
    choice = FusionChoice(weight=weight, llm=llm_spec, chosen_on=f"valid, {negatives + 1} candidates, seed {seed}",
                          valid_acc=sweep[str(weight)], users=len(tasks))
    return choice, sweep


def save_fusion_choice(checkpoint: str | Path, choice: FusionChoice) -> Path:
    """Write ``choice`` into the retriever checkpoint (atomically; its weights are untouched)."""
    return replace(Checkpoint.load(checkpoint), fusion=choice).save(checkpoint)
