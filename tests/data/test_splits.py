from pathlib import Path

import numpy as np
import pytest

from kerec.data import (DataFormatError, Dataset, KerecError, Split, leave_one_out, load_split,
                        random_split, save_split)
from kerec.data.splits import split_counts

# RecBole 1.2.1's exact split, shipped in the repository (eval/anchors/): a missing copy is a failure.
ANCHOR = Path(__file__).resolve().parents[2] / "eval" / "anchors" / "ml100k-recbole-split"


def _rows(a: np.ndarray) -> set[tuple[int, int]]:
    return {(int(u), int(i)) for u, i in a}


@pytest.mark.parametrize(("total", "expected"), [
    (10, [8, 1, 1]), (5, [3, 1, 1]), (3, [1, 1, 1]), (2, [1, 0, 1]), (1, [1, 0, 0]), (20, [16, 2, 2]), (7, [5, 1, 1]),
])
def test_split_counts_match_recbole(total: int, expected: list[int]) -> None:
    # Hand-computed from RecBole 1.2.1's _calcu_split_ids: int(r*n) per part, train takes the rest, then
    # a part with 0 < r*n < 1 takes one from train while train keeps more than one.
    assert split_counts(total, (0.8, 0.1, 0.1)) == expected


def _check_partition(ds: Dataset, split: Split) -> None:
    parts = [_rows(split.train), _rows(split.valid), _rows(split.test)]
    assert sum(len(p) for p in parts) == len(ds.interactions)
    assert parts[0] | parts[1] | parts[2] == _rows(ds.interactions.pairs())
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    train_users = {u for u, _ in parts[0]}
    assert {u for u, _ in parts[1] | parts[2]} <= train_users


def test_random_split_properties(ml100k: Dataset) -> None:
    a, b = random_split(ml100k, seed=7), random_split(ml100k, seed=7)
    c = random_split(ml100k, seed=8)
    _check_partition(ml100k, a)
    assert all(np.array_equal(a.part(p), b.part(p)) for p in ("train", "valid", "test"))
    assert not np.array_equal(a.test, c.test)
    assert a.sizes() == c.sizes()  # per-user counts do not depend on the seed
    user0 = ml100k.interactions.user == 0
    n0 = int(user0.sum())
    assert [int((a.part(p)[:, 0] == 0).sum()) for p in ("train", "valid", "test")] == split_counts(n0, (0.8, 0.1, 0.1))


def test_random_split_rejects_bad_ratios(tiny: Dataset) -> None:
    with pytest.raises(KerecError, match="summing to 1"):
        random_split(tiny, (0.8, 0.3, 0.1))


def test_leave_one_out_known_answer(tiny: Dataset) -> None:
    s = leave_one_out(tiny)
    _check_partition(tiny, s)
    u, i = tiny.users.index, tiny.items.index
    # u1: i1@100 i2@200 i3@300 i4@400 → test i4, valid i3; u4 has one interaction → train only.
    assert (u("u1"), i("i4")) in _rows(s.test) and (u("u1"), i("i3")) in _rows(s.valid)
    assert (u("u4"), i("i6")) in _rows(s.train) and u("u4") not in set(s.test[:, 0].tolist())
    # train: u1 2 + u2 1 + u3 2 + u4 1.
    assert s.sizes() == {"train": 6, "valid": 3, "test": 3}


def test_leave_one_out_needs_timestamps(tiny_kgat: Dataset) -> None:
    with pytest.raises(KerecError, match="no timestamps"):
        leave_one_out(tiny_kgat)


def test_tsv_round_trip(tiny: Dataset, tmp_path: Path) -> None:
    split = random_split(tiny, seed=3)
    save_split(split, tiny, tmp_path)
    assert (tmp_path / "train.tsv").read_text().splitlines()[0] == "user_id\titem_id"
    back = load_split(tiny, tmp_path)
    assert all(_rows(back.part(p)) == _rows(split.part(p)) for p in ("train", "valid", "test"))


@pytest.mark.parametrize(("line", "what"), [
    ("u9\ti1", "unknown user id 'u9'"),
    ("u1\ti9", "unknown item id 'i9'"),
    ("u4\ti1", "(u4, i1) is not an interaction"),
    ("u1\ti1\textra", "expected 2 tab-separated columns"),
])
def test_load_split_rejects_bad_rows(tiny: Dataset, tmp_path: Path, line: str, what: str) -> None:
    save_split(random_split(tiny, seed=3), tiny, tmp_path)
    with (tmp_path / "valid.tsv").open("a") as fh:
        fh.write(line + "\n")
    with pytest.raises(DataFormatError) as info:
        load_split(tiny, tmp_path)
    assert "valid.tsv:" in str(info.value) and what in str(info.value)


