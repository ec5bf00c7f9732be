"""What the sections share while one report is built: package, plan, folder, registries.

Sections save figures and export CSVs through the :class:`Context`, which records them
(for the marker file, the exports list and ``reproduce.R``) and keeps each analysis's
data status for the status table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from trialpool.analysis.plan import Analysis, AnalysisPlan
from trialpool.analysis.runs import Result, StudyInfo
from trialpool.package.loader import Package
from trialpool.report.document import FigureNode, Status
from trialpool.report.exports import ExportBlock, escalc_table, write_csv
from trialpool.report.figures.style import save
from trialpool.stats.results import PoolResult


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
    statuses: list[tuple[Analysis, Status, str]] = field(default_factory=list)

    def figure(self, key: str, fig: Any, caption: str, alt: str) -> FigureNode:
        """Save a Figure as PNG and SVG under figures/ and return its node."""
        save(fig, self.root / "figures" / key, formats=("png", "svg"))
        self.figures.append(f"figures/{key}.png")
        return FigureNode(
            rel_png=f"figures/{key}.png", rel_svg=f"figures/{key}.svg", caption=caption, alt=alt
        )

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
