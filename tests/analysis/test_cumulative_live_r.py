"""Cumulative meta-analysis against metafor's cumul() run live (Rscript).

Skipped (with the reason) when Rscript, metafor or jsonlite is not available. Three parts:

* random datasets made here (fixed seed), sent to R as JSON (full precision): every
  method with test "z" and "knha", and Mantel-Haenszel RR, OR and RD, each step compared
  with ``cumul()`` (tolerances of tests/stats/test_pooling_golden.py);
* synthetic datasets where metafor cannot fit a step. Paule-Mandel finds no root below
  tau2.max: metafor gives NA at exactly the step where trialpool says why. REML on a
  scale where tau² is about 2e11: metafor's Fisher scoring alternates between two
  neighbouring doubles for the first two studies (its threshold of 1e-5 is below the
  resolution of tau²) and gives NA; trialpool stops on a change of rounding size and
  fits the step (the REML root), a documented difference; the other steps agree;
* an imported review (CD008625, a real RevMan 5 file): analyses pooled with RevMan's
  inverse-variance random-effects model (DerSimonian-Laird, Wald), whose numbers are
  metafor's ``rma(method = "DL")``; the steps of trialpool's RevMan engine in year order
  equal ``cumul()`` of that model on the same rows in the same order.
"""

from __future__ import annotations

import io
import json
import math
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from conftest import FIXTURES, live_r_unavailable
from trialpool.analysis.cumulative import cumulative_of_review, study_years
from trialpool.analysis.plan import RevManAnalysis, load_plan
from trialpool.analysis.revman import pool_review_analysis
from trialpool.imports.write import run_import
from trialpool.package.loader import load_package
from trialpool.stats.cumulative import Step, cumul, cumul_mh

pytestmark = pytest.mark.live_r

CLOSED = {"rel": 1e-8, "abs": 1e-10}
ITERATIVE = {"rel": 1e-6, "abs": 1e-8}

R_SCRIPT = r"""
suppressPackageStartupMessages({library(metafor); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
inp <- fromJSON(args[1], simplifyDataFrame = FALSE)
nn <- function(x) { x <- as.numeric(x); ifelse(is.finite(x), x, NA) }
steps <- function(cm) list(
  estimate = nn(cm$estimate), se = nn(cm$se),
  zval = nn(if (!is.null(cm$tval)) cm$tval else cm$zval),
  pval = nn(if (!is.null(cm$pvals)) cm$pvals else cm$pval),
  ci_lb = nn(cm$ci.lb), ci_ub = nn(cm$ci.ub), QE = nn(cm$Q), QEp = nn(cm$Qp),
  tau2 = if (is.null(cm$tau2)) rep(0, length(cm$estimate)) else nn(cm$tau2), I2 = nn(cm$I2))
uni <- lapply(inp$uni, function(d) {
  yi <- unlist(d$yi); vi <- unlist(d$vi)
  r <- tryCatch(suppressWarnings(rma(yi, vi, method = d$method, test = d$test)),
                error = function(e) conditionMessage(e))
  if (is.character(r)) return(list(error = r))
  steps(suppressWarnings(cumul(r)))
})
mh <- lapply(inp$mh, function(d) {
  r <- tryCatch(suppressWarnings(rma.mh(ai = unlist(d$ai), n1i = unlist(d$n1i),
                                        ci = unlist(d$ci), n2i = unlist(d$n2i),
                                        measure = d$measure)),
                error = function(e) conditionMessage(e))
  if (is.character(r)) return(list(error = r))
  steps(suppressWarnings(cumul(r)))
})
writeLines(toJSON(list(uni = uni, mh = mh), auto_unbox = TRUE, digits = NA, null = "null",
                  na = "null"), args[2])
"""

#: synthetic data where one step cannot be fitted (see the module docstring)
REML_STUCK = {
    "yi": [-794608.847186093, -152646.210676965, -422129.9381490975],
    "vi": [36920.7524129884, 94987.2905496265, 44532.953124256375],
    "method": "REML",
    "test": "z",
    "stuck": 2,
}
PM_NO_ROOT = {
    "yi": [0.0, 0.0, 100.0, 50.0, 25.0],
    "vi": [1.0, 2.0, 1.0, 2.0, 3.0],
    "method": "PM",
    "test": "z",
    "stuck": 3,
}