def test_load_split_rejects_overlap(tiny: Dataset, tmp_path: Path) -> None:
    split = random_split(tiny, seed=3)
    save_split(split, tiny, tmp_path)
    u, i = split.train[0]
    with (tmp_path / "test.tsv").open("a") as fh:
        fh.write(f"{tiny.users.external(int(u))}\t{tiny.items.external(int(i))}\n")
    with pytest.raises(DataFormatError, match="already in train.tsv"):
        load_split(tiny, tmp_path)


def test_recbole_anchor_split_imports(ml100k: Dataset) -> None:
    split = load_split(ml100k.with_linked_items_only(), ANCHOR)
    assert split.sizes() == {"train": 78_836, "valid": 9_359, "test": 9_359}


def test_cold_start_split_moves_every_pair_of_cold_items(ml100k: Dataset) -> None:
    from kerec.data import cold_start_split

    split = random_split(ml100k, seed=1)
    cs = cold_start_split(split, ml100k.num_items, fraction=0.1, seed=4)
    active = np.unique(ml100k.interactions.item)
    assert cs.cold_items.size == round(0.1 * active.size)
    cold = set(cs.cold_items.tolist())
    for part in ("train", "valid", "test"):
        assert not cold & set(cs.warm.part(part)[:, 1].tolist())
    assert len(cs.cold_pairs) + sum(cs.warm.sizes().values()) == len(ml100k.interactions)
    assert set(cs.cold_pairs[:, 1].tolist()) == cold
    with pytest.raises(KerecError, match="fraction"):
        cold_start_split(split, ml100k.num_items, fraction=1.5)


def test_gnn_holdout_takes_a_seeded_share_of_each_users_training_pairs(ml100k: Dataset) -> None:
    from kerec.data import gnn_holdout, without_pairs

    split = random_split(ml100k, seed=1)
    held = gnn_holdout(split.train, fraction=0.1, seed=3)
    train = {(int(u), int(i)) for u, i in split.train}
    assert {(int(u), int(i)) for u, i in held} <= train
    per_user = np.bincount(split.train[:, 0], minlength=ml100k.num_users)
    kept = np.bincount(held[:, 0], minlength=ml100k.num_users)
    assert np.array_equal(kept, np.minimum((0.1 * per_user).astype(int), np.maximum(per_user - 1, 0)))
    assert np.array_equal(held, gnn_holdout(split.train, fraction=0.1, seed=3))
    assert not np.array_equal(held, gnn_holdout(split.train, fraction=0.1, seed=4))
    rest = without_pairs(split.train, held)
    assert len(rest) + len(held) == len(split.train)
    assert not {(int(u), int(i)) for u, i in rest} & {(int(u), int(i)) for u, i in held}
    # a user with 2 training pairs keeps one at any fraction
    two = np.array([[0, 1], [0, 2], [1, 3]])
    assert gnn_holdout(two, fraction=0.9).tolist() in ([[0, 1]], [[0, 2]])
    with pytest.raises(KerecError, match="gnn holdout fraction"):
        gnn_holdout(split.train, fraction=1.0)


def test_gnn_holdout_with_timestamps_takes_each_users_latest_pairs() -> None:
    from kerec.data import gnn_holdout

    train = np.array([[0, 1], [0, 2], [0, 3], [0, 4], [1, 5], [1, 6], [0, 7], [1, 8]])
    when = np.array([40.0, 10, 30, 20, 5, 7, 50, 6])
    # user 0 (5 pairs) keeps int(0.4 * 5) = 2: items 7 and 1, its latest; user 1 (3 pairs) keeps 1: item 6
    assert gnn_holdout(train, fraction=0.4, when=when).tolist() == [[0, 1], [1, 6], [0, 7]]
    tie = gnn_holdout(np.array([[0, 1], [0, 2]]), fraction=0.5, when=np.array([3.0, 3.0]))
    assert tie.tolist() == [[0, 2]]  # equal stamps: the later row
    with pytest.raises(KerecError, match="gnn holdout fraction"):
        gnn_holdout(train, fraction=0.0, when=when)
    with pytest.raises(KerecError, match="7 timestamps for 8 training pairs"):
        gnn_holdout(train, fraction=0.4, when=when[:7])


def test_cold_user_holdout_leaves_each_chosen_user_keep_pairs_and_others_untouched() -> None:
    from kerec.data import cold_user_holdout

    train = np.array([[u, i] for u in range(4) for i in range(6)], dtype=np.int64)
    held = cold_user_holdout(train, np.array([1, 3]), keep=2, seed=7)
    assert sorted(np.bincount(held[:, 0], minlength=4).tolist()) == [0, 0, 4, 4]
    assert set(held[:, 0].tolist()) == {1, 3} and len({tuple(p) for p in held.tolist()}) == 8
    assert np.array_equal(held, cold_user_holdout(train, np.array([1, 3]), keep=2, seed=7))  # seeded
    with pytest.raises(KerecError, match="keep at least 1"):
        cold_user_holdout(train, np.array([1]), keep=0)
