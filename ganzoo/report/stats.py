"""Statistics for comparing leaderboard combinations over seeds (typically 3-10 seeds each).

The leaderboard's intervals are Student's t interval of a mean (``t_interval``) and Welch's interval of a
difference of means (``welch_interval``): their coverage matches their label at 3 seeds on normal data, and
Welch's interval excludes 0 exactly when ``welch_p`` < 1 - confidence, so a row's interval and its test never
disagree. Positive, multiplicative headlines (FID) are analysed on the log scale (``center``, ``contrast``).
``mde`` and ``seeds_needed`` say what a table of n seeds can detect. The percentile bootstrap stays available
(``bootstrap_ci``) but undercovers at small n; docs/reading-results.md, "Statistics", has the measured
coverage of each method.

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
from scipy import optimize, stats

TESTS = ("welch", "mann-whitney")
SCALES = ("linear", "log")
BOOTSTRAP_METHODS = ("percentile", "BCa")
BCA_MIN_N = 10  # below this BCa's jackknife acceleration rests on too few values to be worth its cost
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
                 seed: int = 0, method: str = "percentile") -> tuple[float, float]:
    """Bootstrap confidence interval of ``statistic`` over seeds; not what the leaderboard uses.

    The percentile bootstrap of a mean undercovers at the seed counts of a benchmark: measured on normal data
    (docs/reading-results.md, "Statistics"), a nominal 95% interval covers the true mean about 75% of the time
    at n = 3, 84% at n = 5 and 90% at n = 10 (worse on skewed seeds: 63-79% on log-normal ones). With 3 seeds
    it is close to [min, max] of the seeds. Use ``t_interval`` for a mean; the bootstrap is for statistics
    without a formula, with 10 or more values.

    Args:
        values: one value per seed.
        statistic: reduces an array along ``axis=`` (``np.mean``, ``np.median``, ...).
        method: "percentile", or "BCa" (bias-corrected and accelerated, ``scipy.stats.bootstrap``), which
            needs at least 10 values.

    Returns:
        (low, high); (v, v) for a single value and (nan, nan) for none.
    """
    _check_resampling(n_resamples, confidence)
    if method not in BOOTSTRAP_METHODS:
        raise ValueError(f'method must be one of {", ".join(BOOTSTRAP_METHODS)}, got {method!r}')
    values = _clean(values)
    if len(values) == 0:
        return NAN_CI
    if len(values) == 1:
        return float(values[0]), float(values[0])
    if method == "BCa":
        return _bca(values, statistic, n_resamples, confidence, seed)
    if statistic is np.mean:
        return _percentiles(_resampled_means(values, n_resamples, seed)[0], confidence)
    resamples = _resample(np.random.default_rng(seed), values, n_resamples)
    try:
        estimates = np.asarray(statistic(resamples, axis=1), dtype=float)
    except TypeError as err:
        raise ValueError(f"statistic must accept axis= like np.mean or np.median; {statistic!r} did not") from err
    return _percentiles(estimates, confidence)


def _bca(values: np.ndarray, statistic, n_resamples: int, confidence: float, seed: int) -> tuple[float, float]:
    if len(values) < BCA_MIN_N:
        raise ValueError(f'method="BCa" needs at least {BCA_MIN_N} values, got {len(values)}; use t_interval for '
                         'the mean of fewer seeds')
    with _WARNING_FILTERS, warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=RuntimeWarning)  # a degenerate (constant) sample: NaN bounds
        result = stats.bootstrap((values,), statistic, n_resamples=n_resamples, confidence_level=confidence,
                                 method="BCa", rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be strictly between 0 and 1 (e.g. 0.95), got {confidence!r}")


def t_intervals(samples, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """``t_interval`` of each row of a (k, n) array at once (simulations); rows must hold no NaN.

    Returns:
        (low, high), two arrays of k bounds; NaN for n < 2.
    """
    _check_confidence(confidence)
    samples = np.asarray(samples, dtype=float)
    if samples.ndim != 2:
        raise ValueError(f"samples must be two-dimensional (rows x seeds), got shape {samples.shape}")
    k, n = samples.shape
    if n < 2:
        return np.full(k, np.nan), np.full(k, np.nan)
    mean = samples.mean(axis=1)
    half = stats.t.ppf((1 + confidence) / 2, n - 1) * samples.std(axis=1, ddof=1) / math.sqrt(n)
    return mean - half, mean + half


def t_interval(values, confidence: float = 0.95) -> tuple[float, float]:
    """Student's t interval of the mean: mean +- t_{(1+confidence)/2, n-1} s / sqrt(n).

    Exact for normal seeds whatever n; at n = 3 it is wide (t_{0.975, 2} = 4.3), which is what 3 seeds
    support. (v, v) for n >= 2 equal values, (nan, nan) for n < 2: one seed gives no spread.
    """
    values = _clean(values)
    low, high = t_intervals(values[None, :], confidence)
    return float(low[0]), float(high[0])


def _welch_parts(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """mean(b) - mean(a), its standard error and the Welch-Satterthwaite df, row by row of (k, n_a), (k, n_b).

    The df is NaN where both groups are constant (the standard error is 0 there).
    """
    n_a, n_b = a.shape[1], b.shape[1]
    v_a, v_b = a.var(axis=1, ddof=1) / n_a, b.var(axis=1, ddof=1) / n_b
    se2 = v_a + v_b
    with np.errstate(invalid="ignore", divide="ignore"):
        df = se2**2 / (v_a**2 / (n_a - 1) + v_b**2 / (n_b - 1))
    return b.mean(axis=1) - a.mean(axis=1), np.sqrt(se2), df


def welch_se_df(a, b) -> tuple[float, float]:
    """The standard error of mean(b) - mean(a) and its Welch-Satterthwaite df; NaN when a group has fewer than 2
    values (the df is NaN, too, when both groups are constant)."""
    a, b = _clean(a, "a"), _clean(b, "b")
    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan
    _, se, df = _welch_parts(a[None, :], b[None, :])
    return float(se[0]), float(df[0])


def welch_intervals(a, b, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """``welch_interval`` of each row pair of (k, n_a) and (k, n_b) arrays at once; rows must hold no NaN."""
    _check_confidence(confidence)
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.ndim != 2 or b.ndim != 2 or len(a) != len(b):
        raise ValueError(f"a and b must be two-dimensional with the same number of rows, got shapes {a.shape} "
                         f"and {b.shape}")
    if a.shape[1] < 2 or b.shape[1] < 2:
        return np.full(len(a), np.nan), np.full(len(a), np.nan)
    diff, se, df = _welch_parts(a, b)
    constant = se == 0
    # Both groups constant: welch_p's convention, a point interval at a nonzero difference (p = 0), none at 0.
    half = np.where(constant, 0.0, stats.t.ppf((1 + confidence) / 2, np.where(constant, 1.0, df)) * se)
    low, high = diff - half, diff + half
    undefined = constant & (diff == 0)
    return np.where(undefined, np.nan, low), np.where(undefined, np.nan, high)


def welch_interval(a, b, confidence: float = 0.95) -> tuple[float, float]:
    """Welch's interval of mean(b) - mean(a): diff +- t_{(1+confidence)/2, df} se, df by Welch-Satterthwaite.

    The same standard error and df as ``welch_p`` (``scipy.stats.ttest_ind(equal_var=False)``), so the
    interval excludes 0 exactly when p < 1 - confidence. Constant groups follow ``welch_p``: two constant
    groups give the point (d, d) at a difference d != 0 (p = 0) and (nan, nan) at d = 0 (p NaN).

    Returns:
        (low, high); (nan, nan) when a group has fewer than 2 values.
    """
    a, b = _clean(a, "a"), _clean(b, "b")
    low, high = welch_intervals(a[None, :], b[None, :], confidence)
    return float(low[0]), float(high[0])


def _check_scale(scale: str) -> None:
    if scale not in SCALES:
        raise ValueError(f'scale must be one of {", ".join(SCALES)}, got {scale!r}; "log" is for positive, '
                         "multiplicative headlines such as FID")


def log_applicable(values) -> bool:
    """Whether the log scale can analyse ``values``: every value (NaNs dropped) is positive and finite."""
    values = _clean(values)
    return bool(np.all(np.isfinite(values) & (values > 0)))


def center(values, scale: str = "linear", confidence: float = 0.95) -> tuple[float, float, float]:
    """A row's centre and its t interval on the analysis scale.

    "linear": the arithmetic mean and ``t_interval``. "log": the geometric mean and exp of the t interval of
    the logs (an interval of the geometric mean, which is the median of a log-normal). Values must be
    positive on "log": check with ``log_applicable`` first.

    Returns:
        (centre, low, high); NaN centre for no value, NaN bounds for fewer than 2.
    """
    _check_scale(scale)
    values = _clean(values)
    if len(values) == 0:
        return math.nan, math.nan, math.nan
    if scale == "linear":
        return (float(values.mean()), *t_interval(values, confidence))
    if not log_applicable(values):
        raise ValueError(f"scale='log' needs positive values, got {values.min():g}; analyse on scale='linear'")
    logs = np.log(values)
    low, high = t_interval(logs, confidence)
    return float(np.exp(logs.mean())), math.exp(low), math.exp(high)


@dataclass(frozen=True)
class Contrast:
    """Row b against baseline a on the analysis scale.

    ``diff`` and its interval: mean(b) - mean(a) on "linear", mean(log b) - mean(log a) on "log". ``ratio``
    and its interval: geometric mean(b) / geometric mean(a) = exp(diff) on "log", NaN on "linear". ``p``:
    Welch's test on the analysis scale, which agrees with the interval.
    """

    scale: str
    diff: float
    diff_ci_low: float
    diff_ci_high: float
    ratio: float
    ratio_ci_low: float
    ratio_ci_high: float
    p: float


def contrast(a, b, scale: str = "linear", confidence: float = 0.95) -> Contrast:
    """Compare row b with baseline a over seeds on ``scale`` (see ``Contrast``)."""
    _check_scale(scale)
    a, b = _clean(a, "a"), _clean(b, "b")
    if scale == "log":
        if not (log_applicable(a) and log_applicable(b)):
            raise ValueError("scale='log' needs positive values in both groups; analyse on scale='linear'")
        a, b = np.log(a), np.log(b)
    diff = float(b.mean() - a.mean()) if len(a) and len(b) else math.nan
    low, high = welch_interval(a, b, confidence)
    ratio = (math.exp(diff), math.exp(low), math.exp(high)) if scale == "log" else NAN_CI + (math.nan,)
    return Contrast(scale, diff, low, high, *ratio, welch_p(a, b))


def pooled_sd(groups) -> float:
    """The pooled within-group sd: sqrt(sum (n_i - 1) s_i^2 / sum (n_i - 1)) over groups with 2+ values.

    Each group's variance weighs by its degrees of freedom, so a row of 10 seeds counts more than one of 3.
    NaN when no group has 2 values.
    """
    df = ss = 0.0
    for values in groups:
        values = _clean(values)
        if len(values) >= 2:
            df += len(values) - 1
            ss += float(values.var(ddof=1)) * (len(values) - 1)
    return math.sqrt(ss / df) if df else math.nan


def _check_level(alpha: float, m: int) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be strictly between 0 and 1 (e.g. 0.05), got {alpha!r}")
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
        raise ValueError(f"m must be a positive integer (the number of comparisons), got {m!r}")


def _check_power(alpha: float, m: int, power: float) -> None:
    _check_level(alpha, m)
    if not alpha / m < power < 1:
        raise ValueError(f"power must lie between alpha / m = {alpha / m:g} and 1 (e.g. 0.8), got {power!r}")


def _power(ncp: float, df: float, critical: float) -> float:
    """Power of the two-sided t-test: P(|T| > critical) for T noncentral t with ``df`` and ``ncp``."""
    # The wrong-sign tail is below alpha / 2 for ncp >= 0 and underflows to NaN in scipy far out: it is 0 there.
    wrong_sign = float(stats.nct.cdf(-critical, df, ncp))
    return float(stats.nct.sf(critical, df, ncp)) + (0.0 if math.isnan(wrong_sign) else wrong_sign)


def _critical(alpha: float, m: int, df: float) -> float:
    return float(stats.t.ppf(1 - alpha / (2 * m), df))


def t_mde(se: float, df: float, alpha: float = 0.05, m: int = 1, power: float = 0.8) -> float:
    """The true effect that a two-sided t-test of an estimate with standard error ``se`` on ``df`` degrees of
    freedom, at level alpha / m, detects with probability ``power`` (noncentral t, the estimate's se taken as
    known): a regression coefficient's minimum detectable effect. NaN for a NaN or non-positive se or df < 1."""
    _check_power(alpha, m, power)
    if se is None or df is None or math.isnan(se) or math.isnan(df) or se <= 0 or df < 1:
        return math.nan
    critical = _critical(alpha, m, df)
    high = critical + 4.0
    while _power(high, df, critical) < power:
        high *= 2
    return optimize.brentq(lambda d: _power(d, df, critical) - power, 0.0, high, xtol=1e-10) * se


