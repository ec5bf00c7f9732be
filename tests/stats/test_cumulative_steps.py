"""trialpool.stats.cumulative on small inputs: the rules around each step.

Values against metafor are in test_cumulative_golden.py (committed golden values) and
tests/analysis/test_cumulative_live_r.py (metafor run live). Here: each step is the pool
of the first i studies (metafor's ``rma``, RevMan's ``revman_fit``), one study with HKSJ
uses the z test as metafor does, RevMan steps that cannot be estimated, and bad input.
All data below are synthetic.
"""

from __future__ import annotations

import math

import pytest

from trialpool.errors import AnalysisError
from trialpool.stats.cumulative import K1_HKSJ_NOTE, cumul, cumul_mh, revman_cumul
from trialpool.stats.pooling import rma
from trialpool.stats.revman import RevManSettings, revman_fit

YI = [0.3, -0.1, 0.5, 0.2]
VI = [0.04, 0.09, 0.05, 0.02]


def test_each_step_is_the_pool_of_the_first_studies() -> None:
    steps = cumul(YI, VI, method="REML", hksj=True)
    assert [s.k for s in steps] == [1, 2, 3, 4]
    for i in (2, 3, 4):
        fit = rma(YI[:i], VI[:i], method="REML", hksj=True, tau2_ci=False)
        ours = steps[i - 1].fit
        assert ours is not None
        assert (ours.beta, ours.ci_lb, ours.tau2) == (fit.beta, fit.ci_lb, fit.tau2)


def test_one_study_with_hksj_uses_the_z_test() -> None:
    (first, *_) = cumul(YI, VI, method="DL", hksj=True)
    assert first.fit is not None and not first.fit.hksj
    assert first.fit.beta == YI[0] and first.fit.se == pytest.approx(math.sqrt(VI[0]))
    assert math.isfinite(first.fit.ci_lb)
    assert K1_HKSJ_NOTE in first.fit.messages


def test_bad_input_raises() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        cumul([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="positive"):
        cumul([0.1, 0.2], [0.1, 0.0])
    with pytest.raises(ValueError, match="equal length"):
        cumul_mh([1, 2], [10, 10], [1], [10, 10], measure="RR")


SETTINGS = RevManSettings(data_type="dichotomous", method="MH", measure="RR", random=True)


def test_revman_steps_and_a_first_row_without_events() -> None:
    """A first row without events in either group is not estimable for RR: step 1 has no
    estimate (RevMan's reason); from step 2 on each step is RevMan's total of its rows."""
    data = {"e1": [0, 3, 7], "n1": [10, 20, 30], "e2": [0, 5, 12], "n2": [10, 20, 30]}
    fits = revman_cumul(data, SETTINGS)
    assert [f.estimable for f in fits] == [False, True, True]
    assert fits[0].reason == "no events in any study (k = 0)"
    for i in (2, 3):
        total = revman_fit({n: v[:i] for n, v in data.items()}, SETTINGS)
        assert fits[i - 1].estimate == total.estimate and fits[i - 1].k == total.k == i - 1


def test_revman_cumulative_needs_the_overall_total() -> None:
    data = {"e1": [1, 3], "n1": [10, 20], "e2": [2, 5], "n2": [10, 20]}
    for totals in ("subgroups", "none"):
        settings = RevManSettings(
            data_type="dichotomous", method="MH", measure="RR", random=False, totals=totals
        )
        with pytest.raises(AnalysisError, match="Totals option 'overall'"):
            revman_cumul(data, settings)
    with pytest.raises(AnalysisError, match="one value per row"):
        revman_cumul({"e1": [1], "n1": [10, 20], "e2": [2, 5], "n2": [10, 20]}, SETTINGS)
