"""Stage 4, analysis: from a validated package and a plan to pooled results.

The plan (pydantic), arm pairing, per-analysis pooling, subgroups and sensitivity analyses;
``finite`` checks that the numbers the engines compute with and give are finite.
May import: ``trialpool.stats``, ``trialpool.validate``, ``trialpool.package``,
``trialpool.errors``.
"""

from trialpool.analysis.command import run_pool
from trialpool.analysis.pooled import pool_outcome

__all__ = ["pool_outcome", "run_pool"]
