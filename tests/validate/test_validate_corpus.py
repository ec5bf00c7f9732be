"""Bad input never crashes or loses data: a corpus of broken packages.

Each case is one fault planted in the valid fixture (or, for encodings, a committed
file from tests/fixtures/bad). For every case ``trialpool validate`` exits 1, prints a
one-line message naming the file (and the row and field where there is one), no
traceback, and leaves the package byte-for-byte as it was. Cases of the core schema 1.0
rules (comparisons, outcomes as data, effect estimates, conformance to the core and its
extensions) also name the exact issue: rule, file, row and field. The fast path
(``trialpool.validate.fast``) and frictionless (the reference) must report the same
Table Schema errors at the same (resource, row, field) locations, and both engines give
the same verdict and the same issues overall.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import trialpool.cli as cli_module
from conftest import FIXTURES, REPO, CsvEdit, add_row, build_package, drop_rows, set_cell
from trialpool.package.loader import load_package
from trialpool.validate import ValidationIssue, tableschema, validate_package
from trialpool.validate import fast as fastvalidate

Setup = Callable[[Path], Path]


#: an exact issue: (rule, file, row, field)
Where = tuple[str, str | None, int | None, str | None]


@dataclass(frozen=True)
class Bad:
    """A broken package: how to make it, and what the one-line message must contain."""

    name: str
    setup: Setup
    expect: tuple[str, ...]  # all on one line of the output
    exit_code: int = 1
    where: Where | None = None  # the issue it must produce, exactly


def edits(**changes: Any) -> Setup:
    """Setup: the valid fixture with CSV edits (resource name -> edit)."""
    return lambda dest: build_package(dest, edits=changes)


def descriptor_edit(fn: Callable[[dict[str, Any]], None]) -> Setup:
    return lambda dest: build_package(dest, edit_descriptor=fn)


def resource_set(index: int, key: str, value: Any) -> Setup:
    def fn(descriptor: dict[str, Any]) -> None:
        descriptor["resources"][index][key] = value

    return descriptor_edit(fn)


def raw_descriptor(text: str) -> Setup:
    def setup(dest: Path) -> Path:
        path = build_package(dest)
        path.write_text(text, encoding="utf-8")
        return path

    return setup


def replace_file(resource: str, source: Path) -> Setup:
    """The valid fixture with one CSV replaced by a committed file (bytes as they are)."""

    def setup(dest: Path) -> Path:
        path = build_package(dest)
        shutil.copyfile(source, dest / "data" / f"{resource}.csv")
        _refresh_hashes(path)
        return path

    return setup


def _refresh_hashes(descriptor: Path) -> None:
    data = json.loads(descriptor.read_text("utf-8"))
    for res in data["resources"]:
        blob = (descriptor.parent / res["path"]).read_bytes()
        res["bytes"] = len(blob)
        res["hash"] = "sha256:" + hashlib.sha256(blob).hexdigest()
    descriptor.write_text(json.dumps(data, indent=2), encoding="utf-8")


def symlink_outside(dest: Path) -> Path:
    path = build_package(dest)
    outside = dest.parent / f"{dest.name}_outside.csv"
    shutil.copyfile(dest / "data/claims.csv", outside)
    (dest / "data/claims.csv").unlink()
    (dest / "data/claims.csv").symlink_to(outside)
    return path


def missing_file(dest: Path) -> Path:
    path = build_package(dest)
    (dest / "data/claims.csv").unlink()
    return path


def schema_edit(name: str, fn: Callable[[dict[str, Any]], None]) -> Setup:
    def setup(dest: Path) -> Path:
        path = build_package(dest)
        schema_path = dest / "schemas" / f"{name}.schema.json"
        schema = json.loads(schema_path.read_text("utf-8"))
        fn(schema)
        schema_path.write_text(json.dumps(schema), encoding="utf-8")
        return path

    return setup


def package(
    *,
    edits: dict[str, CsvEdit] | None = None,
    edit_descriptor: Callable[[dict[str, Any]], None] | None = None,
    schemas: dict[str, Callable[[dict[str, Any]], None]] | None = None,
) -> Setup:
    """Setup: CSV edits, a descriptor edit and schema edits (schema file -> edit; schema
    files are not hashed, so they can change after the descriptor is built)."""

    def setup(dest: Path) -> Path:
        path = build_package(dest, edits=edits, edit_descriptor=edit_descriptor)
        for rel, fn in (schemas or {}).items():
            schema_path = dest / "schemas" / rel
            schema = json.loads(schema_path.read_text("utf-8"))
            fn(schema)
            schema_path.write_text(json.dumps(schema), encoding="utf-8")
        return path

    return setup


def without_resources(*names: str) -> Callable[[dict[str, Any]], None]:
    """Descriptor edit: drop the named resources."""

    def fn(descriptor: dict[str, Any]) -> None:
        descriptor["resources"] = [r for r in descriptor["resources"] if r["name"] not in names]

    return fn


def set_extensions(value: list[str] | None) -> Callable[[dict[str, Any]], None]:
    """Descriptor edit: declare ``value`` as the extensions (None: no declaration)."""

    def fn(descriptor: dict[str, Any]) -> None:
        descriptor.pop("extensions", None)
        if value is not None:
            descriptor["extensions"] = value

    return fn


def both(*fns: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def fn(descriptor: dict[str, Any]) -> None:
        for f in fns:
            f(descriptor)

    return fn


def add_column(name: str, values: list[str]) -> CsvEdit:
    """Edit: append a column ``name`` with one value per data row."""

    def edit(text: str) -> str:
        lines = text.splitlines()
        assert len(lines) == len(values) + 1
        out = [f"{lines[0]},{name}"] + [f"{a},{b}" for a, b in zip(lines[1:], values, strict=True)]
        return "\n".join(out) + "\n"

    return edit


def add_msc_field_to_arms(schema: dict[str, Any]) -> None:
    """Schema edit: the msc extension's cell_source field, appended to arms."""
    msc = json.loads((REPO / "schemas/extensions/msc/msc_arms.schema.json").read_text("utf-8"))
    schema["fields"].append(next(f for f in msc["fields"] if f["name"] == "cell_source"))


