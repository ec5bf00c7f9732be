"""Safety of the output folder: which ``--out`` may be written, and writing it atomically.

The report is built in a temporary folder next to ``--out`` and moved into place only
when complete, so a failed run leaves nothing behind. ``--out`` may not be the package
folder, a folder that contains it, or a folder inside its ``data/``; an existing
``--out`` is replaced only when it holds the marker file of a previous report (a user's
folder is never deleted).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from trialpool.errors import TrialpoolError

MARKER_NAME = ".trialpool-report"


class ReportError(TrialpoolError):
    """The report cannot be written as asked (unsafe --out, existing folder, ...)."""


def _is_within(path: Path, parent: Path) -> bool:
    return path == parent or path.is_relative_to(parent)


def check_out_path(out: Path, package_root: Path) -> Path:
    """Resolve ``--out`` and refuse unsafe targets (one-line ReportError).

    Refused: the package folder itself, a folder that contains the package, a path
    inside the package's ``data/``, an existing file, and an existing folder that is
    not a previous trialpool report (no marker file).
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
    if target.is_symlink():
        raise ReportError(f"--out {out} is a symbolic link; give the real folder")
    if target.exists():
        if not target.is_dir():
            raise ReportError(f"--out {out} exists and is not a folder; refusing to replace it")
        if not (target / MARKER_NAME).is_file():
            raise ReportError(
                f"--out {out} exists and is not a trialpool report (no {MARKER_NAME}); "
                "refusing to replace it"
            )
    return target


@contextlib.contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """Yield a temporary folder next to ``target``; move it into place on success.

    On any exception the temporary folder (and any parent folders created for it) is
    removed and ``target`` is left as it was. An existing ``target`` (a previous report)
    is replaced only after the new one is complete.
    """
    created: list[Path] = []
    parent = target.parent
    probe = parent
    while not probe.exists():
        created.append(probe)
        probe = probe.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=parent))
    try:
        yield tmp
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=parent))
            os.replace(target, old / "previous")
            try:
                os.replace(tmp, target)
            except OSError:
                os.replace(old / "previous", target)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in created:  # innermost first
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
