"""trialpool.stats.cumulative against metafor's cumul() on real metadat datasets.

The reference values are in tests/golden/cumulative.json, written by
scripts/golden/cumulative.R (run ``Rscript scripts/make_golden.R``): the inputs in
cumulative order (by year, ties by label) and metafor 3.8-1's steps. No number here is
typed by hand. Tolerances as tests/stats/test_pooling_golden.py: closed-form models (FE,
DL, Mantel-Haenszel) rel 1e-8, abs 1e-10; iterated tau² (REML, ML, PM) rel 1e-6,
abs 1e-8.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from trialpool.stats.cumulative import cumul, cumul_mh

pytestmark = pytest.mark.golden

GOLDEN: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "golden" / "cumulative.json").read_text(encoding="utf-8")
)
CLOSED = {"rel": 1e-8, "abs": 1e-10}
ITERATIVE = {"rel": 1e-6, "abs": 1e-8}


def _close(actual: float | None, expected: float | None, tol: dict[str, float]) -> bool:
    missing = actual is None or (isinstance(actual, float) and not math.isfinite(actual))
    if expected is None:
        return missing
    if missing:
        return False
    assert actual is not None
    return math.isclose(actual, expected, rel_tol=tol["rel"], abs_tol=tol["abs"])


UNI = [
    pytest.param(case, fit, id=f"{case['name']}-{fit['method']}-{fit['test']}")
    for case in GOLDEN["uni"]
    for fit in case["fits"]
]


def test_golden_cases_cover_what_the_brief_names() -> None:
    """dat.bcg by year with RR REML and DL, HKSJ too; Mantel-Haenszel; no years."""
    fits = {(c["name"], f["method"], f["test"]) for c in GOLDEN["uni"] for f in c["fits"]}
    for method in ("REML", "DL", "FE", "PM", "ML"):
        for test in ("z", "knha"):
            assert ("bcg_RR", method, test) in fits
    assert {c["name"] for c in GOLDEN["mh"]} >= {"bcg_MH_RR", "nielweise2007_MH_RR"}
    normand = next(c for c in GOLDEN["uni"] if c["name"] == "normand1999_MD")
    assert all(y is None for y in normand["year"])
    assert normand["label"] == sorted(normand["label"], key=str.casefold)


@pytest.mark.parametrize(("case", "ref"), UNI)
def test_cumul_equals_metafor(case: dict[str, Any], ref: dict[str, Any]) -> None:
    steps = cumul(case["yi"], case["vi"], method=ref["method"], hksj=ref["test"] == "knha")
    assert [s.k for s in steps] == list(range(1, case["k"] + 1))
    tol = ITERATIVE if ref["method"] in ("REML", "ML", "PM") else CLOSED
    bad: list[str] = []
    for i, step in enumerate(steps):
        if ref["estimate"][i] is None:  # metafor: NA (its refit stopped with an error)
            if step.fit is not None:
                bad.append(f"step {i + 1}: metafor gives NA, we fitted it")
            continue
        assert step.fit is not None, f"step {i + 1}: {step.error}"
        f = step.fit
        ours = {
            "estimate": f.beta, "se": f.se, "zval": f.zval, "pval": f.pval,
            "ci_lb": f.ci_lb, "ci_ub": f.ci_ub, "QE": f.q, "QEp": f.q_p, "tau2": f.tau2,
            "I2": f.i2, "H2": f.h2,
        }  # fmt: skip
        for key, value in ours.items():
            if not _close(value, ref[key][i], tol):
                bad.append(f"step {i + 1} {key}: {value!r} != metafor {ref[key][i]!r}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("case", GOLDEN["mh"], ids=lambda c: c["name"])
def test_cumul_mh_equals_metafor(case: dict[str, Any]) -> None:
    steps = cumul_mh(case["ai"], case["n1i"], case["ci"], case["n2i"], measure=case["measure"])
    bad: list[str] = []
    for i, step in enumerate(steps):
        if case["estimate"][i] is None:  # metafor: NA (the MH ratio is not estimable)
            if step.fit is not None:
                bad.append(f"step {i + 1}: metafor gives NA, we fitted it")
            elif not step.error:
                bad.append(f"step {i + 1}: no reason given")
            continue
        assert step.fit is not None, f"step {i + 1}: {step.error}"
        f = step.fit
        ours = {
            "estimate": f.beta, "se": f.se, "zval": f.zval, "pval": f.pval,
            "ci_lb": f.ci_lb, "ci_ub": f.ci_ub, "QE": f.q, "QEp": f.q_p, "I2": f.i2,
            "H2": f.h2,
        }  # fmt: skip
        for key, value in ours.items():
            if not _close(value, case[key][i], CLOSED):
                bad.append(f"step {i + 1} {key}: {value!r} != metafor {case[key][i]!r}")
    assert not bad, "\n".join(bad)


def test_a_real_step_metafor_cannot_fit() -> None:
    """dat.nielweise2007, Mantel-Haenszel RR: Bach 1996 (0/116 vs 3/117) alone has no
    events in the treated group, so metafor's cumul() gives NA for step 1; we say why."""
    case = next(c for c in GOLDEN["mh"] if c["name"] == "nielweise2007_MH_RR")
    assert case["label"][0] == "Bach 1996" and case["estimate"][0] is None
    steps = cumul_mh(case["ai"], case["n1i"], case["ci"], case["n2i"], measure="RR")
    assert steps[0].fit is None
    assert "not estimable" in (steps[0].error or "")
    assert steps[1].fit is not None
