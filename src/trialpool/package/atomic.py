"""Output folders: written atomically, replaced only when trialpool made them.

Every command that writes a folder (``trialpool report``, ``import``, ``init``) uses this
module, in two steps:

1. ``check_replaceable(target, kind=..., force=...)`` before any work: a missing or empty
   ``target`` may be written; an existing one may be replaced only when it holds the
   marker file of the same kind (``.trialpool-report``, ``.trialpool-package``, ...), that
   is, when trialpool made it. A user's folder is refused, with or without ``--force``,
   and left untouched; so are a file and a symbolic link.
2. ``with atomic_folder(target, kind) as tmp:`` the folder is built in ``tmp``, a
   temporary folder beside ``target`` (``.NAME.tmp-*``), marked, and moved into place when
   complete. On any failure, and on SIGTERM, SIGHUP or SIGINT, the temporary folder (and
   any parent folders created for it) is removed and ``target`` is left as it was; the
   swap of a previous folder for the new one is not interrupted by those signals.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from trialpool import __version__
from trialpool.errors import TrialpoolError

#: signals that end a run: the temporary folder is removed before the process exits
_ENDING_SIGNALS = tuple(
    sig for sig in (getattr(signal, n, None) for n in ("SIGTERM", "SIGHUP")) if sig is not None
)
#: signals held back while a previous folder is swapped for the new one
_DEFERRED_SIGNALS = {*_ENDING_SIGNALS, signal.SIGINT}


#: the kind of folder ``init`` and ``import`` write (marker ``.trialpool-package``)
PACKAGE_KIND = "package"
#: the kind of folder ``report`` writes (marker ``.trialpool-report``)
REPORT_KIND = "report"
#: the kind of folder ``audit`` writes (marker ``.trialpool-audit``)
AUDIT_KIND = "audit"


class OutputFolderError(TrialpoolError):
    """An output folder may not be written: a user's folder, a file, a symbolic link."""


def marker_name(kind: str) -> str:
    """The marker file's name for folders of ``kind`` (``report`` -> ``.trialpool-report``)."""
    return f".trialpool-{kind}"


def made_by_trialpool(folder: Path, kind: str) -> bool:
    """Whether ``folder`` holds the marker of ``kind`` (trialpool made it)."""
    return (folder / marker_name(kind)).is_file()


def check_replaceable(
    target: Path,
    *,
    kind: str,
    force: bool | None,
    label: str | None = None,
    error: type[TrialpoolError] = OutputFolderError,
) -> bool:
    """Whether ``target`` exists and will be replaced; ``error`` (one line) when it may not.

    ``force`` is the command's ``--force`` (``None`` for a command without one, such as
    ``report``: a folder it made is replaced without asking). A missing target, or an
    empty folder, may always be written. A folder with the marker of ``kind`` is replaced
    when ``force`` is not False. Refused, whatever ``force`` says: a file, a symbolic link,
    the folder the process works in (or one containing it), and any other non-empty folder.
    ``label`` is how the message names the target (default: its path).
    """
    shown = label or str(target)
    if target.is_symlink():
        raise error(f"{shown} is a symbolic link; give the real folder")
    if not target.exists():
        return False
    if not target.is_dir():
        raise error(f"{shown} exists and is not a folder; refusing to replace it")
    if Path.cwd().resolve().is_relative_to(target.resolve()):
        raise error(f"{shown}: refusing to replace the folder you are working in")
    if not any(target.iterdir()):
        return True
    if not made_by_trialpool(target, kind):
        with_force = ", with or without --force" if force is not None else ""
        raise error(
            f"{shown} exists and is not a trialpool {kind} (no {marker_name(kind)}); refusing "
            f"to replace it{with_force}: choose another folder, or empty it"
        )
    if force is False:
        raise error(f"{shown} exists (a trialpool {kind}); add --force to replace it")
    return True


def write_marker(folder: Path, kind: str, details: Mapping[str, Any] | None = None) -> None:
    """Mark ``folder`` as made by trialpool: its marker file, with ``details`` (JSON)."""
    content = {"tool": "trialpool", "kind": kind, "trialpool": __version__, **(details or {})}
    (folder / marker_name(kind)).write_text(json.dumps(content, indent=2) + "\n", "utf-8")


def _umask() -> int:
    """The process's umask."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _end_run(signum: int, frame: FrameType | None) -> None:
    """Turn a signal that ends the run into SystemExit, so that cleanup code runs."""
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _signals_end_the_run() -> Iterator[None]:
    """While inside, SIGTERM and SIGHUP raise SystemExit (when nobody else handles them).

    Python turns SIGINT into KeyboardInterrupt already. Handlers can be set only in the
    main thread; elsewhere the signals keep their behaviour.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}
    for sig in _ENDING_SIGNALS:
        if signal.getsignal(sig) == signal.SIG_DFL:
            previous[sig] = signal.signal(sig, _end_run)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGTERM, SIGHUP and SIGINT back while inside; they take effect when it is left.

    Python runs signal handlers in the main thread, whichever thread the signal reached,
    so a handler that only takes note holds them back (in the main thread; elsewhere
    nothing changes).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        held.append(signum)

    previous: dict[int, Any] = {}
    for sig in _DEFERRED_SIGNALS:
        current = signal.getsignal(sig)
        if current is not None and current != signal.SIG_IGN:  # None: set outside Python
            previous[sig] = signal.signal(sig, hold)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if held:
            signal.raise_signal(held[0])  # now handled as it would have been


def _move_into_place(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` to ``target``; a previous ``target`` is replaced, or put back on failure."""
    if not target.exists():
        os.replace(tmp, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
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


@contextlib.contextmanager
def atomic_folder(
    target: Path, kind: str, details: Mapping[str, Any] | None = None
) -> Iterator[Path]:
    """Yield a temporary folder next to ``target``; mark it and move it into place on success.

    The marker of ``kind`` (with ``details``) is written after the body, unless the body
    wrote a fuller one with ``write_marker``. On any exception, and on SIGTERM, SIGHUP or
    SIGINT, the temporary folder (and any parent folders created for it) is removed and
    ``target`` is left as it was. An existing ``target`` is replaced only after the new
    one is complete; call ``check_replaceable`` first (this function does not ask).
    """
    created: list[Path] = []
    parent = target.parent
    probe = parent
    while not probe.exists():
        created.append(probe)
        probe = probe.parent
    with _signals_end_the_run():
        tmp: Path | None = None
        try:
            parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=parent))
            os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; the folder is for sharing
            yield tmp
            if not made_by_trialpool(tmp, kind):
                write_marker(tmp, kind, details)
            with _signals_deferred():
                _move_into_place(tmp, target)
        except BaseException:
            with _signals_deferred():
                if tmp is not None:
                    shutil.rmtree(tmp, ignore_errors=True)
                for folder in created:  # innermost first
                    with contextlib.suppress(OSError):
                        folder.rmdir()
            raise
