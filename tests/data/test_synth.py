"""The synthetic generator: exact sizes, determinism, kerec's reader, and a planted taste that KG and text carry."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kerec.cli import main
from kerec.data import KerecError, load_dataset, random_split
from kerec.data.synth import SynthConfig, synthesize
from kerec.metrics.ranking import evaluate_full_ranking

TINY = SynthConfig(users=50, items=100, interactions=1000, triples=600, tastes=4)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    synthesize(TINY, out)
    return out


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_same_seed_same_bytes_other_seed_other_bytes(tiny: Path, tmp_path: Path) -> None:
    synthesize(TINY, tmp_path / "again")
    assert _files(tmp_path / "again") == _files(tiny)
    synthesize(SynthConfig(**{**TINY.__dict__, "seed": 7}), tmp_path / "other")
    other = _files(tmp_path / "other")
    assert set(other) == set(_files(tiny))
    assert other["synth.inter"] != _files(tiny)["synth.inter"]


def test_loads_with_kerec_reader_at_the_asked_sizes(tiny: Path) -> None:
    ds = load_dataset(tiny)
    counts = ds.describe()
    assert (counts["users"], counts["items"], counts["interactions"], counts["kg_triples"]) == (50, 100, 1000, 600)
    assert counts["item_entity_links"] == 100
    assert counts["social_links"] == 250  # friends 5.0 × 50 users
    assert counts["kg_relations"] == 5
    pairs = ds.interactions.pairs()
    assert len(np.unique(pairs, axis=0)) == len(pairs)  # distinct pairs
    assert np.bincount(pairs[:, 0], minlength=50).min() >= 1
    assert set(np.unique(ds.interactions.rating)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert ds.interactions.has_timestamps
    assert ds.item_title(0) and not ds.item_title(0).startswith("item ")
    assert "class" in ds.attribute_fields["item"]  # genres become KG facts and item text


def test_popularity_is_heavy_tailed(tiny: Path) -> None:
    counts = np.sort(np.bincount(load_dataset(tiny).interactions.item, minlength=100))[::-1]
    # The top 10% of items hold over twice their uniform share (capped here: 20 distinct items per user).
    assert counts[:10].sum() > 2 * 0.10 * counts.sum()


def _profile_scores(item_features: np.ndarray, train: np.ndarray, num_users: int) -> torch.Tensor:
    """A user's score of an item: idf-weighted overlap of the item's features with their training items'."""
    df = (item_features > 0).sum(axis=0)
    weighted = item_features * np.log((1 + len(item_features)) / (1 + df))
    profile = np.zeros((num_users, item_features.shape[1]))
    np.add.at(profile, train[:, 0], weighted[train[:, 1]])
    return torch.from_numpy(profile @ weighted.T).float()


def test_the_planted_taste_is_in_the_kg_and_the_text(tiny: Path) -> None:
    ds = load_dataset(tiny)
    split = random_split(ds, seed=0)

    def recall(scores: torch.Tensor) -> float:
        return evaluate_full_ranking(lambda u: scores[u], num_users=ds.num_users, num_items=ds.num_items,
                                     target=split.test, exclude=[split.train, split.valid]).metrics["recall@10"]

    item_of = {int(e): i for i, e in enumerate(ds.item_entity)}
    kg = np.zeros((ds.num_items, len(ds.entities)))
    for h, _, t in ds.triples:
        if int(h) in item_of:
            kg[item_of[int(h)], t] = 1.0
    genres = sorted({g for value in ds.item_fields["class"] for g in value})
    text = np.array([[g in value for g in genres] for value in ds.item_fields["class"]], dtype=float)
    gen = torch.Generator().manual_seed(0)
    chance = np.mean([recall(torch.rand(ds.num_users, ds.num_items, generator=gen)) for _ in range(20)])
    shuffled = kg[np.random.default_rng(0).permutation(ds.num_items)]  # the same KG, detached from the items
    with_kg = recall(_profile_scores(kg, split.train, ds.num_users))
    assert with_kg > 3 * chance
    assert with_kg > recall(_profile_scores(shuffled, split.train, ds.num_users)) + 0.2
    assert recall(_profile_scores(text, split.train, ds.num_users)) > 2 * chance


@pytest.mark.parametrize(("change", "message"), [
    ({"interactions": 100}, "at least 5 per user"),
    ({"triples": 10}, "--triples must be at least"),
    ({"friends": 40.0}, "--friends"),
    ({"name": "a/b"}, "plain file stem"),
])
def test_impossible_sizes_are_clear_errors(change: dict[str, object], message: str) -> None:
    with pytest.raises(KerecError, match=message):
        SynthConfig(**{**TINY.__dict__, **change})


def test_cli_writes_a_dataset_without_net(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "synth", "--users", "20", "--items", "40", "--interactions", "200", "--triples", "150",
                 "--friends", "0", "--out", str(tmp_path)]) == 0
    assert "inter 200" in capsys.readouterr().out
    assert not (tmp_path / "synth.net").exists()
    assert load_dataset(tmp_path).describe()["interactions"] == 200
