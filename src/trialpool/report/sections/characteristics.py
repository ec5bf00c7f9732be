"""Section "Study characteristics": the review's Table 1 rebuilt from the package.

Each cell shows the best-supported value and its source ids; † links to the discrepancy
table where the audited review prints a different value. Also written as
tables/study_characteristics.csv.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from trialpool.analysis.runs import table_or_none
from trialpool.report.context import Context
from trialpool.report.document import Heading, Inline, Inlines, Link, Muted, Node, Para, Table
from trialpool.report.format import val, weeks

CSV_HEADER = [
    "study_id",
    "study",
    "country",
    "design",
    "population",
    "msc_arm",
    "control_arm",
    "n_msc",
    "n_control",
    "follow_up_weeks",
    "source_ids",
]

_HEADER = [
    "Study",
    "Country",
    "Design",
    "Population",
    "MSC arm",
    "Control arm",
    "n randomised (MSC / control)",
    "Follow-up",
]

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


def _sci(x: Any) -> str:
    v = float(x)
    if v == 0:
        return "0"
    e = math.floor(math.log10(abs(v)))
    return f"{v / 10**e:g}×10^{e}"


def _fmt_dose(arm: Any) -> str | None:
    """ "1×10^6 cells/kg × 4": dose per infusion (range), unit, number of infusions."""
    dose = getattr(arm, "dose_per_infusion", None)
    if val(dose) is None:
        return None
    hi = getattr(arm, "dose_per_infusion_max", None)
    unit = val(getattr(arm, "dose_unit", None)) or ""
    text = _sci(dose) + (f"–{_sci(hi)}" if val(hi) is not None else "") + f" {unit}".rstrip()
    n_inf = val(getattr(arm, "n_infusions", None))
    if n_inf:
        text += f" × {n_inf}"
    return text


@dataclass
class _Arms:
    """The primary comparison's MSC and control arm of one study, as text."""

    msc: str | None = None
    control: str | None = None
    msc_src: list[str] = field(default_factory=list)
    control_src: list[str] = field(default_factory=list)
    n_msc: str | None = None
    n_control: str | None = None


def _arms(arm_rows: pd.DataFrame | None) -> _Arms:
    out = _Arms()
    if arm_rows is None or arm_rows.empty:
        return out
    prim = arm_rows["primary_comparison"] if "primary_comparison" in arm_rows.columns else None
    chosen = arm_rows[prim.fillna(False).astype(bool)] if prim is not None else arm_rows
    if chosen.empty:
        chosen = arm_rows
    for arm in chosen.itertuples():
        if str(arm.role) == "intervention" and out.msc is None:
            bits = [
                str(arm.cell_source).replace("_", " "),
                str(arm.origin).replace("_", " "),
                _fmt_dose(arm),
                str(arm.route).replace("_", " "),
            ]
            out.msc = ", ".join(b for b in bits if b and b != "None")
            out.msc_src.append(str(arm.source_id))
            out.n_msc = val(getattr(arm, "n_randomised", None))
        elif str(arm.role) == "control" and out.control is None:
            out.control = val(arm.description)
            out.control_src.append(str(arm.source_id))
            out.n_control = val(getattr(arm, "n_randomised", None))
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

    def cell(self, value: str | None, sources: Sequence[str], sid: str, group: str) -> list[Inline]:
        prim, flagged = self._claim_sources(sid, group)
        srcs = list(dict.fromkeys([*sources, *prim]))
        out: list[Inline] = [value or "not reported"]
        if flagged:
            out.append(Link(" †", "#discrepancies"))
        if srcs:
            out.append(Muted(" [" + ", ".join(srcs) + "]"))
        return out


def section(ctx: Context) -> list[Node]:
    pkg, info = ctx.pkg, ctx.studies
    studies = table_or_none(pkg, "studies")
    arms = table_or_none(pkg, "arms")
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
        ctx.write_table("study_characteristics", CSV_HEADER, [])
        return nodes
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
        a = _arms(arms[(arms["study_id"] == sid).fillna(False)] if arms is not None else None)
        rows.append(
            [
                cells.cell(title, src, sid, "study"),
                cells.cell(val(st.country), src, sid, "country"),
                cells.cell(design, src, sid, "design"),
                cells.cell(pop or None, src, sid, "population"),
                cells.cell(a.msc, a.msc_src, sid, "msc"),
                cells.cell(a.control, a.control_src, sid, "control"),
                cells.cell(f"{a.n_msc or '?'} / {a.n_control or '?'}", a.msc_src + a.control_src,
                           sid, "n"),
                cells.cell(f"{fu} weeks" if fu else None, src, sid, "follow_up"),
            ]
        )  # fmt: skip
        flat.append(
            [sid, title, val(st.country), design, pop, a.msc, a.control, a.n_msc, a.n_control, fu,
             "; ".join(dict.fromkeys(src + a.msc_src + a.control_src))]
        )  # fmt: skip
    nodes.append(
        Table(header=_HEADER, rows=rows, caption="Characteristics of the included studies")
    )
    ctx.write_table("study_characteristics", CSV_HEADER, flat)
    return nodes
