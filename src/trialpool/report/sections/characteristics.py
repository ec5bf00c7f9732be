"""Section "Study characteristics": the review's Table 1 rebuilt from the package.

One row per comparison of a study (``comparisons``): its primary comparison first, then
any other (a multi-arm trial contributes a row per pair of arms it compares; the
study-level cells of those rows say "as above"). The experimental arm's cell holds its
MSC treatment (cell source, origin, dose, route: ``msc_arms``) when the package declares
the ``msc`` extension and has that arm's row, else the arm's description; the control
arm's cell its description. Each cell shows the best-supported value and its source
ids; † links to the discrepancy table where the audited review prints a different
value. Also written as tables/study_characteristics.csv (one row per comparison).

An imported review (a plan of RevMan analyses only) shows instead each included study
(label, year, identifiers) with the review's own characteristics, the claims whose field
starts with ``characteristics_`` (methods, participants, interventions, outcomes, notes):
cut to a readable length in the report, in full in tables/study_characteristics.csv. A
plan with both kinds of analyses shows the first table, and the second when the package
holds such claims (tables/review_characteristics.csv).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from trialpool.analysis.runs import table_or_none
from trialpool.report.context import Context
from trialpool.report.document import (
    Code,
    Heading,
    Inline,
    Inlines,
    Link,
    Muted,
    Node,
    Para,
    Table,
)
from trialpool.report.format import val, weeks

#: the review's characteristics (claims ``characteristics_<name>``), in the review's order
REVIEW_FIELDS = ("methods", "participants", "interventions", "outcomes", "notes")
#: characters of a characteristic shown in the report (the CSV has the full text)
REVIEW_CELL_CHARS = 240

REVIEW_CSV_HEADER = [
    "study_id",
    "study",
    "year",
    "registration",
    "doi",
    "pmid",
    "other_identifiers",
    *REVIEW_FIELDS,
    "source_ids",
]

MSC = "msc"

#: the claims table's fields behind each column
_CLAIM_FIELDS: dict[str, tuple[str, ...]] = {
    "study": ("study_label", "publication_year", "registration"),
    "country": ("country", "centre"),
    "design": ("design", "blinding", "phase"),
    "population": ("etiology", "population", "aclf_definition", "liver_failure_definition"),
    "msc": ("cell_source", "origin", "dose", "dose_total", "dose_per_kg", "route", "n_infusions"),
    "control": ("control_treatment",),
    "n": ("n_intervention", "n_control", "n_total"),
    "follow_up": ("follow_up",),
}


def csv_header(msc: bool) -> list[str]:
    """The CSV's columns (the experimental arm is the MSC arm with the msc extension)."""
    arm, n = ("msc_arm", "n_msc") if msc else ("experimental_arm", "n_experimental")
    return [
        "study_id",
        "study",
        "comparison_id",
        "comparison",
        "country",
        "design",
        "population",
        arm,
        "control_arm",
        n,
        "n_control",
        "follow_up_weeks",
        "source_ids",
    ]


def _header(msc: bool, with_comparison: bool) -> list[str]:
    arm, n = ("MSC arm", "MSC") if msc else ("Experimental arm", "experimental")
    return [
        "Study",
        "Country",
        "Design",
        "Population",
        *(["Comparison"] if with_comparison else []),
        arm,
        "Control arm",
        f"n randomised ({n} / control)",
        "Follow-up",
    ]


def _sci(x: Any) -> str:
    v = float(x)
    if v == 0:
        return "0"
    e = math.floor(math.log10(abs(v)))
    return f"{v / 10**e:g}×10^{e}"


def _fmt_dose(arm: dict[str, Any]) -> str | None:
    """ "1×10^6 cells/kg × 4": dose per infusion (range), unit, number of infusions."""
    dose = arm.get("dose_per_infusion")
    if val(dose) is None:
        return None
    hi = arm.get("dose_per_infusion_max")
    unit = val(arm.get("dose_unit")) or ""
    text = _sci(dose) + (f"–{_sci(hi)}" if val(hi) is not None else "") + f" {unit}".rstrip()
    n_inf = val(arm.get("n_infusions"))
    if n_inf:
        text += f" × {n_inf}"
    return text


def _words(value: Any) -> str | None:
    text = val(value)
    return None if text is None else text.replace("_", " ")


def _msc_text(arm: dict[str, Any]) -> str | None:
    """The MSC treatment of an arm: cell source, origin, dose, route (msc_arms)."""
    bits = [
        _words(arm.get("cell_source")),
        _words(arm.get("origin")),
        _fmt_dose(arm),
        _words(arm.get("route")),
    ]
    return ", ".join(b for b in bits if b) or None


