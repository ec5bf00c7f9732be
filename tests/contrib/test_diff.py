"""``trialpool diff``: what changed between two package versions and the bump it needs.

The fixtures are "pull requests" made in tmp_path from a copy of the bundled package
(descriptor, schemas, data, CHANGELOG.md): adding the fictional study "example2027"
(tests/fixtures/pr_example2027, illustrative values only), correcting a value, renaming
a field. They work whatever rows the bundled package holds.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from trialpool.cli import main
from trialpool.contrib.diff import (
    Version,
    bump_between,
    changelog_has_version,
    diff_packages,
    run_diff,
)
from trialpool.contrib.new_study import append_rows, rob1_domains
from trialpool.package.loader import load_package

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = json.loads(
    (REPO / "tests/fixtures/pr_example2027/example2027.json").read_text(encoding="utf-8")
)
BASE_VERSION = json.loads((REPO / "datapackage.json").read_text(encoding="utf-8"))["version"]


# ------------------------------------------------------------------------ helpers


def rebuild(root: Path) -> None:
    """Regenerate bytes, hashes and sources (scripts/build_descriptor.py)."""
    spec = importlib.util.spec_from_file_location("bd", REPO / "scripts/build_descriptor.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (root / "datapackage.json").write_text(module.build(root), encoding="utf-8")


def copy_package(dest: Path) -> Path:
    """Copy the bundled package, with CHANGELOG.md, and return its descriptor."""
    dest.mkdir(parents=True)
    for name in ("datapackage.json", "CHANGELOG.md"):
        shutil.copyfile(REPO / name, dest / name)
    shutil.copytree(REPO / "schemas", dest / "schemas")
    shutil.copytree(REPO / "data", dest / "data")
    rebuild(dest)
    return dest / "datapackage.json"


def set_version(descriptor: Path, version: str, *, changelog: bool = True) -> None:
    """Set the descriptor's version and (optionally) add its CHANGELOG.md entry."""
    data = json.loads(descriptor.read_text(encoding="utf-8"))
    data["version"] = version
    descriptor.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    if changelog:
        path = descriptor.parent / "CHANGELOG.md"
        text = path.read_text(encoding="utf-8")
        entry = f"## [{version}] - 2027-01-01\n\n### Changed\n\n- Test change.\n\n"
        path.write_text(text.replace("## [Unreleased]\n", f"## [Unreleased]\n\n{entry}", 1))


#: the example's rows, in the order a contributor adds them (bias rows are made below)
EXAMPLE_RESOURCES = (
    "sources",
    "studies",
    "arms",
    "comparisons",
    "msc_arms",
    "screening",
    "outcomes",
    "continuous_outcomes",
    "dichotomous_outcomes",
    "claims",
)


def add_example_study(descriptor: Path) -> None:
    """Append every row of the fictional study, then rebuild the descriptor."""
    package = load_package(descriptor)
    rows: dict[str, list[dict[str, Any]]] = {
        name: list(EXAMPLE[name]) for name in EXAMPLE_RESOURCES
    }
    rows["bias_judgements"] = [
        {
            "study_id": "example2027",
            "tool": "rob1",
            "domain": d,
            "result_scope": "all",
            "source_id": "example2027",
            **EXAMPLE["bias_judgements"],
        }
        for d in rob1_domains(package.resources["bias_judgements"])
    ]
    append_rows(package, rows)
    rebuild(descriptor.parent)


def edit_csv(path: Path, edit: Callable[[list[list[str]]], None]) -> None:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    edit(rows)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")


def edit_schema(root: Path, name: str, edit: Callable[[dict[str, Any]], None]) -> None:
    path = root / f"schemas/{name}.schema.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    edit(schema)
    path.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")


def field_of(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in schema["fields"] if f["name"] == name)


def run(old: Path, new: Path, *, as_json: bool = False) -> tuple[int, str]:
    console = Console(file=io.StringIO(), width=200, highlight=False)
    code = run_diff(old, new, as_json=as_json, console=console)
    assert isinstance(console.file, io.StringIO)
    return code, console.file.getvalue()


def bumped(level: str) -> str:
    return str(Version.parse(BASE_VERSION).bump(level))


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """The 'old' package: a copy of the bundled one."""
    return copy_package(tmp_path / "old")


@pytest.fixture
def pr(tmp_path: Path) -> Path:
    """The 'new' package of a pull request, still equal to the base."""
    return copy_package(tmp_path / "new")


