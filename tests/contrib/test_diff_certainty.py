"""``trialpool diff`` on the bundled package before and after the certainty resource.

The bundled package as it was before core 1.2 (no ``certainty`` resource, version 1.1.0)
against the package as it is: adding an optional core resource with its rows is a minor
change, so the version must go to 1.2.0 at least, and the bundled version does.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import REPO
from trialpool.contrib.diff import compare, judge


def test_certainty_is_a_minor_change(tmp_path: Path) -> None:
    old = tmp_path / "old"
    for folder in ("data", "schemas"):
        shutil.copytree(REPO / folder, old / folder)
    (old / "data" / "certainty.csv").unlink()
    descriptor = json.loads((REPO / "datapackage.json").read_text(encoding="utf-8"))
    descriptor["version"] = "1.1.0"
    descriptor["resources"] = [r for r in descriptor["resources"] if r["name"] != "certainty"]
    (old / "datapackage.json").write_text(json.dumps(descriptor, indent=2), encoding="utf-8")

    diff = judge(
        compare(old / "datapackage.json", REPO / "datapackage.json"), check_changelog_file=False
    )
    assert diff.required == "minor"
    assert diff.minimum_version == "1.2.0"
    assert diff.new_version == "1.2.0"
    assert diff.problems == []
    changes = [c for c in diff.changes if c.level != "none"]
    assert [(c.level, c.resource) for c in changes] == [("minor", "certainty")]
    assert "resource added (3 rows)" in changes[0].message
