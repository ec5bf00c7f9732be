"""analysis.py on the metadat fixture packages (metafor golden values) and on variants of
them made in a temporary folder (k = 0, k = 1, medians, risk of bias, time points)."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from trialpool.analysis import pooled as analysis
from trialpool.errors import AnalysisError
from trialpool.package.loader import Package, load_package
from trialpool.stats import effects, pooling
from trialpool.stats.results import NotPooled, PoolResult

FIXTURES = Path(__file__).parents[1] / "fixtures"
ROOT = Path(__file__).resolve().parents[2]
GOLDEN = json.loads((Path(__file__).parents[1] / "golden" / "effects.json").read_text("utf-8"))
POOLS = GOLDEN["fixture_pools"]
RATIO = {"RR", "OR"}
#: each fixture's outcome, as metadat documents it (see scripts/make_fixture_packages.py)
OUTCOME = {
    "metadat_bcg": "tuberculosis",
    "metadat_nielweise2007": "crbsi",
    "metadat_normand1999": "length_of_stay",
}
TB, CRBSI, LOS = OUTCOME.values()


def pkg_of(name: str) -> Package:
    return load_package(FIXTURES / name / "datapackage.json")


def _close(a: float | None, b: float | None, tol: float) -> bool:
    if b is None:
        return a is None
    return a is not None and math.isclose(a, b, rel_tol=tol, abs_tol=tol)


def check(res: PoolResult, want: dict[str, Any], measure: str) -> None:
    tol = 1e-6 if want["method"] in ("REML", "ML", "PM") else 1e-8
    tr = math.exp if measure in RATIO else (lambda x: x)
    assert res.k == want["k"]
    assert _close(res.estimate, tr(want["beta"]), tol)
    assert _close(res.ci_lower, tr(want["ci_lb"]), tol)
    assert _close(res.ci_upper, tr(want["ci_ub"]), tol)
    assert _close(res.se, want["se"], tol)
    assert _close(res.p_value, want["pval"], tol)
    assert _close(res.tau2, want["tau2"], tol)
    assert _close(res.i2, want["I2"], tol)
    assert _close(res.q, want["QE"], tol)
    np.testing.assert_allclose([s.weight for s in res.studies], want["weights"], atol=tol)


def _matrix() -> list[tuple[str, str, str, bool]]:
    out = []
    for fixture in ("metadat_bcg", "metadat_nielweise2007", "metadat_normand1999"):
        for measure, fits in POOLS[fixture]["pools"].items():
            for fit in fits:
                out.append((fixture, measure, fit["method"], fit["hksj"]))
    return out


@pytest.mark.golden
@pytest.mark.parametrize(("fixture", "measure", "method", "hksj"), _matrix())
def test_pool_outcome_matches_metafor(fixture: str, measure: str, method: str, hksj: bool) -> None:
    res = analysis.pool_outcome(
        pkg_of(fixture), OUTCOME[fixture], measure=measure, method=method, hksj=hksj
    )
    assert isinstance(res, PoolResult)
    want = next(
        f for f in POOLS[fixture]["pools"][measure] if f["method"] == method and f["hksj"] == hksj
    )
    check(res, want, measure)


@pytest.mark.golden
@pytest.mark.parametrize("measure", ["RR", "OR", "RD"])
def test_all_designs_pool_every_bcg_trial(measure: str) -> None:
    res = analysis.pool_outcome(
        pkg_of("metadat_bcg"), TB, measure=measure, method="REML", designs=None
    )
    want = next(f for f in POOLS["metadat_bcg_all"]["pools"][measure] if f["method"] == "REML")
    assert isinstance(res, PoolResult)
    check(res, want, measure)
    rule = analysis.sensitivity(
        pkg_of("metadat_bcg"), TB, rule="all_designs", measure=measure, method="REML"
    )
    assert isinstance(rule, PoolResult) and rule.k == 13 and "sensitivity" in rule.notes[0]


def test_arm_pairs_columns_and_groups() -> None:
    pairs = analysis.arm_pairs(pkg_of("metadat_bcg"), TB)
    assert len(pairs) == 7 and set(pairs["design"]) == {"rct"}
    first = pairs.iloc[0]
    assert (first["arm1_id"], first["arm2_id"]) == ("bcg", "control")
    assert (first["e1"], first["t1"], first["e2"], first["t2"]) == (4, 123, 11, 139)
    assert pd.isna(first["timepoint_weeks"])  # as_reported: the dataset gives no weeks
    assert pairs.attrs["missing"] == []


# ------------------------------------------------------------------ variants


def copy_fixture(tmp_path: Path, name: str) -> Path:
    dest = tmp_path / name
    shutil.copytree(FIXTURES / name, dest)
    return dest


def rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def write_rows(path: Path, fields: list[str], data: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(data)


def test_k0_and_k1_are_not_pooled(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path, "metadat_normand1999")
    outcomes_path = root / "data" / "outcomes.csv"
    ofields, odata = rows(outcomes_path)
    extra = dict(odata[0], outcome_id="unreported", label="An outcome no study reports")
    write_rows(outcomes_path, ofields, [*odata, extra])
    path = root / "data" / "continuous_outcomes.csv"
    fields, data = rows(path)
    # a valid outcome code without any rows is "no extractable data yet"
    res = analysis.pool_outcome(
        load_package(root / "datapackage.json"), "unreported", measure="MD", method="REML"
    )
    assert isinstance(res, NotPooled) and res.reason == analysis.NO_DATA
    assert res.k == 0 and len(res.missing) == 9
    write_rows(path, fields, data[:2])  # one study left
    pkg = load_package(root / "datapackage.json")
    res = analysis.pool_outcome(pkg, LOS, measure="MD", method="REML")
    assert isinstance(res, NotPooled) and res.k == 1
    assert res.reason == "k = 1: not pooled (only Edinburgh)"
    assert res.studies[0].yi == pytest.approx(55 - 75)
    assert len(res.missing) == 8
    write_rows(path, fields, [])
    pkg = load_package(root / "datapackage.json")
    res = analysis.pool_outcome(pkg, LOS, measure="SMD", method="DL")
    assert isinstance(res, NotPooled) and res.k == 0
    assert res.reason == analysis.NO_DATA and len(res.missing) == 9


def test_requests_that_cannot_work() -> None:
    pkg = pkg_of("metadat_normand1999")
    # the valid codes listed are the package's own (its outcomes table)
    with pytest.raises(
        AnalysisError,
        match=r"unknown outcome 'x'; valid codes: continuous length_of_stay; dichotomous \(none\)",
    ):
        analysis.pool_outcome(pkg, "x", measure="MD", method="REML")
    with pytest.raises(AnalysisError, match="continuous"):
        analysis.pool_outcome(pkg, LOS, measure="OR", method="REML")
    with pytest.raises(AnalysisError, match="Mantel-Haenszel"):
        analysis.pool_outcome(pkg, LOS, measure="MD", method="MH")
    with pytest.raises(AnalysisError, match="dichotomous"):
        analysis.pool_outcome(pkg_of("metadat_bcg"), TB, measure="MD", method="DL")
    with pytest.raises(AnalysisError, match="hksj"):
        analysis.pool_outcome(pkg_of("metadat_bcg"), TB, measure="RR", method="MH", hksj=True)


def test_medians_are_converted_and_flagged_derived(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path, "metadat_normand1999")
    path = root / "data" / "continuous_outcomes.csv"
    fields, data = rows(path)
    # replace Edinburgh's specialist arm by a median/IQR row (inputs are arbitrary)
    data[0].update(
        statistic="median_iqr",
        mean="",
        sd="",
        median="40",
        q1="25",
        q3="70",
        verification="primary",
    )
    write_rows(path, fields, data)
    pkg = load_package(root / "datapackage.json")
    pairs = analysis.arm_pairs(pkg, LOS)
    row = pairs.iloc[0]
    expected = effects.to_mean_sd("median_iqr", 155, median=40, q1=25, q3=70)
    assert row["m1"] == pytest.approx(expected.mean) and row["sd1"] == pytest.approx(expected.sd)
    assert bool(row["converted"]) and bool(row["derived"]) and "Luo 2018" in row["derivation"]
    res = analysis.pool_outcome(pkg, LOS, measure="MD", method="REML")
    assert isinstance(res, PoolResult) and res.studies[0].derived
    assert any("derived values used" in n for n in res.notes)
    strict = analysis.pool_outcome(pkg, LOS, measure="MD", method="REML", include_derived=False)
    assert isinstance(strict, PoolResult) and strict.k == 8
    no_conv = analysis.arm_pairs(pkg, LOS, convert_medians=False)
    assert len(no_conv) == 8
    rule = analysis.sensitivity(pkg, LOS, rule="no_derived", measure="MD", method="REML")
    assert isinstance(rule, PoolResult) and rule.k == 8


def test_high_risk_of_bias_exclusion(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path, "metadat_nielweise2007")
    path = root / "data" / "bias_judgements.csv"
    fields, _ = rows(path)
    judgement = {
        "study_id": "pierce2000",
        "tool": "rob1",
        "domain": "allocation_concealment",
        "result_scope": "all",
        "judgement": "high",
        "support": "test row",
        "assessor": "tests",
        "source_id": "nielweise2007",
        "notes": "",
    }
    write_rows(path, fields, [judgement])
    pkg = load_package(root / "datapackage.json")
    res = analysis.sensitivity(pkg, CRBSI, rule="no_high_rob", measure="OR", method="REML")
    assert isinstance(res, PoolResult) and res.k == 17
    assert "pierce2000" not in {s.study_id for s in res.studies}
    with pytest.raises(AnalysisError, match="unknown rule"):
        analysis.sensitivity(pkg, CRBSI, rule="nope", measure="OR", method="REML")


def test_subgroups_by_design_and_by_arm_column() -> None:
    pkg = pkg_of("metadat_bcg")
    sub = analysis.pool_subgroups(pkg, TB, by="design", measure="RR", method="REML")
    assert set(sub.groups) == {"rct", "non_randomised_controlled"}
    rct = sub.groups["rct"]
    want = next(f for f in POOLS["metadat_bcg"]["pools"]["RR"] if f["method"] == "REML")
    assert isinstance(rct, PoolResult)
    check(rct, want, "RR")
    other = sub.groups["non_randomised_controlled"]
    assert isinstance(other, PoolResult)
    q, df, p = pooling.subgroup_test(
        [math.log(rct.estimate), math.log(other.estimate)], [rct.se**2, other.se**2]
    )
    assert (sub.q_between, sub.q_between_df, sub.q_between_p) == (q, df, p)
    # a column of arms: the experimental arm's value (one group here, so no test)
    by_arm = analysis.pool_subgroups(pkg, TB, by="description", measure="RR", method="REML")
    assert list(by_arm.groups) == ["BCG vaccination."] and by_arm.q_between is None
    # cell_source is a field of the msc extension, which this package does not declare
    with pytest.raises(AnalysisError, match="cannot form subgroups by 'cell_source'"):
        analysis.pool_subgroups(pkg, TB, by="cell_source", measure="RR", method="REML")
    with pytest.raises(AnalysisError, match="cannot form subgroups"):
        analysis.pool_subgroups(pkg, TB, by="colour", measure="RR", method="REML")


def test_time_subgroups_and_latest_timepoint(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path, "metadat_nielweise2007")
    path = root / "data" / "dichotomous_outcomes.csv"
    fields, data = rows(path)
    # the fixture's rows are as_reported; here every study at 1 week, three again at 4
    first = [dict(r, timepoint="week_1", timepoint_weeks="1") for r in data]
    later = [dict(r, timepoint="week_4", timepoint_weeks="4") for r in data[:6]]
    write_rows(path, fields, first + later)
    pkg = load_package(root / "datapackage.json")
    sub = analysis.pool_subgroups(pkg, CRBSI, by="timepoint", measure="OR", method="DL")
    assert list(sub.groups) == ["1 weeks", "4 weeks"]
    assert sub.groups["1 weeks"].k == 18 and sub.groups["4 weeks"].k == 3
    assert sub.q_between is None  # the same trials in both groups: no independence
    res = analysis.pool_outcome(pkg, CRBSI, measure="OR", method="DL")
    assert isinstance(res, PoolResult) and res.k == 18
    assert any("latest follow-up" in n for n in res.notes)
    at1 = analysis.pool_outcome(pkg, CRBSI, 1, measure="OR", method="DL")
    assert isinstance(at1, PoolResult) and at1.k == 18
    assert not any("latest follow-up" in n for n in at1.notes)


@pytest.mark.golden
def test_leave_one_out_refits_without_each_study() -> None:
    pkg = pkg_of("metadat_normand1999")
    loo = analysis.leave_one_out(pkg, LOS, measure="SMD", method="REML")
    full = next(f for f in POOLS["metadat_normand1999"]["pools"]["SMD"] if f["method"] == "REML")
    assert len(loo.omitted) == len(loo.results) == 9
    yi, vi = np.array(full["yi"]), np.array(full["vi"])
    for i, res in enumerate(loo.results):
        assert isinstance(res, PoolResult) and res.k == 8
        keep = np.arange(9) != i
        ref = pooling.rma(yi[keep], vi[keep], method="REML", tau2_ci=False)
        assert res.estimate == pytest.approx(ref.beta, abs=1e-10)
        assert loo.omitted[i] not in {s.study_id for s in res.studies}


def test_mixed_units_refuse_md(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path, "metadat_normand1999")
    path = root / "data" / "continuous_outcomes.csv"
    fields, data = rows(path)
    for r in data[:2]:
        r["unit"] = "hours"
    write_rows(path, fields, data)
    pkg = load_package(root / "datapackage.json")
    with pytest.raises(AnalysisError, match="one unit"):
        analysis.pool_outcome(pkg, LOS, measure="MD", method="REML")
    res = analysis.pool_outcome(pkg, LOS, measure="SMD", method="REML")
    assert isinstance(res, PoolResult) and res.k == 9


def test_json_has_no_nan_and_contract_keys() -> None:
    res = analysis.pool_outcome(pkg_of("metadat_nielweise2007"), CRBSI, measure="OR", method="MH")
    payload = analysis.result_json(res, outcome=CRBSI, timepoint=None)
    text = json.dumps(payload, allow_nan=False)
    contract = {"k", "measure", "method", "estimate", "ci_lower", "ci_upper", "se", "p_value"}
    contract |= {"tau2", "i2", "q", "q_df", "q_p", "pi_lower", "pi_upper", "studies"}
    assert contract <= set(payload)
    assert {"study_id", "yi", "vi", "weight"} <= set(payload["studies"][0])
    assert "NaN" not in text


# ------------------------------------------------------------------ bundled package


def _bundled() -> Package:
    return load_package(ROOT / "datapackage.json")


def test_every_bundled_outcome_pools_or_says_why() -> None:
    pkg = _bundled()
    for outcome, kind in analysis.outcomes_of(pkg).items():
        measure = "MD" if kind == "continuous" else "RR"
        try:
            res = analysis.pool_outcome(pkg, outcome, measure=measure, method="REML")
        except AnalysisError as exc:  # e.g. units that differ across studies (MD)
            assert "unit" in str(exc)
            res = analysis.pool_outcome(pkg, outcome, measure="SMD", method="REML")
        if isinstance(res, NotPooled):
            assert res.reason.startswith(("k = 1: not pooled", analysis.NO_DATA))
        else:
            assert res.k >= 2


def test_pairs_frame_is_empty_but_typed_without_data() -> None:
    pairs = analysis.arm_pairs(_bundled(), "che")
    assert isinstance(pairs, pd.DataFrame)
    assert pairs.attrs["kind"] == "continuous"


# ------------------------------------------------------------------ comparators


def _with_comparator(tmp_path: Path, study_id: str, comparator: str) -> Package:
    """The nielweise2007 fixture with one study's control arm given ``comparator``."""
    root = copy_fixture(tmp_path, "metadat_nielweise2007")
    _, comparisons = rows(root / "data" / "comparisons.csv")
    controls = {(c["study_id"], c["control_arm_id"]) for c in comparisons}
    path = root / "data" / "arms.csv"
    fields, data = rows(path)
    for r in data:
        if r["study_id"] == study_id and (r["study_id"], r["arm_id"]) in controls:
            r["comparator_type"] = comparator
    write_rows(path, fields, data)
    return load_package(root / "datapackage.json")


