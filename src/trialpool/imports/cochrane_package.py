"""Reads a Cochrane data package (RevMan Web export; a folder or a zip, already unpacked by
:mod:`trialpool.imports.safety` into path -> bytes) into a
:class:`~trialpool.imports.model.Review`.

Files read, found by name suffix anywhere in the package:

* ``*-overall-estimates-and-settings.csv``: one row per analysis, its settings and
  RevMan's overall results and test for subgroup differences;
* ``*-data-rows.csv``: one row per study and analysis, with the data, RevMan's per-study
  estimate, CI and weight, the "Applicability" of the row, footnotes, and (RoB 2 reviews)
  risk-of-bias judgements per analysis in "<domain> (judgement)"/"(support)" columns;
* ``*-subgroup-estimates.csv`` (optional): RevMan's results per subgroup;
* ``*-study-information.csv`` and the ``*-excluded-``, ``*-awaiting-``, ``*-ongoing-``
  variants: studies by status, "ID: …" identifier and "Char: …" characteristic columns;
* ``*-risk-of-bias.csv``: "Domain (judgement): …"/"Domain (support): …" per study;
* ``*-study-arms.csv`` (optional): arms per study;
* ``*-included.ris`` (and excluded/awaiting/ongoing): references, matched by "NS" (name).

Columns are found by normalised name with aliases (RevMan Web changed them between
years: "Study CI"/"Estimate CI" became "CI/PI level", the heterogeneity estimator, CI
method and prediction interval columns were added in 2024). ``#N/A`` and empty cells are
missing; HTML in labels and text is stripped to plain text.

Not read: ``*-study-results.csv`` (arm-level results outside the analyses; counted in
``Review.notes``), the JSON copies, ``*-data-package-info.html`` and other references.
Diagnostic test accuracy packages (``*-parameters.csv``) are refused.

The reader is split by job: this module finds the files and assembles the review;
:mod:`trialpool.imports.cochrane_analyses` reads the analysis files (settings, data rows,
subgroup estimates) and :mod:`trialpool.imports.cochrane_studies` the study files (study
information, risk of bias, study arms, RIS references). ``_Package`` extends
``_AnalysisFiles``, which extends ``_StudyFiles`` (the study files, the reader's state
and its file, error and risk-of-bias helpers).
"""

from __future__ import annotations

import dataclasses
import re

from trialpool.imports.cochrane_analyses import _AnalysisFiles
from trialpool.imports.log import ImportLog
from trialpool.imports.model import BiasDomain, BiasItem, Review, complete_studies
from trialpool.imports.safety import fail

#: (file-name suffix, kind); more specific suffixes first
_FILE_KINDS: tuple[tuple[str, str], ...] = (
    ("-excluded-study-information.csv", "info:excluded"),
    ("-awaiting-study-information.csv", "info:awaiting"),
    ("-ongoing-study-information.csv", "info:ongoing"),
    ("-study-information.csv", "info:included"),
    ("-overall-estimates-and-settings.csv", "settings"),
    ("-data-rows.csv", "rows"),
    ("-subgroup-estimates.csv", "subgroups"),
    ("-risk-of-bias.csv", "rob"),
    ("-study-arms.csv", "arms"),
    ("-study-results.csv", "results"),
    ("-included.ris", "ris:included"),
    ("-excluded.ris", "ris:excluded"),
    ("-awaiting.ris", "ris:awaiting"),
    ("-ongoing.ris", "ris:ongoing"),
    ("-parameters.csv", "dta"),
    ("-study-test-data.csv", "dta"),
)
_REVIEW_ID = re.compile(r"^((?:CD|MR)\d{6})")


def package_file_kind(path: str) -> str | None:
    """What a data-package file is, from its name; None for files the reader ignores."""
    name = path.rsplit("/", 1)[-1].lower()
    for suffix, kind in _FILE_KINDS:
        if name.endswith(suffix):
            return kind
    return None


def holds_package(files: dict[str, bytes]) -> bool:
    """True when the files include a data package's analysis or study-information CSVs."""
    kinds = {package_file_kind(path) for path in files}
    return bool(kinds & {"settings", "rows", "info:included", "dta"})


def read_package(files: dict[str, bytes], source: str) -> Review:
    """Read the (already safely unpacked) files of one data package."""
    return _Package(files, source).read()


class _Package(_AnalysisFiles):
    def __init__(self, files: dict[str, bytes], source: str) -> None:
        self.source = source
        self.notes: list[str] = []
        self.log = ImportLog(source)
        self.used: dict[str, str] = {}
        self.skipped: set[tuple[int, int]] = set()
        self.files: dict[str, tuple[str, bytes]] = {}
        for path in sorted(files):
            kind = package_file_kind(path)
            if kind is None:
                continue
            if kind == "dta":
                raise fail(
                    source,
                    path.rsplit("/", 1)[-1],
                    "a diagnostic test accuracy data package; only intervention reviews "
                    "are supported",
                )
            if kind in self.files:
                raise fail(
                    source,
                    None,
                    f"holds more than one data package ({self.files[kind][0]} and {path})",
                )
            self.files[kind] = (path, files[path])
        self.domains: dict[str, BiasDomain] = {}
        self.items: list[BiasItem] = []
        self.seen_items: set[tuple[str, str, str | None, str | None, str | None, str | None]] = (
            set()
        )

    # ------------------------------------------------------------------ review

    def read(self) -> Review:
        if not ({"settings", "rows", "info:included"} & self.files.keys()):
            raise fail(
                self.source,
                None,
                "no Cochrane data package files (*-overall-estimates-and-settings.csv, "
                "*-data-rows.csv, *-study-information.csv)",
            )
        if ("settings" in self.files) != ("rows" in self.files):
            missing = "settings" if "rows" in self.files else "rows"
            suffix = dict((kind, suffix) for suffix, kind in _FILE_KINDS)[missing]
            present = self.files["rows" if missing == "settings" else "settings"][0]
            self.log.add(
                "",
                "",
                f"no *{suffix}",
                "the analyses' data rows are missing: analyses imported without study rows"
                if missing == "rows"
                else "the analyses' settings are missing: their data rows are not imported",
                file=present.rsplit("/", 1)[-1],
            )
        review_id = None
        for path, _ in self.files.values():
            match = _REVIEW_ID.match(path.rsplit("/", 1)[-1])
            if match:
                review_id = match.group(1)
                break
        studies = self.studies()
        self.risk_of_bias()
        analyses = self.analyses()
        arms = self.arms()
        references = self.references(studies)
        results = self.table("results")
        if results is not None:
            count = sum(1 for _ in results[0].rows())
            if count:
                self.log.add(
                    f"{count} rows",
                    "",
                    "",
                    "study results outside the analyses (arm-level results the review did not "
                    "pool) are not imported; the analyses' own data rows are",
                    file=results[1],
                )
        if "settings" not in self.files and "rows" not in self.files:
            self.notes.append("the data package holds no analyses (study data only)")
        completed = complete_studies(studies, self.used, self.notes)
        completed = [
            dataclasses.replace(
                study,
                arms=tuple(arms.get(study.study_id, ())),
                references=tuple(references.get(study.study_id, ())),
            )
            for study in completed
        ]
        return Review(
            source_file=self.source,
            format="cochrane_data_package",
            review_id=review_id,
            title=None,
            citation=None,
            studies=tuple(completed),
            analyses=tuple(analyses),
            bias_domains=tuple(self.domains.values()),
            bias_items=tuple(self.items),
            notes=tuple(self.notes),
            log=tuple(self.log.entries),
        )
