"""The evaluation config (``kerec eval --config FILE``): one YAML file, typed and checked before any work.

Sections (unknown sections, keys, systems, metrics or protocols are errors that list the valid ones; a
missing dataset or split folder is an error before anything is loaded):

* ``name`` — the run's name: reports go to ``eval/results/<name>/``, work (trained retrievers, shards)
  to ``runs/eval/<name>/``.
* ``dataset`` (:class:`DatasetSpec`), ``seeds`` (training seeds), ``systems`` (see :data:`SYSTEMS`).
* ``retriever`` (:class:`RetrieverSection`): the YAML every trained system starts from, plus overrides.
* ``protocols``: any of ``full``, ``candidates``, ``explain``, ``cold_start``, and the regimes where knowledge
  should matter, ``sparsity``, ``cold_users``, ``long_tail`` (one section each; a protocol runs when its
  section is present).
* ``llm`` (:class:`LLMSection`), ``slices`` (:class:`SlicesSection`), ``significance``
  (:class:`SignificanceSection`), ``anchors`` (:class:`AnchorsSection`), ``threads`` (torch threads per
  process), ``workers`` (retrievers trained at once, each in its own process with ``threads`` threads;
  the scoring and LLM phases that follow run in one process with ``threads × workers`` threads).

Relative paths are taken from the current working directory (like every kerec command line path).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_type_hints

from kerec.data.spec import DatasetSpec, renamed_keys
from kerec.errors import KerecError
from kerec.metrics.measures import METRICS
from kerec.layered_yaml import read_layered

# Retriever systems: name -> (RetrieverSpec overrides, TrainConfig overrides); "pop" and "random" train nothing.
RETRIEVER_SYSTEMS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "random": ({"model": "pop"}, {}),
    "pop": ({"model": "pop"}, {}),
    "bpr": ({"model": "bpr"}, {}),
    "lightgcn": ({"model": "lightgcn"}, {}),
    "ease": ({"model": "ease"}, {}),
    "kerec": ({"model": "kerec"}, {}),
    "kerec-no-kg": ({"model": "kerec", "use_kg": False}, {}),
    "kerec-no-text": ({"model": "kerec", "use_text": False}, {}),
    "kerec-no-lk": ({"model": "kerec"}, {"lambda_k": 0.0}),
    "kerec-social": ({"model": "kerec", "use_social": True}, {}),
}
UNTRAINED = ("random", "pop")
# LLM-stage systems, scored on the 20-candidate protocol over the candidate retriever's evidence:
# name -> (needs a finetune checkpoint, soft prompt, facts as text).
LLM_SYSTEMS: dict[str, tuple[bool, bool, bool]] = {
    "llm": (False, False, True),  # the untuned LLM, facts as text
    "llm-tuned": (True, False, True),  # the tuned LLM, facts as text, no graph tokens
    "llm-soft": (True, True, False),  # the tuned LLM with the graph soft prompt, no facts as text
    "llm-both": (True, True, True),  # soft prompt and facts as text
}
FUSED = "fused"  # GNN + LLM, the weight chosen on the validation split
# Scored from the finetune checkpoint alone, on the 20-candidate protocol: its jointly tuned GNN, and its
# own fused score as trained by the residual loss (train.residual β > 0): ℓ + β·z(that GNN's score).
TUNED_GNN, JOINT = "gnn-tuned", "joint"
CHECKPOINT_SYSTEMS = (TUNED_GNN, JOINT)
# The ablation of an LLM that reads the history's order (soft_prompt.recency): the candidate retriever's score
# fused, as 'fused' fuses, with each candidate's standardised mean cosine to the user's protocols.candidates
# .recency most recent training items (the retriever's item embeddings), the weight chosen on validation. No LLM.
RECENCY = "gnn-recency"
SYSTEMS: tuple[str, ...] = (*RETRIEVER_SYSTEMS, *LLM_SYSTEMS, FUSED, *CHECKPOINT_SYSTEMS, RECENCY)
LABELS = {"random": "Random", "pop": "Pop", "bpr": "BPR-MF", "lightgcn": "LightGCN", "ease": "EASE (item–item, closed form)",
          "kerec": "kerec GNN (text + KG)", "kerec-no-kg": "kerec GNN without KG", "kerec-no-text": "kerec GNN without text",
          "kerec-no-lk": "kerec GNN without L_K", "kerec-social": "kerec GNN + social links", "llm": "LLM (untuned, facts as text)",
          "llm-tuned": "LLM tuned, facts as text", "llm-soft": "LLM tuned, graph soft prompt",
          "llm-both": "LLM tuned, soft prompt + facts", "fused": "GNN + LLM fused",
          "gnn-tuned": "tuned GNN alone (finetune checkpoint)", "joint": "tuned GNN + LLM, as trained (ℓ + β·z)",
          "gnn-recency": "GNN + recency of the history, no LLM"}
PROTOCOLS = ("full", "candidates", "explain", "cold_start", "sparsity", "cold_users", "long_tail")
FULL_METRICS = ("recall", "ndcg", "hit", "mrr", "precision")
SIGNIFICANCE_TESTS = ("auto", "wilcoxon", "ttest", "permutation")


class EvalConfigError(KerecError, ValueError):
    """A bad evaluation config; the message names the file, the key and the valid choices."""


# ---------------------------------------------------------------------------------------------- sections
@dataclass(frozen=True)
class RetrieverSection:
    """``base``: a YAML with ``model:``/``train:`` sections (``eval/configs/retriever.yaml``), or None for
    the code defaults; ``model``/``train``: overrides on top of it (e.g. fewer epochs); ``system_train``:
    training overrides for one system on top of ``train`` (``{lightgcn: {epochs: 400, patience: 50}}``: a
    baseline trained with BPR needs more epochs to converge than a cap that suits kerec)."""

    base: str | None = None
    model: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    system_train: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FullSection:
    """Full ranking of the test split over all recommendable items (train and valid items masked).
    ``curve_max_k``: Recall@K is also kept for K = 1..curve_max_k (the Recall@K plot)."""

    ks: tuple[int, ...] = (10, 20)
    metrics: tuple[str, ...] = ("recall", "ndcg", "hit", "mrr")
    curve_max_k: int = 50
    batch_size: int = 256


@dataclass(frozen=True)
class CandidatesSection:
    """The 20-candidate protocol: the held-out item plus ``negatives`` never-seen items, and the
    candidate retriever's own top-20. Retriever systems are scored on every held-out user; LLM systems on
    ``users`` test users sampled with the seed (0 = all) and ``valid_users`` validation users (to choose
    the fusion weight; skipped when ``fusion_weight`` is given). ``retriever``: the system whose
    evidence, top-20 and GNN scores the LLM stage uses. ``llm_seeds``: LLM systems run on the first n seeds.
    ``recency``: the m most recent training items system ``gnn-recency`` compares each candidate with."""

    negatives: int = 19
    users: int = 50
    valid_users: int = 30
    retriever: str = "kerec"
    fusion_weight: float | None = None
    llm_seeds: int = 1
    batch: int = 8
    recency: int = 5


@dataclass(frozen=True)
class ExplainSection:
    """``recommend(user, k)`` with the LLM for ``users`` sampled test users, one call each: the grounding
    check's outcomes and the latency of each stage (GNN, evidence, LLM rank, explain). ``all_users``: also
    every held-out test user's top ``k`` with the GNN and templated explanations (no LLM, cheap), every
    cited fact re-checked against the store."""

    users: int = 5
    k: int = 5
    all_users: bool = True


@dataclass(frozen=True)
class ColdStartSection:
    """``fraction`` of the items set aside with all their interactions; ``systems`` are retrained on the
    rest and rank only those items from text and KG (``kerec eval retriever``'s cold-start slice), for the
    first ``seeds`` seeds."""

    fraction: float = 0.1
    systems: tuple[str, ...] = ("kerec",)
    seeds: int = 1


REGIME_SYSTEMS = ("pop", "ease", "lightgcn", "kerec", "kerec-no-kg", "kerec-no-text")


@dataclass(frozen=True)
class SparsitySection:
    """Each user's training pairs thinned to each share in ``keep`` (drawn with the training seed, at least
    one pair left per user; the held-back pairs stay masked as seen), valid and test unchanged; ``systems``
    retrained per share (1.0: the full-data models) and scored on the full test split at ``ks``."""

    keep: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0)
    systems: tuple[str, ...] = REGIME_SYSTEMS
    ks: tuple[int, ...] = (10, 20)
    metrics: tuple[str, ...] = ("recall", "ndcg")


@dataclass(frozen=True)
class ColdUsersSection:
    """A share ``users`` of the test users (drawn with ``dataset.split_seed``, the same at every training seed)
    keep ``keep`` training pairs each, the rest held back (masked as seen); ``systems`` retrained, scored on
    those users' test items."""

    users: float = 0.2
    keep: int = 3
    systems: tuple[str, ...] = REGIME_SYSTEMS
    ks: tuple[int, ...] = (10, 20)
    metrics: tuple[str, ...] = ("recall", "ndcg")


