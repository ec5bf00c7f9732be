"""Stage 5, report: what people read — sections, figures, tables, exports, the writer.

May import every stage below it (``analysis``, ``stats``, ``validate``, ``package``) and
``trialpool.errors``; nothing imports it except ``trialpool.cli``.
"""
