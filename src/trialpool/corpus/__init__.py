"""Stage corpus: a whole corpus of Cochrane reviews imported and audited in one command.

``trialpool audit SOURCE... --out DIR`` finds every review in the sources (``sources``),
imports each into ``DIR/<review>/`` and compares every number RevMan stored with
trialpool's (``review``, one review in-process, many reviews per worker process), and
writes the corpus tables and summary (``summary``) atomically (``run``).
May import: ``trialpool.imports``, ``trialpool.analysis``, ``trialpool.report``,
``trialpool.package``, ``trialpool.validate`` and ``trialpool.errors``; nothing imports it
except ``trialpool.cli``.
"""

from trialpool.corpus.run import run_audit

__all__ = ["run_audit"]
