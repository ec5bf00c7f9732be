"""The project's descriptor rules (schemas/datapackage.profile.json, descriptor_rules.py)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from trialpool.errors import PackageError
from trialpool.package.core import schema_json
from trialpool.validate.descriptor import PROFILE_NAME, check_descriptor, check_descriptor_file

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def descriptor() -> dict[str, Any]:
    """A fresh copy of the repository's descriptor."""
    return json.loads((REPO / "datapackage.json").read_text(encoding="utf-8"))


def paths(problems: list[tuple[str, str]]) -> list[str]:
    return [p for p, _ in problems]


def test_profile_is_a_valid_json_schema() -> None:
    profile = REPO / "schemas" / PROFILE_NAME
    assert schema_json(PROFILE_NAME) == json.loads(profile.read_text("utf-8"))  # the bundled one
    Draft202012Validator.check_schema(schema_json(PROFILE_NAME))


def test_repository_descriptor_follows_the_rules(descriptor: dict[str, Any]) -> None:
    assert descriptor["profile"] == "tabular-data-package"
    assert check_descriptor(descriptor) == []
    assert check_descriptor_file(REPO / "datapackage.json") == []


@pytest.mark.parametrize(
    "key", ["name", "version", "licenses", "sources", "contributors", "created", "resources"]
)
def test_required_properties(descriptor: dict[str, Any], key: str) -> None:
    del descriptor[key]
    problems = check_descriptor(descriptor)
    assert paths(problems) == [f"$.{key}"]
    assert "is missing" in problems[0][1]


@pytest.mark.parametrize("version", ["1.0", "v1.0.0", "01.2.3", "1.2.3.4", "", 1, "1.2.3-"])
def test_version_must_be_semver(descriptor: dict[str, Any], version: Any) -> None:
    descriptor["version"] = version
    problems = check_descriptor(descriptor)
    assert paths(problems) == ["$.version"]
    assert "semantic version" in problems[0][1]


@pytest.mark.parametrize("version", ["0.1.0", "10.20.30", "1.0.0-rc.1", "1.0.0+build.5"])
def test_semver_accepted(descriptor: dict[str, Any], version: str) -> None:
    descriptor["version"] = version
    assert check_descriptor(descriptor) == []


def test_licences_non_empty_with_name_and_path(descriptor: dict[str, Any]) -> None:
    descriptor["licenses"] = []
    assert paths(check_descriptor(descriptor)) == ["$.licenses"]
    descriptor["licenses"] = [{"name": "CC-BY-4.0"}, {"path": "https://x.org/l", "name": ""}]
    assert paths(check_descriptor(descriptor)) == ["$.licenses[0].path", "$.licenses[1].name"]


def test_contributors_need_a_title(descriptor: dict[str, Any]) -> None:
    descriptor["contributors"] = [{"role": "author"}]
    assert paths(check_descriptor(descriptor)) == ["$.contributors[0].title"]


def test_sources_need_a_title(descriptor: dict[str, Any]) -> None:
    descriptor["sources"] = [{"path": "https://example.org"}]
    assert paths(check_descriptor(descriptor)) == ["$.sources[0].title"]


def test_extensions_declared_as_a_list_of_codes(descriptor: dict[str, Any]) -> None:
    """Core 1.0: a package declares its topic extensions (``"extensions": ["msc"]``);
    which names are known is conformance's (unknown-extension), not the profile's."""
    assert descriptor["extensions"] == ["msc"]
    for ok in ([], ["msc"], ["msc", "ophthalmology"]):
        descriptor["extensions"] = ok
        assert check_descriptor(descriptor) == []
    del descriptor["extensions"]
    assert check_descriptor(descriptor) == []  # optional: a package of the core only


@pytest.mark.parametrize(
    ("value", "path", "words"),
    [
        ("msc", "$.extensions", "must be a list of distinct extension names"),
        (["msc", "msc"], "$.extensions", "must be a list of distinct extension names"),
        (["MSC"], "$.extensions[0]", "lower-case code"),
        ([1], "$.extensions[0]", "lower-case code"),
        (["msc", "bad name"], "$.extensions[1]", "lower-case code"),
    ],
)
def test_extensions_must_be_distinct_codes(
    descriptor: dict[str, Any], value: Any, path: str, words: str
) -> None:
    descriptor["extensions"] = value
    problems = check_descriptor(descriptor)
    assert paths(problems) == [path]
    assert words in problems[0][1]


