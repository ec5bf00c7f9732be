#!/usr/bin/env python3
"""Build conforming test packages from real metadat datasets (engine fixtures).

Reads the CSV exports of metadat datasets in tests/golden/data/ (written by
scripts/golden/effects.R, with metadat's own title and Source text in
metadat_docs.json) and writes one package per dataset under
tests/fixtures/metadat_<name>/: datapackage.json, data/*.csv (every resource of the
project, header-only where the dataset has nothing to say) and schemas/ — a byte-for-byte
copy of the repository's schemas/ (a package may not point outside its folder, and
tests/analysis/test_pool_cli.py checks that the copies never drift from the originals).

These packages exist to test the pooling engine end to end on data nobody here wrote;
they are not liver data. The outcome vocabulary is fixed by the schemas, so each
fixture maps its outcome to a stand-in code and says so in its notes and descriptor.
Where the schemas need a value the dataset does not have (a time point; normand1999's
year), the fixture states the stand-in it uses in the row's notes. A control arm's
comparator_type follows the control metadat documents: dat.bcg's unvaccinated controls
are ``untreated``; dat.nielweise2007's standard catheter and dat.normand1999's routine
care are ``standard_care`` (usual care, as the default analysis pools it).

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

RESOURCES = [
    ("sources", "Sources"),
    ("studies", "Studies"),
    ("arms", "Arms"),
    ("continuous_outcomes", "Continuous outcomes (per arm)"),
    ("dichotomous_outcomes", "Dichotomous outcomes (per arm)"),
    ("bias_judgements", "Risk-of-bias judgements"),
    ("claims", "Claims: what each source says"),
    ("published_results", "Pooled results printed by reviews"),
    ("screening", "Screening decisions"),
]

#: the time point every fixture row uses: metadat gives none, the schema needs one
TIMEPOINT = 1
TIMEPOINT_NOTE = (
    f"timepoint_weeks = {TIMEPOINT} is a stand-in: the metadat dataset gives no time point"
)
ENGINE_NOTE = "Engine-test fixture built from metadat by scripts/make_fixture_packages.py."


@dataclass
class Fixture:
    """One package: the dataset it comes from and how its rows are built."""

    name: str
    dataset: str
    source_id: str
    outcome: str
    outcome_note: str
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


def _study(
    fx: Fixture,
    study_id: str,
    label: str,
    first_author: str,
    year: int,
    design: str,
    notes: str,
) -> dict[str, Any]:
    return {
        "study_id": study_id,
        "label": label,
        "first_author": first_author,
        "year": year,
        "country": "not reported in the metadat dataset",
        "design": design,
        "blinding": "unclear",
        "source_id": fx.source_id,
        "notes": notes,
    }


def _arm(
    fx: Fixture,
    study_id: str,
    arm_id: str,
    role: str,
    description: str,
    n: int | None,
    comparator: str = "not_applicable",
) -> dict[str, Any]:
    """One arm; ``comparator`` is the control's comparator_type, read from the
    description metadat documents (not_applicable for intervention arms)."""
    return {
        "study_id": study_id,
        "arm_id": arm_id,
        "role": role,
        "comparator_type": comparator,
        "primary_comparison": "true",
        "description": description,
        "cell_source": "not_applicable",
        "origin": "not_applicable",
        "route": "not_applicable",
        "n_analysed": "" if n is None else n,
        "source_id": fx.source_id,
        "notes": "No cells: not an MSC trial (engine-test fixture).",
    }


def _events(fx: Fixture, study_id: str, arm_id: str, events: int, total: int, row: int):
    return {
        "study_id": study_id,
        "arm_id": arm_id,
        "outcome": fx.outcome,
        "timepoint_weeks": TIMEPOINT,
        "events": events,
        "total": total,
        "source_id": fx.source_id,
        "locator": f"metadat {fx.dataset}, row {row}",
        "verification": "secondary",
        "notes": f"{fx.outcome_note}; {TIMEPOINT_NOTE}.",
    }


def _bcg(rows: list[dict[str, str]], fx: Fixture) -> dict[str, list[dict[str, Any]]]:
    ids = _unique([f"{_slug(r['author'].split()[0])}{r['year']}" for r in rows])
    out: dict[str, list[dict[str, Any]]] = {"studies": [], "arms": [], "dichotomous_outcomes": []}
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
        out["arms"].append(_arm(fx, sid, "bcg", "intervention", "BCG vaccination.", n1))
        out["arms"].append(_arm(fx, sid, "control", "control", "Not vaccinated.", n2, "untreated"))
        out["dichotomous_outcomes"].append(_events(fx, sid, "bcg", int(r["tpos"]), n1, i))
        out["dichotomous_outcomes"].append(_events(fx, sid, "control", int(r["cpos"]), n2, i))
    return out


def _nielweise(rows: list[dict[str, str]], fx: Fixture) -> dict[str, list[dict[str, Any]]]:
    ids = _unique([f"{_slug(r['author'])}{r['year']}" for r in rows])
    out: dict[str, list[dict[str, Any]]] = {"studies": [], "arms": [], "dichotomous_outcomes": []}
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
            _arm(fx, sid, "treated", "intervention", "Anti-infective-treated catheter.", n1)
        )
        out["arms"].append(
            _arm(fx, sid, "standard", "control", "Standard catheter.", n2, "standard_care")
        )
        out["dichotomous_outcomes"].append(_events(fx, sid, "treated", int(r["ai"]), n1, i))
        out["dichotomous_outcomes"].append(_events(fx, sid, "standard", int(r["ci"]), n2, i))
    return out


def _normand(rows: list[dict[str, str]], fx: Fixture) -> dict[str, list[dict[str, Any]]]:
    ids = _unique([_slug(r["source"]) for r in rows])
    out: dict[str, list[dict[str, Any]]] = {"studies": [], "arms": [], "continuous_outcomes": []}
    for i, (sid, r) in enumerate(zip(ids, rows, strict=True), start=1):
        out["studies"].append(
            _study(
                fx,
                sid,
                r["source"],
                f"not reported in metadat (source of data: {r['source']})",
                1999,
                "rct",
                f"Study {r['study']} of dat.normand1999. metadat documents neither author, "
                "year nor design: year = 1999 (the review's year) and design = rct are "
                f"stand-ins so that the default (RCT-only) analysis uses it. {ENGINE_NOTE}",
            )
        )
        n1, n2 = int(r["n1i"]), int(r["n2i"])
        out["arms"].append(
            _arm(fx, sid, "specialist", "intervention", "Specialised (stroke unit) care.", n1)
        )
        out["arms"].append(
            _arm(fx, sid, "routine", "control", "Routine care.", n2, "standard_care")
        )
        for arm, n, m, sd in (
            ("specialist", n1, r["m1i"], r["sd1i"]),
            ("routine", n2, r["m2i"], r["sd2i"]),
        ):
            out["continuous_outcomes"].append(
                {
                    "study_id": sid,
                    "arm_id": arm,
                    "outcome": fx.outcome,
                    "timepoint_weeks": TIMEPOINT,
                    "statistic": "mean_sd",
                    "n": n,
                    "mean": m,
                    "sd": sd,
                    "unit": "days",
                    "source_id": fx.source_id,
                    "locator": f"metadat {fx.dataset}, row {i}",
                    "verification": "secondary",
                    "notes": f"{fx.outcome_note}; {TIMEPOINT_NOTE}.",
                }
            )
    return out


FIXTURES_SPEC = [
    Fixture(
        "bcg",
        "dat.bcg",
        "colditz1994",
        "adverse_event",
        "Stand-in outcome code for an engine test: the value is the number of tuberculosis "
        "cases (dat.bcg tpos/cpos), not adverse events",
        _bcg,
    ),
    Fixture(
        "nielweise2007",
        "dat.nielweise2007",
        "nielweise2007",
        "severe_infection",
        "Stand-in outcome code for an engine test: the value is the number of "
        "catheter-related bloodstream infections (dat.nielweise2007 ai/ci)",
        _nielweise,
    ),
    Fixture(
        "normand1999",
        "dat.normand1999",
        "normand1999",
        "meld",
        "Stand-in outcome code for an engine test: the value is the length of hospital stay "
        "in days of stroke patients (dat.normand1999), not a MELD score",
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
    resources = []
    for name, title in RESOURCES:
        schema_file = SCHEMAS / f"{name}.schema.json"
        shutil.copyfile(schema_file, root / "schemas" / schema_file.name)
        fields = [f["name"] for f in json.loads(schema_file.read_text(encoding="utf-8"))["fields"]]
        (root / "data" / f"{name}.csv").write_text(
            _csv_text(fields, tables.get(name, [])), encoding="utf-8"
        )
        resources.append(
            {
                "name": name,
                "title": title,
                "path": f"data/{name}.csv",
                "schema": f"schemas/{name}.schema.json",
                "profile": "tabular-data-resource",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
            }
        )
    doc = _docs()[fx.dataset]
    descriptor = {
        "profile": "tabular-data-package",
        "name": f"metadat-{fx.name}",
        "id": f"metadat-{fx.name}",
        "version": "1.0.0",
        "title": f"Engine-test fixture from metadat {fx.dataset}: {doc['title']}",
        "description": (
            f"{doc['title']} ({fx.dataset} in the R package metadat), converted into the "
            "msc-aclf-trials package format to test the pooling engine end to end against "
            f"metafor. Not liver data. {fx.outcome_note}. {TIMEPOINT_NOTE}."
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
