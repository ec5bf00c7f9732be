"""Exports that let anyone check the report outside trialpool.

* one CSV per pooled block in the layout of metafor's ``escalc`` output (study, per-arm
  data with metafor's argument names, ``yi``, ``vi``), see :func:`escalc_table`;
* robvis-ready risk-of-bias CSVs (:func:`robvis_table`): ``Study``, one column per
  domain, ``Overall``, ``Weight``, judgements spelled as robvis expects ("Low",
  "Unclear", "High", "Some concerns", ...). For RoB 1 the domain columns carry the full
  domain names, as robvis's ``data_rob1`` (the "ROB1"/"Generic" template takes the
  domain labels from the column names); for RoB 2 and ROBINS-I they are ``D1``...``Dn``,
  as ``data_rob2`` and ``data_robins``. Load with
  ``read.csv(path, header = TRUE, check.names = FALSE)``;
* ``reproduce.R`` (:func:`render_reproduce_r`): refits every pooled number with metafor
  (``rma`` with the same ``method`` and ``test = "knha"`` when HKSJ was used, ``rma.mh``
  for Mantel-Haenszel), recomputes ``yi``/``vi`` from the arm data with ``escalc``, and
  prints both next to the report's numbers.

Every exported CSV goes through :func:`write_csv`, which neutralises text cells that a
spreadsheet would run as a formula (OWASP "CSV injection"): a text cell starting with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading single quote.
Numbers (and text that is exactly a number, such as ``-2.5``) are left as they are.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from numbers import Number
from pathlib import Path
from typing import Any

import pandas as pd

from trialpool.report.figures.rob import rob_columns
from trialpool.stats.results import RATIO_MEASURES, NotPooled, PoolResult

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")

#: robvis spelling of each judgement code of the bias_judgements schema.
ROBVIS_JUDGEMENT: dict[str, str] = {
    "low": "Low",
    "unclear": "Unclear",
    "some_concerns": "Some concerns",
    "high": "High",
    "moderate": "Moderate",
    "serious": "Serious",
    "critical": "Critical",
    "no_information": "No information",
}

#: Domains of each tool, in the order of the tool (and of robvis's templates).
TOOL_DOMAINS: dict[str, list[tuple[str, str]]] = {
    "rob1": [
        ("random_sequence_generation", "Random sequence generation"),
        ("allocation_concealment", "Allocation concealment"),
        ("blinding_participants_personnel", "Blinding of participants and personnel"),
        ("blinding_outcome_assessment", "Blinding of outcome assessment"),
        ("incomplete_outcome_data", "Incomplete outcome data"),
        ("selective_reporting", "Selective reporting"),
        ("other_bias", "Other sources of bias"),
    ],
    "rob2": [
        ("randomisation_process", "Bias arising from the randomisation process"),
        (
            "deviations_from_intended_interventions",
            "Bias due to deviations from intended interventions",
        ),
        ("missing_outcome_data", "Bias due to missing outcome data"),
        ("measurement_of_outcome", "Bias in measurement of the outcome"),
        ("selection_of_reported_result", "Bias in selection of the reported result"),
    ],
    "robins_i": [
        ("confounding", "Bias due to confounding"),
        ("selection_of_participants", "Bias in selection of participants"),
        ("classification_of_interventions", "Bias in classification of interventions"),
        (
            "deviations_from_intended_interventions",
            "Bias due to deviations from intended interventions",
        ),
        ("missing_data", "Bias due to missing data"),
        ("measurement_of_outcomes", "Bias in measurement of outcomes"),
        ("selection_of_reported_result", "Bias in selection of the reported result"),
    ],
    "other": [],  # a tool trialpool does not know: the review's own domains (Generic)
}

#: robvis template name of each tool.
ROBVIS_TOOL: dict[str, str] = {
    "rob1": "ROB1",
    "rob2": "ROB2",
    "robins_i": "ROBINS-I",
    "other": "Generic",
}


# --- safe CSV ------------------------------------------------------------------------


def neutralise(value: Any) -> Any:
    """A cell made safe for spreadsheets: formula-like text gets a leading quote.

    Numbers (int, float, numpy numbers) and text that is exactly a number are returned
    unchanged; missing values (None, NaN, <NA>) become an empty cell.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return value
    if isinstance(value, Number):
        try:
            if math.isnan(float(value)):  # type: ignore[arg-type]
                return ""
        except (TypeError, ValueError):
            pass
        return value
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    text = str(value)
    if text.startswith(_FORMULA_START) and not _NUMBER.match(text):
        return "'" + text
    return text


