from __future__ import annotations

import numpy as np
import pytest

from kerec.data import KerecError
from kerec.explain import check
from kerec.data.history import training_histories
from kerec.finetune.data import DataConfig, InstructionBuilder
from kerec.finetune.errors import FinetuneError, RecipeError
from kerec.finetune.soft_prompt import SOFT_TOKEN
from kerec.prompting import LETTERS

CONFIG = DataConfig(ranking_samples=30, explanation_samples=6, candidates=10, seed=7)


@pytest.fixture(scope="module")
def samples(synth, synth_store):
    return InstructionBuilder(synth, synth_store, CONFIG).build(progress=False)


def test_same_seed_same_samples_other_seed_others(synth, synth_store, samples) -> None:
    again = InstructionBuilder(synth, synth_store, CONFIG).build(progress=False)
    assert [s.to_dict() for s in again] == [s.to_dict() for s in samples]
    other = InstructionBuilder(synth, synth_store, DataConfig(**{**CONFIG.__dict__, "seed": 8})).build(progress=False)
    assert [s.to_dict() for s in other] != [s.to_dict() for s in samples]


def test_sizes_and_kinds(samples) -> None:
    kinds = [s.kind for s in samples]
    assert kinds.count("ranking") == 30 and kinds.count("explanation") == 6


def test_training_split_only_and_no_target_in_its_own_history(synth, samples) -> None:
    train = {(int(u), int(i)) for u, i in synth.split.train}
    held_out = {(int(u), int(i)) for u, i in synth.split.valid} | {(int(u), int(i)) for u, i in synth.split.test}
    histories = training_histories(synth.dataset, synth.split.train)
    for s in samples:
        assert (s.user, s.target) in train
        assert s.target not in s.history
        assert all((s.user, h) in train for h in s.history)
        # the history is exactly the training items before the target, oldest first
        assert list(s.history) == histories[s.user][: histories[s.user].index(s.target)]
        if s.kind == "ranking":
            negatives = [i for i in s.items if i != s.target]
            assert len(s.items) == 10 and len(set(s.items)) == 10
            assert not any((s.user, i) in train for i in negatives)
            assert not any((s.user, i) in held_out and i == s.target for i in negatives)


def test_answer_letter_names_the_target(synth, samples) -> None:
    for s in (s for s in samples if s.kind == "ranking"):
        letter = LETTERS[s.items.index(s.target)]
        assert s.answer == letter
        prompt = s.messages[-1]["content"]
        assert f"{letter}. {synth.dataset.item_title(s.target)}\n" in prompt + "\n"
        history_block = prompt.split("Candidate items:")[0]
        assert synth.dataset.item_title(s.target) + "\n" not in history_block + "\n"


def test_explanations_cite_real_evidence(synth, synth_store, samples) -> None:
    ext = synth.dataset.items.external
    for s in (s for s in samples if s.kind == "explanation"):
        assert s.cited and s.facts
        recent = {ext(i) for i in s.history[-CONFIG.history_for_evidence:]}
        numbers, reason = check(s.answer, s.evidence, synth_store, recent, ext(s.target))
        assert reason is None, (s.answer, reason)
        assert numbers == s.cited


def test_bad_sizes_are_named() -> None:
    with pytest.raises(RecipeError, match="data.candidates"):
        DataConfig(candidates=21)
    with pytest.raises(RecipeError, match="data.hard_negatives"):
        DataConfig(candidates=5, hard_negatives=5)


def test_compact_samples_show_the_last_titles_and_a_placeholder_per_soft_token(synth, synth_store) -> None:
    config = DataConfig(ranking_samples=10, explanation_samples=2, candidates=6, seed=7, prompt="ranking-compact",
                        history_in_prompt=2, candidate_titles=False)
    built = InstructionBuilder(synth, synth_store, config, profile_tokens=3).build(progress=False)
    title = synth.dataset.item_title
    for s in (s for s in built if s.kind == "ranking"):
        assert s.answer == LETTERS[s.items.index(s.target)]
        user = s.messages[-1]["content"]
        assert user.count(SOFT_TOKEN) == 3 + 6 and f"The user{SOFT_TOKEN * 3} recently chose: " in user
        assert "; ".join(title(i) for i in s.history[-2:]) + "\nCandidates:\n" in user
        assert "A" + SOFT_TOKEN + " B" + SOFT_TOKEN in user and not any(title(i) in user for i in s.items)
    # Explanations keep their full text prompt, without placeholders.
    assert all(SOFT_TOKEN not in s.messages[-1]["content"] for s in built if s.kind == "explanation")


def test_no_history_titles_means_none_not_all(synth, synth_store) -> None:
    config = DataConfig(ranking_samples=5, explanation_samples=0, candidates=4, seed=7, history_in_prompt=0)
    for s in InstructionBuilder(synth, synth_store, config).build(progress=False):
        assert s.history and "oldest first:\n(none)\n" in s.messages[-1]["content"]


