"""Joint training: ``L = L_LLM (answer tokens) + λ_R·L_R (BPR) + λ_K·L_K (KG loss)``, one optimiser over the
LoRA adapters, the soft-prompt projector and the GNN, launched through accelerate.

The same code runs on one CPU, one GPU, or several (``accelerate launch -m kerec.finetune --recipe …``):
the model is wrapped, not changed; each process takes its strided share of every step's micro-batches.
Micro-batch order and the BPR/KG draws of a step are functions of (seed, epoch, step), so a resumed run
continues exactly where the checkpoint left off.
"""
from __future__ import annotations

import time
import warnings
from contextlib import nullcontext
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from kerec.finetune import checkpoint as ck
from kerec.finetune import setup
from kerec.finetune.batches import Batch, Encoded, collate, encode
from kerec.finetune.errors import FinetuneError
from kerec.finetune.model import JointModel
from kerec.finetune.recipe import Recipe, TrainSection
from kerec.gnn.checkpoint import Checkpoint
from kerec.gnn.graph import TrainingGraph
from kerec.gnn.sampling import NegativeSampler
from kerec.llm.registry import cpu_has_bf16


@dataclass(frozen=True)
class StepLog:
    step: int
    loss: float
    loss_llm: float
    loss_r: float
    loss_k: float
    seconds: float  # wall time of this optimiser step (all its micro-batches)


@dataclass
class FinetuneResult:
    out: Path
    checkpoint: Path | None
    steps: int
    history: list[StepLog] = field(default_factory=list)
    samples: int = 0
    dropped: int = 0  # samples longer than train.max_length

    @property
    def seconds_per_step(self) -> float:
        return float(np.median([h.seconds for h in self.history])) if self.history else 0.0


StepCallback = Callable[[StepLog], None]


def effective_precision(requested: str) -> str:
    """``train.mixed_precision`` as run here: bf16 on a CPU without native bf16 is emulated: a cpu-tiny
    step took ~330 s on an AVX2-only EPYC, against 3.8 s with AVX512-BF16 and ~2x that in float32, so it falls back to
    float32 with a warning; on CUDA, or with native bf16, the recipe's choice stands."""
    if requested == "bf16" and not torch.cuda.is_available() and not cpu_has_bf16():
        warnings.warn("train.mixed_precision 'bf16': this CPU has no native bf16 (AVX512-BF16/AMX), where bf16 "
                      "autocast is emulated and far slower than float32; training in float32", stacklevel=2)
        return "no"
    return requested