@dataclass(frozen=True)
class LongTailSection:
    """The full-data ``systems`` scored only on test items outside the ``head`` share most popular items
    (by training interactions); every item is still ranked, users without such a test item are skipped."""

    head: float = 0.2
    systems: tuple[str, ...] = REGIME_SYSTEMS
    ks: tuple[int, ...] = (10, 20)
    metrics: tuple[str, ...] = ("recall", "ndcg")


@dataclass(frozen=True)
class ProtocolsSection:
    full: FullSection | None = None
    candidates: CandidatesSection | None = None
    explain: ExplainSection | None = None
    cold_start: ColdStartSection | None = None
    sparsity: SparsitySection | None = None
    cold_users: ColdUsersSection | None = None
    long_tail: LongTailSection | None = None


@dataclass(frozen=True)
class LLMSection:
    """``spec``: :func:`kerec.llm.load_llm` spec ("default" = SmolLM2-135M-Instruct on CPU); ``finetune``: a
    ``kerec finetune`` run or step folder, needed by ``llm-tuned``/``llm-soft``/``llm-both``;
    ``tuned_engine``: what runs the tuned LLM, "transformers" or "vllm" (LoRA via ``enable_lora``, the
    graph soft prompt as prompt embeddings)."""

    spec: str = "default"
    batch_size: int = 8
    finetune: str | None = None
    tuned_engine: str = "transformers"