@dataclass
class _Arms:
    """One comparison of a study: its experimental and control arm, as text."""

    comparison_id: str | None = None
    label: str | None = None
    primary: bool = False
    experimental: str | None = None
    control: str | None = None
    exp_name: str | None = None  # the arm's id, shown in a multi-arm study
    ctl_name: str | None = None
    exp_src: list[str] = field(default_factory=list)
    control_src: list[str] = field(default_factory=list)
    n_src: list[str] = field(default_factory=list)
    n_exp: str | None = None
    n_control: str | None = None


def _records(frame: pd.DataFrame | None) -> list[dict[str, Any]]:
    if frame is None or frame.empty:
        return []
    return [
        {k: (None if val(v) is None else v) for k, v in r.items()} for r in frame.to_dict("records")
    ]


class _ArmReader:
    """Arms by (study, arm), with the msc extension's fields when the package declares it."""

    def __init__(self, ctx: Context) -> None:
        pkg = ctx.pkg
        self.msc = MSC in pkg.extensions and pkg.has("msc_arms")
        self.arms = {
            (str(r["study_id"]), str(r["arm_id"])): r for r in _records(table_or_none(pkg, "arms"))
        }
        self.msc_arms = (
            {(str(r["study_id"]), str(r["arm_id"])): r for r in _records(pkg.table("msc_arms"))}
            if self.msc
            else {}
        )
        self.comparisons: dict[str, list[dict[str, Any]]] = {}
        for r in _records(table_or_none(pkg, "comparisons")):
            self.comparisons.setdefault(str(r["study_id"]), []).append(r)

    def n_arms(self, sid: str) -> int:
        return sum(1 for s, _ in self.arms if s == sid)

    def ordered(self, sid: str) -> list[dict[str, Any]]:
        """The study's comparisons, its primary one first (else in table order)."""
        comps = self.comparisons.get(sid, [])
        return sorted(comps, key=lambda c: 0 if c.get("primary") is True else 1)

    def experimental(self, sid: str, arm_id: str, out: _Arms) -> None:
        arm = self.arms.get((sid, arm_id), {})
        out.exp_name = arm_id
        out.n_exp = val(arm.get("n_randomised"))
        if arm.get("source_id"):
            out.n_src.append(str(arm["source_id"]))
        ext = self.msc_arms.get((sid, arm_id))
        if ext is not None:  # the msc extension's fields (declared, with a row for this arm)
            out.experimental = _msc_text(ext)
            out.exp_src.append(str(ext["source_id"]))
            return
        out.experimental = val(arm.get("description"))
        if arm.get("source_id"):
            out.exp_src.append(str(arm["source_id"]))

    def control(self, sid: str, arm_id: str, out: _Arms) -> None:
        arm = self.arms.get((sid, arm_id), {})
        out.ctl_name = arm_id
        out.control = val(arm.get("description"))
        out.n_control = val(arm.get("n_randomised"))
        if arm.get("source_id"):
            out.control_src.append(str(arm["source_id"]))
            out.n_src.append(str(arm["source_id"]))

    def rows(self, sid: str) -> list[_Arms]:
        """One entry per comparison of the study (one empty entry when it has none; a
        study with a single arm and no comparison shows that arm as experimental)."""
        out: list[_Arms] = []
        for comp in self.ordered(sid):
            a = _Arms(
                comparison_id=str(comp["comparison_id"]),
                label=val(comp.get("label")),
                primary=comp.get("primary") is True,
            )
            self.experimental(sid, str(comp["experimental_arm_id"]), a)
            self.control(sid, str(comp["control_arm_id"]), a)
            out.append(a)
        if not out:
            a = _Arms()
            only = [arm for (s, arm) in self.arms if s == sid]
            if len(only) == 1:
                self.experimental(sid, only[0], a)
                a.control = "no control arm"
            out.append(a)
        return out


class _Cells:
    """Table cells with their sources, flagged where the audited review disagrees."""

    def __init__(self, claims: pd.DataFrame | None, audited: str | None) -> None:
        self.claims = claims
        self.audited = audited

    def _claim_sources(self, sid: str, group: str) -> tuple[list[str], bool]:
        claims = self.claims
        if claims is None or claims.empty:
            return [], False
        fields = _CLAIM_FIELDS[group]
        sub = claims[
            (claims["study_id"] == sid).fillna(False) & claims["field"].isin(fields).fillna(False)
        ]
        prim = sorted(
            {str(x) for x in sub.loc[(sub["status"] == "primary").fillna(False), "source_id"]}
        )
        flagged = bool(
            self.audited
            and ((sub["source_id"] == self.audited) & (sub["status"] == "conflicting"))
            .fillna(False)
            .any()
        )
        return prim, flagged

    def cell(
        self,
        value: str | None,
        sources: Sequence[str],
        sid: str,
        group: str,
        name: str | None = None,
    ) -> list[Inline]:
        """The value (or "not reported"), † when flagged, then its sources; ``name``
        (an arm id) is shown first."""
        prim, flagged = self._claim_sources(sid, group)
        srcs = list(dict.fromkeys([*sources, *prim]))
        out: list[Inline] = [Code(name), ": "] if name else []
        out.append(value or "not reported")
        if flagged:
            out.append(Link(" †", "#discrepancies"))
        if srcs:
            out.append(Muted(" [" + ", ".join(srcs) + "]"))
        return out


