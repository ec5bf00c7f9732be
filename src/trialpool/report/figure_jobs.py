"""Figures drawn after the report's text, in worker processes when there are many.

An imported review can have a hundred analyses, each with a forest plot: drawing and
saving them (PNG and SVG, mostly matplotlib's text rendering) is most of the report's
time. Each :class:`FigureJob` holds a module-level function that builds the Figure from
picklable inputs (e.g. a plan analysis and its pooled result), so that the jobs can run
in a pool of processes (``spawn``: no fork of a process that may hold threads). With
few jobs, one CPU, or where worker processes cannot be started (no semaphores in a
sandbox), they run here, one after the other; the files are the same either way.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from trialpool.report.embed import light_png
from trialpool.report.figures.style import save

#: fewer jobs than this are drawn in this process (starting workers costs about a second)
PARALLEL_MIN_JOBS = 12
MAX_WORKERS = 8


@dataclass(frozen=True)
class FigureJob:
    """One figure to draw: ``build(*args)`` saved as ``path``.png and .svg."""

    build: Callable[..., Figure]
    args: tuple[Any, ...]
    path: Path
    tight: bool = True
    cost: int = 1  # a rough size (rows drawn): the largest jobs start first


def draw(job: FigureJob) -> bytes:
    """Build and save one figure (runs in a worker process or here); return the lighter
    copy of its PNG that report.html embeds (:func:`..embed.light_png`)."""
    png, _svg = save(job.build(*job.args), job.path, formats=("png", "svg"), tight=job.tight)
    return light_png(png)


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def workers_for(n_jobs: int) -> int:
    """How many worker processes draw ``n_jobs`` figures (0: draw them here)."""
    if n_jobs < PARALLEL_MIN_JOBS:
        return 0
    n = min(_cpus(), MAX_WORKERS, n_jobs // 4)
    return n if n >= 2 else 0


def run_jobs(jobs: Sequence[FigureJob]) -> dict[Path, bytes]:
    """Draw every job: in worker processes when there are enough jobs and CPUs. Returns
    each figure's embedded PNG by its path (without suffix)."""
    ordered = sorted(jobs, key=lambda j: -j.cost)
    n = workers_for(len(ordered))
    if n:
        try:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=n, mp_context=context) as pool:
                return {
                    job.path: png for job, png in zip(ordered, pool.map(draw, ordered), strict=True)
                }
        except (BrokenProcessPool, NotImplementedError, OSError):
            pass  # workers cannot run here: draw the figures in this process
    return {job.path: draw(job) for job in ordered}