def _cell(value: Any) -> Any:
    """Cell text: floats written with full precision (round-trip), others as is."""
    value = neutralise(value)
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return repr(value)
    return value


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    """Write a UTF-8 CSV with every cell neutralised (see :func:`neutralise`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([_cell(h) for h in header])
        for row in rows:
            writer.writerow([_cell(v) for v in row])
    return path


def write_frame(path: Path, frame: pd.DataFrame) -> Path:
    """Write a DataFrame through :func:`write_csv` (numbers stay numbers)."""
    rows = (
        [None if pd.isna(v) else (v.item() if hasattr(v, "item") else v) for v in rec]
        for rec in frame.itertuples(index=False, name=None)
    )
    return write_csv(path, [str(c) for c in frame.columns], rows)


# --- escalc-layout CSV ---------------------------------------------------------------

_CONTINUOUS_ARMS = [("m1i", "m1"), ("sd1i", "sd1"), ("n1i", "n1"), ("m2i", "m2")]
_CONTINUOUS_ARMS += [("sd2i", "sd2"), ("n2i", "n2")]
_BINARY_ARMS = [("ai", "e1"), ("n1i", "t1"), ("ci", "e2"), ("n2i", "t2")]


def escalc_table(
    result: PoolResult | NotPooled, *, labels: dict[str, str] | None = None
) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of one pooled block in the layout of metafor's ``escalc``.

    Columns: ``study`` (study_id), ``label``, the arm data under metafor's argument
    names (``m1i, sd1i, n1i, m2i, sd2i, n2i`` or ``ai, n1i, ci, n2i``; group 1 = the
    intervention), ``yi``, ``vi`` (log scale for RR and OR), ``weight`` (percent),
    ``derived`` and ``zero_cell_corrected`` (TRUE/FALSE).
    """
    labels = labels or {}
    binary = result.measure in {"RR", "OR", "RD"}
    arms = _BINARY_ARMS if binary else _CONTINUOUS_ARMS
    header = ["study", "label", *[a for a, _ in arms], "yi", "vi", "weight"]
    header += ["derived", "zero_cell_corrected"]
    rows: list[list[Any]] = []
    for s in result.studies:
        row: list[Any] = [s.study_id, s.label or labels.get(s.study_id, s.study_id)]
        row += [s.arm_data.get(key) for _, key in arms]
        row += [float(s.yi), float(s.vi), float(s.weight), s.derived, s.zero_cell_corrected]
        rows.append(row)
    return header, rows


# --- robvis CSV ----------------------------------------------------------------------


