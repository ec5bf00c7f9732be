"""Safety of the output folder: which ``--out`` a report may be written to.

The report is built in a temporary folder next to ``--out`` and moved into place only
when complete (``package.atomic.atomic_folder``), so a failed run leaves nothing behind.
``--out`` may not be the package folder, a folder that contains it, or a folder inside
its ``data/``; an existing ``--out`` is replaced only when it is empty or holds the
marker file of a previous report (``package.atomic.check_replaceable``: a user's folder is
never deleted).
"""

from __future__ import annotations

import os
from pathlib import Path

from trialpool.errors import TrialpoolError
from trialpool.package.atomic import REPORT_KIND, check_replaceable, marker_name

MARKER_NAME = marker_name(REPORT_KIND)


class ReportError(TrialpoolError):
    """The report cannot be written as asked (unsafe --out, existing folder, ...)."""


def _is_within(path: Path, parent: Path) -> bool:
    return path == parent or path.is_relative_to(parent)


def check_out_path(out: Path, package_root: Path) -> Path:
    """Resolve ``--out`` and refuse unsafe targets (one-line ReportError).

    Refused: the package folder itself, a folder that contains the package, a path
    inside the package's ``data/``, a symbolic link, an existing file, and an existing
    folder that is neither empty nor a previous trialpool report (no marker file).
    """
    target = Path(os.path.abspath(out))
    resolved = target.resolve()
    root = package_root.resolve()
    data_dir = (root / "data").resolve()
    if resolved == root:
        raise ReportError(f"--out {out} is the package folder itself; choose another folder")
    if _is_within(root, resolved):
        raise ReportError(f"--out {out} contains the package; choose a folder inside or beside it")
    if _is_within(resolved, data_dir):
        raise ReportError(f"--out {out} is inside the package's data/ folder; choose another")
    check_replaceable(target, kind=REPORT_KIND, force=None, label=f"--out {out}", error=ReportError)
    return target
