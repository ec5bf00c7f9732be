#!/usr/bin/env python3
"""Benchmark ``trialpool audit``: reviews/s and analyses/s over a corpus of real reviews.

The corpus is built from the real Cochrane files in /work/shared/revman (when present) and
tests/fixtures/revman: every review source there (RevMan 5 files, the RevMan 5 CSV export,
the Cochrane data packages) copied ``--copies`` times under new names, so that the corpus
holds about 100 real reviews (11 sources x 9 copies = 99). Copies are byte-identical to
their original: the work per review is real, only the corpus is replicated.

Side by side, each in fresh processes:

* **audit**: one ``trialpool audit CORPUS --out DIR --jobs N`` command (worker processes
  that each audit many reviews in-process);
* **baseline**: one ``trialpool import`` process per review, N at a time, over the first
  ``--baseline-copies`` copies of the corpus (it imports and validates only; the audit
  also pools every analysis and compares every stored number).

Printed for each: reviews, wall seconds (the whole command, interpreter start-up
included), reviews/s, analyses/s, CPU seconds per review (user + system of all the
processes: the figure that does not depend on what else the machine runs; the load
average is printed too) and the peak resident memory of the largest process. Each side
runs under its own measuring process, so that its figures are its own. The last line is
the ratio audit / baseline in reviews/s.

Usage: python scripts/bench_audit.py [--copies 9] [--baseline-copies 1] [--jobs 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = (Path("/work/shared/revman"), ROOT / "tests" / "fixtures" / "revman")


def review_sources() -> list[Path]:
    """The review sources of the real corpus (files, and data-package folders)."""
    from trialpool.corpus.sources import find_reviews

    found = find_reviews([f for f in FOLDERS if f.is_dir()])
    return [r.path for r in found.reviews]


def build_corpus(sources: list[Path], copies: int, dest: Path) -> list[list[Path]]:
    """Copy every source ``copies`` times into ``dest``; the copies, one list per round."""
    rounds: list[list[Path]] = []
    for k in range(copies):
        this: list[Path] = []
        for i, src in enumerate(sources):
            name = f"c{k:02d}-{i:02d}-{src.name}"
            target = dest / name
            if src.is_dir():
                shutil.copytree(src, target)
            else:
                shutil.copyfile(src, target)
            this.append(target)
        rounds.append(this)
    return rounds


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _trialpool(*args: str) -> list[str]:
    return [sys.executable, "-m", "trialpool.cli", *args]


def run_audit(corpus: Path, out: Path, jobs: int) -> dict[str, float]:
    """One ``trialpool audit`` over ``corpus``: wall and CPU seconds, reviews, analyses."""
    cpu0, t0 = _children_cpu(), time.perf_counter()
    subprocess.run(
        _trialpool("audit", str(corpus), "--out", str(out), "--jobs", str(jobs)),
        check=True,
        capture_output=True,
        text=True,
    )
    wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    with (out / "reviews.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return {
        "reviews": len(rows),
        "refused": sum(r["status"] == "refused" for r in rows),
        "analyses": sum(int(r["analyses"] or 0) for r in rows),
        "wall": wall,
        "cpu": cpu,
        "peak_mib": peak,
    }


def run_baseline(sources: list[Path], out: Path, jobs: int) -> dict[str, float]:
    """One ``trialpool import`` process per source, ``jobs`` at a time."""
    cpu0, t0 = _children_cpu(), time.perf_counter()
    pending = list(enumerate(sources))
    running: list[subprocess.Popen[bytes]] = []
    failed = 0
    while pending or running:
        while pending and len(running) < jobs:
            i, src = pending.pop(0)
            cmd = _trialpool("import", str(src), "--out", str(out / f"p{i:03d}"))
            running.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL))  # fmt: skip
        proc = running.pop(0)
        failed += proc.wait() != 0
    wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"reviews": len(sources), "refused": failed, "analyses": float("nan"),
            "wall": wall, "cpu": cpu, "peak_mib": peak}  # fmt: skip


def _line(label: str, r: dict[str, float]) -> str:
    analyses = r["analyses"]
    per_s = "–" if analyses != analyses else f"{analyses / r['wall']:.1f}"
    return (
        f"{label:<10}{r['reviews']:>8.0f}{r['refused']:>8.0f}{r['wall']:>9.1f}"
        f"{r['reviews'] / r['wall']:>11.2f}{per_s:>11}{r['cpu'] / r['reviews']:>12.3f}"
        f"{r['peak_mib']:>10.0f}"
    )


def _measured(mode: str, jobs: int, out: Path, sources: list[Path]) -> dict[str, float]:
    """Run one side in a child process of this script, which measures only itself."""
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--jobs", str(jobs), "--out", str(out),
         *map(str, sources)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=9)
    parser.add_argument("--baseline-copies", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--child", choices=("audit", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.copies < 1 or args.baseline_copies < 1 or args.jobs < 1:
        parser.error("--copies, --baseline-copies and --jobs must be at least 1")
    if args.child == "audit":
        print(json.dumps(run_audit(args.paths[0], args.out, args.jobs)))
        return 0
    if args.child == "baseline":
        print(json.dumps(run_baseline(args.paths, args.out, args.jobs)))
        return 0
    sources = review_sources()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        rounds = build_corpus(sources, args.copies, corpus)
        load = os.getloadavg()[0]
        audit = _measured("audit", args.jobs, Path(tmp) / "audit", [corpus])
        baseline_sources = [p for r in rounds[: args.baseline_copies] for p in r]
        baseline = _measured("baseline", args.jobs, Path(tmp) / "imports", baseline_sources)
        load = max(load, os.getloadavg()[0])
    print(
        f"corpus: {len(sources)} real review sources x {args.copies} copies = "
        f"{len(sources) * args.copies} reviews (copies are byte-identical); "
        f"{args.jobs} jobs; {os.cpu_count()} CPUs; load average up to {load:.1f}"
    )
    print(f"{'':<10}{'reviews':>8}{'refused':>8}{'wall s':>9}{'reviews/s':>11}"
          f"{'analyses/s':>11}{'CPU s/rev':>12}{'peak MiB':>10}")  # fmt: skip
    print(_line("audit", audit))
    print(_line("baseline", baseline) + "   (one trialpool import process per review)")
    ratio = (audit["reviews"] / audit["wall"]) / (baseline["reviews"] / baseline["wall"])
    print(f"audit / baseline, reviews/s: {ratio:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