def robvis_table(
    judgements: pd.DataFrame, tool: str, labels: dict[str, str]
) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of a robvis-ready table for one tool.

    One row per study with its judgements for all results (``result_scope`` "all"),
    plus one row per study and outcome-specific scope ("Lin 2017 (death)"), where the
    scope's judgements replace the general ones in their domains. A domain without a
    judgement is left empty (robvis draws it as not assessed),
    and so is ``Overall`` when no overall judgement was recorded: none is invented.
    ``Weight`` is 1 for every row (unweighted summary).
    """
    sub = judgements[judgements["tool"] == tool]
    standard = {code for code, _ in TOOL_DOMAINS[tool]} | {"overall"}
    if not sub.empty and not set(sub["domain"].astype(str)) <= standard:
        return _robvis_own_domains(sub, tool, labels)
    domains = TOOL_DOMAINS[tool]
    if tool == "rob1":
        domain_cols = [name.replace(" ", ".") for _, name in domains]
    else:
        domain_cols = [f"D{i}" for i in range(1, len(domains) + 1)]
    header = ["Study", *domain_cols, "Overall", "Weight"]
    rows: list[list[Any]] = []
    if sub.empty:
        return header, rows
    study_order = list(dict.fromkeys(str(s) for s in sub["study_id"]))
    for study in study_order:
        rows_s = sub[sub["study_id"] == study]
        by_scope: dict[str, dict[str, str]] = {}
        for scope, domain, judgement in zip(
            rows_s["result_scope"], rows_s["domain"], rows_s["judgement"], strict=True
        ):
            by_scope.setdefault(str(scope), {})[str(domain)] = str(judgement)
        base = by_scope.get("all", {})
        scopes = ["all"] if "all" in by_scope else []
        scopes += [sc for sc in by_scope if sc != "all"]
        name = labels.get(study, study)
        for scope in scopes:
            merged = {**base, **by_scope[scope]}
            row: list[Any] = [name if scope == "all" else f"{name} ({scope})"]
            row += [ROBVIS_JUDGEMENT.get(merged.get(code, ""), "") for code, _ in domains]
            row += [ROBVIS_JUDGEMENT.get(merged.get("overall", ""), ""), 1]
            rows.append(row)
    return header, rows


def robvis_template(judgements: pd.DataFrame, tool: str) -> str:
    """robvis's template for the table of :func:`robvis_table`: the tool's own, or
    "Generic" when the source judges domains of its own."""
    sub = judgements[judgements["tool"] == tool]
    standard = {code for code, _ in TOOL_DOMAINS[tool]} | {"overall"}
    if not sub.empty and not set(sub["domain"].astype(str)) <= standard:
        return "Generic"
    return ROBVIS_TOOL[tool]


def _robvis_own_domains(
    sub: pd.DataFrame, tool: str, labels: dict[str, str]
) -> tuple[list[str], list[list[Any]]]:
    """A review's own domains (e.g. RevMan's "Blinding (performance bias and detection
    bias)" judged for participants and for outcome assessors): one column per domain
    and scope, named as in the figures, in the source's order; one row per study."""
    columns = rob_columns(sub, tool)
    domains = [c for c in columns if c.domain != "overall"]
    overall = next((c for c in columns if c.domain == "overall" and c.scope == "all"), None)
    given = {
        (str(r.study_id), str(r.domain), str(r.result_scope)): str(r.judgement)
        for r in sub.itertuples()
    }
    header = ["Study", *[c.name for c in domains], "Overall", "Weight"]
    rows: list[list[Any]] = []
    for study in dict.fromkeys(str(s) for s in sub["study_id"]):
        row: list[Any] = [labels.get(study, study)]
        for c in domains:
            judged = given.get((study, c.domain, c.scope)) or given.get((study, c.domain, "all"))
            row.append(ROBVIS_JUDGEMENT.get(judged or "", ""))
        judged = given.get((study, "overall", "all")) if overall else None
        row += [ROBVIS_JUDGEMENT.get(judged or "", ""), 1]
        rows.append(row)
    return header, rows


# --- reproduce.R ---------------------------------------------------------------------


@dataclass(frozen=True)
class ExportBlock:
    """One pooled result, the CSV it was exported to, and how it was fitted."""

    key: str
    title: str
    csv_name: str
    result: PoolResult


def _r_num(value: float | int | None) -> str:
    if value is None:
        return "NA"
    v = float(value)
    if not math.isfinite(v):
        return "NA"
    return repr(v)


