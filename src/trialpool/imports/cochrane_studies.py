"""The study files of a Cochrane data package (part of
:mod:`trialpool.imports.cochrane_package`).

Read here, by the methods of ``_StudyFiles`` (the base of the package reader, which also
holds the reader's state and its file and error helpers):

* ``*-study-information.csv`` and the ``*-excluded-``, ``*-awaiting-``, ``*-ongoing-``
  variants: studies by status, "ID: …" identifier and "Char: …" characteristic columns;
* ``*-risk-of-bias.csv``: "Domain (judgement): …"/"Domain (support): …" per study (the
  judgement and item helpers also serve the per-analysis RoB 2 columns of the data rows);
* ``*-study-arms.csv`` (optional): arms per study;
* ``*-included.ris`` (and excluded/awaiting/ongoing): references, matched by "NS" (name).

Files come from RevMan Web's data package export; HTML in labels and text is stripped
to plain text.
"""

from __future__ import annotations

import re
from collections import defaultdict

from trialpool.errors import ImportSourceError
from trialpool.imports.log import ImportLog
from trialpool.imports.model import (
    BiasDomain,
    BiasItem,
    Judgement,
    ReviewArm,
    ReviewReference,
    ReviewStudy,
    StudyStatus,
    judgement_from_label,
)
from trialpool.imports.safety import (
    CsvTable,
    cell,
    decode_text,
    fail,
    html_to_text,
    normalise_header,
    optional_text,
    parse_year,
    snake,
)

_IDENTIFIER_KEYS = {"pubmed": "pmid", "medline": "pmid", "clinicaltrials_gov": "ctg"}
_ROB_COLUMN = re.compile(r"^(?:domain\s*)?\((judgement|support)\)\s*:\s*(.+)$", re.IGNORECASE)
_ROB_SUFFIX = re.compile(r"^(.+?)\s*\((judgement|support)\)$", re.IGNORECASE)
_RIS_LINE = re.compile(r"^([A-Z][A-Z0-9])  -(?: ?(.*))?$")


