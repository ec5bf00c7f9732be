#!/usr/bin/env python3
"""Benchmark ``trialpool import``: read, write, validate and pool every analysis of a review.

Two inputs, side by side:

* the largest given review, ``tests/fixtures/revman/CD008625StatsDataOnly.rm5`` (the
  baseline);
* a synthetic review 20 times its size: the same file with its comparisons repeated
  20 times under new numbers (same studies, so every analysis is real RevMan data).

For each input the stages are timed in a fresh process (read the source; map and write the
package; validate it, Table Schema and every cross-table rule; pool every analysis with
RevMan's conventions; compare every stored RevMan number), with the peak resident memory
of that process. The last column is the ratio synthetic / baseline: about 20 means the
stage scales linearly with the size of the review.

Usage: python scripts/bench_import.py [--copies 20]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GIVEN = ROOT / "tests" / "fixtures" / "revman" / "CD008625StatsDataOnly.rm5"
STAGES = ("read", "write", "validate", "pool", "audit", "total")


def synthetic_review(source: Path, copies: int, dest: Path) -> Path:
    """``source`` with its comparisons repeated ``copies`` times under new numbers."""
    from defusedxml import ElementTree

    root = ElementTree.fromstring(source.read_bytes(), forbid_dtd=True)
    analyses = root.find("ANALYSES_AND_DATA")
    assert analyses is not None
    originals = list(analyses.findall("COMPARISON"))
    for k in range(1, copies):
        for comparison in originals:
            clone = ElementTree.fromstring(ElementTree.tostring(comparison))
            number = int(comparison.get("NO", "0")) + k * len(originals)
            clone.set("NO", str(number))
            clone.set("ID", f"CMP-{number:03d}")
            name = clone.find("NAME")
            if name is not None:
                name.text = f"{name.text} (copy {k + 1})"
            analyses.append(clone)
    dest.write_bytes(
        b'<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root, encoding="utf-8")
    )
    return dest


def run_stages(source: Path) -> dict[str, float]:
    """Time each stage on ``source`` (in this process); also the peak RSS in MiB."""
    from trialpool.analysis.plan import RevManAnalysis, load_plan
    from trialpool.analysis.reproduce import reproduction_checks
    from trialpool.analysis.revman import PackageIndex, pool_review_analysis
    from trialpool.imports.detect import read_review
    from trialpool.imports.write import write_review_package
    from trialpool.package.loader import load_package
    from trialpool.validate import validate_package

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "pkg"
        folder.mkdir()
        t0 = time.perf_counter()
        review = read_review(source)
        t1 = time.perf_counter()
        write_review_package(review, folder)
        t2 = time.perf_counter()
        report = validate_package(folder / "datapackage.json")
        t3 = time.perf_counter()
        if not report.valid:
            raise SystemExit(f"invalid: {report.issues[0].line()}")
        pkg = load_package(folder / "datapackage.json")
        plan = load_plan(folder / "analysis" / "plan.json")
        index = PackageIndex.of(pkg)
        results = [
            (a, pool_review_analysis(pkg, a, index))
            for a in plan.analyses
            if isinstance(a, RevManAnalysis)
        ]
        t4 = time.perf_counter()
        checks = [c for a, r in results for c in reproduction_checks(pkg, a, r, index)]
        t5 = time.perf_counter()
        out.update(read=t1 - t0, write=t2 - t1, validate=t3 - t2, pool=t4 - t3, audit=t5 - t4)
        out["total"] = t5 - t0
        out["analyses"] = len(results)
        out["differs"] = sum(c.status == "differs" for c in checks)
        out["checks"] = len(checks)
        out["bytes"] = source.stat().st_size
        out["engine"] = 1.0 if report.summary.get("engine") == "fast" else 0.0
    out["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(run_stages(args.child)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        synthetic = synthetic_review(GIVEN, args.copies, Path(tmp) / "synthetic.rm5")
        runs = {}
        for label, source in (("given", GIVEN), (f"{args.copies}x", synthetic)):
            done = subprocess.run(
                [sys.executable, __file__, "--child", str(source)],
                capture_output=True,
                text=True,
                check=True,
            )
            runs[label] = json.loads(done.stdout.strip().splitlines()[-1])
    base, big = runs["given"], runs[f"{args.copies}x"]
    print(
        f"given: {GIVEN.name}, {base['bytes'] / 1e6:.2f} MB, {base['analyses']:.0f} analyses; "
        f"synthetic: {big['bytes'] / 1e6:.2f} MB, {big['analyses']:.0f} analyses"
    )
    print(f"{'stage':<10}{'given (s)':>12}{f'{args.copies}x (s)':>12}{'ratio':>9}")
    for stage in STAGES:
        ratio = big[stage] / base[stage] if base[stage] > 0 else float("nan")
        print(f"{stage:<10}{base[stage]:>12.3f}{big[stage]:>12.3f}{ratio:>9.1f}")
    print(
        f"{'peak MiB':<10}{base['peak_mib']:>12.0f}{big['peak_mib']:>12.0f}"
        f"{big['peak_mib'] / base['peak_mib']:>9.1f}"
    )
    print(
        f"RevMan numbers compared: {base['checks']:.0f} and {big['checks']:.0f}; "
        f"differing beyond the named RevMan peculiarities: "
        f"{base['differs']:.0f} and {big['differs']:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
