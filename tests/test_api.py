"""kerec.api on the synthetic dataset (tests/gnn/synthetic.py: each user likes one of 4 genres), with a
real retriever trained here and the in-process graph store. The LLM stage runs with the real SmolLM2 in
tests/test_api_llm.py; these tests cover everything around it (llm=None: GNN order, templated reasons)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kerec.api import Recommender, Settings
from kerec.data import KerecError, UnknownIdError, load_dataset
from kerec.explain import check
from kerec.kg import MemoryStore, build_ckg

from .conftest import TINY_ATOMIC, interrupt_load
from .gnn.synthetic import GENRES, write_synthetic
from .tiny_retriever import train_tiny_retriever


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("api")
    data = write_synthetic(root / "synth")
    # One user listed in .user but without any interaction: the empty-history case.
    (data / "synth.user").write_text("user_id:token\tage:token\n" + "".join(f"u{u}\t30\n" for u in range(40)) + "u_new\t20\n")
    out = root / "run"
    return data, train_tiny_retriever(data, out)


@pytest.fixture(scope="module")
def rec(trained: tuple[Path, Path]) -> Recommender:
    data, ckpt = trained
    return Recommender.load(ckpt, data=str(data), llm=None)


def genre(item: str) -> int:
    return int(item[1:]) % GENRES


def test_recommend_finds_the_planted_genre_and_skips_seen_items(rec: Recommender) -> None:
    hits = 0
    for u in range(8):
        recs = rec.recommend(f"u{u}", k=3)
        seen = {h.item for h in rec.store.history(f"u{u}")}
        assert [r.rank for r in recs] == [1, 2, 3]
        assert all(r.item_id in rec.dataset.items and r.item_id not in seen for r in recs)
        assert [r.score for r in recs] == sorted((r.score for r in recs), reverse=True)
        hits += sum(genre(r.item_id) == u % GENRES for r in recs)
    assert hits >= 18  # of 24; a random ranker expects 6


def test_explanations_without_llm_are_templated_from_real_facts(rec: Recommender) -> None:
    for r in rec.recommend("u1", k=4):
        assert r.explanation_source in ("template", "none") and r.llm_logprob is None
        if r.evidence:
            # one sentence summing the evidence up, passing the same check as an LLM's text
            history = set(rec.history("u1"))
            assert check(r.explanation, r.evidence, rec.store, history, r.item_id, rec.titles) == (r.cited, None)
            found = rec.store.facts(list(r.cited_facts))
            assert set(found) == set(r.cited_facts) and r.cited_facts
            assert any(r.item_id in (f.head.id, f.tail.id) for f in found.values())
        assert "m." not in (r.explanation or "")  # raw Freebase-style ids are never shown as names


def test_candidates_restrict_and_exclude_seen_can_be_off(rec: Recommender) -> None:
    recs = rec.recommend("u0", k=5, candidates=["i1", "i2", "i3"], explain=False)
    assert {r.item_id for r in recs} <= {"i1", "i2", "i3"} and len(recs) <= 3
    assert all(r.explanation is None for r in recs)
    seen = [h.item for h in rec.store.history("u0")]
    recs = rec.recommend("u0", k=2, candidates=seen[:2], exclude_seen=False, explain=False)
    assert {r.item_id for r in recs} == set(seen[:2])


def test_batched_equals_single(rec: Recommender) -> None:
    many = rec.recommend_many(["u2", "u3"], k=3, explain=False)
    assert [r.item_id for r in many["u2"]] == [r.item_id for r in rec.recommend("u2", k=3, explain=False)]
    assert set(many) == {"u2", "u3"}


def test_a_user_without_history_gets_popular_items_flagged(rec: Recommender) -> None:
    recs = rec.recommend("u_new", k=5)
    from kerec.data.history import popularity_scores

    counts = popularity_scores(rec.prepared.split.train, rec.dataset.num_items).tolist()
    assert all(r.basis == "popularity" for r in recs)
    assert [counts[rec.dataset.items.index(r.item_id)] for r in recs] == sorted(counts, reverse=True)[:5]
    # No history, so no paths: evidence is the items' own attributes.
    assert all(e.kind == "attribute" for r in recs for e in r.evidence)
    assert rec.recommend("u0", k=1)[0].basis == "gnn"


def test_bad_requests_are_specific(rec: Recommender) -> None:
    with pytest.raises(UnknownIdError, match="nobody"):
        rec.recommend("nobody")
    with pytest.raises(UnknownIdError, match="i999"):
        rec.recommend("u0", candidates=["i1", "i999"])
    with pytest.raises(KerecError, match="k=49 is more than the 48 items"):
        rec.recommend("u0", k=49)
    with pytest.raises(KerecError, match="k must be at least 1"):
        rec.recommend("u0", k=0)
    seen = [h.item for h in rec.store.history("u0")]
    with pytest.raises(KerecError, match="no item left"):
        rec.recommend("u0", candidates=seen)
    with pytest.raises(KerecError, match="candidates must be between 1 and 20"):
        Settings(candidates=21)
    with pytest.raises(KerecError, match="explanations must be 'auto', 'llm' or 'template', got 'gpt'"):
        Settings(explanations="gpt")


def test_store_of_another_dataset_and_missing_default_checkpoint(trained: tuple[Path, Path], tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    data, ckpt = trained
    other = MemoryStore()
    other.load(build_ckg(load_dataset(TINY_ATOMIC)), progress=False)
    with pytest.raises(KerecError, match="holds dataset 'tiny'"):
        Recommender.load(ckpt, data=str(data), store=other, llm=None)
    monkeypatch.setenv("KEREC_HOME", str(tmp_path))
    with pytest.raises(KerecError, match="run `kerec train retriever` first"):
        Recommender.load("default", llm=None)


def test_a_store_whose_load_did_not_finish_is_reported_as_incomplete(trained: tuple[Path, Path]) -> None:
    """Before, the message was "holds no complete dataset", the same as for an empty store: now it says the
    store holds a partial load of which dataset and what to do."""
    data, ckpt = trained
    half = MemoryStore()
    interrupt_load(half, load_dataset(str(data)))
    with pytest.raises(KerecError, match=r"holds an INCOMPLETE load of dataset 'synth'.*Run `kerec kg load` again"):
        Recommender.load(ckpt, data=str(data), store=half, llm=None)


def test_training_history_and_candidate_scores_in_given_order(trained: tuple[Path, Path]) -> None:
    data, ckpt = trained
    rec = Recommender.load(ckpt, data=str(data), llm=None, settings=Settings(history="train"))
    train_items = {rec.dataset.items.external(int(i)) for u, i in rec.prepared.split.train
                   if u == rec.dataset.users.index("u0")}
    assert set(rec.history("u0")) == train_items
    assert len(rec.history("u0")) < len(rec.store.history("u0"))  # valid/test items are held out
    cands = ["i8", "i1", "i4"]
    [scores] = rec.score_candidates(["u0"], [cands])
    assert scores.items == cands and scores.llm is None
    # The retriever rebuilt from its checkpoint, independently of the Recommender: u · c in the order given.
    from kerec.gnn import Checkpoint, load_retriever, prepare_from_checkpoint

    saved = Checkpoint.load(ckpt)
    model, graph = load_retriever(saved, prepare_from_checkpoint(saved, str(data)))
    with torch.no_grad():
        emb = model(graph)
    u = rec.dataset.users.index("u0")
    expected = [float(emb.users[u] @ emb.items[rec.dataset.items.index(c)]) for c in cands]
    assert scores.gnn.tolist() == pytest.approx(expected)


def test_with_settings_returns_a_new_recommender_and_leaves_the_old_one(rec: Recommender) -> None:
    few = rec.with_settings(candidates=3, evidence_per_item=1)
    assert few is not rec and few.settings.candidates == 3 and rec.settings.candidates == Settings().candidates
    assert few.store is rec.store and few.dataset is rec.dataset  # the loaded stages are shared
    assert all(len(r.evidence) <= 1 for r in few.recommend("u0", k=3))
    with pytest.raises(KerecError, match="unknown setting.*candidatez"):
        rec.with_settings(candidatez=3)
    with pytest.raises(AttributeError):
        rec.settings = Settings()  # type: ignore[misc]


def test_the_fusion_weight_saved_in_the_checkpoint_loads_strictly(trained: tuple[Path, Path], tmp_path: Path) -> None:
    from dataclasses import replace

    import torch

    from kerec.gnn import Checkpoint, CheckpointError
    from kerec.gnn.checkpoint import FusionChoice

    data, ckpt = trained
    choice = FusionChoice(weight=0.3, llm="default", chosen_on="valid, 20 candidates, seed 1", valid_acc=0.5, users=12)
    path = replace(Checkpoint.load(ckpt), fusion=choice).save(tmp_path / "fused.pt")
    assert Checkpoint.load(path).fusion == choice
    rec = Recommender.load(path, data=str(data), llm="none")  # "none", as on the command line
    assert rec.llm is None and (rec.fusion_weight, rec.fusion_source) == (0.0, "default")  # no LLM: nothing to fuse
    assert rec.with_settings(fusion_weight=0.7).fusion_weight == 0.7
    raw = torch.load(path, weights_only=True)
    for bad, match in (({**choice.to_dict(), "extra": 1}, "exactly"), ({**choice.to_dict(), "weight": 1.5}, "between 0 and 1"),
                       ({**choice.to_dict(), "users": "12"}, "fusion.users must be int")):
        torch.save({**raw, "fusion": bad}, tmp_path / "bad.pt")
        with pytest.raises(CheckpointError, match=match):
            Checkpoint.load(tmp_path / "bad.pt")


def test_load_reads_the_kg_into_a_store_once(trained: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-process store built for the Recommender also gives the GNN its KG tensors (it used to be built
    two to four times per load)."""
    loads = []
    original = MemoryStore.load

    def counted(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        loads.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MemoryStore, "load", counted)
    data, ckpt = trained
    Recommender.load(ckpt, data=str(data), llm=None)
    assert len(loads) == 1


