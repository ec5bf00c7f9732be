"""Cumulative meta-analysis from packages: ``trialpool pool --cumulative [--json]``.

Against metafor: the engine-test packages built from metadat (tests/fixtures/metadat_*)
pooled through the whole path (validation, arm pairing, escalc, the order by
``studies.year``), each step compared with metafor's ``cumul()`` in
tests/golden/cumulative.json (scripts/golden/cumulative.R; the same labels, years and
order). Imported reviews (RevMan's conventions): the real CD000023 file, whose last step
must be the analysis's total. Edge cases: one study, studies without a year, steps that
cannot be fitted (a real one in dat.nielweise2007; REML that does not converge and
Paule-Mandel without a root on synthetic data, marked as such), and an analysis whose
Totals option gives no overall total.
"""

from __future__ import annotations

import io
import itertools
import json
import math
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from conftest import FIXTURES, set_cell
from trialpool import cli
from trialpool.analysis.cumulative import (
    STEP_KEYS,
    cumulative_of_result,
    cumulative_of_review,
    study_years,
    year_order,
)
from trialpool.analysis.plan import RevManAnalysis, load_plan
from trialpool.analysis.pooled import pool_outcome
from trialpool.analysis.revman import pool_review_analysis
from trialpool.errors import AnalysisError
from trialpool.imports.write import run_import
from trialpool.package.loader import load_package
from trialpool.stats.pooling import result_from_fit, rma
from trialpool.stats.results import NotPooled, PoolResult, StudyEffect

GOLDEN: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "golden" / "cumulative.json").read_text(encoding="utf-8")
)
RATIO = {"RR", "OR"}
OUTCOME = {"bcg": "tuberculosis", "nielweise2007": "crbsi", "normand1999": "length_of_stay"}


def _case(name: str) -> dict[str, Any]:
    return next(c for c in GOLDEN["uni"] + GOLDEN["mh"] if c["name"] == name)


def _fit(case: dict[str, Any], method: str, test: str) -> dict[str, Any]:
    return next(f for f in case["fits"] if f["method"] == method and f["test"] == test)


def _close(got: float | None, want: float | None, tol: float) -> bool:
    if want is None:
        return got is None
    return got is not None and math.isclose(got, want, rel_tol=tol, abs_tol=tol)


def assert_steps_match(
    steps: list[dict[str, Any]], case: dict[str, Any], ref: dict[str, Any], measure: str
) -> None:
    """Steps (the JSON's dicts) against metafor: order, years and every number, on the
    scale of ``trialpool pool --json`` (ratio scale for RR and OR estimates and CIs)."""
    tol = 1e-6 if ref["method"] in ("REML", "ML", "PM") else 1e-8
    tr = math.exp if measure in RATIO else (lambda x: x)
    assert [s["label"] for s in steps] == case["label"]
    assert [s["year"] for s in steps] == case["year"]
    assert [s["step"] for s in steps] == list(range(1, len(steps) + 1))
    bad = []
    for i, s in enumerate(steps):
        if ref["estimate"][i] is None:
            assert s["fitted"] is False and s["estimate"] is None and s["reason"]
            continue
        want = {
            "estimate": tr(ref["estimate"][i]),
            "ci_lower": tr(ref["ci_lb"][i]),
            "ci_upper": tr(ref["ci_ub"][i]),
            "se": ref["se"][i],
            "zval": ref["zval"][i],
            "p_value": ref["pval"][i],
            "tau2": ref["tau2"][i],
            "i2": ref["I2"][i],
            "q": ref["QE"][i],
            "q_p": ref["QEp"][i],
        }
        assert s["fitted"] is True and s["k"] == i + 1
        bad += [
            f"step {i + 1} {key}: {s[key]!r} != metafor {value!r}"
            for key, value in want.items()
            if not _close(s[key], value, tol)
        ]
    assert not bad, "\n".join(bad)


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def pool_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, err = run_cli(["pool", *args, "--cumulative", "--json"], capsys)
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1  # one JSON object (no NaN: json.loads would accept it, check)
    assert "NaN" not in lines[0] and "Infinity" not in lines[0]
    return json.loads(lines[0])