@pytest.fixture
def with_example(tmp_path: Path) -> tuple[Path, Path]:
    """Old and new both hold the example study (at the next minor version)."""
    old, new = copy_package(tmp_path / "old2"), copy_package(tmp_path / "new2")
    for descriptor in (old, new):
        add_example_study(descriptor)
        set_version(descriptor, bumped("minor"))
    return old, new


# --------------------------------------------------------------- pull requests


def test_pull_request_adding_a_trial_needs_minor(base: Path, pr: Path) -> None:
    add_example_study(pr)
    set_version(pr, bumped("minor"))
    code, out = run(base, pr)
    assert code == 0, out
    diff = diff_packages(base, pr)
    assert diff.required == "minor" and diff.reason == "adds a study"
    assert diff.studies_added == ["example2027"] and diff.studies_removed == []
    by_name = {r.name: r for r in diff.resources}
    arms = by_name["arms"]
    assert len(arms.rows_added) == 2 and arms.key_fields == ["study_id", "arm_id"]
    assert {"study_id": "example2027", "arm_id": "msc"} in arms.rows_added
    # rows of the 1.0 resources, by their primary keys
    assert by_name["comparisons"].rows_added == [{"comparison_id": "example2027_msc_vs_control"}]
    assert by_name["msc_arms"].rows_added == arms.rows_added
    assert by_name["outcomes"].rows_added == [{"outcome_id": "hospital_days"}]
    assert {
        "study_id": "example2027",
        "arm_id": "control",
        "outcome": "death",
        "timepoint": "week_24",
    } in by_name["dichotomous_outcomes"].rows_added
    assert len(by_name["bias_judgements"].rows_added) == 7
    assert all(c.level == "minor" for c in diff.changes)
    assert "Studies added: example2027" in out and "OK" in out