def test_each_llm_text_is_checked_once(rec: Recommender, monkeypatch: pytest.MonkeyPatch) -> None:
    """An LLM-written explanation goes through the grounding check once (it used to be checked twice)."""
    import kerec.api.explainer as explainer

    class Echo:  # writes the same uncited sentence every time: every attempt fails the check
        name, on_cpu = "echo", False

        def generate(self, prompts, **kwargs):  # type: ignore[no-untyped-def]
            return ["A fine film you will enjoy." for _ in prompts]

        def letter_logprobs(self, prompts, n):  # type: ignore[no-untyped-def]
            import numpy as np

            return np.full((len(prompts), n), -np.log(n))

    calls = []
    original = explainer.check

    def counted(text, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(text)
        return original(text, *args, **kwargs)

    monkeypatch.setattr(explainer, "check", counted)
    writing = rec.with_llm(Echo()).with_settings(explanations="llm", explanation_attempts=2)  # type: ignore[arg-type]
    recs = writing.recommend("u0", k=2)
    with_evidence = sum(1 for r in recs if r.evidence)
    assert with_evidence and len(calls) == 2 * with_evidence  # two attempts each, one check per attempt
    assert all(r.explanation_source == "template" and len(r.rejected) == 2 for r in recs if r.evidence)


def test_ranking_prompts_need_no_llm(rec: Recommender) -> None:
    """Benchmarks render the ranking prompt from a Recommender without an LLM, to send it to several LLMs."""
    [messages] = rec.ranking_prompts(["u0"])
    text = messages[-1]["content"]
    top = [r.title for r in rec.recommend("u0", k=rec.settings.candidates, explain=False)]
    assert all(t in text for t in top)  # the GNN's candidates, lettered
    assert text.index(top[0]) < text.index(top[1])  # in GNN order
