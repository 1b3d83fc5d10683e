"""The paired test of the main claim, against exact answers and scipy."""
from __future__ import annotations

import numpy as np
import pytest

from kerec.metrics.stats import fmt, mean_std, paired_over_seeds, paired_test, permutation_p


def test_mean_std_and_format() -> None:
    assert mean_std([1.0, 3.0]) == (2.0, pytest.approx(2 ** 0.5))
    assert fmt([0.5]) == "0.5000" and fmt([1.0, 3.0], 1) == "2.0 ± 1.4"


def test_identical_systems_have_p_one() -> None:
    a = np.array([0.1, 0.5, 0.2])
    for test in ("wilcoxon", "ttest", "permutation"):
        assert paired_test(a, a.copy(), test=test).p_value == 1.0


def test_permutation_matches_the_exact_sign_flip_distribution() -> None:
    # Five positive differences of 1: of the 2^5 sign patterns only all-plus and all-minus reach |mean| = 1.
    assert permutation_p(np.ones(5), permutations=20000, seed=1) == pytest.approx(2 / 32, abs=0.006)
    # One large difference among zeros: every pattern reaches it, p = 1.
    assert permutation_p(np.array([0.0, 0.0, 3.0]), permutations=500) == 1.0


def test_wilcoxon_is_scipys_and_counts_wins() -> None:
    from scipy.stats import wilcoxon

    rng = np.random.default_rng(0)
    b = rng.random(40)
    a = b + rng.normal(0.05, 0.1, 40)
    t = paired_test(a, b, metric="recall@20", test="auto")
    assert t.test == "wilcoxon" and t.p_value == pytest.approx(wilcoxon(a, b).pvalue)
    assert t.a_wins + t.b_wins == 40 and t.mean_diff == pytest.approx((a - b).mean())


def test_pairs_are_averaged_over_seeds_on_common_users() -> None:
    users, a, b = paired_over_seeds(
        [(np.array([0, 1, 2]), np.array([1.0, 0.0, 0.5])), (np.array([0, 2]), np.array([0.0, 0.5]))],
        [(np.array([0, 1, 2]), np.array([0.0, 0.0, 0.0])), (np.array([0, 1, 2]), np.array([1.0, 1.0, 1.0]))])
    assert users.tolist() == [0, 2]  # user 1 lacks a seed-2 value for system a
    assert a.tolist() == [0.5, 0.5] and b.tolist() == [0.5, 0.5]
