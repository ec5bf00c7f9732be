"""package.atomic: output folders replaced only when trialpool made them; signals clean up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from trialpool import __version__
from trialpool.package.atomic import (
    OutputFolderError,
    atomic_folder,
    check_replaceable,
    marker_name,
    write_marker,
)


def tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def users_folder(path: Path) -> Path:
    """A folder as a user keeps it: a document and a note in a subfolder."""
    (path / "sub").mkdir(parents=True)
    (path / "thesis.docx").write_bytes(b"precious")
    (path / "sub" / "notes.txt").write_text("mine\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------ check_replaceable


@pytest.mark.parametrize("force", [None, False, True])
def test_missing_and_empty_folders_may_be_written(tmp_path: Path, force: bool | None) -> None:
    assert check_replaceable(tmp_path / "new", kind="package", force=force) is False
    (tmp_path / "empty").mkdir()
    assert check_replaceable(tmp_path / "empty", kind="package", force=force) is True


@pytest.mark.parametrize("force", [None, False, True])
def test_users_folder_is_refused_whatever_force_says(tmp_path: Path, force: bool | None) -> None:
    folder = users_folder(tmp_path / "thesis")
    before = tree(folder)
    with pytest.raises(OutputFolderError) as info:
        check_replaceable(folder, kind="package", force=force, label="--out thesis")
    message = str(info.value)
    assert message.startswith("--out thesis exists and is not a trialpool package")
    assert "(no .trialpool-package)" in message and "\n" not in message
    assert ("with or without --force" in message) == (force is not None)
    assert tree(folder) == before


def test_own_folder_needs_force_unless_the_command_has_none(tmp_path: Path) -> None:
    folder = tmp_path / "report"
    folder.mkdir()
    write_marker(folder, "report")
    assert check_replaceable(folder, kind="report", force=None) is True
    assert check_replaceable(folder, kind="report", force=True) is True
    with pytest.raises(OutputFolderError, match="add --force to replace it"):
        check_replaceable(folder, kind="report", force=False)


def test_a_marker_of_another_kind_does_not_count(tmp_path: Path) -> None:
    folder = tmp_path / "pkg"
    folder.mkdir()
    write_marker(folder, "package")
    (folder / "datapackage.json").write_text("{}", encoding="utf-8")
    with pytest.raises(OutputFolderError, match="not a trialpool report"):
        check_replaceable(folder, kind="report", force=True)


def test_file_link_and_working_folder_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    afile = tmp_path / "file.txt"
    afile.write_text("x", encoding="utf-8")
    with pytest.raises(OutputFolderError, match="exists and is not a folder"):
        check_replaceable(afile, kind="package", force=True)
    own = tmp_path / "own"
    own.mkdir()
    write_marker(own, "package")
    link = tmp_path / "link"
    link.symlink_to(own)
    with pytest.raises(OutputFolderError, match="is a symbolic link"):
        check_replaceable(link, kind="package", force=True)
    (own / "inner").mkdir()
    monkeypatch.chdir(own / "inner")
    with pytest.raises(OutputFolderError, match="the folder you are working in"):
        check_replaceable(own, kind="package", force=True)
    assert afile.read_text(encoding="utf-8") == "x" and link.is_symlink()


def test_the_callers_error_class_is_raised(tmp_path: Path) -> None:
    class MyError(OutputFolderError):
        pass

    folder = users_folder(tmp_path / "mine")
    with pytest.raises(MyError):
        check_replaceable(folder, kind="report", force=None, error=MyError)


# ------------------------------------------------------------------ atomic_folder


def test_atomic_folder_marks_what_it_writes(tmp_path: Path) -> None:
    target = tmp_path / "a" / "pkg"
    with atomic_folder(target, "package", {"command": "init"}) as tmp:
        (tmp / "x.txt").write_text("x", encoding="utf-8")
    marker = json.loads((target / marker_name("package")).read_text(encoding="utf-8"))
    assert marker == {
        "tool": "trialpool",
        "kind": "package",
        "trialpool": __version__,
        "command": "init",
    }
    assert sorted(p.name for p in target.iterdir()) == [".trialpool-package", "x.txt"]
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["pkg"]


def test_a_marker_written_by_the_body_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "report"
    with atomic_folder(target, "report") as tmp:
        write_marker(tmp, "report", {"figures": ["f1"]})
    marker = json.loads((target / ".trialpool-report").read_text(encoding="utf-8"))
    assert marker["figures"] == ["f1"]


def test_failure_leaves_the_previous_folder(tmp_path: Path) -> None:
    target = tmp_path / "pkg"
    with atomic_folder(target, "package") as tmp:
        (tmp / "old.txt").write_text("old", encoding="utf-8")
    before = tree(target)
    with pytest.raises(ZeroDivisionError), atomic_folder(target, "package") as tmp:
        (tmp / "new.txt").write_text("new", encoding="utf-8")
        _ = 1 / 0
    assert tree(target) == before
    assert [p.name for p in tmp_path.iterdir()] == ["pkg"]


def test_signal_handlers_are_restored(tmp_path: Path) -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    with atomic_folder(tmp_path / "x", "package"):
        assert signal.getsignal(signal.SIGTERM) != before[signal.SIGTERM]
    assert {sig: signal.getsignal(sig) for sig in before} == before


# ------------------------------------------------------------------ signals


_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from trialpool.package.atomic import atomic_folder

    target, ready = Path(sys.argv[1]), Path(sys.argv[2])
    with atomic_folder(target, "package") as tmp:
        for i in range(50):
            (tmp / f"part{i}.csv").write_text("x,y\\n" * 1000, encoding="utf-8")
        ready.write_text(str(tmp), encoding="utf-8")
        time.sleep(60)  # still writing when the signal comes
    """
)