def test_scoring_with_facts_as_text_shows_real_evidence_and_names_the_candidates(synth, synth_store) -> None:
    config = DataConfig(ranking_samples=1, explanation_samples=0, candidates=6, seed=7, prompt="ranking-compact",
                        history_in_prompt=2, candidate_titles=False, evidence_per_item=2)
    builder = InstructionBuilder(synth, synth_store, config, profile_tokens=2)
    user = next(u for u, items in sorted(builder.history.items()) if len(items) >= 3)
    history, items = builder.history[user], builder.negatives(user, 6, np.random.default_rng(0))
    title = synth.dataset.item_title
    as_tuned = builder.ranking_parts(user, history, items).messages[-1]["content"]
    assert "Facts:" not in as_tuned  # the prompt it was tuned on: letters only, no fact lines
    assert "\nCandidates:\n" + " ".join(f"{letter}{SOFT_TOKEN}" for letter in LETTERS[:6]) + "\n" in as_tuned
    assert builder.ranking_parts(user, history, items, facts=0).messages[-1]["content"] == as_tuned
    parts = builder.ranking_parts(user, history, items, facts=1)
    text = parts.messages[-1]["content"]
    shown = [e for i in items for e in parts.evidence[i][:1]]
    assert shown, "the synthetic graph links this user's history to some candidate"
    assert all(f"[{n}] {e.text}" in text for n, e in enumerate(shown, 1))
    assert all(f"{LETTERS[n]}. {title(i)}{SOFT_TOKEN}" in text for n, i in enumerate(items))
    assert text.count(SOFT_TOKEN) == 2 + 6
    with pytest.raises(FinetuneError, match="facts per candidate must be >= 0"):
        builder.ranking_parts(user, history, items, facts=-1)


def test_hard_negatives_come_from_the_gnn_top_pool_of_unseen_items(synth, synth_store) -> None:
    import torch

    from kerec.gnn.models import build_model
    from kerec.gnn import RetrieverSpec, build_graph

    spec = RetrieverSpec(model="kerec", embedding_dim=8, num_layers=1, kg_layers=1, use_text=False)
    graph = build_graph(synth, spec, None)
    torch.manual_seed(0)
    model = build_model("kerec", graph, embedding_dim=8, num_layers=1, kg_layers=1, use_text=False)
    config = DataConfig(ranking_samples=12, explanation_samples=0, candidates=10, hard_negatives=4, hard_pool=6, seed=3)
    builder = InstructionBuilder(synth, synth_store, config, model=model, graph=graph)
    scores = builder._scores.scores(torch.arange(synth.dataset.num_users)).numpy()
    seen = {u: set(items) for u, items in training_histories(synth.dataset, synth.split.train).items()}
    pool = np.flatnonzero(synth.allowed_items)
    for s in (s for s in builder.build(progress=False) if s.kind == "ranking"):
        ranked = pool[np.argsort(-scores[s.user][pool], kind="stable")]
        top = [int(i) for i in ranked if int(i) not in seen[s.user]][:6]
        negatives = [i for i in s.items if i != s.target]
        assert len(set(negatives) & set(top)) >= 4  # 4 drawn from the top 6; uniform ones may land there too
        assert not set(negatives) & seen[s.user]
    with pytest.raises(FinetuneError, match="hard_negatives needs a trained retriever"):
        InstructionBuilder(synth, synth_store, config)


def test_gnn_holdout_targets_are_pairs_the_gnn_never_saw_against_all_other_training_items(synth_dir, synth_store) -> None:
    from kerec.gnn import prepare

    held_out = prepare(str(synth_dir), split="random", seed=1, gnn_holdout_fraction=0.2)
    config = DataConfig(ranking_samples=25, explanation_samples=3, candidates=10, targets="gnn_holdout", seed=7)
    samples = InstructionBuilder(held_out, synth_store, config).build(progress=False)
    held = {(int(u), int(i)) for u, i in held_out.gnn_holdout}
    histories = training_histories(held_out.dataset, held_out.split.train)
    assert [s.kind for s in samples].count("ranking") == 25
    for s in samples:
        assert (s.user, s.target) in held
        assert list(s.history) == [i for i in histories[s.user] if i != s.target]  # every other training item
        assert not set(s.items) - {s.target} & set(histories[s.user])  # negatives: never in training
    with pytest.raises(FinetuneError, match="--gnn-holdout"):
        InstructionBuilder(prepare(str(synth_dir), split="random", seed=1), synth_store, config)
    with pytest.raises(RecipeError, match="data.targets"):
        DataConfig(targets="valid")


def test_gnn_holdout_next_targets_are_each_users_latest_pairs_after_their_history(synth_dir, synth_store) -> None:
    from kerec.data.history import pair_timestamps
    from kerec.gnn import prepare

    latest = prepare(str(synth_dir), split="loo", gnn_holdout_fraction=0.2, gnn_holdout_order="latest")
    held = {(int(u), int(i)) for u, i in latest.gnn_holdout}
    histories = training_histories(latest.dataset, latest.split.train)
    stamps = dict(zip(map(tuple, latest.split.train.tolist()), pair_timestamps(latest.dataset, latest.split.train)))
    assert len(set(stamps.values())) > 10  # real, varied timestamps: the order below is not vacuous
    for u, items in histories.items():  # the holdout is each user's latest training pairs
        kept = [stamps[(u, i)] for i in items if (u, i) in held]
        rest = [stamps[(u, i)] for i in items if (u, i) not in held]
        assert kept and rest and min(kept) >= max(rest)
    config = DataConfig(ranking_samples=20, explanation_samples=2, candidates=10, targets="gnn_holdout_next", seed=7)
    samples = InstructionBuilder(latest, synth_store, config).build(progress=False)
    for s in samples:
        assert (s.user, s.target) in held
        items = histories[s.user]
        assert list(s.history) == items[: items.index(s.target)]  # the items before it, oldest first
    with pytest.raises(FinetuneError, match="data.targets: gnn_holdout_next needs"):
        InstructionBuilder(prepare(str(synth_dir), split="loo"), synth_store, config)
    with pytest.raises(KerecError, match="unknown gnn holdout order 'first'"):
        prepare(str(synth_dir), split="loo", gnn_holdout_fraction=0.2, gnn_holdout_order="first")
