"""Writing a whole folder atomically: built beside its target, moved into place when complete.

Used by every command that writes a folder (``trialpool report``, ``import``, ``init``): a
failed run leaves nothing behind, and an existing target is replaced only after the new
folder is complete.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    """The process's umask."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """Yield a temporary folder next to ``target``; move it into place on success.

    On any exception the temporary folder (and any parent folders created for it) is
    removed and ``target`` is left as it was. An existing ``target`` is replaced only
    after the new one is complete (the caller decides whether it may be replaced).
    """
    created: list[Path] = []
    parent = target.parent
    probe = parent
    while not probe.exists():
        created.append(probe)
        probe = probe.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; the folder is for sharing
    try:
        yield tmp
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=parent))
            try:
                os.replace(target, old / "previous")
            except OSError:
                old.rmdir()  # still empty: the previous folder never moved
                raise
            try:
                os.replace(tmp, target)
            except OSError:
                os.replace(old / "previous", target)  # put the previous folder back
                old.rmdir()
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
