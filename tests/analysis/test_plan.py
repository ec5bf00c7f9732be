"""The analysis plan: models, JSON Schema (generated, never stale), the default plan."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from trialpool.analysis.plan import (
    AnalysisPlan,
    LeaveOutHeterogeneous,
    PlanError,
    auto_plan,
    describe_rule,
    load_plan,
    parse_plan,
    plan_json_schema,
    rule_id,
)

REPO = Path(__file__).resolve().parents[2]
PLAN = REPO / "analysis" / "plan.json"
SCHEMA = REPO / "schemas" / "analysis-plan.schema.json"


def _script() -> Any:
    spec = importlib.util.spec_from_file_location(
        "make_plan_schema", REPO / "scripts" / "make_plan_schema.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _minimal(**changes: Any) -> dict[str, Any]:
    analysis = {
        "id": "meld-4w",
        "title": "MELD at 4 weeks",
        "outcome": "meld",
        "outcome_label": "MELD score",
        "timepoint_weeks": 4,
        "measure": "MD",
        "lower_is_better": True,
    }
    analysis.update(changes)
    return {"title": "t", "analyses": [analysis]}


def test_schema_file_is_not_stale() -> None:
    assert SCHEMA.read_text(encoding="utf-8") == _script().render(), (
        "schemas/analysis-plan.schema.json is stale: run python scripts/make_plan_schema.py"
    )


def test_schema_check_mode_passes() -> None:
    assert _script().main(["--check"]) == 0


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(plan_json_schema())


def test_default_plan_validates_against_json_schema() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.validate(json.loads(PLAN.read_text(encoding="utf-8")), schema)


def test_default_plan_loads() -> None:
    plan = load_plan(PLAN)
    assert isinstance(plan, AnalysisPlan)
    assert plan.audited_source_id == "lu2025"


def test_default_plan_mirrors_the_review() -> None:
    plan = load_plan(PLAN)
    d = plan.defaults
    assert d.designs == ["rct"] and d.all_designs_variant
    assert d.method == "REML" and d.hksj is False
    by = {(a.outcome, a.timepoint_weeks, a.subgroup_by) for a in plan.analyses}
    assert ("meld", 4, None) in by and ("meld", 24, None) in by
    assert ("meld", None, "timepoint") in by
    for tp in (4, 24):
        alb = next(a for a in plan.analyses if a.outcome == "alb" and a.timepoint_weeks == tp)
        assert any(isinstance(r, LeaveOutHeterogeneous) for r in alb.sensitivity)
    assert plan.caveats, "the default plan states what the sources do not give"
    outcomes = {a.outcome for a in plan.analyses}
    assert {"inr", "alt", "tbil", "adverse_event", "serious_adverse_event", "death"} <= outcomes
    assert {"death_mof_or_infection", "severe_infection"} <= outcomes


def test_default_plan_outcomes_are_in_the_package_vocabulary() -> None:
    """Every analysis of the bundled plan names an outcome of data/outcomes.csv, of a
    per-arm data type (the vocabulary is data since 1.0, not a schema enum)."""
    with (REPO / "data" / "outcomes.csv").open(encoding="utf-8", newline="") as handle:
        vocab = {r["outcome_id"]: r["data_type"] for r in csv.DictReader(handle)}
    for analysis in load_plan(PLAN).analyses:
        assert vocab.get(analysis.outcome) in ("continuous", "dichotomous"), analysis.id


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"title": "t"}, "analyses"),  # an empty list is allowed: a review of study data only
        (_minimal(measure="XX"), "measure"),
        (_minimal(id="Bad Id"), "id"),
        (_minimal(sensitivity=[{"rule": "by_hand", "studies": ["a"]}]), "sensitivity"),
        (_minimal(subgroup_timepoints=[4]), "subgroup_timepoints"),
        (_minimal(subgroup_by="timepoint"), "timepoint_weeks"),
        (_minimal(unknown_key=1), "unknown_key"),
    ],
)
def test_invalid_plans_give_one_line(data: dict[str, Any], fragment: str) -> None:
    with pytest.raises(PlanError) as info:
        parse_plan(data, origin="p.json")
    message = str(info.value)
    assert "\n" not in message and message.startswith("p.json: invalid analysis plan")
    assert fragment in message


def test_duplicate_ids_refused() -> None:
    data = _minimal()
    data["analyses"].append(dict(data["analyses"][0]))
    with pytest.raises(PlanError, match="used twice"):
        parse_plan(data)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="file not found"):
        load_plan(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(PlanError, match="malformed JSON at line 1"):
        load_plan(bad)


def test_resolved_settings_and_overrides() -> None:
    plan = parse_plan(
        {
            "title": "t",
            "defaults": {"method": "DL", "hksj": True, "all_designs_variant": False},
            "analyses": [
                _minimal()["analyses"][0],
                {
                    **_minimal()["analyses"][0],
                    "id": "b",
                    "method": "PM",
                    "hksj": False,
                    "all_designs_variant": True,
                },
            ],
        }
    )
    a, b = plan.analyses
    assert (plan.method_for(a), plan.hksj_for(a), plan.all_designs_for(a)) == ("DL", True, False)
    assert (plan.method_for(b), plan.hksj_for(b), plan.all_designs_for(b)) == ("PM", False, True)


def test_rules_are_stated_in_words() -> None:
    plan = load_plan(PLAN)
    for analysis in plan.analyses:
        for rule in analysis.sensitivity:
            assert describe_rule(rule)
            assert rule_id(rule).replace("-", "").replace(".", "").isalnum()


def test_auto_plan() -> None:
    plan = auto_plan(
        [
            ("meld", 4.0, "continuous", True),
            ("alb", 4.0, "continuous", False),
            ("death", 24.0, "dichotomous", True),
        ],
        title="auto",
    )
    assert [(a.id, a.measure) for a in plan.analyses] == [
        ("meld-4w", "MD"),
        ("alb-4w", "SMD"),
        ("death-24w", "RR"),
    ]
    with pytest.raises(PlanError, match="no outcome rows"):
        auto_plan([], title="auto")
