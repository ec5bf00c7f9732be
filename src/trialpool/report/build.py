"""`trialpool report`: validate, run every analysis of a plan, write one report folder.

The folder holds::

    report.html          self-contained: figures embedded as base64 PNG, inline CSS,
                         no script, no external reference (a Content-Security-Policy
                         forbids any), opens without network
    report.md            the same content; figures referenced as figures/*.png
    figures/             every figure as PNG and SVG
    exports/             escalc-layout CSV per pooled block, robvis CSV per RoB tool,
                         reproduce.R (refits every pooled number with metafor)
    tables/              study characteristics, discrepancies, reproduction audit (CSV)
    .trialpool-report    marker: this folder was written by trialpool report

Safety of the output folder: the report is built in a temporary folder next to
``--out`` and moved into place only when complete, so a failed run leaves nothing
behind. ``--out`` may not be the package folder, a folder that contains it, or a folder
inside its ``data/``; an existing ``--out`` is replaced only when it holds the marker
file of a previous report (a user's folder is never deleted).

Everything the report prints from the data goes through ``html.escape`` (HTML) or
:func:`_md_text` (Markdown); links are written only for http(s) URLs and DOIs.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as _dt
import hashlib
import html
import json
import math
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

from trialpool import __version__
from trialpool.analysis import pooled as engine
from trialpool.analysis.plan import (
    ALL_DESIGNS,
    OUTCOMES,
    Analysis,
    AnalysisPlan,
    ExcludeDerived,
    ExcludeHighRob,
    Hksj,
    LeaveOneOutRule,
    LeaveOutHeterogeneous,
    OtherMethod,
    Outliers,
    SensitivityRule,
    auto_plan,
    describe_rule,
    load_plan,
    rule_id,
)
from trialpool.errors import TrialpoolError, ValidationFailedError
from trialpool.package.loader import Package, load_package
from trialpool.report.exports import (
    ROBVIS_TOOL,
    TOOL_DOMAINS,
    ExportBlock,
    escalc_table,
    render_reproduce_r,
    robvis_table,
    write_csv,
)
from trialpool.report.figures import forest, funnel, prisma, rob
from trialpool.report.figures.style import save
from trialpool.stats import small_study
from trialpool.stats.results import RATIO_MEASURES, NotPooled, PoolResult, SubgroupResult
from trialpool.validate import checks

MARKER_NAME = ".trialpool-report"
HTML_NAME = "report.html"
MD_NAME = "report.md"

Result = PoolResult | NotPooled


class ReportError(TrialpoolError):
    """The report cannot be written as asked (unsafe --out, existing folder, ...)."""


# =====================================================================================
# document model: one tree, two renderers (HTML and Markdown)


@dataclass(frozen=True)
class Link:
    """A text link (http(s) or an in-page #anchor)."""

    text: str
    url: str


@dataclass(frozen=True)
class Strong:
    """Bold text."""

    text: str


@dataclass(frozen=True)
class Code:
    """Monospace text (identifiers, file names)."""

    text: str


@dataclass(frozen=True)
class Muted:
    """Small grey text (source ids, notes)."""

    text: str


@dataclass(frozen=True)
class LineBreak:
    """A line break inside a paragraph or table cell."""


BR = LineBreak()

Inline = str | Link | Strong | Code | Muted | LineBreak
Inlines = Inline | Sequence[Inline]


@dataclass
class Heading:
    level: int
    text: str
    anchor: str


@dataclass
class Para:
    content: Inlines
    cls: str | None = None


@dataclass
class Bullets:
    items: list[Inlines]


@dataclass
class Table:
    header: list[str]
    rows: list[list[Inlines]]
    caption: str | None = None
    numeric: frozenset[int] = frozenset()


@dataclass
class FigureNode:
    png: Path  # absolute path of the PNG in the folder being built
    rel_png: str
    rel_svg: str | None
    caption: str
    alt: str


@dataclass
class Status:
    kind: Literal["pooled", "partial", "none", "error", "info"]
    headline: str
    lines: list[Inlines] = field(default_factory=list)


Node = Heading | Para | Bullets | Table | FigureNode | Status


def _inline_list(content: Inlines) -> list[Inline]:
    if isinstance(content, (str, Link, Strong, Code, Muted, LineBreak)):
        return [content]
    return list(content)


def _safe_url(url: str) -> str | None:
    """The URL if it is http(s) or an in-page anchor; None otherwise (never javascript:)."""
    url = url.strip()
    if re.match(r"^https?://[^\s<>\"']+$", url, flags=re.IGNORECASE):
        return url
    if re.match(r"^#[A-Za-z0-9_-]+$", url):
        return url
    return None


# --- HTML ----------------------------------------------------------------------------

_CSS = """
:root { --fg:#1d1d1f; --muted:#5a5a5a; --line:#d0d4d9; --accent:#1F4E79; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif; color: var(--fg);
  margin: 0; line-height: 1.45; font-size: 15px; background: #fff; }
header.top { background: #1F4E79; color: #fff; padding: 18px 32px; }
header.top h1 { margin: 0 0 4px 0; font-size: 24px; }
header.top p { margin: 2px 0; color: #e8eef5; font-size: 14px; }
main { max-width: 1180px; margin: 0 auto; padding: 8px 32px 48px 32px; }
nav.toc { background: #f4f6f8; border: 1px solid var(--line); padding: 10px 18px; margin: 18px 0;
  border-radius: 4px; font-size: 14px; }
nav.toc ol { margin: 4px 0; padding-left: 22px; }
h2 { border-bottom: 2px solid var(--accent); padding-bottom: 4px; margin-top: 40px; }
h3 { margin-top: 30px; color: var(--accent); }
h4 { margin-top: 20px; }
table { border-collapse: collapse; margin: 10px 0 18px 0; font-size: 13px; width: 100%; }
th, td { border: 1px solid var(--line); padding: 4px 7px; vertical-align: top; text-align: left; }
th { background: #eef2f6; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
caption { caption-side: top; text-align: left; font-weight: bold; padding: 4px 0; }
.muted { color: var(--muted); font-size: 12px; }
code { font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: 12.5px;
  background: #f2f2f2; padding: 0 3px; border-radius: 2px; }
figure { margin: 12px 0 22px 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 13px; color: var(--muted); margin-top: 4px; }
.status { border-left: 6px solid #999; background: #f7f7f7; padding: 8px 14px;
  margin: 10px 0 14px 0; }
.status .headline { font-weight: bold; font-size: 15px; }
.status ul { margin: 4px 0 0 0; padding-left: 20px; }
.status-pooled { border-color: #2e7d32; background: #eef7ee; }
.status-partial { border-color: #c79100; background: #fff8e1; }
.status-none { border-color: #8a8a8a; background: #f3f3f3; }
.status-error { border-color: #b71c1c; background: #fdecea; }
.status-info { border-color: #1F4E79; background: #eef3f9; }
p.note { font-size: 13.5px; color: #333; background: #fbfbf3; border: 1px solid #ecebd0;
  padding: 6px 10px; }
footer { color: var(--muted); font-size: 12px; border-top: 1px solid var(--line);
  margin-top: 40px; padding-top: 10px; }
"""


def _sentence(text: str) -> str:
    """Text ending with a full stop (captions)."""
    text = text.rstrip()
    return text if text.endswith((".", "!", "?")) else text + "."


def _html_inline(item: Inline) -> str:
    if isinstance(item, str):
        return html.escape(item)
    if isinstance(item, LineBreak):
        return "<br>"
    if isinstance(item, Strong):
        return f"<strong>{html.escape(item.text)}</strong>"
    if isinstance(item, Code):
        return f"<code>{html.escape(item.text)}</code>"
    if isinstance(item, Muted):
        return f'<span class="muted">{html.escape(item.text)}</span>'
    url = _safe_url(item.url)
    if url is None:
        return html.escape(item.text)
    return f'<a href="{html.escape(url, quote=True)}">{html.escape(item.text)}</a>'


def _html_inlines(content: Inlines) -> str:
    return "".join(_html_inline(i) for i in _inline_list(content))


def _html_node(node: Node) -> str:
    if isinstance(node, Heading):
        level = min(max(node.level, 2), 4)
        anchor = html.escape(node.anchor, quote=True)
        return f'<h{level} id="{anchor}">{html.escape(node.text)}</h{level}>'
    if isinstance(node, Para):
        cls = f' class="{html.escape(node.cls, quote=True)}"' if node.cls else ""
        return f"<p{cls}>{_html_inlines(node.content)}</p>"
    if isinstance(node, Bullets):
        items = "".join(f"<li>{_html_inlines(i)}</li>" for i in node.items)
        return f"<ul>{items}</ul>"
    if isinstance(node, Table):
        out = ["<table>"]
        if node.caption:
            out.append(f"<caption>{html.escape(node.caption)}</caption>")
        out.append("<thead><tr>")
        out.extend(f"<th>{html.escape(h)}</th>" for h in node.header)
        out.append("</tr></thead><tbody>")
        for row in node.rows:
            out.append("<tr>")
            for i, cell in enumerate(row):
                cls = ' class="num"' if i in node.numeric else ""
                out.append(f"<td{cls}>{_html_inlines(cell)}</td>")
            out.append("</tr>")
        out.append("</tbody></table>")
        return "".join(out)
    if isinstance(node, FigureNode):
        data = base64.b64encode(node.png.read_bytes()).decode("ascii")
        return (
            f'<figure><img src="data:image/png;base64,{data}" '
            f'alt="{html.escape(node.alt, quote=True)}">'
            f"<figcaption>{html.escape(_sentence(node.caption))}"
            f'<span class="muted"> Files: {html.escape(node.rel_png)}'
            f"{', ' + html.escape(node.rel_svg) if node.rel_svg else ''}</span>"
            f"</figcaption></figure>"
        )
    # Status
    lines = "".join(f"<li>{_html_inlines(line)}</li>" for line in node.lines)
    body = f"<ul>{lines}</ul>" if lines else ""
    return (
        f'<div class="status status-{node.kind}">'
        f'<div class="headline">{html.escape(node.headline)}</div>{body}</div>'
    )


def render_html(doc: Sequence[Node], *, title: str, subtitle: Sequence[str]) -> str:
    """The self-contained HTML text of a document (no script, no external reference)."""
    toc = [
        f'<li><a href="#{html.escape(n.anchor, quote=True)}">{html.escape(n.text)}</a></li>'
        for n in doc
        if isinstance(n, Heading) and n.level == 2
    ]
    body = "\n".join(_html_node(n) for n in doc)
    subs = "".join(f"<p>{html.escape(s)}</p>" for s in subtitle)
    csp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="trialpool {html.escape(__version__)}">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f'<header class="top"><h1>{html.escape(title)}</h1>{subs}</header>\n<main>\n'
        f'<nav class="toc"><strong>Contents</strong><ol>{"".join(toc)}</ol></nav>\n'
        f"{body}\n"
        f"<footer>Written by trialpool {html.escape(__version__)}. Self-contained: every "
        f"figure is embedded; the same figures are in figures/ as PNG and SVG.</footer>\n"
        "</main>\n</body>\n</html>\n"
    )


# --- Markdown ------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#])")


