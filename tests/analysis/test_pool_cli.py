"""``trialpool pool`` end to end on packages built from metadat datasets, against metafor.

The fixture packages (tests/fixtures/metadat_*, built by scripts/make_fixture_packages.py
from the metadat CSV exports) go through the whole path: validation, package reading,
arm pairing, escalc, pooling and the JSON printed by the CLI. The reference values are
metafor's (tests/golden/effects.json, "fixture_pools", from scripts/golden/effects.R).
Each fixture pools its dataset's real outcome (a row of its ``outcomes``); the datasets give
no time point, so every row is ``as_reported`` and no ``--timepoint`` is needed (a study's
one time-point code is used).
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from trialpool import cli

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parents[1] / "fixtures"
GOLDEN = json.loads((Path(__file__).parents[1] / "golden" / "effects.json").read_text("utf-8"))
POOLS = GOLDEN["fixture_pools"]
RATIO = {"RR", "OR"}

#: each fixture's outcome, as metadat documents it (see scripts/make_fixture_packages.py)
OUTCOME = {
    "metadat_bcg": "tuberculosis",
    "metadat_nielweise2007": "crbsi",
    "metadat_normand1999": "length_of_stay",
}


def golden_fit(fixture: str, measure: str, method: str, hksj: bool) -> dict[str, Any]:
    fits = POOLS[fixture]["pools"][measure]
    return next(f for f in fits if f["method"] == method and f["hksj"] == hksj)


def _close(got: float | None, want: float | None, tol: float) -> bool:
    if want is None:
        return got is None
    return got is not None and math.isclose(got, want, rel_tol=tol, abs_tol=tol)


def assert_matches_metafor(out: dict[str, Any], want: dict[str, Any], measure: str) -> None:
    """Compare the printed JSON with metafor (1e-8, or 1e-6 after an iterative tau²)."""
    tol = 1e-6 if want["method"] in ("REML", "ML", "PM") else 1e-8
    tr = math.exp if measure in RATIO else (lambda x: x)
    assert out["k"] == want["k"]
    assert out["measure"] == measure and out["method"] == want["method"]
    pairs = {
        "estimate": tr(want["beta"]),
        "ci_lower": tr(want["ci_lb"]),
        "ci_upper": tr(want["ci_ub"]),
        "se": want["se"],
        "zval": want["zval"],
        "p_value": want["pval"],
        "tau2": want["tau2"],
        "i2": want["I2"],
        "h2": want["H2"],
        "q": want["QE"],
        "q_p": want["QEp"],
    }
    for key, value in pairs.items():
        assert _close(out[key], value, tol), (key, out[key], value)
    if want["method"] in ("FE", "MH"):
        assert out["pi_lower"] is None and out["pi_upper"] is None
    else:
        assert _close(out["pi_lower"], tr(want["pi_lb"]), tol)
        assert _close(out["pi_upper"], tr(want["pi_ub"]), tol)
    studies = out["studies"]
    assert len(studies) == len(want["weights"])
    for s, w, yi, vi in zip(studies, want["weights"], want["yi"], want["vi"], strict=True):
        assert _close(s["weight"], w, tol)
        if s["yi"] is None:  # MH: double-zero tables have no yi (left out of Q, as rma.mh)
            assert want["method"] == "MH"
            assert s["arm_data"]["e1"] == 0 and s["arm_data"]["e2"] == 0
            continue
        assert _close(s["yi"], yi, 1e-8) and _close(s["vi"], vi, 1e-8)


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


CLI_CASES = [
    ("metadat_bcg", "RR", "REML", False),
    ("metadat_bcg", "OR", "DL", True),
    ("metadat_bcg", "RD", "MH", False),
    ("metadat_nielweise2007", "OR", "MH", False),
    ("metadat_nielweise2007", "RR", "REML", False),
    ("metadat_nielweise2007", "RD", "FE", False),
    ("metadat_normand1999", "MD", "REML", False),
    ("metadat_normand1999", "SMD", "PM", True),
    ("metadat_normand1999", "SMD", "ML", False),
]


@pytest.mark.golden
@pytest.mark.parametrize(("fixture", "measure", "method", "hksj"), CLI_CASES)
def test_pool_json_matches_metafor(
    fixture: str, measure: str, method: str, hksj: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "pool",
        str(FIXTURES / fixture / "datapackage.json"),
        "--outcome",
        OUTCOME[fixture],
        "--measure",
        measure,
        "--method",
        method,
        "--json",
    ]
    if hksj:
        args.append("--hksj")
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1  # exactly one JSON object
    payload = json.loads(lines[0])
    assert payload["pooled"] is True and payload["hksj"] is hksj
    assert_matches_metafor(payload, golden_fit(fixture, measure, method, hksj), measure)


@pytest.mark.golden
def test_bcg_default_pool_uses_the_randomised_trials_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """dat.bcg's alternate/systematic allocation is non-randomised in the fixture, so the
    default RCT-only pool is metafor's on the trials with alloc == 'random'."""
    code, out, _ = run_cli(
        [
            "pool",
            str(FIXTURES / "metadat_bcg" / "datapackage.json"),
            "--outcome",
            "tuberculosis",
            "--measure",
            "RR",
            "--method",
            "REML",
            "--json",
        ],
        capsys,
    )
    payload = json.loads(out)
    assert code == 0 and payload["k"] == len(POOLS["metadat_bcg"]["trials"]) == 7
    assert any("left out by design" in n for n in payload["notes"])