def _run_and_signal(target: Path, ready: Path, sig: signal.Signals) -> tuple[int, str]:
    """Start the writer, wait until it is mid-write, send ``sig``; its code and stderr."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(target), str(ready)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            _, err = proc.communicate()
            pytest.fail(f"the writer did not get to the middle of its work: {err[-2000:]}")
        time.sleep(0.05)
    assert Path(ready.read_text(encoding="utf-8")).is_dir()  # the temporary folder exists
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("previous", [False, True], ids=["new", "replacing"])
def test_signal_mid_write_removes_the_temporary_folder(
    tmp_path: Path, sig: signal.Signals, previous: bool
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    target = out / "deeper" / "pkg"
    if previous:
        with atomic_folder(target, "package") as tmp:
            (tmp / "old.txt").write_text("old", encoding="utf-8")
    before = tree(out)
    code, err = _run_and_signal(target, tmp_path / "ready", sig)
    if sig == signal.SIGTERM:
        assert code == 128 + signal.SIGTERM and err == ""  # SystemExit: no traceback
    else:
        assert code != 0 and "KeyboardInterrupt" in err
    assert tree(out) == before  # the previous folder as it was, no .pkg.tmp-* left
    if previous:
        assert [p.name for p in target.parent.iterdir()] == ["pkg"]
    else:
        assert list(out.iterdir()) == []  # the parent folders made for it are gone too


def test_sigterm_with_a_handler_already_set_is_left_to_it(tmp_path: Path) -> None:
    """A program that handles SIGTERM itself keeps its handler inside atomic_folder."""
    script = textwrap.dedent(
        """
        import signal
        from pathlib import Path
        import sys
        from trialpool.package.atomic import atomic_folder

        mine = lambda signum, frame: None
        signal.signal(signal.SIGTERM, mine)
        with atomic_folder(Path(sys.argv[1]), "package"):
            assert signal.getsignal(signal.SIGTERM) is mine
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "x")],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n"


def test_signals_wait_for_the_swap() -> None:
    """While a previous folder is swapped for the new one, signals are held back."""
    from trialpool.package.atomic import _signals_deferred, _signals_end_the_run

    steps: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        with _signals_deferred():
            signal.raise_signal(signal.SIGINT)
            steps.append("after SIGINT")
        steps.append("not reached")
    with pytest.raises(SystemExit) as info, _signals_end_the_run():
        with _signals_deferred():
            signal.raise_signal(signal.SIGTERM)
            steps.append("after SIGTERM")
        steps.append("not reached")
    assert steps == ["after SIGINT", "after SIGTERM"]
    assert info.value.code == 128 + signal.SIGTERM
