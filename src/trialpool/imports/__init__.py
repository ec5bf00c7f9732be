"""Reading Cochrane review files (untrusted input) into one neutral, typed model.

``read_review(path)`` detects the format from the content (RevMan 5 ``.rm5``, RevMan 5
CSV analysis export, Cochrane data package folder or zip) and returns a
:class:`~trialpool.imports.model.Review`; any problem with the input raises
:class:`trialpool.errors.ImportSourceError` with one line naming the file and the place.
"""

from __future__ import annotations
