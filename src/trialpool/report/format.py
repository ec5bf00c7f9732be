"""How the report writes numbers and short texts (estimates, P values, weeks, anchors).

Missing or non-finite numbers print as an en dash; negative numbers with a true minus
sign (U+2212), and never as "−0.00".
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import pandas as pd

from trialpool.stats.results import PoolResult

MINUS = "\u2212"
MISSING = "–"


def num(value: float | None, digits: int = 2) -> str:
    """A number with ``digits`` decimals (from 1e15 on, three significant digits in
    scientific notation)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    if abs(value) >= 1e15:
        return f"{value:.3g}".replace("-", MINUS)
    text = f"{value:.{digits}f}"
    if text.startswith("-"):
        text = text[1:] if float(text) == 0 else MINUS + text[1:]
    return text


def small(value: float | None) -> str:
    """Two decimals, or two significant digits below 0.01 (τ²)."""
    if value is None or not math.isfinite(value):
        return MISSING
    if value != 0 and abs(value) < 0.01:
        return f"{value:.2g}".replace("-", MINUS)
    return num(value, 2)


def p_value(value: float | None) -> str:
    """A P value with three decimals, "< 0.001" below that."""
    if value is None or not math.isfinite(value):
        return MISSING
    if value < 0.001:
        return "< 0.001"
    return f"{value:.3f}"


def pct(value: float | None) -> str:
    """A percentage without decimals (I²)."""
    return MISSING if value is None or not math.isfinite(value) else f"{value:.0f}%"


def timepoint(weeks: float | None) -> str:
    """ "12 weeks", or "any time point"."""
    if weeks is None:
        return "any time point"
    return f"{weeks:g} weeks"


def effect(result: PoolResult) -> str:
    """The pooled estimate and its confidence interval: "0.49 [0.34, 0.70]"."""
    return f"{num(result.estimate)} [{num(result.ci_lower)}, {num(result.ci_upper)}]"


def val(value: Any) -> str | None:
    """A cell value as text, or None when missing."""
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return text or None


def number(value: Any) -> float | None:
    """A cell value as a float, or None when missing or not a number."""
    v = val(value)
    try:
        return None if v is None else float(v)
    except ValueError:
        return None


def weeks(value: Any) -> str | None:
    """Weeks as text: whole numbers bare, others with one decimal (208.714 -> 208.7)."""
    v = number(value)
    if v is None:
        return None
    return f"{v:.0f}" if abs(v - round(v)) < 1e-9 else f"{v:.1f}"


def slug(text: str) -> str:
    """Lower-case letters, digits and hyphens (file names, anchors)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def anchor(prefix: str, key: str) -> str:
    """An in-page anchor safe in Markdown and HTML: ``key``'s characters other than
    letters, digits, ``_`` and ``-`` become ``-`` ("analysis", "1.2" -> "analysis-1-2")."""
    return f"{prefix}-" + re.sub(r"[^A-Za-z0-9_-]", "-", key)


def p_text(value: float | None) -> str:
    """ "P = 0.034" or "P < 0.001" (three decimals), as in a sentence."""
    text = p_value(value)
    return f"P {text}" if text.startswith("<") else f"P = {text}"


def lc(text: str) -> str:
    """Lower-case the first letter unless the word is an acronym ("Albumin", "MELD")."""
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        return text[0].lower() + text[1:]
    return text


def sentence(text: str) -> str:
    """Text ending with a full stop (captions)."""
    text = text.rstrip()
    return text if text.endswith((".", "!", "?")) else text + "."


def designs_text(designs: Sequence[str] | None) -> str:
    """ "rct, non randomised controlled", or "all designs"."""
    if designs is None:
        return "all designs"
    return ", ".join(d.replace("_", " ") for d in designs)
