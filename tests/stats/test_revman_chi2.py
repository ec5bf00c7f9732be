"""P of Chi² as RevMan computes it (``trialpool.stats.revman.p_chi2``).

RevMan 5's values are checked on every P(Chi²) of the RevMan 5 files in
``tests/fixtures/revman`` (``test_revman_engine.py``). RevMan Web's full-double values
are not in the fixtures (the data package there prints 6 decimals), so a few are copied
here verbatim from a real RevMan Web data package: Charles KR et al., Clinically
indicated removal versus routine removal of peripheral venous catheters, CD007798.pub6
(2026), files ``CD007798-overall-estimates-and-settings.csv`` and
``CD007798-subgroup-estimates.csv`` (columns Heterogeneity Chi², df and P), from the copy
described in ``tests/fixtures/revman/README.md``.
"""

from __future__ import annotations

import pytest
from scipy import special

from trialpool.stats.revman import p_chi2

#: (where in CD007798, Chi², df, P) as RevMan Web printed them
REVMAN_WEB = [
    ("analysis 1.1", "0.22961649915643156", "1", "0.6318083557520958"),
    ("analysis 1.11", "3.0534838559967765", "3", "0.38345253685910285"),
    ("analysis 1.5", "35.72830875203028", "13", "0.0006537627027910498"),
    ("analysis 3.2, subgroup 2", "21.86403624340811", "5", "0.0005556923586127471"),
    ("analysis 3.7, subgroup 1", "44.743303830510854", "6", "5.2487243440424436e-8"),
    ("analysis 3.8, subgroup 2", "42.27448890423834", "2", "5.752589515850559e-10"),
]


@pytest.mark.parametrize(("where", "q", "df", "p"), REVMAN_WEB, ids=[w for w, *_ in REVMAN_WEB])
def test_revman_web_values(where: str, q: str, df: str, p: str) -> None:
    assert p_chi2(float(q), int(df), "revman_web") == pytest.approx(float(p), rel=0, abs=1e-13)


def test_revman_web_and_revman_5_differ_only_in_the_gamma_function() -> None:
    """RevMan 5's exact Γ and RevMan Web's Lanczos Γ move P by ~1e-10 of the lower tail:
    far below any printed decimal, but enough to matter where P is near 0."""
    for _, q, df, _p in REVMAN_WEB:
        web, five = p_chi2(float(q), int(df), "revman_web"), p_chi2(float(q), int(df))
        assert 0 < five - web < 3e-10
    _, q, df, p = REVMAN_WEB[-1]
    assert abs(p_chi2(float(q), int(df)) - float(p)) > 1e-11
    assert abs(float(special.chdtrc(int(df), float(q))) - float(p)) > 1e-11


def test_series_is_not_the_exact_tail() -> None:
    """The series stops at terms below 1e-6: P is larger than the exact tail by up to
    ~5e-7 where the last term left out is largest, and equal to it where the series
    converges fast."""
    diffs = [p_chi2(q / 100, 1) - float(special.chdtrc(1, q / 100)) for q in range(1, 2000)]
    assert min(diffs) > -1e-15
    assert 1e-7 < max(diffs) < 1e-6


def test_edges() -> None:
    assert p_chi2(0.0, 0) == 1.0  # a single study: Chi² = 0 on 0 df
    assert p_chi2(0.0, 3) == 1.0
    assert p_chi2(1e-31, 0) == 0.0  # RevMan's P of a Chi² of rounding noise on 0 df
    assert p_chi2(5000.0, 3) == 0.0  # beyond the series' range: the exact tail
    for q, df in ((300.0, 250), (600.0, 400), (1300.0, 1000)):  # Γ(a+1) beyond a double
        exact = float(special.chdtrc(df, q))
        assert p_chi2(q, df) == pytest.approx(exact, rel=1e-6, abs=1e-12)
        assert p_chi2(q, df, "revman_web") == pytest.approx(exact, rel=1e-6, abs=1e-10)
