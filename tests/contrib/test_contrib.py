"""``trialpool new-study``: scaffolding a study's rows (trialpool.contrib.new_study).

Every test works on a copy of the bundled package in tmp_path; the fictional study
"example2027" (tests/fixtures/pr_example2027, illustrative values only) fills the
scaffold.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from trialpool.cli import main
from trialpool.contrib import new_study as contrib
from trialpool.contrib.new_study import append_rows, plan_new_study, run_new_study, write_atomically
from trialpool.errors import PackageError
from trialpool.package.loader import load_package

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = json.loads(
    (REPO / "tests/fixtures/pr_example2027/example2027.json").read_text(encoding="utf-8")
)
STUDY = "example2027"


def _build_descriptor(root: Path) -> None:
    spec = importlib.util.spec_from_file_location("bd", REPO / "scripts/build_descriptor.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (root / "datapackage.json").write_text(module.build(root), encoding="utf-8")


def copy_package(dest: Path) -> Path:
    """Copy the bundled package (descriptor, schemas, data) and return its descriptor."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO / "datapackage.json", dest / "datapackage.json")
    shutil.copytree(REPO / "schemas", dest / "schemas")
    shutil.copytree(REPO / "data", dest / "data")
    _build_descriptor(dest)
    return dest / "datapackage.json"


def read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def write(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")


#: resources whose scaffolded rows fill_scaffold fills (key field that names the study)
SCAFFOLDED = {
    "sources": "source_id",
    "studies": "study_id",
    "arms": "study_id",
    "comparisons": "study_id",
    "msc_arms": "study_id",
    "screening": "study_id",
    "bias_judgements": "study_id",
}


def scaffolded_arm_ids(root: Path, study_id: str = STUDY) -> dict[str, str]:
    """The fixture's arm ids -> the arm ids new-study chose (paired through the comparison)."""
    _, rows = read(root / "data/comparisons.csv")
    new = next(r for r in rows if r["study_id"] == study_id)
    example = EXAMPLE["comparisons"][0]
    return {
        example[f"{role}_arm_id"]: new[f"{role}_arm_id"] for role in ("experimental", "control")
    }


def fill_scaffold(root: Path, study_id: str = STUDY, *, outcomes: bool = True) -> None:
    """Fill the empty cells of the scaffolded rows with the fixture's values; then (with
    ``outcomes``) append the outcome, outcome-definition and claim rows."""
    arm_ids = scaffolded_arm_ids(root, study_id)
    fixture_arm = {new: old for old, new in arm_ids.items()}
    for name, key in SCAFFOLDED.items():
        path = root / f"data/{name}.csv"
        if not path.exists():
            continue
        header, rows = read(path)
        for row in rows:
            if row[key] != study_id:
                continue
            if name == "bias_judgements":
                values = EXAMPLE["bias_judgements"]
            elif name in {"arms", "msc_arms"}:
                values = next(a for a in EXAMPLE[name] if a["arm_id"] == fixture_arm[row["arm_id"]])
            else:
                values = EXAMPLE[name][0]
            for field, value in values.items():
                if not row.get(field) and field in header:
                    row[field] = value
        write(path, header, rows)
    if not outcomes:
        return
    # outcome and claim rows are not scaffolded: append them, arm ids as scaffolded
    extra: dict[str, list[dict[str, Any]]] = {}
    for name in ("outcomes", "continuous_outcomes", "dichotomous_outcomes", "claims"):
        extra[name] = []
        for row in EXAMPLE[name]:
            new = dict(row)
            if "study_id" in new:
                new["study_id"] = study_id
            if "arm_id" in new:
                new["arm_id"] = arm_ids[row["arm_id"]]
            extra[name].append(new)
    append_rows(load_package(root / "datapackage.json"), extra)


def frictionless_ok(descriptor: Path) -> tuple[bool, str]:
    run = subprocess.run(
        [sys.executable, "-m", "frictionless", "validate", "--json", descriptor.name],
        cwd=descriptor.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    return run.returncode == 0, run.stdout[-3000:] + run.stderr[-1000:]


def trialpool_issues(descriptor: Path) -> list[str] | None:
    """``trialpool validate``'s issues, or None when trialpool.validate is not available."""
    try:
        from trialpool.validate import validate_package
    except ImportError:  # another helper's module; frictionless alone then
        return None
    return [issue.line() for issue in validate_package(descriptor).issues]


def quiet() -> Console:
    return Console(file=io.StringIO(), width=200, highlight=False)


def output(console: Console) -> str:
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "data").iterdir())}