@pytest.mark.golden
@pytest.mark.slow
def test_pool_console_script_subprocess() -> None:
    """The installed entry point, as a user runs it."""
    exe = Path(sys.executable).with_name("trialpool")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "trialpool.cli"]
    proc = subprocess.run(
        [
            *cmd,
            "pool",
            str(FIXTURES / "metadat_nielweise2007" / "datapackage.json"),
            "--outcome",
            "crbsi",
            "--measure",
            "OR",
            "--method",
            "REML",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert_matches_metafor(payload, golden_fit("metadat_nielweise2007", "OR", "REML", False), "OR")


def test_pool_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        [
            "pool",
            str(FIXTURES / "metadat_normand1999" / "datapackage.json"),
            "--outcome",
            "length_of_stay",
            "--measure",
            "MD",
            "--method",
            "DL",
        ],
        capsys,
    )
    assert code == 0
    assert "Pooled MD" in out and "Heterogeneity: tau²" in out and "Edinburgh" in out


def test_pool_impossible_requests_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    pkg = str(FIXTURES / "metadat_normand1999" / "datapackage.json")
    code, _, err = run_cli(
        ["pool", pkg, "--outcome", "nonsense", "--measure", "MD", "--method", "REML"], capsys
    )
    assert code == 1
    # the valid codes listed are the package's own outcomes (its outcomes table)
    assert "unknown outcome 'nonsense'" in err and "continuous length_of_stay" in err
    assert "dichotomous (none)" in err
    assert len(err.strip().splitlines()) == 1
    los = "length_of_stay"
    code, _, err = run_cli(
        ["pool", pkg, "--outcome", los, "--measure", "RR", "--method", "REML"], capsys
    )
    assert code == 1 and "continuous" in err
    code, _, err = run_cli(
        ["pool", pkg, "--outcome", los, "--measure", "MD", "--method", "MH"], capsys
    )
    assert code == 1 and "Mantel-Haenszel" in err
    code, _, err = run_cli(
        ["pool", pkg, "--outcome", los, "--measure", "XX", "--method", "REML"], capsys
    )
    assert code == 2  # usage error (typer)


def test_pool_refuses_an_invalid_package(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pkg = tmp_path / "pkg"
    shutil.copytree(FIXTURES / "metadat_nielweise2007", pkg)
    path = pkg / "data" / "dichotomous_outcomes.csv"
    lines = path.read_text("utf-8").splitlines(keepends=True)
    lines[1] = lines[1].replace(",0,116,", ",500,116,", 1)  # events > total
    path.write_text("".join(lines), "utf-8")
    args = [
        "pool",
        str(pkg / "datapackage.json"),
        "--outcome",
        "crbsi",
        "--measure",
        "OR",
        "--method",
        "REML",
    ]
    code, out, _ = run_cli(args, capsys)
    assert code == 1
    assert "INVALID" in out and "dichotomous_outcomes" in out
    code, out, _ = run_cli([*args, "--json"], capsys)
    assert code == 1 and json.loads(out)["valid"] is False


def test_fixture_schemas_are_the_repository_schemas() -> None:
    """Fixtures carry copies of schemas/ (a package may not point outside its folder);
    the copies must stay byte-identical to the single source."""
    fixtures = sorted(FIXTURES.glob("metadat_*"))
    assert {f.name for f in fixtures} >= set(OUTCOME)
    for fixture in fixtures:
        copies = sorted((fixture / "schemas").glob("*.json"))
        assert copies
        for copy in copies:
            assert copy.read_bytes() == (ROOT / "schemas" / copy.name).read_bytes(), copy


def _csv(fixture: str, name: str) -> list[dict[str, str]]:
    path = FIXTURES / fixture / "data" / f"{name}.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


#: (outcome_id, label, data_type, unit, direction, comparison label) of each fixture
REAL = {
    "metadat_bcg": (
        "tuberculosis",
        "Tuberculosis cases",
        "dichotomous",
        "",
        "lower_is_better",
        "BCG vaccine versus no vaccine",
    ),
    "metadat_nielweise2007": (
        "crbsi",
        "Catheter-related bloodstream infection (CRBSI)",
        "dichotomous",
        "",
        "lower_is_better",
        "Anti-infective-treated versus standard central venous catheter",
    ),
    "metadat_normand1999": (
        "length_of_stay",
        "Length of hospital stay",
        "continuous",
        "days",
        "lower_is_better",
        "Specialized care versus routine care",
    ),
}


@pytest.mark.parametrize("fixture", sorted(REAL))
def test_fixtures_hold_the_real_outcome_and_one_primary_comparison_per_study(
    fixture: str,
) -> None:
    """The dataset's own outcome (metadat's help page, cited), core resources only, no
    extension, rows as_reported, and one primary comparison per study."""
    descriptor = json.loads((FIXTURES / fixture / "datapackage.json").read_text("utf-8"))
    core = json.loads((ROOT / "schemas" / "core.json").read_text("utf-8"))
    assert [r["name"] for r in descriptor["resources"]] == [r["name"] for r in core["resources"]]
    assert "extensions" not in descriptor
    assert "stand-in" not in json.dumps(descriptor).lower()
    outcome_id, label, data_type, unit, direction, comparison = REAL[fixture]
    (outcome,) = _csv(fixture, "outcomes")
    assert (outcome["outcome_id"], outcome["label"], outcome["data_type"]) == (
        outcome_id,
        label,
        data_type,
    )
    assert (outcome["unit"], outcome["direction"]) == (unit, direction)
    assert outcome["locator"].startswith(f"metadat help page of dat.{fixture[8:]}")
    (source,) = _csv(fixture, "sources")
    assert outcome["source_id"] == source["source_id"] and "metadat" in source["citation"]
    table = f"{data_type}_outcomes"
    rows = _csv(fixture, table)
    assert rows and {r["outcome"] for r in rows} == {outcome_id}
    assert {(r["timepoint"], r["timepoint_weeks"]) for r in rows} == {("as_reported", "")}
    arms = _csv(fixture, "arms")
    assert not {"role", "primary_comparison", "cell_source"} & set(arms[0])
    studies = [s["study_id"] for s in _csv(fixture, "studies")]
    comparisons = _csv(fixture, "comparisons")
    assert [c["study_id"] for c in comparisons] == studies
    assert {(c["label"], c["primary"]) for c in comparisons} == {(comparison, "true")}
    controls = {(c["study_id"], c["control_arm_id"]) for c in comparisons}
    for arm in arms:
        is_control = (arm["study_id"], arm["arm_id"]) in controls
        assert (arm["comparator_type"] != "not_applicable") is is_control


@pytest.mark.slow
def test_fixtures_are_up_to_date() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_fixture_packages.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


BUNDLED = ROOT / "datapackage.json"


def test_bundled_package_pools_or_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    """On the bundled package, `pool` gives a result or a clear not-poolable sentence."""
    code, out, err = run_cli(
        ["pool", str(BUNDLED), "--outcome", "death", "--measure", "RR", "--method", "REML"],
        capsys,
    )
    assert code == 0, err
    assert out.startswith(("not poolable: k = ", "death"))
