"""The wheel works anywhere: built, installed in a fresh venv outside the checkout, and run.

The wheel is built (``pip wheel``, with build isolation, as a user or a release would) from a
copy of what it is made of (``pyproject.toml``, the README, the licences and ``src/``), then
installed with its dependencies into a new virtual environment in a temporary folder. Every
command that reads trialpool's own files runs there, in a folder that is not the checkout:
``init``, ``validate``, ``import``, ``pool``, ``report``, and ``audit`` when this trialpool
has it (``trialpool audit --help`` succeeds).

Installing the dependencies needs the package index (or a warm pip cache); the module takes
about a minute and a half. Deselect it with ``-m "not wheel"``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REVMAN = REPO / "tests" / "fixtures" / "revman"
#: what the wheel is built from (pyproject.toml names the README; setuptools adds LICENSE*)
BUILD_INPUTS = ("pyproject.toml", "README.md", "LICENSE", "LICENSE-DATA", "src")

pytestmark = [pytest.mark.slow, pytest.mark.wheel]


@dataclass(frozen=True)
class Installed:
    """A fresh venv with the wheel installed, and a work folder outside the checkout."""

    wheel: Path
    venv: Path
    work: Path

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``trialpool ARGS`` of the venv in the work folder."""
        return _run([str(self.venv / "bin" / "trialpool"), *args], cwd=self.work, check=check)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PYTHONNOUSERSITE"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["TRIALPOOL_DEBUG"] = "0"
    return env


def _run(cmd: list[str], *, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        pytest.fail(
            f"{' '.join(cmd)} exited {done.returncode}\n"
            f"stdout: {done.stdout[-3000:]}\nstderr: {done.stderr[-3000:]}"
        )
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    assert not root.resolve().is_relative_to(REPO.resolve())
    tree = root / "tree"
    tree.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for name in BUILD_INPUTS:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=ignore)
        else:
            shutil.copy2(source, tree / name)
    dist = root / "dist"
    _run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist), "."],
        cwd=tree,
    )
    (wheel,) = dist.glob("trialpool-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=root)
    _run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-compile",
         str(wheel)],
        cwd=root,
    )  # fmt: skip
    work = root / "work"
    work.mkdir()
    return Installed(wheel=wheel, venv=venv, work=work)


def test_the_wheel_carries_the_schemas(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
    bundled = REPO / "src" / "trialpool" / "_schemas"
    for path in bundled.rglob("*.json"):
        assert f"trialpool/_schemas/{path.relative_to(bundled).as_posix()}" in names
    assert not any(name.startswith(("schemas/", "tests/")) for name in names)


def test_trialpool_runs_from_the_venv_with_the_pyproject_version(installed: Installed) -> None:
    python = str(installed.venv / "bin" / "python")
    where = _run([python, "-c", "import trialpool; print(trialpool.__file__)"], cwd=installed.work)
    module = Path(where.stdout.strip()).resolve()
    assert module.is_relative_to(installed.venv.resolve())
    assert not module.is_relative_to(REPO.resolve())
    version = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert installed.run("--version").stdout.strip() == f"trialpool {version['project']['version']}"


def test_init_then_validate(installed: Installed) -> None:
    installed.run("init", "new", "--title", "A new review", "--extension", "msc")
    descriptor = installed.work / "new" / "datapackage.json"
    assert (installed.work / "new" / "schemas/extensions/msc/msc_arms.schema.json").is_file()
    installed.run("validate", str(descriptor))
    frictionless = installed.venv / "bin" / "frictionless"
    _run([str(frictionless), "validate", str(descriptor)], cwd=installed.work)


@pytest.mark.parametrize(
    "source", ["Fleiss1993_CR.csv", "CD000023StatsDataOnly.rm5"], ids=["csv", "rm5"]
)
def test_import_validate_pool_report(installed: Installed, source: str) -> None:
    out = installed.work / f"imported-{Path(source).stem}"
    done = installed.run("import", str(REVMAN / source), "--out", out.name)
    assert "(valid)" in done.stdout
    descriptor = out / "datapackage.json"
    installed.run("validate", str(descriptor))
    if source.endswith(".csv"):  # the report of the small one (the other is much larger)
        installed.run("pool", str(descriptor), "--analysis", "1.1")
        installed.run("report", str(descriptor), "--out", "report")
        assert (installed.work / "report" / "report.html").is_file()
        assert (installed.work / "report" / ".trialpool-report").is_file()


def test_audit_when_this_trialpool_has_it(installed: Installed) -> None:
    if installed.run("audit", "--help", check=False).returncode != 0:
        pytest.skip("this trialpool has no audit command yet")
    sources = [str(REVMAN / "Fleiss1993_CR.csv"), str(REVMAN / "CD000023StatsDataOnly.rm5")]
    installed.run("audit", *sources, "--out", "audit")
    assert (installed.work / "audit" / "reviews.csv").is_file()