def test_default_comparators() -> None:
    assert analysis.DEFAULT_COMPARATORS == ("untreated", "standard_care", "placebo", "unclear")
    enum = pkg_of("metadat_bcg").resources["arms"].field("comparator_type")["constraints"]
    assert set(analysis.DEFAULT_COMPARATORS) < set(enum["enum"])
    assert set(analysis.COMPARATOR_TEXT) == set(enum["enum"])


@pytest.mark.golden
def test_shorter_exposure_control_is_left_out_with_a_note(tmp_path: Path) -> None:
    pkg = _with_comparator(tmp_path, "bach1996", "shorter_exposure")
    note = "left out: control is shorter exposure to MSC (Bach 1996)"
    pairs = analysis.arm_pairs(pkg, CRBSI)
    assert "bach1996" not in set(pairs["study_id"]) and len(pairs) == 17
    assert note in pairs.attrs["notes"]
    assert not any("Bach 1996" in m for m in pairs.attrs["missing"])  # left out, not missing
    res = analysis.pool_outcome(pkg, CRBSI, measure="OR", method="REML")
    assert isinstance(res, PoolResult) and res.k == 17
    assert note in res.notes and "bach1996" not in {s.study_id for s in res.studies}
    assert analysis.comparator_left_out(pkg) == {"bach1996": "shorter_exposure"}
    # comparators=None pools every control: the fixture's golden result again
    every = analysis.pool_outcome(pkg, CRBSI, measure="OR", method="REML", comparators=None)
    want = next(f for f in POOLS["metadat_nielweise2007"]["pools"]["OR"] if f["method"] == "REML")
    assert isinstance(every, PoolResult)
    check(every, want, "OR")
    assert not any(n.startswith("left out: control") for n in every.notes)
    assert analysis.comparator_left_out(pkg, None) == {}
    # the keyword reaches the other entry points
    loo = analysis.leave_one_out(pkg, CRBSI, measure="OR", method="DL")
    assert len(loo.omitted) == 17
    loo_all = analysis.leave_one_out(pkg, CRBSI, measure="OR", method="DL", comparators=None)
    assert len(loo_all.omitted) == 18
    sub = analysis.pool_subgroups(
        pkg, CRBSI, by="design", measure="OR", method="DL", comparators=None
    )
    assert sub.groups["rct"].k == 18
    rule = analysis.sensitivity(pkg, CRBSI, rule="all_designs", measure="OR", method="DL")
    assert rule.k == 17


