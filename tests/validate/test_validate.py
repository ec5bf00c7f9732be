"""`trialpool validate`: one broken package per rule, the valid fixture, the bundled package.

Each broken case is the valid fixture (tests/fixtures/valid_minimal + the real schemas)
with one edit. ``trialpool validate`` must exit 1 and name the rule, file, row and
field; frictionless must fail too exactly when the rule is a Table Schema rule.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import trialpool.cli as cli_module
from conftest import REPO, CsvEdit, add_row, drop_rows, set_cell
from trialpool.validate import ValidationIssue, print_report, validate_package
from trialpool.validate import rules as checks_rules
from trialpool.validate.summary import study_ids_with_design

VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Case:
    """One broken package: edits, and the issue it must produce."""

    name: str
    rule: str
    file: str | None
    row: int | None
    field: str | None
    table_schema: bool  # frictionless must fail as well
    edits: dict[str, CsvEdit] = field(default_factory=dict)
    edit_descriptor: Callable[[dict[str, Any]], None] | None = None


def _hash(resource: str) -> Callable[[dict[str, Any]], None]:
    def edit(descriptor: dict[str, Any]) -> None:
        for res in descriptor["resources"]:
            if res["name"] == resource:
                res["hash"] = "sha256:" + "0" * 64

    return edit


CASES = [
    # --- Table Schema rules: frictionless fails too
    Case(
        "duplicate primary key",
        "primary-key",
        "data/arms.csv",
        6,
        "study_id,arm_id",
        True,
        {"arms": add_row({}, like=2)},
    ),
    Case(
        "dangling foreign key (source)",
        "foreign-key",
        "data/arms.csv",
        3,
        "source_id",
        True,
        {"arms": set_cell(3, "source_id", "nowhere")},
    ),
    Case(
        "outcome row names an unknown arm",
        "foreign-key",
        "data/continuous_outcomes.csv",
        2,
        "study_id,arm_id",
        True,
        {"continuous_outcomes": set_cell(2, "arm_id", "ghost")},
    ),
    Case(
        "value outside an enum",
        "constraint-error",
        "data/studies.csv",
        2,
        "design",
        True,
        {"studies": set_cell(2, "design", "quasi_experiment")},
    ),
    Case(
        "not an integer",
        "type-error",
        "data/continuous_outcomes.csv",
        2,
        "n",
        True,
        {"continuous_outcomes": set_cell(2, "n", "many")},
    ),
    Case(
        "pattern",
        "constraint-error",
        "data/sources.csv",
        2,
        "doi",
        True,
        {"sources": set_cell(2, "doi", "not a doi")},
    ),
    Case(
        "required value empty",
        "constraint-error",
        "data/dichotomous_outcomes.csv",
        2,
        "locator",
        True,
        {"dichotomous_outcomes": set_cell(2, "locator", "")},
    ),
    Case(
        "below minimum",
        "constraint-error",
        "data/dichotomous_outcomes.csv",
        2,
        "events",
        True,
        {"dichotomous_outcomes": set_cell(2, "events", "-1")},
    ),
    Case(
        "hash does not match the file",
        "hash-count",
        "data/arms.csv",
        None,
        None,
        True,
        edit_descriptor=_hash("arms"),
    ),
    # --- trialpool rules: beyond Table Schema, frictionless passes
    Case(
        "study without a comparison",
        "study-without-comparison",
        "data/studies.csv",
        2,
        "study_id",
        False,
        {"comparisons": drop_rows(2)},
    ),
    Case(
        "comparison of an arm with itself",
        "comparison-same-arm",
        "data/comparisons.csv",
        3,
        "control_arm_id",
        False,
        {"comparisons": set_cell(3, "control_arm_id", "msc")},
    ),
    Case(
        "the same comparison twice under one label",
        "duplicate-comparison",
        "data/comparisons.csv",
        4,
        "comparison_id",
        False,
        {"comparisons": add_row({"comparison_id": "beta2021_again", "primary": "false"}, like=3)},
    ),
    Case(
        "two primary comparisons in one study",
        "primary-comparison",
        "data/comparisons.csv",
        4,
        "primary",
        False,
        {
            "arms": add_row({"arm_id": "msc_high"}, like=2),
            "msc_arms": add_row({"arm_id": "msc_high"}, like=2),
            "comparisons": add_row(
                {"comparison_id": "alpha2020_high_vs_control", "experimental_arm_id": "msc_high"},
                like=2,
            ),
        },
    ),
    Case(
        "per-arm row of an outcome of the other type",
        "outcome-wrong-type",
        "data/dichotomous_outcomes.csv",
        4,
        "outcome",
        False,
        {"dichotomous_outcomes": set_cell(4, "outcome", "alb")},
    ),
    Case(
        "published result with an unknown outcome code",
        "unknown-outcome",
        "data/published_results.csv",
        2,
        "outcome_code",
        False,
        {"published_results": set_cell(2, "outcome_code", "meld_score")},
    ),
    Case(
        "effect estimate with a zero SE",
        "se-not-positive",
        "data/effect_estimates.csv",
        2,
        "se",
        False,
        {
            "effect_estimates": lambda t: (
                t + "beta2021_msc_vs_control,death,week_12,12,OR,true,-1.1,0,20,20,test_b,Results,"
                "primary,,\n"
            )
        },
    ),
    Case(
        "events exceed total",
        "events-exceed-total",
        "data/dichotomous_outcomes.csv",
        2,
        "events",
        False,
        {"dichotomous_outcomes": set_cell(2, "events", "31")},
    ),
    Case(
        "n_analysed exceeds n_randomised",
        "n-analysed-exceeds-randomised",
        "data/arms.csv",
        2,
        "n_analysed",
        False,
        {"arms": set_cell(2, "n_analysed", "31")},
    ),
    Case(
        "outcome row names an outcome not defined",
        "foreign-key",
        "data/continuous_outcomes.csv",
        3,
        "outcome",
        True,
        {"continuous_outcomes": set_cell(3, "outcome", "bilirubin")},
    ),
    Case(
        "comparison names an arm of another study",
        "foreign-key",
        "data/comparisons.csv",
        3,
        "study_id,experimental_arm_id",
        True,
        {
            "arms": add_row({"arm_id": "msc_high"}, like=2),
            "msc_arms": add_row({"arm_id": "msc_high"}, like=2),
            "comparisons": set_cell(3, "experimental_arm_id", "msc_high"),
        },
    ),
    Case(
        "outcome data type outside the vocabulary",
        "constraint-error",
        "data/outcomes.csv",
        2,
        "data_type",
        True,
        {"outcomes": set_cell(2, "data_type", "binary")},
    ),
    Case(
        "timepoint code not a code",
        "constraint-error",
        "data/dichotomous_outcomes.csv",
        3,
        "timepoint",
        True,
        {"dichotomous_outcomes": set_cell(3, "timepoint", "Week 24")},
    ),
    Case(
        "bias domain not a code",
        "constraint-error",
        "data/bias_judgements.csv",
        4,
        "domain",
        True,
        {"bias_judgements": set_cell(4, "domain", "Confounding bias")},
    ),
    Case(
        "derived row without derivation",
        "derived-without-derivation",
        "data/continuous_outcomes.csv",
        8,
        "derivation",
        False,
        {"continuous_outcomes": set_cell(8, "derivation", "")},
    ),
    Case(
        "outcome value with a blank locator",
        "missing-locator",
        "data/continuous_outcomes.csv",
        2,
        "locator",
        False,
        {"continuous_outcomes": set_cell(2, "locator", "   ")},
    ),
    Case(
        "zero SD",
        "sd-not-positive",
        "data/continuous_outcomes.csv",
        2,
        "sd",
        False,
        {"continuous_outcomes": set_cell(2, "sd", "0")},
    ),
    Case(
        "zero SE",
        "se-not-positive",
        "data/continuous_outcomes.csv",
        6,
        "se",
        False,
        {"continuous_outcomes": set_cell(6, "se", "0.0")},
    ),
    Case(
        "statistic without its values",
        "missing-statistic-value",
        "data/continuous_outcomes.csv",
        2,
        "sd",
        False,
        {"continuous_outcomes": set_cell(2, "sd", "")},
    ),
    Case(
        "q1 above the median",
        "quartiles-out-of-order",
        "data/continuous_outcomes.csv",
        4,
        "median",
        False,
        {"continuous_outcomes": set_cell(4, "q1", "160")},
    ),
    Case(
        "min above the median",
        "range-out-of-order",
        "data/continuous_outcomes.csv",
        7,
        "median",
        False,
        {"continuous_outcomes": set_cell(7, "min", "30")},
    ),
    Case(
        "infinite number",
        "non-finite-number",
        "data/continuous_outcomes.csv",
        2,
        "mean",
        False,
        {"continuous_outcomes": set_cell(2, "mean", "inf")},
    ),
    Case(
        "timepoint beyond follow-up",
        "timepoint-beyond-follow-up",
        "data/dichotomous_outcomes.csv",
        2,
        "timepoint_weeks",
        False,
        {"dichotomous_outcomes": set_cell(2, "timepoint_weeks", "30")},
    ),
    Case(
        "claim about an unknown study",
        "unknown-study",
        "data/claims.csv",
        4,
        "study_id",
        False,
        {"claims": set_cell(4, "study_id", "delta2023")},
    ),
    Case(
        "judgement not a level of its tool",
        "judgement-not-for-tool",
        "data/bias_judgements.csv",
        2,
        "judgement",
        False,
        {"bias_judgements": set_cell(2, "judgement", "unclear")},
    ),
    Case(
        "excluded record without reason",
        "missing-reason",
        "data/screening.csv",
        4,
        "reason",
        False,
        {"screening": set_cell(4, "reason", "")},
    ),
    Case(
        "control arm without comparator type",
        "missing-comparator-type",
        "data/arms.csv",
        3,
        "comparator_type",
        False,
        {"arms": set_cell(3, "comparator_type", "")},
    ),
    Case(
        "control arm with comparator type not_applicable",
        "missing-comparator-type",
        "data/arms.csv",
        5,
        "comparator_type",
        False,
        {"arms": set_cell(5, "comparator_type", "not_applicable")},
    ),
    Case(
        "intervention arm with a comparator type",
        "comparator-type-on-intervention",
        "data/arms.csv",
        2,
        "comparator_type",
        False,
        {"arms": set_cell(2, "comparator_type", "placebo")},
    ),
    Case(
        "comparator type outside the vocabulary",
        "constraint-error",
        "data/arms.csv",
        3,
        "comparator_type",
        True,
        {"arms": set_cell(3, "comparator_type", "sham")},
    ),
    Case(
        "dose without unit",
        "missing-dose-unit",
        "data/msc_arms.csv",
        2,
        "dose_unit",
        False,
        {"msc_arms": set_cell(2, "dose_unit", "")},
    ),
    Case(
        "dose range reversed",
        "dose-range-reversed",
        "data/msc_arms.csv",
        4,
        "dose_per_infusion_max",
        False,
        {"msc_arms": set_cell(4, "dose_per_infusion_max", "500000")},
    ),
    Case(
        "dose range without lower bound",
        "dose-range-without-lower",
        "data/msc_arms.csv",
        4,
        "dose_per_infusion",
        False,
        {"msc_arms": set_cell(4, "dose_per_infusion", "")},
    ),
    Case(
        "dose outside the extension's vocabulary",
        "constraint-error",
        "data/msc_arms.csv",
        2,
        "dose_unit",
        True,
        {"msc_arms": set_cell(2, "dose_unit", "mg")},
    ),
    Case(
        "required text only whitespace",
        "blank-value",
        "data/outcomes.csv",
        3,
        "label",
        False,
        {"outcomes": set_cell(3, "label", "   ")},
    ),
]


def run_cli(*args: str) -> tuple[int, str]:
    """Run ``trialpool`` in-process with a captured console; return (exit code, stdout)."""
    buffer = io.StringIO()
    saved = cli_module.console
    cli_module.console = Console(file=buffer, width=200, highlight=False)
    try:
        code = cli_module.main(list(args))
    finally:
        cli_module.console = saved
    return code, buffer.getvalue()


def frictionless_valid(descriptor: Path) -> bool:
    """frictionless' own verdict, in-process (the same engine as its CLI)."""
    from frictionless import Package

    return bool(Package(str(descriptor)).validate().valid)


