"""Temporary old name of :mod:`trialpool.validate.run` (removed once every caller moves)."""

from trialpool.validate.run import print_report, validate_package

__all__ = ["print_report", "validate_package"]
