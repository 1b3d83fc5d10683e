r"""Graph soft prompt: GNN vectors → soft tokens in the LLM's input embeddings (G-Retriever / K-RagRec style).

The projector knows nothing of the GNN's code and works with any causal LM exposing
``get_input_embeddings()``: it receives plain tensors — the user vector, one vector per candidate (letter
order) and the vectors of the retrieved facts — and returns ``k = graph_tokens + C`` token embeddings:

* ``graph_tokens`` context tokens from ``MLP([u ; s])``, where ``s`` is the retrieved subgraph pooled by
  attention on the user, :math:`s = \sum_f \mathrm{softmax}_f(u \cdot h_f / \sqrt d)\, h_f`
  (so the LM loss trains the GNN's fact relevance, too);
* with ``candidate_tokens``, one token per candidate from ``MLP([c ; u \odot c])`` plus a learned slot
  embedding of its letter position, in letter order; optionally (``relevance``) plus a learned direction
  scaled by the candidate's GNN score standardised over the row (:func:`standardised_scores`), and with
  slots that start as the letters' own input embeddings (``slot_init``), so that a token says from the
  start which letter it belongs to and how much the GNN favours it; optionally (``recency`` = m) plus a
  second learnt direction scaled by the candidate's mean cosine with the user's m most recent history
  items, standardised over the row (:func:`recency_scores`): the order of the history, which the GNN's
  user vector (a function of the whole, unordered history) cannot carry.

Each token is RMS-normalised and scaled per dimension by a learned gain initialised to the RMS of the LLM's
own input embeddings, so soft tokens start at the scale of word embeddings. Two placements
(:data:`PLACEMENTS`): ``prefix`` — :func:`splice` puts them before the text prompt of each row (after left
padding); ``inline`` (LLaRA's hybrid prompt) — the prompt text holds a :data:`SOFT_TOKEN` placeholder where
each soft token goes (the user's tokens in the user line, each candidate's after its letter), the
tokenizer never sees it (:func:`kerec.finetune.batches.encode` splits on it and records the slots), and
:func:`fill_slots` writes the tokens into those positions. No token is added to the vocabulary, so a server
of the base model + LoRA (vLLM) takes the same prompts as input embeddings.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kerec.finetune.errors import FinetuneError

if TYPE_CHECKING:
    from kerec.gnn.models import Embeddings

PLACEMENTS = ("prefix", "inline")
SOFT_TOKEN = "<|graph|>"
"""The placeholder an inline prompt's text carries for each soft token, in the projector's token order."""


@dataclass(frozen=True)
class GraphInputs:
    """What the projector reads, per batch row.

    Shapes: ``user`` (B, d); ``candidates`` (B, C, d); ``candidate_mask`` (B, C) bool — False for padding;
    ``facts`` (B, F, d); ``fact_mask`` (B, F) bool (F may be 0); ``recent`` (B, H, d) — the history's last
    H items, oldest first, right-aligned (padding first) — with ``recent_mask`` (B, H) bool; only a
    projector with ``recency`` reads them."""

    user: Tensor
    candidates: Tensor
    candidate_mask: Tensor
    facts: Tensor
    fact_mask: Tensor
    recent: Tensor | None = None
    recent_mask: Tensor | None = None


class GraphSoftPrompt(nn.Module):
    """Projects :class:`GraphInputs` into soft tokens.

    Args (keyword-only): ``graph_dim`` d (the GNN's embedding size); ``llm_dim`` D (the LLM's hidden size);
    ``graph_tokens`` context tokens (≥ 1); ``candidate_tokens`` adds one token per candidate;
    ``max_candidates`` slot embeddings (20 letters); ``hidden_dim`` the MLPs' width; ``embedding_rms`` the
    initial per-dimension gain (the RMS of the LLM's input embeddings); ``relevance`` and ``recency``
    (m most recent history items, 0: off) add their learnt directions to the candidate tokens.

    Shapes: ``forward`` returns tokens (B, k, D) and their mask (B, k) bool, ``k = graph_tokens + C`` with
    candidate tokens, else ``graph_tokens``.
    """

    def __init__(self, *, graph_dim: int, llm_dim: int, graph_tokens: int = 2, candidate_tokens: bool = True,
                 max_candidates: int = 20, hidden_dim: int = 256, embedding_rms: float = 1.0,
                 relevance: bool = False, recency: int = 0, slot_init: Tensor | None = None) -> None:
        super().__init__()
        if graph_tokens < 1:
            raise ValueError(f"graph_tokens must be >= 1, got {graph_tokens}")
        if recency < 0 or (recency and not candidate_tokens):
            raise ValueError(f"recency must be >= 0 and needs candidate tokens, got {recency}")
        self.graph_dim, self.llm_dim, self.graph_tokens = graph_dim, llm_dim, graph_tokens
        self.candidate_tokens, self.max_candidates = candidate_tokens, max_candidates
        self.context = nn.Sequential(nn.Linear(2 * graph_dim, hidden_dim), nn.GELU(),
                                     nn.Linear(hidden_dim, graph_tokens * llm_dim))
        if candidate_tokens:
            self.candidate = nn.Sequential(nn.Linear(2 * graph_dim, hidden_dim), nn.GELU(),
                                           nn.Linear(hidden_dim, llm_dim))
            if slot_init is not None and tuple(slot_init.shape) != (max_candidates, llm_dim):
                raise ValueError(f"slot_init has shape {tuple(slot_init.shape)}, expected ({max_candidates}, {llm_dim})")
            start = torch.zeros(max_candidates, llm_dim) if slot_init is None else slot_init.detach().float()
            self.slot = nn.Parameter(start.clone())
            # One learnt direction scaled by the candidate's standardised GNN score: the relevance a ranking
            # needs, linearly readable from every candidate token (an MLP of [c ; u ⊙ c] must learn to sum).
            self.relevance = nn.Parameter(0.5 * torch.randn(llm_dim)) if relevance else None
        self.recency_items = recency
        self.recency = nn.Parameter(0.5 * torch.randn(llm_dim)) if recency else None
        self.gain = nn.Parameter(torch.full((llm_dim,), float(embedding_rms)))

    def num_tokens(self, num_candidates: int) -> int:
        """k for ``num_candidates`` candidates."""
        return self.graph_tokens + (num_candidates if self.candidate_tokens else 0)

    def pool(self, user: Tensor, facts: Tensor, fact_mask: Tensor) -> Tensor:
        """shape: (B, d) — the facts pooled by attention on the user; zeros for a row without facts."""
        if facts.shape[1] == 0:
            return torch.zeros_like(user)
        logits = torch.einsum("bd,bfd->bf", user, facts) / user.shape[-1] ** 0.5
        logits = logits.masked_fill(~fact_mask, float("-inf"))
        weights = torch.softmax(logits, dim=-1).nan_to_num(0.0)  # all-masked rows give NaN: no facts → 0
        return torch.einsum("bf,bfd->bd", weights, facts)

    def forward(self, inputs: GraphInputs) -> tuple[Tensor, Tensor]:
        b = inputs.user.shape[0]
        pooled = self.pool(inputs.user, inputs.facts, inputs.fact_mask)
        tokens = self.context(torch.cat([inputs.user, pooled], -1)).view(b, self.graph_tokens, self.llm_dim)
        mask = torch.ones(b, self.graph_tokens, dtype=torch.bool, device=tokens.device)
        if self.candidate_tokens:
            c = inputs.candidates.shape[1]
            if c > self.max_candidates:
                raise ValueError(f"{c} candidates, but the projector has {self.max_candidates} slots")
            user = inputs.user.unsqueeze(1).expand_as(inputs.candidates)
            cand = self.candidate(torch.cat([inputs.candidates, user * inputs.candidates], -1)) + self.slot[:c]
            if self.relevance is not None:
                cand = cand + standardised_scores(inputs.user, inputs.candidates, inputs.candidate_mask
                                                  ).unsqueeze(-1) * self.relevance
            if self.recency is not None:
                if inputs.recent is None or inputs.recent_mask is None:
                    raise ValueError("a projector with recency needs GraphInputs.recent and recent_mask")
                m = self.recency_items
                cand = cand + recency_scores(inputs.candidates, inputs.recent[:, -m:], inputs.recent_mask[:, -m:],
                                             inputs.candidate_mask).unsqueeze(-1) * self.recency
            tokens = torch.cat([tokens, cand], 1)
            mask = torch.cat([mask, inputs.candidate_mask], 1)
        return self._scale(tokens), mask

    def _scale(self, x: Tensor) -> Tensor:
        return F.rms_norm(x, (x.shape[-1],)) * self.gain


def standardised_scores(user: Tensor, candidates: Tensor, mask: Tensor) -> Tensor:
    """shape: (B, C) — each candidate's GNN score ``u · c``, standardised over its row's real candidates
    (padding 0). ``user`` (B, d), ``candidates`` (B, C, d), ``mask`` (B, C) bool."""
    return standardise_rows(torch.einsum("bd,bcd->bc", user, candidates), mask)


def recency_scores(candidates: Tensor, recent: Tensor, recent_mask: Tensor, mask: Tensor) -> Tensor:
    """shape: (B, C) — each candidate's mean cosine with the row's real ``recent`` items, standardised over
    the row's real candidates (0 for a row without recent items, and for padding). ``candidates`` (B, C, d),
    ``recent`` (B, H, d) with ``recent_mask`` (B, H) bool, ``mask`` (B, C) bool."""
    return standardise_rows(recent_cosine(candidates, recent, recent_mask), mask & recent_mask.any(-1, keepdim=True))


def recent_cosine(candidates: Tensor, recent: Tensor, recent_mask: Tensor) -> Tensor:
    """shape: (B, C) — each candidate's mean cosine with the row's real ``recent`` items, unstandardised (0 for
    a row without them): the recency feature, as the projector reads it and as ``kerec eval``'s no-LLM
    ``gnn-recency`` system fuses it. Shapes as :func:`recency_scores`."""
    cos = torch.einsum("bcd,bhd->bch", F.normalize(candidates, dim=-1), F.normalize(recent, dim=-1))
    m = recent_mask.to(cos.dtype).unsqueeze(1)
    return (cos * m).sum(-1) / m.sum(-1).clamp(min=1)


def serving_scores(emb: Embeddings, users: Tensor, items: Tensor, mask: Tensor) -> Tensor:
    """shape: (B, C) — each candidate's retrieval score as the retriever ranks with it
    (:meth:`Embeddings.scores`: ``u · c``, with a fitted item–item head that product standardised per user
    plus α times the head's), standardised over its row's real candidates. ``users`` (B,), ``items`` (B, C)
    item indices, ``mask`` (B, C) bool."""
    return standardise_rows(emb.scores(users).gather(1, items), mask)


def standardise_rows(scores: Tensor, mask: Tensor) -> Tensor:
    """``scores`` (B, C) minus each row's mean over its ``mask``ed entries, divided by their standard
    deviation; padding 0."""
    m = mask.to(scores.dtype)
    n = m.sum(-1, keepdim=True).clamp(min=1)
    mean = (scores * m).sum(-1, keepdim=True) / n
    # eps inside the root: a row of one candidate (an explanation sample) has variance 0, and the root's
    # gradient there is infinite — NaN once multiplied by the zero gradient of an unplaced token.
    std = ((((scores - mean) * m).pow(2).sum(-1, keepdim=True) / n) + 1e-6).sqrt()
    return ((scores - mean) / std) * m


def splice(soft: Tensor, soft_mask: Tensor, text: Tensor, text_mask: Tensor) -> tuple[Tensor, Tensor]:
    """Insert each row's soft tokens right before its first real text token.

    ``text`` (B, L, D) and ``text_mask`` (B, L) are left-padded (padding first, then the prompt and
    answer); ``soft`` (B, k, D), ``soft_mask`` (B, k). Returns embeddings (B, k + L, D) laid out as
    ``[padding | soft tokens | text]`` and their attention mask (B, k + L) (masked soft tokens stay masked),
    so the text keeps its position at the end of every row.
    """
    rows, masks = [], []
    lengths = text_mask.sum(-1).tolist()
    width = text.shape[1]
    for b, n in enumerate(lengths):
        pad = width - int(n)
        rows.append(torch.cat([text[b, :pad], soft[b].to(text.dtype), text[b, pad:]]))
        masks.append(torch.cat([text_mask[b, :pad], soft_mask[b].to(text_mask.dtype), text_mask[b, pad:]]))
    return torch.stack(rows), torch.stack(masks)


def fill_slots(soft: Tensor, soft_mask: Tensor, text: Tensor, slots: Tensor) -> Tensor:
    """Write each row's soft tokens into the text positions its ``slots`` name (inline placement).

    ``text`` (B, L, D) token embeddings; ``slots`` (B, L) long: -1 for a text position, ``n`` for the row's
    soft token ``n``; ``soft`` (B, k, D), ``soft_mask`` (B, k). A row with slots must place each of its
    unmasked soft tokens exactly once and no masked one (a padded candidate's token never enters the
    prompt); a row without slots (a prompt with no placeholder) keeps its text. Returns (B, L, D),
    differentiable in ``soft``; the attention mask is the text's. Raises :class:`FinetuneError` when slots
    and tokens disagree.
    """
    placed = slots >= 0
    if bool(placed.any()):
        _check_slots(soft_mask, slots, placed)
    picked = soft.gather(1, slots.clamp(min=0).unsqueeze(-1).expand(-1, -1, soft.shape[-1]))
    return torch.where(placed.unsqueeze(-1), picked.to(text.dtype), text)


def _check_slots(soft_mask: Tensor, slots: Tensor, placed: Tensor) -> None:
    k = soft_mask.shape[1]
    if int(slots.max()) >= k:
        raise FinetuneError(f"a prompt names soft token {int(slots.max())}, but the projector made {k} per row")
    uses = torch.zeros(soft_mask.shape, dtype=torch.long, device=slots.device)
    uses.scatter_add_(1, slots.clamp(min=0), placed.long())
    bad = placed.any(-1) & (uses != soft_mask.long()).any(-1)
    if bool(bad.any()):
        b = int(bad.nonzero()[0, 0])
        raise FinetuneError(f"row {b}: the prompt has {int(placed[b].sum())} soft-token placeholders for the "
                         f"projector's {int(soft_mask[b].sum())} tokens (each must be placed once): the prompt "
                         "(data.prompt) and the soft prompt (graph_tokens, candidate_tokens) disagree")


def embedding_rms(embeddings: nn.Module) -> float:
    """The RMS of an input embedding table's entries (the initial soft-token gain). Quantized tables that
    cannot be read as floats give 1.0 / sqrt(D)."""
    weight = getattr(embeddings, "weight", None)
    if weight is None or not weight.dtype.is_floating_point:
        return 1.0 / (getattr(embeddings, "embedding_dim", 1) ** 0.5)
    with torch.no_grad():
        return float(weight.float().pow(2).mean().sqrt())
