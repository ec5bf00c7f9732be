#!/usr/bin/env python3
"""Benchmark trialpool.stats.pooling.rma_batch against metafor's rma in a loop, same data.

Generates N synthetic meta-analyses (k from 2 to 40, seeded), pools them all with
``rma_batch`` (REML with HKSJ by default) and with metafor's ``rma(..., test="knha")``
called once per analysis in an R loop (Rscript, data passed through a temporary CSV at
full precision). Prints both times (the R time covers the loop only, not start-up or
reading the file), the speed ratio, and the largest absolute differences in estimate,
SE and tau² over the analyses both fitted. Exit status 1 if a difference exceeds the
tolerance or the two disagree about which analyses failed to converge.

Usage (from the repository root)::

    .venv/bin/python scripts/bench_pool.py [--n 10000] [--seed 2025] [--method REML]
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from trialpool.stats.pooling import rma_batch

R_LOOP = r"""
suppressPackageStartupMessages(library(metafor))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], colClasses = c("integer", "numeric", "numeric"))
method <- args[3]
test <- args[4]
groups <- split(d[, c("yi", "vi")], d$id)
n <- length(groups)
beta <- se <- tau2 <- rep(NA_real_, n)
t0 <- proc.time()
for (i in seq_len(n)) {
  g <- groups[[i]]
  r <- tryCatch(rma(g$yi, g$vi, method = method, test = test), error = function(e) NULL)
  if (!is.null(r)) {
    beta[i] <- r$beta[1]
    se[i] <- r$se
    tau2[i] <- r$tau2
  }
}
dt <- proc.time() - t0
out <- data.frame(id = as.integer(names(groups)), beta = beta, se = se, tau2 = tau2)
write.csv(out, args[2], row.names = FALSE)
cat(sprintf("%.6f %.6f\n", dt[["elapsed"]], dt[["user.self"]] + dt[["sys.self"]]))
"""


def simulate(n: int, seed: int, kmin: int, kmax: int) -> tuple[np.ndarray, np.ndarray]:
    """N NaN-padded analyses: k ~ U{kmin..kmax}, yi = mu + u + e, u ~ N(0, tau²)."""
    rng = np.random.default_rng(seed)
    k = rng.integers(kmin, kmax + 1, n)
    mu = rng.normal(0.0, 0.5, n)
    tau = rng.uniform(0.0, 0.6, n)
    vi = rng.uniform(0.01, 0.5, (n, kmax))
    yi = mu[:, None] + rng.normal(0.0, 1.0, (n, kmax)) * tau[:, None]
    yi = yi + rng.normal(0.0, 1.0, (n, kmax)) * np.sqrt(vi)
    pad = np.arange(kmax)[None, :] >= k[:, None]
    yi[pad] = np.nan
    vi[pad] = np.nan
    return yi, vi


def run_r(
    yi: np.ndarray, vi: np.ndarray, method: str, test: str, work: Path
) -> tuple[float, float, np.ndarray]:
    """metafor's rma over every analysis: (loop wall s, loop CPU s, [beta, se, tau2] rows)."""
    data = work / "analyses.csv"
    with data.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "yi", "vi"])
        for i in range(yi.shape[0]):
            for y, v in zip(yi[i], vi[i], strict=True):
                if np.isfinite(y):
                    w.writerow([i, repr(float(y)), repr(float(v))])
    script = work / "loop.R"
    script.write_text(R_LOOP, encoding="utf-8")
    out = work / "metafor.csv"
    rscript = shutil.which("Rscript")
    if rscript is None:
        sys.exit("Rscript not found: the benchmark needs R with metafor")
    run = subprocess.run(
        [rscript, str(script), str(data), str(out), method, test],
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode != 0:
        sys.exit(f"Rscript failed:\n{run.stderr}")
    elapsed, cpu = (float(x) for x in run.stdout.strip().splitlines()[-1].split())
    res = np.full((yi.shape[0], 3), np.nan)
    with out.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            res[int(row["id"])] = [
                float(row[c]) if row[c] not in ("NA", "") else np.nan
                for c in ("beta", "se", "tau2")
            ]
    return elapsed, cpu, res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="number of analyses")
    ap.add_argument("--seed", type=int, default=2025)
    ap.add_argument("--kmin", type=int, default=2)
    ap.add_argument("--kmax", type=int, default=40)
    ap.add_argument("--method", default="REML", choices=["FE", "DL", "REML", "PM", "ML"])
    ap.add_argument("--no-hksj", action="store_true", help="Wald-type tests (test='z')")
    ap.add_argument("--repeat", type=int, default=3, help="Python runs (best time kept)")
    ap.add_argument("--tol", type=float, default=1e-6, help="max relative difference")
    args = ap.parse_args(argv)
    hksj = not args.no_hksj
    yi, vi = simulate(args.n, args.seed, args.kmin, args.kmax)

    times, cpu_times = [], []
    fit = None
    for _ in range(max(1, args.repeat)):
        t0, c0 = time.perf_counter(), time.process_time()
        fit = rma_batch(yi, vi, method=args.method, hksj=hksj)
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    assert fit is not None
    t_py, c_py = min(times), min(cpu_times)

    with tempfile.TemporaryDirectory() as tmp:
        r_method = "EE" if args.method == "FE" else args.method
        t_r, c_r, ref = run_r(yi, vi, r_method, "knha" if hksj else "z", Path(tmp))

    ours = np.column_stack([fit.beta, fit.se, fit.tau2])
    r_ok = np.isfinite(ref[:, 0])
    both = r_ok & fit.converged
    mismatch = int(np.sum(r_ok != fit.converged))
    diff = np.abs(ours[both] - ref[both])
    rel = diff / np.maximum(1.0, np.abs(ref[both]))
    max_abs = diff.max(axis=0) if both.any() else np.zeros(3)
    max_rel = float(rel.max()) if both.any() else 0.0

    test_name = "knha" if hksj else "z"
    print(
        f"analyses: {args.n} (k {args.kmin}-{args.kmax}, seed {args.seed}), "
        f"method {args.method}, test {test_name}"
    )
    print(f"trialpool rma_batch: {t_py:.3f} s wall, {c_py:.3f} s CPU  (best of {len(times)})")
    print(f"metafor rma loop:    {t_r:.3f} s wall, {c_r:.3f} s CPU")
    print(f"speed-up: {t_r / t_py:.1f}x wall, {c_r / max(c_py, 1e-9):.1f}x CPU")
    print(
        f"fitted by both: {int(both.sum())}; not converged: metafor {int((~r_ok).sum())}, "
        f"trialpool {int((~fit.converged).sum())}; disagreements: {mismatch}"
    )
    print(
        f"max |difference|: estimate {max_abs[0]:.3e}, se {max_abs[1]:.3e}, "
        f"tau2 {max_abs[2]:.3e}  (max relative {max_rel:.3e}, tolerance {args.tol:g})"
    )
    ok = mismatch == 0 and max_rel <= args.tol
    print("within tolerance: " + ("yes" if ok else "NO"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