@pytest.mark.frictionless
def test_pull_request_adding_a_trial_validates(base: Path, pr: Path) -> None:
    add_example_study(pr)
    set_version(pr, bumped("minor"))
    result = subprocess.run(
        [sys.executable, "-m", "frictionless", "validate", "datapackage.json"],
        cwd=pr.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    try:
        from trialpool.validate import validate_package
    except ImportError:  # pragma: no cover - trialpool validate not installed
        return
    report = validate_package(pr)
    assert report.valid, [issue.line() for issue in report.issues]


def test_pull_request_without_bump_fails(base: Path, pr: Path) -> None:
    add_example_study(pr)
    code, out = run(base, pr)
    assert code == 1
    expected = (
        f"version {BASE_VERSION} -> {BASE_VERSION} but the change adds a study: "
        f"needs a minor bump ({bumped('minor')})"
    )
    assert expected in " ".join(out.split())


def test_patch_bump_is_not_enough_for_a_new_trial(base: Path, pr: Path) -> None:
    add_example_study(pr)
    set_version(pr, bumped("patch"))
    code, out = run(base, pr)
    assert code == 1 and f"needs a minor bump ({bumped('minor')})" in out


def test_changelog_entry_required(base: Path, pr: Path) -> None:
    add_example_study(pr)
    set_version(pr, bumped("minor"), changelog=False)
    code, out = run(base, pr)
    assert code == 1
    assert f"no entry for version {bumped('minor')}" in " ".join(out.split())
    (pr.parent / "CHANGELOG.md").unlink()
    code, out = run(base, pr)
    assert code == 1 and "CHANGELOG.md: not found" in " ".join(out.split())


def test_corrected_value_needs_patch(with_example: tuple[Path, Path]) -> None:
    old, new = with_example

    def fix(rows: list[list[str]]) -> None:
        header = rows[0]
        for row in rows[1:]:
            if row[0] == "example2027" and row[header.index("arm_id")] == "control":
                row[header.index("n_analysed")] = "28"

    edit_csv(new.parent / "data/arms.csv", fix)
    rebuild(new.parent)
    code, out = run(old, new)
    assert code == 1
    minimum = str(Version.parse(bumped("minor")).bump("patch"))
    assert f"the change corrects a value: needs a patch bump ({minimum})" in out
    set_version(new, minimum)
    code, out = run(old, new)
    assert code == 0, out
    diff = diff_packages(old, new)
    assert diff.required == "patch"
    arms = next(r for r in diff.resources if r.name == "arms")
    assert len(arms.rows_changed) == 1
    change = arms.rows_changed[0]
    assert change.key == {"study_id": "example2027", "arm_id": "control"}
    assert change.fields == {"n_analysed": ("29", "28")}
    assert 'n_analysed "29" -> "28"' in out


def test_renamed_field_needs_major(base: Path, pr: Path) -> None:
    root = pr.parent
    edit_schema(root, "studies", lambda s: field_of(s, "country").update(name="countries"))

    def rename(rows: list[list[str]]) -> None:
        rows[0][rows[0].index("country")] = "countries"

    edit_csv(root / "data/studies.csv", rename)
    rebuild(root)
    code, out = run(base, pr)
    assert code == 1
    assert "field 'country' renamed? to 'countries'" in out
    assert f"the change renames a field: needs a major bump ({bumped('major')})" in out
    diff = diff_packages(base, pr)
    studies = next(r for r in diff.resources if r.name == "studies")
    assert studies.rows_changed == [] and studies.rows_added == []  # values carried over
    set_version(pr, bumped("major"))
    assert run(base, pr)[0] == 0


def test_removed_field_and_rows_need_major(base: Path, pr: Path) -> None:
    root = pr.parent
    edit_schema(root, "arms", lambda s: s["fields"].remove(field_of(s, "notes")))
    edit_csv(root / "data/arms.csv", lambda rows: [r.pop() for r in rows])
    rebuild(root)
    diff = diff_packages(base, pr)
    assert diff.required == "major"
    assert diff.reason == "removes a field"


def test_removed_study_needs_major(with_example: tuple[Path, Path], tmp_path: Path) -> None:
    old, _ = with_example
    new = copy_package(tmp_path / "without")  # the bundled package lacks example2027
    set_version(new, bumped("major"))
    diff = diff_packages(old, new)
    assert diff.studies_removed == ["example2027"]
    assert diff.required == "major" and diff.reason == "removes a study"
    assert diff.ok


def test_added_optional_field_needs_minor(base: Path, pr: Path) -> None:
    root = pr.parent
    edit_schema(
        root,
        "studies",
        lambda s: s["fields"].append({"name": "funding", "type": "string"}),
    )
    edit_csv(
        root / "data/studies.csv",
        lambda rows: [r.append("funding" if i == 0 else "") for i, r in enumerate(rows)],
    )
    rebuild(root)
    diff = diff_packages(base, pr)
    assert diff.required == "minor" and diff.reason == "adds a field"


def test_added_required_field_needs_major(base: Path, pr: Path) -> None:
    root = pr.parent
    edit_schema(
        root,
        "sources",
        lambda s: s["fields"].append(
            {"name": "checked", "type": "string", "constraints": {"required": True}}
        ),
    )
    edit_csv(
        root / "data/sources.csv",
        lambda rows: [r.append("checked" if i == 0 else "yes") for i, r in enumerate(rows)],
    )
    rebuild(root)
    assert diff_packages(base, pr).required == "major"


def test_constraint_changes(base: Path, pr: Path) -> None:
    root = pr.parent
    edit_schema(
        root,
        "studies",
        lambda s: field_of(s, "design")["constraints"]["enum"].append("crossover"),
    )
    diff = diff_packages(base, pr)
    assert diff.required == "minor" and diff.reason == "loosens a constraint"
    assert any("allowed values added: crossover" in c.message for c in diff.changes)
    edit_schema(root, "studies", lambda s: field_of(s, "year")["constraints"].update(minimum=2000))
    diff = diff_packages(base, pr)
    assert diff.required == "major" and diff.reason == "makes a constraint stricter"


def test_type_and_primary_key_changes(base: Path, pr: Path) -> None:
    root = pr.parent
    edit_schema(root, "studies", lambda s: field_of(s, "year").update(type="number"))
    diff = diff_packages(base, pr)
    assert diff.required == "major" and diff.reason == "changes a field's type"
    edit_schema(root, "studies", lambda s: field_of(s, "year").update(type="integer"))
    edit_schema(root, "claims", lambda s: s.update(primaryKey=["claim_id", "study_id"]))
    diff = diff_packages(base, pr)
    assert diff.required == "major" and diff.reason == "changes a primary key"


def test_documentation_change_needs_patch(base: Path, pr: Path) -> None:
    edit_schema(pr.parent, "studies", lambda s: field_of(s, "label").update(description="New."))
    diff = diff_packages(base, pr)
    assert diff.required == "patch" and diff.reason == "changes documentation"
    data = json.loads(pr.read_text(encoding="utf-8"))
    data["licenses"][0]["name"] = "CC0-1.0"
    pr.write_text(json.dumps(data), encoding="utf-8")
    assert diff_packages(base, pr).required == "major"


def test_no_change_needs_nothing(base: Path, pr: Path) -> None:
    code, out = run(base, pr)
    assert code == 0, out
    diff = diff_packages(base, pr)
    assert diff.required == "none" and diff.changes == [] and diff.minimum_version == BASE_VERSION
    assert "No change" in out


def test_version_must_not_go_backwards(with_example: tuple[Path, Path]) -> None:
    old, new = with_example
    set_version(new, BASE_VERSION)
    code, out = run(old, new)
    assert code == 1 and "goes backwards" in out


def test_same_values_written_differently_are_not_changes(
    with_example: tuple[Path, Path],
) -> None:
    old, new = with_example

    def respell(rows: list[list[str]]) -> None:
        header = rows[0]
        for row in rows[1:]:
            if row[0] == "example2027":
                row[header.index("timepoint_weeks")] += ".0"  # 4 -> 4.0: same value
                row[header.index("sd")] = row[header.index("sd")].rstrip("0").rstrip(".")

    edit_csv(new.parent / "data/continuous_outcomes.csv", respell)
    rebuild(new.parent)
    diff = diff_packages(old, new)
    co = next(r for r in diff.resources if r.name == "continuous_outcomes")
    assert co.rows_added == co.rows_removed == co.rows_changed == []
    assert diff.required == "patch" and diff.reason == "rewrites a file without changing values"


def test_json_output_via_cli(base: Path, pr: Path, capsys: pytest.CaptureFixture[str]) -> None:
    add_example_study(pr)
    assert main(["diff", str(base), str(pr), "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["required_bump"] == "minor"
    assert result["minimum_version"] == bumped("minor")
    assert result["ok"] is False and len(result["problems"]) == 1
    assert result["studies_added"] == ["example2027"]
    assert result["resources"]["arms"]["rows_added"][0]["study_id"] == "example2027"
    assert {c["kind"] for c in result["changes"]} >= {"study_added", "rows_added"}


def test_bad_input_is_one_line(
    base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    assert main(["diff", str(base), str(broken)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "malformed JSON" in err
    assert main(["diff", str(base), str(tmp_path / "missing.json")]) == 2


# ---------------------------------------------------------------------- semver


def test_semver_precedence() -> None:
    order = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.1.0",
        "1.10.0",
        "2.0.0",
    ]
    versions = [Version.parse(v) for v in order]
    assert versions == sorted(reversed(versions))
    assert Version.parse("1.0.0+build.1") == Version.parse("1.0.0")


@pytest.mark.parametrize(
    ("old", "level", "new"),
    [
        ("0.1.0", "none", "0.1.0"),
        ("0.1.0", "patch", "0.1.1"),
        ("0.1.3", "minor", "0.2.0"),
        ("0.9.3", "major", "1.0.0"),
        ("1.0.0-rc.1", "patch", "1.0.0"),
        ("1.0.0-rc.1", "minor", "1.0.0"),
        ("1.0.0-rc.1", "major", "1.0.0"),
        ("1.2.3-rc.1", "minor", "1.3.0"),
    ],
)
def test_bump(old: str, level: str, new: str) -> None:
    assert str(Version.parse(old).bump(level)) == new


def test_bump_between() -> None:
    v = Version.parse
    assert bump_between(v("0.1.0"), v("0.1.0")) == "none"
    assert bump_between(v("0.1.0"), v("0.1.5")) == "patch"
    assert bump_between(v("0.1.0"), v("0.3.0")) == "minor"
    assert bump_between(v("0.1.0"), v("2.0.0")) == "major"


@pytest.mark.parametrize("text", ["1.0", "v1.0.0", "01.0.0", "1.0.0-", "", None, 1])
def test_invalid_versions(text: Any) -> None:
    with pytest.raises(ValueError, match="not a semantic version"):
        Version.parse(text)


@given(
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.sampled_from(["none", "patch", "minor", "major"]),
)
def test_bump_is_the_smallest_higher_version(
    major: int, minor: int, patch: int, level: str
) -> None:
    old = Version(major, minor, patch)
    new = old.bump(level)
    assert Version.parse(str(new)) == new
    assert new >= old
    assert bump_between(old, new) == level


def test_changelog_headings() -> None:
    text = "# Changelog\n\n## [Unreleased]\n\n## [0.2.0] - 2027-01-01\n\n## 0.1.0\n"
    assert changelog_has_version(text, "0.2.0")
    assert changelog_has_version(text, "0.1.0")
    assert not changelog_has_version(text, "0.2")
    assert not changelog_has_version("### [0.3.0]\n", "0.3.0")
    assert not changelog_has_version("## [0.3.0-rc.1]\n", "0.3.0")
    assert not changelog_has_version("## [0.3.01]\n", "0.3.0")
    assert re.search("0.1.0", text)


# ------------------------------------------------------------------ core schema 1.0

#: the last 0.1.x commit (arms with role and the MSC fields, outcome enums)
V010 = "7e9b005"


def _git_has(commit: str) -> bool:
    if shutil.which("git") is None:
        return False
    run = subprocess.run(
        ["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=REPO, capture_output=True
    )
    return run.returncode == 0


@pytest.fixture
def v010(tmp_path: Path) -> Path:
    """Package 0.1.0 as released (datapackage.json, schemas, data), from git."""
    if not _git_has(V010):
        pytest.skip(f"commit {V010} (package 0.1.0) not in this clone")
    dest = tmp_path / "v010"
    dest.mkdir()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", V010, "datapackage.json", "schemas", "data"],
        cwd=REPO,
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest / "datapackage.json"


def test_diff_from_0_1_0_names_every_migration_change(v010: Path, base: Path) -> None:
    diff = diff_packages(v010, base)
    assert diff.old_version == "0.1.0"
    assert diff.required == "major" and diff.minimum_version == "1.0.0"
    messages = {c.message: c.level for c in diff.changes}

    def level(text: str) -> str:
        found = [lvl for msg, lvl in messages.items() if text in msg]
        assert found, f"no change mentions {text!r}"
        return found[0]

    # arms: role and primary_comparison gone; the MSC fields moved to msc_arms
    assert level("arms: field 'role' removed") == "major"
    assert level("arms: field 'primary_comparison' removed") == "major"
    for name in ("cell_source", "origin", "dose_per_infusion", "dose_unit", "route"):
        assert level(f"arms: field '{name}' removed (a field '{name}' is added in msc_arms)")
    assert not any("renamed" in m for m in messages)  # role -> label is not a rename
    assert level("arms: field 'label' added") == "minor"
    # new resources, listed row by row
    for name in ("comparisons", "outcomes", "effect_estimates", "msc_arms"):
        assert level(f"{name}: resource added") == "minor"
    by_name = {r.name: r for r in diff.resources}
    assert by_name["comparisons"].key_fields == ["comparison_id"]
    assert {"comparison_id": "lin2017_msc_vs_control"} in by_name["comparisons"].rows_added
    assert {"outcome_id": "meld"} in by_name["outcomes"].rows_added
    with (v010.parent / "data/arms.csv").open(encoding="utf-8", newline="") as handle:
        old_arms = [
            {"study_id": r["study_id"], "arm_id": r["arm_id"]} for r in csv.DictReader(handle)
        ]
    assert all(key in by_name["msc_arms"].rows_added for key in old_arms)  # one per arm
    assert level("descriptor: extension 'msc' declared") == "minor"
    # timepoint codes: a required field and a key change
    for name in ("continuous_outcomes", "dichotomous_outcomes"):
        assert level(f"{name}: required field 'timepoint' added") == "major"
        assert level(f"{name}: primary key (") == "major"
        assert level(f"{name}.outcome: allowed values enum [") == "minor"  # enum -> pattern
        assert level(f"{name}: foreign key added") == "minor"
    assert "(every value allowed before is still allowed)" in next(
        m for m in messages if m.startswith("bias_judgements.domain: allowed values")
    )
    assert level("bias_judgements: field 'domain_label' added") == "minor"
    # the same values: no row of 0.1.0 removed or changed
    assert all(not r.rows_removed and not r.rows_changed for r in diff.resources)


def test_diff_from_0_1_0_via_cli(
    v010: Path, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["diff", str(v010), str(base)]) == 0  # 1.0.0 is a major bump
    out = " ".join(capsys.readouterr().out.split())
    assert "Required bump: major (the change removes a field); minimum version 1.0.0" in out
    assert "more change(s)" not in out  # every schema change is printed
    data = json.loads(v010.read_text(encoding="utf-8"))
    assert data["version"] == "0.1.0"


def test_enum_replaced_by_pattern(base: Path, pr: Path) -> None:
    def to_pattern(pattern: str) -> Callable[[dict[str, Any]], None]:
        def edit(schema: dict[str, Any]) -> None:
            constraints = field_of(schema, "design")["constraints"]
            constraints.pop("enum", None)
            constraints["pattern"] = pattern

        return edit

    edit_schema(pr.parent, "studies", to_pattern("^[a-z_]+$"))  # every design still allowed
    diff = diff_packages(base, pr)
    assert diff.required == "minor" and diff.reason == "loosens a constraint"
    (change,) = [
        c for c in diff.changes if c.field == "design" and c.kind != "documentation_changed"
    ]
    assert change.message.startswith("studies.design: allowed values enum [rct, ")
    assert 'pattern "^[a-z_]+$" (every value allowed before is still allowed)' in change.message
    shutil.copyfile(
        base.parent / "schemas/studies.schema.json", pr.parent / "schemas/studies.schema.json"
    )
    edit_schema(pr.parent, "studies", to_pattern("^(rct|cohort)$"))
    diff = diff_packages(base, pr)
    assert diff.required == "major" and diff.reason == "makes a constraint stricter"
    (change,) = [c for c in diff.changes if c.field == "design"]
    assert "no longer allowed: non_randomised_controlled, case_control, single_arm" in (
        change.message
    )


def test_pattern_replaced_by_enum_is_stricter(base: Path, pr: Path) -> None:
    def edit(schema: dict[str, Any]) -> None:
        constraints = field_of(schema, "outcome_id")["constraints"]
        constraints["enum"] = ["meld"]

    edit_schema(pr.parent, "outcomes", edit)
    diff = diff_packages(base, pr)
    assert diff.required == "major" and diff.reason == "makes a constraint stricter"


def test_added_and_removed_resources_list_their_rows(base: Path, pr: Path) -> None:
    data = json.loads(pr.read_text(encoding="utf-8"))
    data["resources"] = [r for r in data["resources"] if r["name"] != "comparisons"]
    pr.write_text(json.dumps(data), encoding="utf-8")
    diff = diff_packages(base, pr)
    comparisons = next(r for r in diff.resources if r.name == "comparisons")
    assert comparisons.status == "removed" and comparisons.key_fields == ["comparison_id"]
    assert {"comparison_id": "lin2017_msc_vs_control"} in comparisons.rows_removed
    assert diff.required == "major" and diff.reason == "removes a resource"
    back = diff_packages(pr, base)
    comparisons = next(r for r in back.resources if r.name == "comparisons")
    assert comparisons.status == "added"
    assert {"comparison_id": "lin2017_msc_vs_control"} in comparisons.rows_added
    assert back.required == "minor" and back.reason == "adds a resource"


def test_extension_declared_or_dropped(base: Path, pr: Path) -> None:
    data = json.loads(pr.read_text(encoding="utf-8"))
    data["extensions"] = []
    data["resources"] = [r for r in data["resources"] if r["name"] != "msc_arms"]
    pr.write_text(json.dumps(data), encoding="utf-8")
    diff = diff_packages(base, pr)
    assert diff.required == "major"
    kinds = {c.kind for c in diff.changes}
    assert {"extension_removed", "resource_removed"} <= kinds
    assert any(c.message == "descriptor: extension 'msc' no longer declared" for c in diff.changes)
    back = diff_packages(pr, base)
    assert back.required == "minor"
    assert any(c.message == "descriptor: extension 'msc' declared" for c in back.changes)


def test_same_position_is_not_a_rename_when_values_are_lost(base: Path, pr: Path) -> None:
    """A field replaced by an unrelated one at the same place (values not carried over)
    is a removal and an addition, not a rename."""
    root = pr.parent
    edit_schema(root, "studies", lambda s: field_of(s, "country").update(name="region"))

    def replace(rows: list[list[str]]) -> None:
        column = rows[0].index("country")
        rows[0][column] = "region"
        for row in rows[1:]:
            row[column] = ""

    edit_csv(root / "data/studies.csv", replace)
    rebuild(root)
    diff = diff_packages(base, pr)
    kinds = {(c.kind, c.field) for c in diff.changes}
    assert ("field_removed", "country") in kinds and ("field_added", "region") in kinds
    assert not any(c.kind == "field_renamed" for c in diff.changes)
