#!/usr/bin/env python3
"""Benchmark `trialpool validate` (fast engine) against `frictionless validate`.

Builds a synthetic conforming package of the core schema and the msc extension in a
temporary folder (default: 10,000 studies, 20,000 arms, 1,000,000 continuous outcome
rows, 50 time points per arm; every value synthetic, labelled so in the sources), then
times, side by side in one run:

* ``trialpool validate --json`` with the fast engine (``TRIALPOOL_ENGINE=fast``);
* ``frictionless validate --json`` (the reference);

each as a child process, reporting wall time, CPU time and the child's peak resident
memory (``resource.getrusage(RUSAGE_CHILDREN)`` of a fresh wrapper per run), and the
ratio of the two wall times. trialpool runs ``--repeat`` times (default 3) and its median
run is compared, with every run's time printed; frictionless runs once. It then plants
one error in the last row of the large file (an outcome that ``outcomes`` does not
define: a foreign-key error) and times both again; the verdicts and the error's location
must agree.

Last, the small-package path: a real Cochrane review (``--review``, default the RevMan
file of CD000023 in tests/fixtures) is imported with ``trialpool import``, and a child
process validates it in-process ``--calls`` times with each engine after one warm-up
call (as a corpus audit does), printing the time per call.

Usage::

    python scripts/bench_validate.py                  # full size (takes minutes)
    python scripts/bench_validate.py --rows 100000    # smaller
    python scripts/bench_validate.py --skip-frictionless
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_descriptor import file_facts

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

OUTCOMES = ["meld", "alb", "tbil", "alt", "ast", "inr", "pt", "pta", "che", "crp"]


def _header(schema_path: Path) -> list[str]:
    return [f["name"] for f in json.loads(schema_path.read_text("utf-8"))["fields"]]


def build(dest: Path, *, studies: int, rows: int, seed: int = 1) -> Path:
    """Write the synthetic package into ``dest``; return its descriptor path.

    Every core resource and the msc extension's ``msc_arms``: one source per study, two
    arms per study (MSC and standard care) with their ``msc_arms`` rows, one comparison
    per study, the continuous outcomes of ``OUTCOMES``, and ``rows`` continuous outcome
    rows spread evenly over the arms, one time point each (50 per arm at full size),
    cycling over the outcomes. The package is valid.
    """
    rng = np.random.default_rng(seed)
    template = json.loads((ROOT / "datapackage.json").read_text("utf-8"))
    (dest / "data").mkdir(parents=True)
    for res in template["resources"]:
        (dest / res["schema"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / res["schema"], dest / res["schema"])
    ids = np.array([f"s{i:05d}" for i in range(studies)], dtype=object)
    sources = pd.DataFrame(
        {
            "source_id": ids,
            "kind": "primary_article",
            "citation": "Synthetic benchmark source (not a real publication)",
        }
    )
    study_frame = pd.DataFrame(
        {
            "study_id": ids,
            "label": ids,
            "first_author": "Synthetic",
            "year": rng.integers(2005, 2025, studies),
            "country": "Testland",
            "design": "rct",
            "blinding": "open_label",
            "follow_up_weeks": 52,
            "source_id": ids,
        }
    )
    arm_ids = np.array(["msc", "control"], dtype=object)
    n_rand = rng.integers(10, 200, studies * 2)
    arm_study = np.repeat(ids, 2)
    arm_id = np.tile(arm_ids, studies)
    arms = pd.DataFrame(
        {
            "study_id": arm_study,
            "arm_id": arm_id,
            "comparator_type": np.tile(
                np.array(["not_applicable", "standard_care"], dtype=object), studies
            ),
            "description": "synthetic arm",
            "n_randomised": n_rand,
            "n_analysed": n_rand,
            "source_id": arm_study,
        }
    )
    msc_arms = pd.DataFrame(
        {
            "study_id": arm_study,
            "arm_id": arm_id,
            "cell_source": np.tile(
                np.array(["umbilical_cord", "not_applicable"], dtype=object), studies
            ),
            "origin": np.tile(np.array(["allogeneic", "not_applicable"], dtype=object), studies),
            "route": np.tile(
                np.array(["peripheral_vein", "not_applicable"], dtype=object), studies
            ),
            "source_id": arm_study,
        }
    )
    comparisons = pd.DataFrame(
        {
            "comparison_id": [f"{s}_msc_vs_control" for s in ids],
            "study_id": ids,
            "experimental_arm_id": "msc",
            "control_arm_id": "control",
            "label": "MSC versus control",
            "primary": "true",
            "source_id": ids,
        }
    )
    outcomes = pd.DataFrame(
        {
            "outcome_id": OUTCOMES,
            "label": [o.upper() for o in OUTCOMES],
            "data_type": "continuous",
            "direction": "unclear",
            "source_id": ids[0],
            "locator": "Table 2",
        }
    )
    # continuous rows: per arm, time points 1, 2, ... (weeks), the outcome cycling
    per_arm = -(-rows // (studies * 2))
    arm_index = np.repeat(np.arange(studies * 2), per_arm)[:rows]
    step = np.tile(np.arange(per_arm), studies * 2)[:rows]
    weeks = 52.0 * (step + 1) / per_arm
    cont = pd.DataFrame(
        {
            "study_id": arm_study[arm_index],
            "arm_id": arm_id[arm_index],
            "outcome": np.array(OUTCOMES, dtype=object)[step % len(OUTCOMES)],
            "timepoint": np.char.add("t", (step + 1).astype(str)).astype(object),
            "timepoint_weeks": np.round(weeks, 2),
            "statistic": "mean_sd",
            "n": rng.integers(5, 200, rows),
            "mean": np.round(rng.normal(20, 5, rows), 3),
            "sd": np.round(rng.uniform(0.5, 10, rows), 3),
            "unit": "units",
            "source_id": arm_study[arm_index],
            "locator": "Table 2",
            "verification": "primary",
        }
    )
    frames = {
        "sources": sources,
        "studies": study_frame,
        "arms": arms,
        "msc_arms": msc_arms,
        "comparisons": comparisons,
        "outcomes": outcomes,
        "continuous_outcomes": cont,
    }
    for res in template["resources"]:
        columns = _header(ROOT / res["schema"])
        frame = frames.get(res["name"], pd.DataFrame(columns=columns))
        frame = frame.reindex(columns=columns)
        frame.to_csv(dest / res["path"], index=False, lineterminator="\n")
    return _write_descriptor(dest, template)


def _write_descriptor(dest: Path, template: dict) -> Path:
    for res in template["resources"]:
        res["bytes"], res["hash"] = file_facts(dest / res["path"])
    template["sources"] = [{"title": "Synthetic benchmark sources"}]
    path = dest / "datapackage.json"
    path.write_text(json.dumps(template, indent=2), encoding="utf-8")
    return path


def plant_error(descriptor: Path) -> tuple[int, str]:
    """Put an unknown outcome in the last row of continuous_outcomes; refresh hashes."""
    dest = descriptor.parent
    path = dest / "data" / "continuous_outcomes.csv"
    with path.open("rb+") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 4096))
        tail = handle.read()
    lines = tail.rstrip(b"\n").split(b"\n")
    last = lines[-1].split(b",")
    last[2] = b"not_an_outcome"
    new_last = b",".join(last)
    with path.open("rb+") as handle:
        handle.seek(size - len(lines[-1]) - 1)
        handle.write(new_last + b"\n")
        handle.truncate()
    with path.open("rb") as handle:
        n_rows = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    template = json.loads(descriptor.read_text("utf-8"))
    _write_descriptor(dest, template)
    return n_rows, "outcome"


_WRAPPER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.run(sys.argv[1:], capture_output=True, env=None)
seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"code": proc.returncode, "seconds": seconds, "peak_kib": usage.ru_maxrss,
                  "cpu": usage.ru_utime + usage.ru_stime,
                  "stdout": proc.stdout.decode("utf-8", "replace")}))
"""


