"""``trialpool import`` end to end: real Cochrane reviews become conforming packages whose
analyses, pooled from the package's rows with the review's settings, reproduce every
number RevMan stored (overall, per subgroup, per study, the test for subgroup
differences).

Sources: the trimmed real files in ``tests/fixtures/revman`` (see its README for their
citations). Tolerance: 1e-6 relative for full doubles (RevMan 5 files); half a unit of the
last stored decimal where the source rounded (data package: 6, CSV export: 8). The only
differences allowed are the named ones of :mod:`trialpool.analysis.reproduce`.
"""

from __future__ import annotations

import io
import json
import subprocess
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console

from trialpool import cli
from trialpool.analysis.command import run_pool
from trialpool.analysis.plan import RevManAnalysis, load_plan
from trialpool.analysis.reproduce import reproduction_checks
from trialpool.analysis.revman import PackageIndex, pool_review_analysis
from trialpool.package.loader import load_package
from trialpool.validate import validate_package

REVMAN = Path(__file__).resolve().parents[1] / "fixtures" / "revman"
PACKAGE = "cochrane-data-package/CD004366-SUP-06-dataPackage"
SOURCES = {
    "CD000023": "CD000023StatsDataOnly.rm5",
    "CD007868": "CD007868StatsDataOnly.rm5",
    "CD008625": "CD008625StatsDataOnly.rm5",
    "Fleiss1993": "Fleiss1993_CR.csv",
    "CD004366": PACKAGE,
    "CD007798": "cochrane-data-package/CD007798-SUP-07-dataPackage",
}
#: analyses per source, counted from the files (DICH/CONT/IV_OUTCOME elements; CSV header
#: rows with a data type; rows of the data package's settings file)
EXPECTED_ANALYSES = {
    "CD000023": 21,
    "CD007868": 41,
    "CD008625": 74,
    "Fleiss1993": 2,
    "CD004366": 27,
    "CD007798": 44,
}
KNOWN = (
    "RevMan's P and I² from a Chi² of rounding noise",
    "P of a Chi² on 0 df",
    "t statistic of a single study with HKSJ",
)


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("imported")
    out: dict[str, Path] = {}
    for name, rel in SOURCES.items():
        assert cli.main(["import", str(REVMAN / rel), "--out", str(root / name)]) == 0
        out[name] = root / name / "datapackage.json"
    return out


def _analyses() -> list[tuple[str, str]]:
    """(source, analysis id) of every analysis, read from the plans the import writes."""
    out: list[tuple[str, str]] = []
    for name, n in EXPECTED_ANALYSES.items():
        out += [(name, str(i)) for i in range(n)]
    return out


def test_every_analysis_is_in_the_plan(imported: dict[str, Path]) -> None:
    for name, descriptor in imported.items():
        plan = load_plan(descriptor.parent / "analysis" / "plan.json")
        assert len(plan.analyses) == EXPECTED_ANALYSES[name], name
        assert all(isinstance(a, RevManAnalysis) for a in plan.analyses)


def test_imported_packages_validate_with_trialpool(imported: dict[str, Path]) -> None:
    for descriptor in imported.values():
        report = validate_package(descriptor)
        assert report.valid, [i.line() for i in report.issues[:5]]


@pytest.mark.frictionless
def test_imported_packages_validate_with_frictionless(imported: dict[str, Path]) -> None:
    exe = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "frictionless"
    command = [str(exe)] if exe.exists() else ["frictionless"]
    for descriptor in imported.values():
        done = subprocess.run(
            [*command, "validate", str(descriptor)], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout[-2000:]


@pytest.mark.parametrize(("source", "index"), _analyses(), ids=lambda v: str(v))
def test_reproduces_revman(imported: dict[str, Path], source: str, index: str) -> None:
    descriptor = imported[source]
    pkg = load_package(descriptor)
    plan = load_plan(descriptor.parent / "analysis" / "plan.json")
    analysis = plan.analyses[int(index)]
    assert isinstance(analysis, RevManAnalysis)
    result = pool_review_analysis(pkg, analysis)
    checks = reproduction_checks(pkg, analysis, result)
    assert checks, f"{source} {analysis.id}: no RevMan number to compare"
    differs = [c for c in checks if c.status == "differs"]
    assert not differs, [
        (c.where, c.quantity, c.published, c.ours, c.tolerance) for c in differs[:10]
    ]
    for c in checks:
        if c.status == "known":
            assert c.known is not None and c.known.startswith(KNOWN), c.known
    # every study row of the analysis is accounted for, in RevMan's order
    assert [s.comparison_id for s in result.studies] == analysis.comparison_ids


def test_known_differences_are_few_and_named(imported: dict[str, Path]) -> None:
    counts: Counter[str] = Counter()
    total = 0
    for descriptor in imported.values():
        pkg = load_package(descriptor)
        plan = load_plan(descriptor.parent / "analysis" / "plan.json")
        index = PackageIndex.of(pkg)
        for a in plan.analyses:
            assert isinstance(a, RevManAnalysis)
            for c in reproduction_checks(pkg, a, pool_review_analysis(pkg, a, index), index):
                total += 1
                counts[c.status] += 1
                if c.status == "known":
                    assert c.quantity in ("q_p", "i2", "z")
    assert counts["differs"] == 0
    assert total > 10_000
    assert counts["known"] < 0.02 * total


def test_pool_json_keeps_todays_keys_and_adds_subgroups(imported: dict[str, Path]) -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=200)
    code = run_pool(
        imported["CD000023"],
        outcome=None,
        timepoint=None,
        measure=None,
        method=None,
        hksj=False,
        as_json=True,
        console=console,
        analysis="1.6",
    )
    assert code == 0
    payload = json.loads(buffer.getvalue())
    for key in (
        "k",
        "measure",
        "method",
        "estimate",
        "ci_lower",
        "ci_upper",
        "se",
        "p_value",
        "tau2",
        "i2",
        "q",
        "q_df",
        "q_p",
        "pi_lower",
        "pi_upper",
        "studies",
        "model",
        "subgroups",
        "subgroup_test",
    ):
        assert key in payload, key
    assert payload["measure"] == "RR" and payload["model"] == "M-H, Random (DL, Wald)"
    for study in payload["studies"]:
        assert {"study_id", "yi", "vi", "weight"} <= set(study)
    assert payload["subgroups"] and {
        "id",
        "label",
        "k",
        "estimate",
        "ci_lower",
        "ci_upper",
        "tau2",
        "i2",
        "q",
    } <= set(payload["subgroups"][0])
    assert all(s["id"].startswith("1.6.") for s in payload["subgroups"])
    assert set(payload["subgroup_test"]) >= {"q", "df", "p"}
    # ratio scale for the estimate, log scale for se and yi (as metafor and RevMan print)
    assert payload["estimate"] > 0 and payload["ci_lower"] < payload["estimate"]
    weights = sum(s["weight"] for s in payload["studies"])
    assert weights == pytest.approx(100.0)