# ------------------------------------------------------------------ against metafor

PACKAGE_CASES = [
    # (golden case, fixture, measure, method, test, designs): designs None = every design
    ("bcg_RR", "bcg", "RR", "REML", "z", None),
    ("bcg_RR", "bcg", "RR", "REML", "knha", None),
    ("bcg_RR", "bcg", "RR", "DL", "z", None),
    ("bcg_RR", "bcg", "RR", "DL", "knha", None),
    ("bcg_RR", "bcg", "RR", "FE", "z", None),
    ("bcg_RR", "bcg", "RR", "PM", "knha", None),
    ("bcg_RR", "bcg", "RR", "ML", "z", None),
    ("bcg_OR", "bcg", "OR", "DL", "z", None),
    ("bcg_random_RR", "bcg", "RR", "REML", "z", ("rct",)),
    ("nielweise2007_RR", "nielweise2007", "RR", "REML", "knha", ("rct",)),
    ("nielweise2007_RR", "nielweise2007", "RR", "FE", "z", ("rct",)),
    ("normand1999_MD", "normand1999", "MD", "REML", "z", ("rct",)),
    ("normand1999_SMD", "normand1999", "SMD", "DL", "knha", ("rct",)),
]


@pytest.mark.golden
@pytest.mark.parametrize(
    ("name", "fixture", "measure", "method", "test", "designs"),
    PACKAGE_CASES,
    ids=[f"{c[0]}-{c[3]}-{c[4]}" for c in PACKAGE_CASES],
)
def test_package_cumulative_equals_metafor(
    name: str, fixture: str, measure: str, method: str, test: str, designs: Any
) -> None:
    pkg = load_package(FIXTURES / f"metadat_{fixture}" / "datapackage.json")
    hksj = test == "knha"
    result = pool_outcome(
        pkg, OUTCOME[fixture], measure=measure, method=method, hksj=hksj, designs=designs
    )
    c = cumulative_of_result(result, study_years(pkg), method=method, hksj=hksj, level=95.0)
    case = _case(name)
    steps = [s.model_dump(mode="json") for s in c.steps]
    assert_steps_match(steps, case, _fit(case, method, test), measure)
    assert isinstance(result, PoolResult)  # the last step is the analysis itself
    assert c.steps[-1].estimate == pytest.approx(result.estimate, rel=1e-12)
    assert c.steps[-1].tau2 == pytest.approx(result.tau2, rel=1e-12, abs=1e-15)


@pytest.mark.golden
@pytest.mark.parametrize(
    ("name", "fixture", "measure"),
    [
        ("bcg_MH_RR", "bcg", "RR"),
        ("bcg_MH_OR", "bcg", "OR"),
        ("nielweise2007_MH_RR", "nielweise2007", "RR"),
    ],
)
def test_package_mantel_haenszel_equals_metafor(name: str, fixture: str, measure: str) -> None:
    pkg = load_package(FIXTURES / f"metadat_{fixture}" / "datapackage.json")
    designs = None if fixture == "bcg" else ("rct",)
    result = pool_outcome(pkg, OUTCOME[fixture], measure=measure, method="MH", designs=designs)
    c = cumulative_of_result(result, study_years(pkg), method="MH", hksj=False, level=95.0)
    case = _case(name)
    steps = [s.model_dump(mode="json") for s in c.steps]
    assert_steps_match(steps, case, case, measure)
    assert c.model == "Mantel-Haenszel"


