"""Stage 3, stats: per-study effect sizes, models and small-study methods.

Pure numerics on arrays (metafor's conventions, and RevMan's where an analysis asks for
them); knows nothing of packages or files. May import: ``trialpool.errors`` only.
"""