def timed(cmd: list[str], env: dict[str, str]) -> dict:
    """Run ``cmd`` under a fresh wrapper; return exit code, wall seconds, CPU seconds (user
    and system, all threads), peak RSS, stdout."""
    out = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *cmd], capture_output=True, text=True, env=env
    )
    return json.loads(out.stdout)


def locations_trialpool(stdout: str) -> set[tuple]:
    """(resource, row, error type) of the Table Schema issues trialpool reports."""
    data = json.loads(stdout)
    return {
        (i["resource"], i["row"], i["rule"]) for i in data["issues"] if i["source"] != "trialpool"
    }


def locations_frictionless(stdout: str) -> set[tuple]:
    """(resource, row, error type) of frictionless' errors."""
    data = json.loads(stdout)
    found = set()
    for task in data.get("tasks", []):
        for e in task.get("errors", []):
            found.add((task["name"], e.get("rowNumber"), e.get("type")))
    return found


_PER_CALL = """
import json, sys, time
from trialpool.validate import validate_package
descriptor, calls = sys.argv[1], int(sys.argv[2])
out = {}
for engine in ("fast", "frictionless"):
    first = validate_package(descriptor, engine=engine)  # warm-up: imports, caches
    start = time.perf_counter()
    for _ in range(calls):
        report = validate_package(descriptor, engine=engine)
    out[engine] = {"ms": (time.perf_counter() - start) / calls * 1000, "valid": report.valid}
print(json.dumps(out))
"""