def _comparison_cell(a: _Arms, several: bool) -> list[Inline]:
    if a.comparison_id is None:
        return [Muted("no comparison in the package")]
    out: list[Inline] = [a.label or a.comparison_id]
    if several and not a.primary:
        out.append(Muted(" (not the primary comparison)"))
    return out


def _cut(text: str, limit: int = REVIEW_CELL_CHARS) -> str:
    """``text`` cut at a word boundary near ``limit`` characters, with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:.")
    return cut + " …"


def _other_identifiers(notes: str | None) -> str | None:
    """The identifiers an import keeps in a study's notes ("Other identifiers: crs 123")."""
    if not notes:
        return None
    found = re.search(r"Other identifiers: (.+?)(?:\.?\s+(?=[A-Z])|\.?$)", notes)
    return found.group(1).strip() if found else None


def _review_characteristics(ctx: Context) -> tuple[dict[str, dict[str, list[str]]], set[str]]:
    """study -> field -> values of the ``characteristics_*`` claims, and their sources."""
    claims = table_or_none(ctx.pkg, "claims")
    out: dict[str, dict[str, list[str]]] = {}
    sources: set[str] = set()
    if claims is None or claims.empty:
        return out, sources
    for r in claims.itertuples():
        field_name = str(r.field)
        if not field_name.startswith("characteristics_"):
            continue
        name = field_name.removeprefix("characteristics_")
        value = val(r.value)
        if value is None:
            continue
        values = out.setdefault(str(r.study_id), {}).setdefault(name, [])
        if value not in values:
            values.append(value)
        sources.add(str(r.source_id))
    return out, sources


def review_section(ctx: Context, csv_name: str, *, heading: bool = True) -> list[Node]:
    """Each included study with the review's own characteristics (an imported review)."""
    info = ctx.studies
    studies = table_or_none(ctx.pkg, "studies")
    chars, sources = _review_characteristics(ctx)
    nodes: list[Node] = []
    if heading:
        nodes.append(Heading(2, "Study characteristics", "characteristics"))
    if studies is None or studies.empty:
        nodes.append(Para("No studies in the package.", cls="note"))
        ctx.write_table(csv_name, REVIEW_CSV_HEADER, [])
        return nodes
    fields = [f for f in REVIEW_FIELDS if any(f in c for c in chars.values())]
    fields += sorted({f for c in chars.values() for f in c} - set(fields))
    src = ", ".join(sorted(sources))
    nodes.append(
        Para(
            "Each included study as the review describes it"
            + (
                f" (its characteristics of included studies, source {src}; cut to "
                f"{REVIEW_CELL_CHARS} characters here, in full in tables/{csv_name}.csv)."
                if fields
                else ": the imported file holds no characteristics of the included studies "
                "(its methods, participants, interventions and outcomes)."
            )
        )
    )
    by_id = {str(r.study_id): r for r in studies.itertuples()}
    rows: list[list[Inlines]] = []
    flat: list[list[Any]] = []
    for sid in info.order:
        st = by_id[sid]
        label = str(st.label)
        year = val(getattr(st, "year", None))
        reg = val(getattr(st, "registration", None))
        doi = val(getattr(st, "doi", None))
        pmid = val(getattr(st, "pmid", None))
        other = _other_identifiers(val(getattr(st, "notes", None)))
        ids = [x for x in (reg, f"doi:{doi}" if doi else None, f"PMID {pmid}" if pmid else None,
                           other) if x]  # fmt: skip
        study_cell: list[Inline] = [label]
        if year and year not in label:
            study_cell.append(f" ({year})")
        if ids:
            study_cell.append(Muted(" " + "; ".join(ids)))
        mine = chars.get(sid, {})
        texts = {f: " | ".join(mine.get(f, [])) for f in fields}
        rows.append([study_cell, *[_cut(texts[f]) if texts[f] else "–" for f in fields]])
        flat.append(
            [sid, label, year, reg, doi, pmid, other,
             *[" | ".join(mine.get(f, [])) or None for f in REVIEW_FIELDS],
             str(st.source_id)]
        )  # fmt: skip
    header = ["Study", *[f.replace("_", " ").capitalize() for f in fields]]
    nodes.append(
        Table(
            header=header,
            rows=rows,
            caption="Characteristics of included studies",
            full=f"tables/{csv_name}.csv",
        )
    )
    ctx.write_table(csv_name, REVIEW_CSV_HEADER, flat)
    return nodes