@dataclass(frozen=True)
class SlicesSection:
    """``sparse_max_train``: users with at most this many training interactions form the sparse-user
    slice; ``activity_buckets``: equal-size buckets of users by training interactions (KG gain plot)."""

    sparse_max_train: int = 5
    activity_buckets: int = 4


@dataclass(frozen=True)
class SignificanceSection:
    """The main claim, ``a`` vs ``b``, tested per metric paired over users (see :mod:`kerec.metrics.stats`)."""

    a: str = "kerec"
    b: str = "kerec-no-kg"
    test: str = "auto"
    permutations: int = 10000


@dataclass(frozen=True)
class AnchorsSection:
    """Folders of RecBole 1.2.1 result JSONs (``eval/recbole/run_recbole.py``); their rows are shown only
    when they were measured on this very split (same sha256). ``run_recbole``: run those models first
    (needs ``bash eval/recbole/setup.sh``)."""

    recbole: tuple[str, ...] = ("eval/results/recbole", "eval/results/recbole-patience50")
    run_recbole: tuple[str, ...] = ()


@dataclass(frozen=True)
class EvalConfig:
    name: str
    dataset: DatasetSpec = DatasetSpec()
    seeds: tuple[int, ...] = (2020,)
    systems: tuple[str, ...] = ("random", "pop", "kerec", "kerec-no-kg")
    retriever: RetrieverSection = RetrieverSection()
    protocols: ProtocolsSection = ProtocolsSection(full=FullSection())
    llm: LLMSection = LLMSection()
    slices: SlicesSection = SlicesSection()
    significance: SignificanceSection = SignificanceSection()
    anchors: AnchorsSection = AnchorsSection()
    threads: int = 1
    workers: int = 1
    source: str = ""  # the file it came from (not a YAML key)

    def to_dict(self) -> dict[str, Any]:
        out = _plain(asdict(self))
        out.pop("source")
        return out

    @property
    def retriever_systems(self) -> tuple[str, ...]:
        return tuple(s for s in self.systems if s in RETRIEVER_SYSTEMS)

    @property
    def llm_systems(self) -> tuple[str, ...]:
        return tuple(s for s in self.systems
                     if s in LLM_SYSTEMS or s == FUSED or s in CHECKPOINT_SYSTEMS or s == RECENCY)