def mde(n_a: int, n_b: int, sd: float, alpha: float = 0.05, m: int = 1, power: float = 0.8) -> float:
    """Minimum detectable difference: the true difference of means that a two-sided two-sample t-test at level
    alpha / m (the first step of Holm's correction across m comparisons) detects with probability ``power``.

    Solved exactly with the noncentral t distribution (df = n_a + n_b - 2, noncentrality
    d / (sd sqrt(1/n_a + 1/n_b))), not the normal approximation, which is optimistic at a few seeds.

    Args:
        n_a, n_b: seeds per group.
        sd: the common within-group standard deviation (e.g. ``pooled_sd``), in the units of the difference.

    Returns:
        The difference in the units of ``sd``; 0 when sd is 0; NaN when sd is NaN or n_a + n_b < 3.
    """
    _check_power(alpha, m, power)
    df = n_a + n_b - 2
    if sd is None or math.isnan(sd) or n_a < 1 or n_b < 1 or df < 1:
        return math.nan
    if sd == 0:
        return 0.0
    critical = _critical(alpha, m, df)
    high = critical + 4.0
    while _power(high, df, critical) < power:  # bracket the root: power grows with the noncentrality
        high *= 2
    ncp = optimize.brentq(lambda d: _power(d, df, critical) - power, 0.0, high, xtol=1e-10)
    return ncp * sd * math.sqrt(1 / n_a + 1 / n_b)


