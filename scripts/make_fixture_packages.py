#!/usr/bin/env python3
"""Build conforming test packages from real metadat datasets (engine fixtures).

Reads the CSV exports of metadat datasets in tests/golden/data/ (written by
scripts/golden/effects.R, with metadat's own title and Source text in
metadat_docs.json) and writes one package per dataset under
tests/fixtures/metadat_<name>/: datapackage.json, data/*.csv (every core resource of
schemas/core.json, header-only where the dataset has nothing to say) and schemas/ — a
byte-for-byte copy of the repository's core schemas (a package may not point outside its
folder, and tests/analysis/test_pool_cli.py checks that the copies never drift from the
originals). The packages declare no extension: these are not MSC data.

These packages exist to test the pooling engine end to end on data nobody here wrote.
Each outcome is the dataset's own, defined as a row of ``outcomes`` in the words of
metadat's help page for the dataset (Description, Format and Details sections; cited in
the outcome's ``source_id`` and ``locator``):

* dat.bcg: ``tuberculosis`` — TB positive cases in the vaccinated and the control
  (non-vaccinated) groups (tpos, cpos of tpos + tneg and cpos + cneg); the vaccine is
  meant to prevent tuberculosis, so lower is better;
* dat.nielweise2007: ``crbsi`` — catheter-related bloodstream infections (CRBSIs) in
  patients receiving an anti-infective-treated or a standard catheter (ai of n1i, ci of
  n2i); the treated catheters are meant to reduce the risk of CRBSIs;
* dat.normand1999: ``length_of_stay`` — mean (SD) length of hospital stay in days of
  stroke patients under specialized and under routine care; the hypothesis is that
  specialist care shortens it.

The datasets give no time point, so every per-arm row has ``timepoint`` ``as_reported``
and no ``timepoint_weeks``. Each study has two arms (no role) and one ``comparisons`` row,
primary, saying which arm is experimental and which is the control, under a label naming
what the dataset compares. A control arm's comparator_type follows the control metadat
documents: dat.bcg's unvaccinated controls are ``untreated``; dat.nielweise2007's standard
catheter and dat.normand1999's routine care are ``standard_care`` (usual care, as the
default analysis pools it). A study's design comes from the dataset: dat.bcg's allocation
column (random: rct; alternate or systematic: non_randomised_controlled);
dat.nielweise2007's source is a systematic review of randomized controlled trials.
metadat documents no design for dat.normand1999: its studies are recorded as rct, and
their notes say so (see NORMAND_DESIGN_NOTE).

Usage::

    python scripts/make_fixture_packages.py            # (re)write every fixture
    python scripts/make_fixture_packages.py --check    # exit 1 if a fixture is stale
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from build_descriptor import build  # noqa: E402

DATA = ROOT / "tests" / "golden" / "data"
FIXTURES = ROOT / "tests" / "fixtures"
SCHEMAS = ROOT / "schemas"

#: the time point code of every per-arm row: the datasets give no separate time point
TIMEPOINT = "as_reported"
ENGINE_NOTE = "Engine-test fixture built from metadat by scripts/make_fixture_packages.py."
NORMAND_DESIGN_NOTE = (
    "metadat documents neither author, year nor design of the studies; they are recorded "
    "as rct (trials of specialist stroke unit care versus routine care, as Normand (1999) "
    "pools them) so that the default RCT-only analysis uses them."
)


def core_resources() -> list[dict[str, Any]]:
    """The core resources of schemas/core.json, in descriptor order (no extension)."""
    manifest = json.loads((SCHEMAS / "core.json").read_text(encoding="utf-8"))
    return list(manifest["resources"])


@dataclass(frozen=True)
class Outcome:
    """The dataset's outcome, as metadat's help page documents it."""

    outcome_id: str
    label: str
    data_type: str
    unit: str
    direction: str
    description: str
    locator: str


@dataclass(frozen=True)
class Fixture:
    """One package: the dataset it comes from and how its rows are built."""

    name: str
    dataset: str
    source_id: str
    outcome: Outcome
    comparison_label: str
    build_rows: Callable[[list[dict[str, str]], Fixture], dict[str, list[dict[str, Any]]]]


def _read(dataset: str) -> list[dict[str, str]]:
    with (DATA / f"{dataset}.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _docs() -> dict[str, Any]:
    return json.loads((DATA / "metadat_docs.json").read_text(encoding="utf-8"))


def _slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return s if s and s[0].isalpha() else f"s_{s}"


def _unique(ids: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for i in ids:
        seen[i] = seen.get(i, 0) + 1
        out.append(i if seen[i] == 1 else f"{i}_{seen[i]}")
    return out


def _source_row(fx: Fixture) -> dict[str, Any]:
    doc = _docs()[fx.dataset]
    source = doc["source"]  # one paragraph arrives as a string, several as a list
    text = (source if isinstance(source, str) else " ".join(source)).replace("*", "")
    doi = re.search(r"https://doi\.org/(10\.\S+)$", text)
    return {
        "source_id": fx.source_id,
        "kind": "other",
        "citation": f"{text} Data as distributed in the R package metadat ({fx.dataset}: "
        f"{doc['title']}).",
        "doi": doi.group(1) if doi else "",
        "url": doc["help_url"],
        "notes": ENGINE_NOTE,
    }


def _outcome_row(fx: Fixture) -> dict[str, Any]:
    o = fx.outcome
    return {
        "outcome_id": o.outcome_id,
        "label": o.label,
        "data_type": o.data_type,
        "unit": o.unit,
        "direction": o.direction,
        "description": o.description,
        "source_id": fx.source_id,
        "locator": o.locator,
    }


def _study(
    fx: Fixture,
    study_id: str,
    label: str,
    first_author: str,
    year: int | None,
    design: str,
    notes: str,
) -> dict[str, Any]:
    return {
        "study_id": study_id,
        "label": label,
        "first_author": first_author,
        "year": "" if year is None else year,
        "design": design,
        "blinding": "unclear",
        "source_id": fx.source_id,
        "notes": notes,
    }


def _arm(
    fx: Fixture,
    study_id: str,
    arm_id: str,
    label: str,
    description: str,
    n: int,
    comparator: str = "not_applicable",
) -> dict[str, Any]:
    """One arm; ``comparator`` is the control's comparator_type, read from the
    description metadat documents (not_applicable for the experimental arm)."""
    return {
        "study_id": study_id,
        "arm_id": arm_id,
        "label": label,
        "comparator_type": comparator,
        "description": description,
        "n_analysed": n,
        "source_id": fx.source_id,
    }


def _comparison(fx: Fixture, study_id: str, experimental: str, control: str) -> dict[str, Any]:
    return {
        "comparison_id": f"{study_id}_{experimental}_vs_{control}",
        "study_id": study_id,
        "experimental_arm_id": experimental,
        "control_arm_id": control,
        "label": fx.comparison_label,
        "primary": "true",
        "source_id": fx.source_id,
    }


def _events(
    fx: Fixture, study_id: str, arm_id: str, events: int, total: int, row: int, columns: str
) -> dict[str, Any]:
    return {
        "study_id": study_id,
        "arm_id": arm_id,
        "outcome": fx.outcome.outcome_id,
        "timepoint": TIMEPOINT,
        "events": events,
        "total": total,
        "source_id": fx.source_id,
        "locator": f"metadat {fx.dataset}, row {row} ({columns})",
        "verification": "secondary",
    }


def _bcg(rows: list[dict[str, str]], fx: Fixture) -> dict[str, list[dict[str, Any]]]:
    ids = _unique([f"{_slug(r['author'].split()[0])}{r['year']}" for r in rows])
    out: dict[str, list[dict[str, Any]]] = {
        "studies": [],
        "arms": [],
        "comparisons": [],
        "dichotomous_outcomes": [],
    }
    for i, (sid, r) in enumerate(zip(ids, rows, strict=True), start=1):
        design = "rct" if r["alloc"] == "random" else "non_randomised_controlled"
        out["studies"].append(
            _study(
                fx,
                sid,
                f"{r['author']} {r['year']}",
                r["author"].split()[0],
                int(r["year"]),
                design,
                f"Trial {r['trial']} of dat.bcg, published {r['year']}; treatment allocation "
                f"'{r['alloc']}' (metadat), so design {design}. "
                f"Absolute latitude {r['ablat']} degrees. {ENGINE_NOTE}",
            )
        )
        n1 = int(r["tpos"]) + int(r["tneg"])
        n2 = int(r["cpos"]) + int(r["cneg"])
        out["arms"].append(_arm(fx, sid, "bcg", "Vaccinated", "BCG vaccination.", n1))
        out["arms"].append(
            _arm(fx, sid, "control", "Not vaccinated", "Not vaccinated.", n2, "untreated")
        )
        out["comparisons"].append(_comparison(fx, sid, "bcg", "control"))
        out["dichotomous_outcomes"].append(
            _events(fx, sid, "bcg", int(r["tpos"]), n1, i, "tpos; total = tpos + tneg")
        )
        out["dichotomous_outcomes"].append(
            _events(fx, sid, "control", int(r["cpos"]), n2, i, "cpos; total = cpos + cneg")
        )
    return out


def _nielweise(rows: list[dict[str, str]], fx: Fixture) -> dict[str, list[dict[str, Any]]]:
    ids = _unique([f"{_slug(r['author'])}{r['year']}" for r in rows])
    out: dict[str, list[dict[str, Any]]] = {
        "studies": [],
        "arms": [],
        "comparisons": [],
        "dichotomous_outcomes": [],
    }
    for i, (sid, r) in enumerate(zip(ids, rows, strict=True), start=1):
        out["studies"].append(
            _study(
                fx,
                sid,
                f"{r['author']} {r['year']}",
                r["author"],
                int(r["year"]),
                "rct",
                f"Study {r['study']} of dat.nielweise2007 (a systematic review of randomized "
                f"controlled trials, per its title). {ENGINE_NOTE}",
            )
        )
        n1, n2 = int(r["n1i"]), int(r["n2i"])
        out["arms"].append(
            _arm(
                fx,
                sid,
                "treated",
                "Anti-infective catheter",
                "Anti-infective-treated central venous catheter.",
                n1,
            )
        )
        out["arms"].append(
            _arm(
                fx,
                sid,
                "standard",
                "Standard catheter",
                "Standard central venous catheter.",
                n2,
                "standard_care",
            )
        )
        out["comparisons"].append(_comparison(fx, sid, "treated", "standard"))
        out["dichotomous_outcomes"].append(
            _events(fx, sid, "treated", int(r["ai"]), n1, i, "ai of n1i")
        )
        out["dichotomous_outcomes"].append(
            _events(fx, sid, "standard", int(r["ci"]), n2, i, "ci of n2i")
        )
    return out


def _normand(rows: list[dict[str, str]], fx: Fixture) -> dict[str, list[dict[str, Any]]]:
    ids = _unique([_slug(r["source"]) for r in rows])
    out: dict[str, list[dict[str, Any]]] = {
        "studies": [],
        "arms": [],
        "comparisons": [],
        "continuous_outcomes": [],
    }
    for i, (sid, r) in enumerate(zip(ids, rows, strict=True), start=1):
        out["studies"].append(
            _study(
                fx,
                sid,
                r["source"],
                "",
                None,
                "rct",
                f"Study {r['study']} of dat.normand1999 (source of data: {r['source']}). "
                f"{NORMAND_DESIGN_NOTE} {ENGINE_NOTE}",
            )
        )
        n1, n2 = int(r["n1i"]), int(r["n2i"])
        out["arms"].append(
            _arm(
                fx,
                sid,
                "specialist",
                "Specialized care",
                "Specialized (specialist stroke unit) care.",
                n1,
            )
        )
        out["arms"].append(
            _arm(
                fx,
                sid,
                "routine",
                "Routine care",
                "Conventional/routine (non-specialist) care.",
                n2,
                "standard_care",
            )
        )
        out["comparisons"].append(_comparison(fx, sid, "specialist", "routine"))
        for arm, n, m, sd, cols in (
            ("specialist", n1, r["m1i"], r["sd1i"], "n1i, m1i, sd1i"),
            ("routine", n2, r["m2i"], r["sd2i"], "n2i, m2i, sd2i"),
        ):
            out["continuous_outcomes"].append(
                {
                    "study_id": sid,
                    "arm_id": arm,
                    "outcome": fx.outcome.outcome_id,
                    "timepoint": TIMEPOINT,
                    "statistic": "mean_sd",
                    "n": n,
                    "mean": m,
                    "sd": sd,
                    "unit": fx.outcome.unit,
                    "source_id": fx.source_id,
                    "locator": f"metadat {fx.dataset}, row {i} ({cols})",
                    "verification": "secondary",
                }
            )
    return out


FIXTURES_SPEC = [
    Fixture(
        "bcg",
        "dat.bcg",
        "colditz1994",
        Outcome(
            "tuberculosis",
            "Tuberculosis cases",
            "dichotomous",
            "",
            "lower_is_better",
            "Number of TB positive cases in the treated (vaccinated) group (tpos) and in the "
            "control (non-vaccinated) group (cpos), of the TB positive and TB negative cases "
            "of each group (tpos + tneg, cpos + cneg). The goal of the meta-analysis was to "
            "examine the overall effectiveness of the BCG vaccine for preventing tuberculosis.",
            "metadat help page of dat.bcg: Description; Format (tpos, tneg, cpos, cneg); "
            "Details (2x2 table of TB positive and TB negative cases)",
        ),
        "BCG vaccine versus no vaccine",
        _bcg,
    ),
    Fixture(
        "nielweise2007",
        "dat.nielweise2007",
        "nielweise2007",
        Outcome(
            "crbsi",
            "Catheter-related bloodstream infection (CRBSI)",
            "dichotomous",
            "",
            "lower_is_better",
            "Number of CRBSIs in patients receiving an anti-infective catheter (ai) and in "
            "patients receiving a standard catheter (ci), of the patients receiving each "
            "catheter (n1i, n2i). Anti-infective-treated catheters are meant to reduce the "
            "risk of CRBSIs.",
            "metadat help page of dat.nielweise2007: Description; Format (ai, n1i, ci, n2i); "
            "Details",
        ),
        "Anti-infective-treated versus standard central venous catheter",
        _nielweise,
    ),
    Fixture(
        "normand1999",
        "dat.normand1999",
        "normand1999",
        Outcome(
            "length_of_stay",
            "Length of hospital stay",
            "continuous",
            "days",
            "lower_is_better",
            "Mean length of the hospital stay (in days) of stroke patients, with its standard "
            "deviation, under specialized care (m1i, sd1i) and under routine care (m2i, sd2i). "
            "The meta-analysis examined whether specialist stroke unit care results in a "
            "shorter length of hospitalization than routine management.",
            "metadat help page of dat.normand1999: Description; Format (n1i, m1i, sd1i, n2i, "
            "m2i, sd2i); Details",
        ),
        "Specialized care versus routine care",
        _normand,
    ),
]


def _csv_text(fields: list[str], rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", extrasaction="raise")
    writer.writeheader()
    for row in rows:
        writer.writerow({f: row.get(f, "") for f in fields})
    return buf.getvalue()


def write_fixture(fx: Fixture, root: Path) -> None:
    """Write one fixture package into ``root`` (created or replaced)."""
    if root.exists():
        shutil.rmtree(root)
    (root / "data").mkdir(parents=True)
    (root / "schemas").mkdir()
    tables = fx.build_rows(_read(fx.dataset), fx)
    tables["sources"] = [_source_row(fx)]
    tables["outcomes"] = [_outcome_row(fx)]
    resources = []
    for spec in core_resources():
        name, schema_rel = spec["name"], spec["schema"]
        schema_file = SCHEMAS / schema_rel
        shutil.copyfile(schema_file, root / "schemas" / schema_file.name)
        fields = [f["name"] for f in json.loads(schema_file.read_text(encoding="utf-8"))["fields"]]
        (root / "data" / f"{name}.csv").write_text(
            _csv_text(fields, tables.pop(name, [])), encoding="utf-8"
        )
        resources.append(
            {
                "name": name,
                "title": spec["title"],
                "path": f"data/{name}.csv",
                "schema": f"schemas/{schema_file.name}",
                "profile": "tabular-data-resource",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
            }
        )
    if tables:  # a table the core does not have: never silently dropped
        raise ValueError(f"{fx.name}: rows for resources outside the core: {sorted(tables)}")
    doc = _docs()[fx.dataset]
    descriptor = {
        "profile": "tabular-data-package",
        "name": f"metadat-{fx.name}",
        "id": f"metadat-{fx.name}",
        "version": "1.0.0",
        "title": f"Engine-test fixture from metadat {fx.dataset}: {doc['title']}",
        "description": (
            f"{doc['title']} ({fx.dataset} in the R package metadat), converted into a "
            "package of the trialpool core schema (no extension) to test the pooling engine "
            f"end to end against metafor. Outcome: {fx.outcome.outcome_id} "
            f"({fx.outcome.label}), as metadat's help page documents it. Comparison: "
            f"{fx.comparison_label}, one per study. The dataset gives no time point: every "
            f"per-arm row has timepoint {TIMEPOINT} and no timepoint_weeks."
        ),
        "licenses": [
            {
                "name": "GPL-2.0-or-later",
                "title": "GNU General Public License, version 2 or later (metadat's licence)",
                "path": "https://www.gnu.org/licenses/old-licenses/gpl-2.0.html",
            }
        ],
        "contributors": [{"title": "msc-aclf-trials maintainers", "role": "author"}],
        "created": "2026-11-25T00:00:00Z",
        "sources": [],
        "resources": resources,
    }
    (root / "datapackage.json").write_text(
        json.dumps(descriptor, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (root / "datapackage.json").write_text(build(root), encoding="utf-8")


def _tree(root: Path) -> dict[str, bytes]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a fixture is stale")
    args = parser.parse_args(argv)
    stale = []
    for fx in FIXTURES_SPEC:
        target = FIXTURES / f"metadat_{fx.name}"
        if args.check:
            with tempfile.TemporaryDirectory() as tmp:
                fresh = Path(tmp) / target.name
                write_fixture(fx, fresh)
                if not target.exists() or _tree(fresh) != _tree(target):
                    stale.append(str(target))
            continue
        write_fixture(fx, target)
        print(f"{target}: written")
    if stale:
        for path in stale:
            print(f"{path}: stale; run: python scripts/make_fixture_packages.py", file=sys.stderr)
        return 1
    if args.check:
        print("fixtures up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