def test_valid_fixture(make_package: Callable[..., Path]) -> None:
    descriptor = make_package()
    report = validate_package(descriptor)
    assert report.valid, [i.line() for i in report.issues]
    assert frictionless_valid(descriptor)
    summary = report.summary
    assert summary["studies"]["total"] == 2
    assert summary["studies"]["by_design"]["rct"] == 1
    assert summary["arms"] == 4
    assert summary["continuous_outcomes"]["by_verification"] == {
        "primary": 4,
        "secondary": 2,
        "derived": 1,
    }
    assert summary["dichotomous_outcomes"]["total"] == 4
    assert summary["claims"] == {"total": 3, "conflicting": 1, "conflicting_without_resolution": 0}
    assert summary["screening"]["by_decision"]["ongoing"] == 1
    code, out = run_cli("validate", str(descriptor))
    assert code == 0
    assert "VALID" in out and "studies: 2 (rct 1, non_randomised_controlled 1)" in out


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_broken_case(case: Case, make_package: Callable[..., Path]) -> None:
    descriptor = make_package(edits=case.edits, edit_descriptor=case.edit_descriptor)
    code, out = run_cli("validate", str(descriptor), "--json")
    assert code == 1
    payload = json.loads(out)
    assert payload["valid"] is False
    found = [
        i
        for i in payload["issues"]
        if (i["rule"], i["file"], i["row"], i["field"])
        == (case.rule, case.file, case.row, case.field)
    ]
    assert found, payload["issues"]
    # the human output names rule, file, row and field on one line
    buffer = io.StringIO()
    report = validate_package(descriptor)
    print_report(report, Console(file=buffer, width=100), as_json=False)
    assert ValidationIssue(**found[0]).line() in buffer.getvalue().splitlines()
    # frictionless agrees exactly when the rule is a Table Schema rule
    assert frictionless_valid(descriptor) is (not case.table_schema)
    if case.table_schema:
        assert found[0]["source"] == "frictionless"
    else:
        assert found[0]["source"] == "trialpool"
        assert case.rule in checks_rules.RULES