def seeds_needed(diff: float, sd: float, alpha: float = 0.05, m: int = 1, power: float = 0.8,
                 max_n: int = 1000) -> float:
    """The smallest equal number of seeds per group at which a two-sided two-sample t-test at level alpha / m
    detects a true difference ``diff`` with probability ``power`` (noncentral t, as ``mde``).

    Returns:
        n (an int, at least 2); ``math.inf`` when even ``max_n`` seeds are not enough (or diff is 0);
        NaN when diff or sd is NaN.
    """
    _check_power(alpha, m, power)
    if diff is None or sd is None or math.isnan(diff) or math.isnan(sd):
        return math.nan
    if diff == 0:
        return math.inf
    if sd == 0:
        return 2

    def reached(n: int) -> bool:
        df = 2 * n - 2
        return _power(abs(diff) / (sd * math.sqrt(2 / n)), df, _critical(alpha, m, df)) >= power

    return _smallest_n(reached, max_n)


def _smallest_n(reached, max_n: int) -> float:
    """The smallest n in [2, max_n] with ``reached(n)`` (power grows with n, so bisect), else infinity."""
    if not reached(max_n):
        return math.inf
    low, high = 1, max_n  # reached(high) holds; reached(low) is never asked
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if reached(middle) else (middle, high)
    return high


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
    """Combination b against combination a over seeds; ``diff`` and the CI are of mean(b) - mean(a), the CI
    Welch's (``welch_interval``: NaN when a group has fewer than 2 values).

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
    # Welch's interval whatever the test, so it agrees with Welch's p; the flip rate is a bootstrap's.
    ci_low, ci_high = welch_interval(a, b, confidence)
    diffs = _bootstrap_diffs(a, b, n_resamples, seed) if len(a) and len(b) else None
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
        n, mean, std (ddof=1; NaN for n < 2), median, q25, q75, iqr, ci_low and ci_high (``t_interval`` of the
        mean: NaN for n < 2), worst, best;
        every entry but n is NaN when no value remains.
    """
    _check_resampling(n_resamples, confidence)
    values = _clean(values)
    if len(values) == 0:
        return dict.fromkeys(SUMMARY_KEYS, math.nan) | {"n": 0}
    q25, median, q75 = (float(q) for q in np.percentile(values, [25, 50, 75]))
    low, high = float(values.min()), float(values.max())
    ci_low, ci_high = t_interval(values, confidence)
    return {"n": len(values), "mean": float(values.mean()),
            "std": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
            "median": median, "q25": q25, "q75": q75, "iqr": q75 - q25, "ci_low": ci_low, "ci_high": ci_high,
            "worst": high if lower_is_better else low, "best": low if lower_is_better else high}


