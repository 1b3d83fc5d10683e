"""Aggregation over seeds and the paired significance test of the main claim.

Pairing: for each seed both systems are evaluated on the same users; a user's difference is averaged over
the seeds (same-seed pairs), giving one difference per user. The test is then over users:

* ``wilcoxon`` — Wilcoxon signed-rank test (``scipy.stats.wilcoxon``, two-sided, zero differences dropped);
* ``ttest`` — paired t-test (``scipy.stats.ttest_1samp`` on the differences, two-sided);
* ``permutation`` — a paired sign-flip permutation test on the mean difference, in numpy
  (two-sided, ``p = (1 + #{|mean*| ≥ |mean|}) / (1 + n_perm)``);
* ``auto`` — Wilcoxon when scipy is installed, else the permutation test.
"""
from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from kerec.metrics.measures import EvaluationError


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    values = [float(v) for v in values]
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def fmt(values: Sequence[float], digits: int = 4) -> str:
    mean, std = mean_std(values)
    return f"{mean:.{digits}f}" if len(values) == 1 else f"{mean:.{digits}f} ± {std:.{digits}f}"


@dataclass(frozen=True)
class PairedTest:
    metric: str
    test: str  # the test actually used
    users: int
    mean_a: float
    mean_b: float
    mean_diff: float  # a − b
    p_value: float
    a_wins: int
    b_wins: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _have_scipy() -> bool:
    try:
        import scipy.stats  # noqa: F401
    except ImportError:
        return False
    return True


def paired_test(a: np.ndarray, b: np.ndarray, *, metric: str = "", test: str = "auto", permutations: int = 10000,
                seed: int = 0) -> PairedTest:
    """Two-sided test of ``mean(a − b) = 0`` over paired per-user values (shape: (U,) each)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise EvaluationError(f"paired values must be two non-empty 1-d arrays of one shape, got {a.shape} and {b.shape}")
    if test == "auto":
        test = "wilcoxon" if _have_scipy() else "permutation"
    diff = a - b
    if not np.any(diff):
        p = 1.0
    elif test == "wilcoxon":
        from scipy.stats import wilcoxon

        p = float(wilcoxon(a, b, zero_method="wilcox", alternative="two-sided").pvalue)
    elif test == "ttest":
        from scipy.stats import ttest_1samp

        p = float(ttest_1samp(diff, 0.0).pvalue)
    elif test == "permutation":
        p = permutation_p(diff, permutations, seed)
    else:
        raise EvaluationError(f"unknown test {test!r}; valid: auto, wilcoxon, ttest, permutation")
    return PairedTest(metric, test, int(a.size), float(a.mean()), float(b.mean()), float(diff.mean()), p,
                      int((diff > 0).sum()), int((diff < 0).sum()))


def permutation_p(diff: np.ndarray, permutations: int = 10000, seed: int = 0) -> float:
    """Paired sign-flip permutation test of the mean difference (two-sided), in chunks to bound memory."""
    rng = np.random.default_rng(seed)
    observed = abs(diff.mean())
    hits, left = 0, permutations
    while left:
        n = min(left, 1000)
        signs = rng.choice((-1.0, 1.0), size=(n, diff.size))
        hits += int((np.abs((signs * diff).mean(axis=1)) >= observed - 1e-12).sum())
        left -= n
    return (1 + hits) / (1 + permutations)


def paired_over_seeds(per_seed_a: Sequence[tuple[np.ndarray, np.ndarray]],
                      per_seed_b: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each seed's (users, values) of both systems → (users, a, b) with each user's values averaged over
    the seeds, using only users present for both systems in every seed."""
    if len(per_seed_a) != len(per_seed_b) or not per_seed_a:
        raise EvaluationError("both systems need results for the same, non-empty list of seeds")
    common = None
    for (ua, _), (ub, _) in zip(per_seed_a, per_seed_b):
        both = np.intersect1d(ua, ub)
        common = both if common is None else np.intersect1d(common, both)
    assert common is not None

    def averaged(per_seed: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        rows = [vals[np.searchsorted(users, common)] for users, vals in per_seed]
        return np.mean(rows, axis=0)
    return common, averaged(per_seed_a), averaged(per_seed_b)
