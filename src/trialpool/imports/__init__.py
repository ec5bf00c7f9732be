"""Reading Cochrane review files (untrusted input) into one neutral, typed model.

``read_review(path)`` detects the format from the content (RevMan 5 ``.rm5``, RevMan 5
CSV analysis export, Cochrane data package folder or zip) and returns a
:class:`~trialpool.imports.model.Review`; any problem with the input raises
:class:`trialpool.errors.ImportSourceError` with one line naming the file and the place.
"""

from __future__ import annotations

from trialpool.imports.detect import read_bytes, read_review
from trialpool.imports.model import (
    BiasDomain,
    BiasItem,
    Review,
    ReviewAnalysis,
    ReviewArm,
    ReviewReference,
    ReviewRow,
    ReviewStudy,
    ReviewSubgroup,
    RevManResult,
    SubgroupTest,
)
from trialpool.imports.safety import DEFAULT_LIMITS, Limits

__all__ = [
    "DEFAULT_LIMITS",
    "BiasDomain",
    "BiasItem",
    "Limits",
    "RevManResult",
    "Review",
    "ReviewAnalysis",
    "ReviewArm",
    "ReviewReference",
    "ReviewRow",
    "ReviewStudy",
    "ReviewSubgroup",
    "SubgroupTest",
    "read_bytes",
    "read_review",
]
