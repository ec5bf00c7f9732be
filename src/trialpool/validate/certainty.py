"""The GRADE rules of the ``certainty`` resource: the overall rating follows from its parts.

The GRADE approach (GRADE Handbook, Schünemann H, Brożek J, Guyatt G, Oxman A, eds;
updated October 2013; section 5 "Quality of evidence") rates the certainty of each result
from a starting level set by the design (5.1: randomised trials start high,
non-randomised studies low), down one level for each serious and two for each very
serious concern in five domains (5.2: risk of bias, inconsistency, indirectness,
imprecision, publication bias), and up for a large effect (one or two levels), a
dose-response gradient or plausible residual confounding (5.3: one level each). The
result is one of four levels, never below very low nor above high.

GRADE calls the rating a judgement, not a sum, and lets raters combine two borderline
concerns into one step. The data must then record the step in the domain it is taken
for, so that the ratings stored always add up: this module checks that they do, and that
every step has its reason (the summary of findings prints the reasons as footnotes).

Rules (``CERTAINTY_RULES``), run after Table Schema on the typed rows of ``certainty``:

* ``certainty-mismatch``: the overall ``certainty`` differs from the one the start and the
  domains give (the message shows the arithmetic);
* ``certainty-reason-missing``: a domain rated down (serious, very_serious) or up (other
  than none) has no reason.

Values outside the vocabulary are Table Schema's to report; such a row is skipped here.
:func:`derive` is also what the report uses to explain a rating.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from trialpool.package.loader import Package
from trialpool.validate.issues import Collector

RESOURCE = "certainty"

#: one line per rule: what it checks
CERTAINTY_RULES: dict[str, str] = {
    "certainty-mismatch": "certainty: the overall certainty follows from the start "
    "(randomised trials high, non-randomised studies low) and the domains (serious -1, "
    "very_serious -2, rating up +1/+2; floor very_low, cap high); GRADE Handbook section 5",
    "certainty-reason-missing": "certainty: a domain rated down (serious, very_serious) or up "
    "(other than none) states its reason in <domain>_reason",
}

#: the four levels, lowest first (GRADE Handbook 5.1)
LEVELS: tuple[str, ...] = ("very_low", "low", "moderate", "high")

#: where the rating starts, by the design of the studies (GRADE Handbook 5.1)
START: dict[str, str] = {"randomised": "high", "non_randomised": "low"}

#: the domains for rating down (GRADE Handbook 5.2), in the Handbook's order, with labels
DOWN_DOMAINS: dict[str, str] = {
    "risk_of_bias": "Risk of bias",
    "inconsistency": "Inconsistency",
    "indirectness": "Indirectness",
    "imprecision": "Imprecision",
    "publication_bias": "Publication bias",
}

#: levels each rating-down value takes off
DOWN_STEPS: dict[str, int] = {"not_serious": 0, "serious": 1, "very_serious": 2}

#: the domains for rating up (GRADE Handbook 5.3), with labels
UP_DOMAINS: dict[str, str] = {
    "large_effect": "Large effect",
    "dose_response": "Dose-response gradient",
    "plausible_confounding": "Plausible confounding",
}

#: levels each rating-up value adds, per domain
UP_STEPS: dict[str, dict[str, int]] = {
    "large_effect": {"none": 0, "large": 1, "very_large": 2},
    "dose_response": {"none": 0, "gradient": 1},
    "plausible_confounding": {
        "none": 0,
        "would_reduce_demonstrated_effect": 1,
        "would_suggest_spurious_effect": 1,
    },
}


@dataclass(frozen=True)
class Derivation:
    """How a rating follows from its parts: the start, each step, and the level reached."""

    study_design: str
    start: str
    steps: tuple[tuple[str, str, int], ...]  # (domain, value, levels: -2..+2), non-zero only
    certainty: str

    def text(self) -> str:
        """The arithmetic in words: ``start high (randomised); imprecision very_serious -2;
        = low``."""
        parts = [f"start {self.start} ({self.study_design})"]
        parts += [f"{domain} {value} {levels:+d}" for domain, value, levels in self.steps]
        return "; ".join(parts) + f"; = {self.certainty}"


def _value(row: Mapping[str, Any], name: str) -> str | None:
    value = row.get(name)
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip()
    return text or None


def derive(row: Mapping[str, Any]) -> Derivation | None:
    """The certainty a row's start and domains give; None when a value is missing or not
    in the vocabulary (Table Schema reports those)."""
    design = _value(row, "study_design")
    if design not in START:
        return None
    level = LEVELS.index(START[design])
    steps: list[tuple[str, str, int]] = []
    for domain in DOWN_DOMAINS:
        value = _value(row, domain)
        if value not in DOWN_STEPS:
            return None
        if DOWN_STEPS[value]:
            steps.append((domain, value, -DOWN_STEPS[value]))
    for domain, table in UP_STEPS.items():
        value = _value(row, domain)
        if value not in table:
            return None
        if table[value]:
            steps.append((domain, value, table[value]))
    reached = min(max(level + sum(s[2] for s in steps), 0), len(LEVELS) - 1)
    return Derivation(design, START[design], tuple(steps), LEVELS[reached])


def missing_reasons(row: Mapping[str, Any]) -> list[str]:
    """The domains rated down or up whose ``<domain>_reason`` is empty."""
    missing: list[str] = []
    for domain in DOWN_DOMAINS:
        if DOWN_STEPS.get(_value(row, domain) or "", 0) and _value(row, f"{domain}_reason") is None:
            missing.append(domain)
    for domain, table in UP_STEPS.items():
        if table.get(_value(row, domain) or "", 0) and _value(row, f"{domain}_reason") is None:
            missing.append(domain)
    return missing


def certainty_rules(package: Package, frames: dict[str, pd.DataFrame], out: Collector) -> None:
    """Check every row of ``certainty`` (when the package has it); collect into ``out``."""
    frame = frames.get(RESOURCE)
    if frame is None or frame.empty:
        return
    for position, row in enumerate(frame.to_dict("records")):
        line = Package.row_number(position)
        where = _value(row, "analysis_id") or "?"
        timepoint = _value(row, "timepoint")
        if timepoint:
            where += f" ({timepoint})"
        for domain in missing_reasons(row):
            out.add(
                RESOURCE,
                line,
                f"{domain}_reason",
                "certainty-reason-missing",
                f"{domain} of {where} is {_value(row, domain)}: say why in {domain}_reason "
                "(the summary of findings prints it as a footnote)",
            )
        derived = derive(row)
        stated = _value(row, "certainty")
        if derived is None or stated not in LEVELS or stated == derived.certainty:
            continue
        out.add(
            RESOURCE,
            line,
            "certainty",
            "certainty-mismatch",
            f"certainty of {where} is {stated} but its ratings give {derived.certainty} "
            f"({derived.text()}); correct the certainty or the domain ratings",
        )
