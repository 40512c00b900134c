"""Statistics for comparing leaderboard combinations over seeds (typically 3-10 seeds each).

Every function takes 1-D array-likes of floats, one value per seed, and drops NaNs first: a diverged seed
is the caller's to count. Too few values left gives NaN (documented per function), never an exception;
only arguments that can never be valid (a confidence outside (0, 1), an unknown test) raise a ValueError.
Shared arguments: ``n_resamples`` bootstrap resamples; ``confidence`` the coverage of an interval, in
(0, 1); ``seed`` the seed of the numpy Generator, so results are reproducible.
"""

from __future__ import annotations

import functools
import math
import threading
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

TESTS = ("welch", "mann-whitney")
SUMMARY_KEYS = ("n", "mean", "std", "median", "q25", "q75", "iqr", "ci_low", "ci_high", "worst", "best")
NAN_CI = (math.nan, math.nan)
_WARNING_FILTERS = threading.Lock()
RESAMPLE_BLOCK = 2**17  # draws per block of resamples: 1 MiB of indices and 1 MiB of values


def _clean(values, name: str = "values") -> np.ndarray:
    """A 1-D array-like as floats, NaNs dropped."""
    array = np.asarray(values, dtype=float)
    if array.ndim > 1:
        raise ValueError(f"{name} must be one-dimensional (one value per seed), got shape {array.shape}")
    array = array.reshape(-1)
    return array[~np.isnan(array)]


def _check_resampling(n_resamples: int, confidence: float = 0.95) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be strictly between 0 and 1 (e.g. 0.95), got {confidence!r}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer (e.g. 10_000), got {n_resamples!r}")


def _resample(rng: np.random.Generator, values: np.ndarray, n_resamples: int) -> np.ndarray:
    """An (n_resamples, n) matrix of draws with replacement: one vectorised draw instead of a loop."""
    return values[rng.integers(0, len(values), size=(n_resamples, len(values)))]


