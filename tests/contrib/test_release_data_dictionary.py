"""The README data dictionary is generated from the schemas (scripts/make_data_dictionary.py)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "make_data_dictionary.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_data_dictionary", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mdd = load()


@pytest.fixture
def package(tmp_path: Path) -> Path:
    root = tmp_path / "pkg"
    root.mkdir()
    shutil.copyfile(REPO / "datapackage.json", root / "datapackage.json")
    shutil.copytree(REPO / "schemas", root / "schemas")
    (root / "README.md").write_text("# Title\n\nSome text.\n", encoding="utf-8")
    return root


def test_readme_dictionary_is_up_to_date() -> None:
    """Fails when a schema changed and README.md was not regenerated."""
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr + " -> run: python scripts/make_data_dictionary.py"


def test_markers_added_at_the_end_then_idempotent(package: Path) -> None:
    readme = package / "README.md"
    assert mdd.main(["--root", str(package), "--check"]) == 1  # no markers yet: stale
    assert mdd.main(["--root", str(package)]) == 0
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("# Title\n\nSome text.\n\n## Data dictionary\n\n" + mdd.START)
    assert text.endswith(mdd.END + "\n")
    assert mdd.main(["--root", str(package), "--check"]) == 0
    assert mdd.main(["--root", str(package)]) == 0
    assert readme.read_text(encoding="utf-8") == text


def test_only_the_block_changes(package: Path) -> None:
    readme = package / "README.md"
    readme.write_text(
        f"# T\n\nbefore\n\n{mdd.START}\nold stuff\n{mdd.END}\n\n## After\n\nafter\n",
        encoding="utf-8",
    )
    assert mdd.main(["--root", str(package)]) == 0
    text = readme.read_text(encoding="utf-8")
    assert text.startswith(f"# T\n\nbefore\n\n{mdd.START}\n")
    assert text.endswith(f"{mdd.END}\n\n## After\n\nafter\n")
    assert "old stuff" not in text


def test_stale_after_schema_change(package: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert mdd.main(["--root", str(package)]) == 0
    path = package / "schemas/studies.schema.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    schema["fields"][0]["description"] = "Changed description."
    path.write_text(json.dumps(schema), encoding="utf-8")
    capsys.readouterr()
    assert mdd.main(["--root", str(package), "--check"]) == 1
    assert "stale" in capsys.readouterr().err


def test_broken_markers(package: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (package / "README.md").write_text(f"# T\n{mdd.END}\n{mdd.START}\n", encoding="utf-8")
    assert mdd.main(["--root", str(package)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "expected one" in err


def test_every_resource_and_field_is_documented(package: Path) -> None:
    block = mdd.generate(package)
    descriptor = json.loads((package / "datapackage.json").read_text(encoding="utf-8"))
    for resource in descriptor["resources"]:
        assert f"### `{resource['name']}`" in block
        schema = json.loads((package / resource["schema"]).read_text(encoding="utf-8"))
        for field in schema["fields"]:
            assert f"| `{field['name']}` | {field.get('type', 'string')}" in block
            for value in (field.get("constraints") or {}).get("enum", []):
                assert f"`{value}`" in block
        keys = schema.get("primaryKey", [])
        assert "primary key (" + ", ".join(f"`{k}`" for k in keys) + ")" in block
    assert "(`study_id`, `arm_id`) → (`arms.study_id`, `arms.arm_id`)" in block


def test_constraint_text() -> None:
    spec = {
        "name": "x",
        "type": "number",
        "constraints": {
            "required": True,
            "unique": True,
            "minimum": 0,
            "maximum": 1040.0,
            "pattern": "^(a|b)$",
            "enum": ["a", "b"],
        },
    }
    assert mdd.constraints_text(spec) == (
        "unique; one of `a`, `b`; ≥ 0; ≤ 1040; pattern `^(a\\|b)$`"
    )


def test_overview_says_core_or_extension(package: Path) -> None:
    block = mdd.generate(package)
    manifest = json.loads((package / "schemas/core.json").read_text(encoding="utf-8"))
    assert f"Core schema {manifest['version']} (`schemas/core.json`)" in block
    assert "`msc` (Mesenchymal stem cell (MSC) therapy): `msc_arms`; declared in the " in block
    assert "| [`arms`](#arms-arms) | Arms | core, required | `study_id`, `arm_id` |" in block
    assert "| core, optional | `comparison_id`, `outcome`, `timepoint` |" in block
    msc_section = block[block.index("### `msc_arms`") :]
    assert msc_section.split("\n")[2] == "*Part of the schema: `msc` extension.*"
    for spec in manifest["resources"]:
        part = "required" if spec["required"] else "optional"
        assert f"### `{spec['name']}`" in block
        assert f"| core, {part} |" in block


def test_without_manifest_no_parts(package: Path) -> None:
    (package / "schemas/core.json").unlink()
    block = mdd.generate(package)
    assert "Core schema" not in block and "Part of the schema" not in block
    assert "| [`sources`](#sources-sources) | Sources |  | `source_id` |" in block