def small_package(review: Path, work: Path, calls: int) -> None:
    """Import ``review``; print the in-process time per validate call of each engine."""
    out = work / "review"
    proc = subprocess.run(
        [str(BIN / "trialpool"), "import", str(review), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        print(f"[imported review] import failed: {proc.stdout[-500:]}{proc.stderr[-500:]}")
        return
    descriptor = out / "datapackage.json"
    size = sum(p.stat().st_size for p in (out / "data").glob("*.csv"))
    result = subprocess.run(
        [sys.executable, "-c", _PER_CALL, str(descriptor), str(calls)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        print(f"[imported review] failed: {result.stderr[-1000:]}")
        return
    times = json.loads(result.stdout)
    fast, slow = times["fast"], times["frictionless"]
    print(
        f"[imported review {review.name}, {size / 1e3:.0f} kB of data] in-process, per call "
        f"({calls} calls after a warm-up): fast {fast['ms']:.0f} ms (valid {fast['valid']}), "
        f"frictionless {slow['ms']:.0f} ms (valid {slow['valid']}); "
        f"ratio {slow['ms'] / fast['ms']:.1f}x"
    )


def large_package(work: Path, args: argparse.Namespace) -> None:
    """Time both engines on the synthetic package, valid and with one planted error."""
    t0 = time.perf_counter()
    descriptor = build(work / "pkg", studies=args.studies, rows=args.rows)
    size = (work / "pkg/data/continuous_outcomes.csv").stat().st_size
    print(
        f"built {args.studies:,} studies, {args.rows:,} continuous rows "
        f"({size / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f} s at {descriptor.parent}"
    )
    env = dict(os.environ, TRIALPOOL_ENGINE="fast")
    tp_cmd = [str(BIN / "trialpool"), "validate", str(descriptor), "--json"]
    fl_cmd = [str(BIN / "frictionless"), "validate", str(descriptor), "--json"]
    for label in ("valid package", "one error in the last row"):
        if label != "valid package":
            n_rows, field = plant_error(descriptor)
            print(f"planted: row {n_rows} field {field}")
        runs = [timed(tp_cmd, env) for _ in range(args.repeat)]
        tp = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]  # the median run
        tp["peak_kib"] = max(r["peak_kib"] for r in runs)
        each = ", ".join(f"{r['seconds']:.2f}" for r in runs)
        print(
            f"[{label}] trialpool (fast): exit {tp['code']}, {tp['seconds']:.2f} s "
            f"(CPU {tp['cpu']:.2f} s; median of {each} s), "
            f"peak {tp['peak_kib'] / 1024:.0f} MiB"
        )
        if tp["code"] not in (0, 1):
            print(tp["stdout"][-2000:])
        if args.skip_frictionless:
            continue
        fl = timed(fl_cmd, env)
        print(
            f"[{label}] frictionless:     exit {fl['code']}, {fl['seconds']:.2f} s "
            f"(CPU {fl['cpu']:.2f} s), peak {fl['peak_kib'] / 1024:.0f} MiB"
        )
        same_verdict = tp["code"] == fl["code"]
        same_locations = locations_trialpool(tp["stdout"]) == locations_frictionless(fl["stdout"])
        print(
            f"[{label}] ratio frictionless/trialpool: {fl['seconds'] / tp['seconds']:.1f}x "
            f"wall ({fl['cpu'] / tp['cpu']:.1f}x CPU); trialpool peak "
            f"{tp['peak_kib'] / 1024:.0f} MiB; same verdict: {same_verdict}; "
            f"same locations: {same_locations}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-frictionless", action="store_true")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="trialpool runs per case (the median is compared: one run of a few seconds "
        "is at the mercy of a moment's load, frictionless' run of minutes is not)",
    )
    parser.add_argument("--keep", type=Path, help="build here and keep the package")
    parser.add_argument(
        "--review",
        type=Path,
        default=ROOT / "tests/fixtures/revman/CD000023StatsDataOnly.rm5",
        help="a Cochrane review for the small-package timing",
    )
    parser.add_argument("--calls", type=int, default=20, help="validate calls per engine")
    parser.add_argument("--skip-large", action="store_true", help="only the small package")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench_validate_")) if args.keep is None else args.keep
    try:
        if not args.skip_large:
            large_package(work, args)
        small_package(args.review, work, args.calls)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