@pytest.mark.parametrize("created", ["2026-11-25", "yesterday", "2026-13-01T00:00:00Z"])
def test_created_is_a_date_time(descriptor: dict[str, Any], created: str) -> None:
    descriptor["created"] = created
    assert paths(check_descriptor(descriptor)) == ["$.created"]


@pytest.mark.parametrize(
    "path",
    [
        "studies.csv",
        "../data/studies.csv",
        "data/../x.csv",
        "/data/studies.csv",
        "https://example.org/data/studies.csv",
        "data/",
        "schemas/studies.csv",
    ],
)
def test_resource_path_under_data(descriptor: dict[str, Any], path: str) -> None:
    descriptor["resources"][1]["path"] = path
    problems = check_descriptor(descriptor)
    assert paths(problems) == ["$.resources[1].path"]
    assert "under data/" in problems[0][1]


@pytest.mark.parametrize("schema", ["studies.schema.json", "../schemas/x.json", "schemas/x.txt"])
def test_resource_schema_under_schemas(descriptor: dict[str, Any], schema: str) -> None:
    descriptor["resources"][0]["schema"] = schema
    assert paths(check_descriptor(descriptor)) == ["$.resources[0].schema"]


def test_bytes_and_hash(descriptor: dict[str, Any]) -> None:
    res = descriptor["resources"]
    res[0]["bytes"] = -1
    res[1]["bytes"] = "12"
    res[2]["hash"] = "md5:" + "0" * 32
    res[3]["hash"] = "sha256:" + "A" * 64
    del res[4]["hash"]
    del res[5]["bytes"]
    problems = check_descriptor(descriptor)
    assert paths(problems) == [
        "$.resources[0].bytes",
        "$.resources[1].bytes",
        "$.resources[2].hash",
        "$.resources[3].hash",
        "$.resources[4].hash",
        "$.resources[5].bytes",
    ]
    assert all("build_descriptor" in message for _, message in problems)


def test_resource_names_and_paths_unique(descriptor: dict[str, Any]) -> None:
    descriptor["resources"].append(copy.deepcopy(descriptor["resources"][1]))
    n = len(descriptor["resources"]) - 1
    problems = check_descriptor(descriptor)
    assert paths(problems) == [f"$.resources[{n}].name", f"$.resources[{n}].path"]
    assert "already used by resources[1]" in problems[0][1]


def test_profile_value(descriptor: dict[str, Any]) -> None:
    descriptor["profile"] = "data-package"
    assert paths(check_descriptor(descriptor)) == ["$.profile"]
    del descriptor["profile"]
    assert check_descriptor(descriptor) == []


def test_not_an_object() -> None:
    assert check_descriptor(["resources"]) == [
        ("$", 'descriptor must be a JSON object; got ["resources"]')
    ]


def test_messages_are_one_line_and_sorted(descriptor: dict[str, Any]) -> None:
    descriptor["version"] = "x\ny"
    descriptor["licenses"] = [{"name": "x" * 500}]
    for i in range(12):
        descriptor["resources"].append({"name": f"extra{i}"})
    problems = check_descriptor(descriptor)
    assert problems
    for path, message in problems:
        assert "\n" not in message and "\n" not in path
        assert len(message) < 300
    indices = [int(p.split("[")[1].split("]")[0]) for p in paths(problems) if p.startswith("$.res")]
    assert indices == sorted(indices)


def test_custom_profile(descriptor: dict[str, Any], tmp_path: Path) -> None:
    profile = {"type": "object", "required": ["homepage2"]}
    assert paths(check_descriptor(descriptor, profile=profile)) == ["$.homepage2"]
    path = tmp_path / "p.json"
    path.write_text(json.dumps(profile), encoding="utf-8")
    assert paths(check_descriptor(descriptor, profile=path)) == ["$.homepage2"]


def test_broken_profile_is_one_line_error(descriptor: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="not a valid JSON Schema"):
        check_descriptor(descriptor, profile={"type": 12})
    path = tmp_path / "bad.json"
    path.write_text("{", encoding="utf-8")
    with pytest.raises(PackageError, match="malformed JSON"):
        check_descriptor(descriptor, profile=path)