def section(ctx: Context) -> list[Node]:
    if ctx.revman_analyses and not ctx.metafor_analyses:
        return review_section(ctx, "study_characteristics")
    nodes = _comparison_section(ctx)
    if ctx.revman_analyses and _review_characteristics(ctx)[0]:
        nodes.append(Heading(3, "As the imported review describes them", "characteristics-review"))
        nodes.extend(review_section(ctx, "review_characteristics", heading=False))
    return nodes


def _comparison_section(ctx: Context) -> list[Node]:
    pkg, info = ctx.pkg, ctx.studies
    studies = table_or_none(pkg, "studies")
    reader = _ArmReader(ctx)
    header = csv_header(reader.msc)
    audited = ctx.plan.audited_source_id
    nodes: list[Node] = [
        Heading(2, "Study characteristics", "characteristics"),
        Para(
            "The review's Table 1, rebuilt from the package (best-supported values; every "
            "source's competing value is kept in the claims table). Source ids are shown after "
            "each cell; † marks a cell where "
            + (
                f"{audited} prints a different value (see the discrepancy table)."
                if audited
                else "sources disagree (see the claims table)."
            )
        ),
    ]
    if studies is None or studies.empty:
        nodes.append(Para("No studies in the package.", cls="note"))
        ctx.write_table("study_characteristics", header, [])
        return nodes
    labels = {str(c.get("label")) for cs in reader.comparisons.values() for c in cs}
    with_comparison = len(labels) > 1 or any(len(cs) > 1 for cs in reader.comparisons.values())
    cells = _Cells(table_or_none(pkg, "claims"), audited)
    rows: list[list[Inlines]] = []
    flat: list[list[Any]] = []
    by_id = {str(r.study_id): r for r in studies.itertuples()}
    for sid in info.order:
        st = by_id[sid]
        src = [str(st.source_id)]
        reg = val(getattr(st, "registration", None))
        title = f"{st.label}" + (f" ({reg})" if reg else "")
        design = str(st.design).replace("_", " ") + f"; {str(st.blinding).replace('_', ' ')}"
        pop = "; ".join(
            x
            for x in (val(getattr(st, "etiology", None)), val(getattr(st, "population", None)))
            if x
        )
        fu = weeks(getattr(st, "follow_up_weeks", None))
        entries = reader.rows(sid)
        multi = len(entries) > 1 or reader.n_arms(sid) > 2  # name the arms
        for i, a in enumerate(entries):
            if i == 0:
                study_cells: list[Inlines] = [
                    cells.cell(title, src, sid, "study"),
                    cells.cell(val(st.country), src, sid, "country"),
                    cells.cell(design, src, sid, "design"),
                    cells.cell(pop or None, src, sid, "population"),
                ]
                follow_up = cells.cell(f"{fu} weeks" if fu else None, src, sid, "follow_up")
            else:
                same = Muted("as above")
                study_cells = [[str(st.label), Muted(" (another comparison)")], same, same, same]
                follow_up = [same]
            exp_name = a.exp_name if multi else None
            ctl_name = a.ctl_name if multi else None
            rows.append(
                [
                    *study_cells,
                    *([_comparison_cell(a, len(entries) > 1)] if with_comparison else []),
                    cells.cell(a.experimental, a.exp_src, sid, "msc", exp_name),
                    cells.cell(a.control, a.control_src, sid, "control", ctl_name),
                    cells.cell(f"{a.n_exp or '?'} / {a.n_control or '?'}", a.n_src, sid, "n"),
                    follow_up,
                ]
            )
            exp_text = (
                f"{exp_name}: {a.experimental}" if exp_name and a.experimental else a.experimental
            )
            ctl_text = f"{ctl_name}: {a.control}" if ctl_name and a.control else a.control
            flat.append(
                [sid, title, a.comparison_id, a.label, val(st.country), design, pop, exp_text,
                 ctl_text, a.n_exp, a.n_control, fu,
                 "; ".join(dict.fromkeys(src + a.exp_src + a.n_src + a.control_src))]
            )  # fmt: skip
    nodes.append(
        Table(
            header=_header(reader.msc, with_comparison),
            rows=rows,
            caption="Characteristics of the included studies",
            full="tables/study_characteristics.csv",
        )
    )
    ctx.write_table("study_characteristics", header, flat)
    return nodes
