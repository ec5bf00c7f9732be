"""Help contributors add a study: ``trialpool new-study STUDY_ID``.

``new-study`` appends the rows every new study needs, with its keys filled in and
everything else left empty for the contributor to fill from the study's sources:

=================  =========================================================================
resource           rows and pre-filled cells
=================  =========================================================================
sources            one row: ``source_id`` = STUDY_ID (the study's main report); skipped when
                   a source with that id exists already
studies            one row: ``study_id``, ``source_id`` = STUDY_ID
arms               two rows, the experimental and the control arm: ``arm_id``,
                   ``source_id`` (a note says the control arm needs a ``comparator_type``)
comparisons        one row linking them: ``comparison_id`` (STUDY_ARM_vs_ARM),
                   ``experimental_arm_id``, ``control_arm_id``, ``primary`` = true,
                   ``label`` = the package's usual primary label (empty when it has none),
                   ``source_id``
extension arms     one row per arm in each resource of a declared extension that extends
                   arms (``msc_arms`` when the descriptor declares ``"extensions":
                   ["msc"]``): ``study_id``, ``arm_id``, ``source_id``
screening          one row: a new ``record_id``, ``study_id``, ``source_id``; skipped when
                   the study was screened already (edit that row instead)
bias_judgements    one row per RoB 1 domain: ``tool`` = rob1, ``domain``,
                   ``result_scope`` = all, ``source_id``
=================  =========================================================================

``screening`` and ``bias_judgements`` rows are added when the package has those
resources. Every other cell is left **empty**, including ``judgement``: a risk-of-bias
judgement is an assessment that needs a reason (``support``) and an ``assessor``;
pre-filling "unclear" would produce rows that look assessed when nobody assessed them.
The package is therefore invalid until the contributor fills the required cells, and
validation says which ones are missing. Outcome rows (``continuous_outcomes``,
``dichotomous_outcomes``, ``effect_estimates``), outcome definitions (``outcomes``) and
``claims`` are not scaffolded: how many there are depends on what the sources report.

Vocabularies, column order and identifier patterns come from the schemas; nothing here
hard-codes a column list. The arm roles are the comparisons schema's arm fields
(``experimental_arm_id``, ``control_arm_id``); arm ids follow the package's own
convention (the id most used for each role in ``comparisons``), or the role name in an
empty package. The RoB 1 domains are read from the description of the bias schema's
``domain`` field. Files are written atomically (a temporary file in the same folder,
then a rename), all or nothing.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import stat
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from trialpool.errors import PackageError
from trialpool.package.loader import Package, Resource, load_package

ROB1_TOOL = "rob1"
ALL_RESULTS = "all"
NOT_APPLICABLE = "not_applicable"
#: resources that may name a study before it is added (what sources say about it)
_STUDY_MAY_EXIST = {"sources", "screening", "claims", "published_results"}
#: pre-filled fields the summary line names already
_SHOWN_ABOVE = {"study_id", "source_id"}


@dataclass
class CsvFile:
    """The raw content of one resource's CSV: header, rows and line ending."""

    resource: Resource
    header: list[str]
    rows: list[dict[str, str]]
    raw: bytes
    newline: str

    @property
    def next_row_number(self) -> int:
        """Frictionless row number of the next appended row (the header is row 1)."""
        return len(self.rows) + 2


