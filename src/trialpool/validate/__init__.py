"""Stage 2, validate: Table Schema (by either engine), then the cross-table rules.

One error model (``ValidationIssue`` in a ``ValidationReport``) for every step; nothing here
raises on bad data. May import: ``trialpool.package`` and ``trialpool.errors``.
"""
