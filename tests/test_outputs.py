"""Outputs never destroy: every command that writes a folder, through the command line.

``import``, ``init``, ``report`` (and ``audit``, when it exists) replace only an empty
folder or one trialpool made; a user's folder is refused with exit 1 and one line, even
with ``--force``, and left as it was. A run killed by SIGTERM or SIGINT while it writes
leaves nothing behind (no ``.NAME.tmp-*`` beside ``--out``), and a previous folder as it was.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from rich.console import Console

from trialpool.cli import main
from trialpool.imports.write import run_import

REPO = Path(__file__).resolve().parents[1]
FLEISS = REPO / "tests" / "fixtures" / "revman" / "Fleiss1993_CR.csv"


def tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def has_audit() -> bool:
    """Whether this trialpool has the ``audit`` command (being written elsewhere)."""
    done = subprocess.run(
        [sys.executable, "-m", "trialpool.cli", "audit", "--help"],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A package imported from the small RevMan CSV export (its datapackage.json)."""
    out = tmp_path_factory.mktemp("imported") / "fleiss"
    console = Console(file=io.StringIO())
    assert run_import(FLEISS, out=out, force=False, console=console) == 0
    return out / "datapackage.json"


def _command(name: str, out: Path, imported: Path) -> list[str]:
    """The command line of ``name`` writing to ``out``, with --force where it has one."""
    return {
        "import": ["import", str(FLEISS), "--out", str(out), "--force"],
        "init": ["init", str(out), "--force"],
        "report": ["report", str(imported), "--out", str(out)],
        "audit": ["audit", str(FLEISS), "--out", str(out), "--force"],
    }[name]


@pytest.mark.parametrize("name", ["import", "init", "report", "audit"])
def test_a_users_folder_is_never_replaced(
    name: str, tmp_path: Path, imported: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if name == "audit" and not has_audit():
        pytest.skip("this trialpool has no audit command yet")
    out = tmp_path / "thesis"
    (out / "sub").mkdir(parents=True)
    (out / "thesis.docx").write_bytes(b"precious")
    (out / "sub" / "notes.txt").write_text("mine\n", encoding="utf-8")
    capsys.readouterr()
    assert main(_command(name, out, imported)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("trialpool: error: ")
    assert "is not a trialpool" in err and "refusing to replace it" in err
    assert "Traceback" not in err
    assert tree(out) == {"sub/notes.txt": b"mine\n", "thesis.docx": b"precious"}
    assert [p.name for p in tmp_path.iterdir()] == ["thesis"]  # nothing beside it


# ------------------------------------------------------------------ killed mid-write

#: runs the command line with one step slowed down: when the step has written its part,
#: the driver says so (the "ready" file) and waits to be killed
_DRIVER = textwrap.dedent(
    """
    import importlib, sys, time
    from pathlib import Path

    module_name, attr, ready, *argv = sys.argv[1:]
    module = importlib.import_module(module_name)
    real = getattr(module, attr)

    def slowed(*args, **kwargs):
        result = real(*args, **kwargs)
        Path(ready).write_text("writing", encoding="utf-8")
        time.sleep(120)
        return result

    setattr(module, attr, slowed)
    from trialpool.cli import main

    sys.exit(main(argv))
    """
)

#: the step each command is killed in (it has written part of the folder by then)
_STEPS = {
    "import": ("trialpool.imports.write", "write_review_package"),
    "init": ("trialpool.contrib.init", "_write_package"),
    "report": ("trialpool.report.writer", "run_analysis"),
}


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("replacing", [False, True], ids=["new", "replacing"])
@pytest.mark.parametrize("name", sorted(_STEPS))
def test_killed_mid_write_leaves_nothing(
    name: str, replacing: bool, sig: signal.Signals, tmp_path: Path, imported: Path
) -> None:
    parent = tmp_path / "outputs"
    parent.mkdir()
    out = parent / "target"
    if replacing:  # a folder the same command wrote before
        assert main(_command(name, out, imported)) == 0
    before = tree(parent)
    ready = tmp_path / "ready"
    module, attr = _STEPS[name]
    proc = subprocess.Popen(
        [sys.executable, "-c", _DRIVER, module, attr, str(ready), *_command(name, out, imported)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TRIALPOOL_DEBUG": "0"},
    )
    deadline = time.monotonic() + 120
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            _, err = proc.communicate()
            pytest.fail(f"{name} did not reach {attr}: {err[-2000:]}")
        time.sleep(0.05)
    temporary = [p.name for p in parent.iterdir() if p.name.startswith(".target.tmp-")]
    assert len(temporary) == 1 and any((parent / temporary[0]).iterdir())  # mid-write
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode != 0 and "Traceback" not in err
    if sig == signal.SIGTERM:
        assert proc.returncode == 128 + signal.SIGTERM and err == ""
    assert tree(parent) == before  # nothing new, the previous folder as it was
    assert [p.name for p in parent.iterdir()] == (["target"] if replacing else [])
