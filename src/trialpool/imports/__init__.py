"""Import: a Cochrane review (untrusted input) becomes a new package that conforms.

``read_review(path)`` detects the format from the content (RevMan 5 ``.rm5``, RevMan 5
CSV analysis export, Cochrane data package folder or zip) and returns a
:class:`~trialpool.imports.model.Review`; any problem with the input raises
:class:`trialpool.errors.ImportSourceError` with one line naming the file and the place.
``imports.tables`` maps a review onto the core resources and the plan; ``imports.write``
writes, validates and moves the package into place (``trialpool import``).

May import: ``trialpool.package``, ``trialpool.validate``, ``trialpool.analysis`` (the
plan's models, to write a plan that conforms) and ``trialpool.errors``.
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