def _run_r(work: Path, data: dict[str, Any]) -> dict[str, Any]:
    reason = live_r_unavailable()
    if reason is not None:
        pytest.skip(reason)
    rscript = shutil.which("Rscript")
    assert rscript is not None
    (work / "in.json").write_text(json.dumps(data), encoding="utf-8")
    (work / "cumul.R").write_text(R_SCRIPT, encoding="utf-8")
    run = subprocess.run(
        [rscript, str(work / "cumul.R"), str(work / "in.json"), str(work / "out.json")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    out: dict[str, Any] = json.loads((work / "out.json").read_text(encoding="utf-8"))
    return out


def _datasets() -> list[dict[str, Any]]:
    rng = np.random.default_rng(20250618)
    out = []
    for k, tau, scale in [
        (3, 0.0, 1.0),
        (5, 0.4, 1.0),
        (8, 0.2, 1.0),
        (12, 0.6, 1.0),
        (9, 12.0, 20.0),
    ]:
        vi = rng.uniform(0.01, 0.5, k) * scale**2
        yi = rng.normal(0.3 * scale, tau, k) + rng.normal(0.0, np.sqrt(vi))
        for method in ("EE", "DL", "REML", "PM", "ML"):
            for test in ("z", "knha"):
                out.append({"yi": yi.tolist(), "vi": vi.tolist(), "method": method, "test": test})
    return [*out, REML_STUCK, PM_NO_ROOT]


def _tables() -> list[dict[str, Any]]:
    rng = np.random.default_rng(11)
    out = []
    for k, p1, p2 in [(6, 0.05, 0.12), (10, 0.2, 0.3), (4, 0.02, 0.02)]:
        n1 = rng.integers(15, 150, k)
        n2 = rng.integers(15, 150, k)
        a, c = rng.binomial(n1, p1), rng.binomial(n2, p2)
        for measure in ("RR", "OR", "RD"):
            out.append(
                {"ai": a.tolist(), "n1i": n1.tolist(), "ci": c.tolist(), "n2i": n2.tolist(),
                 "measure": measure}
            )  # fmt: skip
    return out


def _compare(
    label: str, steps: list[Step], ref: dict[str, Any], tol: dict[str, float]
) -> list[str]:
    errors: list[str] = []
    for i, step in enumerate(steps):
        if ref["estimate"][i] is None:
            if step.fit is not None:
                errors.append(f"{label} step {i + 1}: metafor NA, we fitted it")
            continue
        if step.fit is None:
            errors.append(f"{label} step {i + 1}: not fitted ({step.error})")
            continue
        f = step.fit
        ours = {"estimate": f.beta, "se": f.se, "zval": f.zval, "pval": f.pval,
                "ci_lb": f.ci_lb, "ci_ub": f.ci_ub, "QE": f.q, "QEp": f.q_p, "tau2": f.tau2,
                "I2": f.i2}  # fmt: skip
        for key, value in ours.items():
            want = ref[key][i]
            if (
                want is None
                or value is None
                or not math.isclose(value, want, rel_tol=tol["rel"], abs_tol=tol["abs"])
            ):
                errors.append(f"{label} step {i + 1} {key}: {value!r} != metafor {want!r}")
    return errors


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data = {"uni": _datasets(), "mh": _tables()}
    return {"data": data, "r": _run_r(tmp_path_factory.mktemp("cumul_live"), data)}


def test_cumul_matches_live_metafor(live: dict[str, Any]) -> None:
    errors: list[str] = []
    for i, (d, ref) in enumerate(zip(live["data"]["uni"], live["r"]["uni"], strict=True)):
        assert "error" not in ref, ref
        method = "FE" if d["method"] == "EE" else d["method"]
        steps = cumul(d["yi"], d["vi"], method=method, hksj=d["test"] == "knha")
        tol = ITERATIVE if method in ("REML", "ML", "PM") else CLOSED
        if d is REML_STUCK:  # metafor's NA step: test_reml_step_metafor_cannot_fit
            stuck = REML_STUCK["stuck"] - 1
            steps = [s for j, s in enumerate(steps) if j != stuck]
            ref = {key: [x for j, x in enumerate(v) if j != stuck] for key, v in ref.items()}
        errors += _compare(f"dataset {i} {method}/{d['test']}", steps, ref, tol)
    assert not errors, "\n".join(errors)


def test_metafor_gives_na_where_a_step_is_not_fitted(live: dict[str, Any]) -> None:
    case = PM_NO_ROOT
    ref = live["r"]["uni"][live["data"]["uni"].index(case)]
    stuck = case["stuck"] - 1
    assert ref["estimate"][stuck] is None
    assert all(e is not None for i, e in enumerate(ref["estimate"]) if i != stuck)
    steps = cumul(case["yi"], case["vi"], method=case["method"])
    assert steps[stuck].fit is None and steps[stuck].error


def test_reml_step_metafor_cannot_fit(live: dict[str, Any]) -> None:
    """metafor gives NA at the step whose Fisher scoring alternates between neighbouring
    doubles; trialpool fits it, at a root of the REML score Y'PPY = tr P (Viechtbauer
    2005), and agrees with metafor on every other step (test_cumul_matches_live_metafor)."""
    case = REML_STUCK
    ref = live["r"]["uni"][live["data"]["uni"].index(case)]
    stuck = case["stuck"] - 1
    assert ref["estimate"][stuck] is None
    assert all(e is not None for i, e in enumerate(ref["estimate"]) if i != stuck)
    fit = cumul(case["yi"], case["vi"], method="REML")[stuck].fit
    assert fit is not None and fit.tau2 > 1e10
    y = np.asarray(case["yi"][: stuck + 1])
    w = 1.0 / (np.asarray(case["vi"][: stuck + 1]) + fit.tau2)
    res = y - np.sum(w * y) / np.sum(w)
    tr_p = np.sum(w) - np.sum(w * w) / np.sum(w)
    assert abs(np.sum(w * w * res * res) - tr_p) <= 1e-8 * tr_p


def test_cumul_mh_matches_live_metafor(live: dict[str, Any]) -> None:
    errors: list[str] = []
    for i, (d, ref) in enumerate(zip(live["data"]["mh"], live["r"]["mh"], strict=True)):
        assert "error" not in ref, ref
        steps = cumul_mh(d["ai"], d["n1i"], d["ci"], d["n2i"], measure=d["measure"])
        errors += _compare(f"tables {i} MH {d['measure']}", steps, ref, CLOSED)
    assert not errors, "\n".join(errors)


# ------------------------------------------------------------------ an imported review


def _iv_dl_analyses(descriptor: Path) -> list[RevManAnalysis]:
    """The review's inverse-variance, random-effects (DL, Wald) analyses with an overall
    total and at least three study rows with data."""
    plan = load_plan(descriptor.parent / "analysis" / "plan.json")
    return [
        a
        for a in plan.analyses
        if isinstance(a, RevManAnalysis)
        and a.method == "IV"
        and a.random
        and a.tau2_method == "DL"
        and a.ci_method == "Wald"
        and a.totals == "overall"
        and len(a.comparison_ids) >= 3
    ]


def test_revman_iv_random_steps_match_live_metafor(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    work = tmp_path_factory.mktemp("cumul_revman")
    source = FIXTURES / "revman" / "CD008625StatsDataOnly.rm5"
    console = Console(file=io.StringIO())
    assert run_import(source, out=work / "pkg", force=False, console=console) == 0
    descriptor = work / "pkg" / "datapackage.json"
    pkg = load_package(descriptor)
    years = study_years(pkg)
    cases: list[tuple[str, Any, dict[str, Any]]] = []
    chosen = {"continuous": 0, "generic": 0}
    for a in _iv_dl_analyses(descriptor):
        if a.data_type not in chosen or chosen[a.data_type] >= 2:
            continue
        result = pool_review_analysis(pkg, a)
        c = cumulative_of_review(a, result, years)
        rows = {s.comparison_id: s for s in result.studies}
        ordered = [rows[str(s.comparison_id)] for s in c.steps]
        if len(ordered) < 3 or not all(s.estimable for s in ordered):
            continue
        if a.data_type == "continuous":  # metafor's MD: sd1²/n1 + sd2²/n2, as RevMan
            yi = [s.arm_data["m1"] - s.arm_data["m2"] for s in ordered]  # type: ignore[operator]
            vi = [
                s.arm_data["sd1"] ** 2 / s.arm_data["n1"]  # type: ignore[operator]
                + s.arm_data["sd2"] ** 2 / s.arm_data["n2"]  # type: ignore[operator]
                for s in ordered
            ]
        else:
            yi = [float(s.arm_data["estimate"]) for s in ordered]  # type: ignore[arg-type]
            vi = [float(s.arm_data["se"]) ** 2 for s in ordered]  # type: ignore[arg-type]
        chosen[a.data_type] += 1
        cases.append((a.id, c, {"yi": yi, "vi": vi, "method": "DL", "test": "z"}))
    assert chosen == {"continuous": 2, "generic": 2}, chosen
    ref = _run_r(work, {"uni": [d for _, _, d in cases], "mh": []})
    errors: list[str] = []
    for (aid, c, _), r in zip(cases, ref["uni"], strict=True):
        assert "error" not in r, r
        for i, step in enumerate(c.steps):
            assert step.fitted, (aid, step)
            log = c.ratio
            est = math.log(step.estimate) if log else step.estimate  # type: ignore[arg-type]
            lo = math.log(step.ci_lower) if log else step.ci_lower  # type: ignore[arg-type]
            pairs = {
                "estimate": est,
                "ci_lb": lo,
                "se": step.se,
                "tau2": step.tau2,
                "I2": step.i2,
                "QE": step.q,
                "pval": step.p_value,
            }
            for key, value in pairs.items():
                want = r[key][i]
                if not math.isclose(value, want, rel_tol=1e-8, abs_tol=1e-10):  # type: ignore[arg-type]
                    errors.append(f"analysis {aid} step {i + 1} {key}: {value!r} != {want!r}")
            # RevMan prints Z without its sign
            assert math.isclose(step.zval, abs(r["zval"][i]), rel_tol=1e-8)  # type: ignore[arg-type]
    assert not errors, "\n".join(errors)