def _r_str(text: str) -> str:
    escaped = " ".join(text.split()).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _r_comment(text: str, limit: int = 300) -> str:
    """Text from the data in an R comment: one line (no line break of any kind ends the
    comment early), at most ``limit`` characters."""
    text = " ".join(str(text)[: 4 * limit].split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


_R_HEADER = r"""#!/usr/bin/env Rscript
# Reproduce every pooled number of the trialpool report with metafor.
#
# Generated by trialpool %(version)s for package %(package)s. Run from anywhere:
#   Rscript reproduce.R
# Needs R and the metafor package (install.packages("metafor")). Each block reads its
# CSV (escalc layout: arm data, yi, vi), recomputes yi and vi from the arm data with
# escalc, refits the model with rma (test = "knha" when HKSJ was used) or rma.mh, and
# prints metafor's numbers next to the report's. Exit status 1 if any differs by more
# than `tol`. Ratio measures (RR, OR) are compared on the ratio scale for the estimate,
# CI and PI, and on the log scale for the SE.
suppressPackageStartupMessages(library(metafor))
options(width = 200)
tol <- 1e-4
here <- local({
  a <- commandArgs(trailingOnly = FALSE)
  f <- sub("^--file=", "", a[grep("^--file=", a)])
  if (length(f) == 1) dirname(normalizePath(f)) else getwd()
})
rows <- list()
check <- function(id, file, measure, method, knha, level, expected) {
  dat <- read.csv(file.path(here, file), stringsAsFactors = FALSE, check.names = FALSE)
  binary <- measure %%in%% c("RR", "OR", "RD")
  if (binary) {
    es <- escalc(measure = measure, ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = dat)
  } else {
    es <- escalc(measure = measure, m1i = m1i, sd1i = sd1i, n1i = n1i,
                 m2i = m2i, sd2i = sd2i, n2i = n2i, data = dat)
  }
  yi_diff <- suppressWarnings(max(abs(c(es$yi - dat$yi, es$vi - dat$vi)), na.rm = TRUE))
  if (!is.finite(yi_diff)) yi_diff <- NA
  if (method == "MH") {
    res <- rma.mh(ai = ai, n1i = n1i, ci = ci, n2i = n2i, measure = measure,
                  data = dat, level = level)
    tau2 <- NA
  } else {
    res <- rma(yi, vi, data = dat, method = method, test = if (knha) "knha" else "z",
               level = level)
    tau2 <- res$tau2
  }
  pred <- predict(res, level = level)
  tr <- if (measure %%in%% c("RR", "OR")) exp else identity
  pi_lb <- if (is.null(pred$pi.lb) || method %%in%% c("FE", "EE", "CE", "MH")) NA else pred$pi.lb
  pi_ub <- if (is.null(pred$pi.ub) || method %%in%% c("FE", "EE", "CE", "MH")) NA else pred$pi.ub
  got <- c(estimate = tr(as.numeric(res$b)), ci_lower = tr(res$ci.lb),
           ci_upper = tr(res$ci.ub), se = res$se, tau2 = tau2, i2 = res$I2,
           q = res$QE, pi_lower = tr(pi_lb), pi_upper = tr(pi_ub))
  for (name in names(expected)) {
    d <- got[[name]] - expected[[name]]
    rows[[length(rows) + 1]] <<- data.frame(
      block = id, quantity = name, report = expected[[name]], metafor = got[[name]],
      difference = d, stringsAsFactors = FALSE)
  }
  rows[[length(rows) + 1]] <<- data.frame(
    block = id, quantity = "yi, vi (escalc; max |diff|)", report = NA,
    metafor = NA, difference = yi_diff, stringsAsFactors = FALSE)
  invisible(res)
}
"""

_R_FOOTER = r"""
out <- do.call(rbind, rows)
if (is.null(out)) {
  cat("No pooled results to reproduce.\n")
  quit(status = 0)
}
print(out, row.names = FALSE, digits = 6)
bad <- !is.na(out$difference) & abs(out$difference) > tol
if (any(bad)) {
  cat(sprintf("\nDIFFERENCES larger than %g in %d of %d comparisons.\n",
              tol, sum(bad), sum(!is.na(out$difference))))
  quit(status = 1)
}
cat(sprintf("\nAll %d comparisons agree within %g.\n", sum(!is.na(out$difference)), tol))
"""


#: reproduce.R's note when the plan also has analyses of an imported review
REVMAN_NOT_REFITTED = (
    "The report's analyses of an imported review (RevMan's conventions) are not refitted\n"
    "here: every number RevMan stored for them is compared with trialpool's in\n"
    "tables/revman_audit.csv, and their study rows are in exports/revman_<analysis>.csv."
)


def render_reproduce_r(
    blocks: Sequence[ExportBlock], *, package: str, version: str, note: str | None = None
) -> str:
    """The text of reproduce.R for the given pooled blocks (CSV names relative);
    ``note`` is added to the header as comment lines."""
    parts = [_R_HEADER % {"version": version, "package": _r_comment(package)}]
    if note:
        comment = "".join(f"# {line}\n" for line in note.splitlines())
        parts[0] = parts[0].replace(
            "suppressPackageStartupMessages", comment + "suppressPackageStartupMessages", 1
        )
    for block in blocks:
        r = block.result
        expected = {
            "estimate": r.estimate,
            "ci_lower": r.ci_lower,
            "ci_upper": r.ci_upper,
            "se": r.se,
            "tau2": None if r.method == "MH" else r.tau2,
            "i2": r.i2,
            "q": r.q,
            "pi_lower": r.pi_lower,
            "pi_upper": r.pi_upper,
        }
        items = ", ".join(
            f"{name} = {_r_num(value)}" for name, value in expected.items() if value is not None
        )
        method = "FE" if r.method == "FE" else r.method
        parts.append(
            f"\n# {_r_comment(block.title)}\n"
            f"check({_r_str(block.key)}, {_r_str(block.csv_name)}, "
            f"measure = {_r_str(r.measure)}, method = {_r_str(method)}, "
            f"knha = {'TRUE' if r.hksj else 'FALSE'}, level = {_r_num(r.level)},\n"
            f"      expected = c({items}))\n"
        )
    parts.append(_R_FOOTER)
    return "".join(parts)


def is_ratio(measure: str) -> bool:
    """True for measures pooled on the log scale (RR, OR)."""
    return measure in RATIO_MEASURES