def test_descriptor_rule(make_package: Callable[..., Path]) -> None:
    pytest.importorskip("trialpool.validate.descriptor")

    def edit(descriptor: dict[str, Any]) -> None:
        descriptor["version"] = "one"

    report = validate_package(make_package(edit_descriptor=edit))
    assert [i.rule for i in report.issues] == ["descriptor-rule"]
    assert report.issues[0].field == "$.version"


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/etc/passwd", "absolute path"),
        ("https://example.org/x.csv", "remote path"),
        ("../outside.csv", "leaves the package folder"),
    ],
)
def test_unsafe_path_refused(make_package: Callable[..., Path], path: str, words: str) -> None:
    def edit(descriptor: dict[str, Any]) -> None:
        descriptor["resources"][0]["path"] = path

    report = validate_package(make_package(edit_descriptor=edit))
    assert not report.valid
    assert [i.rule for i in report.issues] == ["package"]
    assert words in report.issues[0].message


def test_malformed_json(tmp_path: Path) -> None:
    descriptor = tmp_path / "datapackage.json"
    descriptor.write_text("{not json", encoding="utf-8")
    code, out = run_cli("validate", str(descriptor))
    assert code == 1
    assert "malformed JSON" in out and "Traceback" not in out


def test_statistic_columns_cover_the_schema() -> None:
    schema = json.loads((REPO / "schemas/continuous_outcomes.schema.json").read_text("utf-8"))
    statistic = next(f for f in schema["fields"] if f["name"] == "statistic")
    assert set(statistic["constraints"]["enum"]) == set(checks_rules.STATISTIC_COLUMNS)
    names = {f["name"] for f in schema["fields"]}
    assert all(set(cols) <= names for cols in checks_rules.STATISTIC_COLUMNS.values())


