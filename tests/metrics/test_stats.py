"""Known answers for the paired tests of spectro.metrics.stats."""

import numpy as np
import pytest
from scipy.stats import binomtest

from spectro.metrics.stats import bootstrap_weights, holm, mcnemar_exact, paired_bootstrap_diff, percentile_interval


def test_mcnemar_counts_discordant_pairs_and_matches_the_binomial():
    a = np.array([1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 0], dtype=bool)
    b = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 1, 0], dtype=bool)
    p, n_ab, n_ba = mcnemar_exact(a, b)
    assert (n_ab, n_ba) == (6, 1)
    # Two-sided exact p of 6 successes in 7 fair trials: 2 * (C(7,6) + C(7,7)) / 2**7 = 16/128.
    assert p == pytest.approx(16 / 128)
    assert p == pytest.approx(binomtest(6, 7, 0.5).pvalue)


def test_mcnemar_extremes():
    ten_wins = mcnemar_exact(np.ones(10, bool), np.zeros(10, bool))
    assert ten_wins == (pytest.approx(2 * 0.5**10), 10, 0)
    same = np.array([1, 0, 1, 1], dtype=bool)
    assert mcnemar_exact(same, same) == (1.0, 0, 0)  # never disagree: no evidence either way
    # Symmetric in the direction of the difference.
    a, b = np.array([1, 1, 1, 0, 0], bool), np.array([0, 0, 1, 1, 0], bool)
    assert mcnemar_exact(a, b)[0] == pytest.approx(mcnemar_exact(b, a)[0])


def test_holm_known_answer():
    # Sorted 0.01, 0.03, 0.04 -> 3*0.01, 2*0.03, 1*0.04 -> monotone 0.03, 0.06, 0.06.
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    np.testing.assert_allclose(holm([0.5, 0.9]), [1.0, 1.0])  # capped at 1
    np.testing.assert_allclose(holm([0.02]), [0.02])  # one test: unchanged
    assert holm([]).shape == (0,)


def test_bootstrap_weights_resample_whole_groups():
    groups = np.array(["a", "a", "a", "b", "c", "c"])
    w = bootstrap_weights(groups, n_boot=500, seed=1)
    assert w.shape == (500, 6)
    np.testing.assert_array_equal(w[:, 0], w[:, 1])  # the clips of a group move together
    np.testing.assert_array_equal(w[:, 4], w[:, 5])
    # Three groups drawn three times: group draw counts sum to 3 in every resample.
    np.testing.assert_array_equal(w[:, 0] + w[:, 3] + w[:, 4], 3)
    np.testing.assert_array_equal(bootstrap_weights(groups, n_boot=50, seed=1), bootstrap_weights(groups, n_boot=50,
                                                                                                  seed=1))


def test_paired_bootstrap_known_answers():
    n = 40
    groups = np.repeat(np.arange(8), 5)
    right, wrong = np.ones(n, bool), np.zeros(n, bool)
    assert paired_bootstrap_diff(right, wrong, groups) == (1.0, 1.0, 1.0)
    assert paired_bootstrap_diff(right, right, groups) == (0.0, 0.0, 0.0)
    diff, lo, hi = paired_bootstrap_diff(right, np.arange(n) % 2 == 0, groups, n_boot=1000, seed=0)
    assert diff == pytest.approx(0.5) and lo <= 0.5 <= hi


def test_group_bootstrap_is_wider_when_errors_cluster_by_group():
    # B fails on every clip of 2 of 10 speakers: 20 % of clips, but only two independent events.
    groups = np.repeat(np.arange(10), 10)
    a = np.ones(100, bool)
    b = groups >= 2
    _, lo_g, hi_g = paired_bootstrap_diff(a, b, groups, n_boot=2000, seed=0)
    _, lo_c, hi_c = paired_bootstrap_diff(a, b, np.arange(100), n_boot=2000, seed=0)
    assert hi_g - lo_g > 1.5 * (hi_c - lo_c)
    assert lo_g == pytest.approx(0.0)  # with 2 failing speakers of 10, a draw without either is plausible


def test_one_test_group_draws_examples_not_a_zero_width_interval():
    # A leave-one-speaker-out fold: 80 clips of one group, A right on 70, B on 68 (of which 64 shared).
    a = np.arange(80) < 70
    b = (np.arange(80) < 64) | ((np.arange(80) >= 70) & (np.arange(80) < 74))
    diff, lo, hi = paired_bootstrap_diff(a, b, np.zeros(80), n_boot=2000, seed=0)
    assert diff == pytest.approx(2 / 80)
    assert lo < 0 < hi  # 6 against 4 discordant clips: not a difference anyone should call certain
    assert (lo, hi) == paired_bootstrap_diff(a, b, np.arange(80), n_boot=2000, seed=0)[1:]


def test_percentile_interval():
    assert percentile_interval(np.arange(101.0), 0.9) == (pytest.approx(5.0), pytest.approx(95.0))