# --- power of the test the tables use (Welch), and what it would take to decide ---------------------------------


WELCH_GRID = 200  # quantiles of each sample variance the Welch power integrates over (an error below 0.005)


def _welch_thresholds(sd_a: float, n_a: int, sd_b: float, n_b: int, alpha: float, m: int) -> np.ndarray:
    """The |mean difference| above which Welch's test at alpha / m rejects, over a grid of the two sample variances.

    Each sample variance is sd^2 chi2_{n-1} / (n-1), independent of the means; at each of WELCH_GRID x
    WELCH_GRID equally likely pairs (midpoint quantiles) the test rejects when |diff| > t_{1-alpha/2m, df} se,
    with se and the Welch-Satterthwaite df of those sample variances, as the test computes them.
    """
    q = (np.arange(WELCH_GRID) + 0.5) / WELCH_GRID
    v_a = sd_a**2 * stats.chi2.ppf(q, n_a - 1) / (n_a - 1) / n_a
    v_b = sd_b**2 * stats.chi2.ppf(q, n_b - 1) / (n_b - 1) / n_b
    v_a, v_b = np.meshgrid(v_a, v_b, indexing="ij")
    df = (v_a + v_b) ** 2 / (v_a**2 / (n_a - 1) + v_b**2 / (n_b - 1))
    return stats.t.ppf(1 - alpha / (2 * m), df) * np.sqrt(v_a + v_b)