def finetune(recipe: Recipe, *, resume: str | Path | None = None, progress: bool = True,
             callbacks: Sequence[StepCallback] = ()) -> FinetuneResult:
    """Run ``recipe``; with ``resume`` (a checkpoint or run folder) continue from its step. Writes
    checkpoints, ``samples.jsonl`` and TensorBoard logs under ``recipe.out``."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, set_seed

    out = Path(recipe.out)
    tr = recipe.train
    # Accumulation is done here (no_sync on all but the last micro-batch), not by accelerate: each process
    # takes its share of a step's micro-batches, so its count depends on the number of processes.
    acc = Accelerator(mixed_precision=effective_precision(tr.mixed_precision),
                      log_with="tensorboard", project_dir=str(out),
                      kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    set_seed(tr.seed)
    if tr.grad_accum < acc.num_processes:
        raise FinetuneError(f"train.grad_accum {tr.grad_accum} is below the {acc.num_processes} processes: every "
                            "process needs at least one micro-batch per step; raise train.grad_accum")
    start = ck.resolve(resume) if resume is not None else None
    if start is not None:
        saved = ck.load_state(start)
        prepared, gnn, graph, template = setup.from_retriever_checkpoint(
            Checkpoint.load(start / "retriever.pt"), recipe.dataset.folder)
    else:
        saved = None
        prepared, gnn, graph, template = setup.retriever(recipe, progress=progress and acc.is_main_process)
    cache = out / "samples.jsonl"
    if start is not None and (start.parent / "samples.jsonl").is_file():
        # The samples of the run being resumed (rebuilding them would rank evidence with the tuned GNN).
        cache = start.parent / "samples.jsonl"
    samples = setup.samples(recipe, prepared, gnn, graph, cache, progress=progress and acc.is_main_process)
    device = str(acc.device) if recipe.llm.quantization is None else f"cuda:{acc.local_process_index}"
    base = setup.load_llm(recipe, device)
    identity = ck.base_identity(base.name, base.model.config)
    if saved is not None:
        ck.check_base(saved.base_model, identity, start)
    model = setup.joint_model(recipe, base.model, gnn, base.tokenizer)
    model.gnn.to(acc.device)
    if model.projector is not None:
        model.projector.to(acc.device)
    if saved is not None:
        _restore(model, saved, start)
    encoded, kinds, dropped = _encode_all(base.tokenizer, samples, tr.max_length, recipe.added_tokens)
    if not encoded:
        raise FinetuneError(f"every sample is longer than train.max_length {tr.max_length}; raise it or shorten "
                            "prompts (data.history_in_prompt, data.facts_in_prompt)")
    micro_per_epoch = len(_epoch_batches(kinds, tr, 0))  # the same count every epoch
    total = tr.max_steps or tr.epochs * max(1, micro_per_epoch // tr.grad_accum)
    optimizer = _optimizer(model, recipe)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(tr.warmup_steps, total))
    wrapped = acc.prepare_model(model, device_placement=False)
    optimizer, scheduler = acc.prepare(optimizer, scheduler)
    step = 0
    if saved is not None:
        state = ck.load_optimizer(start)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step = saved.step
    graph = graph.to(acc.device)
    pad = base.tokenizer.pad_token_id
    sampler = NegativeSampler(graph.train_pairs.cpu().numpy(), graph.num_items, np.random.default_rng(0),
                              prepared.allowed_items)
    if acc.is_main_process:
        acc.init_trackers("tensorboard", config=_flat(recipe.to_dict()))
    result = FinetuneResult(out, None, step, samples=len(encoded), dropped=dropped)
    bar = tqdm(total=total, initial=step, desc="joint tuning", disable=not progress or not acc.is_main_process)
    model.train()
    while step < total:
        rows = _micro_batches(kinds, tr, step, micro_per_epoch)[acc.process_index:: acc.num_processes]
        began, sums = time.perf_counter(), np.zeros(4)
        for n, idx in enumerate(rows):
            batch = collate([encoded[i] for i in idx], pad).to(acc.device)
            bpr, kg = _graph_draws(graph, sampler, tr, step, n)
            with nullcontext() if n == len(rows) - 1 else acc.no_sync(wrapped):
                parts = _forward(wrapped, graph, batch, bpr, kg, acc, step)
                loss = parts[0] + tr.lambda_r * parts[1] + tr.lambda_k * parts[2]
                if not torch.isfinite(loss):
                    raise FinetuneError(f"loss became {loss.item()} at step {step + 1} (L_LLM {parts[0].item():.4g}, "
                                        f"L_R {parts[1].item():.4g}, L_K {parts[2].item():.4g}); lower train.lr/graph_lr")
                acc.backward(loss / len(rows))
            sums += (loss.item(), parts[0].item(), parts[1].item(), parts[2].item())
        acc.clip_grad_norm_(model.parameters(), tr.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        mean = sums / max(len(rows), 1)
        log = StepLog(step, *(float(v) for v in mean), time.perf_counter() - began)
        result.history.append(log)
        for callback in callbacks:
            callback(log)
        if step % tr.log_every == 0 or step == total:
            acc.log({"train/loss": log.loss, "train/loss_llm": log.loss_llm, "train/loss_r": log.loss_r,
                     "train/loss_k": log.loss_k, "train/seconds_per_step": log.seconds,
                     "train/lr": scheduler.get_last_lr()[0]}, step=step)
        bar.update()
        bar.set_postfix(loss=f"{log.loss:.4f}", llm=f"{log.loss_llm:.4f}")
        if step % tr.save_every == 0 or step == total:
            result.checkpoint = _save(acc, model, optimizer, scheduler, recipe, template, identity, step, out)
    bar.close()
    acc.end_training()
    result.steps = step
    return result


def _forward(wrapped: torch.nn.Module, graph: TrainingGraph, batch: Batch, bpr: tuple | None, kg: tuple | None,
             acc: object, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    try:
        with acc.autocast():  # type: ignore[attr-defined]
            return wrapped(graph, batch, bpr, kg)
    except torch.OutOfMemoryError:
        raise FinetuneError(f"out of memory at step {step + 1} (batch of {len(batch)} samples, {batch.input_ids.shape[1]} "
                            "tokens): lower train.batch_size and raise train.grad_accum to keep the effective batch, "
                            "lower train.max_length or data.history_in_prompt, or set llm.gradient_checkpointing: "
                            "true / llm.quantization: nf4") from None


def _encode_all(tokenizer: object, samples: Sequence, max_length: int,
                added: int) -> tuple[list[Encoded], np.ndarray, int]:
    """The samples that fit ``max_length``, their kinds (shape (n,), str) and how many did not fit.
    ``added``: the soft tokens a prefix soft prompt puts before each prompt (inline ones are in it)."""
    encoded = [(encode(tokenizer, s), s.kind) for s in samples]
    kept = [(e, kind) for e, kind in encoded if len(e.prompt) + len(e.answer) + added <= max_length]
    if len(kept) < len(encoded):
        warnings.warn(f"{len(encoded) - len(kept)} of {len(encoded)} samples are longer than train.max_length "
                      f"{max_length} (with {added} prefix soft tokens) and were left out", stacklevel=2)
    return [e for e, _ in kept], np.array([kind for _, kind in kept], dtype=object), len(encoded) - len(kept)


def _epoch_batches(kinds: np.ndarray, tr: TrainSection, epoch: int) -> list[np.ndarray]:
    """Epoch ``epoch``'s micro-batches (sample indices), from a permutation seeded by (seed, epoch): cut into
    ``batch_size`` slices in order, or with ``batch_by_kind`` cut per kind and the batches shuffled, so
    short ranking prompts are never padded to an explanation's length (on 2 CPU cores a batch holding one
    explanation took twice as long)."""
    rng = np.random.default_rng([tr.seed, epoch])
    order = rng.permutation(len(kinds))
    size = tr.batch_size
    if not tr.batch_by_kind:
        return [order[i:i + size] for i in range(0, len(order), size)]
    batches = []
    for kind in sorted(set(kinds.tolist())):
        part = order[kinds[order] == kind]
        batches += [part[i:i + size] for i in range(0, len(part), size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _micro_batches(kinds: np.ndarray, tr: TrainSection, step: int, per_epoch: int) -> list[np.ndarray]:
    """The ``grad_accum`` micro-batches of optimiser step ``step`` (0-based); ``per_epoch`` micro-batches
    make an epoch."""
    out = []
    for k in range(tr.grad_accum):
        epoch, pos = divmod(step * tr.grad_accum + k, per_epoch)
        out.append(_epoch_batches(kinds, tr, epoch)[pos])
    return out


def _graph_draws(graph: TrainingGraph, sampler: NegativeSampler, tr: object, step: int, micro: int):  # noqa: ANN202
    """BPR triples and KG triples for one micro-batch, drawn from a generator seeded by (seed, step, micro)."""
    rng = np.random.default_rng([tr.seed, step, micro, 1])  # type: ignore[attr-defined]
    sampler.rng = rng
    bpr = kg = None
    pairs = graph.train_pairs
    if tr.lambda_r > 0 and pairs.shape[0]:  # type: ignore[attr-defined]
        pick = torch.from_numpy(rng.integers(0, pairs.shape[0], size=min(tr.bpr_batch_size, pairs.shape[0])))  # type: ignore[attr-defined]
        batch = pairs[pick.to(pairs.device)]
        neg = torch.from_numpy(sampler.sample(batch[:, 0].cpu().numpy(), 1)).to(pairs.device)
        bpr = (batch[:, 0], batch[:, 1], neg)
    triples = graph.kg_triples
    if tr.lambda_k > 0 and triples.shape[0]:  # type: ignore[attr-defined]
        pick = torch.from_numpy(rng.integers(0, triples.shape[0], size=min(tr.kg_batch_size, triples.shape[0])))  # type: ignore[attr-defined]
        corrupt = torch.from_numpy(rng.integers(0, graph.num_kg_nodes, size=pick.numel()))
        kg = (triples[pick.to(triples.device)], corrupt.to(triples.device))
    return bpr, kg


def _optimizer(model: JointModel, recipe: Recipe) -> torch.optim.Optimizer:
    llm = [p for p in model.llm.parameters() if p.requires_grad]
    graph = [p for m in (model.gnn, model.projector) if m is not None for p in m.parameters() if p.requires_grad]
    groups = [{"params": graph, "lr": recipe.train.graph_lr}]
    if llm:
        groups.append({"params": llm, "lr": recipe.train.lr})
    return torch.optim.AdamW(groups, weight_decay=recipe.train.weight_decay)


def _schedule(warmup: int, total: int) -> Callable[[int], float]:
    def factor(step: int) -> float:  # linear warm-up, then linear decay to 10%
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.1, 1.0 - 0.9 * (step - warmup) / max(1, total - warmup))
    return factor


def _restore(model: JointModel, saved: ck.FinetuneState, folder: Path) -> None:
    if model.projector is not None:
        if saved.projector is None:
            raise ck.FinetuneCheckpointError(f"{folder} has no projector but the recipe enables soft_prompt")
        model.projector.load_state_dict(saved.projector)
    if saved.recipe["llm"]["adapter"] == "lora":
        ck.load_adapter(model.llm, folder)


def _save(acc: object, model: JointModel, optimizer: torch.optim.Optimizer, scheduler: object, recipe: Recipe,
          template: Checkpoint, identity: dict, step: int, out: Path) -> Path:
    folder = out / f"step-{step}"
    acc.wait_for_everyone()  # type: ignore[attr-defined]
    if acc.is_main_process:  # type: ignore[attr-defined]
        folder.mkdir(parents=True, exist_ok=True)
        setup.tuned_checkpoint(template, model.gnn, step).save(folder / "retriever.pt")
        if recipe.llm.adapter == "lora":
            ck.save_adapter(model.llm, folder)
        projector = None if model.projector is None else {k: v.detach().cpu() for k, v in model.projector.state_dict().items()}
        args = {} if model.projector is None else setup.projector_args(recipe, model.gnn, _base(model.llm))
        ck.save_state(folder, ck.FinetuneState(step, recipe.to_dict(), identity, projector, args, ck.versions()),
                      {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "step": step})  # type: ignore[attr-defined]
        (out / "latest").write_text(folder.name, encoding="utf-8")
    acc.wait_for_everyone()  # type: ignore[attr-defined]
    return folder


def _base(llm: torch.nn.Module) -> torch.nn.Module:
    return llm.get_base_model() if hasattr(llm, "get_base_model") else llm


def _flat(data: dict, prefix: str = "") -> dict[str, object]:
    """TensorBoard's hparams take scalars and strings only."""
    out: dict[str, object] = {}
    for k, v in data.items():
        if isinstance(v, dict):
            out |= _flat(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = v if isinstance(v, (int, float, str, bool)) else str(v)
    return out