# ------------------------------------------------------------------------ scaffold


def test_new_study_scaffolds_rows_in_schema_order(tmp_path: Path) -> None:
    descriptor = copy_package(tmp_path / "pkg")
    root = descriptor.parent
    before = {name: read(root / f"data/{name}.csv")[1] for name in ("comparisons", "screening")}
    console = quiet()
    assert run_new_study(descriptor, STUDY, console=console) == 0
    package = load_package(descriptor)
    for name in SCAFFOLDED:
        header, _ = read(root / f"data/{name}.csv")
        assert header == package.resources[name].field_names  # column order kept
        raw = (root / f"data/{name}.csv").read_bytes()
        assert raw.endswith(b"\n")
    _, sources = read(root / "data/sources.csv")
    assert next(r for r in sources if r["source_id"] == STUDY)["kind"] == ""
    _, studies = read(root / "data/studies.csv")
    new_study = [r for r in studies if r["study_id"] == STUDY]
    assert len(new_study) == 1 and new_study[0]["source_id"] == STUDY
    assert new_study[0]["design"] == "" and new_study[0]["label"] == ""
    # two arms, experimental then control, with the package's usual ids
    _, arms = read(root / "data/arms.csv")
    new_arms = [r for r in arms if r["study_id"] == STUDY]
    assert [a["arm_id"] for a in new_arms] == ["msc", "control"]
    assert all(a["description"] == "" and a["source_id"] == STUDY for a in new_arms)
    assert all(a["comparator_type"] == "" for a in new_arms)  # to be read from the sources
    used = {r["experimental_arm_id"] for r in before["comparisons"]}
    assert new_arms[0]["arm_id"] in used
    # one primary comparison linking them, under the package's usual label
    _, comparisons = read(root / "data/comparisons.csv")
    new_comparisons = [r for r in comparisons if r["study_id"] == STUDY]
    assert new_comparisons == [
        {
            "comparison_id": "example2027_msc_vs_control",
            "study_id": STUDY,
            "experimental_arm_id": "msc",
            "control_arm_id": "control",
            "label": "MSC versus control",
            "primary": "true",
            "source_id": STUDY,
            "notes": "",
        }
    ]
    # the msc extension is declared: one msc_arms row per arm, keys only
    _, msc_arms = read(root / "data/msc_arms.csv")
    new_msc = [r for r in msc_arms if r["study_id"] == STUDY]
    assert [r["arm_id"] for r in new_msc] == ["msc", "control"]
    assert all(r["cell_source"] == r["route"] == "" and r["source_id"] == STUDY for r in new_msc)
    _, bias = read(root / "data/bias_judgements.csv")
    new_bias = [r for r in bias if r["study_id"] == STUDY]
    assert len(new_bias) == 7
    assert {r["tool"] for r in new_bias} == {"rob1"}
    assert [r["domain"] for r in new_bias][:2] == [
        "random_sequence_generation",
        "allocation_concealment",
    ]
    assert all(r["domain_label"] == "" for r in new_bias)  # standard domains
    # judgement left empty on purpose: it must be assessed, with support and assessor
    assert all(r["judgement"] == "" and r["result_scope"] == "all" for r in new_bias)
    _, screening = read(root / "data/screening.csv")
    new_screening = [r for r in screening if r["study_id"] == STUDY]
    assert len(new_screening) == 1
    ids = [r["record_id"] for r in before["screening"]]
    assert new_screening[0]["record_id"] not in ids
    # no outcome rows: they depend on what the sources report
    for name in ("continuous_outcomes", "dichotomous_outcomes"):
        assert all(r["study_id"] != STUDY for r in read(root / f"data/{name}.csv")[1])
    text = " ".join(output(console).split())
    assert "data/studies.csv row" in text and "trialpool refresh" in text
    assert "data/comparisons.csv row" in text and "data/msc_arms.csv rows" in text
    assert "judgement, assessor" in text
    assert "the control arm (control) needs a comparator_type" in text
    assert "label pre-filled" in text and "not_applicable in cell_source, origin, route" in text
    assert "outcome_id of outcomes.csv" in text


