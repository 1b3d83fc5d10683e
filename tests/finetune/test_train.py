from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from kerec.finetune import setup
from kerec.finetune.batches import collate, encode
from kerec.finetune.errors import FinetuneCheckpointError, FinetuneError
from kerec.finetune.recipe import TrainSection
from kerec.finetune.scoring import TunedRanker
from kerec.finetune.train import _epoch_batches, finetune
from kerec.fusion import fuse_all
from kerec.gnn.item_head import ItemHead, ease_weights, item_gram

from ..embedded_scoring import embedded_letter_logprobs
from .conftest import COMPACT, tiny_recipe

pytestmark = pytest.mark.slow
# The full prompt with the soft prompt before it, and the compact prompt with the soft tokens inline.
PROMPTS = pytest.mark.parametrize("shape", [{}, COMPACT], ids=["prefix", "compact-inline"])


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_lm_loss_alone_reaches_the_gnn(synth_dir: Path, tiny_llm: Path, tmp_path: Path) -> None:
    recipe = tiny_recipe(synth_dir, tiny_llm, tmp_path)
    prepared, gnn, graph, _ = setup.retriever(recipe, progress=False)
    samples = setup.samples(recipe, prepared, gnn, graph, None, progress=False)[:4]
    base = setup.load_llm(recipe, "cpu")
    model = setup.joint_model(recipe, base.model, gnn)
    batch = collate([encode(base.tokenizer, s) for s in samples], base.tokenizer.pad_token_id)
    l_llm, l_r, l_k = model(graph, batch)  # no BPR, no KG draws: L_R = L_K = 0
    assert l_r.item() == 0 and l_k.item() == 0
    l_llm.backward()
    for name in ("user.weight", "item.weight", "relation.weight"):
        grad = dict(gnn.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.llm.named_parameters() if "lora_" in n)
    assert all(p.grad is None for n, p in model.llm.named_parameters() if "lora_" not in n)  # base frozen


def test_recency_tokens_read_the_history_order_and_the_lm_loss_trains_them(synth_dir: Path, tiny_llm: Path,
                                                                           tmp_path: Path) -> None:
    recipe = tiny_recipe(synth_dir, tiny_llm, tmp_path, data=COMPACT["data"],
                         soft_prompt={**COMPACT["soft_prompt"], "recency": 3})
    prepared, gnn, graph, _ = setup.retriever(recipe, progress=False)
    samples = [s for s in setup.samples(recipe, prepared, gnn, graph, None, progress=False)
               if s.kind == "ranking" and len(s.history) >= 4][:4]
    base = setup.load_llm(recipe, "cpu")
    model = setup.joint_model(recipe, base.model, gnn)
    assert model.projector.recency_items == 3
    batch = collate([encode(base.tokenizer, s) for s in samples], base.tokenizer.pad_token_id)
    assert [batch.recent[b][batch.recent_mask[b]].tolist() for b in range(len(samples))] == \
        [list(s.history[-20:]) for s in samples]
    l_llm, _, _ = model(graph, batch)
    l_llm.backward()
    assert model.projector.recency.grad is not None and model.projector.recency.grad.abs().sum() > 0
    # The soft tokens depend on which items are the most recent: reversing the history changes them.
    with torch.no_grad():
        before, _ = model.inputs(graph, batch)
        flipped = collate([encode(base.tokenizer, replace(s, history=s.history[::-1])) for s in samples],
                          base.tokenizer.pad_token_id)
        after, _ = model.inputs(graph, flipped)
    assert not torch.allclose(before, after)


def test_frozen_llm_variant_trains_only_projector_and_gnn(synth_dir: Path, tiny_llm: Path, tmp_path: Path) -> None:
    recipe = tiny_recipe(synth_dir, tiny_llm, tmp_path, llm={"adapter": "frozen"})
    prepared, gnn, graph, _ = setup.retriever(recipe, progress=False)
    base = setup.load_llm(recipe, "cpu")
    model = setup.joint_model(recipe, base.model, gnn)
    assert not any(p.requires_grad for p in model.llm.parameters())
    assert all(p.requires_grad for p in model.projector.parameters())


