"""What changed in the results between two versions: ``trialpool diff --results``,
``trialpool report --since`` and the release notes (``scripts/release.py --notes``).

The versions are built at test time from real data, the way a living review changes:

* a real Cochrane review, "Exercise for depression" (CD004366, the Cochrane data package
  in tests/fixtures/revman/, RevMan's engine), imported; its earlier version is the same
  review without the three most recent studies that change a conclusion (Karg 2020,
  Bose 2015, La Rocque 2021, removed with every row and comparison of theirs) and
  without analysis 3.2, which the later version added; the later version dropped
  analysis 6.2. Adding Karg 2020 flips the direction of analysis 2.1, adding Bose 2015
  moves the CI of analysis 4.2 over no effect, adding La Rocque 2021 moves the CI of
  analysis 6.6 off no effect;
* metadat's BCG trials (tests/fixtures/metadat_bcg, trialpool's engine, the plan built
  from the data) up to 1960 and all of them.

No git history is needed.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import math
import shutil
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from trialpool.analysis.plan_source import FROM_DATA
from trialpool.cli import main
from trialpool.contrib.diff_results import (
    ABS_TOL,
    REL_TOL,
    ResultChange,
    ResultsDiff,
    Snapshot,
    certainty_by_analysis,
    changed_fields,
    compare_results,
    conclusion_change,
    version_results,
)
from trialpool.errors import ValidationFailedError
from trialpool.imports import read_review
from trialpool.imports.write import write_valid_package
from trialpool.package.descriptor import DESCRIPTOR_NAME, dumps, refresh
from trialpool.package.loader import load_package
from trialpool.report.document import Link, Table
from trialpool.report.sections import changes
from trialpool.report.writer import MD_NAME, build_report

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
CD004366 = FIXTURES / "revman" / "cochrane-data-package" / "CD004366-SUP-06-dataPackage"
BCG = FIXTURES / "metadat_bcg"
#: the studies the later version of CD004366 added (each changes one conclusion)
ADDED = {"karg_2020", "bose_2015", "la_rocque_2021"}


# ------------------------------------------------------------------------ helpers


def _rewrite_csv(path: Path, keep: Callable[[dict[str, str]], bool]) -> None:
    """Keep the rows of a CSV file for which ``keep`` is true (header and order kept)."""
    text = path.read_text(encoding="utf-8")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = [r for r in reader if keep(r)]
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=reader.fieldnames or [], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")


def make_version(
    src: Path,
    dest: Path,
    *,
    version: str,
    drop_studies: Iterable[str] = (),
    drop_analyses: Iterable[str] = (),
    changelog: bool = True,
) -> Path:
    """A version of the package in ``src``: without the studies ``drop_studies`` (every
    row that names them or their comparisons) and without the plan's analyses
    ``drop_analyses``; with ``version``, fresh bytes and hashes, and a CHANGELOG.md entry."""
    shutil.copytree(src, dest)
    data = dest / "data"
    drop = set(drop_studies)
    with (data / "comparisons.csv").open(encoding="utf-8", newline="") as handle:
        comparisons = {r["comparison_id"] for r in csv.DictReader(handle) if r["study_id"] in drop}
    for path in sorted(data.glob("*.csv")):
        _rewrite_csv(
            path,
            lambda r: r.get("study_id") not in drop and r.get("comparison_id") not in comparisons,
        )
    plan_path = dest / "analysis" / "plan.json"
    if plan_path.exists():
        plan = json.loads(plan_path.read_text(encoding="utf-8"))
        kept = []
        for a in plan["analyses"]:
            if a["id"] in set(drop_analyses):
                continue
            if a.get("engine") == "revman":
                a["comparison_ids"] = [c for c in a["comparison_ids"] if c not in comparisons]
                for s in a["subgroups"]:
                    s["comparison_ids"] = [c for c in s["comparison_ids"] if c not in comparisons]
                a["subgroups"] = [s for s in a["subgroups"] if s["comparison_ids"]]
                if not a["comparison_ids"]:
                    continue
            kept.append(a)
        plan["analyses"] = kept
        plan_path.write_text(json.dumps(plan, indent=2), encoding="utf-8")
    descriptor = json.loads((dest / DESCRIPTOR_NAME).read_text(encoding="utf-8"))
    descriptor["version"] = version
    (dest / DESCRIPTOR_NAME).write_text(dumps(refresh(descriptor, dest)), encoding="utf-8")
    if changelog:
        (dest / "CHANGELOG.md").write_text(
            f"# Changelog\n\n## [{version}] - 2026-12-01\n\n- Studies and analyses as the "
            "review's version has them.\n",
            encoding="utf-8",
        )
    return dest / DESCRIPTOR_NAME


def by_key(diff: ResultsDiff, analysis_id: str, block: str | None = None) -> ResultChange:
    found = [c for c in diff.changes if (c.analysis_id, c.block) == (analysis_id, block)]
    assert len(found) == 1, f"{analysis_id} {block}: {[c.analysis_id for c in diff.changes]}"
    return found[0]


def published_total(descriptor: Path, analysis_id: str) -> dict[str, str]:
    """RevMan's own stored total of an analysis (published_results, scope overall)."""
    with (descriptor.parent / "data/published_results.csv").open(encoding="utf-8") as handle:
        rows = [
            r
            for r in csv.DictReader(handle)
            if r["analysis_id"] == analysis_id and r["scope"] == "overall"
        ]
    assert len(rows) == 1
    return rows[0]


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def review(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CD004366 imported (a valid package with the review's plan)."""
    folder = tmp_path_factory.mktemp("cd004366") / "imported"
    folder.mkdir()
    _, report = write_valid_package(read_review(CD004366), folder)
    assert report.valid
    return folder


@pytest.fixture(scope="module")
def versions(review: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(old, new) descriptors of CD004366 as a living review changes."""
    root = tmp_path_factory.mktemp("versions")
    old = make_version(
        review, root / "old", version="1.0.0", drop_studies=ADDED, drop_analyses=["3.2"]
    )
    new = make_version(review, root / "new", version="1.1.0", drop_analyses=["6.2"])
    return old, new


@pytest.fixture(scope="module")
def diff(versions: tuple[Path, Path]) -> ResultsDiff:
    return compare_results(*versions)


@pytest.fixture(scope="module")
def bcg(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(old, new): the BCG trials published up to 1960, and all of them."""
    root = tmp_path_factory.mktemp("bcg")
    with (BCG / "data/studies.csv").open(encoding="utf-8", newline="") as handle:
        later = [r["study_id"] for r in csv.DictReader(handle) if int(r["year"]) > 1960]
    old = make_version(BCG, root / "old", version="0.1.0", drop_studies=later)
    new = make_version(BCG, root / "new", version="1.0.0")
    return old, new


# --------------------------------------------------- the comparison, RevMan's engine


def test_versions_are_valid_and_differ_as_described(
    versions: tuple[Path, Path], diff: ResultsDiff
) -> None:
    assert diff.old.version == "1.0.0" and diff.new.version == "1.1.0"
    assert sorted(diff.studies_added) == sorted(ADDED) and diff.studies_removed == []
    assert diff.old.plan_origin.startswith("analysis/plan.json of the package")
    assert {"3.2", "6.2"} & {k[0] for k in diff.old.results} == {"6.2"}
    assert {"3.2", "6.2"} & {k[0] for k in diff.new.results} == {"3.2"}


def test_unchanged_results_are_not_listed(versions: tuple[Path, Path], diff: ResultsDiff) -> None:
    """Every analysis without an added study is unchanged, and is not in the list."""
    root = versions[1].parent
    with (root / "data/comparisons.csv").open(encoding="utf-8", newline="") as handle:
        study_of = {r["comparison_id"]: r["study_id"] for r in csv.DictReader(handle)}
    plan = json.loads((root / "analysis/plan.json").read_text(encoding="utf-8"))
    touched = {
        a["id"] for a in plan["analyses"] if any(study_of[c] in ADDED for c in a["comparison_ids"])
    }
    assert {"2.1", "2.3", "4.1", "4.2", "4.3", "6.6"} <= touched
    untouched = {a["id"] for a in plan["analyses"]} - touched - {"3.2"}
    assert untouched == {"1.2", "1.4", "2.2", "2.4", "3.1", "3.3", "3.4"}
    unchanged_ids = {a for a, _ in diff.unchanged}
    assert untouched <= unchanged_ids
    listed = {c.analysis_id for c in diff.changes}
    assert not (untouched & listed)
    assert listed == touched | {"3.2", "6.2"}


def test_changed_estimate_without_a_changed_conclusion(
    versions: tuple[Path, Path], diff: ResultsDiff
) -> None:
    c = by_key(diff, "2.3")  # completed exercise or therapies: RR, Karg 2020 added
    assert c.status == "changed" and not c.conclusion_changed
    assert c.old is not None and c.new is not None
    assert (c.old.k, c.new.k) == (6, 7)
    assert {"k", "estimate", "ci_lower", "ci_upper", "p_value", "tau2"} <= set(c.changed)
    assert c.new.measure == "RR" and c.new.ratio and c.new.null == 1.0
    assert c.old.ci_lower < 1 < c.old.ci_upper and c.new.ci_lower < 1 < c.new.ci_upper
    # the new version's result is RevMan's own (stored to 6 decimals in the package)
    stored = published_total(versions[1], "2.3")
    for name in ("estimate", "ci_lower", "ci_upper", "p_value", "tau2"):
        assert math.isclose(getattr(c.new, name), float(stored[name]), abs_tol=1e-6), name
    assert c.old.certainty is None and c.new.certainty is None  # no certainty resource


def test_direction_flip(versions: tuple[Path, Path], diff: ResultsDiff) -> None:
    c = by_key(diff, "2.1")  # depressive symptoms post-treatment, SMD: Karg 2020 added
    assert c.old is not None and c.new is not None
    assert c.old.estimate < 0 < c.new.estimate
    assert c.old.ci_lower < 0 < c.old.ci_upper and c.new.ci_lower < 0 < c.new.ci_upper
    assert c.conclusion == ("the direction of the estimate flipped",)
    stored = published_total(versions[1], "2.1")
    assert math.isclose(c.new.estimate, float(stored["estimate"]), abs_tol=1e-6)


def test_ci_crosses_no_effect_both_ways(diff: ResultsDiff) -> None:
    now_includes = by_key(diff, "4.2")  # follow-up, SMD: Bose 2015 added
    assert now_includes.old is not None and now_includes.new is not None
    assert now_includes.old.ci_upper < 0 < now_includes.new.ci_upper
    assert now_includes.conclusion == ("the CI now includes no effect (0)",)
    subgroup = by_key(diff, "4.2", "4.2.1 Health education")  # its one subgroup, too
    assert subgroup.conclusion == now_includes.conclusion
    now_excludes = by_key(diff, "6.6")  # La Rocque 2021 added
    assert now_excludes.old is not None and now_excludes.new is not None
    assert now_excludes.old.ci_lower < 0 < now_excludes.old.ci_upper
    assert now_excludes.new.ci_upper < 0
    assert now_excludes.conclusion == ("the CI now excludes no effect (0)",)
    mixed = by_key(diff, "5.1", "5.1.2 Mixed exercise")  # a subgroup: La Rocque 2021 too
    assert mixed.conclusion == ("the CI now excludes no effect (0)",)
    assert {(c.analysis_id, c.block) for c in diff.conclusions_changed} == {
        ("2.1", None),
        ("4.2", None),
        ("4.2", "4.2.1 Health education"),
        ("5.1", "5.1.2 Mixed exercise"),
        ("6.6", None),
    }


def test_analysis_added_and_removed(diff: ResultsDiff) -> None:
    added, removed = by_key(diff, "3.2"), by_key(diff, "6.2")
    assert added.status == "added" and added.old is None and added.new is not None
    assert removed.status == "removed" and removed.new is None and removed.old is not None
    assert not added.conclusion_changed and not removed.conclusion_changed
    assert added.new.k == 1 and removed.old.k == 1  # one study each


def test_invalid_version_is_one_named_line(
    versions: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = versions
    broken = tmp_path / "broken"
    shutil.copytree(old.parent, broken)
    _rewrite_csv(broken / "data/studies.csv", lambda r: r["study_id"] != "blumenthal_1999")
    assert main(["diff", str(broken / DESCRIPTOR_NAME), str(new), "--results"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(
        f"trialpool: error: {broken / DESCRIPTOR_NAME}: package is invalid ("
    )
    with pytest.raises(ValidationFailedError, match="broken"):
        compare_results(new, broken / DESCRIPTOR_NAME)


# ---------------------------------------------------------------------- the CLI


def test_json_has_a_results_list(
    versions: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = versions
    assert main(["diff", str(old), str(new), "--results", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["required_bump"] == "minor"  # the row diff is still there
    assert sorted(data["studies_added"]) == sorted(ADDED)
    results = {(r["analysis_id"], r["block"]): r for r in data["results"]}
    flip = results[("2.1", None)]
    assert set(flip) == {
        "analysis_id",
        "block",
        "title",
        "status",
        "changed",
        "conclusion_changed",
        "conclusion",
        "old",
        "new",
    }
    assert flip["status"] == "changed" and flip["conclusion_changed"] is True
    assert set(flip["new"]) >= {"k", "estimate", "ci_lower", "ci_upper", "p_value", "tau2"}
    assert set(flip["new"]) >= {"certainty", "measure", "engine", "pooled", "no_effect"}
    assert flip["old"]["k"] == 9 and flip["new"]["k"] == 10 and flip["new"]["engine"] == "revman"
    assert flip["new"]["certainty"] is None and flip["new"]["no_effect"] == 0
    assert results[("2.3", None)]["conclusion_changed"] is False
    assert results[("2.3", None)]["new"]["no_effect"] == 1
    assert results[("3.2", None)]["old"] is None and results[("6.2", None)]["new"] is None
    compared = data["results_compared"]
    assert compared["tolerance"] == {"relative": REL_TOL, "absolute": ABS_TOL}
    assert compared["counts"]["conclusion_changed"] == 5
    assert {"analysis_id": "1.2", "block": None} in compared["unchanged"]


def test_text_lists_changed_results(
    versions: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = versions
    assert main(["diff", str(old), str(new), "--results"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Results re-pooled" in out and "relative 1e-06" in out
    assert "the direction of the estimate flipped" in out
    assert "with a changed conclusion" in out
    assert main(["diff", str(old), str(new)]) == 0
    assert "Results re-pooled" not in capsys.readouterr().out  # only with --results


# ----------------------------------------------- trialpool's engine, the data's plan


def test_metafor_engine_with_the_plan_built_from_the_data(bcg: tuple[Path, Path]) -> None:
    d = compare_results(*bcg)
    assert d.old.plan_origin == FROM_DATA == d.new.plan_origin
    c = by_key(d, "tuberculosis-as-reported")
    assert c.old is not None and c.new is not None
    assert c.new.engine == "metafor" and c.new.measure == "RR"
    assert (c.old.k, c.new.k) == (3, 7)  # randomised trials up to 1960, then all
    assert {"k", "estimate", "tau2"} <= set(c.changed)
    assert c.new.ci_upper < 1 and c.old.ci_upper < 1  # both favour the vaccine
    assert not c.conclusion_changed and d.unchanged == []


def test_not_pooled_then_pooled(bcg: tuple[Path, Path], tmp_path: Path) -> None:
    with (BCG / "data/studies.csv").open(encoding="utf-8", newline="") as handle:
        later = [r["study_id"] for r in csv.DictReader(handle) if int(r["year"]) > 1948]
    first = make_version(BCG, tmp_path / "first", version="0.0.1", drop_studies=later)
    c = by_key(compare_results(first, bcg[1]), "tuberculosis-as-reported")
    assert c.old is not None and not c.old.pooled and c.old.k == 1
    assert c.new is not None and c.new.pooled
    assert {"k", "pooled", "estimate"} <= set(c.changed) and not c.conclusion_changed


def test_repooling_noise_is_not_a_change(bcg: tuple[Path, Path], tmp_path: Path) -> None:
    """The same data with the rows in reverse order: the pooled numbers differ in their
    last bits (summation order), and the comparison says nothing changed."""
    reordered = tmp_path / "reordered"
    shutil.copytree(bcg[1].parent, reordered)
    for name in ("studies", "arms", "comparisons", "dichotomous_outcomes"):
        path = reordered / f"data/{name}.csv"
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        path.write_text(lines[0] + "".join(reversed(lines[1:])), encoding="utf-8")
    descriptor = json.loads((reordered / DESCRIPTOR_NAME).read_text(encoding="utf-8"))
    (reordered / DESCRIPTOR_NAME).write_text(
        dumps(refresh(descriptor, reordered)), encoding="utf-8"
    )
    a, b = version_results(bcg[1]), version_results(reordered / DESCRIPTOR_NAME)
    key = ("tuberculosis-as-reported", None)
    numbers = ("estimate", "ci_lower", "ci_upper", "p_value", "tau2")
    assert any(getattr(a.results[key], n) != getattr(b.results[key], n) for n in numbers)
    d = compare_results(bcg[1], reordered / DESCRIPTOR_NAME)
    assert d.changes == [] and d.unchanged == [key]


# ---------------------------------------------------------- rules, one by one


def snap(**values: Any) -> Snapshot:
    base: dict[str, Any] = {
        "title": "t",
        "engine": "metafor",
        "measure": "RR",
        "ratio": True,
        "k": 5,
        "pooled": True,
        "estimate": 0.8,
        "ci_lower": 0.7,
        "ci_upper": 0.9,
        "p_value": 0.01,
        "tau2": 0.02,
    }
    return Snapshot(**(base | values))


def test_tolerance_and_certainty() -> None:
    a = snap()
    assert changed_fields(a, snap(estimate=0.8 * (1 + REL_TOL / 10), tau2=0.02 + 1e-12)) == ()
    assert changed_fields(a, snap(estimate=0.8 * (1 + REL_TOL * 10))) == ("estimate",)
    assert changed_fields(a, snap(tau2=0.0)) == ("tau2",)
    assert changed_fields(snap(certainty=None), snap(certainty="moderate")) == ("certainty",)
    assert changed_fields(snap(certainty="low"), snap(certainty="low")) == ()


def test_conclusion_rules() -> None:
    below = snap(estimate=0.8, ci_lower=0.7, ci_upper=0.9)
    above = snap(estimate=1.3, ci_lower=1.1, ci_upper=1.5)
    across = snap(estimate=0.9, ci_lower=0.7, ci_upper=1.1)
    assert conclusion_change(below, above) == (
        "the CI moved to the other side of no effect (1)",
        "the direction of the estimate flipped",
    )
    assert conclusion_change(below, across) == ("the CI now includes no effect (1)",)
    assert conclusion_change(across, below) == ("the CI now excludes no effect (1)",)
    assert conclusion_change(below, snap(estimate=0.85)) == ()
    touching = snap(estimate=0.9, ci_lower=0.8, ci_upper=1.0)  # the bound at no effect
    assert conclusion_change(below, touching) == ("the CI now includes no effect (1)",)
    raw = {"measure": "MD", "ratio": False}
    md_neg = snap(**raw, estimate=-0.2, ci_lower=-0.5, ci_upper=0.1)
    md_pos = snap(**raw, estimate=0.2, ci_lower=-0.1, ci_upper=0.5)
    assert conclusion_change(md_neg, md_pos) == ("the direction of the estimate flipped",)
    at_null = snap(**raw, estimate=0.0, ci_lower=-0.3, ci_upper=0.3)
    assert conclusion_change(md_neg, at_null) == ()  # no direction: no flip
    not_pooled = snap(pooled=False, estimate=None, ci_lower=None, ci_upper=None)
    assert conclusion_change(not_pooled, below) == ()


def test_certainty_is_read_from_a_certainty_resource(tmp_path: Path) -> None:
    """A resource ``certainty`` with ``analysis_id`` and ``overall`` (as part B adds it);
    another shape means not assessed."""
    root = tmp_path / "pkg"
    shutil.copytree(BCG, root)
    (root / "data/certainty.csv").write_text(
        "analysis_id,overall,assessor\ntuberculosis-as-reported,moderate,test\n", encoding="utf-8"
    )
    schema = {
        "fields": [
            {"name": "analysis_id", "type": "string"},
            {"name": "overall", "type": "string"},
            {"name": "assessor", "type": "string"},
        ]
    }
    (root / "schemas/certainty.schema.json").write_text(json.dumps(schema), encoding="utf-8")
    descriptor = json.loads((root / DESCRIPTOR_NAME).read_text(encoding="utf-8"))
    # the fixture carries the core (empty) certainty resource: replace it with this shape
    descriptor["resources"] = [r for r in descriptor["resources"] if r["name"] != "certainty"]
    descriptor["resources"].append(
        {
            "name": "certainty",
            "path": "data/certainty.csv",
            "schema": "schemas/certainty.schema.json",
            "profile": "tabular-data-resource",
            "format": "csv",
            "mediatype": "text/csv",
            "encoding": "utf-8",
        }
    )
    (root / DESCRIPTOR_NAME).write_text(dumps(refresh(descriptor, root)), encoding="utf-8")
    pkg = load_package(root / DESCRIPTOR_NAME)
    assert certainty_by_analysis(pkg) == {"tuberculosis-as-reported": "moderate"}
    (root / "data/certainty.csv").write_text(
        "analysis_id,grade\ntuberculosis-as-reported,moderate\n", encoding="utf-8"
    )
    schema["fields"] = [{"name": "analysis_id", "type": "string"}, {"name": "grade"}]
    (root / "schemas/certainty.schema.json").write_text(json.dumps(schema), encoding="utf-8")
    (root / DESCRIPTOR_NAME).write_text(dumps(refresh(descriptor, root)), encoding="utf-8")
    assert certainty_by_analysis(load_package(root / DESCRIPTOR_NAME)) == {}
    assert certainty_by_analysis(load_package(BCG / DESCRIPTOR_NAME)) == {}


# ------------------------------------------------------------- the report section


def test_section_nodes_and_markdown(diff: ResultsDiff) -> None:
    nodes = changes.section(diff)
    assert changes.heading(diff) == "What changed since version 1.0.0"
    table = next(n for n in nodes if isinstance(n, Table))
    rows = {str(r[0].text if isinstance(r[0], Link) else r[0]).split()[0]: r for r in table.rows}
    assert set(rows) == {c.analysis_id for c in diff.changes}
    flip = rows["2.1"]
    assert isinstance(flip[0], Link) and flip[0].url == "#analysis-2-1"
    assert flip[2] == "9 → 10"
    assert flip[3] == "SMD −0.004 [−0.24, 0.23] → SMD 0.03 [−0.16, 0.23]"  # −0.004 not 0.00
    assert "the direction of the estimate flipped" in str(flip[-1])
    assert rows["2.3"][-1] == ""  # changed, same conclusion
    assert not isinstance(rows["6.2"][0], Link)  # removed: nothing to link to
    text = changes.markdown(diff)
    assert text.count("## What changed since version 1.0.0") == 1
    assert "(#analysis-" not in text  # release notes: no links into a report
    assert "Karg 2020" in text and "**the conclusion changed in 5**" in text
    assert "Unchanged: 1.2, " in text


@pytest.mark.slow
def test_report_since(bcg: tuple[Path, Path], tmp_path: Path) -> None:
    old, new = bcg
    out = build_report(new, None, tmp_path / "report", since=old)
    md = (out / MD_NAME).read_text(encoding="utf-8")
    assert md.count("## What changed since version 0.1.0") == 1
    assert md.index("## What changed since") < md.index("## Methods")
    assert "| 3 → 7 |" in md and "Studies added:" in md
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "What changed since version 0.1.0" in html


def test_report_since_an_invalid_version_writes_nothing(
    bcg: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(bcg[0].parent, broken)
    _rewrite_csv(broken / "data/studies.csv", lambda r: r["study_id"] != "aronson1948")
    out = tmp_path / "report"
    args = ["report", "--out", str(out), str(bcg[1]), "--since", str(broken / DESCRIPTOR_NAME)]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{broken / DESCRIPTOR_NAME}: package is invalid" in err
    assert not out.exists()


# ----------------------------------------------------------------- release notes


def test_release_notes(bcg: tuple[Path, Path], tmp_path: Path) -> None:
    release = load_script("release")
    old, new = bcg
    notes = tmp_path / "notes.md"
    root = str(new.parent)
    assert release.main(["--root", root, "--notes", str(old), "--notes-out", str(notes)]) == 0
    text = notes.read_text(encoding="utf-8")
    assert text.startswith("# Engine-test fixture from metadat dat.bcg")
    assert "1.0.0\n" in text.splitlines(keepends=True)[0]
    assert "Studies and analyses as the review's version has them." in text  # the entry
    assert "## What changed since version 0.1.0" in text and "3 → 7" in text
    # no OLD: the entry only
    assert release.main(["--root", root, "--notes", "--notes-out", str(notes)]) == 0
    assert "What changed" not in notes.read_text(encoding="utf-8")


def test_release_notes_problems(
    bcg: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    release = load_script("release")
    old, new = bcg
    root = tmp_path / "new"
    shutil.copytree(new.parent, root)
    (root / "CHANGELOG.md").write_text("# Changelog\n\n## [Unreleased]\n", encoding="utf-8")
    assert release.main(["--root", str(root), "--notes", str(old)]) == 1
    assert "no entry for 1.0.0" in capsys.readouterr().err
    # an old version this trialpool cannot validate: the section says so, the notes exist
    broken = tmp_path / "broken"
    shutil.copytree(old.parent, broken)
    _rewrite_csv(broken / "data/studies.csv", lambda r: r["study_id"] != "aronson1948")
    notes = tmp_path / "notes.md"
    args = ["--root", str(new.parent), "--notes", str(broken / DESCRIPTOR_NAME)]
    assert release.main([*args, "--notes-out", str(notes)]) == 0
    text = notes.read_text(encoding="utf-8")
    assert "## What changed since version 0.1.0\n\nThe results were not compared: " in text
    assert "release: warning: results not compared" in capsys.readouterr().err


# -------------------------------------------- the bundled package's real versions


V010 = "ee3593f"  # the commit of the bundled package 0.1.0


def test_bundled_0_1_0_is_refused_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """0.1.0 (from git history, when the clone has it) does not conform to core 1.x: its
    results cannot be compared with 1.0.0's, and diff --results says so in one line."""
    has = subprocess.run(
        ["git", "cat-file", "-e", f"{V010}^{{commit}}"], cwd=REPO, capture_output=True
    )
    if has.returncode != 0:
        pytest.skip(f"commit {V010} (package 0.1.0) not in this clone")
    archive = subprocess.run(
        ["git", "archive", "--format=tar", V010, "datapackage.json", "schemas", "data"],
        cwd=REPO,
        capture_output=True,
        check=True,
    )
    dest = tmp_path / "v010"
    dest.mkdir()
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    args = ["diff", str(dest / DESCRIPTOR_NAME), str(REPO / DESCRIPTOR_NAME), "--results"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "v010/datapackage.json: package is invalid" in err
