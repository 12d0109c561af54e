"""Uncertainty the papers omit: bootstrap confidence intervals and McNemar's paired test.

- `bootstrap_accuracy_ci`: percentile bootstrap of the accuracy over the test images (resample
  the images with replacement, `n_boot` times, seeded → deterministic).
- `mcnemar`: exact McNemar test of two classifiers on the same test images: under the null
  hypothesis the discordant pairs (one right, the other wrong) split 50:50, so the two-sided
  p-value is the binomial test of `b` successes in `b + c` trials with p = ½.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_CHUNK = 256  # bootstrap replicates drawn at a time (bounds memory for large test sets)


def bootstrap_accuracy_ci(correct: np.ndarray, n_boot: int = 2000, seed: int = 0,
                          alpha: float = 0.05) -> tuple[float, float]:
    """(low, high) percentile bootstrap CI of the mean of `correct` (1 = right, 0 = wrong).

    Fractions in [0, 1]; (nan, nan) for an empty vector. The same input and seed give the same
    interval.
    """
    correct = np.asarray(correct, dtype=float).ravel()
    n = len(correct)
    if n == 0:
        return float("nan"), float("nan")
    if n_boot <= 0:
        raise ValueError("n_boot must be positive")
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for start in range(0, n_boot, _CHUNK):
        stop = min(start + _CHUNK, n_boot)
        index = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = correct[index].mean(axis=1)
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


@dataclass(frozen=True)
class McNemar:
    """Discordant counts and the exact two-sided p-value of McNemar's test."""

    n: int              # paired test images
    b: int              # right by A, wrong by B
    c: int              # wrong by A, right by B
    p_value: float

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p_value < alpha


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> McNemar:
    """Exact McNemar test on two aligned boolean vectors (the same images in the same order)."""
    from scipy.stats import binomtest

    a = np.asarray(correct_a, dtype=bool).ravel()
    b_ = np.asarray(correct_b, dtype=bool).ravel()
    if a.shape != b_.shape:
        raise ValueError(f"McNemar needs paired vectors (got {a.shape} and {b_.shape})")
    b = int(np.sum(a & ~b_))
    c = int(np.sum(~a & b_))
    p = 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5, alternative="two-sided").pvalue)
    return McNemar(n=int(len(a)), b=b, c=c, p_value=min(p, 1.0))
