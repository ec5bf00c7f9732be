"""Section "Package and validation": what was reported on, when, and whether it is valid."""

from __future__ import annotations

import datetime as _dt
from typing import Any

from trialpool import __version__
from trialpool.report.context import Context
from trialpool.report.document import Bullets, Heading, Inlines, Node, Status, Strong


def _summary_value(value: Any) -> str:
    if isinstance(value, dict):
        parts = []
        for k, v in value.items():
            if isinstance(v, dict):
                inner = ", ".join(f"{ik} {iv}" for ik, iv in v.items() if iv)
                if inner:
                    parts.append(f"{k.replace('_', ' ')}: {inner}")
            elif v not in (None, 0, "") or k == "total":
                parts.append(f"{k.replace('_', ' ')} {v}")
        return "; ".join(parts)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


def section(ctx: Context, validation: Any) -> list[Node]:
    pkg = ctx.pkg
    d = pkg.descriptor
    facts: list[Inlines] = [
        [Strong("Package: "), f"{pkg.name} {pkg.version or '(no version)'}"],
        [Strong("Title: "), str(d.get("title", ""))],
        [Strong("trialpool: "), __version__],
        [Strong("Analysis plan: "), ctx.plan_origin],
        [Strong("Generated: "), _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")],
    ]
    if d.get("description"):
        facts.append([Strong("Description: "), str(d["description"])])
    summary = getattr(validation, "summary", {}) or {}
    lines: list[Inlines] = [
        [Strong(f"{key.replace('_', ' ')}: "), _summary_value(value)]
        for key, value in summary.items()
        if key not in {"package", "version", "issues", "open_conflicts", "readers"}
    ]
    valid = getattr(validation, "valid", False)
    status = Status(
        "pooled" if valid else "error",
        "Validation: VALID (Table Schema and cross-table rules)"
        if valid
        else "Validation: INVALID",
        lines,
    )
    return [Heading(2, "Package and validation", "package"), Bullets(facts), status]