def read_csv(resource: Resource, root: Path) -> CsvFile:
    """Read a resource's CSV as strings; its header must equal the schema's fields."""
    where = _rel(resource.path, root)
    try:
        raw = resource.path.read_bytes()
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise PackageError(f"{where}: resource {resource.name!r}: file not found") from None
    except UnicodeDecodeError as exc:
        raise PackageError(f"{where}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise PackageError(f"{where}: cannot read ({exc.strerror})") from None
    text = text.removeprefix("\ufeff")
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise PackageError(f"{where}: malformed CSV ({exc})") from None
    header = records[0] if records else []
    expected = resource.field_names
    if header != expected:
        raise PackageError(
            f"{where}: header does not match the schema of {resource.name!r} "
            f"(expected {','.join(expected)}); fix the header first"
        )
    rows = [dict(zip(header, r, strict=False)) for r in records[1:] if r]
    newline = "\r\n" if b"\r\n" in raw else "\n"
    return CsvFile(resource, header, rows, raw, newline)


def _rel(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _need(package: Package, name: str) -> Resource:
    if name not in package.resources:
        raise PackageError(f"{package.descriptor_path}: no resource named {name!r}")
    return package.resources[name]


def _field(resource: Resource, name: str) -> dict[str, Any]:
    try:
        return resource.field(name)
    except KeyError:
        raise PackageError(
            f"schema of {resource.name!r}: no field {name!r} (new-study needs it)"
        ) from None


def _enum(resource: Resource, name: str) -> list[str]:
    values = (_field(resource, name).get("constraints") or {}).get("enum")
    if not isinstance(values, list) or not values:
        raise PackageError(f"schema of {resource.name!r}: field {name!r} has no enum constraint")
    return [str(v) for v in values]


def _true(resource: Resource, name: str) -> str:
    spec = _field(resource, name)
    values = spec.get("trueValues") or ["true"]
    return str(values[0])


def check_pattern(resource: Resource, name: str, value: str) -> str | None:
    """A one-line problem when ``value`` breaks the field's ``pattern`` (else None)."""
    pattern = (_field(resource, name).get("constraints") or {}).get("pattern")
    if pattern and re.fullmatch(pattern, value) is None:
        return f"{value!r} does not match {resource.name}.{name}'s pattern {pattern}"
    return None


def allowed(resource: Resource, name: str, value: str) -> bool:
    """Whether ``value`` meets the field's ``enum`` and ``pattern`` constraints."""
    constraints = _field(resource, name).get("constraints") or {}
    values = constraints.get("enum")
    if isinstance(values, list) and value not in [str(v) for v in values]:
        return False
    pattern = constraints.get("pattern")
    return not pattern or re.fullmatch(pattern, value) is not None


def rob1_domains(resource: Resource) -> list[str]:
    """The RoB 1 domains, read from the ``domain`` field of the bias schema.

    The schema's ``domain`` description maps tools to their standard domains ("rob1: a,
    b, ...; rob2: ..."); each domain must be allowed by the ``domain`` field's
    constraints (its pattern, or its enum when it has one).
    """
    tools = _enum(resource, "tool")
    if ROB1_TOOL not in tools:
        raise PackageError(f"schema of {resource.name!r}: tool {ROB1_TOOL!r} is not allowed")
    description = str(_field(resource, "domain").get("description", ""))
    match = re.search(rf"\b{ROB1_TOOL}:\s*([^;.)]*)", description)
    domains = [d.strip() for d in match.group(1).split(",")] if match else []
    domains = [d for d in domains if d]
    if not domains or not all(allowed(resource, "domain", d) for d in domains):
        raise PackageError(
            f"schema of {resource.name!r}: cannot read the {ROB1_TOOL} domains from the "
            "description of field 'domain' (expected 'rob1: domain, domain, ...; ...')"
        )
    return domains


def _blank(resource: Resource, **values: str) -> dict[str, str]:
    """A row with every schema field, empty except ``values``."""
    row = dict.fromkeys(resource.field_names, "")
    for name, value in values.items():
        _field(resource, name)
        row[name] = value
    return row


ARM_FIELD_SUFFIX = "_arm_id"


def arm_roles(comparisons: Resource) -> list[tuple[str, str]]:
    """(role, field) of each arm a comparison names, in schema order: the comparisons
    schema's fields ``ROLE_arm_id`` (experimental_arm_id, control_arm_id)."""
    roles = [
        (name.removesuffix(ARM_FIELD_SUFFIX), name)
        for name in comparisons.field_names
        if name.endswith(ARM_FIELD_SUFFIX) and name != ARM_FIELD_SUFFIX.lstrip("_")
    ]
    if len(roles) < 2:
        raise PackageError(
            f"schema of {comparisons.name!r}: expected two fields naming the compared arms "
            f"(ROLE{ARM_FIELD_SUFFIX}, e.g. experimental{ARM_FIELD_SUFFIX})"
        )
    return roles


def _arm_ids(arms: Resource, comparisons: CsvFile, roles: list[tuple[str, str]]) -> dict[str, str]:
    """Arm id per role: the id the package's comparisons use most for that role, else the
    role name (also when the usual ids collide or break the arm id pattern)."""
    out: dict[str, str] = {}
    for role, name in roles:
        used = Counter(r.get(name, "") for r in comparisons.rows)
        used.pop("", None)
        out[role] = used.most_common(1)[0][0] if used else role
    if len(set(out.values())) != len(out) or not all(
        allowed(arms, "arm_id", v) for v in out.values()
    ):
        out = {role: role for role, _ in roles}
    for value in out.values():
        if not allowed(arms, "arm_id", value):
            raise PackageError(f"arm id {check_pattern(arms, 'arm_id', value)}")
    return out


def _primary_label(comparisons: Resource, rows: list[dict[str, str]]) -> str:
    """The label the package's primary comparisons use most (else any comparison's)."""
    true_values = set(_field(comparisons, "primary").get("trueValues") or ["true"])
    for subset in ([r for r in rows if r.get("primary") in true_values], rows):
        labels = Counter(r.get("label", "") for r in subset)
        labels.pop("", None)
        if labels:
            return labels.most_common(1)[0][0]
    return ""


def _comparison_id(comparisons: CsvFile, study_id: str, arm_ids: list[str]) -> str:
    """``STUDY_EXPERIMENTAL_vs_CONTROL``, with a suffix if that id is taken."""
    ids = {r.get("comparison_id", "") for r in comparisons.rows}
    base = f"{study_id}_{arm_ids[0]}_vs_{arm_ids[1]}"
    candidate, i = base, 1
    while candidate in ids:
        i += 1
        candidate = f"{base}_{i}"
    problem = check_pattern(comparisons.resource, "comparison_id", candidate)
    if problem:
        raise PackageError(f"comparison id {problem}")
    return candidate


def _not_applicable_fields(resource: Resource) -> list[str]:
    """Required fields whose vocabulary has ``not_applicable`` (what arms without the
    treatment say, e.g. msc_arms.cell_source)."""
    return [
        spec["name"]
        for spec in resource.schema.get("fields", [])
        if (spec.get("constraints") or {}).get("required")
        and NOT_APPLICABLE in ((spec.get("constraints") or {}).get("enum") or [])
    ]


def _next_record_id(screening: CsvFile, study_id: str) -> str:
    """Continue the package's record-id sequence (s01, s02 -> s03), else use the study id.

    A sequence is recognised when every record id is one common prefix plus a number and
    no record id is its row's study id.
    """
    ids = [r.get("record_id", "") for r in screening.rows]
    matches = [re.fullmatch(r"([a-z][a-z_]*?)(\d+)", i) for i in ids]
    sequence = (
        bool(ids)
        and all(matches)
        and len({m.group(1) for m in matches if m}) == 1
        and not any(r.get("record_id") == r.get("study_id") for r in screening.rows)
    )
    if sequence:
        found = [m for m in matches if m]
        prefix = found[0].group(1)
        width = max(len(m.group(2)) for m in found)
        candidate = f"{prefix}{max(int(m.group(2)) for m in found) + 1:0{width}d}"
        if candidate not in ids:
            return candidate
    candidate, i = study_id, 1
    while candidate in ids:
        i += 1
        candidate = f"{study_id}_{i}"
    return candidate


@dataclass
class NewRows:
    """Rows planned for one resource."""

    file: CsvFile
    rows: list[dict[str, str]]


def plan_new_study(package: Package, study_id: str) -> tuple[list[NewRows], list[str]]:
    """The rows a new study needs, and notes for the contributor.

    Raises PackageError (one line) when the id breaks a pattern or exists already.
    """
    sources_r = _need(package, "sources")
    studies_r = _need(package, "studies")
    arms_r = _need(package, "arms")
    comparisons_r = _need(package, "comparisons")
    screening_r = package.resources.get("screening")
    bias_r = package.resources.get("bias_judgements")
    extension_rs = [package.resources[name] for name in package.extension_arm_tables()]
    checks = [
        (studies_r, "study_id"),
        (sources_r, "source_id"),
        (arms_r, "study_id"),
        (comparisons_r, "study_id"),
    ]
    checks += [(r, "study_id") for r in (screening_r, bias_r, *extension_rs) if r is not None]
    for resource, name in checks:
        problem = check_pattern(resource, name, study_id)
        if problem:
            raise PackageError(f"study id {problem} (use lower case letters, digits, '_')")
    root = package.root
    wanted = [sources_r, studies_r, arms_r, comparisons_r, screening_r, bias_r, *extension_rs]
    files = {r.name: read_csv(r, root) for r in wanted if r is not None}
    # the study must be new everywhere a study's data lives
    for name, resource in package.resources.items():
        if name in _STUDY_MAY_EXIST or "study_id" not in resource.field_names:
            continue
        csv_file = files.get(name) or read_csv(resource, root)
        for i, row in enumerate(csv_file.rows):
            if row.get("study_id") == study_id:
                raise PackageError(
                    f"{_rel(resource.path, root)}: row {i + 2}: study {study_id!r} exists "
                    "already (edit its rows instead of adding new ones)"
                )
    notes: list[str] = []
    plans: list[NewRows] = []
    sources = files["sources"]
    existing_source = next(
        (i for i, r in enumerate(sources.rows) if r.get("source_id") == study_id), None
    )
    if existing_source is None:
        plans.append(NewRows(sources, [_blank(sources_r, source_id=study_id)]))
    else:
        notes.append(
            f"{_rel(sources_r.path, root)}: row {existing_source + 2}: source {study_id!r} "
            "exists already and is reused"
        )
    plans.append(
        NewRows(files["studies"], [_blank(studies_r, study_id=study_id, source_id=study_id)])
    )
    # arms, one per role of a comparison, and the comparison that links them
    roles = arm_roles(comparisons_r)
    comparisons = files["comparisons"]
    arm_ids = _arm_ids(arms_r, comparisons, roles)
    arm_rows = [
        _blank(arms_r, study_id=study_id, arm_id=arm_ids[role], source_id=study_id)
        for role, _ in roles
    ]
    plans.append(NewRows(files["arms"], arm_rows))
    label = _primary_label(comparisons_r, comparisons.rows)
    comparison = _blank(
        comparisons_r,
        comparison_id=_comparison_id(comparisons, study_id, [arm_ids[r] for r, _ in roles]),
        study_id=study_id,
        **{name: arm_ids[role] for role, name in roles},
        label=label,
        primary=_true(comparisons_r, "primary"),
        source_id=study_id,
    )
    plans.append(NewRows(comparisons, [comparison]))
    where = _rel(comparisons_r.path, root)
    if label:
        notes.append(
            f"{where}: label pre-filled with the package's usual comparison label {label!r}; "
            "change it if this study compares something else"
        )
    else:
        notes.append(
            f"{where}: label is the review-level name of the comparison (e.g. 'MSC versus "
            "control'), the same for every study that contributes to it"
        )
    control_role = roles[-1][0]
    if "comparator_type" in arms_r.field_names:
        kinds = [k for k in _enum(arms_r, "comparator_type") if k != NOT_APPLICABLE]
        notes.append(
            f"{_rel(arms_r.path, root)}: the {control_role} arm ({arm_ids[control_role]}) "
            f"needs a comparator_type ({', '.join(kinds)}; unclear when the sources do not "
            f"say): trialpool validate requires it; the {roles[0][0]} arm uses "
            f"{NOT_APPLICABLE} or stays empty"
        )
    for resource in extension_rs:
        plans.append(
            NewRows(
                files[resource.name],
                [
                    _blank(
                        resource,
                        study_id=study_id,
                        arm_id=arm_ids[role],
                        **({"source_id": study_id} if "source_id" in resource.field_names else {}),
                    )
                    for role, _ in roles
                ],
            )
        )
        blanks = _not_applicable_fields(resource)
        if blanks:
            notes.append(
                f"{_rel(resource.path, root)}: an arm without the treatment (usually the "
                f"{control_role} arm) says {NOT_APPLICABLE} in {', '.join(blanks)}"
            )
    if screening_r is not None:
        screening = files["screening"]
        screened = next(
            (i for i, r in enumerate(screening.rows) if r.get("study_id") == study_id), None
        )
        if screened is None:
            record_id = _next_record_id(screening, study_id)
            plans.append(
                NewRows(
                    screening,
                    [
                        _blank(
                            screening_r,
                            record_id=record_id,
                            study_id=study_id,
                            source_id=study_id,
                        )
                    ],
                )
            )
        else:
            notes.append(
                f"{_rel(screening_r.path, root)}: row {screened + 2}: study {study_id!r} was "
                "screened already; update that row (stage, decision) instead of adding one"
            )
    if bias_r is not None:
        plans.append(
            NewRows(
                files["bias_judgements"],
                [
                    _blank(
                        bias_r,
                        study_id=study_id,
                        tool=ROB1_TOOL,
                        domain=domain,
                        result_scope=ALL_RESULTS,
                        source_id=study_id,
                    )
                    for domain in rob1_domains(bias_r)
                ],
            )
        )
    return plans, notes


def _render(csv_file: CsvFile, rows: Sequence[Mapping[str, Any]]) -> bytes:
    """The file's bytes with ``rows`` appended in schema column order."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator=csv_file.newline)
    for row in rows:
        unknown = set(row) - set(csv_file.header)
        if unknown:
            raise PackageError(
                f"{csv_file.resource.name}: no field(s) {', '.join(sorted(unknown))} in its schema"
            )
        writer.writerow(["" if row.get(f) is None else str(row.get(f)) for f in csv_file.header])
    raw = csv_file.raw
    if raw and not raw.endswith(b"\n"):
        raw += csv_file.newline.encode()
    return raw + buffer.getvalue().encode("utf-8")


def write_atomically(contents: Mapping[Path, bytes]) -> None:
    """Replace several files, all or nothing.

    Each new content goes to a temporary file in the target's folder (same file system,
    same permissions); only when every temporary file is written are they renamed over
    the targets. If a rename fails, the targets already replaced are restored.
    """
    temps: dict[Path, Path] = {}
    originals: dict[Path, bytes] = {}
    try:
        for target, data in contents.items():
            fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            temps[target] = Path(name)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            if target.exists():
                os.chmod(name, stat.S_IMODE(target.stat().st_mode))
                originals[target] = target.read_bytes()
        replaced: list[Path] = []
        try:
            for target, temp in temps.items():
                os.replace(temp, target)
                replaced.append(target)
        except OSError:
            for target in replaced:
                if target in originals:
                    target.write_bytes(originals[target])
            raise
    except OSError as exc:
        raise PackageError(f"cannot write {exc.filename or 'file'}: {exc.strerror}") from None
    finally:
        for temp in temps.values():
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()


def append_rows(
    package: Package, rows: Mapping[str, Sequence[Mapping[str, Any]]]
) -> dict[str, range]:
    """Append rows to resources (all files or none), in schema column order.

    Args:
        package: the package to write into.
        rows: resource name -> rows (dicts keyed by field name; missing fields empty).

    Returns:
        resource name -> frictionless row numbers of the appended rows.
    """
    contents: dict[Path, bytes] = {}
    numbers: dict[str, range] = {}
    for name, new in rows.items():
        csv_file = read_csv(_need(package, name), package.root)
        contents[csv_file.resource.path] = _render(csv_file, new)
        start = csv_file.next_row_number
        numbers[name] = range(start, start + len(new))
    write_atomically(contents)
    return numbers


def _to_fill(resource: Resource, row: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """Empty cells of a scaffolded row: (required, optional) field names."""
    required, optional = [], []
    for spec in resource.schema.get("fields", []):
        if row.get(spec["name"]):
            continue
        if (spec.get("constraints") or {}).get("required"):
            required.append(spec["name"])
        else:
            optional.append(spec["name"])
    return required, optional


def run_new_study(descriptor: Path, study_id: str, *, console: Console) -> int:
    """``trialpool new-study``: scaffold a study's rows; 0 on success, 1 on bad input."""
    package = load_package(descriptor)
    plans, notes = plan_new_study(package, study_id)
    contents = {p.file.resource.path: _render(p.file, p.rows) for p in plans}
    write_atomically(contents)
    root = package.root
    console.print(
        f"Added rows for study [bold]{escape(study_id)}[/bold] (keys pre-filled: study_id and "
        f"source_id = {escape(study_id)}; every other cell is empty):"
    )
    for plan in plans:
        first = plan.file.next_row_number
        rows = (
            f"row {first}" if len(plan.rows) == 1 else f"rows {first}-{first + len(plan.rows) - 1}"
        )
        console.print(f"  [bold]{escape(_rel(plan.file.resource.path, root))}[/bold] {rows}")
        varying = _varying_keys(plan.rows)
        for offset, row in enumerate(plan.rows):
            if varying:
                values = ", ".join(f"{k}={row[k]}" for k in varying)
                console.print(f"    row {first + offset}: {escape(values)}")
        if len(plan.rows) == 1:
            keys = [k for k, v in plan.rows[0].items() if v and k not in _SHOWN_ABOVE]
            if keys:
                values = ", ".join(f"{k}={plan.rows[0][k]}" for k in keys)
                console.print(f"    pre-filled: {escape(values)}")
        required, optional = _to_fill(plan.file.resource, plan.rows[0])
        if required:
            console.print(f"    fill (required): {', '.join(required)}")
        if optional:
            console.print(f"    fill if the sources state it: {', '.join(optional)}")
    for note in notes:
        console.print(f"note: {escape(note)}")
    shown = escape(_rel(package.descriptor_path, Path.cwd()))
    console.print(
        "The package is not valid until the required cells are filled from the study's "
        "sources (cite each value: source_id, locator, verification).\n"
        "Next steps (CONTRIBUTING.md, 'Add a study'):\n"
        "  1. fill the rows above; add outcome rows (continuous_outcomes.csv, "
        "dichotomous_outcomes.csv; effect_estimates.csv for study-level estimates), each "
        "naming an outcome_id of outcomes.csv (define a new outcome there first), and "
        "claims.csv rows for what the sources state\n"
        f"  2. trialpool refresh {shown}\n"
        f"  3. frictionless validate {shown} && trialpool validate {shown}\n"
        "  4. bump the version in datapackage.json and add a CHANGELOG.md entry"
    )
    return 0


def _varying_keys(rows: list[dict[str, str]]) -> list[str]:
    """Pre-filled fields whose values differ between the rows (shown per row)."""
    if len(rows) < 2:
        return []
    return [k for k in rows[0] if rows[0][k] and len({r[k] for r in rows}) > 1]
