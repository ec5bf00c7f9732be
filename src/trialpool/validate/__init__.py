"""Stage 2, validate: one pass — load safely, Table Schema (by either engine), cross-table rules.

``run`` drives the pass; ``tableschema`` runs frictionless or the ``fast`` engine;
``frames`` reads the rows for the rules; ``rules`` holds the cross-table rules;
``descriptor`` the descriptor rules; ``issues`` the one error model; ``summary`` counts
what a package holds. Nothing here raises on bad data.
May import: ``trialpool.package`` and ``trialpool.errors``.
"""

from trialpool.validate.issues import ValidationIssue, ValidationReport
from trialpool.validate.run import print_report, run_validate, validate_package

__all__ = [
    "ValidationIssue",
    "ValidationReport",
    "print_report",
    "run_validate",
    "validate_package",
]