def _md_text(text: str) -> str:
    """Text safe in Markdown: HTML-escaped, Markdown specials escaped, one line."""
    text = re.sub(r"\s+", " ", str(text))
    return _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def _md_inline(item: Inline) -> str:
    if isinstance(item, str):
        return _md_text(item)
    if isinstance(item, LineBreak):
        return "<br>"
    if isinstance(item, (Strong, Muted)):
        # markers hug the text; surrounding spaces stay outside (CommonMark flanking rules)
        core = item.text.strip()
        lead = " " if item.text[:1].isspace() else ""
        trail = " " if item.text[-1:].isspace() else ""
        if not core:
            return lead or trail
        if isinstance(item, Strong):
            return f"{lead}**{_md_text(core)}**{trail}"
        return f"{lead}<sub>{_md_text(core)}</sub>{trail}"
    if isinstance(item, Code):
        return "`" + item.text.replace("`", "'") + "`" if item.text else ""
    url = _safe_url(item.url)
    if url is None:
        return _md_text(item.text)
    return f"[{_md_text(item.text)}](<{url.replace('>', '%3E')}>)"


def _md_inlines(content: Inlines) -> str:
    return "".join(_md_inline(i) for i in _inline_list(content))


def _md_node(node: Node) -> str:
    if isinstance(node, Heading):
        anchor = re.sub(r"[^A-Za-z0-9_-]", "", node.anchor)
        level = "#" * min(max(node.level, 2), 4)
        return f'<a id="{anchor}"></a>\n\n{level} {_md_text(node.text)}\n'
    if isinstance(node, Para):
        text = _md_inlines(node.content)
        return f"> {text}\n" if node.cls == "note" else f"{text}\n"
    if isinstance(node, Bullets):
        return "".join(f"- {_md_inlines(i)}\n" for i in node.items)
    if isinstance(node, Table):
        out = []
        if node.caption:
            out.append(f"**{_md_text(node.caption)}**\n")
        out.append("| " + " | ".join(_md_text(h) for h in node.header) + " |")
        out.append(
            "|"
            + "|".join("---:" if i in node.numeric else "---" for i in range(len(node.header)))
            + "|"
        )
        for row in node.rows:
            out.append("| " + " | ".join(_md_inlines(c) for c in row) + " |")
        return "\n".join(out) + "\n"
    if isinstance(node, FigureNode):
        svg = f" (SVG: [{node.rel_svg}]({node.rel_svg}))" if node.rel_svg else ""
        caption = _md_text(_sentence(node.caption))
        return f"![{_md_text(node.alt)}]({node.rel_png})\n\n*{caption}*{svg}\n"
    lines = "".join(f"> - {_md_inlines(line)}\n" for line in node.lines)
    return f"> **{_md_text(node.headline)}**\n{'>' + chr(10) if lines else ''}{lines}"


def render_markdown(doc: Sequence[Node], *, title: str, subtitle: Sequence[str]) -> str:
    """The Markdown text of a document (figures as relative PNG links)."""
    parts = [f"# {_md_text(title)}\n"]
    parts.extend(f"{_md_text(s)}  " for s in subtitle)
    parts.append("")
    for node in doc:
        parts.append(_md_node(node))
    return "\n".join(parts).rstrip() + "\n"


# =====================================================================================
# the output folder


def _is_within(path: Path, parent: Path) -> bool:
    return path == parent or path.is_relative_to(parent)


def check_out_path(out: Path, package_root: Path) -> Path:
    """Resolve ``--out`` and refuse unsafe targets (one-line ReportError).

    Refused: the package folder itself, a folder that contains the package, a path
    inside the package's ``data/``, an existing file, and an existing folder that is
    not a previous trialpool report (no marker file).
    """
    target = Path(os.path.abspath(out))
    resolved = target.resolve()
    root = package_root.resolve()
    data_dir = (root / "data").resolve()
    if resolved == root:
        raise ReportError(f"--out {out} is the package folder itself; choose another folder")
    if _is_within(root, resolved):
        raise ReportError(f"--out {out} contains the package; choose a folder inside or beside it")
    if _is_within(resolved, data_dir):
        raise ReportError(f"--out {out} is inside the package's data/ folder; choose another")
    if target.is_symlink():
        raise ReportError(f"--out {out} is a symbolic link; give the real folder")
    if target.exists():
        if not target.is_dir():
            raise ReportError(f"--out {out} exists and is not a folder; refusing to replace it")
        if not (target / MARKER_NAME).is_file():
            raise ReportError(
                f"--out {out} exists and is not a trialpool report (no {MARKER_NAME}); "
                "refusing to replace it"
            )
    return target


@contextlib.contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """Yield a temporary folder next to ``target``; move it into place on success.

    On any exception the temporary folder (and any parent folders created for it) is
    removed and ``target`` is left as it was. An existing ``target`` (a previous report)
    is replaced only after the new one is complete.
    """
    created: list[Path] = []
    parent = target.parent
    probe = parent
    while not probe.exists():
        created.append(probe)
        probe = probe.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=parent))
    try:
        yield tmp
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=parent))
            os.replace(target, old / "previous")
            try:
                os.replace(tmp, target)
            except OSError:
                os.replace(old / "previous", target)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in created:  # innermost first
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


# =====================================================================================
# formatting

_MINUS = "\u2212"


