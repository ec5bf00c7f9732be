"""Which plan a package is pooled with: the one given, the package's own, or one built
from its data.

``resolve_plan`` is shared by ``trialpool report`` and ``trialpool diff --results`` (each
version's plan): a plan given in code or as a file; else ``analysis/plan.json`` beside the
descriptor; else :func:`trialpool.analysis.plan.auto_plan` over every outcome and time
point with data (labels, units and directions from the package's ``outcomes``, the arms'
names from the primary comparisons' label). The second value says where the plan came
from (the report's "Analysis plan" line).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from trialpool.analysis.plan import AnalysisPlan, auto_plan, load_plan
from trialpool.analysis.runs import outcome_infos, table_or_none
from trialpool.package.loader import Package

__all__ = ["FROM_DATA", "resolve_plan"]

#: where a plan built from the data comes from (the report's "Analysis plan" line)
FROM_DATA = "built from the data (no plan given, no analysis/plan.json)"


def _available(pkg: Package) -> list[tuple[str, float | str | None, str, bool]]:
    """Each outcome's time points with data: weeks, or the code of rows without weeks."""
    available: list[tuple[str, float | str | None, str, bool]] = []
    for name, kind in (
        ("continuous_outcomes", "continuous"),
        ("dichotomous_outcomes", "dichotomous"),
    ):
        frame = table_or_none(pkg, name)
        if frame is None or frame.empty:
            continue
        frame = frame.assign(
            _when=[
                float(w) if pd.notna(w) else (str(c) if pd.notna(c) else "as_reported")
                for w, c in zip(frame["timepoint_weeks"], frame["timepoint"], strict=True)
            ]
        )
        for outcome in sorted({str(o) for o in frame["outcome"].dropna()}):
            rows = frame[(frame["outcome"] == outcome).fillna(False)]
            whens = rows["_when"].tolist()
            weeks = sorted({w for w in whens if isinstance(w, float)})
            codes = sorted({w for w in whens if isinstance(w, str)})
            for when in [*weeks, *codes]:
                part = rows[[w == when for w in whens]]
                same_unit = "unit" not in part.columns or part["unit"].nunique(dropna=True) <= 1
                available.append((outcome, when, kind, bool(same_unit)))
    return available


def _favours(pkg: Package) -> tuple[str, str] | None:
    """The arms' names from the primary comparisons' one label ("BCG vaccine versus no
    vaccine" -> BCG vaccine, no vaccine); None when the labels differ or do not split."""
    frame = table_or_none(pkg, "comparisons")
    if frame is None or frame.empty:
        return None
    primary = frame[frame["primary"].fillna(False).astype(bool)]
    labels = {str(x).strip() for x in (primary if not primary.empty else frame)["label"].dropna()}
    if len(labels) != 1:
        return None
    parts = [x.strip() for x in next(iter(labels)).split(" versus ")]
    return (parts[0], parts[1]) if len(parts) == 2 and all(parts) else None


def resolve_plan(plan: AnalysisPlan | Path | str | None, pkg: Package) -> tuple[AnalysisPlan, str]:
    """The plan to run and where it came from: given, the package's, or built from the data
    (its outcomes' labels, units and directions from the package's ``outcomes``)."""
    if isinstance(plan, AnalysisPlan):
        return plan, "given in code"
    if plan is not None:
        path = Path(plan)
        loaded = load_plan(path)  # first: a missing or invalid plan is a PlanError
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        return loaded, f"{path.name} (sha256 {digest})"
    default = pkg.root / "analysis" / "plan.json"
    if default.is_file():
        digest = hashlib.sha256(default.read_bytes()).hexdigest()[:12]
        return load_plan(default), f"analysis/plan.json of the package (sha256 {digest})"
    title = f"{pkg.name}: every outcome and time point"
    built = auto_plan(
        _available(pkg), title=title, outcomes=outcome_infos(pkg), favours=_favours(pkg)
    )
    return built, FROM_DATA
