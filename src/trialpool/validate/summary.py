"""What a package holds, counted from the rows that could be read (the validate summary)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from trialpool.package.loader import Package
from trialpool.validate.rules import VALUE_RESOURCES, _blank, enum_of


def study_ids_with_design(studies: pd.DataFrame, designs: Iterable[str] = ("rct",)) -> set[str]:
    """Study ids whose ``design`` is one of ``designs`` (for RCT-only analyses).

    Design-based exclusion is the analysis code's job; this helper gives it one rule.
    """
    wanted = set(designs)
    mask = studies["design"].isin(wanted).fillna(False).astype(bool)
    return {str(s) for s in studies.loc[mask, "study_id"].dropna()}


def _counts(frame: pd.DataFrame | None, col: str, vocab: list[str]) -> dict[str, int]:
    out = dict.fromkeys(vocab, 0)
    if frame is not None and col in frame.columns:
        for key, n in frame[col].dropna().value_counts().items():
            out[str(key)] = int(n)
    return out


def summarise(package: Package, frames: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """What the package holds (from the rows that could be read)."""
    res = package.resources

    def rows(name: str) -> int | None:
        frame = frames.get(name)
        return len(frame) if frame is not None else None

    summary: dict[str, Any] = {
        "package": package.name,
        "version": package.version,
        "extensions": package.extensions,
        "rows": {name: rows(name) for name in res},
    }
    if "studies" in res:
        summary["studies"] = {
            "total": rows("studies"),
            "by_design": _counts(
                frames.get("studies"), "design", enum_of(res["studies"], "design")
            ),
        }
    if "arms" in res:
        summary["arms"] = rows("arms")
    if "comparisons" in res:
        summary["comparisons"] = rows("comparisons")
    if "outcomes" in res:
        summary["outcomes"] = {
            "total": rows("outcomes"),
            "by_data_type": _counts(
                frames.get("outcomes"), "data_type", enum_of(res["outcomes"], "data_type")
            ),
        }
    for name in VALUE_RESOURCES:
        if name in res:
            summary[name] = {
                "total": rows(name),
                "by_verification": _counts(
                    frames.get(name), "verification", enum_of(res[name], "verification")
                ),
            }
    if "bias_judgements" in res:
        summary["bias_judgements"] = rows("bias_judgements")
    if "claims" in res:
        claims = frames.get("claims")
        conflicting = 0
        open_conflicts = 0
        if claims is not None and "status" in claims.columns:
            is_conflict = (claims["status"] == "conflicting").fillna(False).astype(bool)
            conflicting = int(is_conflict.sum())
            if "resolution" in claims.columns:
                open_conflicts = int((is_conflict & _blank(claims["resolution"])).sum())
            else:
                open_conflicts = conflicting
        summary["claims"] = {
            "total": rows("claims"),
            "conflicting": conflicting,
            "conflicting_without_resolution": open_conflicts,
        }
        summary["open_conflicts"] = open_conflicts
    if "published_results" in res:
        summary["published_results"] = rows("published_results")
    if "screening" in res:
        summary["screening"] = {
            "total": rows("screening"),
            "by_decision": _counts(
                frames.get("screening"), "decision", enum_of(res["screening"], "decision")
            ),
        }
    return summary


def summary_lines(summary: dict[str, Any]) -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []

    def breakdown(counts: dict[str, int]) -> str:
        parts = [f"{k} {v}" for k, v in counts.items() if v]
        return f" ({', '.join(parts)})" if parts else ""

    if "studies" in summary:
        s = summary["studies"]
        lines.append(("studies", f"{s['total']}{breakdown(s['by_design'])}"))
    if "arms" in summary:
        lines.append(("arms", str(summary["arms"])))
    if "comparisons" in summary:
        lines.append(("comparisons", str(summary["comparisons"])))
    if "outcomes" in summary:
        s = summary["outcomes"]
        lines.append(("outcomes defined", f"{s['total']}{breakdown(s['by_data_type'])}"))
    for name in VALUE_RESOURCES:
        if name in summary:
            s = summary[name]
            label = name.replace("_", " ") + " rows"
            lines.append((label, f"{s['total']}{breakdown(s['by_verification'])}"))
    if "bias_judgements" in summary:
        lines.append(("bias judgements", str(summary["bias_judgements"])))
    if "claims" in summary:
        c = summary["claims"]
        lines.append(
            (
                "claims",
                f"{c['total']} ({c['conflicting']} conflicting, "
                f"{c['conflicting_without_resolution']} without resolution)",
            )
        )
    if "published_results" in summary:
        lines.append(("published results", str(summary["published_results"])))
    if "screening" in summary:
        s = summary["screening"]
        lines.append(("screening records", f"{s['total']}{breakdown(s['by_decision'])}"))
    if summary.get("extensions"):
        lines.append(("extensions", ", ".join(summary["extensions"])))
    return lines
