"""Stage 5, report: what people read — sections, figures, tables, exports, the writer.

``writer`` drives ``trialpool report``; ``sections/`` builds each section (one module
each) as the nodes of ``document``, which writes them as Markdown (report.md);
``render`` turns that Markdown into the self-contained report.html (markdown-it),
embedding the lighter copy of each figure ``embed`` makes;
``format`` writes the numbers; ``output`` keeps the output folder safe; ``context``
is what the sections share; ``figures/`` draws, ``exports`` writes the CSVs and
reproduce.R.
May import every stage below it (``analysis``, ``stats``, ``validate``, ``package``),
``trialpool.contrib`` (the comparison of two versions' results, for the section "What
changed since version X") and ``trialpool.errors``; nothing imports it except
``trialpool.cli`` and ``trialpool.corpus``.
"""
