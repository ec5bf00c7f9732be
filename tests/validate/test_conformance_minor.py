"""A package made under an earlier minor version of the core conforms (issue 15): the core
grows its vocabularies in minor versions (1.1.0 added the judgement ``not_applicable`` and
the tool ``other``), so a schema copy whose ``enum`` is a subset of the core's is accepted;
any other difference is still a schema mismatch."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import build_package
from trialpool.validate import validate_package


def _edit_judgement_enum(descriptor: Path, values: list[str]) -> None:
    schema_path = descriptor.parent / "schemas" / "bias_judgements.schema.json"
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    field = next(f for f in schema["fields"] if f["name"] == "judgement")
    field["constraints"]["enum"] = values
    schema_path.write_text(json.dumps(schema, indent=2), encoding="utf-8")


def test_core_1_0_vocabulary_conforms(tmp_path: Path) -> None:
    descriptor = build_package(tmp_path)
    core_1_0 = ["low", "unclear", "some_concerns", "high", "moderate", "serious", "critical",
                "no_information"]  # fmt: skip
    _edit_judgement_enum(descriptor, core_1_0)
    report = validate_package(descriptor)
    assert report.valid, [i.line() for i in report.issues]


def test_a_value_outside_the_core_vocabulary_is_a_mismatch(tmp_path: Path) -> None:
    descriptor = build_package(tmp_path)
    _edit_judgement_enum(descriptor, ["low", "high", "probably_low"])
    report = validate_package(descriptor)
    mismatches = [i for i in report.issues if i.rule == "schema-mismatch"]
    assert [(i.field, "probably_low" in i.message) for i in mismatches] == [("judgement", True)]