@PROMPTS
def test_joint_training_lowers_the_loss_and_resumes_exactly(synth_dir: Path, tiny_llm: Path, tmp_path: Path,
                                                           shape: dict) -> None:
    recipe = tiny_recipe(synth_dir, tiny_llm, tmp_path / "run", train={"max_steps": 30, "save_every": 15}, **shape)
    result = finetune(recipe, progress=False)
    first = np.mean([h.loss_llm for h in result.history[:3]])
    last = np.mean([h.loss_llm for h in result.history[-3:]])
    # A model that learns nothing stays at ~12.5. The explanation targets are now summary sentences naming
    # several films (issue 22), on which this tiny random LLM's per-token loss levels out near 6.5 within 30
    # steps (it halved with the old one-fact texts): "clearly lower" is 0.6x, not 0.5x.
    assert last < 0.6 * first, (first, last)
    assert all(h.loss_r > 0 and h.loss_k > 0 for h in result.history)
    assert (tmp_path / "run" / "latest").read_text() == "step-30"
    assert (tmp_path / "run" / "step-15" / "adapter" / "adapter_model.safetensors").is_file()
    assert list((tmp_path / "run").glob("**/events.out.tfevents.*")), "no TensorBoard log"

    # Resuming at step 15 repeats steps 16..30 exactly.
    resumed = finetune(recipe.replace(out=str(tmp_path / "resumed")), resume=tmp_path / "run" / "step-15", progress=False)
    assert [h.step for h in resumed.history] == list(range(16, 31))
    np.testing.assert_allclose([h.loss for h in resumed.history], [h.loss for h in result.history[15:]], rtol=1e-4)

    # The evaluation hook reads the tuned checkpoint: renormalised letter log-probs per candidate list.
    ranker = TunedRanker.load(tmp_path / "run")
    ds = ranker.builder.dataset
    users = [ds.users.external(0), ds.users.external(1)]
    cands = [[ds.items.external(i) for i in range(8)], [ds.items.external(i) for i in range(8, 13)]]
    scores = ranker.letter_logprobs(users, cands)
    assert scores.shape == (2, 8)
    assert np.allclose(np.exp(scores[0]).sum(), 1) and np.allclose(np.exp(scores[1, :5]).sum(), 1)
    assert np.isneginf(scores[1, 5:]).all()
    # Inference renders the prompt training did (the compact one with its placeholders, if so tuned).
    prompt = ranker.samples(users, cands)[0].messages[-1]["content"]
    assert ("Candidates:\nA<|graph|> B<|graph|>" in prompt) == bool(shape)
    text_only = ranker.letter_logprobs(users, cands, soft_prompt=False)  # an inline prompt drops its placeholders
    assert not np.allclose(text_only[0], scores[0])


def test_batches_by_kind_hold_one_kind_and_cover_each_epoch_once() -> None:
    kinds = np.array(["ranking"] * 37 + ["explanation"] * 6, dtype=object)
    np.random.default_rng(0).shuffle(kinds)
    tr = TrainSection(batch_size=4, batch_by_kind=True, seed=5)
    epochs = [_epoch_batches(kinds, tr, e) for e in range(6)]
    for batches in epochs:
        assert len(batches) == 10 + 2  # ceil(37 / 4) ranking + ceil(6 / 4) explanation batches
        assert all(len(set(kinds[b])) == 1 for b in batches)
        assert sorted(np.concatenate(batches).tolist()) == list(range(43))
    # The explanation batches are shuffled in among the ranking ones, differently each epoch.
    where = {tuple(n for n, b in enumerate(batches) if kinds[b[0]] == "explanation") for batches in epochs}
    assert len(where) > 1 and (10, 11) not in where
    assert [b.tolist() for b in _epoch_batches(kinds, tr, 3)] == [b.tolist() for b in epochs[3]]
    # Without it, an epoch is its permutation cut in order, as before batch_by_kind existed.
    order = np.random.default_rng([5, 0]).permutation(43)
    plain = _epoch_batches(kinds, TrainSection(batch_size=4, seed=5), 0)
    assert [b.tolist() for b in plain] == [order[i:i + 4].tolist() for i in range(0, 43, 4)]