def _welch_power_at(diff: float, se: float, thresholds: np.ndarray) -> float:
    """P(|mean difference| > threshold) for the difference normal around ``diff`` with sd ``se``, averaged."""
    return float(np.mean(stats.norm.sf((thresholds - abs(diff)) / se) + stats.norm.cdf((-thresholds - abs(diff)) / se)))


def _welch_inputs_ok(n_a: int, n_b: int, *values: float) -> bool:
    return min(n_a, n_b) >= 2 and not any(v is None or math.isnan(v) for v in values)


def welch_power(diff: float, sd_a: float, n_a: int, sd_b: float, n_b: int, alpha: float = 0.05, m: int = 1) -> float:
    """Power of Welch's two-sided test at level alpha / m (the tables' test, Holm's first step) to detect a true
    difference ``diff`` between normal groups of sizes n_a, n_b with their own sds sd_a, sd_b.

    Computed for the test itself, not a pooled t-test: the mean difference is normal and independent of the
    two sample variances, so the power is the rejection probability given the variances, integrated over
    their scaled chi-square distributions (``_welch_thresholds``). A simulation of the test checks it
    (tests/test_stats.py). NaN when a group has fewer than 2 values or an input is NaN; 1 for a nonzero
    difference between two noiseless groups.
    """
    _check_level(alpha, m)
    if not _welch_inputs_ok(n_a, n_b, diff, sd_a, sd_b):
        return math.nan
    se = math.sqrt(sd_a**2 / n_a + sd_b**2 / n_b)
    if se == 0:
        return 1.0 if diff != 0 else math.nan
    return _welch_power_at(diff, se, _welch_thresholds(sd_a, n_a, sd_b, n_b, alpha, m))


def welch_mde(n_a: int, n_b: int, sd_a: float, sd_b: float, alpha: float = 0.05, m: int = 1,
              power: float = 0.8) -> float:
    """The true difference that Welch's test at alpha / m detects with probability ``power`` (``welch_power``).

    Returns:
        The difference in the units of the sds; 0 when both sds are 0; NaN when a group has fewer than 2 values
        or an sd is NaN.
    """
    _check_power(alpha, m, power)
    if not _welch_inputs_ok(n_a, n_b, sd_a, sd_b):
        return math.nan
    se = math.sqrt(sd_a**2 / n_a + sd_b**2 / n_b)
    if se == 0:
        return 0.0
    thresholds = _welch_thresholds(sd_a, n_a, sd_b, n_b, alpha, m)
    high = 8.0 * se
    while _welch_power_at(high, se, thresholds) < power:  # bracket the root: power grows with the difference
        high *= 2
    return optimize.brentq(lambda d: _welch_power_at(d, se, thresholds) - power, 0.0, high, xtol=1e-10 * se)


