"""The statistics of an experiment: pure functions of counts, with scipy.stats.

The test is a fixed-horizon one: a two-sided, pooled two-proportion z-test read once each arm
has the planned number of impressions (``sample_size_per_arm``), with Holm's step-down
adjustment across candidates when there are several. Reading its p-value before the planned
size, and stopping when it dips under alpha, inflates the false-positive rate far above alpha;
the results page says so. docs/EXPERIMENTS.md explains the choice.

Imported only where results are computed (never by the serving path, which stays free of scipy).
"""

import math
from dataclasses import dataclass

from scipy import stats


@dataclass(frozen=True)
class Rate:
    """A proportion with its 95 % Wilson interval (``None`` bounds when there are no trials)."""

    successes: int
    trials: int
    rate: float | None
    low: float | None
    high: float | None

    def as_json(self):
        return {"rate": self.rate, "low": self.low, "high": self.high}


def wilson(successes, trials, *, confidence=0.95):
    """Return the ``Rate`` of ``successes`` in ``trials`` with its Wilson score interval.

    Without trials, or with more successes than trials (a client that reported clicks without
    their impressions), the rate is unknown: every value is None.
    """
    if trials <= 0 or successes < 0 or successes > trials:
        return Rate(successes, trials, None, None, None)
    interval = stats.binomtest(successes, trials).proportion_ci(confidence_level=confidence, method="wilson")
    return Rate(successes, trials, successes / trials, float(interval.low), float(interval.high))


@dataclass(frozen=True)
class Comparison:
    """A candidate's rate against the control's: difference, z statistic and two-sided p-value."""

    difference: float | None
    z: float | None
    p_value: float | None


def two_proportion_z_test(successes_a, trials_a, successes_b, trials_b):
    """Return the ``Comparison`` of proportion b against a (pooled two-proportion z-test, two-sided).

    The difference is b - a. With no trials in an arm, or no variance at all (no success or
    no failure anywhere), there is no evidence of a difference: p is 1 when both arms have
    trials, None when one has none.
    """
    if trials_a <= 0 or trials_b <= 0 or successes_a > trials_a or successes_b > trials_b:
        return Comparison(None, None, None)
    rate_a, rate_b = successes_a / trials_a, successes_b / trials_b
    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    variance = pooled * (1 - pooled) * (1 / trials_a + 1 / trials_b)
    if variance <= 0:
        return Comparison(rate_b - rate_a, 0.0, 1.0)
    z = (rate_b - rate_a) / math.sqrt(variance)
    return Comparison(rate_b - rate_a, z, float(2 * stats.norm.sf(abs(z))))


def holm(p_values):
    """Return Holm's step-down adjusted p-values, in the order given (None stays None).

    Rejecting where the adjusted value is below alpha keeps the chance of any false positive
    across all the comparisons at most alpha.
    """
    known = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(known):
        running = max(running, min(1.0, (len(known) - rank) * p))
        adjusted[i] = running
    return adjusted


def sample_size_per_arm(baseline, min_effect, *, alpha=0.05, power=0.8, comparisons=1):
    """Return the trials each arm needs for the z-test to find ``min_effect`` with ``power``.

    ``baseline`` is the control's rate, ``min_effect`` the smallest absolute difference worth
    finding (either direction), ``alpha`` the two-sided false-positive rate shared by
    ``comparisons`` candidates (Bonferroni for the plan; Holm rejects at least as much).
    """
    if not 0 < baseline < 1 or not 0 < baseline + min_effect < 1 or min_effect == 0:
        raise ValueError(
            f"baseline {baseline!r} and baseline + min_effect {baseline + min_effect!r} must be in (0, 1), "
            "and min_effect not 0"
        )
    if not 0 < alpha < 1 or not 0 < power < 1 or comparisons < 1:
        raise ValueError(f"alpha {alpha!r} and power {power!r} must be in (0, 1), comparisons ≥ 1")
    p1, p2 = baseline, baseline + min_effect
    mean = (p1 + p2) / 2
    z_alpha = stats.norm.isf(alpha / comparisons / 2)
    z_power = stats.norm.ppf(power)
    root = z_alpha * math.sqrt(2 * mean * (1 - mean)) + z_power * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil((root / min_effect) ** 2)


def power_of(trials_per_arm, baseline, min_effect, *, alpha=0.05, comparisons=1):
    """Return the chance that the z-test finds ``min_effect`` with ``trials_per_arm`` in each arm."""
    p1, p2 = baseline, baseline + min_effect
    mean = (p1 + p2) / 2
    z_alpha = stats.norm.isf(alpha / comparisons / 2)
    null_sd = math.sqrt(2 * mean * (1 - mean) / trials_per_arm)
    alternative_sd = math.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / trials_per_arm)
    return float(stats.norm.sf((z_alpha * null_sd - abs(min_effect)) / alternative_sd))