def test_resume_refuses_another_base_model(synth_dir: Path, tiny_llm: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    recipe = tiny_recipe(synth_dir, tiny_llm, tmp_path / "run", train={"max_steps": 1})
    finetune(recipe, progress=False)
    other = tmp_path / "other-llama"
    tokenizer = AutoTokenizer.from_pretrained(tiny_llm)
    LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=1)).save_pretrained(other)
    tokenizer.save_pretrained(other)
    with pytest.raises(FinetuneCheckpointError, match="was tuned on base model"):
        finetune(recipe.replace(llm={"model": str(other)}, out=str(tmp_path / "x")), resume=tmp_path / "run",
                 progress=False)


def test_the_recommender_ranks_with_a_tuned_checkpoint(synth_dir: Path, tiny_llm: Path, tmp_path: Path) -> None:
    from kerec.api import Recommender

    finetune(tiny_recipe(synth_dir, tiny_llm, tmp_path / "run", train={"max_steps": 2}), progress=False)
    rec = Recommender.load(tuned=tmp_path / "run", data=str(synth_dir), llm=None)
    assert rec.tuned is not None
    user = rec.dataset.users.external(0)
    recs = rec.recommend(user, k=5, explain=False)
    # The tuned GNN chose the candidates; the tuned LLM (soft prompt) scored their letters.
    plan = rec._plan(user, 5, True, None)
    want = rec.tuned.letter_logprobs([user], [[rec.dataset.items.external(i) for i in plan.top]])[0]
    got = {r.item_id: r.llm_logprob for r in recs}
    for n, i in enumerate(plan.top):
        if rec.dataset.items.external(i) in got:
            assert got[rec.dataset.items.external(i)] == pytest.approx(want[n])
    assert np.isclose(np.exp(want).sum(), 1.0)


class UnpaddedEngine:
    """Stands in for vLLM's prompt-embeddings path (the real engine is checked against the same reference
    in tests/llm/test_vllm_engine.py, in its own interpreter): scores each prompt's unpadded embeddings
    alone, positions 0..n-1, as vLLM does."""

    def __init__(self, llm: torch.nn.Module, tokenizer: object) -> None:
        self.llm, self.tokenizer, self.calls = llm, tokenizer, 0

    def letter_logprobs_embedded(self, embeddings: list[torch.Tensor], num_choices: list[int]) -> list[np.ndarray]:
        self.calls += 1
        return embedded_letter_logprobs(self.llm, self.tokenizer, embeddings, num_choices)


@PROMPTS
def test_prompt_embeddings_reproduce_the_padded_batch(synth_dir: Path, tiny_llm: Path, tmp_path: Path,
                                                      shape: dict) -> None:
    """What an engine receives as prompt embeddings (soft tokens spliced in, padding dropped) scores the
    letters exactly as the joint model does on the left-padded batch, with and without the soft prompt."""
    finetune(tiny_recipe(synth_dir, tiny_llm, tmp_path / "run", train={"max_steps": 2}, **shape), progress=False)
    ranker = TunedRanker.load(tmp_path / "run", batch_size=3)
    ds = ranker.builder.dataset
    users = [ds.users.external(u) for u in (0, 1, 2)]
    cands = [[ds.items.external(i) for i in range(8)], [ds.items.external(i) for i in range(3, 7)],
             [ds.items.external(i) for i in range(10, 16)]]  # different lengths: the batch is padded
    want = {soft: ranker.letter_logprobs(users, cands, soft_prompt=soft) for soft in (True, False)}
    ranker.engine = UnpaddedEngine(ranker.model.llm, ranker.tokenizer)
    for soft in (True, False):
        got = ranker.letter_logprobs(users, cands, soft_prompt=soft)
        np.testing.assert_allclose(got, want[soft], atol=1e-4)
    assert ranker.engine.calls == 2
    assert not np.allclose(want[True][0], want[False][0])
    with pytest.raises(Exception, match="unknown engine 'tgi'; choose one of transformers, vllm"):
        TunedRanker.load(tmp_path / "run", engine="tgi")