class _StudyFiles:
    """The reader's state (set by ``_Package.__init__``), its helpers and the study files."""

    source: str
    notes: list[str]
    log: ImportLog
    used: dict[str, str]
    files: dict[str, tuple[str, bytes]]
    domains: dict[str, BiasDomain]
    items: list[BiasItem]
    seen_items: set[tuple[str, str, str | None, str | None, str | None, str | None]]

    # ------------------------------------------------------------------ helpers

    def table(self, kind: str) -> tuple[CsvTable, str] | None:
        entry = self.files.get(kind)
        if entry is None:
            return None
        path, data = entry
        name = path.rsplit("/", 1)[-1]
        label = f"{self.source}: {name}"
        return CsvTable(self.text(data, name), label), name

    def text(self, data: bytes, name: str) -> str:
        """A package file's text: UTF-8 (or UTF-16 with a BOM) as RevMan Web writes it;
        other bytes are read as Windows-1252 (cp1252), and logged."""
        try:
            return decode_text(data, f"{self.source}: {name}")
        except ImportSourceError as exc:
            self.logged(
                name,
                None,
                "encoding",
                str(exc).rsplit(": ", 1)[-1],
                "the file was read as Windows-1252 (cp1252)",
            )
            return decode_text(data, f"{self.source}: {name}", fallback="cp1252")

    def error(self, name: str, row: int | None, problem: str) -> ImportSourceError:
        return fail(self.source, f"{name} row {row}" if row else name, problem)

    def logged(self, name: str, row: int | None, field: str, value: object, action: str) -> None:
        """One line of the import log about ``name`` (a file of the package), ``row``."""
        self.log.add(f"row {row}" if row else "", field, value, action, file=name)

    # ------------------------------------------------------------------ studies

    def studies(self) -> list[ReviewStudy]:
        studies: list[ReviewStudy] = []
        seen: dict[str, str] = {}
        statuses: tuple[StudyStatus, ...] = ("included", "excluded", "awaiting", "ongoing")
        for status in statuses:
            loaded = self.table(f"info:{status}")
            if loaded is None:
                continue
            table, name = loaded
            study_col = table.require("Study")
            year_col = table.column("Year")
            source_col = table.column("Data source")
            ids: list[tuple[int, str]] = []
            chars: list[tuple[int, str]] = []
            for position, header in enumerate(table.header):
                prefix, _, rest = header.partition(":")
                key = normalise_header(prefix)
                if key == "id" and rest.strip():
                    kind = snake(rest)
                    ids.append((position, _IDENTIFIER_KEYS.get(kind, kind)))
                elif key == "char" and rest.strip():
                    chars.append((position, snake(rest)))
            for row, record in table.rows():
                raw = cell(record, study_col)
                if raw is None:
                    raise self.error(name, row, "no Study name")
                study_id = " ".join(raw.split())
                locator = f"{name} row {row}"
                if study_id in seen:
                    self.logged(
                        name,
                        row,
                        "Study",
                        study_id,
                        f"already listed in {seen[study_id]}; this row is left out",
                    )
                    continue
                seen[study_id] = locator
                identifiers = {
                    key: " ".join(value.split())
                    for position, key in ids
                    if (value := cell(record, position)) is not None
                }
                characteristics = {
                    key: text
                    for position, key in chars
                    if (text := optional_text(cell(record, position))) is not None
                }
                reason = characteristics.pop("reason_for_exclusion", None)
                studies.append(
                    ReviewStudy(
                        study_id=study_id,
                        label=html_to_text(raw).replace("\n", " ") or study_id,
                        year=parse_year(cell(record, year_col)),
                        status=status,
                        identifiers=identifiers,
                        characteristics=characteristics,
                        exclusion_reason=reason,
                        data_source=cell(record, source_col),
                        locator=locator,
                    )
                )
        return studies

    def arms(self) -> dict[str, list[ReviewArm]]:
        out: dict[str, list[ReviewArm]] = defaultdict(list)
        loaded = self.table("arms")
        if loaded is None:
            return out
        table, name = loaded
        study_col = table.require("Study")
        arm_col = table.require("Arm")
        description_col = table.column("Description")
        intervention_col = table.column("Intervention")
        for row, record in table.rows():
            raw = cell(record, study_col)
            arm = optional_text(cell(record, arm_col))
            if raw is None or arm is None:
                raise self.error(name, row, "needs a Study and an Arm")
            study_id = " ".join(raw.split())
            self.used.setdefault(study_id, f"{name} row {row}")
            out[study_id].append(
                ReviewArm(
                    name=arm,
                    description=optional_text(cell(record, description_col)),
                    intervention=optional_text(cell(record, intervention_col)),
                )
            )
        return out

    def references(self, studies: list[ReviewStudy]) -> dict[str, list[ReviewReference]]:
        out: dict[str, list[ReviewReference]] = defaultdict(list)
        names = {study.study_id for study in studies}
        unmatched = 0
        for status in ("included", "excluded", "awaiting", "ongoing"):
            entry = self.files.get(f"ris:{status}")
            if entry is None:
                continue
            path, data = entry
            for record in _parse_ris(self.text(data, path.rsplit("/", 1)[-1])):
                study = " ".join(" ".join(record.get("NS", [])).split())
                if not study or study not in names:
                    unmatched += 1
                    continue
                out[study].append(_reference(record))
        if unmatched:
            self.notes.append(
                f"{unmatched} RIS references name no listed study (their NS field) and were "
                "left out"
            )
        return out

    # ------------------------------------------------------------------ risk of bias

    def judgement(
        self, name: str, row: int, column: str, value: str | None
    ) -> tuple[Judgement | None, str] | None:
        """(judgement, label as written), or None for an empty cell; a label without a
        faithful mapping gives (None, label) and a line of the import log."""
        if value is None:
            return None
        label = html_to_text(value)
        if not label:
            return None
        judgement = judgement_from_label(label)
        if judgement is None:
            self.logged(
                name,
                row,
                column,
                label,
                "not a judgement trialpool knows and no faithful mapping: kept verbatim as a "
                "claim, not as a judgement",
            )
        elif judgement in ("not_applicable", "moderate", "serious", "critical", "no_information"):
            self.logged(name, row, column, label, f"read as the judgement {judgement}")
        return judgement, label

    def add_item(
        self,
        study_id: str,
        domain: str,
        group: str | None,
        judged: tuple[Judgement | None, str],
        support: str | None,
        locator: str,
        analysis: str | None = None,
    ) -> None:
        judgement, label = judged
        key = (study_id, domain, group, analysis, judgement or label, support)
        if key in self.seen_items:
            return
        self.seen_items.add(key)
        self.used.setdefault(study_id, locator)
        self.items.append(
            BiasItem(
                study_id=study_id,
                domain_id=domain,
                judgement=judgement,
                support=support,
                outcome_group=group,
                locator=locator,
                analysis=analysis,
                label=label,
            )
        )

    def add_domain(self, domain: str, by_outcome: bool) -> None:
        known = self.domains.get(domain)
        if known is None or (by_outcome and not known.by_outcome):
            self.domains[domain] = BiasDomain(
                domain_id=domain, label=domain, description=None, by_outcome=by_outcome
            )

    def risk_of_bias(self) -> None:
        loaded = self.table("rob")
        if loaded is None:
            return
        table, name = loaded
        study_col = table.require("Study")
        columns: dict[tuple[str, str | None], dict[str, int]] = defaultdict(dict)
        for position, header in enumerate(table.header):
            parsed = _rob_column(header)
            if parsed is None:
                continue
            kind, text = parsed
            domain, _, group = text.partition(": ")
            columns[(domain.strip(), group.strip() or None)][kind] = position
        for domain, group in columns:
            self.add_domain(domain, group is not None)
        for row, record in table.rows():
            raw = cell(record, study_col)
            if raw is None:
                raise self.error(name, row, "no Study name")
            study_id = " ".join(raw.split())
            for (domain, group), where in columns.items():
                header = table.header[where.get("judgement", where.get("support", 0))]
                judged = self.judgement(name, row, header, cell(record, where.get("judgement")))
                if judged is None:
                    continue
                support = optional_text(cell(record, where.get("support")))
                self.add_item(study_id, domain, group, judged, support, f"{name} row {row}")