@pytest.mark.golden
def test_cli_json_keys_and_scale(capsys: pytest.CaptureFixture[str]) -> None:
    """``pool --cumulative --json`` keeps every key of ``pool --json`` and adds
    ``cumulative`` (steps with study_id, year, k, estimate, ci_lower, ci_upper, tau2, i2,
    ratio scale for RR) and ``cumulative_notes``; the last step is the pooled result."""
    descriptor = str(FIXTURES / "metadat_bcg" / "datapackage.json")
    args = [descriptor, "--outcome", "tuberculosis", "--measure", "RR", "--method", "REML"]
    payload = pool_json(args, capsys)
    code, plain, _ = run_cli(["pool", *args, "--json"], capsys)
    assert code == 0
    without = json.loads(plain)
    assert set(payload) == set(without) | {"cumulative", "cumulative_notes"}
    assert {k: v for k, v in payload.items() if k in without} == without
    steps = payload["cumulative"]
    for step in steps:
        assert list(step) == list(STEP_KEYS)
        assert step["estimate"] > 0 and step["ci_lower"] < step["estimate"] < step["ci_upper"]
    case = _case("bcg_random_RR")  # the CLI pools the randomised trials (design rct)
    assert_steps_match(steps, case, _fit(case, "REML", "z"), "RR")
    assert steps[-1]["estimate"] == pytest.approx(payload["estimate"], rel=1e-12)
    assert steps[-1]["ci_lower"] == pytest.approx(payload["ci_lower"], rel=1e-12)
    assert steps[-1]["i2"] == pytest.approx(payload["i2"], rel=1e-12)
    assert any("order of year" in n for n in payload["cumulative_notes"])


@pytest.mark.golden
def test_cli_hksj_and_the_one_study_step(capsys: pytest.CaptureFixture[str]) -> None:
    """With --hksj every step of two or more studies uses the t test; the step of one
    study the z test, as metafor's rma (k = 1); a note says so."""
    descriptor = str(FIXTURES / "metadat_bcg" / "datapackage.json")
    args = [descriptor, "--outcome", "tuberculosis", "--measure", "RR", "--method", "DL"]
    payload = pool_json([*args, "--hksj"], capsys)
    case = _case("bcg_random_RR")
    assert_steps_match(payload["cumulative"], case, _fit(case, "DL", "knha"), "RR")
    assert any("k = 1" in n for n in payload["cumulative_notes"])


def test_cli_table(capsys: pytest.CaptureFixture[str]) -> None:
    descriptor = str(FIXTURES / "metadat_bcg" / "datapackage.json")
    args = [descriptor, "--outcome", "tuberculosis", "--measure", "RR", "--method", "REML"]
    code, out, err = run_cli(["pool", *args, "--cumulative"], capsys)
    assert code == 0, err
    assert "Pooled RR (ratio scale)" in out  # the usual output first
    assert "Cumulative meta-analysis: RR, REML, by year" in out
    after = out.split("Cumulative meta-analysis")[1]
    assert after.index("Aronson 1948") < after.index("Ferguson & Simes 1949")
    assert after.index("Coetzee & Berjak 1968") < after.index("Vandiviere et al 1973")
    assert "0.411 [0.134, 1.257]" in after  # Aronson alone: its own RR and CI
    assert "note: studies added in order of year" in after


# ------------------------------------------------------------------ edge cases