def test_bf16_falls_back_to_float32_on_a_cpu_without_native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    from kerec.finetune import train

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(train, "cpu_has_bf16", lambda: False)  # the CPU flag itself is this machine's fact
    with pytest.warns(UserWarning, match="no native bf16"):
        assert train.effective_precision("bf16") == "no"
    assert train.effective_precision("no") == "no"
    monkeypatch.setattr(train, "cpu_has_bf16", lambda: True)
    assert train.effective_precision("bf16") == "bf16"


def test_residual_loss_scores_the_letter_by_its_logit_plus_the_gnn_score(synth_dir: Path, tiny_llm: Path,
                                                                        tmp_path: Path) -> None:
    beta = 2.5
    recipe = tiny_recipe(synth_dir, tiny_llm, tmp_path, train={"residual": beta}, **COMPACT)
    prepared, gnn, graph, _ = setup.retriever(recipe, progress=False)
    # A fitted item–item head: the residual's GNN score is the one the retriever ranks with, head included.
    ds = prepared.dataset
    gnn.head = ItemHead(num_items=ds.num_items)
    gnn.head.set(ease_weights(item_gram(prepared.split.train, ds.num_users, ds.num_items), 10.0), mix=0.7, reg=10.0)
    built = setup.samples(recipe, prepared, gnn, graph, None, progress=False)
    samples = [s for s in built if s.kind == "ranking"][:3] + [s for s in built if s.kind == "explanation"][:1]
    base = setup.load_llm(recipe, "cpu")
    model = setup.joint_model(recipe, base.model, gnn, base.tokenizer)
    model.eval()  # no LoRA dropout (it is 0 anyway): the two passes below must see the same network
    batch = collate([encode(base.tokenizer, s) for s in samples], base.tokenizer.pad_token_id)
    l_llm, _, _ = model(graph, batch)

    # The same loss written out token by token, from the model's logits and the retriever's scores.
    answer = batch.labels.shape[1]
    with torch.no_grad():
        logits = model.logits(graph, batch, answer + 1)[:, :-1].float()
        emb = gnn(graph)
    assert emb.head is not None
    letters = [base.tokenizer.encode(chr(ord("A") + n), add_special_tokens=False)[0] for n in range(8)]
    terms = []
    for b, sample in enumerate(samples):
        positions = [p for p in range(answer) if batch.labels[b, p] != -100]
        for n, p in enumerate(positions):
            label = int(batch.labels[b, p])
            if sample.kind == "ranking" and n == 0:
                c = len(sample.items)
                raw = emb.scores(torch.tensor([sample.user]))[0, list(sample.items)].double().numpy()
                z = (raw - raw.mean()) / np.sqrt(raw.var() + 1e-6)
                fused = logits[b, p, letters[:c]].double().numpy() + beta * z
                target = letters.index(label)
                terms.append(np.logaddexp.reduce(fused) - fused[target])
            else:
                terms.append(float(torch.logsumexp(logits[b, p], -1) - logits[b, p, label]))
    assert sample.kind == "explanation" and len(terms) > 3 * 3  # every row's answer tokens were counted
    assert l_llm.item() == pytest.approx(float(np.mean(terms)), rel=1e-4)
    model.residual = 0.0  # the plain loss: full-vocabulary letters
    assert abs(model(graph, batch)[0].item() - l_llm.item()) > 1e-3