def welch_seeds_needed(diff: float, sd_a: float, sd_b: float, alpha: float = 0.05, m: int = 1, power: float = 0.8,
                       max_n: int = 1000) -> float:
    """The smallest equal number of seeds per group at which Welch's test at alpha / m detects a true difference
    ``diff`` with probability ``power`` (``welch_power``, each group its own sd).

    Returns:
        n (an int, at least 2); ``math.inf`` when even ``max_n`` seeds are not enough (or diff is 0);
        NaN when an input is NaN.
    """
    _check_power(alpha, m, power)
    if any(v is None or math.isnan(v) for v in (diff, sd_a, sd_b)):
        return math.nan
    if diff == 0:
        return math.inf
    if sd_a == sd_b == 0:
        return 2

    def reached(n: int) -> bool:
        return welch_power(diff, sd_a, n, sd_b, n, alpha, m) >= power

    return _smallest_n(reached, max_n)


def runs_factor_to_decide(effect: float, se: float, df: float, margin: float | None, alpha: float = 0.05,
                          m: int = 1, power: float = 0.8, max_factor: float = 1000.0) -> float:
    """How many times today's runs an undecided effect would need to be decided with probability ``power``.

    With k times the runs of every group the standard error is se / sqrt(k) and the df about k times df. Taking
    the observed ``effect`` as the truth, the effect is *decided* when either the test at alpha / m rejects
    (probability: noncentral t) or, with a ``margin`` (the equivalence bound on the analysis scale, symmetric),
    its 90% interval lies inside (-margin, margin) (probability: the estimate normal around the effect, between
    -margin + t se and margin - t se). Returns the smallest such k >= 1 on a grid of 1.05 steps; ``math.inf``
    beyond ``max_factor`` or for a zero effect without a margin; NaN for a NaN input. A planning figure: the
    observed effect is itself noisy.
    """
    if any(v is None or math.isnan(v) for v in (effect, se, df)) or se <= 0 or df < 1:
        return math.nan

    def decided(k: float) -> float:
        se_k, df_k = se / math.sqrt(k), df * k
        test = _power(abs(effect) / se_k, df_k, _critical(alpha, m, df_k)) if effect else 0.0
        if margin is None or not margin > 0:
            return test
        t90 = float(stats.t.ppf(0.95, df_k))
        inside = (stats.norm.cdf((margin - t90 * se_k - effect) / se_k)
                  - stats.norm.cdf((-margin + t90 * se_k - effect) / se_k))
        return max(test, float(max(inside, 0.0)))

    k = 1.0
    while k <= max_factor:
        if decided(k) >= power:
            return k
        k *= 1.05
    return math.inf


# --- probability of improvement (Agarwal et al. 2021, rliable) ----------------------------------------------------


def probability_of_improvement(reference, candidate, lower_is_better: bool, n_resamples: int = 2000,
                               confidence: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """P(a run of ``candidate`` beats a run of ``reference``), ties counting half, with a bootstrap interval.

    The point estimate is the Mann-Whitney U of candidate against reference over n_c n_r pairs (oriented by
    the metric's direction), which is rliable's ``probability_of_improvement`` on one task; the interval is the
    percentile interval of a stratified bootstrap (each group resampled on its own, as rliable's
    ``StratifiedIndependentBootstrap``), drawn from ``default_rng(seed)``.

    Returns:
        (probability, low, high); NaN bounds when a group has one value, all NaN when a group is empty.
    """
    _check_resampling(n_resamples, confidence)
    reference, candidate = _clean(reference, "reference"), _clean(candidate, "candidate")
    if len(reference) == 0 or len(candidate) == 0:
        return math.nan, math.nan, math.nan
    if lower_is_better:  # "beats" = is larger after flipping the sign
        reference, candidate = -reference, -candidate

    def share(r: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Rows of resamples (k, n_r) and (k, n_c) -> the share of pairs the candidate wins, ties half."""
        out = np.empty(len(r))
        rows = max(1, 2**22 // (r.shape[1] * c.shape[1]))  # a block of pair comparisons stays a few MiB
        for start in range(0, len(r), rows):
            rb, cb = r[start:start + rows, None, :], c[start:start + rows, :, None]
            out[start:start + rows] = ((cb > rb).sum(axis=(1, 2)) + 0.5 * (cb == rb).sum(axis=(1, 2)))
        return out / (r.shape[1] * c.shape[1])

    point = float(share(reference[None, :], candidate[None, :])[0])
    if len(reference) < 2 or len(candidate) < 2:
        return point, math.nan, math.nan
    rng = np.random.default_rng(seed)
    resampled = share(_resample(rng, reference, n_resamples), _resample(rng, candidate, n_resamples))
    return (point, *_percentiles(resampled, confidence))