# ------------------------------------------------------------------------------------------------ loading
def load_eval_config(path: str | Path, *, check_paths: bool = True) -> EvalConfig:
    """Read, type and check an evaluation config. ``check_paths=False`` skips the existence checks of
    data folders (to validate a config written for another machine). A top-level ``base: other.yaml``
    (relative to the file) starts from that config, section by section (:mod:`kerec.layered_yaml`); a
    config with a base names itself (``name``), so that its report does not overwrite the base's."""
    import yaml

    path = Path(path)
    data = read_layered(path, EvalConfigError, "evaluation config", "eval/configs/")
    own = yaml.safe_load(path.read_text(encoding="utf-8"))
    if "base" in own and "name" not in own:
        raise EvalConfigError(f"{path}: a config with a base needs its own 'name' (else its report and work folders "
                              f"would be the base's, {data.get('name')!r})")
    return config_from_dict(data, source=str(path), check_paths=check_paths)


def config_from_dict(data: Any, *, source: str = "<dict>", check_paths: bool = True) -> EvalConfig:
    if not isinstance(data, dict):
        raise EvalConfigError(f"{source}: expected a mapping of sections, got {type(data).__name__}")
    if "name" not in data:
        raise EvalConfigError(f"{source}: 'name' is missing (reports go to eval/results/<name>/)")
    config = _build(EvalConfig, {k: v for k, v in data.items()}, source, "")
    config = _replace_source(config, source)
    check(config, check_paths=check_paths)
    return config


def _replace_source(config: EvalConfig, source: str) -> EvalConfig:
    from dataclasses import replace

    return replace(config, source=source)