def _resample_means(rng: np.random.Generator, values: np.ndarray, n_resamples: int) -> np.ndarray:
    """``_resample(rng, values, n_resamples).mean(axis=1)``, drawn a block of rows at a time.

    The generator gives the same numbers however a draw is cut (tests/test_control_plane.py checks it), and
    a block stays in the CPU cache where two whole (n_resamples, n) matrices would go through memory: a
    large leaderboard spends most of its time here.
    """
    out = np.empty(n_resamples)
    rows = max(1, RESAMPLE_BLOCK // max(len(values), 1))
    for start in range(0, n_resamples, rows):
        # ``drawn`` is only released once the next block is drawn: the allocator then reuses its memory instead
        # of handing it back to the system and faulting it in again for every block (half the time, measured).
        drawn = rng.integers(0, len(values), size=(min(rows, n_resamples - start), len(values)))
        out[start:start + rows] = values[drawn].mean(axis=1)
    return out


def _resampled_means(values: np.ndarray, n_resamples: int, seed: int) -> tuple[np.ndarray, dict]:
    """The means of the first ``n_resamples`` resamples of ``values`` from ``default_rng(seed)``, and the
    generator's state after drawing them.

    A leaderboard row's interval and its comparison with the baseline both start with this same draw (same
    values, same seed); it is most of a large board's time, so it is drawn once.
    """
    return _resampled_means_of(values.tobytes(), n_resamples, seed)  # arrays are not hashable; their bytes are


@functools.lru_cache(maxsize=256)
def _resampled_means_of(data: bytes, n_resamples: int, seed: int) -> tuple[np.ndarray, dict]:
    rng = np.random.default_rng(seed)
    means = _resample_means(rng, np.frombuffer(data), n_resamples)
    means.flags.writeable = False  # shared by every caller of the cache
    return means, rng.bit_generator.state


def _percentiles(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = 1 - confidence
    low, high = np.percentile(samples, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(low), float(high)


def bootstrap_ci(values, statistic=np.mean, n_resamples: int = 10_000, confidence: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``statistic`` over seeds.

    With 3-5 seeds the interval is wide, and it should look wide: it is what the seeds support.

    Args:
        values: one value per seed.
        statistic: reduces an array along ``axis=`` (``np.mean``, ``np.median``, ...).

    Returns:
        (low, high); (v, v) for a single value and (nan, nan) for none.
    """
    _check_resampling(n_resamples, confidence)
    values = _clean(values)
    if len(values) == 0:
        return NAN_CI
    if len(values) == 1:
        return float(values[0]), float(values[0])
    if statistic is np.mean:
        return _percentiles(_resampled_means(values, n_resamples, seed)[0], confidence)
    resamples = _resample(np.random.default_rng(seed), values, n_resamples)
    try:
        estimates = np.asarray(statistic(resamples, axis=1), dtype=float)
    except TypeError as err:
        raise ValueError(f"statistic must accept axis= like np.mean or np.median; {statistic!r} did not") from err
    return _percentiles(estimates, confidence)


def _bootstrap_diffs(a: np.ndarray, b: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """mean(b*) - mean(a*) over resamples, each group resampled independently (the seeds are unpaired)."""
    means_b, state = _resampled_means(b, n_resamples, seed)
    rng = np.random.default_rng(seed)
    rng.bit_generator.state = state  # where drawing b's resamples left it: a's come next
    return means_b - _resample_means(rng, a, n_resamples)


def bootstrap_diff_ci(a, b, n_resamples: int = 10_000, confidence: float = 0.95,
                      seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of mean(b) - mean(a); (nan, nan) when a group is empty."""
    _check_resampling(n_resamples, confidence)
    a, b = _clean(a, "a"), _clean(b, "b")
    if len(a) == 0 or len(b) == 0:
        return NAN_CI
    return _percentiles(_bootstrap_diffs(a, b, n_resamples, seed), confidence)


def flip_rate(a, b, lower_is_better: bool, n_resamples: int = 10_000, seed: int = 0) -> float:
    """How often resampling the seeds reverses the observed order of the two means.

    A resample whose order is opposite to the observed one counts 1; one where exactly one of the two
    (observed or resampled) is a tie counts 1/2. So two identical groups score just under 0.5 and
    well-separated groups 0. A reversal is a reversal in either direction, so ``lower_is_better`` does
    not change the rate; it is taken so callers pass the metric's direction uniformly.

    Returns:
        The flip share in [0, 1]; NaN when either group is empty.
    """
    _check_resampling(n_resamples)
    a, b = _clean(a, "a"), _clean(b, "b")
    if len(a) == 0 or len(b) == 0:
        return math.nan
    return _flip_share(a, b, _bootstrap_diffs(a, b, n_resamples, seed))


def _flip_share(a: np.ndarray, b: np.ndarray, diffs: np.ndarray) -> float:
    """``flip_rate`` from the bootstrap differences of two non-empty groups."""
    observed = np.sign(b.mean() - a.mean())
    # |sign difference| / 2 is 1 for a reversal, 1/2 when one side is a tie, 0 for the same order.
    return float(np.mean(np.abs(np.sign(diffs) - observed)) / 2)


def welch_p(a, b) -> float:
    """Two-sided p value of Welch's t-test (unequal variances); NaN when a group has fewer than 2 values.

    When both groups have zero variance the t statistic is undefined: equal means give NaN (nothing to
    test), different means give 0.0 (two noiseless, distinct groups: read it as "below any threshold",
    not as a measured probability).
    """
    a, b = _clean(a, "a"), _clean(b, "b")
    if len(a) < 2 or len(b) < 2:
        return math.nan
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return math.nan if a[0] == b[0] else 0.0
    # The lock: catch_warnings swaps the process's filters, so tests run in threads (a leaderboard's) take turns.
    with _WARNING_FILTERS, warnings.catch_warnings():
        # scipy warns about "precision loss" for a constant group, which is common (a saturated metric)
        # and harmless here: the other group's variance keeps the standard error positive.
        warnings.filterwarnings("ignore", message="Precision loss", category=RuntimeWarning)
        return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def mann_whitney_p(a, b) -> float:
    """Two-sided Mann-Whitney U test p value; NaN when either group is empty.

    Exact when there are no ties (scipy's exact distribution assumes none, and is wrong with them);
    otherwise the normal approximation with tie and continuity corrections. With few seeds the exact
    test has a floor: see ``min_mann_whitney_p``.
    """
    a, b = _clean(a, "a"), _clean(b, "b")
    if len(a) == 0 or len(b) == 0:
        return math.nan
    ties = len(np.unique(np.concatenate([a, b]))) < len(a) + len(b)
    method = "asymptotic" if ties else "exact"
    return float(stats.mannwhitneyu(a, b, alternative="two-sided", method=method).pvalue)


def min_mann_whitney_p(n_a: int, n_b: int) -> float:
    """The smallest two-sided p the exact Mann-Whitney test can reach: 2 / C(n_a + n_b, n_a), at most 1.

    3 vs 3 seeds gives 0.1: such a comparison can never be significant at 0.05, however clear it is.
    NaN when either size is 0.
    """
    for name, n in (("n_a", n_a), ("n_b", n_b)):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"{name} must be a non-negative integer group size, got {n!r}")
    if n_a == 0 or n_b == 0:
        return math.nan
    return min(1.0, 2 / math.comb(int(n_a) + int(n_b), int(n_a)))


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p values, in the input order.

    The i-th smallest of m p values is multiplied by (m - i + 1), then a running maximum keeps the
    adjusted values monotone in the sorted order, capped at 1. NaN entries (rows without a test) stay
    NaN and do not count in m. ``pvalues``: 1-D, each in [0, 1] or NaN.
    """
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"pvalues must be one-dimensional, got shape {p.shape}")
    valid = ~np.isnan(p)
    if np.any((p[valid] < 0) | (p[valid] > 1)):
        raise ValueError(f"pvalues must lie in [0, 1] (or be NaN), got {p[valid & ((p < 0) | (p > 1))]}")
    adjusted = np.full_like(p, np.nan)
    order = np.argsort(p[valid])
    m = len(order)
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[valid][order])
    adjusted[np.flatnonzero(valid)[order]] = np.minimum(stepped, 1.0)
    return adjusted


def cliffs_delta(a, b) -> float:
    """Cliff's delta: (#(b_j > a_i) - #(b_j < a_i)) / (n_a n_b), in [-1, 1]; NaN when a group is empty.

    Positive means b tends to be larger than a (1: every b above every a); 0 means no tendency.
    Whether larger is better is the caller's to read with the metric's direction.
    """
    a, b = _clean(a, "a"), _clean(b, "b")
    if len(a) == 0 or len(b) == 0:
        return math.nan
    # Counting through a sorted copy of a avoids the n_a x n_b comparison matrix.
    a = np.sort(a)
    below = np.searchsorted(a, b, side="left")  # a_i < b_j
    above = len(a) - np.searchsorted(a, b, side="right")  # a_i > b_j
    return float((below.sum() - above.sum()) / (len(a) * len(b)))


@dataclass(frozen=True)
class Comparison:
    """Combination b against combination a over seeds; ``diff`` and the CI are of mean(b) - mean(a).

    ``better`` says whether b beats a in the metric's direction; None when the means are equal or
    undefined. ``p`` comes from the test named in ``test``.
    """

    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    diff: float
    ci_low: float
    ci_high: float
    p: float
    test: str
    cliffs_delta: float
    flip_rate: float
    better: bool | None


def compare(a, b, lower_is_better: bool, test: str = "welch", n_resamples: int = 10_000,
            confidence: float = 0.95, seed: int = 0) -> Comparison:
    """Compare combination b with combination a over seeds.

    Args:
        a, b: one metric value per seed of each combination.
        lower_is_better: the metric's direction (True for FID, False for IS).
        test: "welch" or "mann-whitney".
    """
    if test not in TESTS:
        raise ValueError(f'Unknown test "{test}". Choose one of: {", ".join(TESTS)}')
    _check_resampling(n_resamples, confidence)
    a, b = _clean(a, "a"), _clean(b, "b")
    mean_a = float(a.mean()) if len(a) else math.nan
    mean_b = float(b.mean()) if len(b) else math.nan
    diff = mean_b - mean_a
    # NaN and a tie both leave the order undefined.
    better = None if math.isnan(diff) or diff == 0 else bool(diff < 0) == bool(lower_is_better)
    # The interval and the flip rate read the same resamples (same seed): drawn once, not twice.
    diffs = _bootstrap_diffs(a, b, n_resamples, seed) if len(a) and len(b) else None
    ci_low, ci_high = NAN_CI if diffs is None else _percentiles(diffs, confidence)
    p = welch_p(a, b) if test == "welch" else mann_whitney_p(a, b)
    return Comparison(n_a=len(a), n_b=len(b), mean_a=mean_a, mean_b=mean_b, diff=diff, ci_low=ci_low,
                      ci_high=ci_high, p=p, test=test, cliffs_delta=cliffs_delta(a, b),
                      flip_rate=math.nan if diffs is None else _flip_share(a, b, diffs), better=better)


def summarize(values, lower_is_better: bool, n_resamples: int = 10_000, seed: int = 0,
              confidence: float = 0.95) -> dict:
    """One combination's seeds in a few numbers, keyed by ``SUMMARY_KEYS``.

    Args:
        values: one metric value per seed.
        lower_is_better: picks ``best`` (min when True) and ``worst`` (max when True).

    Returns:
        n, mean, std (ddof=1; NaN for n < 2), median, q25, q75, iqr, ci_low, ci_high, worst, best;
        every entry but n is NaN when no value remains.
    """
    _check_resampling(n_resamples, confidence)
    values = _clean(values)
    if len(values) == 0:
        return dict.fromkeys(SUMMARY_KEYS, math.nan) | {"n": 0}
    q25, median, q75 = (float(q) for q in np.percentile(values, [25, 50, 75]))
    low, high = float(values.min()), float(values.max())
    ci_low, ci_high = bootstrap_ci(values, np.mean, n_resamples, confidence, seed)
    return {"n": len(values), "mean": float(values.mean()),
            "std": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
            "median": median, "q25": q25, "q75": q75, "iqr": q75 - q25, "ci_low": ci_low, "ci_high": ci_high,
            "worst": high if lower_is_better else low, "best": low if lower_is_better else high}
