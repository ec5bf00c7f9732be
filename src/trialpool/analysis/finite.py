"""Finite numbers only: what the analyses check before and after they compute.

Validation refuses non-finite numbers and counts beyond int64, but an analysis must not
crash if one reaches it anyway, nor if finite values are so large that an effect, its
variance or a pooled estimate overflows (a mean of 1e308). Both engines (metafor's
conventions in :mod:`.pooled`, RevMan's in :mod:`.revman`) check their studies' data
and effects and their totals with these helpers and raise one
:class:`~trialpool.errors.AnalysisError` naming the study (the report shows it as the
analysis's reason for not pooling).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["finite", "not_finite", "number_text"]


def finite(value: Any) -> bool:
    """``value`` is a number that is neither infinite nor NaN nor beyond a float's range."""
    try:
        return math.isfinite(float(value))
    except (OverflowError, TypeError, ValueError):
        return False


def number_text(value: Any) -> str:
    """A number for a message: ``%g``, or its first digits when beyond a float's range."""
    try:
        return f"{float(value):g}"
    except (OverflowError, TypeError, ValueError):
        text = str(value)
        return text if len(text) <= 24 else f"{text[:20]}… ({len(text)} digits)"


def not_finite(data: Mapping[str, Any], computed: Iterable[Any] = ()) -> str | None:
    """Why a study's numbers cannot be used: its data (``data``, None values skipped) or
    what was computed from them (``computed``: effect, variance, ...; None skipped) hold
    an infinite number. None when all are finite. NaN in ``computed`` is not flagged (an
    effect that is not estimable is said so elsewhere)."""
    bad = {k: v for k, v in data.items() if v is not None and not finite(v)}
    overflow = any(v is not None and _is_inf(v) for v in computed)
    if not bad and not overflow:
        return None
    shown = bad or {k: v for k, v in data.items() if v is not None}
    values = ", ".join(f"{k} = {number_text(v)}" for k, v in shown.items())
    what = (
        "its data hold a number that is not finite"
        if bad
        else "its effect or variance is not a finite number"
    )
    return f"{what} ({values}); check the package's values"


def _is_inf(value: Any) -> bool:
    try:
        return math.isinf(float(value))
    except OverflowError:
        return True
    except (TypeError, ValueError):
        return False