def _build(cls: type, data: Any, source: str, where: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise EvalConfigError(f"{source}: {where or 'the config'} must be a mapping, got {type(data).__name__}")
    hints = get_type_hints(cls)
    valid = [f.name for f in fields(cls) if f.name != "source"]
    unknown = sorted(set(data) - set(valid))
    if unknown:
        hint = renamed_keys(unknown) if where == "dataset" else ""
        raise EvalConfigError(f"{source}: unknown key(s) {', '.join(map(repr, unknown))} in "
                              f"{where or 'the top level'}; valid keys: {', '.join(valid)}" + (f" ({hint})" if hint else ""))
    values = {}
    for name, raw in data.items():
        values[name] = _value(hints[name], raw, source, f"{where}.{name}" if where else name)
    try:
        return cls(**values)
    except (TypeError, ValueError, KerecError) as exc:
        raise EvalConfigError(f"{source}: {where or 'config'}: {exc}") from None


def _value(hint: Any, raw: Any, source: str, where: str) -> Any:
    """Convert one YAML value to the annotated type (str, int, float, bool, tuples, dicts, sections)."""
    import types
    import typing

    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if raw is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _value(inner, {} if raw is None else raw, source, where) if is_dataclass(inner) else _value(inner, raw, source, where)
    if is_dataclass(hint):
        return _build(hint, raw, source, where)
    if origin is tuple:
        if isinstance(raw, (str, int, float)) or not isinstance(raw, (list, tuple)):
            raise EvalConfigError(f"{source}: {where} must be a list, got {raw!r}")
        return tuple(_value(args[0], item, source, f"{where}[{n}]") for n, item in enumerate(raw))
    if origin is dict:
        if not isinstance(raw, dict):
            raise EvalConfigError(f"{source}: {where} must be a mapping, got {raw!r}")
        return dict(raw)
    if hint is bool:
        if not isinstance(raw, bool):
            raise EvalConfigError(f"{source}: {where} must be true or false, got {raw!r}")
        return raw
    if hint is int:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise EvalConfigError(f"{source}: {where} must be an integer, got {raw!r}")
        return raw
    if hint is float:
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise EvalConfigError(f"{source}: {where} must be a number, got {raw!r}")
        return float(raw)
    if hint is str:
        if not isinstance(raw, (str, int)) or isinstance(raw, bool):
            raise EvalConfigError(f"{source}: {where} must be a string, got {raw!r}")
        return str(raw)
    return raw


# --------------------------------------------------------------------------------------------- checking
def _choices(source: str, what: str, names: tuple[str, ...] | list[str], valid: tuple[str, ...]) -> None:
    bad = [n for n in names if n not in valid]
    if bad:
        raise EvalConfigError(f"{source}: unknown {what} {', '.join(map(repr, bad))}; valid: {', '.join(valid)}")


def _at_least(source: str, where: str, value: int | float, low: int | float) -> None:
    if value < low:
        raise EvalConfigError(f"{source}: {where} must be at least {low}, got {value}")


def check(config: EvalConfig, *, check_paths: bool = True) -> None:
    """Every cross-field rule; raises :class:`EvalConfigError` on the first violation."""
    src = config.source or "<config>"
    if not config.name or any(c in config.name for c in "/\\") or config.name.startswith("."):
        raise EvalConfigError(f"{src}: name must be a plain folder name, got {config.name!r}")
    from kerec.data import FORMATS

    ds = config.dataset
    _choices(src, "dataset.format", [ds.format], FORMATS)
    if not config.seeds or len(set(config.seeds)) != len(config.seeds):
        raise EvalConfigError(f"{src}: seeds must be a non-empty list of distinct integers, got {list(config.seeds)}")
    if not config.systems:
        raise EvalConfigError(f"{src}: systems is empty; valid: {', '.join(SYSTEMS)}")
    _choices(src, "system(s)", list(config.systems), SYSTEMS)
    if len(set(config.systems)) != len(config.systems):
        raise EvalConfigError(f"{src}: systems lists a name twice: {list(config.systems)}")
    _at_least(src, "threads", config.threads, 1)
    _at_least(src, "workers", config.workers, 1)
    _check_retriever(config, src)
    _check_protocols(config, src)
    sig = config.significance
    _choices(src, "significance.test", [sig.test], SIGNIFICANCE_TESTS)
    _at_least(src, "significance.permutations", sig.permutations, 100)
    _at_least(src, "slices.activity_buckets", config.slices.activity_buckets, 1)
    _at_least(src, "slices.sparse_max_train", config.slices.sparse_max_train, 0)
    _at_least(src, "llm.batch_size", config.llm.batch_size, 1)
    _choices(src, "llm.tuned_engine", [config.llm.tuned_engine], ("transformers", "vllm"))
    if check_paths:
        check_data_paths(config)


def _check_retriever(config: EvalConfig, src: str) -> None:
    from kerec.gnn.train import TrainConfig
    from kerec.gnn import RetrieverSpec

    sec = config.retriever
    _choices(src, "retriever.model key(s)", list(sec.model), tuple(f.name for f in fields(RetrieverSpec)))
    if "model" in sec.model:
        raise EvalConfigError(f"{src}: retriever.model.model cannot be set here: the systems list picks the model")
    train_keys = tuple(f.name for f in fields(TrainConfig))
    for system, overrides in {"": sec.train, **sec.system_train}.items():
        where = f"retriever.system_train.{system}" if system else "retriever.train"
        trained = [n for n in RETRIEVER_SYSTEMS if n not in UNTRAINED]
        if system and system not in trained:  # a system left out of a derived config's list may keep its entry
            raise EvalConfigError(f"{src}: {where}: {system!r} is not a trained retriever system "
                                  f"({', '.join(trained)})")
        if not isinstance(overrides, dict):
            raise EvalConfigError(f"{src}: {where} must be a mapping of training settings, got {overrides!r}")
        _choices(src, f"{where} key(s)", list(overrides), train_keys)
        if "seed" in overrides:
            raise EvalConfigError(f"{src}: {where}.seed cannot be set here: use the top-level seeds list")


def _check_protocols(config: EvalConfig, src: str) -> None:
    prot = config.protocols
    if all(getattr(prot, p) is None for p in PROTOCOLS):
        raise EvalConfigError(f"{src}: no protocol to run; give at least one section under protocols: "
                              f"{', '.join(PROTOCOLS)}")
    if prot.full is not None:
        _choices(src, "protocols.full.metrics", list(prot.full.metrics), FULL_METRICS)
        if not prot.full.ks or min(prot.full.ks) < 1:
            raise EvalConfigError(f"{src}: protocols.full.ks must be positive cut-offs, got {list(prot.full.ks)}")
        _at_least(src, "protocols.full.curve_max_k", prot.full.curve_max_k, 1)
        _at_least(src, "protocols.full.batch_size", prot.full.batch_size, 1)
        if not config.retriever_systems:
            raise EvalConfigError(f"{src}: protocols.full needs at least one retriever system "
                                  f"({', '.join(RETRIEVER_SYSTEMS)})")
    llm_systems = config.llm_systems
    if llm_systems and prot.candidates is None:
        raise EvalConfigError(f"{src}: systems {', '.join(llm_systems)} are scored on the 20-candidate protocol; "
                              "add a protocols.candidates section")
    tuned = [s for s in llm_systems if (s in LLM_SYSTEMS and LLM_SYSTEMS[s][0]) or s in CHECKPOINT_SYSTEMS]
    if tuned and not config.llm.finetune:
        raise EvalConfigError(f"{src}: system(s) {', '.join(tuned)} need a fine-tuned checkpoint: set llm.finetune "
                              "to a `kerec finetune` run folder (or step-N folder), or drop them from systems")
    if FUSED in config.systems and not any(s in LLM_SYSTEMS for s in config.systems):
        raise EvalConfigError(f"{src}: 'fused' combines the GNN with an LLM system; add 'llm' (or a tuned one) to systems")
    cand = prot.candidates
    if cand is not None:
        if cand.retriever not in config.systems or cand.retriever in UNTRAINED:
            trained = [s for s in config.systems if s in RETRIEVER_SYSTEMS and s not in UNTRAINED]
            raise EvalConfigError(f"{src}: protocols.candidates.retriever {cand.retriever!r} must be a trained "
                                  f"retriever among systems; valid here: {', '.join(trained) or '(none listed)'}")
        _at_least(src, "protocols.candidates.negatives", cand.negatives, 1)
        _at_least(src, "protocols.candidates.recency", cand.recency, 1)
        if cand.negatives + 1 > 20 and llm_systems:
            raise EvalConfigError(f"{src}: the LLM letters at most 20 candidates; protocols.candidates.negatives "
                                  f"must be at most 19, got {cand.negatives}")
        for key in ("users", "valid_users"):
            _at_least(src, f"protocols.candidates.{key}", getattr(cand, key), 0)
        _at_least(src, "protocols.candidates.llm_seeds", cand.llm_seeds, 1)
        _at_least(src, "protocols.candidates.batch", cand.batch, 1)
        if cand.fusion_weight is not None and not 0 <= cand.fusion_weight <= 1:
            raise EvalConfigError(f"{src}: protocols.candidates.fusion_weight must be in [0, 1] or null, "
                                  f"got {cand.fusion_weight}")
    if prot.explain is not None:
        if cand is None:
            raise EvalConfigError(f"{src}: protocols.explain uses the candidate retriever and the LLM; "
                                  "add a protocols.candidates section")
        _at_least(src, "protocols.explain.users", prot.explain.users, 1)
        _at_least(src, "protocols.explain.k", prot.explain.k, 1)
    cold = prot.cold_start
    if cold is not None:
        if not 0 < cold.fraction < 1:
            raise EvalConfigError(f"{src}: protocols.cold_start.fraction must be in (0, 1), got {cold.fraction}")
        trainable = tuple(s for s in RETRIEVER_SYSTEMS if s not in UNTRAINED)
        _choices(src, "protocols.cold_start.systems", list(cold.systems), trainable)
        _at_least(src, "protocols.cold_start.seeds", cold.seeds, 1)
    _check_regimes(prot, src)
    sig = config.significance
    _choices(src, "significance system(s)", [sig.a, sig.b], tuple(RETRIEVER_SYSTEMS))


def _check_regimes(prot: ProtocolsSection, src: str) -> None:
    """The sparsity, cold-user and long-tail sections: shares in range, known systems, cut-offs and metrics."""
    for name in ("sparsity", "cold_users", "long_tail"):
        section = getattr(prot, name)
        if section is None:
            continue
        _choices(src, f"protocols.{name}.systems", list(section.systems), tuple(RETRIEVER_SYSTEMS))
        if not section.systems or len(set(section.systems)) != len(section.systems):
            raise EvalConfigError(f"{src}: protocols.{name}.systems must be a non-empty list of distinct systems, "
                                  f"got {list(section.systems)}")
        _choices(src, f"protocols.{name}.metrics", list(section.metrics), FULL_METRICS)
        if not section.ks or min(section.ks) < 1:
            raise EvalConfigError(f"{src}: protocols.{name}.ks must be positive cut-offs, got {list(section.ks)}")
    if prot.sparsity is not None:
        keep = prot.sparsity.keep
        if not keep or any(not 0 < f <= 1 for f in keep) or len(set(keep)) != len(keep):
            raise EvalConfigError(f"{src}: protocols.sparsity.keep must be distinct shares in (0, 1], got {list(keep)}")
    if prot.cold_users is not None:
        if not 0 < prot.cold_users.users <= 1:
            raise EvalConfigError(f"{src}: protocols.cold_users.users must be a share in (0, 1], "
                                  f"got {prot.cold_users.users}")
        _at_least(src, "protocols.cold_users.keep", prot.cold_users.keep, 1)
    if prot.long_tail is not None and not 0 < prot.long_tail.head < 1:
        raise EvalConfigError(f"{src}: protocols.long_tail.head must be a share in (0, 1), got {prot.long_tail.head}")


def check_data_paths(config: EvalConfig) -> None:
    """The dataset and split folders, the retriever base YAML and the finetune checkpoint exist."""
    src = config.source or "<config>"
    ds = config.dataset
    if ds.path != "default" and not Path(ds.path).expanduser().is_dir():
        raise EvalConfigError(f"{src}: dataset.path {ds.path!r} is not a folder (from {Path.cwd()}); give "
                              "'default' (embedded ml-100k) or a folder of RecBole atomic or KGAT files")
    if ds.split not in ("random", "loo"):
        folder = Path(ds.split).expanduser()
        missing = [p for p in ("train.tsv", "valid.tsv", "test.tsv") if not (folder / p).is_file()]
        if missing:
            raise EvalConfigError(f"{src}: dataset.split {ds.split!r} is neither 'random', 'loo' nor a folder with "
                                  f"train.tsv, valid.tsv and test.tsv (missing {', '.join(missing)}, from {Path.cwd()})")
    if config.retriever.base and not Path(config.retriever.base).is_file():
        raise EvalConfigError(f"{src}: retriever.base {config.retriever.base!r} is not a file (from {Path.cwd()})")
    if config.llm.finetune and not Path(config.llm.finetune).exists():
        raise EvalConfigError(f"{src}: llm.finetune {config.llm.finetune!r} does not exist")


# ---------------------------------------------------------------------------------------------- hashing
def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def digest(*parts: Any) -> str:
    """A short, stable hash of plain data (dicts, lists, numbers, strings): keys shard and cache files, so a
    changed setting can never be mixed with results of the old one."""
    text = json.dumps(_plain(list(parts)), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def dataset_key(config: EvalConfig) -> dict[str, Any]:
    """What determines the data a run sees: the dataset section, with the split folder's content hash."""
    key = asdict(config.dataset)
    if config.dataset.split not in ("random", "loo"):
        key["split"] = split_sha256(config.dataset.split)
    if config.dataset.split != "random":
        key.pop("split_seed")
    return key


def split_sha256(folder: str | Path) -> str:
    """sha256 of train.tsv + valid.tsv + test.tsv bytes, in that order (as ``eval/recbole/run_recbole.py``)."""
    h = hashlib.sha256()
    for part in ("train", "valid", "test"):
        h.update((Path(folder) / f"{part}.tsv").read_bytes())
    return h.hexdigest()