def _rob_column(header: str) -> tuple[str, str] | None:
    """("judgement" | "support", "<domain>[: <group>]") of a risk-of-bias column."""
    match = _ROB_COLUMN.match(header.strip())
    if match:
        return match.group(1).lower(), match.group(2).strip()
    match = _ROB_SUFFIX.match(header.strip())
    if match and normalise_header(match.group(1)) != "study":
        return match.group(2).lower(), match.group(1).strip()
    return None


def _parse_ris(text: str) -> list[dict[str, list[str]]]:
    records: list[dict[str, list[str]]] = []
    current: dict[str, list[str]] | None = None
    last: str | None = None
    for line in text.splitlines():
        match = _RIS_LINE.match(line.rstrip())
        if match:
            tag, value = match.group(1), (match.group(2) or "").strip()
            if tag == "ER":
                current, last = None, None
                continue
            if tag == "TY" or current is None:
                current = {}
                records.append(current)
            current.setdefault(tag, []).append(value)
            last = tag
        elif line.strip() and current is not None and last is not None:
            current[last][-1] = f"{current[last][-1]} {line.strip()}".strip()
    return records


def _reference(record: dict[str, list[str]]) -> ReviewReference:
    def first(*tags: str) -> str | None:
        for tag in tags:
            for value in record.get(tag, []):
                text = html_to_text(value).replace("\n", " ")
                if text:
                    return text
        return None

    identifiers: dict[str, str] = {}
    doi = first("DO")
    if doi:
        identifiers["doi"] = doi
    for value in record.get("C3", []) + record.get("AN", []):
        kind, _, rest = value.strip().partition(" ")
        if kind.upper() in {"CRS", "PMID", "PUBMED"} and rest.strip():
            key = "crs" if kind.upper() == "CRS" else "pmid"
            identifiers.setdefault(key, rest.strip())
    start, end = first("SP"), first("EP")
    pages = f"{start}-{end}" if start and end else start
    year_text = first("PY", "Y1", "DA")
    year = parse_year(year_text)
    return ReviewReference(
        title=first("TI", "T1"),
        authors=tuple(
            author
            for value in record.get("AU", []) + record.get("A1", [])
            if (author := " ".join(value.split()))
        ),
        source=first("JF", "JO", "T2", "JA", "BT"),
        year=str(year) if year else year_text,
        volume=first("VL"),
        issue=first("IS"),
        pages=pages,
        identifiers=identifiers,
        kind=first("TY"),
    )