def test_active_control_left_out_and_chosen_comparators(tmp_path: Path) -> None:
    pkg = _with_comparator(tmp_path, "pierce2000", "active")
    res = analysis.pool_outcome(pkg, CRBSI, measure="OR", method="DL")
    assert isinstance(res, PoolResult) and res.k == 17
    assert "left out: control is an active treatment (Pierce 2000)" in res.notes
    # an explicit list: only the active-control study is compared
    only = analysis.pool_outcome(pkg, CRBSI, measure="OR", method="DL", comparators=["active"])
    assert isinstance(only, NotPooled) and only.k == 1
    assert only.studies[0].study_id == "pierce2000"


def test_controls_of_unclear_or_missing_type_are_pooled(tmp_path: Path) -> None:
    pkg = _with_comparator(tmp_path, "pierce2000", "unclear")
    res = analysis.pool_outcome(pkg, CRBSI, measure="OR", method="DL")
    assert isinstance(res, PoolResult) and res.k == 18
    # a package whose arms have no comparator_type at all (older schema) pools as before
    root = tmp_path / "metadat_nielweise2007"
    schema_path = root / "schemas" / "arms.schema.json"
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    schema["fields"] = [f for f in schema["fields"] if f["name"] != "comparator_type"]
    schema_path.write_text(json.dumps(schema), encoding="utf-8")
    path = root / "data" / "arms.csv"
    fields, data = rows(path)
    for r in data:
        del r["comparator_type"]
    write_rows(path, [f for f in fields if f != "comparator_type"], data)
    bare = load_package(root / "datapackage.json")
    assert "comparator_type" not in bare.resources["arms"].field_names
    res = analysis.pool_outcome(bare, CRBSI, measure="OR", method="DL")
    assert isinstance(res, PoolResult) and res.k == 18
    assert analysis.comparator_left_out(bare) == {}


def test_bundled_controls_and_their_comparators() -> None:
    pkg = _bundled()
    arms = pkg.table("arms")
    comparisons = pkg.table("comparisons")
    control_keys = set(zip(comparisons["study_id"], comparisons["control_arm_id"], strict=True))
    is_control = [k in control_keys for k in zip(arms["study_id"], arms["arm_id"], strict=True)]
    controls = arms[is_control]
    assert len(controls) == len(control_keys) > 0
    assert controls["comparator_type"].notna().all()
    assert analysis.comparator_left_out(pkg) == {"jia2020": "shorter_exposure"}
    assert analysis.comparator_left_out(pkg, None) == {}


def test_subgroups_by_an_extension_arm_field() -> None:
    """cell_source lives in msc_arms (the msc extension): subgroups can still be formed by it,
    from the experimental arm of each study's comparison."""
    pkg = load_package(ROOT / "datapackage.json")
    result = analysis.pool_subgroups(pkg, "death", by="cell_source", measure="RR", method="REML")
    assert result.variable == "cell_source"
    assert list(result.groups) == ["bone_marrow"]  # Lin 2017, the only study with deaths
    assert [s.study_id for s in result.groups["bone_marrow"].studies] == ["lin2017"]
