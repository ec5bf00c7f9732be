"""Contribute: work on whole packages — add a study, diff two versions, release.

May import: ``trialpool.validate``, ``trialpool.package`` and ``trialpool.errors``.
"""