def test_scaffold_is_invalid_until_filled(tmp_path: Path) -> None:
    descriptor = copy_package(tmp_path / "pkg")
    assert run_new_study(descriptor, STUDY, console=quiet()) == 0
    _build_descriptor(descriptor.parent)
    ok, _ = frictionless_ok(descriptor)
    assert not ok  # required cells (label, design, judgement, ...) are empty


@pytest.mark.frictionless
def test_filled_scaffold_validates(tmp_path: Path) -> None:
    descriptor = copy_package(tmp_path / "pkg")
    ok, report = frictionless_ok(descriptor)
    assert ok, f"the bundled package copy is not valid before the test: {report}"
    assert run_new_study(descriptor, STUDY, console=quiet()) == 0
    fill_scaffold(descriptor.parent)
    _build_descriptor(descriptor.parent)
    ok, report = frictionless_ok(descriptor)
    assert ok, report
    issues = trialpool_issues(descriptor)
    if issues is not None:  # trialpool validate (checks.py) when available
        assert issues == []


def test_refuses_existing_study(tmp_path: Path) -> None:
    descriptor = copy_package(tmp_path / "pkg")
    assert run_new_study(descriptor, STUDY, console=quiet()) == 0
    before = snapshot(descriptor.parent)
    with pytest.raises(
        PackageError, match=r"data/studies\.csv: row \d+: study 'example2027' exists"
    ):
        run_new_study(descriptor, STUDY, console=quiet())
    assert snapshot(descriptor.parent) == before


def test_refuses_study_with_rows_elsewhere(tmp_path: Path) -> None:
    descriptor = copy_package(tmp_path / "pkg")
    append_rows(
        load_package(descriptor),
        {"bias_judgements": [{"study_id": "orphan2020", "tool": "rob1"}]},
    )
    with pytest.raises(PackageError, match=r"bias_judgements\.csv: row .*'orphan2020' exists"):
        plan_new_study(load_package(descriptor), "orphan2020")


