"""trialpool: validate, then pool, Frictionless data packages of controlled trials.

Data flow, one job per module::

    package.py  -> read a descriptor safely into typed frames
    checks.py   -> Table Schema and cross-table rules (trialpool validate)
    effects.py  -> per-study effect sizes and conversions (as metafor's escalc)
    pooling.py  -> models (as metafor's rma, rma.mh, predict, confint)
    analysis.py -> from a package and an outcome to a pooled result
    plots/, report.py -> what people read
    cli.py      -> thin command line
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("trialpool")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"