def change_constraint(field: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def fn(schema: dict[str, Any]) -> None:
        spec = next(f for f in schema["fields"] if f["name"] == field)
        spec.setdefault("constraints", {})[key] = value

    return fn


def _exclusive_minimum(schema: dict[str, Any]) -> None:
    schema["fields"][5]["constraints"]["exclusiveMinimum"] = 0


def _lines(text: str) -> Callable[[str], str]:
    return lambda _: text


def _columns(fn: Callable[[list[str]], list[str]]) -> Callable[[str], str]:
    return lambda text: (
        "\n".join(",".join(fn(line.split(","))) for line in text.splitlines()) + "\n"
    )


CONT = "data/continuous_outcomes.csv"
DICH = "data/dichotomous_outcomes.csv"
ARMS = "data/arms.csv"
COMP = "data/comparisons.csv"
EFFECT = "data/effect_estimates.csv"
MSC = "data/msc_arms.csv"
DESCRIPTOR = "datapackage.json"

#: one study-level estimate (a log risk ratio); se 0 breaks se-not-positive
EFFECT_ROW = (
    "alpha2020_msc_vs_control,death,week_24,24,RR,true,-0.98,{se},30,30,test_a,Table 4,"
    "derived,log RR from the events of Table 4,\n"
)

CORPUS: list[Bad] = [
    # --- the descriptor
    Bad("malformed JSON", raw_descriptor("{not json"), ("datapackage.json", "malformed JSON")),
    Bad("empty JSON file", raw_descriptor(""), ("datapackage.json", "malformed JSON")),
    Bad("JSON not an object", raw_descriptor("[1, 2]"), ("must be a JSON object",)),
    Bad(
        "no resources",
        raw_descriptor('{"name": "x", "resources": []}'),
        ("'resources' must be a non-empty list",),
    ),
    Bad("resource without name", resource_set(0, "name", ""), ("'name' is missing",)),
    Bad("duplicate resource names", resource_set(1, "name", "sources"), ("used twice",)),
    Bad("absolute path", resource_set(0, "path", "/etc/passwd"), ("absolute path '/etc/passwd'",)),
    Bad(
        "URL path",
        resource_set(0, "path", "https://example.org/sources.csv"),
        ("remote path", "refused"),
    ),
    Bad(
        "path escapes with ../", resource_set(0, "path", "../sources.csv"), ("leaves the package",)
    ),
    Bad("path escapes by a symlink", symlink_outside, ("leaves the package folder (symlink)",)),
    Bad(
        "schema path absolute",
        resource_set(0, "schema", "/etc/hosts"),
        ("schema: absolute path",),
    ),
    Bad(
        "custom profile URL",
        descriptor_edit(lambda d: d.update(profile="https://example.org/profile.json")),
        ("profile", "refused"),
    ),
    Bad("resource path is a folder", resource_set(6, "path", "data"), ("is not a file",)),
    Bad("missing resource file", missing_file, ("data/claims.csv", "[scheme-error]")),
    Bad(
        "schema not valid for frictionless",
        schema_edit("continuous_outcomes", _exclusive_minimum),
        ("exclusiveMinimum", "[field-error]"),
    ),
    Bad(
        "hash does not match",
        descriptor_edit(lambda d: d["resources"][2].update(hash="sha256:" + "0" * 64)),
        ("data/arms.csv", "[hash-count]"),
    ),
    Bad(
        "bytes do not match",
        descriptor_edit(lambda d: d["resources"][2].update(bytes=1)),
        ("data/arms.csv", "[byte-count]"),
    ),
    # --- encodings and shape
    Bad(
        "Latin-1 file declared UTF-8",
        replace_file("studies", FIXTURES / "bad/latin1/studies.csv"),
        ("data/studies.csv", "could not be successfully decoded", "[encoding-error]"),
    ),
    Bad(
        "row with an extra cell",
        edits(arms=lambda t: t.replace("test_a,\n", "test_a,,extra\n", 1)),
        ("data/arms.csv: row 2:", "extra value", "[extra-cell]"),
    ),
    Bad(
        "row with missing cells",
        edits(arms=lambda t: t.replace(",test_a,\n", "\n", 1)),
        ("data/arms.csv: row 2: field source_id:", "[missing-cell]"),
    ),
    Bad(
        "missing column",
        edits(studies=_columns(lambda cells: cells[:-1])),
        ("data/studies.csv: row 1: field notes:", "[missing-label]"),
    ),
    Bad(
        "extra column",
        edits(studies=_columns(lambda cells: [*cells, "x"])),
        ("data/studies.csv: row 1: field x:", "[extra-label]"),
    ),
    Bad(
        "duplicated column",
        edits(studies=lambda t: t.replace("source_id,notes\n", "source_id,source_id\n", 1)),
        ("data/studies.csv: row 1:", "[duplicate-label]"),
    ),
    Bad(
        "header-only arms",
        edits(arms=lambda t: t.splitlines()[0] + "\n"),
        (f"{CONT}: row 2: field study_id,arm_id:", "[foreign-key]"),
    ),
    Bad(
        "zero-byte CSV",
        edits(claims=_lines("")),
        ("data/claims.csv", "the source is empty", "[source-error]"),
    ),
    Bad(
        "blank row",
        edits(arms=lambda t: t + "\n"),
        ("data/arms.csv: row 6:", "[blank-row]"),
    ),
    # --- keys
    Bad(
        "duplicate primary key",
        edits(arms=add_row({}, like=2)),
        ("data/arms.csv: row 6: field study_id,arm_id:", "[primary-key]"),
    ),
    Bad(
        "duplicate unique value",
        edits(sources=add_row({"kind": "review"}, like=2)),
        ("data/sources.csv: row 5: field source_id:", "[unique-error]"),
    ),
    Bad(
        "dangling foreign key",
        edits(studies=set_cell(3, "source_id", "nowhere")),
        ("data/studies.csv: row 3: field source_id:", "[foreign-key]"),
    ),
    Bad(
        "outcome row names an unknown arm",
        edits(dichotomous_outcomes=set_cell(5, "arm_id", "placebo")),
        (f"{DICH}: row 5: field study_id,arm_id:", "[foreign-key]"),
    ),
    # --- values
    Bad(
        "value outside an enum",
        edits(msc_arms=set_cell(3, "route", "oral")),
        (f"{MSC}: row 3: field route:", '"enum"', "[constraint-error]"),
        where=("constraint-error", MSC, 3, "route"),
    ),
    Bad(
        "value below the range",
        edits(studies=set_cell(2, "year", "1600")),
        ("data/studies.csv: row 2: field year:", '"minimum"', "[constraint-error]"),
    ),
    Bad(
        "value above the range",
        edits(continuous_outcomes=set_cell(2, "timepoint_weeks", "2000")),
        (f"{CONT}: row 2: field timepoint_weeks:", '"maximum"', "[constraint-error]"),
    ),
    Bad(
        "pattern",
        edits(claims=set_cell(2, "claim_id", "Alpha-1")),
        ("data/claims.csv: row 2: field claim_id:", '"pattern"', "[constraint-error]"),
    ),
    Bad(
        "NaN SD",
        edits(continuous_outcomes=set_cell(2, "sd", "NaN")),
        (f"{CONT}: row 2: field sd:", "[constraint-error]"),
    ),
    Bad(
        "infinite mean",
        edits(continuous_outcomes=set_cell(3, "mean", "inf")),
        (f"{CONT}: row 3: field mean:", "[non-finite-number]"),
    ),
    # --- numbers a float64 or an int64 cannot hold (Table Schema accepts them)
    Bad(
        "count beyond int64, written out in 401 digits",
        edits(dichotomous_outcomes=set_cell(3, "events", "1" + "0" * 400)),
        (
            f"{DICH}: row 3: field events:",
            "beyond the 64-bit integer range",
            "[integer-out-of-range]",
        ),
        where=("integer-out-of-range", DICH, 3, "events"),
    ),
    Bad(
        "count one past the largest int64",
        edits(arms=set_cell(3, "n_randomised", str(2**63))),
        (f"{ARMS}: row 3: field n_randomised:", "[integer-out-of-range]"),
        where=("integer-out-of-range", ARMS, 3, "n_randomised"),
    ),
    Bad(
        "count below the smallest int64",
        edits(
            effect_estimates=lambda t: (
                t + EFFECT_ROW.format(se="0.4").replace(",30,30,", f",{-(2**63) - 1},30,")
            )
        ),
        (f"{EFFECT}: row 2: field n_experimental:", "[integer-out-of-range]"),
        where=("integer-out-of-range", EFFECT, 2, "n_experimental"),
    ),
    Bad(
        "NaN mean",
        edits(continuous_outcomes=set_cell(2, "mean", "nan")),
        (f"{CONT}: row 2: field mean:", "mean is not a finite number", "[non-finite-number]"),
        where=("non-finite-number", CONT, 2, "mean"),
    ),
    Bad(
        "mean beyond the range of a float",
        edits(continuous_outcomes=set_cell(3, "mean", "1e400")),
        (
            f"{CONT}: row 3: field mean:",
            "beyond the range of a 64-bit float",
            "[non-finite-number]",
        ),
        where=("non-finite-number", CONT, 3, "mean"),
    ),
    Bad(
        "negative infinity in an effect estimate",
        edits(effect_estimates=lambda t: t + EFFECT_ROW.format(se="0.4").replace("-0.98", "-inf")),
        (f"{EFFECT}: row 2: field estimate:", "[non-finite-number]"),
        where=("non-finite-number", EFFECT, 2, "estimate"),
    ),
    Bad(
        "NA in an integer",
        edits(continuous_outcomes=set_cell(2, "n", "NA")),
        (f"{CONT}: row 2: field n:", "[type-error]"),
    ),
    Bad(
        "text in a number",
        edits(studies=set_cell(2, "follow_up_weeks", "about 24")),
        ("data/studies.csv: row 2: field follow_up_weeks:", "[type-error]"),
    ),
    Bad(
        "signalling NaN (frictionless itself crashes)",
        edits(continuous_outcomes=set_cell(2, "sd", "sNaN")),
        (f"{CONT}: row 2: field sd:", "[type-error]"),
    ),
    Bad(
        "not a boolean",
        edits(comparisons=set_cell(2, "primary", "yes")),
        (f"{COMP}: row 2: field primary:", "[type-error]"),
        where=("type-error", COMP, 2, "primary"),
    ),
    Bad(
        "empty string in a required field",
        edits(studies=set_cell(3, "label", "")),
        ("data/studies.csv: row 3: field label:", '"required"', "[constraint-error]"),
    ),
    Bad(
        "whitespace in a required field",
        edits(sources=set_cell(2, "citation", "  ")),
        ("data/sources.csv: row 2: field citation:", "[blank-value]"),
    ),
    Bad(
        "negative SD",
        edits(continuous_outcomes=set_cell(2, "sd", "-4.2")),
        (f"{CONT}: row 2: field sd:", '"minimum"', "[constraint-error]"),
    ),
    Bad(
        "zero SD",
        edits(continuous_outcomes=set_cell(3, "sd", "0")),
        (f"{CONT}: row 3: field sd:", "[sd-not-positive]"),
    ),
    # --- cross-table rules
    Bad(
        "events exceed total",
        edits(dichotomous_outcomes=set_cell(3, "events", "31")),
        (f"{DICH}: row 3: field events:", "[events-exceed-total]"),
    ),
    Bad(
        "n_analysed exceeds n_randomised",
        edits(arms=set_cell(5, "n_analysed", "21")),
        ("data/arms.csv: row 5: field n_analysed:", "[n-analysed-exceeds-randomised]"),
    ),
    Bad(
        "comparison names an arm that does not exist",
        edits(comparisons=set_cell(3, "control_arm_id", "placebo")),
        (f"{COMP}: row 3: field study_id,control_arm_id:", "[foreign-key]"),
        where=("foreign-key", COMP, 3, "study_id,control_arm_id"),
    ),
    Bad(
        "timepoint beyond follow-up",
        edits(continuous_outcomes=set_cell(2, "timepoint_weeks", "25")),
        (f"{CONT}: row 2: field timepoint_weeks:", "[timepoint-beyond-follow-up]"),
    ),
    Bad(
        "derived row without derivation",
        edits(dichotomous_outcomes=set_cell(4, "derivation", " ")),
        (f"{DICH}: row 4: field derivation:", "[derived-without-derivation]"),
    ),
    # --- core 1.0: outcomes are data (rows of outcomes)
    Bad(
        "outcome row names an outcome not defined",
        edits(dichotomous_outcomes=set_cell(2, "outcome", "mortality")),
        (f"{DICH}: row 2: field outcome:", "mortality", "[foreign-key]"),
        where=("foreign-key", DICH, 2, "outcome"),
    ),
    Bad(
        "effect estimate names an outcome not defined",
        edits(effect_estimates=lambda t: t + EFFECT_ROW.format(se="0.4").replace("death", "x")),
        (f"{EFFECT}: row 2: field outcome:", "[foreign-key]"),
        where=("foreign-key", EFFECT, 2, "outcome"),
    ),
    Bad(
        "outcome of the wrong data type",
        edits(continuous_outcomes=set_cell(2, "outcome", "death")),
        (
            f"{CONT}: row 2: field outcome:",
            "outcome death is dichotomous in data/outcomes.csv",
            "continuous_outcomes holds continuous outcomes",
            "[outcome-wrong-type]",
        ),
        where=("outcome-wrong-type", CONT, 2, "outcome"),
    ),
    Bad(
        "dichotomous row of a continuous outcome",
        edits(dichotomous_outcomes=set_cell(3, "outcome", "meld")),
        (f"{DICH}: row 3: field outcome:", "outcome meld is continuous", "[outcome-wrong-type]"),
        where=("outcome-wrong-type", DICH, 3, "outcome"),
    ),
    Bad(
        "outcome without a data type",
        edits(outcomes=set_cell(3, "data_type", "")),
        ("data/outcomes.csv: row 3: field data_type:", '"required"', "[constraint-error]"),
        where=("constraint-error", "data/outcomes.csv", 3, "data_type"),
    ),
    Bad(
        "published result names an unknown outcome",
        edits(published_results=set_cell(2, "outcome_code", "ascites")),
        (
            "data/published_results.csv: row 2: field outcome_code:",
            "outcome_code 'ascites' is not an outcome_id of data/outcomes.csv",
            "[unknown-outcome]",
        ),
        where=("unknown-outcome", "data/published_results.csv", 2, "outcome_code"),
    ),
    # --- core 1.0: comparisons say which arm is experimental and which the control
    Bad(
        "comparison names arms of another study",
        edits(
            arms=add_row({"arm_id": "msc_high"}, like=4),
            msc_arms=add_row({"arm_id": "msc_high"}, like=4),
            comparisons=set_cell(2, "experimental_arm_id", "msc_high"),
        ),
        (f"{COMP}: row 2: field study_id,experimental_arm_id:", "[foreign-key]"),
        where=("foreign-key", COMP, 2, "study_id,experimental_arm_id"),
    ),
    Bad(
        "comparison of an arm with itself",
        edits(comparisons=set_cell(2, "control_arm_id", "msc")),
        (
            f"{COMP}: row 2: field control_arm_id:",
            "comparison alpha2020_msc_vs_control compares arm msc of study alpha2020 with itself",
            "[comparison-same-arm]",
        ),
        where=("comparison-same-arm", COMP, 2, "control_arm_id"),
    ),
    Bad(
        "the same comparison twice",
        edits(comparisons=add_row({"comparison_id": "alpha2020_again", "primary": ""}, like=2)),
        (
            f"{COMP}: row 4: field comparison_id:",
            "comparison alpha2020_again repeats row 2",
            "[duplicate-comparison]",
        ),
        where=("duplicate-comparison", COMP, 4, "comparison_id"),
    ),
    Bad(
        "study without a comparison",
        edits(comparisons=drop_rows(3)),
        (
            "data/studies.csv: row 3: field study_id:",
            "study beta2021 has arms but no comparison",
            "[study-without-comparison]",
        ),
        where=("study-without-comparison", "data/studies.csv", 3, "study_id"),
    ),
    Bad(
        "two primary comparisons in one study",
        edits(comparisons=add_row({"comparison_id": "alpha2020_other", "label": "MSC alone"})),
        (
            f"{COMP}: row 4: field primary:",
            "study alpha2020 has 2 comparisons with primary true (rows 2, 4",
            "[primary-comparison]",
        ),
        where=("primary-comparison", COMP, 4, "primary"),
    ),
    Bad(
        "control arm without a comparator type",
        edits(arms=set_cell(3, "comparator_type", "")),
        (
            f"{ARMS}: row 3: field comparator_type:",
            "arm control of study alpha2020 is the control of a comparison and has no "
            "comparator_type",
            "[missing-comparator-type]",
        ),
        where=("missing-comparator-type", ARMS, 3, "comparator_type"),
    ),
    Bad(
        "experimental arm with a comparator type",
        edits(arms=set_cell(4, "comparator_type", "placebo")),
        (f"{ARMS}: row 4: field comparator_type:", "[comparator-type-on-intervention]"),
        where=("comparator-type-on-intervention", ARMS, 4, "comparator_type"),
    ),
    # --- core 1.0: study-level effect estimates
    Bad(
        "effect estimate with a zero SE",
        edits(effect_estimates=lambda t: t + EFFECT_ROW.format(se="0")),
        (f"{EFFECT}: row 2: field se:", "se must be > 0 (is 0)", "[se-not-positive]"),
        where=("se-not-positive", EFFECT, 2, "se"),
    ),
    Bad(
        "effect estimate of an unknown comparison",
        edits(effect_estimates=lambda t: t + EFFECT_ROW.format(se="0.4").replace("alpha", "gamma")),
        (f"{EFFECT}: row 2: field comparison_id:", "[foreign-key]"),
        where=("foreign-key", EFFECT, 2, "comparison_id"),
    ),
    # --- the msc extension's rules (msc_arms)
    Bad(
        "dose without its unit",
        edits(msc_arms=set_cell(2, "dose_unit", "")),
        (f"{MSC}: row 2: field dose_unit:", "[missing-dose-unit]"),
        where=("missing-dose-unit", MSC, 2, "dose_unit"),
    ),
    Bad(
        "dose range reversed",
        edits(msc_arms=set_cell(4, "dose_per_infusion_max", "500000")),
        (f"{MSC}: row 4: field dose_per_infusion_max:", "[dose-range-reversed]"),
        where=("dose-range-reversed", MSC, 4, "dose_per_infusion_max"),
    ),
    Bad(
        "msc row of an unknown arm",
        edits(msc_arms=set_cell(3, "arm_id", "placebo")),
        (f"{MSC}: row 3: field study_id,arm_id:", "[foreign-key]"),
        where=("foreign-key", MSC, 3, "study_id,arm_id"),
    ),
    # --- conformance to the core and to the declared extensions
    Bad(
        "extension field in a core table without the extension",
        package(
            edits={
                "arms": add_column(
                    "cell_source",
                    ["umbilical_cord", "not_applicable", "bone_marrow", "not_applicable"],
                )
            },
            edit_descriptor=both(set_extensions(None), without_resources("msc_arms")),
            schemas={"arms.schema.json": add_msc_field_to_arms},
        ),
        (
            f"{ARMS}: field cell_source:",
            "belongs to the msc extension (resource msc_arms)",
            '"extensions": ["msc"]',
            "[extension-field-without-extension]",
        ),
        where=("extension-field-without-extension", ARMS, None, "cell_source"),
    ),
    Bad(
        "extension field in a core table with the extension declared",
        package(
            edits={
                "arms": add_column(
                    "cell_source",
                    ["umbilical_cord", "not_applicable", "bone_marrow", "not_applicable"],
                )
            },
            schemas={"arms.schema.json": add_msc_field_to_arms},
        ),
        (f"{ARMS}: field cell_source:", "resource msc_arms", "[schema-mismatch]"),
        where=("schema-mismatch", ARMS, None, "cell_source"),
    ),
    Bad(
        "extension resource without the declaration",
        descriptor_edit(set_extensions(None)),
        (
            f"{MSC}:",
            "resource msc_arms belongs to the msc extension, which the descriptor does not declare",
            "[extension-not-declared]",
        ),
        where=("extension-not-declared", MSC, None, None),
    ),
    Bad(
        "unknown extension",
        descriptor_edit(set_extensions(["msc", "ophthalmology"])),
        (
            f"{DESCRIPTOR}: field $.extensions:",
            "extension 'ophthalmology' is not known (known: msc)",
            "[unknown-extension]",
        ),
        where=("unknown-extension", DESCRIPTOR, None, "$.extensions"),
    ),
    Bad(
        "declared extension without its resource",
        descriptor_edit(without_resources("msc_arms")),
        (
            f"{DESCRIPTOR}: field $.resources:",
            "extension msc needs resource 'msc_arms'",
            "[extension-resource-missing]",
        ),
        where=("extension-resource-missing", DESCRIPTOR, None, "$.resources"),
    ),
    Bad(
        "core resource missing",
        descriptor_edit(without_resources("comparisons")),
        (
            f"{DESCRIPTOR}: field $.resources:",
            "core resource 'comparisons' is missing",
            "[core-resource-missing]",
        ),
        where=("core-resource-missing", DESCRIPTOR, None, "$.resources"),
    ),
    Bad(
        "core schema with a changed constraint",
        package(schemas={"studies.schema.json": change_constraint("year", "maximum", 3000)}),
        (
            "data/studies.csv: field year:",
            'constraints {"minimum": 1700, "maximum": 3000} differs from the core schema',
            "[schema-mismatch]",
        ),
        where=("schema-mismatch", "data/studies.csv", None, "year"),
    ),
    Bad(
        "core schema with a field left out",
        package(
            edits={"studies": _columns(lambda cells: cells[:-1])},
            schemas={"studies.schema.json": lambda s: s["fields"].pop()},
        ),
        ("data/studies.csv: field notes:", "is missing", "[schema-mismatch]"),
        where=("schema-mismatch", "data/studies.csv", None, "notes"),
    ),
    Bad(
        "core schema with another primary key",
        package(schemas={"arms.schema.json": lambda s: s.update(primaryKey=["arm_id"])}),
        (f"{ARMS}:", 'primaryKey ["arm_id"] differs from the core schema', "[schema-mismatch]"),
        where=("schema-mismatch", ARMS, None, None),
    ),
]

ACCEPTED: list[Bad] = [
    Bad(
        "UTF-8 with a byte-order mark",
        replace_file("studies", FIXTURES / "bad/bom/studies.csv"),
        ("VALID",),
        0,
    ),
    Bad("CRLF line ends", edits(studies=lambda t: t.replace("\n", "\r\n")), ("VALID",), 0),
    Bad(
        "the largest int64, also with spaces around it",
        edits(
            arms=set_cell(2, "n_randomised", str(2**63 - 1)),
            dichotomous_outcomes=set_cell(2, "total", f" {2**63 - 1} "),
        ),
        ("VALID",),
        0,
    ),
    Bad("CR line ends", edits(arms=lambda t: t.replace("\n", "\r")), ("VALID",), 0),
    Bad(
        "quoted cells with commas and quotes",
        edits(studies=set_cell(3, "notes", 'a "quoted", note; with\nnew line')),
        ("VALID",),
        0,
    ),
]


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file (and symlink target) under ``root``; also lists the names."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = "link:" + os.readlink(path)
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


def run_cli(*args: str) -> tuple[int, str]:
    buffer = io.StringIO()
    saved = cli_module.console
    cli_module.console = Console(file=buffer, width=120, highlight=False)
    try:
        code = cli_module.main(list(args))
    finally:
        cli_module.console = saved
    return code, buffer.getvalue()


def test_corpus_size() -> None:
    assert len(CORPUS) >= 70
    assert len({case.name for case in CORPUS + ACCEPTED}) == len(CORPUS) + len(ACCEPTED)


@pytest.mark.parametrize("case", CORPUS + ACCEPTED, ids=[c.name for c in CORPUS + ACCEPTED])
def test_bad_input(case: Bad, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    descriptor = case.setup(tmp_path / "pkg")
    before = tree_digest(tmp_path)
    code, out = run_cli("validate", str(descriptor))
    err = capsys.readouterr().err
    assert code == case.exit_code, out + err
    assert "Traceback" not in out + err
    lines = out.splitlines()
    assert any(all(part in line for part in case.expect) for line in lines), out
    assert tree_digest(tmp_path) == before  # nothing written, nothing changed
    # --json: one JSON object, same verdict
    code_json, out_json = run_cli("validate", str(descriptor), "--json")
    payload = json.loads(out_json)
    assert code_json == case.exit_code
    assert payload["valid"] is (case.exit_code == 0)
    assert tree_digest(tmp_path) == before
    if case.where is not None:
        # the exact issue (rule, file, row, field), printed as the one line expected
        found = [
            issue
            for issue in payload["issues"]
            if (issue["rule"], issue["file"], issue["row"], issue["field"]) == case.where
        ]
        assert found, payload["issues"]
        line = ValidationIssue(**found[0]).line()
        assert line in lines and all(part in line for part in case.expect), (line, case.expect)


def test_file_too_large(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    descriptor = build_package(tmp_path / "pkg")
    monkeypatch.setenv(tableschema.MAX_FILE_BYTES_ENV, "300")
    before = tree_digest(tmp_path)
    code, out = run_cli("validate", str(descriptor))
    assert code == 1
    line = next(line for line in out.splitlines() if "data/arms.csv" in line)
    assert "over the limit of 300 bytes" in line and "[file-too-large]" in line
    assert "Traceback" not in out + capsys.readouterr().err
    assert tree_digest(tmp_path) == before


def test_bundled_package_unchanged_by_validate() -> None:
    watched = ["datapackage.json", "data", "schemas"]
    before = {
        name: tree_digest(REPO / name) if (REPO / name).is_dir() else None for name in watched
    }
    digest = hashlib.sha256((REPO / "datapackage.json").read_bytes()).hexdigest()
    validate_package(REPO / "datapackage.json", engine="fast")
    validate_package(REPO / "datapackage.json", engine="frictionless")
    after = {name: tree_digest(REPO / name) if (REPO / name).is_dir() else None for name in watched}
    assert after == before
    assert hashlib.sha256((REPO / "datapackage.json").read_bytes()).hexdigest() == digest


# --- parity: fast path vs frictionless ------------------------------------------------


def reference_locations(descriptor: Path) -> set[tuple[Any, ...]]:
    """frictionless' own errors (from the descriptor path), mapped as tableschema does."""
    from frictionless import FrictionlessException, Package

    package = load_package(descriptor)
    name = descriptor.name
    try:
        report = Package(str(descriptor)).validate()
    except FrictionlessException as exc:
        errors = exc.reasons or [exc.error]
        mapped = {tableschema._fl_issue(e.to_descriptor(), None, name) for e in errors}
        return {(i.resource, i.row, i.field, i.rule) for i in mapped}
    found = {tableschema._fl_issue(e.to_descriptor(), None, name) for e in report.errors}
    for task in report.tasks:
        resource = package.resources.get(task.name)
        found |= {tableschema._fl_issue(e.to_descriptor(), resource, name) for e in task.errors}
    return {(i.resource, i.row, i.field, i.rule) for i in found}


def engine_locations(descriptor: Path, engine: str) -> set[tuple[Any, ...]]:
    report = validate_package(descriptor, engine=engine)
    return {
        (i.resource, i.row, i.field, i.rule) for i in report.issues if i.source == "frictionless"
    }


def _loads(case: Bad, dest: Path) -> Path | None:
    descriptor = case.setup(dest)
    try:
        load_package(descriptor)
    except Exception:
        return None
    return descriptor


PARITY = [c for c in CORPUS + ACCEPTED if "frictionless itself crashes" not in c.name]


@pytest.mark.parametrize("case", PARITY, ids=[c.name for c in PARITY])
def test_fast_path_matches_frictionless(
    case: Bad, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    descriptor = _loads(case, tmp_path / "pkg")
    if descriptor is None:
        # refused by the safe loader before either engine reads anything: both engines
        # must then give the very same one-line refusal
        raw = case.setup(tmp_path / "again")
        fast = validate_package(raw, engine="fast")
        slow = validate_package(raw, engine="frictionless")
        assert not fast.valid
        assert [i.line() for i in fast.issues] == [i.line() for i in slow.issues]
        return
    reference = reference_locations(descriptor)
    assert engine_locations(descriptor, "fast") == reference
    # the vectorised readers (used for columns with many distinct values) agree too
    monkeypatch.setattr(fastvalidate, "DISTINCT_READER_LIMIT", 0)
    assert engine_locations(descriptor, "fast") == reference
    # and so does pandas' parser, which reads what pyarrow's reader does not
    monkeypatch.setattr(fastvalidate, "arrow_readable", lambda *args: False)
    assert engine_locations(descriptor, "fast") == reference


@pytest.mark.parametrize("case", PARITY, ids=[c.name for c in PARITY])
def test_engines_give_the_same_verdict_and_issues(case: Bad, tmp_path: Path) -> None:
    """Every issue (Table Schema, conformance and trialpool rules), not only frictionless'
    own: the same verdict and the same (resource, file, row, field, rule) by either engine."""
    descriptor = case.setup(tmp_path / "pkg")
    fast = validate_package(descriptor, engine="fast")
    slow = validate_package(descriptor, engine="frictionless")
    assert fast.valid is slow.valid is (case.exit_code == 0)

    def where(report: Any) -> set[tuple[Any, ...]]:
        return {(i.resource, i.file, i.row, i.field, i.rule) for i in report.issues}

    assert where(fast) == where(slow)
    if case.where is not None:
        rule, file, row, field = case.where
        assert any(w[1:] == (file, row, field, rule) for w in where(fast))


def test_every_new_rule_has_a_corpus_case() -> None:
    """Each rule of the core 1.0 (comparisons, outcomes, effect estimates) and each
    conformance rule is planted, with its exact location, at least once."""
    planted = {case.where[0] for case in CORPUS if case.where is not None}
    new_rules = {
        "comparison-same-arm",
        "duplicate-comparison",
        "study-without-comparison",
        "primary-comparison",
        "outcome-wrong-type",
        "unknown-outcome",
        "se-not-positive",
        "missing-comparator-type",
        "comparator-type-on-intervention",
        "missing-dose-unit",
        "dose-range-reversed",
        "core-resource-missing",
        "schema-mismatch",
        "extension-field-without-extension",
        "extension-not-declared",
        "unknown-extension",
        "extension-resource-missing",
        "foreign-key",
        "integer-out-of-range",
        "non-finite-number",
    }
    assert new_rules <= planted, sorted(new_rules - planted)


def test_fast_path_matches_frictionless_on_bundled_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    descriptor = REPO / "datapackage.json"
    reference = reference_locations(descriptor)
    assert engine_locations(descriptor, "fast") == reference
    monkeypatch.setattr(fastvalidate, "DISTINCT_READER_LIMIT", 0)
    assert engine_locations(descriptor, "fast") == reference


def test_fast_path_keeps_frictionless_error_limit(tmp_path: Path) -> None:
    """1000 errors per resource, in frictionless' order; hash checks then skipped."""

    def many(text: str) -> str:
        lines = text.splitlines()
        body = [line.replace(",meld,", ",unknown,") for line in lines[1:]]
        return "\n".join([lines[0]] + body * 200) + "\n"

    descriptor = build_package(tmp_path / "pkg", edits={"continuous_outcomes": many})
    reference = reference_locations(descriptor)
    fast = engine_locations(descriptor, "fast")
    assert fast == reference
    assert sum(1 for r in fast if r[0] == "continuous_outcomes") == fastvalidate.LIMIT_ERRORS
