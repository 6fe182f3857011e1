"""The statistics against published values, scipy's own tests and simulation (pure functions, no database)."""

import numpy as np
import pytest
from scipy.stats import chi2_contingency, norm

from recommendations.experiments import stats


def test_wilson_matches_newcombe_s_published_interval():
    # Newcombe (1998), Statistics in Medicine 17:857, table I: 81 of 263 → 0.2553 to 0.3662.
    rate = stats.wilson(81, 263)
    assert rate.rate == pytest.approx(81 / 263)
    assert (round(rate.low, 4), round(rate.high, 4)) == (0.2553, 0.3662)


def test_wilson_stays_inside_0_and_1_and_is_unknown_without_trials():
    assert stats.wilson(0, 20).low == 0.0
    assert stats.wilson(20, 20).high == pytest.approx(1.0)
    assert stats.wilson(0, 0).rate is None
    assert stats.wilson(5, 3).rate is None  # clicks without their impressions


@pytest.mark.parametrize(
    ("a", "n_a", "b", "n_b"), [(50, 1000, 70, 1000), (12, 340, 30, 410), (300, 5000, 290, 4800)]
)
def test_the_z_test_equals_the_uncorrected_chi_square_test(a, n_a, b, n_b):
    comparison = stats.two_proportion_z_test(a, n_a, b, n_b)
    chi2, p, _, _ = chi2_contingency([[a, n_a - a], [b, n_b - b]], correction=False)
    assert comparison.p_value == pytest.approx(p)
    assert comparison.z**2 == pytest.approx(chi2)
    assert comparison.difference == pytest.approx(b / n_b - a / n_a)


def test_the_z_test_without_variance_or_trials_finds_nothing():
    assert stats.two_proportion_z_test(0, 100, 0, 100).p_value == 1.0
    assert stats.two_proportion_z_test(0, 0, 3, 100).p_value is None


def test_holm_matches_the_textbook_example():
    # Holm (1979) step-down on four p-values: multiply the k-th smallest by (m - k + 1), keep monotone.
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.2, None]) == [0.2, None]


def test_the_planned_size_is_the_classic_one():
    # 5 % → 6 %, alpha 0.05 two-sided, power 0.8: the standard formula gives 8,158 per arm.
    assert stats.sample_size_per_arm(0.05, 0.01) == 8158
    # Two candidates share alpha: each comparison is planned at 0.025.
    assert stats.sample_size_per_arm(0.05, 0.01, comparisons=2) > 8158
    assert stats.power_of(8158, 0.05, 0.01) == pytest.approx(0.80, abs=0.001)


@pytest.mark.parametrize("bad", [(0.0, 0.01), (0.99, 0.02), (0.1, 0.0)])
def test_an_impossible_plan_is_refused(bad):
    with pytest.raises(ValueError, match="must be in"):
        stats.sample_size_per_arm(*bad)


def _rejections(rng, p_a, p_b, n, runs):
    clicks_a = rng.binomial(n, p_a, runs)
    clicks_b = rng.binomial(n, p_b, runs)
    return np.mean(
        [
            stats.two_proportion_z_test(a, n, b, n).p_value < 0.05
            for a, b in zip(clicks_a, clicks_b, strict=True)
        ]
    )


def test_at_the_planned_size_the_test_has_the_planned_power():
    # 2,000 simulated experiments of 10 % against 13 %: the share called is 0.8 within 3 sd (±0.027).
    n = stats.sample_size_per_arm(0.10, 0.03)
    assert _rejections(np.random.default_rng(1), 0.10, 0.13, n, 2000) == pytest.approx(0.80, abs=0.027)


def test_without_a_difference_the_test_is_wrong_alpha_of_the_time():
    # 2,000 simulated A/A experiments: the false-positive share is 0.05 within 3 sd (±0.015).
    n = stats.sample_size_per_arm(0.10, 0.03)
    assert _rejections(np.random.default_rng(2), 0.10, 0.10, n, 2000) == pytest.approx(0.05, abs=0.015)


def test_peeking_twenty_times_and_stopping_at_the_first_dip_calls_far_more_than_alpha():
    # Why the page warns before the planned size: 2,000 A/A experiments looked at 20 times on the
    # way to their planned size, each stopped at its first p < 0.05, are called about a quarter of
    # the time (0.25 with this seed), five times alpha. The same pooled z-test, on arrays.
    rng = np.random.default_rng(3)
    n, looks, runs = stats.sample_size_per_arm(0.10, 0.03), 20, 2000
    trials = (n // looks) * np.arange(1, looks + 1)
    clicks_a = rng.binomial(n // looks, 0.10, (runs, looks)).cumsum(axis=1)
    clicks_b = rng.binomial(n // looks, 0.10, (runs, looks)).cumsum(axis=1)
    pooled = (clicks_a + clicks_b) / (2 * trials)
    z = (clicks_b - clicks_a) / trials / np.sqrt(pooled * (1 - pooled) * 2 / trials)
    p_values = 2 * norm.sf(np.abs(z))
    last = stats.two_proportion_z_test(clicks_a[0, -1], trials[-1], clicks_b[0, -1], trials[-1])
    assert p_values[0, -1] == pytest.approx(last.p_value)
    called = np.mean((p_values < 0.05).any(axis=1))
    assert called > 0.15
    assert np.mean(p_values[:, -1] < 0.05) < 0.08  # read once, at the planned size: about alpha