def _num(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    text = f"{value:.{digits}f}"
    if text.startswith("-"):
        text = text[1:] if float(text) == 0 else _MINUS + text[1:]
    return text


def _small(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    if value != 0 and abs(value) < 0.01:
        return f"{value:.2g}".replace("-", _MINUS)
    return _num(value, 2)


def _p(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    if value < 0.001:
        return "< 0.001"
    return f"{value:.3f}"


def _pct(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.0f}%"


def _tp(weeks: float | None) -> str:
    if weeks is None:
        return "any time point"
    return f"{weeks:g} weeks"


def _effect(result: PoolResult) -> str:
    return f"{_num(result.estimate)} [{_num(result.ci_lower)}, {_num(result.ci_upper)}]"


def _val(value: Any) -> str | None:
    """A cell value as text, or None when missing."""
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return text or None


def _weeks(value: Any) -> str | None:
    """Weeks as text: whole numbers bare, others with one decimal (208.714 -> 208.7)."""
    v = _f(value)
    if v is None:
        return None
    return f"{v:.0f}" if abs(v - round(v)) < 1e-9 else f"{v:.1f}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


# =====================================================================================
# package helpers


_STUDY_TABLES = frozenset(
    {"studies", "arms", "continuous_outcomes", "dichotomous_outcomes", "bias_judgements"}
)


def subset_package(pkg: Package, keep: set[str]) -> Package:
    """A view of the package holding only the studies in ``keep`` (for leave-out rules).

    Tables with a ``study_id`` column (studies, arms, outcomes, bias judgements) are
    filtered; the files on disk are not touched.
    """
    frames: dict[str, pd.DataFrame] = {}
    for name in pkg.resources:
        frame = pkg.table(name)
        if name in _STUDY_TABLES and "study_id" in frame.columns:
            frame = frame[frame["study_id"].astype("string").isin(keep).fillna(False)]
        frames[name] = frame
    return Package(
        root=pkg.root,
        descriptor_path=pkg.descriptor_path,
        descriptor=pkg.descriptor,
        resources=pkg.resources,
        _frames=frames,
    )


def _table(pkg: Package, name: str) -> pd.DataFrame | None:
    return pkg.table(name) if pkg.has(name) else None


def _outcome_kind(pkg: Package, outcome: str) -> Literal["continuous", "dichotomous"] | None:
    for name, kind in (
        ("continuous_outcomes", "continuous"),
        ("dichotomous_outcomes", "dichotomous"),
    ):
        if not pkg.has(name):
            continue
        try:
            enum = pkg.resources[name].field("outcome").get("constraints", {}).get("enum")
        except KeyError:
            enum = None
        frame = pkg.table(name)
        if (enum and outcome in enum) or (
            "outcome" in frame.columns and (frame["outcome"] == outcome).fillna(False).any()
        ):
            return kind  # type: ignore[return-value]
    info = OUTCOMES.get(outcome)
    return info.kind if info else None


def _outcome_rows(pkg: Package, outcome: str) -> pd.DataFrame:
    kind = _outcome_kind(pkg, outcome)
    name = "continuous_outcomes" if kind == "continuous" else "dichotomous_outcomes"
    frame = _table(pkg, name)
    if frame is None or "outcome" not in frame.columns:
        return pd.DataFrame(columns=["study_id", "arm_id", "outcome", "timepoint_weeks"])
    return frame[(frame["outcome"] == outcome).fillna(False)]


@dataclass
class StudyInfo:
    """What the report needs to know about each study."""

    labels: dict[str, str]
    designs: dict[str, str]
    order: list[str]

    def label(self, study_id: str) -> str:
        return self.labels.get(study_id, study_id)

    def names(self, ids: Sequence[str]) -> str:
        ordered = sorted(ids, key=lambda s: (self.order.index(s) if s in self.order else 10**6, s))
        return ", ".join(self.label(s) for s in ordered)

    def with_design(self, designs: Sequence[str] | None) -> list[str]:
        if designs is None:
            return list(self.order)
        return [s for s in self.order if self.designs.get(s) in set(designs)]


def _study_info(pkg: Package) -> StudyInfo:
    studies = _table(pkg, "studies")
    if studies is None or studies.empty:
        return StudyInfo({}, {}, [])
    frame = studies.copy()
    if "year" in frame.columns:
        frame = frame.sort_values(["year", "study_id"], kind="stable", na_position="last")
    labels = {str(r.study_id): str(r.label) for r in frame.itertuples() if _val(r.label)}
    designs = {str(r.study_id): str(r.design) for r in frame.itertuples()}
    return StudyInfo(labels, designs, [str(s) for s in frame["study_id"]])


# =====================================================================================
# the engine (analysis.py, small_study.py, plots/) behind one thin seam


@dataclass(frozen=True)
class Settings:
    """How one pooled block is computed."""

    measure: str
    method: str
    hksj: bool
    designs: tuple[str, ...] | None  # None: every design
    include_derived: bool
    convert_medians: bool
    exclude_high_rob: bool
    level: float

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed."""
        return dataclasses.replace(self, **changes)


def pool(pkg: Package, outcome: str, timepoint: float | None, s: Settings) -> Result:
    """One pooled block through ``analysis.pool_outcome`` (AnalysisError -> NotPooled)."""
    try:
        return engine.pool_outcome(
            pkg,
            outcome,
            timepoint,
            measure=s.measure,
            method=s.method,
            hksj=s.hksj,
            designs=s.designs,
            include_derived=s.include_derived,
            convert_medians=s.convert_medians,
            exclude_high_rob=s.exclude_high_rob,
            level=s.level,
        )
    except TrialpoolError as exc:
        return NotPooled(k=0, measure=s.measure, method=s.method, reason=str(exc))  # type: ignore[arg-type]


def usable_studies(pkg: Package, outcome: str, timepoint: float | None, s: Settings) -> set[str]:
    """Studies with a usable MSC-vs-control pair for the outcome (analysis.arm_pairs)."""
    try:
        pairs = engine.arm_pairs(
            pkg,
            outcome,
            timepoint,
            designs=s.designs,
            include_derived=s.include_derived,
            convert_medians=s.convert_medians,
        )
    except TrialpoolError:
        return set()
    if pairs is None or len(pairs) == 0 or "study_id" not in pairs.columns:
        return set()
    return {str(x) for x in pairs["study_id"].dropna()}


# =====================================================================================
# build context


@dataclass
class Context:
    """State shared while one report is built."""

    pkg: Package
    plan: AnalysisPlan
    plan_origin: str
    root: Path  # the temporary folder being filled
    studies: StudyInfo
    console: Console
    export_blocks: list[ExportBlock] = field(default_factory=list)
    exported: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    statuses: list[tuple[Analysis, Status, str]] = field(default_factory=list)

    def figure(self, key: str, fig: Any, caption: str, alt: str) -> FigureNode:
        """Save a Figure as PNG and SVG under figures/ and return its node."""
        base = self.root / "figures" / key
        save(fig, base, formats=("png", "svg"))
        self.figures.append(f"figures/{key}.png")
        return FigureNode(
            png=base.with_name(key + ".png"),
            rel_png=f"figures/{key}.png",
            rel_svg=f"figures/{key}.svg",
            caption=caption,
            alt=alt,
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


# =====================================================================================
# one analysis


@dataclass
class BlockRun:
    """One pooled block of an analysis (a time point, or the single block)."""

    label: str | None
    timepoint: float | None
    result: Result
    usable: set[str]


def _settings(plan: AnalysisPlan, analysis: Analysis) -> Settings:
    d = plan.defaults
    return Settings(
        measure=analysis.measure,
        method=plan.method_for(analysis),
        hksj=plan.hksj_for(analysis),
        designs=tuple(plan.designs_for(analysis)),
        include_derived=d.include_derived,
        convert_medians=d.convert_medians,
        exclude_high_rob=False,
        level=d.level,
    )


def _timepoints(ctx: Context, analysis: Analysis, s: Settings) -> list[float]:
    if analysis.subgroup_timepoints is not None:
        return list(analysis.subgroup_timepoints)
    rows = _outcome_rows(ctx.pkg, analysis.outcome)
    if rows.empty:
        return []
    wanted = set(ctx.studies.with_design(s.designs))
    rows = rows[rows["study_id"].astype("string").isin(wanted).fillna(False)]
    return sorted({float(t) for t in rows["timepoint_weeks"].dropna() if float(t) > 0})


def _lc(text: str) -> str:
    """Lower-case the first letter unless the word is an acronym ("Albumin", "MELD")."""
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        return text[0].lower() + text[1:]
    return text


def _need_text(analysis: Analysis, kind: str | None, timepoint: float | None) -> str:
    when = f"at {timepoint:g} weeks" if timepoint is not None else "(any time point)"
    label = _lc(analysis.outcome_label)
    if kind == "dichotomous":
        return f"per-arm counts of {label} {when}"
    return f"per-arm {label} {when} (mean and SD, or median with IQR or range)"


def _block_status(
    ctx: Context, analysis: Analysis, block: BlockRun, s: Settings
) -> tuple[str, str, list[Inlines], list[str]]:
    """(kind, headline, detail lines, studies lacking data) of one block."""
    info = ctx.studies
    kind = _outcome_kind(ctx.pkg, analysis.outcome)
    by_design = info.with_design(s.designs)
    left_out = engine.comparator_left_out(ctx.pkg)
    candidates = [sid for sid in by_design if sid not in left_out]
    missing = [sid for sid in candidates if sid not in block.usable]
    r = block.result
    prefix = f"{block.label}: " if block.label else ""
    lines: list[Inlines] = []
    if isinstance(r, PoolResult):
        status_kind, headline = "pooled", f"{prefix}pooled, k = {r.k}"
    else:
        status_kind = "partial" if r.studies else "none"
        headline = f"{prefix}{r.reason}"
    if missing:
        need = _need_text(analysis, kind, block.timepoint)
        lines.append(
            [
                Strong("Needs "),
                f"{need} from {info.names(missing)}",
                Muted(f" ({len(missing)} of {len(candidates)} studies of the design(s) analysed)"),
            ]
        )
        other_tp = _other_timepoints(ctx, analysis.outcome, missing, block.timepoint)
        if other_tp:
            lines.append(f"Data at other time points: {other_tp}.")
    elif not by_design:
        lines.append(f"No study in the package has design {_designs_text(s.designs)}.")
    comparator_line = _comparator_line(info, by_design, left_out)
    if comparator_line:
        lines.append(comparator_line)
    excluded = _excluded_by_design(ctx, analysis.outcome, block.timepoint, s.designs)
    if excluded:
        lines.append(
            f"Left out by the design restriction ({_designs_text(s.designs)} only), although they "
            f"have data: {excluded}; see the all-designs variant."
        )
    derived = [st for st in r.studies if st.derived]
    if derived:
        lines.append(
            [
                Strong("Derived values "),
                "(computed by the maintainers, not printed in a source) are used for "
                f"{info.names([st.study_id for st in derived])}; marked † in tables and plots.",
            ]
        )
    for note in getattr(r, "notes", []) or []:
        lines.append(Muted(note))
    return status_kind, headline, lines, missing


def _other_timepoints(ctx: Context, outcome: str, studies: list[str], tp: float | None) -> str:
    if tp is None:
        return ""
    rows = _outcome_rows(ctx.pkg, outcome)
    parts: list[str] = []
    for sid in studies:
        times = sorted(
            {
                float(t)
                for t in rows.loc[
                    (rows["study_id"] == sid).fillna(False), "timepoint_weeks"
                ].dropna()
                if float(t) != tp
            }
        )
        if times:
            parts.append(f"{ctx.studies.label(sid)} ({', '.join(f'{t:g}' for t in times)} weeks)")
    return "; ".join(parts)


def _comparator_line(info: StudyInfo, studies: Sequence[str], left_out: dict[str, str]) -> str:
    """Which of ``studies`` the default comparator restriction leaves out, and why."""
    named = ", ".join(
        f"{info.label(sid)} (control: {engine.comparator_text(left_out[sid])})"
        for sid in studies
        if sid in left_out
    )
    if not named:
        return ""
    words = [engine.comparator_text(k) for k in engine.DEFAULT_COMPARATORS]
    allowed = ", ".join(words[:-1]) + f" or {words[-1]}" if len(words) > 1 else "".join(words)
    return f"Left out by the comparator restriction (controls that are {allowed} only): {named}."


def _designs_text(designs: Sequence[str] | None) -> str:
    if designs is None:
        return "all designs"
    return ", ".join(d.replace("_", " ") for d in designs)


def _excluded_by_design(
    ctx: Context, outcome: str, tp: float | None, designs: Sequence[str] | None
) -> str:
    rows = _outcome_rows(ctx.pkg, outcome)
    if rows.empty or designs is None:
        return ""
    if tp is not None:
        rows = rows[(rows["timepoint_weeks"] == tp).fillna(False)]
    ids = sorted({str(s) for s in rows["study_id"].dropna()})
    out = [
        f"{ctx.studies.label(s)} ({ctx.studies.designs.get(s, '?').replace('_', ' ')})"
        for s in ids
        if ctx.studies.designs.get(s) not in set(designs)
    ]
    return ", ".join(out)


def _result_table(blocks: Sequence[tuple[str, Result]], measure: str) -> Table:
    ratio = measure in RATIO_MEASURES
    header = [
        "Block",
        "k",
        f"{measure} [95% CI]" if not ratio else f"{measure} [95% CI] (ratio scale)",
        "P",
        "τ²",
        "I²",
        "Q (df; P)",
        "95% prediction interval",
        "Model",
    ]
    rows: list[list[Inlines]] = []
    for label, r in blocks:
        if isinstance(r, PoolResult):
            lvl = f"{r.level:g}%"
            header[2] = header[2].replace("95%", lvl)
            q = "–" if r.q is None else f"{_num(r.q)} ({r.q_df}; {_p(r.q_p)})"
            pi = (
                "–"
                if r.pi_lower is None or r.pi_upper is None
                else f"[{_num(r.pi_lower)}, {_num(r.pi_upper)}]"
            )
            model = r.method + (" + HKSJ" if r.hksj else "")
            rows.append(
                [
                    label,
                    str(r.k),
                    _effect(r),
                    _p(r.p_value),
                    _small(r.tau2),
                    _pct(r.i2),
                    q,
                    pi,
                    model,
                ]
            )
        else:
            rows.append([label, str(r.k), Muted(f"not pooled: {r.reason}"), "", "", "", "", "", ""])
    return Table(header=header, rows=rows, numeric=frozenset({1, 3, 4, 5}))


def _study_table(
    result: Result, info: StudyInfo, caption: str, arms: tuple[str, str] = ("MSC", "Control")
) -> Table:
    binary = result.measure in {"RR", "OR", "RD"}
    if binary:
        header = ["Study", f"{arms[0]} events/total", f"{arms[1]} events/total"]
    else:
        header = ["Study", f"{arms[0]} mean (SD), n", f"{arms[1]} mean (SD), n"]
    ratio = result.measure in RATIO_MEASURES
    header += ["yi" + (" (log)" if ratio else ""), "vi", "Weight", "Flags"]
    rows: list[list[Inlines]] = []
    for st in result.studies:
        a = st.arm_data

        def g(key: str, data: dict[str, Any] = a) -> str:
            v = data.get(key)
            if v is None:
                return "?"
            return str(int(v)) if float(v).is_integer() else f"{float(v):.4g}"

        if binary:
            arm1, arm2 = f"{g('e1')}/{g('t1')}", f"{g('e2')}/{g('t2')}"
        else:
            arm1 = f"{g('m1')} ({g('sd1')}), {g('n1')}"
            arm2 = f"{g('m2')} ({g('sd2')}), {g('n2')}"
        flags = []
        if st.derived:
            flags.append("† derived")
        if st.zero_cell_corrected:
            flags.append("‡ 0.5 added (zero cell)")
        weight = f"{st.weight:.1f}%" if isinstance(result, PoolResult) else "–"
        rows.append(
            [
                st.label or info.label(st.study_id),
                arm1,
                arm2,
                _num(st.yi, 3),
                _num(st.vi, 4),
                weight,
                "; ".join(flags),
            ]
        )
    return Table(header=header, rows=rows, caption=caption, numeric=frozenset({3, 4, 5}))


@dataclass
class VariantRun:
    """One sensitivity variant of one block."""

    key: str  # safe in file names
    title: str
    rule_text: str
    result: Result | None
    left_out: list[str]
    note: str


def _studentized(main: PoolResult, loo: dict[str, Result]) -> dict[str, float]:
    """Externally studentized residuals (metafor ``rstudent.rma.uni``) from LOO fits."""
    out: dict[str, float] = {}
    ratio = main.measure in RATIO_MEASURES
    for st in main.studies:
        fit = loo.get(st.study_id)
        if not isinstance(fit, PoolResult):
            continue
        mu = math.log(fit.estimate) if ratio else fit.estimate
        denom = st.vi + fit.tau2 + fit.se**2
        if denom > 0:
            out[st.study_id] = (st.yi - mu) / math.sqrt(denom)
    return out


def _leave_one_out(
    ctx: Context, pkg: Package, analysis: Analysis, tp: float | None, s: Settings, main: PoolResult
) -> dict[str, Result]:
    ids = [st.study_id for st in main.studies]
    return {
        sid: pool(subset_package(pkg, set(ids) - {sid}), analysis.outcome, tp, s) for sid in ids
    }


def _run_variants(
    ctx: Context, analysis: Analysis, block: BlockRun, s: Settings
) -> tuple[list[VariantRun], dict[str, Result] | None]:
    """Every sensitivity rule of the analysis, applied to one block."""
    pkg, tp, main = ctx.pkg, block.timepoint, block.result
    info = ctx.studies
    runs: list[VariantRun] = []
    loo: dict[str, Result] | None = None
    rules: list[SensitivityRule] = list(analysis.sensitivity)

    def need_loo() -> dict[str, Result]:
        nonlocal loo
        if loo is None and isinstance(main, PoolResult):
            loo = _leave_one_out(ctx, pkg, analysis, tp, s, main)
        return loo or {}

    for rule in rules:
        text = describe_rule(rule)
        key = _slug(rule_id(rule))
        if isinstance(rule, LeaveOneOutRule):
            if isinstance(main, PoolResult) and main.k >= 3:
                need_loo()
            continue
        simple: dict[type, tuple[str, Settings]] = {
            Hksj: ("HKSJ", s.replace(hksj=True)),
            ExcludeDerived: ("No derived values", s.replace(include_derived=False)),
            ExcludeHighRob: ("Excluding high risk of bias", s.replace(exclude_high_rob=True)),
        }
        if isinstance(rule, OtherMethod):
            simple[OtherMethod] = (f"Estimator {rule.method}", s.replace(method=rule.method))
        if type(rule) in simple:
            title, changed = simple[type(rule)]
            res = pool(pkg, analysis.outcome, tp, changed)
            runs.append(VariantRun(key, title, text, res, [], ""))
            continue
        # leave-out rules need a pooled main analysis with k >= 3
        if isinstance(rule, LeaveOutHeterogeneous):
            title = f"Leave out heterogeneous studies (I² rule, {rule.i2_threshold:g}%)"
        else:
            assert isinstance(rule, Outliers)
            title = f"Leave out outliers (|studentized residual| > {rule.z:g})"
        if not isinstance(main, PoolResult) or main.k < 3:
            k = main.k if isinstance(main, PoolResult) else len(block.usable)
            note = f"not applicable: k = {k} (needs k ≥ 3)"
            runs.append(VariantRun(key, title, text, None, [], note))
            continue
        fits = need_loo()
        if isinstance(rule, LeaveOutHeterogeneous):
            if main.i2 is None or main.i2 < rule.i2_threshold:
                note = (
                    f"I² = {_pct(main.i2)} < {rule.i2_threshold:g}%: nothing left out "
                    "(same as the main analysis)"
                )
                runs.append(VariantRun(key, title, text, None, [], note))
                continue
            drop = [
                sid
                for sid, fit in fits.items()
                if isinstance(fit, PoolResult) and fit.i2 is not None and fit.i2 < rule.i2_threshold
            ]
        else:
            resid = _studentized(main, fits)
            drop = [sid for sid, r in resid.items() if abs(r) > rule.z]
        if not drop:
            note = "no study meets the rule: nothing left out"
            runs.append(VariantRun(key, title, text, None, [], note))
            continue
        keep = {st.study_id for st in main.studies} - set(drop)
        res = pool(subset_package(pkg, keep), analysis.outcome, tp, s)
        runs.append(VariantRun(key, title, text, res, drop, f"left out: {info.names(drop)}"))
    restricted = s.designs is not None and set(s.designs) != set(ALL_DESIGNS)
    if ctx.plan.all_designs_for(analysis) and restricted:
        res = pool(pkg, analysis.outcome, tp, s.replace(designs=None))
        main_ids = {st.study_id for st in main.studies}
        added = [st.study_id for st in res.studies if st.study_id not in main_ids]
        note = f"adds {info.names(added)}" if added else "no study of another design has data"
        text = "include every design (not only " + _designs_text(s.designs) + ")"
        runs.append(VariantRun("all-designs", "All designs", text, res, [], note))
    return runs, loo


def _variant_table(main: Result, runs: list[VariantRun]) -> Table:
    header = ["Variant", "Rule", "k", "Estimate [CI]", "I²", "Studies / note"]
    rows: list[list[Inlines]] = []
    if isinstance(main, PoolResult):
        rows.append(
            [
                Strong("Main analysis"),
                main.method + (" + HKSJ" if main.hksj else ""),
                str(main.k),
                _effect(main),
                _pct(main.i2),
                "",
            ]
        )
    for v in runs:
        r = v.result
        if isinstance(r, PoolResult):
            rows.append([v.title, v.rule_text, str(r.k), _effect(r), _pct(r.i2), v.note])
        elif isinstance(r, NotPooled):
            rows.append(
                [v.title, v.rule_text, str(r.k), Muted(f"not pooled: {r.reason}"), "", v.note]
            )
        else:
            rows.append([v.title, v.rule_text, "", Muted(v.note), "", ""])
    return Table(header=header, rows=rows, numeric=frozenset({2}))


def _loo_table(main: PoolResult, loo: dict[str, Result], info: StudyInfo) -> Table:
    resid = _studentized(main, loo)
    rows: list[list[Inlines]] = []
    for sid, r in loo.items():
        if isinstance(r, PoolResult):
            rows.append(
                [info.label(sid), _effect(r), _small(r.tau2), _pct(r.i2), _num(resid.get(sid))]
            )
        else:
            rows.append([info.label(sid), Muted(r.reason), "", "", ""])
    return Table(
        header=["Study left out", "Estimate [CI]", "τ²", "I²", "Studentized residual"],
        rows=rows,
        caption="Leave-one-out (each study left out in turn)",
        numeric=frozenset({2, 3, 4}),
    )


def _forest(
    ctx: Context,
    key: str,
    analysis: Analysis,
    blocks: list[tuple[str | None, Result]],
    title: str,
    caption: str,
    subgroups: SubgroupResult | None = None,
) -> Node:
    """A forest plot figure node, or a paragraph saying why none is drawn."""
    if not any(r.studies for _, r in blocks):
        return Para(
            f"Forest plot not drawn: no study has usable data for {_lc(title)}.", cls="note"
        )
    fig = forest.forest_plot(
        blocks,
        measure=analysis.measure,
        outcome_label=analysis.outcome_label,
        unit=analysis.unit,
        lower_is_better=analysis.lower_is_better,
        favours=analysis.favours,
        title=title,
        subgroup_test=subgroups,
    )
    return ctx.figure(key, fig, caption, alt=f"Forest plot: {title}")


def _funnel(ctx: Context, key: str, analysis: Analysis, label: str | None, r: Result) -> list[Node]:
    """Funnel plot and Egger's test when k is large enough; otherwise a plain note."""
    min_k = ctx.plan.defaults.funnel_min_k
    k = r.k if isinstance(r, PoolResult) else len(r.studies)
    where = f" ({label})" if label else ""
    if not isinstance(r, PoolResult) or r.k < min_k:
        return [
            Para(
                f"k = {k}{where}: funnel plot and Egger's test not shown (need k ≥ {min_k}).",
                cls="note",
            )
        ]
    egger: dict[str, float | int | None] | None = None
    try:
        eg = small_study.regtest(
            [st.yi for st in r.studies],
            [st.vi for st in r.studies],
            method="FE" if r.method in ("FE", "MH") else r.method,
            hksj=r.hksj,
            level=r.level,
        )
        stat = "t" if eg.df is not None else "z"
        egger = {stat: eg.zval, "p": eg.pval, "intercept": eg.estimate, "slope": eg.slope}
        df = f" (df = {eg.df})" if eg.df is not None else ""
        egger_text = (
            f"Egger's regression test (metafor regtest: {r.method if r.method != 'MH' else 'FE'} "
            f"meta-regression on the standard error): {stat} = {_num(eg.zval)}{df}, "
            f"P = {_p(eg.pval)}; limit estimate as SE → 0: {_num(eg.estimate)} "
            f"[{_num(eg.ci_lower)}, {_num(eg.ci_upper)}]"
            + (" (log scale)." if r.measure in RATIO_MEASURES else ".")
        )
    except TrialpoolError as exc:
        egger_text = f"Egger's test not computed: {exc}"
    fig = funnel.funnel_from_result(
        r, labels=False, egger=egger, title=f"Funnel plot: {analysis.title}{where}"
    )
    return [
        ctx.figure(
            f"funnel_{key}",
            fig,
            f"Funnel plot{where}, k = {r.k}.",
            alt=f"Funnel plot: {analysis.title}{where}",
        ),
        Para(egger_text),
    ]


def _variant_nodes(
    ctx: Context,
    analysis: Analysis,
    b: BlockRun,
    tag: str,
    runs: list[VariantRun],
    loo: dict[str, Result] | None,
) -> list[Node]:
    """The sensitivity table, forest plots of changed study sets, and leave-one-out."""
    if not runs and not loo:
        return []
    where = f" — {b.label}" if b.label else ""
    nodes: list[Node] = [
        Heading(4, f"Sensitivity analyses{where}", f"sens-{analysis.id}-{_slug(b.label or 'all')}")
    ]
    has_data = bool(b.result.studies) or any(
        v.result is not None and v.result.studies for v in runs
    )
    if not has_data:
        names = ", ".join(v.title for v in runs)
        nodes.append(Para(f"Not run: no study of any design has data ({names}).", cls="note"))
        return nodes
    nodes.append(_variant_table(b.result, runs))
    main_ids = {st.study_id for st in b.result.studies}
    for v in runs:
        if v.result is None:
            continue
        ids = {st.study_id for st in v.result.studies}
        if isinstance(v.result, PoolResult) or ids - main_ids:
            ctx.export_result(f"{tag}__{v.key}", f"{analysis.title}{where} — {v.title}", v.result)
        if (v.left_out or ids - main_ids) and v.result.studies:
            nodes.append(
                _forest(
                    ctx,
                    f"forest_{tag}__{v.key}",
                    analysis,
                    [(None, v.result)],
                    f"{analysis.title}{where}: {_lc(v.title)}",
                    f"{analysis.title}{where}, sensitivity analysis: {v.rule_text} ({v.note}).",
                )
            )
    if loo and isinstance(b.result, PoolResult):
        nodes.append(_loo_table(b.result, loo, ctx.studies))
    return nodes


def run_analysis(ctx: Context, analysis: Analysis) -> list[Node]:
    """Pool one analysis with its variants; return its section of the report."""
    s = _settings(ctx.plan, analysis)
    info = ctx.studies
    nodes: list[Node] = [Heading(3, analysis.title, f"analysis-{analysis.id}")]
    meta: list[Inlines] = [
        [
            Strong("Outcome: "),
            Code(analysis.outcome),
            f" ({analysis.outcome_label}" + (f", {analysis.unit}" if analysis.unit else "") + ")",
        ],
        [
            Strong("Measure and model: "),
            f"{analysis.measure}; {s.method}"
            + (" with HKSJ" if s.hksj else " (Wald-type z CI)")
            + f"; {s.level:g}% CI",
        ],
        [
            Strong("Designs: "),
            _designs_text(s.designs)
            + ("; derived rows included" if s.include_derived else "; derived rows excluded"),
        ],
    ]
    if analysis.reproduces:
        meta.append([Strong("Reproduces: "), analysis.reproduces])
    if analysis.notes:
        meta.append([Strong("Note: "), analysis.notes])

    # main blocks
    blocks: list[BlockRun] = []
    subgroups: SubgroupResult | None = None
    if analysis.subgroup_by == "timepoint":
        tps = _timepoints(ctx, analysis, s)
        for tp in tps:
            blocks.append(
                BlockRun(
                    f"{tp:g} weeks",
                    tp,
                    pool(ctx.pkg, analysis.outcome, tp, s),
                    usable_studies(ctx.pkg, analysis.outcome, tp, s),
                )
            )
    elif analysis.subgroup_by is not None:
        more, subgroups = _other_subgroups(ctx, analysis, s)
        blocks.extend(more)
    else:
        tp = analysis.timepoint_weeks
        blocks.append(
            BlockRun(
                None,
                tp,
                pool(ctx.pkg, analysis.outcome, tp, s),
                usable_studies(ctx.pkg, analysis.outcome, tp, s),
            )
        )

    # status panel
    if not blocks:
        kind = _outcome_kind(ctx.pkg, analysis.outcome)
        left_out = engine.comparator_left_out(ctx.pkg)
        by_design = info.with_design(s.designs)
        cands = [sid for sid in by_design if sid not in left_out]
        needs = info.names(cands)
        detail: list[Inlines] = []
        if cands:
            detail.append(
                [Strong("Needs "), f"{_need_text(analysis, kind, None)} from {info.names(cands)}"]
            )
        elif not by_design:
            detail.append(f"No study in the package has design {_designs_text(s.designs)}.")
        line = _comparator_line(info, by_design, left_out)
        if line:
            detail.append(line)
        status = Status("none", "no extractable data yet", detail)
    else:
        kinds, heads, lines, lacking = [], [], [], []
        for b in blocks:
            k_, h_, l_, m_ = _block_status(ctx, analysis, b, s)
            kinds.append(k_)
            heads.append(h_)
            lines.extend(l_)
            lacking.append((b.label, m_))
        kind = "pooled" if "pooled" in kinds else ("partial" if "partial" in kinds else "none")
        status = Status(kind, "; ".join(heads), lines)  # type: ignore[arg-type]
        if len({tuple(m) for _, m in lacking}) == 1:
            needs = info.names(lacking[0][1])
        else:
            needs = "; ".join(f"{lab}: {info.names(m) or 'none'}" for lab, m in lacking)
    ctx.statuses.append((analysis, status, needs))
    nodes.append(status)
    nodes.append(Bullets(meta))
    if not blocks:
        nodes.append(Para("Forest plot not drawn: no data for this outcome.", cls="note"))
        return nodes

    # results, forest, per-study data
    labelled = [(b.label or "All studies", b.result) for b in blocks]
    if any(isinstance(b.result, PoolResult) for b in blocks):
        nodes.append(_result_table(labelled, analysis.measure))
    forest_blocks: list[tuple[str | None, Result]] = [(b.label, b.result) for b in blocks]
    caption = f"{analysis.title}: {analysis.measure}, {s.method}" + (" + HKSJ" if s.hksj else "")
    if analysis.subgroup_by == "timepoint" and len(blocks) > 1:
        caption += (
            ". Time points are separate pools of largely the same patients: no total and no "
            "test for subgroup differences."
        )
    nodes.append(
        _forest(
            ctx,
            f"forest_{analysis.id}",
            analysis,
            forest_blocks,
            analysis.title,
            caption,
            subgroups=subgroups,
        )
    )
    if subgroups is not None:
        test = forest.subgroup_test_text(subgroups)
        nodes.append(
            Para(
                (test + ".")
                if test
                else "Test for subgroup differences not available (fewer than two subgroups "
                "with an estimate, or a study in two subgroups)."
            )
        )
    for b in blocks:
        if b.label is None:
            tag = analysis.id
        elif analysis.subgroup_by == "timepoint" and b.timepoint is not None:
            tag = f"{analysis.id}_{b.timepoint:g}w".replace(".", "p")
        else:
            tag = f"{analysis.id}_{_slug(b.label)}"
        path = ctx.export_result(
            tag, f"{analysis.title}" + (f" — {b.label}" if b.label else ""), b.result
        )
        if b.result.studies:
            cap = "Per-study data" + (f" — {b.label}" if b.label else "")
            if path:
                cap += f" (exported: {path})"
            arm_names = (
                analysis.favours[0],
                analysis.favours[1][:1].upper() + analysis.favours[1][1:],
            )
            nodes.append(_study_table(b.result, info, cap, arm_names))

        # variants
        runs, loo = _run_variants(ctx, analysis, b, s)
        nodes.extend(_variant_nodes(ctx, analysis, b, tag, runs, loo))
        nodes.extend(_funnel(ctx, tag, analysis, b.label, b.result))
    return nodes


def _other_subgroups(
    ctx: Context, spec: Analysis, s: Settings
) -> tuple[list[BlockRun], SubgroupResult | None]:
    """Subgroups by a study characteristic, through ``analysis.pool_subgroups``."""
    try:
        sub = engine.pool_subgroups(
            ctx.pkg,
            spec.outcome,
            by=str(spec.subgroup_by),
            timepoint=spec.timepoint_weeks,
            measure=s.measure,
            method=s.method,
            hksj=s.hksj,
            designs=s.designs,
            include_derived=s.include_derived,
            convert_medians=s.convert_medians,
            level=s.level,
        )
    except TrialpoolError as exc:
        failed = NotPooled(k=0, measure=s.measure, method=s.method, reason=str(exc))  # type: ignore[arg-type]
        return [BlockRun(None, spec.timepoint_weeks, failed, set())], None
    blocks = [
        BlockRun(str(name), spec.timepoint_weeks, res, {st.study_id for st in res.studies})
        for name, res in sub.groups.items()
    ]
    return blocks, sub


# =====================================================================================
# fixed sections


def _section_header(ctx: Context, validation: Any) -> list[Node]:
    pkg = ctx.pkg
    d = pkg.descriptor
    nodes: list[Node] = [Heading(2, "Package and validation", "package")]
    facts: list[Inlines] = [
        [Strong("Package: "), f"{pkg.name} {pkg.version or '(no version)'}"],
        [Strong("Title: "), str(d.get("title", ""))],
        [Strong("trialpool: "), __version__],
        [Strong("Analysis plan: "), ctx.plan_origin],
        [Strong("Generated: "), _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")],
    ]
    if d.get("description"):
        facts.append([Strong("Description: "), str(d["description"])])
    nodes.append(Bullets(facts))
    summary = getattr(validation, "summary", {}) or {}
    lines: list[Inlines] = []
    for key, value in summary.items():
        if key in {"package", "version", "issues", "open_conflicts"}:
            continue
        lines.append([Strong(f"{key.replace('_', ' ')}: "), _summary_value(value)])
    nodes.append(
        Status(
            "pooled" if getattr(validation, "valid", False) else "error",
            "Validation: VALID (Table Schema and cross-table rules)"
            if getattr(validation, "valid", False)
            else "Validation: INVALID",
            lines,
        )
    )
    return nodes


def _summary_value(value: Any) -> str:
    if isinstance(value, dict):
        parts = []
        for k, v in value.items():
            if isinstance(v, dict):
                inner = ", ".join(f"{ik} {iv}" for ik, iv in v.items() if iv)
                if inner:
                    parts.append(f"{k.replace('_', ' ')}: {inner}")
            elif v not in (None, 0, "") or k == "total":
                parts.append(f"{k.replace('_', ' ')} {v}")
        return "; ".join(parts)
    return str(value)


def _section_status(ctx: Context) -> list[Node]:
    nodes: list[Node] = [
        Heading(2, "Data status per analysis", "status"),
        Para(
            "What the package allows for each analysis of the plan. An analysis without "
            "enough data is listed with what it needs; none is dropped."
        ),
    ]
    rows: list[list[Inlines]] = []
    for analysis, status, needs in ctx.statuses:
        rows.append(
            [
                Link(analysis.title, f"#analysis-{analysis.id}"),
                {"pooled": "pooled", "partial": "not pooled", "none": "no data"}.get(
                    status.kind, status.kind
                ),
                status.headline,
                needs or "–",
            ]
        )
    nodes.append(
        Table(header=["Analysis", "Status", "Detail", "Still needs per-arm data from"], rows=rows)
    )
    return nodes


def _section_methods(ctx: Context) -> list[Node]:
    plan = ctx.plan
    d = plan.defaults
    rules: dict[str, str] = {}
    for a in plan.analyses:
        for r in a.sensitivity:
            rules[rule_id(r)] = describe_rule(r)
    methods = sorted({plan.method_for(a) for a in plan.analyses})
    measures = sorted({a.measure for a in plan.analyses})
    items: list[Inlines] = [
        [
            Strong("Model: "),
            f"{', '.join(methods)} (main analyses). Random-effects models pool "
            "inverse-variance weighted effects with τ² from the named estimator (REML: restricted "
            "maximum likelihood; DL: DerSimonian-Laird; PM: Paule-Mandel; ML: maximum likelihood); "
            "FE is the fixed-effect inverse-variance model, MH Mantel-Haenszel. Conventions follow "
            "R's metafor (rma, rma.mh, predict).",
        ],
        [
            Strong("Confidence intervals: "),
            f"{d.level:g}%; "
            + (
                "Hartung-Knapp-Sidik-Jonkman (t on k − 1 df) by default."
                if d.hksj
                else "Wald-type (z) by default, as metafor's rma and RevMan print; "
                "Hartung-Knapp-Sidik-Jonkman (t on k − 1 df) where the plan lists it as a "
                "sensitivity analysis. The review's own choice is not known."
            ),
        ],
        [
            Strong("Heterogeneity: "),
            "Cochran's Q; I² and H² from the model's τ²; 95% "
            "prediction interval as metafor's predict (t on k − 1 df with HKSJ).",
        ],
        [
            Strong("Effect measures: "),
            f"{', '.join(measures)}. MD: raw mean difference "
            "(MSC minus control); SMD: Hedges' g with the exact small-sample correction; RR/OR on "
            "the log scale, shown as ratios.",
        ],
        [
            Strong("Conversions: "),
            (
                "medians with IQR or range converted to means and SDs "
                "(mean: Luo et al. 2018; SD: Wan et al. 2014), SE to SD "
                "(Cochrane Handbook 6.5.2.2); "
                "every converted value is marked derived. "
                if d.convert_medians
                else "no median-to-mean conversion: studies reporting medians are not pooled. "
            )
            + "Units are those recorded per row; conversions between units are recorded in "
            "the package, not made by the report.",
        ],
        [
            Strong("Zero cells: "),
            "0.5 added to all four cells of a study with a zero cell "
            '(metafor escalc default add = 1/2, to = "only0"); Mantel-Haenszel pools raw counts.',
        ],
        [
            Strong("Designs: "),
            f"main analyses restricted to {', '.join(d.designs)}"
            + (
                "; every analysis is repeated with all designs as a sensitivity variant."
                if d.all_designs_variant
                else "."
            ),
        ],
        [
            Strong("Derived rows: "),
            "included and marked † (verification = derived: computed "
            "by the maintainers, e.g. counts from percentages)"
            if d.include_derived
            else "excluded",
        ],
        [
            Strong("Small-study effects: "),
            f"funnel plot and Egger's regression test only "
            f"for k ≥ {d.funnel_min_k} (Cochrane Handbook 13.3.5.4).",
        ],
        [
            Strong("Time points: "),
            "time-point subgroups are separate pools; the same patients "
            "contribute to several time points, so no total across time points and no test for "
            "subgroup differences is computed.",
        ],
    ]
    if rules:
        items.append(
            [
                Strong("Sensitivity rules (stated, not chosen by hand): "),
                "; ".join(f"{k}: {v}" for k, v in rules.items()),
            ]
        )
    nodes: list[Node] = [Heading(2, "Methods", "methods")]
    if plan.description:
        nodes.append(Para([Strong(f"Plan: {plan.title}. "), plan.description]))
    nodes.append(Bullets(items))
    return nodes


def _section_caveats(ctx: Context) -> list[Node]:
    pkg = ctx.pkg
    info = ctx.studies
    items: list[Inlines] = []
    for name in ("continuous_outcomes", "dichotomous_outcomes"):
        frame = _table(pkg, name)
        label = name.replace("_", " ")
        if frame is None:
            continue
        if frame.empty:
            items.append(f"No {label} rows in the package.")
            continue
        ver = (
            frame["verification"].value_counts().to_dict()
            if "verification" in frame.columns
            else {}
        )
        parts = ", ".join(f"{v} {k}" for k, v in ver.items())
        items.append(
            f"{len(frame)} {label} row(s): {parts}. Derived rows are marked † wherever used."
        )
        der = (
            frame[(frame.get("verification") == "derived").fillna(False)]
            if "verification" in frame.columns
            else frame.iloc[0:0]
        )
        for r in der.itertuples():
            how = _val(getattr(r, "derivation", None)) or "derivation not stated"
            where = f"{info.label(str(r.study_id))}, {r.arm_id}, {r.outcome}"
            items.append(Muted(f"Derived: {where} at {float(r.timepoint_weeks):g} weeks — {how}"))
    with_data: set[str] = set()
    for name in ("continuous_outcomes", "dichotomous_outcomes"):
        frame = _table(pkg, name)
        if frame is not None and not frame.empty:
            with_data |= {str(s) for s in frame["study_id"].dropna()}
    none = [s for s in info.order if s not in with_data]
    if none:
        items.append(f"Studies with no outcome data in the package: {info.names(none)}.")
    audited = ctx.plan.audited_source_id
    pub = _table(pkg, "published_results")
    if audited and pub is not None:
        own = pub[(pub["source_id"] == audited).fillna(False)]
        if own.empty:
            items.append(
                f"The pooled results of the audited review ({audited}) are not in the package "
                "(not available in the sources read); the reproduction audit compares with the "
                "pooled results of other reviews that the package records."
            )
    bias = _table(pkg, "bias_judgements")
    if bias is None or bias.empty:
        items.append("No risk-of-bias judgements are in the package.")
    else:
        assessors = sorted({str(a) for a in bias["assessor"].dropna()})
        items.append(f"Risk-of-bias judgements by: {', '.join(assessors)}.")
    non_rct = [s for s in info.order if info.designs.get(s) != "rct"]
    if non_rct:
        items.append(
            "Studies not labelled as randomised trials in the package (left out of RCT-only "
            "analyses, kept in the all-designs variants): "
            + ", ".join(
                f"{info.label(s)} ({info.designs.get(s, '?').replace('_', ' ')})" for s in non_rct
            )
            + "."
        )
    nodes: list[Node] = [Heading(2, "What the data can and cannot show", "caveats")]
    if ctx.plan.caveats:
        nodes.append(Para([Strong("Known limits of the sources"), " (from the analysis plan):"]))
        nodes.append(Bullets(list(ctx.plan.caveats)))
        nodes.append(Para([Strong("From the data"), " (counted by this report):"]))
    nodes.append(Bullets(items))
    return nodes


# --- study characteristics -----------------------------------------------------------

_CLAIM_FIELDS: dict[str, tuple[str, ...]] = {
    "study": ("study_label", "publication_year", "registration"),
    "country": ("country", "centre"),
    "design": ("design", "blinding", "phase"),
    "population": ("etiology", "population", "aclf_definition", "liver_failure_definition"),
    "msc": ("cell_source", "origin", "dose", "dose_total", "dose_per_kg", "route", "n_infusions"),
    "control": ("control_treatment",),
    "n": ("n_intervention", "n_control", "n_total"),
    "follow_up": ("follow_up",),
}


def _fmt_dose(arm: Any) -> str | None:
    dose = getattr(arm, "dose_per_infusion", None)
    if _val(dose) is None:
        return None
    hi = getattr(arm, "dose_per_infusion_max", None)
    unit = _val(getattr(arm, "dose_unit", None)) or ""

    def sci(x: Any) -> str:
        v = float(x)
        if v == 0:
            return "0"
        e = math.floor(math.log10(abs(v)))
        m = v / 10**e
        return f"{m:g}×10^{e}"

    text = sci(dose) + (f"–{sci(hi)}" if _val(hi) is not None else "") + f" {unit}".rstrip()
    n_inf = _val(getattr(arm, "n_infusions", None))
    if n_inf:
        text += f" × {n_inf}"
    return text


def _section_characteristics(ctx: Context) -> tuple[list[Node], list[list[Any]]]:
    pkg = ctx.pkg
    info = ctx.studies
    studies = _table(pkg, "studies")
    arms = _table(pkg, "arms")
    claims = _table(pkg, "claims")
    audited = ctx.plan.audited_source_id
    nodes: list[Node] = [
        Heading(2, "Study characteristics", "characteristics"),
        Para(
            "The review's Table 1, rebuilt from the package (best-supported values; every "
            "source's competing value is kept in the claims table). Source ids are shown after "
            "each cell; † marks a cell where "
            + (
                f"{audited} prints a different value (see the discrepancy table)."
                if audited
                else "sources disagree (see the claims table)."
            )
        ),
    ]
    if studies is None or studies.empty:
        nodes.append(Para("No studies in the package.", cls="note"))
        return nodes, []

    def claim_sources(sid: str, group: str) -> tuple[list[str], bool]:
        if claims is None or claims.empty:
            return [], False
        fields = _CLAIM_FIELDS[group]
        sub = claims[
            (claims["study_id"] == sid).fillna(False) & claims["field"].isin(fields).fillna(False)
        ]
        prim = sorted(
            {str(x) for x in sub.loc[(sub["status"] == "primary").fillna(False), "source_id"]}
        )
        flagged = bool(
            audited
            and ((sub["source_id"] == audited) & (sub["status"] == "conflicting"))
            .fillna(False)
            .any()
        )
        return prim, flagged

    def cell(value: str | None, sources: Sequence[str], sid: str, group: str) -> list[Inline]:
        prim, flagged = claim_sources(sid, group)
        srcs = list(dict.fromkeys([*sources, *prim]))
        out: list[Inline] = [value or "not reported"]
        if flagged:
            out.append(Link(" †", "#discrepancies"))
        if srcs:
            out.append(Muted(" [" + ", ".join(srcs) + "]"))
        return out

    header = [
        "Study",
        "Country",
        "Design",
        "Population",
        "MSC arm",
        "Control arm",
        "n randomised (MSC / control)",
        "Follow-up",
    ]
    rows: list[list[Inlines]] = []
    flat: list[list[Any]] = []
    by_id = {str(r.study_id): r for r in studies.itertuples()}
    for sid in info.order:
        st = by_id[sid]
        src = [str(st.source_id)]
        reg = _val(getattr(st, "registration", None))
        title = f"{st.label}" + (f" ({reg})" if reg else "")
        design = str(st.design).replace("_", " ") + f"; {str(st.blinding).replace('_', ' ')}"
        pop = "; ".join(
            x
            for x in (_val(getattr(st, "etiology", None)), _val(getattr(st, "population", None)))
            if x
        )
        fu = _weeks(getattr(st, "follow_up_weeks", None))
        arm_rows = arms[(arms["study_id"] == sid).fillna(False)] if arms is not None else None
        msc_txt: str | None = None
        ctl_txt: str | None = None
        msc_src: list[str] = []
        ctl_src: list[str] = []
        n_msc = n_ctl = None
        if arm_rows is not None and not arm_rows.empty:
            prim_col = (
                arm_rows["primary_comparison"] if "primary_comparison" in arm_rows.columns else None
            )
            chosen = (
                arm_rows[prim_col.fillna(False).astype(bool)] if prim_col is not None else arm_rows
            )
            if chosen.empty:
                chosen = arm_rows
            for arm in chosen.itertuples():
                if str(arm.role) == "intervention" and msc_txt is None:
                    bits = [
                        str(arm.cell_source).replace("_", " "),
                        str(arm.origin).replace("_", " "),
                        _fmt_dose(arm),
                        str(arm.route).replace("_", " "),
                    ]
                    msc_txt = ", ".join(b for b in bits if b and b != "None")
                    msc_src.append(str(arm.source_id))
                    n_msc = _val(getattr(arm, "n_randomised", None))
                elif str(arm.role) == "control" and ctl_txt is None:
                    ctl_txt = _val(arm.description)
                    ctl_src.append(str(arm.source_id))
                    n_ctl = _val(getattr(arm, "n_randomised", None))
        n_txt = f"{n_msc or '?'} / {n_ctl or '?'}"
        rows.append(
            [
                cell(title, src, sid, "study"),
                cell(_val(st.country), src, sid, "country"),
                cell(design, src, sid, "design"),
                cell(pop or None, src, sid, "population"),
                cell(msc_txt, msc_src, sid, "msc"),
                cell(ctl_txt, ctl_src, sid, "control"),
                cell(n_txt, msc_src + ctl_src, sid, "n"),
                cell(f"{fu} weeks" if fu else None, src, sid, "follow_up"),
            ]
        )
        flat.append(
            [
                sid,
                title,
                _val(st.country),
                design,
                pop,
                msc_txt,
                ctl_txt,
                n_msc,
                n_ctl,
                fu,
                "; ".join(dict.fromkeys(src + msc_src + ctl_src)),
            ]
        )
    nodes.append(Table(header=header, rows=rows, caption="Characteristics of the included studies"))
    return nodes, flat


# --- discrepancies -------------------------------------------------------------------


def _section_discrepancies(ctx: Context) -> tuple[list[Node], list[list[Any]]]:
    """Each claim of the audited review marked conflicting, next to the primary sources."""
    pkg = ctx.pkg
    info = ctx.studies
    audited = ctx.plan.audited_source_id
    nodes: list[Node] = [Heading(2, "Discrepancies", "discrepancies")]
    claims = _table(pkg, "claims")
    sources = _table(pkg, "sources")
    if not audited:
        nodes.append(
            Para("The plan names no audited review (audited_source_id): no table.", cls="note")
        )
        return nodes, []
    if claims is None or claims.empty:
        nodes.append(Para("No claims in the package: no discrepancy table.", cls="note"))
        return nodes, []
    kinds: dict[str, str] = {}
    if sources is not None:
        kinds = {str(r.source_id): str(r.kind) for r in sources.itertuples()}
    primary_kinds = {"primary_article", "registry_record"}
    nodes.append(
        Para(
            f"Each claim of {audited} that the package marks as conflicting, next to what the "
            "primary sources (the trial's own report or registry record) say for the same "
            "study and field, with the resolution chosen for the package. Every value keeps "
            "its source and locator."
        )
    )
    rows: list[list[Inlines]] = []
    rows2: list[list[Inlines]] = []
    flat: list[list[Any]] = []
    theirs = claims[
        (claims["source_id"] == audited).fillna(False)
        & (claims["status"] == "conflicting").fillna(False)
    ]
    order = {sid: i for i, sid in enumerate(info.order)}
    theirs = theirs.assign(_o=theirs["study_id"].map(lambda x: order.get(str(x), 10**6)))
    theirs = theirs.sort_values("_o", kind="stable")
    for c in theirs.itertuples():
        sid = _val(c.study_id) or ""
        same = claims[
            (claims["study_id"] == c.study_id).fillna(False)
            & (claims["field"] == c.field).fillna(False)
            & (claims["source_id"] != audited).fillna(False)
            & (claims["status"] != "derived").fillna(True)
        ]
        is_primary = (same["status"] == "primary").fillna(False) | same["source_id"].map(
            lambda x: kinds.get(str(x)) in primary_kinds
        ).astype(bool)
        prim = same[is_primary]
        resolution = (
            _val(getattr(c, "resolution", None)) or _val(getattr(c, "note", None)) or "not stated"
        )
        theirs_cell: list[Inline] = [str(c.value), Muted(f" ({c.locator})")]
        if not prim.empty:
            cell: list[Inline] = []
            for i, p in enumerate(prim.itertuples()):
                if i:
                    cell.append(BR)
                cell.extend([str(p.value), Muted(f" ({p.source_id}, {p.locator})")])
                flat.append(
                    [sid, c.field, c.value, audited, c.locator, p.value, p.source_id, p.locator,
                     resolution]
                )  # fmt: skip
            rows.append([info.label(sid), Code(str(c.field)), theirs_cell, cell, resolution])
        else:
            cell = []
            for i, o in enumerate(same.itertuples()):
                if i:
                    cell.append(BR)
                cell.extend([str(o.value), Muted(f" ({o.source_id}, {o.locator})")])
                flat.append(
                    [sid, c.field, c.value, audited, c.locator, o.value, o.source_id, o.locator,
                     resolution]
                )  # fmt: skip
            rows2.append(
                [info.label(sid), Code(str(c.field)), theirs_cell, cell or "–", resolution]
            )
    if rows:
        nodes.append(
            Table(
                header=["Study", "Field", audited, "Primary sources", "Resolution"],
                rows=rows,
                caption=f"{audited} vs the primary sources ({len(rows)} claims)",
            )
        )
    else:
        nodes.append(
            Para(f"No conflicting claim of {audited} has a primary source to compare.", cls="note")
        )
    if rows2:
        nodes.append(
            Table(
                header=["Study", "Field", audited, "Other sources (no primary source)", "Note"],
                rows=rows2,
                caption=(
                    f"{audited} claims marked conflicting that only other reviews contradict "
                    f"({len(rows2)} claims)"
                ),
            )
        )
    return nodes, flat


# --- risk of bias and PRISMA ---------------------------------------------------------


def _section_rob(ctx: Context) -> list[Node]:
    nodes: list[Node] = [Heading(2, "Risk of bias", "rob")]
    bias = _table(ctx.pkg, "bias_judgements")
    if bias is None or bias.empty:
        nodes.append(
            Para(
                "No risk-of-bias judgements are in the package, so no risk-of-bias graph or "
                "summary is drawn (the review's own judgements were not available).",
                cls="note",
            )
        )
        return nodes
    labels = dict(ctx.studies.labels)
    for tool in ("rob1", "rob2", "robins_i"):
        sub = bias[(bias["tool"] == tool).fillna(False)]
        if sub.empty:
            continue
        name = {"rob1": "Cochrane RoB 1", "rob2": "RoB 2", "robins_i": "ROBINS-I"}[tool]
        nodes.append(Heading(3, name, f"rob-{tool}"))
        assessors = ", ".join(sorted({str(a) for a in sub["assessor"].dropna()}))
        nodes.append(Para([Strong("Assessed by: "), assessors or "not stated"]))
        fig = rob.rob_graph(sub, tool)
        nodes.append(
            ctx.figure(
                f"rob_graph_{tool}",
                fig,
                f"{name}: risk-of-bias graph (share of studies per judgement, per domain).",
                alt=f"{name} risk-of-bias graph",
            )
        )
        fig = rob.rob_summary(sub, labels, tool)
        nodes.append(
            ctx.figure(
                f"rob_summary_{tool}",
                fig,
                f"{name}: risk-of-bias summary (one row per study).",
                alt=f"{name} risk-of-bias summary",
            )
        )
        header, rows = robvis_table(bias, tool, labels)
        write_csv(ctx.root / "exports" / f"robvis_{tool}.csv", header, rows)
        ctx.exported.append(f"exports/robvis_{tool}.csv")
        nodes.append(
            Para(
                [
                    "robvis-ready table: ",
                    Code(f"exports/robvis_{tool}.csv"),
                    f' (robvis template "{ROBVIS_TOOL[tool]}"; read with read.csv(..., '
                    "check.names = FALSE)).",
                ]
            )
        )
        support = [
            [
                ctx.studies.label(str(r.study_id)),
                Code(str(r.domain)),
                str(r.result_scope),
                str(r.judgement).replace("_", " "),
                _val(r.support) or "",
            ]
            for r in sub.itertuples()
        ]
        nodes.append(
            Table(
                header=["Study", "Domain", "Scope", "Judgement", "Support"],
                rows=support,
                caption=f"{name}: judgements and their support",
            )
        )
    other = sorted(set(bias["tool"].dropna().astype(str)) - set(TOOL_DOMAINS))
    if other:
        nodes.append(Para(f"Tools not drawn: {', '.join(other)}.", cls="note"))
    return nodes


def _section_prisma(ctx: Context) -> list[Node]:
    nodes: list[Node] = [Heading(2, "Study flow (PRISMA 2020)", "prisma")]
    screening = _table(ctx.pkg, "screening")
    if screening is None or screening.empty:
        nodes.append(Para("No screening records in the package: no flow diagram.", cls="note"))
        return nodes
    counts = prisma.prisma_counts(screening)
    fig = prisma.prisma_flow(counts)
    nodes.append(
        ctx.figure(
            "prisma_flow",
            fig,
            "PRISMA 2020 flow diagram of the package's screening records.",
            alt="PRISMA 2020 flow diagram",
        )
    )
    audited = ctx.plan.audited_source_id
    if audited:
        nodes.append(
            Para(
                f"The diagram counts the package's own screening records (studies considered "
                f"for this dataset). It is not {audited}'s PRISMA diagram unless its counts "
                "are recorded as screening rows.",
                cls="note",
            )
        )
    reasons = screening[(screening["decision"] == "exclude").fillna(False)]
    if not reasons.empty:
        nodes.append(
            Table(
                header=["Record", "Stage", "Reason", "Source"],
                rows=[
                    [
                        str(r.label),
                        str(r.stage),
                        _val(r.reason) or "not stated",
                        Muted(str(r.source_id)),
                    ]
                    for r in reasons.itertuples()
                ],
                caption="Excluded records and reasons",
            )
        )
    return nodes


# --- reproduction audit --------------------------------------------------------------


def _named_studies(note: str | None, pkg: Package, info: StudyInfo) -> list[str]:
    """Study ids whose label (or first author and year) appears in a free-text note."""
    if not note:
        return []
    studies = _table(pkg, "studies")
    if studies is None:
        return []
    text = note.casefold()
    found = []
    for r in studies.itertuples():
        names = {str(r.label).casefold()}
        if _val(getattr(r, "first_author", None)) and _val(getattr(r, "year", None)):
            names.add(f"{str(r.first_author).casefold()} {int(r.year)}")
        if any(n and n in text for n in names):
            found.append(str(r.study_id))
    return found


def _audit_method(model: str | None, measure: str, default: str) -> tuple[str, str]:
    if not model:
        return default, f"model not stated: {default} (plan default)"
    m = model.casefold()
    if "fix" in m or m in {"fe", "iv", "mh", "m-h"}:
        meth = (
            "MH"
            if measure in {"RR", "OR", "RD"} and ("m-h" in m or "mh" in m or "fix" in m)
            else "FE"
        )
        return meth, f"model {model!r} read as {meth}"
    if "random" in m or "dl" in m or "dersimonian" in m:
        return "DL", f"model {model!r} read as DL (RevMan's random effects)"
    if "reml" in m:
        return "REML", f"model {model!r} read as REML"
    return default, f"model {model!r} not recognised: {default} (plan default)"


_HR_NOTE = (
    "not recomputed: hazard ratios need per-study log hazard ratios and their SEs "
    "(time-to-event data), which the package schema does not hold"
)
_NO_TIME = "not recomputed: the source does not state the time point, so the pool cannot be matched"


def _no_weeks(label: str) -> str:
    return (
        f"not recomputed: the source prints the time point as {label!r}, not in weeks, "
        "so the pool cannot be matched"
    )


_SURVIVAL_RR = (
    "not recomputed: a risk ratio of survival needs survivor counts pooled as such; the "
    "package pools deaths (an odds ratio of survival is recomputed as 1/OR of death)"
)


def _outcome_name(code: str | None, printed: str) -> str:
    if code in OUTCOMES:
        return OUTCOMES[code].label
    return code or printed


def _recompute(ctx: Context, r: Any) -> tuple[Inlines, str, str, float | None]:
    """(recomputed cell, difference, status, recomputed estimate) of one published row."""
    pkg, info, d = ctx.pkg, ctx.studies, ctx.plan.defaults
    code = _val(getattr(r, "outcome_code", None))
    measure = _val(getattr(r, "measure", None))
    est = _f(getattr(r, "estimate", None))
    tp = _f(getattr(r, "timepoint_weeks", None))
    k_pub = _val(getattr(r, "k_studies", None))
    if code is None:
        return "–", "–", f"not recomputed: outcome {str(r.outcome)!r} is not coded", None
    if measure is None or est is None:
        return "–", "–", "not recomputed: the source prints no estimate (P value only)", None
    if measure == "HR":
        return "–", "–", _HR_NOTE, None
    if tp is None:
        label = _val(getattr(r, "timepoint_label", None))
        return "–", "–", _no_weeks(label) if label else _NO_TIME, None
    if code == "survival" and measure != "OR":
        return "–", "–", _SURVIVAL_RR, None
    outcome = "death" if code == "survival" else code
    invert = code == "survival"
    method, method_note = _audit_method(_val(getattr(r, "model", None)), measure, d.method)
    named = _named_studies(_val(getattr(r, "note", None)), pkg, info)
    s = Settings(measure=measure, method=method, hksj=False, designs=None, include_derived=True,
                 convert_medians=d.convert_medians, exclude_high_rob=False, level=95.0)  # fmt: skip
    target = subset_package(pkg, set(named)) if named else pkg
    res = pool(target, outcome, tp, s)
    have = usable_studies(target, outcome, tp, s)
    if named:
        set_note = f"studies named by the source: {info.names(named)}"
    else:
        set_note = "study list not stated by the source: every study with data was pooled"
    if isinstance(res, PoolResult):
        e, lo, hi = res.estimate, res.ci_lower, res.ci_upper
        if invert:
            e, lo, hi = 1 / e, 1 / hi, 1 / lo
        cell: Inlines = [
            f"{_num(e)} [{_num(lo)}, {_num(hi)}]",
            Muted(f" (k = {res.k}, I² = {_pct(res.i2)})"),
        ]
        status = f"recomputed ({set_note}; {method_note}"
        status += "; inverted from the OR of death)" if invert else ")"
        if k_pub and int(k_pub) != res.k:
            status += f"; k differs: {res.k} here, {k_pub} published"
        return cell, _num(e - est), status, e
    kind = _outcome_kind(pkg, outcome)
    need = "per-arm event counts" if kind == "dichotomous" else "per-arm means and SDs"
    what = f"{need} of {_lc(_outcome_name(outcome, outcome))} at {tp:g} weeks"
    got = f"; the package has {info.names(sorted(have))}" if have else "; the package has none"
    if named:
        lacking = [sid for sid in named if sid not in have]
        status = f"needs {what} for {info.names(lacking)}{got}"
    else:
        pool_of = f"the k = {k_pub} studies" if k_pub else "the studies"
        status = f"needs {what} for {pool_of} of this pool (not named by the source){got}"
    return "–", "–", status, None


def _section_audit(ctx: Context) -> tuple[list[Node], list[list[Any]]]:
    """Each published pooled result next to the same pool recomputed from the package."""
    nodes: list[Node] = [Heading(2, "Reproduction audit", "audit")]
    pub = _table(ctx.pkg, "published_results")
    if pub is None or pub.empty:
        nodes.append(
            Para("No published pooled results in the package: nothing to audit.", cls="note")
        )
        return nodes, []
    nodes.append(
        Para(
            "Each pooled result printed by a review, next to the same pool recomputed from the "
            "package where the data allow (same outcome, time point and measure; the same "
            "studies when the source names them; all designs, derived rows included). "
            "Otherwise the row says exactly what is missing."
        )
    )
    rows: list[list[Inlines]] = []
    flat: list[list[Any]] = []
    for r in pub.itertuples():
        code = _val(getattr(r, "outcome_code", None))
        measure = _val(getattr(r, "measure", None))
        est = _f(getattr(r, "estimate", None))
        tp = _f(getattr(r, "timepoint_weeks", None))
        tp_label = _val(getattr(r, "timepoint_label", None))
        extras = []
        p_value = _val(getattr(r, "p_value", None))
        if p_value:
            extras.append(f"P {p_value}" if p_value.startswith(("<", ">")) else f"P = {p_value}")
        if _f(getattr(r, "i2", None)) is not None:
            extras.append(f"I² = {float(r.i2):g}%")
        if _val(getattr(r, "k_studies", None)):
            extras.append(f"k = {r.k_studies}")
        published: list[Inline] = [
            "–" if est is None else f"{_num(est)} [{_num(_f(r.ci_lower))}, {_num(_f(r.ci_upper))}]"
        ]
        if extras:
            published.append(Muted(" (" + ", ".join(extras) + ")"))
        recomputed, diff, status, rec_est = _recompute(ctx, r)
        when = (
            f"“{tp_label}” (as printed; weeks not stated)" if tp is None and tp_label else _tp(tp)
        )
        what: Inlines = [
            f"{_outcome_name(code, str(r.outcome))} at {when}",
            Muted(f" (printed: {r.outcome})"),
        ]
        rows.append(
            [
                Code(str(r.result_id)),
                [str(r.source_id), Muted(f" ({r.locator})")],
                what,
                measure or "–",
                published,
                recomputed,
                diff,
                status,
            ]
        )
        flat.append(
            [r.result_id, r.source_id, r.locator, code, tp, tp_label, measure, est,
             _f(r.ci_lower), _f(r.ci_upper), rec_est, status]
        )  # fmt: skip
    header = ["Result", "Source (locator)", "Outcome", "Measure", "Published", "Recomputed"]
    header += ["Recomputed − published", "Status"]
    nodes.append(
        Table(header=header, rows=rows, caption="Published vs recomputed", numeric=frozenset({6}))
    )
    return nodes, flat


def _f(value: Any) -> float | None:
    v = _val(value)
    try:
        return None if v is None else float(v)
    except ValueError:
        return None


def _section_sources(ctx: Context) -> list[Node]:
    sources = _table(ctx.pkg, "sources")
    nodes: list[Node] = [Heading(2, "Sources", "sources")]
    if sources is None or sources.empty:
        nodes.append(Para("No sources in the package.", cls="note"))
        return nodes
    rows: list[list[Inlines]] = []
    for r in sources.itertuples():
        links: list[Inline] = []
        doi = _val(getattr(r, "doi", None))
        if doi:
            links.append(Link(f"doi:{doi}", "https://doi.org/" + quote(doi, safe="/:;()._-")))
        url = _val(getattr(r, "url", None))
        if url and _safe_url(url) and not (doi and doi in url):
            if links:
                links.append(" · ")
            links.append(Link("link", url))
        rows.append(
            [Code(str(r.source_id)), str(r.kind).replace("_", " "), str(r.citation), links or "–"]
        )
    nodes.append(Table(header=["Source id", "Kind", "Citation", "Link"], rows=rows))
    return nodes


def _section_exports(ctx: Context) -> list[Node]:
    items: list[Inlines] = [
        [
            Code("exports/reproduce.R"),
            ": refits every pooled number with metafor from the "
            "escalc CSVs and prints a comparison with this report (Rscript exports/reproduce.R).",
        ],
    ]
    items.extend([Code(p)] for p in ctx.exported)
    items.extend(
        [Code(p)]
        for p in (
            "tables/study_characteristics.csv",
            "tables/discrepancies.csv",
            "tables/reproduction_audit.csv",
        )
    )
    return [
        Heading(2, "Exports", "exports"),
        Para(
            "CSV cells that a spreadsheet would read as a formula are prefixed with a single quote."
        ),
        Bullets(items),
    ]


# =====================================================================================
# entry points


def _resolve_plan(plan: AnalysisPlan | Path | str | None, pkg: Package) -> tuple[AnalysisPlan, str]:
    if isinstance(plan, AnalysisPlan):
        return plan, "given in code"
    if plan is not None:
        path = Path(plan)
        return load_plan(
            path
        ), f"{path.name} (sha256 {hashlib.sha256(path.read_bytes()).hexdigest()[:12]})"
    default = pkg.root / "analysis" / "plan.json"
    if default.is_file():
        digest = hashlib.sha256(default.read_bytes()).hexdigest()[:12]
        return load_plan(default), f"analysis/plan.json of the package (sha256 {digest})"
    available: list[tuple[str, float | None, str, bool]] = []
    for name, kind in (
        ("continuous_outcomes", "continuous"),
        ("dichotomous_outcomes", "dichotomous"),
    ):
        frame = _table(pkg, name)
        if frame is None or frame.empty:
            continue
        for (outcome, tp), part in frame.groupby(["outcome", "timepoint_weeks"], sort=True):
            same_unit = "unit" not in part.columns or part["unit"].nunique(dropna=True) <= 1
            available.append((str(outcome), float(tp), kind, bool(same_unit)))
    return auto_plan(
        available, title=f"{pkg.name}: every outcome and time point"
    ), "built from the data (no plan given, no analysis/plan.json)"


def build_report(
    descriptor: Path | str,
    plan: AnalysisPlan | Path | str | None,
    out: Path | str,
    *,
    console: Console | None = None,
    validation: Any = None,
) -> Path:
    """Validate, run every analysis of the plan, and write the report folder ``out``.

    Raises ValidationFailedError (invalid package), PlanError (invalid plan) or
    ReportError (unsafe or occupied ``out``): one line each. Returns the folder path.
    """
    console = console or Console(quiet=True)
    if validation is None:
        validation = checks.validate_package(descriptor)
    if not validation.valid:
        first = validation.issues[0].line() if validation.issues else ""
        raise ValidationFailedError(
            f"{descriptor}: package is invalid ({len(validation.issues)} problem(s); first: "
            f"{first}); run 'trialpool validate' for the list"
        )
    pkg = load_package(descriptor)
    the_plan, origin = _resolve_plan(plan, pkg)
    target = check_out_path(Path(out), pkg.root)
    with atomic_folder(target) as tmp:
        _write_report(pkg, the_plan, origin, tmp, console, validation)
    return target


def _write_report(
    pkg: Package, plan: AnalysisPlan, origin: str, tmp: Path, console: Console, validation: Any
) -> None:
    ctx = Context(
        pkg=pkg, plan=plan, plan_origin=origin, root=tmp, studies=_study_info(pkg), console=console
    )
    for sub in ("figures", "exports", "tables"):
        (tmp / sub).mkdir()
    analysis_nodes: list[Node] = [
        Heading(2, "Analyses", "analyses"),
        Para(
            "Each analysis of the plan: its data status, pooled result, forest plot, "
            "per-study data and sensitivity analyses."
        ),
    ]
    steps = len(plan.analyses) + 5
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task("report", total=steps)
        for analysis in plan.analyses:
            progress.update(task, description=f"analysis {analysis.id}")
            analysis_nodes.extend(run_analysis(ctx, analysis))
            status = ctx.statuses[-1][1] if ctx.statuses else None  # for the console
            if status is not None:
                progress.console.print(
                    f"  {analysis.id}: {status.headline}", highlight=False, markup=False
                )
            progress.advance(task)
        progress.update(task, description="study characteristics and discrepancies")
        char_nodes, char_flat = _section_characteristics(ctx)
        disc_nodes, disc_flat = _section_discrepancies(ctx)
        progress.advance(task)
        progress.update(task, description="risk of bias")
        rob_nodes = _section_rob(ctx)
        progress.advance(task)
        progress.update(task, description="PRISMA flow")
        prisma_nodes = _section_prisma(ctx)
        progress.advance(task)
        progress.update(task, description="reproduction audit")
        audit_nodes, audit_flat = _section_audit(ctx)
        progress.advance(task)
        progress.update(task, description="writing")
        write_csv(
            tmp / "tables" / "study_characteristics.csv",
            [
                "study_id",
                "study",
                "country",
                "design",
                "population",
                "msc_arm",
                "control_arm",
                "n_msc",
                "n_control",
                "follow_up_weeks",
                "source_ids",
            ],
            char_flat,
        )
        write_csv(
            tmp / "tables" / "discrepancies.csv",
            [
                "study_id",
                "field",
                "audited_value",
                "audited_source_id",
                "audited_locator",
                "primary_value",
                "primary_source_id",
                "primary_locator",
                "resolution",
            ],
            disc_flat,
        )
        write_csv(
            tmp / "tables" / "reproduction_audit.csv",
            [
                "result_id",
                "source_id",
                "locator",
                "outcome_code",
                "timepoint_weeks",
                "timepoint_label",
                "measure",
                "published_estimate",
                "published_ci_lower",
                "published_ci_upper",
                "recomputed_estimate",
                "status",
            ],
            audit_flat,
        )
        (tmp / "exports" / "reproduce.R").write_text(
            render_reproduce_r(
                ctx.export_blocks,
                package=f"{pkg.name} {pkg.version or ''}".strip(),
                version=__version__,
            ),
            encoding="utf-8",
        )
        doc: list[Node] = []
        doc.extend(_section_header(ctx, validation))
        doc.extend(_section_status(ctx))
        doc.extend(_section_methods(ctx))
        doc.extend(_section_caveats(ctx))
        doc.extend(char_nodes)
        doc.extend(disc_nodes)
        doc.extend(rob_nodes)
        doc.extend(prisma_nodes)
        doc.extend(analysis_nodes)
        doc.extend(audit_nodes)
        doc.extend(_section_exports(ctx))
        doc.extend(_section_sources(ctx))
        title = str(pkg.descriptor.get("title") or pkg.name)
        subtitle = [
            f"Package {pkg.name} {pkg.version or ''}".rstrip() + f" · trialpool {__version__}",
            f"Plan: {plan.title}",
        ]
        (tmp / HTML_NAME).write_text(
            render_html(doc, title=title, subtitle=subtitle), encoding="utf-8"
        )
        (tmp / MD_NAME).write_text(
            render_markdown(doc, title=title, subtitle=subtitle), encoding="utf-8"
        )
        marker = {
            "tool": "trialpool report",
            "trialpool": __version__,
            "package": pkg.name,
            "version": pkg.version,
            "figures": ctx.figures,
        }
        (tmp / MARKER_NAME).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        progress.advance(task)


def run_report(descriptor: Path | str, *, plan: Path | None, out: Path, console: Console) -> int:
    """``trialpool report``: print progress and the report's path; return the exit code."""
    validation = checks.validate_package(descriptor)
    if not validation.valid:
        checks.print_report(validation, console, as_json=False)
        console.out(f"report not written: {descriptor} is invalid", highlight=False)
        return 1
    try:
        path = build_report(descriptor, plan, out, console=console, validation=validation)
    except TrialpoolError as exc:
        print(f"trialpool: error: {exc}", file=sys.stderr)
        return exc.exit_code
    console.out(
        f"Report written to {path / HTML_NAME} (Markdown: {path / MD_NAME})", highlight=False
    )
    return 0
