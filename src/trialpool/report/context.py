"""What the sections share while one report is built: package, plan, folder, registries.

Sections save figures and export CSVs through the :class:`Context`, which records them
(for the marker file, the exports list and ``reproduce.R``) and keeps each analysis's
data status for the status table. Analyses of an imported review (RevMan's conventions)
share one :class:`~trialpool.analysis.revman.PackageIndex` (built on first use) and leave
their results and reproduction checks in ``revman_runs`` for the audit section.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from trialpool.analysis.plan import Analysis, AnalysisPlan, RevManAnalysis
from trialpool.analysis.reproduce import Check
from trialpool.analysis.revman import PackageIndex, ReviewPoolResult
from trialpool.analysis.runs import Result, StudyInfo
from trialpool.package.loader import Package
from trialpool.report.document import FigureNode, Status
from trialpool.report.embed import light_png
from trialpool.report.exports import ExportBlock, escalc_table, write_csv
from trialpool.report.figure_jobs import FigureJob, run_jobs
from trialpool.report.figures.style import save
from trialpool.stats.results import PoolResult


@dataclass
class RevManRun:
    """One analysis of an imported review as the report ran it: its result (None when it
    could not be pooled, with ``error`` saying why) and every stored number checked."""

    analysis: RevManAnalysis
    result: ReviewPoolResult | None
    checks: list[Check] = field(default_factory=list)
    error: str | None = None


@dataclass
class Context:
    """State shared while one report is built."""

    pkg: Package
    plan: AnalysisPlan
    plan_origin: str
    root: Path  # the temporary folder being filled
    studies: StudyInfo
    console: Console
    plan_from_data: bool = False  # the plan was built by auto_plan (no plan given)
    export_blocks: list[ExportBlock] = field(default_factory=list)
    exported: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    statuses: list[tuple[Analysis | RevManAnalysis, Status, str]] = field(default_factory=list)
    revman_runs: list[RevManRun] = field(default_factory=list)
    figure_jobs: list[FigureJob] = field(default_factory=list)
    #: the PNG report.html embeds for each figure, by its path (figures/NAME.png)
    embedded: dict[str, bytes] = field(default_factory=dict, repr=False)
    _index: PackageIndex | None = field(default=None, repr=False)

    @property
    def index(self) -> PackageIndex:
        """The package's rows indexed for RevMan analyses (built once per report)."""
        if self._index is None:
            self._index = PackageIndex.of(self.pkg)
        return self._index

    @property
    def revman_analyses(self) -> list[RevManAnalysis]:
        """The plan's analyses of an imported review (RevMan's conventions)."""
        return [a for a in self.plan.analyses if isinstance(a, RevManAnalysis)]

    @property
    def metafor_analyses(self) -> list[Analysis]:
        """The plan's analyses pooled with metafor's conventions."""
        return [a for a in self.plan.analyses if isinstance(a, Analysis)]

    def figure(
        self, key: str, fig: Any, caption: str, alt: str, *, tight: bool = True
    ) -> FigureNode:
        """Save a Figure as PNG and SVG under figures/ and return its node (``tight``:
        crop to the content; a figure laid out exactly is saved faster without)."""
        png, _svg = save(fig, self.root / "figures" / key, formats=("png", "svg"), tight=tight)
        self.figures.append(f"figures/{key}.png")
        self.embedded[f"figures/{key}.png"] = light_png(png)
        return FigureNode(
            rel_png=f"figures/{key}.png", rel_svg=f"figures/{key}.svg", caption=caption, alt=alt
        )

    def figure_later(
        self,
        key: str,
        build: Callable[..., Any],
        args: tuple[Any, ...],
        caption: str,
        alt: str,
        *,
        tight: bool = True,
        cost: int = 1,
    ) -> FigureNode:
        """Register a figure drawn after the report's text (:mod:`..figure_jobs`, in
        worker processes when there are many): ``build(*args)`` is a module-level
        function of picklable inputs returning the Figure. Returns its node."""
        self.figure_jobs.append(
            FigureJob(build, args, self.root / "figures" / key, tight=tight, cost=cost)
        )
        self.figures.append(f"figures/{key}.png")
        return FigureNode(
            rel_png=f"figures/{key}.png", rel_svg=f"figures/{key}.svg", caption=caption, alt=alt
        )

    def draw_figures(self) -> None:
        """Draw every figure registered with :meth:`figure_later`."""
        for path, png in run_jobs(self.figure_jobs).items():
            self.embedded[f"figures/{path.name}.png"] = png
        self.figure_jobs.clear()

    def export_result(self, key: str, title: str, result: Result) -> str | None:
        """Write the escalc-layout CSV of a block; register it for reproduce.R."""
        if not result.studies:
            return None
        name = f"escalc_{key}.csv"
        header, rows = escalc_table(result, labels=self.studies.labels)
        write_csv(self.root / "exports" / name, header, rows)
        self.exported.append(f"exports/{name}")
        if isinstance(result, PoolResult):
            self.export_blocks.append(
                ExportBlock(key=key, title=title, csv_name=name, result=result)
            )
        return f"exports/{name}"

    def write_table(self, name: str, header: list[str], rows: list[list[Any]]) -> None:
        """Write one of the report's tables as tables/<name>.csv."""
        write_csv(self.root / "tables" / f"{name}.csv", header, rows)
