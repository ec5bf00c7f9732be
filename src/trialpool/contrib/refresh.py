"""``trialpool refresh``: recompute the generated parts of a descriptor after editing CSVs.

Each resource's ``bytes`` and ``hash`` and the descriptor's ``sources`` list are generated
from the files (``package.descriptor``); after adding or correcting rows they are stale and
``trialpool validate`` says so. This rewrites them (atomically), or with ``--check`` only
says whether they are up to date. The descriptor's paths are vetted by the safe loader
before any file is read.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from rich.console import Console

from trialpool.errors import PackageError
from trialpool.package.descriptor import build
from trialpool.package.loader import load_package


def run_refresh(descriptor: Path, *, check: bool, console: Console) -> int:
    """Rewrite ``descriptor``'s bytes, hashes and sources; 0 done (or up to date), 1 stale."""
    load_package(descriptor)  # refuses unsafe paths before anything is read
    try:
        new = build(descriptor.parent)
    except (OSError, KeyError, UnicodeDecodeError) as exc:
        raise PackageError(f"{descriptor}: cannot recompute the descriptor: {exc}") from None
    old = descriptor.read_text(encoding="utf-8")
    if old == new:
        console.out(f"{descriptor}: up to date", highlight=False)
        return 0
    if check:
        console.out(
            f"{descriptor}: stale (bytes, hash or sources); run trialpool refresh", highlight=False
        )
        return 1
    handle, tmp = tempfile.mkstemp(prefix=".datapackage.", dir=descriptor.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(new)
        os.replace(tmp, descriptor)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    console.out(f"{descriptor}: bytes, hashes and sources recomputed", highlight=False)
    return 0