def test_residual_training_without_letter_ids_fails_clearly(synth_dir: Path, tiny_llm: Path, tmp_path: Path) -> None:
    recipe = tiny_recipe(synth_dir, tiny_llm, tmp_path, train={"residual": 1.0}, **COMPACT)
    prepared, gnn, graph, _ = setup.retriever(recipe, progress=False)
    sample = next(s for s in setup.samples(recipe, prepared, gnn, graph, None, progress=False) if s.kind == "ranking")
    base = setup.load_llm(recipe, "cpu")
    model = setup.joint_model(recipe, base.model, gnn)  # no tokenizer: a scoring model
    batch = collate([encode(base.tokenizer, sample)], base.tokenizer.pad_token_id)
    with pytest.raises(FinetuneError, match="build the model with the tokenizer"):
        model(graph, batch)


def test_joint_scores_are_the_letters_plus_beta_times_the_tuned_gnns_scores(synth_dir: Path, tiny_llm: Path,
                                                                           tmp_path: Path) -> None:
    from kerec.finetune import checkpoint as ck
    from kerec.gnn.checkpoint import Checkpoint
    from kerec.gnn import load_retriever, prepare_from_checkpoint

    recipe = tiny_recipe(synth_dir, tiny_llm, tmp_path / "run", train={"max_steps": 2, "residual": 2.0}, **COMPACT)
    finetune(recipe, progress=False)
    ranker = TunedRanker.load(tmp_path / "run")
    assert ranker.residual == 2.0
    ds = ranker.builder.dataset
    users = [ds.users.external(0), ds.users.external(1)]
    idx = [list(range(8)), list(range(8, 13))]
    cands = [[ds.items.external(i) for i in row] for row in idx]
    z = ranker.gnn_scores(users, cands)

    # The same scores by another path: the run's retriever checkpoint loaded as a plain retriever.
    ckpt = Checkpoint.load(ck.resolve(tmp_path / "run") / "retriever.pt")
    model, graph = load_retriever(ckpt, prepare_from_checkpoint(ckpt, str(synth_dir)))
    model.eval()
    with torch.no_grad():
        emb = model(graph)
    for row, (u, items) in enumerate(zip((0, 1), idx)):
        raw = emb.scores(torch.tensor([u]))[0, items].double().numpy()
        np.testing.assert_allclose(z[row, : len(items)], (raw - raw.mean()) / np.sqrt(raw.var() + 1e-6), atol=1e-5)
    assert np.isneginf(z[1, 5:]).all()
    with pytest.raises(FinetuneError, match="tuned with at most 8"):  # one soft-prompt slot per candidate
        ranker.gnn_scores(users[:1], [[ds.items.external(i) for i in range(9)]])

    joint = ranker.joint_scores(users, cands)
    want = ranker.letter_logprobs(users, cands) + 2.0 * z
    np.testing.assert_allclose(joint[0], want[0], rtol=1e-6)
    np.testing.assert_allclose(joint[1, :5], want[1, :5], rtol=1e-6)
    ranker.model.residual = 0.0  # as a run tuned without the residual loss
    with pytest.raises(FinetuneError, match="train.residual"):
        ranker.joint_scores(users, cands)