@pytest.mark.parametrize("bad", ["Example2027", "2027example", "ex-2027", "ex 2027", "", "é2027"])
def test_refuses_id_breaking_pattern(tmp_path: Path, bad: str) -> None:
    descriptor = copy_package(tmp_path / "pkg")
    before = snapshot(descriptor.parent)
    with pytest.raises(PackageError, match=r"does not match studies\.study_id's pattern"):
        run_new_study(descriptor, bad, console=quiet())
    assert snapshot(descriptor.parent) == before


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    descriptor = copy_package(tmp_path / "pkg")
    assert main(["new-study", STUDY, "--descriptor", str(descriptor)]) == 0
    capsys.readouterr()
    assert main(["new-study", STUDY, "--descriptor", str(descriptor)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists already" in err and "Traceback" not in err
    assert main(["new-study", "Bad", "--descriptor", str(descriptor)]) == 1
    assert "pattern" in capsys.readouterr().err
    assert main(["new-study", STUDY, "--descriptor", str(tmp_path / "none.json")]) == 2


def test_reuses_existing_source_and_screening_row(tmp_path: Path) -> None:
    descriptor = copy_package(tmp_path / "pkg")
    append_rows(
        load_package(descriptor),
        {
            "sources": [{**EXAMPLE["sources"][0]}],
            "screening": [
                {**EXAMPLE["screening"][0], "stage": "eligibility", "decision": "awaiting"}
            ],
        },
    )
    console = quiet()
    assert run_new_study(descriptor, STUDY, console=console) == 0
    _, sources = read(descriptor.parent / "data/sources.csv")
    assert sum(r["source_id"] == STUDY for r in sources) == 1
    _, screening = read(descriptor.parent / "data/screening.csv")
    assert sum(r["study_id"] == STUDY for r in screening) == 1
    text = output(console)
    assert "exists already and is reused" in text and "screened already" in text


def test_vocabularies_come_from_the_schemas(tmp_path: Path) -> None:
    """The RoB 1 domains, the true value and the column order come from the schemas."""
    descriptor = copy_package(tmp_path / "pkg")
    root = descriptor.parent

    def edit(name: str, change: Any) -> None:
        path = root / f"schemas/{name}.schema.json"
        schema = json.loads(path.read_text(encoding="utf-8"))
        change(schema)
        path.write_text(json.dumps(schema), encoding="utf-8")

    def domains(schema: dict[str, Any]) -> None:
        field = next(f for f in schema["fields"] if f["name"] == "domain")
        field["description"] = "Standard domains: rob1: selection_bias, other_bias; rob2: x."

    def true_value(schema: dict[str, Any]) -> None:
        field = next(f for f in schema["fields"] if f["name"] == "primary")
        field["trueValues"] = ["yes"]
        field["falseValues"] = ["no"]

    edit("bias_judgements", domains)
    edit("comparisons", true_value)
    # the arms schema lists label after description: the new rows follow that order
    edit(
        "arms",
        lambda s: s["fields"].insert(3, s["fields"].pop(2)),
    )
    header, rows = read(root / "data/arms.csv")
    header.insert(3, header.pop(2))
    write(root / "data/arms.csv", header, rows)
    assert run_new_study(descriptor, STUDY, console=quiet()) == 0
    _, bias = read(root / "data/bias_judgements.csv")
    assert [r["domain"] for r in bias if r["study_id"] == STUDY] == [
        "selection_bias",
        "other_bias",
    ]
    _, comparisons = read(root / "data/comparisons.csv")
    assert next(r for r in comparisons if r["study_id"] == STUDY)["primary"] == "yes"
    lines = (root / "data/arms.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0].split(",")[:4] == ["study_id", "arm_id", "comparator_type", "label"]
    assert lines[-1] == "example2027,control,,,,,,,example2027,"


def test_arm_ids_follow_the_comparisons_schema(tmp_path: Path) -> None:
    """Roles are the comparisons schema's ROLE_arm_id fields; an empty package uses them."""
    descriptor = copy_package(tmp_path / "pkg")
    comparisons = load_package(descriptor).resources["comparisons"]
    assert contrib.arm_roles(comparisons) == [
        ("experimental", "experimental_arm_id"),
        ("control", "control_arm_id"),
    ]
    comparisons.schema["fields"] = [
        f for f in comparisons.schema["fields"] if f["name"] != "control_arm_id"
    ]
    with pytest.raises(PackageError, match="expected two fields naming the compared arms"):
        contrib.arm_roles(comparisons)


@pytest.mark.parametrize("ext", [[], ["msc"]], ids=["core", "msc"])
def test_new_study_in_a_package_made_by_init(tmp_path: Path, ext: list[str]) -> None:
    """In an empty package: role names as arm ids, no label to copy, extension rows only
    when the extension is declared; filled in, the package validates."""
    from trialpool.contrib.init import create_package

    folder = tmp_path / "review"
    create_package(folder, extensions=ext)
    descriptor = folder / "datapackage.json"
    console = quiet()
    assert run_new_study(descriptor, STUDY, console=console) == 0
    _, arms = read(folder / "data/arms.csv")
    assert [a["arm_id"] for a in arms] == ["experimental", "control"]
    _, comparisons = read(folder / "data/comparisons.csv")
    assert [(c["comparison_id"], c["label"], c["primary"]) for c in comparisons] == [
        ("example2027_experimental_vs_control", "", "true")
    ]
    assert "label is the review-level name" in " ".join(output(console).split())
    _, screening = read(folder / "data/screening.csv")
    assert [r["record_id"] for r in screening] == [STUDY]
    if ext:
        _, msc_arms = read(folder / "data/msc_arms.csv")
        assert [r["arm_id"] for r in msc_arms] == ["experimental", "control"]
    else:
        assert not (folder / "data/msc_arms.csv").exists()
    fill_scaffold(folder, outcomes=False)
    _build_descriptor(folder)
    issues = trialpool_issues(descriptor)
    if issues is not None:
        assert issues == []


def test_optional_resources_may_be_absent(tmp_path: Path) -> None:
    """Without screening and bias_judgements (optional in the core), only the rest."""
    descriptor = copy_package(tmp_path / "pkg")
    data = json.loads(descriptor.read_text(encoding="utf-8"))
    data["resources"] = [
        r for r in data["resources"] if r["name"] not in {"screening", "bias_judgements"}
    ]
    descriptor.write_text(json.dumps(data), encoding="utf-8")
    plans, _ = plan_new_study(load_package(descriptor), STUDY)
    assert [p.file.resource.name for p in plans] == [
        "sources",
        "studies",
        "arms",
        "comparisons",
        "msc_arms",
    ]


def test_rob1_domains_read_from_schema(tmp_path: Path) -> None:
    descriptor = copy_package(tmp_path / "pkg")
    bias = load_package(descriptor).resources["bias_judgements"]
    domains = contrib.rob1_domains(bias)
    assert len(domains) == 7 and domains[-1] == "other_bias"
    bias.schema["fields"][2]["description"] = "no mapping here"
    with pytest.raises(PackageError, match="cannot read the rob1 domains"):
        contrib.rob1_domains(bias)


def test_header_must_match_schema(tmp_path: Path) -> None:
    descriptor = copy_package(tmp_path / "pkg")
    path = descriptor.parent / "data/arms.csv"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("arm_id,label", "label,arm_id", 1), encoding="utf-8")
    before = snapshot(descriptor.parent)
    with pytest.raises(PackageError, match=r"data/arms\.csv: header does not match"):
        run_new_study(descriptor, STUDY, console=quiet())
    assert snapshot(descriptor.parent) == before


def test_keeps_crlf_and_adds_missing_final_newline(tmp_path: Path) -> None:
    descriptor = copy_package(tmp_path / "pkg")
    root = descriptor.parent
    studies = root / "data/studies.csv"
    studies.write_bytes(studies.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    sources = root / "data/sources.csv"
    sources.write_bytes(sources.read_bytes().rstrip(b"\r\n"))
    assert run_new_study(descriptor, STUDY, console=quiet()) == 0
    raw = studies.read_bytes()
    assert raw.count(b"\n") == raw.count(b"\r\n")
    header, rows = read(sources)
    assert rows[-1]["source_id"] == STUDY
    assert rows[-2]["source_id"] != STUDY and len(header) == len(rows[-2])


def test_write_atomically_all_or_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_bytes(b"old a\n")
    b.write_bytes(b"old b\n")
    os.chmod(a, 0o644)
    real_replace = os.replace
    calls = {"n": 0}

    def failing_replace(src: Any, dst: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device", str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(contrib.os, "replace", failing_replace)
    with pytest.raises(PackageError, match=r"cannot write .*No space left"):
        write_atomically({a: b"new a\n", b: b"new b\n"})
    assert a.read_bytes() == b"old a\n" and b.read_bytes() == b"old b\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.csv"]  # no temp left
    monkeypatch.setattr(contrib.os, "replace", real_replace)
    write_atomically({a: b"new a\n", b: b"new b\n"})
    assert a.read_bytes() == b"new a\n" and oct(a.stat().st_mode & 0o777) == "0o644"


def test_append_rows_rejects_unknown_fields(tmp_path: Path) -> None:
    descriptor = copy_package(tmp_path / "pkg")
    before = snapshot(descriptor.parent)
    with pytest.raises(PackageError, match="no field"):
        append_rows(
            load_package(descriptor),
            {"studies": [{"study_id": "x2020"}], "arms": [{"not_a_field": "1"}]},
        )
    assert snapshot(descriptor.parent) == before


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([("s01", "a2020"), ("s09", "b2021")], "s10"),
        ([("rec_007", "a2020")], "rec_008"),
        ([], "x2020"),
        ([("x2020", "x2020"), ("other", "y")], "x2020_2"),
        ([("lin2017", "lin2017")], "x2020"),  # study ids as record ids: no sequence
        ([("s01", "a2020"), ("t02", "b2021")], "x2020"),
    ],
)
def test_record_id(tmp_path: Path, rows: list[tuple[str, str]], expected: str) -> None:
    descriptor = copy_package(tmp_path / "pkg")
    screening = load_package(descriptor).resources["screening"]
    header = screening.field_names
    body = [dict.fromkeys(header, "") | {"record_id": r, "study_id": s} for r, s in rows]
    write(screening.path, header, body)
    csv_file = contrib.read_csv(screening, descriptor.parent)
    assert contrib._next_record_id(csv_file, "x2020") == expected
