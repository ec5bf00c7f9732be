"""Shared test fixtures: build small packages in a temporary folder.

Fixture packages are assembled at test time from the CSV snippets in
``tests/fixtures/valid_minimal/data`` and the repository's real ``schemas/`` (copied, so
the schemas stay single-source), with a descriptor made from the repository's
``datapackage.json`` (its resource list) and fresh ``bytes``/``hash``/``sources``
(by ``scripts/build_descriptor.py``).
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import json
import shutil
import signal
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]

# A shell starts background jobs (``pytest ... &``) with SIGINT ignored, and an ignored
# signal stays ignored in every child: the tests that interrupt a write with SIGINT would
# then test nothing. Python's own handler is restored here; a handled signal is reset to
# its default in the children the tests start, so Python installs its handler there too.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
FIXTURES = Path(__file__).resolve().parent / "fixtures"
VALID_MINIMAL = FIXTURES / "valid_minimal"

#: edit of one CSV file: text in, text (written UTF-8) or bytes (written as is) out
CsvEdit = Callable[[str], str | bytes]


def live_r_unavailable() -> str | None:
    """Why the live comparisons with metafor cannot run (Rscript, metafor or jsonlite
    missing), or None when they can."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        return "Rscript not found on PATH"
    probe = subprocess.run(
        [rscript, "-e", "suppressPackageStartupMessages({library(metafor); library(jsonlite)})"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if probe.returncode != 0:
        return f"R packages metafor/jsonlite not available: {probe.stderr.strip()[:200]}"
    return None


def _build_descriptor_module() -> Any:
    spec = importlib.util.spec_from_file_location(
        "build_descriptor", REPO / "scripts" / "build_descriptor.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_package(
    dest: Path,
    *,
    edits: Mapping[str, CsvEdit] | None = None,
    edit_descriptor: Callable[[dict[str, Any]], None] | None = None,
    data_dir: Path = VALID_MINIMAL / "data",
) -> Path:
    """Write a package into ``dest`` and return its ``datapackage.json``.

    ``edits`` maps a resource name to a function applied to its CSV text before the
    descriptor's bytes and hashes are computed; ``edit_descriptor`` changes the
    descriptor afterwards (so it can also break the hashes).
    """
    template = json.loads((REPO / "datapackage.json").read_text(encoding="utf-8"))
    (dest / "data").mkdir(parents=True, exist_ok=True)
    (dest / "schemas").mkdir(exist_ok=True)
    for resource in template["resources"]:
        schema_rel = resource["schema"]
        (dest / schema_rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / schema_rel, dest / schema_rel)
        target = dest / resource["path"]
        source = data_dir / Path(resource["path"]).name
        if source.exists():
            shutil.copyfile(source, target)
        else:  # a resource added to the package later: header only
            schema = json.loads((REPO / schema_rel).read_text(encoding="utf-8"))
            target.write_text(",".join(f["name"] for f in schema["fields"]) + "\n", "utf-8")
        resource.pop("bytes", None)
        resource.pop("hash", None)
    for name, edit in (edits or {}).items():
        path = dest / f"data/{name}.csv"
        new = edit(path.read_text(encoding="utf-8"))
        if isinstance(new, bytes):
            path.write_bytes(new)
        else:
            path.write_bytes(new.encode("utf-8"))
    descriptor_path = dest / "datapackage.json"
    descriptor_path.write_text(json.dumps(template, indent=2), encoding="utf-8")
    try:
        text = _build_descriptor_module().build(dest)
    except (UnicodeDecodeError, KeyError, csv.Error):  # sources.csv broken on purpose
        for resource in template["resources"]:
            blob = (dest / resource["path"]).read_bytes()
            resource["bytes"] = len(blob)
            resource["hash"] = "sha256:" + hashlib.sha256(blob).hexdigest()
        text = json.dumps(template, indent=2)
    descriptor_path.write_text(text, encoding="utf-8")
    if edit_descriptor is not None:
        descriptor = json.loads(descriptor_path.read_text(encoding="utf-8"))
        edit_descriptor(descriptor)
        descriptor_path.write_text(json.dumps(descriptor, indent=2), encoding="utf-8")
    return descriptor_path


def set_cell(row: int, field: str, value: str) -> CsvEdit:
    """Edit: set ``field`` of frictionless row ``row`` (header = 1) to ``value``."""

    def edit(text: str) -> str:
        rows = list(csv.reader(io.StringIO(text)))
        rows[row - 1][rows[0].index(field)] = value
        return _write(rows)

    return edit


def add_row(values: Mapping[str, str], *, like: int = 2) -> CsvEdit:
    """Edit: append a copy of row ``like`` with ``values`` changed."""

    def edit(text: str) -> str:
        rows = list(csv.reader(io.StringIO(text)))
        new = list(rows[like - 1])
        for key, value in values.items():
            new[rows[0].index(key)] = value
        return _write([*rows, new])

    return edit


def drop_rows(*numbers: int) -> CsvEdit:
    """Edit: remove the given frictionless rows (header = 1)."""

    def edit(text: str) -> str:
        rows = list(csv.reader(io.StringIO(text)))
        return _write([r for i, r in enumerate(rows, start=1) if i not in numbers])

    return edit


def _write(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


@pytest.fixture
def make_package(tmp_path: Path) -> Callable[..., Path]:
    """``make_package(edits=..., edit_descriptor=...)`` -> path of a fresh descriptor."""
    counter = iter(range(1_000_000))

    def make(**options: Any) -> Path:
        return build_package(tmp_path / f"pkg{next(counter)}", **options)

    return make
