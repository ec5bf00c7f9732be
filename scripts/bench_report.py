#!/usr/bin/env python3
"""Benchmark ``trialpool import`` and ``trialpool report`` on one very large analysis.

Generates a synthetic RevMan 5 CSV export holding one comparison with one dichotomous
analysis (Mantel-Haenszel risk ratio, random effects) of N studies (seeded counts: 20 to
400 participants per arm, events up to a third of them). Each study row carries the
study's risk ratio and 95% CI as RevMan 5 stores them, computed here from the counts with
RevMan's formulas (Deeks & Higgins, RM5 §1.1) and printed with 8 decimals as RevMan's
export does, so that the report's audit compares as many numbers as for a real export.

Two runs side by side, each command in a fresh process (``python -m trialpool.cli``):
by default a baseline size (1,000 studies) and the large one (10,000), both with this
checkout; with ``--against SRC`` the large size with this checkout and with the
``trialpool`` package under SRC (the ``src`` folder of another version extracted with
``git archive``, its ``schemas`` beside it), on the same interpreter. For each, the
wall-clock time, the CPU time (user + system: the machine may be shared) and the peak
resident memory of the command's process (``os.wait4``; figure workers, when any, are
other processes), and the ratio of the second run to the first.

Usage (from the repository root)::

    .venv/bin/python scripts/bench_report.py [--studies 10000] [--baseline 1000] [--keep DIR]
    git archive HEAD~5 src schemas | tar -x -C /tmp/old
    .venv/bin/python scripts/bench_report.py --against /tmp/old/src

The issue's targets for 10,000 studies: import and report each under 60 s and 1 GB.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HEADER = [
    "Comparison Number", "Outcome Number", "Subgroup Number", "Name", "Data Type",
    "Statistical Method", "Effect Measure", "Analysis Model", "Events 1", "Total 1",
    "Events 2", "Total 2", "Effect Estimate", "CI Start", "CI End", "Group Label 1",
    "Group Label 2", "Left Graph Label", "Right Graph Label", "Year of study",
]  # fmt: skip

Z95 = 1.959963984540054


def study_rr(e1: int, n1: int, e2: int, n2: int) -> tuple[float, float, float]:
    """A study's risk ratio and 95% CI as RevMan 5 computes them (no zero cells here)."""
    rr = (e1 / n1) / (e2 / n2)
    se = math.sqrt(1 / e1 - 1 / n1 + 1 / e2 - 1 / n2)
    return rr, math.exp(math.log(rr) - Z95 * se), math.exp(math.log(rr) + Z95 * se)


def write_export(path: Path, studies: int, seed: int = 16) -> Path:
    """The synthetic export of one analysis of ``studies`` studies."""
    rng = random.Random(seed)
    blank = dict.fromkeys(HEADER, "")
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=HEADER, lineterminator="\r\n")
        writer.writeheader()
        writer.writerow(
            blank
            | {"Comparison Number": 1, "Outcome Number": 0, "Subgroup Number": 0,
               "Name": "Synthetic treatment versus control"}
        )  # fmt: skip
        writer.writerow(
            blank
            | {"Comparison Number": 1, "Outcome Number": 1, "Subgroup Number": 0,
               "Name": "Death", "Data Type": "DIC", "Statistical Method": "MH",
               "Effect Measure": "RR", "Analysis Model": "Random",
               "Group Label 1": "Treatment", "Group Label 2": "Control",
               "Left Graph Label": "Favours treatment", "Right Graph Label": "Favours control"}
        )  # fmt: skip
        for i in range(studies):
            n1, n2 = rng.randint(20, 400), rng.randint(20, 400)
            e1, e2 = rng.randint(1, n1 // 3), rng.randint(1, n2 // 3)
            rr, lo, hi = study_rr(e1, n1, e2, n2)
            writer.writerow(
                blank
                | {"Comparison Number": 1, "Outcome Number": 1, "Subgroup Number": 0,
                   "Name": f"Study {i + 1:05d}", "Events 1": e1, "Total 1": n1,
                   "Events 2": e2, "Total 2": n2, "Effect Estimate": f"{rr:.8f}",
                   "CI Start": f"{lo:.8f}", "CI End": f"{hi:.8f}",
                   "Year of study": 1990 + i % 35}
            )  # fmt: skip
    return path


@dataclass(frozen=True)
class Run:
    wall: float  # seconds
    cpu: float  # user + system seconds of the command's process
    peak_mib: float  # its peak resident set size


def timed(args: list[str], src: Path | None = None) -> Run:
    """Run ``python -m trialpool.cli ARGS`` in a fresh process (with the ``trialpool``
    package under ``src`` when given); its time and peak memory."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "trialpool.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    _pid, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    stderr = child.stderr.read().decode(errors="replace") if child.stderr else ""
    if child.stderr:
        child.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"trialpool {' '.join(args)} failed: {stderr.strip()}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def bench(studies: int, folder: Path, src: Path | None = None) -> dict[str, Run | int]:
    """Generate, import and report one size in ``folder`` (``src``: another version)."""
    tag = f"{studies}" + ("_against" if src is not None else "")
    source = write_export(folder / f"synthetic_{tag}.csv", studies)
    package = folder / f"package_{tag}"
    report = folder / f"report_{tag}"
    runs: dict[str, Run | int] = {
        "import": timed(["import", str(source), "--out", str(package)], src),
        "report": timed(["report", str(package / "datapackage.json"), "--out", str(report)], src),
    }
    runs["html_bytes"] = (report / "report.html").stat().st_size
    runs["csv_bytes"] = source.stat().st_size
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=10_000)
    parser.add_argument("--baseline", type=int, default=1_000)
    parser.add_argument("--keep", type=Path, help="keep the generated files in this folder")
    parser.add_argument(
        "--against", type=Path, help="the src folder of another version: compare at --studies"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        if args.against is None:
            base = bench(args.baseline, folder)
            b_label = f"{args.baseline:,} studies"
        else:
            base = bench(args.studies, folder, args.against.resolve())
            b_label = "other version"
        big = bench(args.studies, folder)
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    l_label = f"{args.studies:,} studies" if args.against is None else "this checkout"
    print(
        f"one analysis (M-H RR, random effects) of N studies, synthetic RevMan 5 CSV export: "
        f"{base['csv_bytes'] / 1e6:.2f} MB and {big['csv_bytes'] / 1e6:.2f} MB"
        + (f"; other version: {args.against}" if args.against is not None else "")
    )
    print(f"{'':<22}{b_label:>16}{l_label:>16}{'ratio':>8}")
    for stage in ("import", "report"):
        b, g = base[stage], big[stage]
        assert isinstance(b, Run) and isinstance(g, Run)
        for name, x, y, unit in (
            ("wall", b.wall, g.wall, "s"),
            ("CPU", b.cpu, g.cpu, "s"),
            ("peak memory", b.peak_mib, g.peak_mib, "MiB"),
        ):
            print(
                f"{stage + ' ' + name + ' (' + unit + ')':<22}{x:>16.1f}{y:>16.1f}"
                f"{y / x if x else float('nan'):>8.3g}"
            )
    print(
        f"{'report.html (MB)':<22}{int(base['html_bytes']) / 1e6:>16.2f}"
        f"{int(big['html_bytes']) / 1e6:>16.2f}"
    )
    g_import, g_report = big["import"], big["report"]
    assert isinstance(g_import, Run) and isinstance(g_report, Run)
    ok = all(r.wall < 60 and r.peak_mib < 1024 for r in (g_import, g_report))
    print(
        f"target for {args.studies:,} studies (each command under 60 s and 1 GB): "
        + ("met" if ok else "NOT met")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