def test_tool_vocabulary_read_from_schema(make_package: Callable[..., Path]) -> None:
    from trialpool.package.loader import load_package

    bias = load_package(REPO / "datapackage.json").resources["bias_judgements"]
    judgement = checks_rules.tool_vocabulary(bias, "judgement")
    assert judgement is not None
    assert judgement["rob2"] == {"low", "some_concerns", "high", "not_applicable"}
    assert set().union(*judgement.values()) == set(checks_rules.enum_of(bias, "judgement"))
    # core 1.0: a domain is a code (a review's own domains are allowed, with domain_label),
    # not an enum, so domain-not-for-tool does not apply; the pattern is Table Schema's
    assert checks_rules.enum_of(bias, "domain") == []
    assert checks_rules.tool_vocabulary(bias, "domain") is None
    descriptor = make_package(
        edits={
            "bias_judgements": set_cell(4, "domain", "random_sequence_generation"),
        }
    )
    assert validate_package(descriptor).valid  # a standard code of another tool is a code
    own = make_package(
        edits={
            "bias_judgements": add_row(
                {"domain": "blinding_participants", "domain_label": "Blinding: participants"}
            )
        }
    )
    assert validate_package(own).valid


def test_domain_rule_applies_when_a_schema_lists_domains_per_tool(
    make_package: Callable[..., Path],
) -> None:
    """domain-not-for-tool is still read from a schema that lists each tool's domains in an
    enum (such a schema is not the core's: schema-mismatch too)."""
    from trialpool.package.loader import load_package

    descriptor = make_package(
        edits={"bias_judgements": set_cell(4, "domain", "random_sequence_generation")}
    )
    path = descriptor.parent / "schemas" / "bias_judgements.schema.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    domain = next(f for f in schema["fields"] if f["name"] == "domain")
    standard = domain["description"].split("The standard domains are: ")[1].split(". ")[0]
    domain["description"] = standard
    codes = sorted(
        {c.strip() for part in standard.split(";") for c in part.split(":")[1].split(",")}
    )
    domain["constraints"] = {"required": True, "enum": codes}
    path.write_text(json.dumps(schema), encoding="utf-8")
    bias = load_package(descriptor).resources["bias_judgements"]
    vocab = checks_rules.tool_vocabulary(bias, "domain")
    assert vocab is not None
    assert "overall" in vocab["robins_i"] and "random_sequence_generation" in vocab["rob1"]
    assert set().union(*vocab.values()) == set(codes)
    issues = validate_package(descriptor).issues
    found = [i for i in issues if i.rule == "domain-not-for-tool"]
    assert [(i.file, i.row, i.field) for i in found] == [("data/bias_judgements.csv", 4, "domain")]
    assert {i.rule for i in issues} == {"domain-not-for-tool", "schema-mismatch"}


