"""trialpool: validate, then pool, Frictionless data packages of controlled trials.

Stages, one folder each; data flows down, imports run downhill::

    package/   -> read a descriptor safely; the schemas
    validate/  -> Table Schema (frictionless or the fast engine), then cross-table rules
    stats/     -> per-study effects, models, small-study methods (metafor's and RevMan's
                  conventions)
    analysis/  -> the plan, arm pairing, pooled results, sensitivity analyses
    report/    -> sections, figures, tables, exports, the writer
    imports/   -> Cochrane reviews (RevMan 5, Cochrane data packages) into a new package
    contrib/   -> new-study, diff, release: work on whole packages
    cli.py     -> thin command line

See ARCHITECTURE.md for what flows between them and where each kind of change goes.
"""

from importlib.metadata import PackageNotFoundError, version

# The version lives in one place, pyproject.toml ([project] version): installing trialpool
# (a wheel, or ``pip install -e .``) records it in the metadata read here.
try:
    __version__ = version("trialpool")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"