def test_one_study_is_one_step(make_package: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """k = 1 (not pooled): one step, the study's own effect and CI."""
    descriptor = make_package()
    args = [str(descriptor), "--outcome", "death", "--measure", "RR", "--method", "REML"]
    payload = pool_json(args, capsys)
    assert payload["pooled"] is False and payload["k"] == 1
    (step,) = payload["cumulative"]
    study = payload["studies"][0]
    assert step["study_id"] == study["study_id"] == "alpha2020"
    assert step["k"] == 1 and step["fitted"] is True and step["year"] == 2020
    assert step["estimate"] == pytest.approx(math.exp(study["yi"]), rel=1e-12)
    assert step["ci_lower"] == pytest.approx(study["ci_lower"], rel=1e-12)
    assert step["ci_upper"] == pytest.approx(study["ci_upper"], rel=1e-12)
    assert step["tau2"] == 0 and step["i2"] == 0


def test_no_data_gives_no_steps() -> None:
    empty = NotPooled(k=0, measure="MD", method="REML", reason="no extractable data yet")
    c = cumulative_of_result(empty, {}, method="REML", hksj=False, level=95.0)
    assert c.steps == [] and "nothing to accumulate" in c.notes[0]


def _plan_both_designs(descriptor: Path) -> Path:
    plan = {
        "title": "synthetic",
        "defaults": {"designs": ["rct", "non_randomised_controlled"]},
        "analyses": [
            {
                "id": "death",
                "title": "Death",
                "outcome": "death",
                "outcome_label": "Death",
                "measure": "RR",
                "lower_is_better": True,
            }
        ],
    }
    path = descriptor.parent / "plan.json"
    path.write_text(json.dumps(plan), encoding="utf-8")
    return path


def test_a_study_without_year_is_added_last_with_a_note(
    make_package: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """alpha2020 (year 2020) loses its year: it comes after beta2021, and a note names
    it; the JSON gives its year as null (through ``--analysis`` of a plan)."""
    descriptor = make_package(edits={"studies": set_cell(2, "year", "")})
    plan = _plan_both_designs(descriptor)
    payload = pool_json([str(descriptor), "--analysis", "death", "--plan", str(plan)], capsys)
    steps = payload["cumulative"]
    assert [(s["study_id"], s["year"]) for s in steps] == [
        ("beta2021", 2021),
        ("alpha2020", None),
    ]
    assert any(
        n.startswith("no year in studies.year, added last") and "Alpha 2020" in n
        for n in payload["cumulative_notes"]
    )
    assert steps[-1]["estimate"] == pytest.approx(payload["estimate"], rel=1e-12)
    code, out, _ = run_cli(
        ["pool", str(descriptor), "--analysis", "death", "--plan", str(plan), "--cumulative"],
        capsys,
    )
    assert code == 0 and "no year in studies.year, added last" in out


def test_year_order_ties_and_missing_years() -> None:
    rows = [("b", 2001), ("B", 2001), ("a", 2001), ("z", None), ("c", 1999), ("A", None)]
    assert [rows[i] for i in year_order(rows)] == [
        ("c", 1999),
        ("a", 2001),
        ("B", 2001),
        ("b", 2001),
        ("A", None),
        ("z", None),
    ]


def test_a_real_step_that_cannot_be_fitted(capsys: pytest.CaptureFixture[str]) -> None:
    """dat.nielweise2007, Mantel-Haenszel RR: Bach 1996 (0/116 vs 3/117), the first trial,
    alone gives no MH RR (metafor: NA). The step says so; the next steps are fitted."""
    descriptor = str(FIXTURES / "metadat_nielweise2007" / "datapackage.json")
    args = [descriptor, "--outcome", "crbsi", "--measure", "RR", "--method", "MH"]
    payload = pool_json(args, capsys)
    first, second = payload["cumulative"][:2]
    assert first["label"] == "Bach 1996" and first["fitted"] is False
    assert first["estimate"] is None and first["ci_lower"] is None
    assert "not estimable" in first["reason"]
    assert second["fitted"] is True and second["k"] == 2
    code, out, _ = run_cli(["pool", *args, "--cumulative"], capsys)
    assert code == 0 and "not fitted:" in out  # the reason follows (wrapped to the table)


def _synthetic_md(yi: list[float], vi: list[float], method: str) -> PoolResult:
    """A pooled MD of synthetic studies s1, s2, ... (years 2001, 2002, ...)."""
    studies = [
        StudyEffect(study_id=f"s{i + 1}", label=f"Synthetic {i + 1}", yi=y, vi=v, weight=0.0)
        for i, (y, v) in enumerate(zip(yi, vi, strict=True))
    ]
    return result_from_fit(rma(yi, vi, method=method), measure="MD", studies=studies)


def test_reml_on_a_large_scale_fits_every_step() -> None:
    """Synthetic data on a large scale (found by search): for the first two studies tau²
    is about 2e11, where metafor's threshold of 1e-5 is below the resolution of tau² and
    its Fisher scoring alternates between neighbouring doubles (metafor 3.8-1 gives NA
    there, see test_cumulative_live_r.py); trialpool stops on a change of rounding size,
    so every step is fitted."""
    yi = [-794608.847186093, -152646.210676965, -422129.9381490975]
    vi = [36920.7524129884, 94987.2905496265, 44532.953124256375]
    result = _synthetic_md(yi, vi, "REML")
    years = {"s1": 2001, "s2": 2002, "s3": 2003}
    c = cumulative_of_result(result, years, method="REML", hksj=False, level=95.0)
    assert [s.fitted for s in c.steps] == [True, True, True]
    assert c.steps[1].k == 2 and c.steps[1].tau2 is not None and c.steps[1].tau2 > 1e10
    assert c.steps[2].estimate == pytest.approx(result.estimate, rel=1e-12)


def test_paule_mandel_without_a_root_at_one_step() -> None:
    """Synthetic: for 0, 0, 100 (MD) metafor's tau2.max is 100 (mad of the estimates is
    0) and Q(100) > k - 1, so Paule-Mandel stops ("Value of 'tau2.max' too low"); with
    more studies it fits again."""
    result = _synthetic_md([0.0, 0.0, 100.0, 50.0, 25.0], [1.0, 2.0, 1.0, 2.0, 3.0], "PM")
    years = {f"s{i}": 2000 + i for i in range(1, 6)}
    c = cumulative_of_result(result, years, method="PM", hksj=False, level=95.0)
    assert [s.fitted for s in c.steps] == [True, True, False, True, True]
    assert "tau2.max" in (c.steps[2].reason or "")


# ------------------------------------------------------------------ imported reviews


@pytest.fixture(scope="module")
def cd000023(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CD000023 (antibiotics for sore throat; a real RevMan 5 file) imported."""
    out = tmp_path_factory.mktemp("cd000023") / "pkg"
    console = Console(file=io.StringIO())
    source = FIXTURES / "revman" / "CD000023StatsDataOnly.rm5"
    assert run_import(source, out=out, force=False, console=console) == 0
    return out / "datapackage.json"


def _analysis(descriptor: Path, analysis_id: str) -> RevManAnalysis:
    plan = load_plan(descriptor.parent / "analysis" / "plan.json")
    found = next(a for a in plan.analyses if a.id == analysis_id)
    assert isinstance(found, RevManAnalysis)
    return found


def test_revman_analysis_steps(cd000023: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Analysis 1.5 (M-H RR, random effects, DL): studies by year, ties by label; the
    last step is RevMan's total; a study row that is not estimable (no events in either
    group) adds no weight, so its step repeats the estimate before it; k counts the
    estimable rows, as RevMan's total does."""
    payload = pool_json([str(cd000023), "--analysis", "1.5"], capsys)
    steps = payload["cumulative"]
    years = [s["year"] for s in steps]
    assert years == sorted(years) and None not in years
    for a, b in itertools.pairwise(steps):
        if a["year"] == b["year"]:
            assert a["label"].casefold() <= b["label"].casefold()
    last = steps[-1]
    for key in ("estimate", "ci_lower", "ci_upper", "tau2", "i2", "q", "q_p", "se"):
        ours = payload["zval"] if key == "zval" else payload[key]
        assert last[key] == pytest.approx(ours, rel=1e-12, abs=1e-15), key
    assert last["k"] == payload["k"]
    idle = [i for i, s in enumerate(steps) if not s["row_estimable"]]
    assert idle, "analysis 1.5 has a study row RevMan does not estimate"
    for i in idle:
        assert steps[i]["estimate"] == pytest.approx(steps[i - 1]["estimate"], rel=1e-12)
        assert steps[i]["k"] == steps[i - 1]["k"]
    assert any("not estimable" in n for n in payload["cumulative_notes"])


def test_revman_cumulative_needs_an_overall_total(cd000023: Path) -> None:
    pkg = load_package(cd000023)
    a = _analysis(cd000023, "1.5").model_copy(update={"totals": "none"})
    result = pool_review_analysis(pkg, a)
    with pytest.raises(AnalysisError, match="Totals option 'overall'"):
        cumulative_of_review(a, result, study_years(pkg))


def test_revman_subgroups_play_no_part(cd000023: Path) -> None:
    """Analysis 1.2 has subgroups: the steps pool every row added so far, and the last
    step is the overall total."""
    pkg = load_package(cd000023)
    a = _analysis(cd000023, "1.2")
    assert a.subgroups
    result = pool_review_analysis(pkg, a)
    c = cumulative_of_review(a, result, study_years(pkg))
    assert c.steps[-1].estimate == pytest.approx(result.estimate, rel=1e-12)
    assert any("subgroups play no part" in n for n in c.notes)