def test_comparator_type_rules(make_package: Callable[..., Path]) -> None:
    # unclear is an answer; an intervention arm may leave the field empty (row 4)
    descriptor = make_package(edits={"arms": set_cell(3, "comparator_type", "unclear")})
    report = validate_package(descriptor)
    assert report.valid, [i.line() for i in report.issues]
    # a missing value is one line naming file, row and field, with the allowed codes
    descriptor = make_package(edits={"arms": set_cell(5, "comparator_type", "")})
    (issue,) = validate_package(descriptor).issues
    assert issue.line().startswith(
        "data/arms.csv: row 5: field comparator_type: arm control of study beta2021 is the "
        "control of a comparison"
    )
    assert "unclear" in issue.line() and "not_applicable" not in issue.message.split(":")[-1]
    # the control is whichever arm a comparison names: swap the two arms of beta2021
    swap = set_cell(3, "experimental_arm_id", "control")
    descriptor = make_package(
        edits={"comparisons": lambda t: set_cell(3, "control_arm_id", "msc")(swap(t))}
    )
    issues = validate_package(descriptor).issues
    assert [(i.rule, i.row) for i in issues] == [
        ("missing-comparator-type", 4),  # beta2021's msc arm (empty) is now the control
        ("comparator-type-on-intervention", 5),  # its control arm (standard_care) is not
    ]

    # a package whose arms schema has no comparator_type is not held to the rule; it no
    # longer conforms to the core (schema-mismatch), and that is the only issue
    descriptor = make_package(edits={"arms": _drop_column("comparator_type")})
    target = descriptor.parent / "schemas/arms.schema.json"
    schema = json.loads(target.read_text(encoding="utf-8"))
    schema["fields"] = [f for f in schema["fields"] if f["name"] != "comparator_type"]
    target.write_text(json.dumps(schema), encoding="utf-8")
    report = validate_package(descriptor)
    lines = [i.line() for i in report.issues]
    assert [(i.rule, i.file, i.field) for i in report.issues] == [
        ("schema-mismatch", "data/arms.csv", "comparator_type")
    ], lines


def _drop_column(name: str) -> CsvEdit:
    def edit(text: str) -> str:
        rows = list(csv.reader(io.StringIO(text)))
        index = rows[0].index(name)
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(r[:index] + r[index + 1 :] for r in rows)
        return out.getvalue()

    return edit


def test_study_ids_with_design(make_package: Callable[..., Path]) -> None:
    from trialpool.package.loader import load_package

    studies = load_package(make_package()).table("studies")
    assert study_ids_with_design(studies) == {"alpha2020"}


# --- the bundled package -----------------------------------------------------------


@pytest.mark.frictionless
def test_bundled_package_frictionless_cli() -> None:
    result = subprocess.run(
        [str(VENV_BIN / "frictionless"), "validate", "datapackage.json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:]


def test_bundled_descriptor_is_fresh() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/build_descriptor.py", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_bundled_package_valid() -> None:
    report = validate_package(REPO / "datapackage.json")
    assert report.valid, "\n".join(i.line() for i in report.issues[:50])


@pytest.mark.frictionless
def test_cli_subprocess_no_traceback(make_package: Callable[..., Path]) -> None:
    descriptor = make_package(edits={"arms": drop_rows(3)})
    result = subprocess.run(
        [str(VENV_BIN / "trialpool"), "validate", str(descriptor)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    # alpha2020's control arm is gone: its comparison names an arm that is not there
    assert "data/comparisons.csv: row 2: field study_id,control_arm_id:" in result.stdout
