#!/usr/bin/env python3
"""Write schemas/analysis-plan.schema.json from the pydantic models in trialpool.analysis.plan.

The models are the single source of truth; never edit the schema file by hand. Writing it
also refreshes trialpool's bundled copy of ``schemas/`` (``scripts/sync_schemas.py``).

Usage::

    python scripts/make_plan_schema.py           # rewrite the schema file
    python scripts/make_plan_schema.py --check   # exit 1 if the committed file is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from trialpool.analysis.plan import plan_json_schema

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import sync_schemas  # noqa: E402  (a sibling script)

SCHEMA_PATH = ROOT / "schemas" / "analysis-plan.schema.json"


def render() -> str:
    """The schema file's text (sorted keys would scramble the models' order: not used)."""
    return json.dumps(plan_json_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write or check the schema file; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = SCHEMA_PATH.read_text(encoding="utf-8") if SCHEMA_PATH.exists() else ""
        if current != text:
            print(
                f"{SCHEMA_PATH.relative_to(ROOT)} is stale: run python scripts/make_plan_schema.py",
                file=sys.stderr,
            )
            return 1
        return 0
    SCHEMA_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {SCHEMA_PATH.relative_to(ROOT)}")
    return sync_schemas.main([])


if __name__ == "__main__":
    sys.exit(main())
