"""PRISMA 2020 counts and flow diagram.

The screening rows below are SYNTHETIC (invented records), chosen so that every
count can be checked by hand.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.text import Text

from trialpool.report.figures import PrismaCounts, prisma_counts, prisma_flow, save
from trialpool.report.figures.prisma import lead_phrase

NBSP = "\u00a0"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.fixture
def screening() -> pd.DataFrame:
    """Ten synthetic records.

    identification: r10 (duplicate)                      -> removed before screening 1
    screening:      r08 (exclude), r09 (exclude)         -> screened 9, excluded 2
    eligibility:    r04, r05 (exclude, same reason), r06 (exclude, no reason),
                    r07 (ongoing)                        -> assessed 7 (4 + 3), excluded 3
    included:       r01, r02 (same study), r03           -> 2 studies, 3 reports
    """
    rows = [
        ("r01", "syn_a", "journal_article", "review_reference", "included", "include", None),
        ("r02", "syn_a", "registry_record", "registry_search", "included", "include", None),
        ("r03", "syn_b", "journal_article", "database_search", "included", "include", None),
        (
            "r04",
            "syn_c",
            "journal_article",
            "database_search",
            "eligibility",
            "exclude",
            "No control group",
        ),
        (
            "r05",
            "syn_d",
            "conference_abstract",
            "citation_search",
            "eligibility",
            "exclude",
            "No control group",
        ),
        ("r06", "syn_e", "journal_article", "database_search", "eligibility", "exclude", None),
        (
            "r07",
            "syn_f",
            "registry_record",
            "registry_search",
            "eligibility",
            "ongoing",
            "Recruiting",
        ),
        (
            "r08",
            "syn_g",
            "journal_article",
            "database_search",
            "screening",
            "exclude",
            "Animal study",
        ),
        (
            "r09",
            "syn_h",
            "journal_article",
            "database_search",
            "screening",
            "exclude",
            "Animal study",
        ),
        (
            "r10",
            "syn_i",
            "journal_article",
            "database_search",
            "identification",
            "exclude",
            "Duplicate",
        ),
    ]
    cols = ["record_id", "study_id", "record_kind", "identified_via", "stage", "decision", "reason"]
    return pd.DataFrame(rows, columns=cols).astype("string")


def test_counts_by_hand(screening: pd.DataFrame) -> None:
    c = prisma_counts(screening)
    assert isinstance(c, PrismaCounts)
    assert c.identified == 10
    assert c.identified_via == {
        "database_search": 6,
        "registry_search": 2,
        "review_reference": 1,
        "citation_search": 1,
    }
    assert c.record_kind == {"journal_article": 7, "registry_record": 2, "conference_abstract": 1}
    assert c.removed_before_screening == 1
    assert c.removed_reasons == {"Duplicate": 1}
    assert c.screened == 9
    assert c.excluded_screening == 2
    assert c.excluded_screening_reasons == {"Animal study": 2}
    assert c.assessed == 7
    assert c.excluded_eligibility == 3
    assert c.excluded_reasons == {"No control group": 2, "Reason not stated": 1}
    assert c.ongoing == 1 and c.ongoing_reasons == {"Recruiting": 1}
    assert c.awaiting == 0
    assert c.included_studies == 2
    assert c.included_reports == 3
    assert c.database_hits is None and c.register_hits is None
    # the flow adds up: assessed = excluded + awaiting + ongoing + included reports
    assert c.assessed == c.excluded_eligibility + c.awaiting + c.ongoing + c.included_reports


def test_unknown_counts_are_not_reported(screening: pd.DataFrame, tmp_path: Path) -> None:
    no_dups = screening[screening["stage"] != "identification"]
    c = prisma_counts(no_dups)
    assert c.removed_before_screening is None
    fig = prisma_flow(c, title="Synthetic PRISMA")
    content = " ".join(t.get_text() for t in fig.findobj(Text)).replace(NBSP, " ")
    assert "Records removed before screening (n = not reported)" in content
    assert "Database search hits (n = not reported)" in content
    assert "Records screened (n = 9)" in content
    assert "Reports excluded (n = 3)" in content
    assert "No control group (n = 2)" in content
    assert "Studies included in review (n = 2)" in content
    assert "Ongoing studies (n = 1)" in content
    assert "Awaiting classification (n = 0)" in content
    for path in save(fig, tmp_path / "prisma"):
        assert path.stat().st_size > 1000
    w, h = png_size(tmp_path / "prisma.png")
    assert 800 < w < 2000 and 800 < h < 2500


def test_known_totals_are_shown(screening: pd.DataFrame) -> None:
    c = prisma_counts(screening, database_hits=250, register_hits=12, duplicates_removed=40)
    assert c.identified == 50
    assert c.removed_before_screening == 41
    assert c.removed_reasons == {"Duplicate records": 40, "Duplicate": 1}
    content = " ".join(t.get_text() for t in prisma_flow(c).findobj(Text)).replace(NBSP, " ")
    assert "Database search hits (n = 250)" in content
    assert "Register search hits (n = 12)" in content


def test_reasons_shortened_to_lead_phrase() -> None:
    assert lead_phrase("Population: a liver cirrhosis trial, not ACLF; same sponsor.") == (
        "Population"
    )
    assert lead_phrase("Non-randomised (nRCT per a review · Table 1): fails the criterion") == (
        "Non-randomised"
    )
    assert lead_phrase("No control group") == "No control group"
    long = "word " * 30
    short = lead_phrase(long, max_chars=20)
    assert short.endswith("…") and len(short) <= 20
    rows = pd.DataFrame(
        {
            "study_id": ["syn_a", "syn_b", "syn_c"],
            "record_kind": ["journal_article"] * 3,
            "identified_via": ["other"] * 3,
            "stage": ["eligibility"] * 3,
            "decision": ["exclude"] * 3,
            "reason": ["Population: cirrhosis", "Population: hepatitis", "Design: cohort"],
        }
    )
    c = prisma_counts(rows)
    assert c.excluded_reasons == {
        "Design: cohort": 1,
        "Population: cirrhosis": 1,
        "Population: hepatitis": 1,
    }
    short_text = " ".join(t.get_text() for t in prisma_flow(c).findobj(Text)).replace(NBSP, " ")
    assert "Population (n = 2)" in short_text and "Design (n = 1)" in short_text
    full = prisma_flow(c, reasons="full")
    full_text = " ".join(t.get_text() for t in full.findobj(Text)).replace(NBSP, " ")
    assert "Population: cirrhosis (n = 1)" in full_text


def test_bad_stage_is_refused(screening: pd.DataFrame) -> None:
    bad = screening.copy()
    bad.loc[0, "stage"] = "full_text"
    with pytest.raises(ValueError, match="stage"):
        prisma_counts(bad)
    with pytest.raises(ValueError, match="lacks column"):
        prisma_counts(screening.drop(columns=["decision"]))