def test_eval_scores_the_tuned_gnn_and_the_joint_ranking_of_a_residual_run(synth_dir: Path, tiny_llm: Path,
                                                                           tmp_path: Path) -> None:
    from kerec.eval.config import EvalConfigError, config_from_dict
    from kerec.eval.harness import evaluate

    twenty = {**COMPACT, "data": {**COMPACT["data"], "candidates": 20}}  # the protocol's GNN top-20 lists
    finetune(tiny_recipe(synth_dir, tiny_llm, tmp_path / "run", train={"max_steps": 2, "residual": 2.0}, **twenty),
             progress=False)
    raw = {"name": "synth", "dataset": {"path": str(synth_dir)}, "seeds": [1],
           "systems": ["random", "kerec", "llm-soft", "fused", "gnn-tuned", "joint", "gnn-recency"],
           "retriever": {"model": {"embedding_dim": 16, "use_text": False},
                         "train": {"epochs": 5, "batch_size": 64, "lr": 0.01, "patience": 5}},
           "protocols": {"candidates": {"negatives": 7, "users": 8, "batch": 4}},
           "llm": {"batch_size": 4, "finetune": str(tmp_path / "run")}, "anchors": {"recbole": []}}
    report = evaluate(config_from_dict(raw), out=tmp_path / "out", work=tmp_path / "work", progress=False)
    for variant, rows in report.results["candidates"]["llm_stage"].items():
        assert {"kerec", "random", "llm-soft", "gnn-tuned", "joint"} <= set(rows), variant
        for system in ("gnn-tuned", "joint"):
            assert rows[system]["1"]["users"] == 8 and rows[system]["1"]["valid_ratio"] == 1.0
            assert set(rows[system]["1"]["vs_gnn"]) == {"test", "p_value", "wins", "losses"}
    # The rows are the ranker's own scores of the protocol's tasks (random negatives, drawn as the harness does).
    from kerec.eval import candidates as cp
    from kerec.eval.systems import Systems

    prepared = Systems(config_from_dict(raw), tmp_path / "work", progress=False).prepared()
    tasks = cp.negative_tasks(prepared, "test", cp.sample_users(prepared, "test", 8, 1), 1, 7)
    ranker = TunedRanker.load(tmp_path / "run")
    ids = prepared.dataset
    args = ([ids.users.external(t.user) for t in tasks], [[ids.items.external(int(i)) for i in t.items] for t in tasks])
    rows = report.results["candidates"]["llm_stage"]["random negatives"]
    for system, scores in (("joint", ranker.joint_scores(*args)), ("gnn-tuned", ranker.gnn_scores(*args))):
        want = cp.rank_metrics(list(scores), tasks)
        assert {m: rows[system]["1"][m] for m in want} == pytest.approx({m: float(v.mean()) for m, v in want.items()})
    # gnn-recency: the reference GNN fused with the recency cosine, the weight chosen on validation; no LLM.
    from kerec.data.history import training_histories

    fusion = report.results["candidates"]["fusion"]["1"]
    assert fusion["recency_items"] == 5 and str(fusion["recency_weight"]) in fusion["recency_sweep"]
    reference = Systems(config_from_dict(raw), tmp_path / "work", progress=False).get("kerec", 1)
    recent = cp.recency_scores(reference.embeddings.items, tasks, training_histories(prepared.dataset, prepared.split.train), 5)
    want = cp.rank_metrics(fuse_all(cp.retriever_scores(reference, tasks), recent, fusion["recency_weight"]), tasks)
    assert {m: rows["gnn-recency"]["1"][m] for m in want} == pytest.approx({m: float(v.mean()) for m, v in want.items()})
    assert set(rows["fused"]["1"]["vs_recency"]) == {"test", "p_value", "wins", "losses"}  # the LLM vs its feature
    text = (tmp_path / "out" / "report.md").read_text()
    assert "GNN + recency, no LLM (seed 1)" in text and "GNN + LLM fused vs GNN + recency, no LLM" in text
    # joint reuses the llm-soft letters: one shard per variant, not two.
    assert len(list((tmp_path / "work" / "shards").glob("llm-soft-seed1-test-*.jsonl"))) == 2
    assert "tuned GNN + LLM, as trained" in (tmp_path / "out" / "report.md").read_text()

    finetune(tiny_recipe(synth_dir, tiny_llm, tmp_path / "plain", train={"max_steps": 1}, **twenty), progress=False)
    plain = {**raw, "llm": {**raw["llm"], "finetune": str(tmp_path / "plain")}}
    with pytest.raises(EvalConfigError, match="tuned without train.residual"):
        evaluate(config_from_dict(plain), out=tmp_path / "out2", work=tmp_path / "work2", progress=False)