def test_pool_table_names_the_model(imported: dict[str, Path]) -> None:
    buffer = io.StringIO()
    code = run_pool(
        imported["Fleiss1993"],
        outcome=None,
        timepoint=None,
        measure=None,
        method=None,
        hksj=False,
        as_json=False,
        console=Console(file=buffer, width=200),
        analysis="1.1",
    )
    assert code == 0
    text = buffer.getvalue()
    assert "M-H, Fixed" in text and "ISIS-2" in text and "Test for overall effect" in text


def test_unknown_analysis_is_one_line(imported: dict[str, Path], capsys) -> None:
    assert cli.main(["pool", str(imported["Fleiss1993"]), "--analysis", "9.9"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no analysis '9.9'" in err and "Traceback" not in err


def test_existing_out_needs_force(tmp_path: Path, capsys) -> None:
    out = tmp_path / "pkg"
    out.mkdir()
    (out / "keep.txt").write_text("mine", encoding="utf-8")
    src = str(REVMAN / "Fleiss1993_CR.csv")
    for force in ([], ["--force"]):  # a user's folder: never replaced
        assert cli.main(["import", src, "--out", str(out), *force]) == 1
        assert "not a trialpool package" in capsys.readouterr().err
        assert [p.name for p in out.iterdir()] == ["keep.txt"]
    (out / "keep.txt").unlink()
    assert cli.main(["import", src, "--out", str(out)]) == 0  # empty: written
    (out / "data/extra.csv").write_text("x\n", encoding="utf-8")
    assert cli.main(["import", src, "--out", str(out)]) == 1  # trialpool's: with --force
    assert "add --force" in capsys.readouterr().err
    assert cli.main(["import", src, "--out", str(out), "--force"]) == 0
    assert not (out / "data/extra.csv").exists() and (out / "datapackage.json").is_file()


def test_zip_and_nested_zip_of_a_data_package(tmp_path: Path) -> None:
    folder = REVMAN / PACKAGE
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                z.write(path, path.relative_to(folder.parent).as_posix())
    outer = tmp_path / "download.zip"
    with zipfile.ZipFile(outer, "w") as z:
        z.writestr("CD004366-dataPackage.zip", inner.getvalue())
    assert cli.main(["import", str(outer), "--out", str(tmp_path / "out")]) == 0
    plan = load_plan(tmp_path / "out" / "analysis" / "plan.json")
    assert len(plan.analyses) == EXPECTED_ANALYSES["CD004366"]


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("bad.rm5", b'<?xml version="1.0"?>\n<COCHRANE_REVIEW><ANALYSES_AND_DATA>', "malformed"),
        ("empty.rm5", b"", "empty"),
        ("notes.txt", b"just some text\n", "unknown format"),
        ("cut.zip", b"PK\x03\x04\x14\x00\x00\x00\x08\x00", "zip"),
        (
            "counts.rm5",
            b'<?xml version="1.0" encoding="UTF-8"?>\n<COCHRANE_REVIEW><ANALYSES_AND_DATA>'
            b'<COMPARISON ID="CMP-001" NO="1"><NAME>A vs B</NAME>'
            b'<DICH_OUTCOME ID="CMP-001.01" NO="1" METHOD="MH" EFFECT_MEASURE="RR" RANDOM="NO">'
            b"<NAME>Death</NAME>"
            b'<DICH_DATA STUDY_ID="STD-X" EVENTS_1="12" TOTAL_1="10" EVENTS_2="1" TOTAL_2="10"/>'
            b"</DICH_OUTCOME></COMPARISON></ANALYSES_AND_DATA></COCHRANE_REVIEW>",
            "TOTAL_1",
        ),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys, name: str, content: bytes, words: str
) -> None:
    source = tmp_path / name
    source.write_bytes(content)
    out = tmp_path / "out"
    assert cli.main(["import", str(source), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert name in err and words.lower() in err.lower(), err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
