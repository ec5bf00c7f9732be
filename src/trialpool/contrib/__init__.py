"""Contribute: work on whole packages — add a study, diff two versions, release.

May import: ``trialpool.analysis`` and ``trialpool.stats`` (``diff_results`` re-pools both
versions and compares their results), ``trialpool.validate``, ``trialpool.package`` and
``trialpool.errors``.
"""
