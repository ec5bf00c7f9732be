"""Exports: formula-safe CSV, escalc layout, robvis layout, and reproduce.R with metafor."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from trialpool.report.exports import (
    ExportBlock,
    escalc_table,
    neutralise,
    render_reproduce_r,
    robvis_table,
    write_csv,
)
from trialpool.stats.results import NotPooled, PoolResult, StudyEffect

GOLDEN_DATA = Path(__file__).resolve().parents[1] / "golden" / "data"


# --- formula injection -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+SUM(A1:A2)", "'+SUM(A1:A2)"),
        ("-2+3", "'-2+3"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("-", "'-"),
        ("Shi 2012", "Shi 2012"),
        ("-2.5", "-2.5"),  # text that is exactly a number stays a number
        ("+1e-3", "+1e-3"),
        (-2.5, -2.5),
        (3, 3),
        (None, ""),
        (float("nan"), ""),
        (pd.NA, ""),
    ],
)
def test_neutralise(value: object, expected: object) -> None:
    assert neutralise(value) == expected


def test_write_csv_keeps_numbers_numeric(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "x.csv",
        ["label", "yi", "n", "flag"],
        [['=HYPERLINK("http://x")', -2.5, 10, True], ["@A", -0.1 + 0.2, None, False]],
    )
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert rows[1] == ['\'=HYPERLINK("http://x")', "-2.5", "10", "TRUE"]
    assert rows[2][0] == "'@A"
    assert float(rows[2][1]) == -0.1 + 0.2  # full precision (round trip)
    assert rows[2][2] == ""
    frame = pd.read_csv(path)
    assert frame["yi"].dtype.kind == "f"


# --- escalc layout ---------------------------------------------------------------------

# Synthetic inputs (not data): shaped like the engine's results to test the layout.
_SYN_CONT = PoolResult(
    k=2, measure="MD", method="REML", estimate=-1.0, ci_lower=-2.0, ci_upper=0.0, se=0.5,
    zval=-2.0, p_value=0.05, tau2=0.0,
    studies=[
        StudyEffect(study_id="a", label="-A 2020", yi=-1.0, vi=0.25, weight=50.0,
                    arm_data={"m1": 10.0, "sd1": 2.0, "n1": 20, "m2": 11.0, "sd2": 2.0, "n2": 20}),
        StudyEffect(study_id="b", yi=-1.0, vi=0.25, weight=50.0, derived=True,
                    arm_data={"m1": 9.0, "sd1": 2.0, "n1": 20, "m2": 10.0, "sd2": 2.0, "n2": 20}),
    ],
)  # fmt: skip


def test_escalc_table_continuous() -> None:
    header, rows = escalc_table(_SYN_CONT, labels={"b": "B 2021"})
    assert header == ["study", "label", "m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i",
                      "yi", "vi", "weight", "derived", "zero_cell_corrected"]  # fmt: skip
    assert rows[0][:3] == ["a", "-A 2020", 10.0]
    assert rows[1][1] == "B 2021" and rows[1][-2] is True


def test_escalc_table_binary_and_not_pooled() -> None:
    result = NotPooled(
        k=1, measure="RR", method="REML", reason="k = 1",
        studies=[StudyEffect(study_id="lin", yi=-0.5, vi=0.1, weight=0.0,
                             arm_data={"e1": 15, "t1": 56, "e2": 24, "t2": 54})],
    )  # fmt: skip
    header, rows = escalc_table(result)
    assert header[2:6] == ["ai", "n1i", "ci", "n2i"]
    assert rows[0][2:6] == [15, 56, 24, 54]


# --- robvis layout ---------------------------------------------------------------------


def test_robvis_rob1_layout() -> None:
    df = pd.DataFrame(
        {
            "study_id": ["s1", "s1", "s2", "s2"],
            "tool": ["rob1"] * 4,
            "domain": ["random_sequence_generation", "overall", "allocation_concealment",
                       "other_bias"],
            "result_scope": ["all"] * 4,
            "judgement": ["unclear", "high", "low", "some_concerns"],
        }
    )  # fmt: skip
    header, rows = robvis_table(df, "rob1", {"s1": "Study 1", "s2": "Study 2"})
    assert header == [
        "Study", "Random.sequence.generation", "Allocation.concealment",
        "Blinding.of.participants.and.personnel", "Blinding.of.outcome.assessment",
        "Incomplete.outcome.data", "Selective.reporting", "Other.sources.of.bias",
        "Overall", "Weight",
    ]  # fmt: skip
    assert rows[0] == ["Study 1", "Unclear", "", "", "", "", "", "", "High", 1]
    assert rows[1][2] == "Low" and rows[1][7] == "Some concerns" and rows[1][8] == ""


def test_robvis_rob2_and_scopes() -> None:
    df = pd.DataFrame(
        {
            "study_id": ["s1", "s1"],
            "tool": ["rob2", "rob2"],
            "domain": ["randomisation_process", "randomisation_process"],
            "result_scope": ["death", "meld"],
            "judgement": ["low", "no_information"],
        }
    )
    header, rows = robvis_table(df, "rob2", {})
    assert header == ["Study", "D1", "D2", "D3", "D4", "D5", "Overall", "Weight"]
    assert [r[:2] for r in rows] == [["s1 (death)", "Low"], ["s1 (meld)", "No information"]]


def test_robvis_scope_rows_inherit_the_general_judgements() -> None:
    df = pd.DataFrame(
        {
            "study_id": ["s1", "s1", "s1"],
            "tool": ["rob1"] * 3,
            "domain": ["random_sequence_generation", "blinding_outcome_assessment",
                       "blinding_outcome_assessment"],
            "result_scope": ["all", "all", "death"],
            "judgement": ["unclear", "high", "low"],
        }
    )  # fmt: skip
    _, rows = robvis_table(df, "rob1", {"s1": "Study 1"})
    assert rows[0][:5] == ["Study 1", "Unclear", "", "", "High"]
    assert rows[1][:5] == ["Study 1 (death)", "Unclear", "", "", "Low"]


# --- reproduce.R -----------------------------------------------------------------------


def test_reproduce_r_text_is_safe() -> None:
    text = render_reproduce_r(
        [ExportBlock(key='a"b', title="x\ny", csv_name="escalc_a.csv", result=_SYN_CONT)],
        package="p", version="0",
    )  # fmt: skip
    assert 'check("a\\"b", "escalc_a.csv", measure = "MD", method = "REML"' in text
    assert "\n# x y\n" in text
    assert "estimate = -1.0" in text
    # no line break of any kind (CR, U+2028, ...) ends a comment early; long titles cut
    evil = "t\rsystem('rm -rf ~')\u2028q()\x0b" + "z" * 1000
    text = render_reproduce_r(
        [ExportBlock(key="k", title=evil, csv_name="escalc_k.csv", result=_SYN_CONT)],
        package="p\rq()", version="0",
    )  # fmt: skip
    comments = [line for line in text.splitlines() if "system(" in line or "q()" in line]
    assert comments and all(line.startswith("#") for line in comments), comments
    assert "\n# t system('rm -rf ~') q() " in text and "z" * 300 not in text


def _bcg_blocks(tmp_path: Path) -> list[ExportBlock]:
    """Real data: metadat's dat.bcg (Colditz 1994), pooled by trialpool's engine."""
    from trialpool.stats import effects, pooling

    bcg = pd.read_csv(GOLDEN_DATA / "dat.bcg.csv")
    ai, n1 = bcg["tpos"].to_numpy(), (bcg["tpos"] + bcg["tneg"]).to_numpy()
    ci, n2 = bcg["cpos"].to_numpy(), (bcg["cpos"] + bcg["cneg"]).to_numpy()
    es = effects.escalc_binary("RR", ai, n1, ci, n2)
    studies = [
        StudyEffect(study_id=str(t), label=f"{a} {y}", yi=float(es.yi[i]), vi=float(es.vi[i]),
                    weight=0.0,
                    arm_data={"e1": int(ai[i]), "t1": int(n1[i]), "e2": int(ci[i]),
                              "t2": int(n2[i])})
        for i, (t, a, y) in enumerate(zip(bcg["trial"], bcg["author"], bcg["year"], strict=True))
    ]  # fmt: skip
    blocks = []
    for method, hksj in (("REML", False), ("DL", True), ("FE", False)):
        fit = pooling.rma(es.yi, es.vi, method=method, hksj=hksj)
        result = pooling.result_from_fit(fit, measure="RR", studies=studies)
        name = f"escalc_bcg_{method}.csv"
        header, rows = escalc_table(result)
        write_csv(tmp_path / name, header, rows)
        blocks.append(ExportBlock(key=f"bcg-{method}", title="BCG", csv_name=name, result=result))
    mh = pooling.rma_mh(ai, n1, ci, n2, measure="RR")
    result = pooling.result_from_fit(mh, measure="RR", studies=studies)
    header, rows = escalc_table(result)
    write_csv(tmp_path / "escalc_bcg_mh.csv", header, rows)
    blocks.append(ExportBlock(key="bcg-MH", title="BCG", csv_name="escalc_bcg_mh.csv",
                              result=result))  # fmt: skip
    norm = pd.read_csv(GOLDEN_DATA / "dat.normand1999.csv")
    es = effects.escalc_continuous("SMD", norm["m1i"], norm["sd1i"], norm["n1i"], norm["m2i"],
                                   norm["sd2i"], norm["n2i"])  # fmt: skip
    studies = [
        StudyEffect(study_id=str(r.study), label=str(r.source), yi=float(es.yi[i]),
                    vi=float(es.vi[i]), weight=0.0,
                    arm_data={"m1": r.m1i, "sd1": r.sd1i, "n1": r.n1i, "m2": r.m2i,
                              "sd2": r.sd2i, "n2": r.n2i})
        for i, r in enumerate(norm.itertuples())
    ]  # fmt: skip
    fit = pooling.rma(es.yi, es.vi, method="PM")
    result = pooling.result_from_fit(fit, measure="SMD", studies=studies)
    header, rows = escalc_table(result)
    write_csv(tmp_path / "escalc_normand.csv", header, rows)
    blocks.append(ExportBlock(key="normand-PM", title="Normand", csv_name="escalc_normand.csv",
                              result=result))  # fmt: skip
    return blocks


def _metafor_available() -> bool:
    if shutil.which("Rscript") is None:
        return False
    done = subprocess.run(["Rscript", "-e", "library(metafor)"], capture_output=True, check=False)
    return done.returncode == 0


@pytest.mark.live_r
def test_reproduce_r_agrees_with_metafor(tmp_path: Path) -> None:
    if not _metafor_available():
        pytest.skip("Rscript with metafor is not installed")
    blocks = _bcg_blocks(tmp_path)
    script = tmp_path / "reproduce.R"
    script.write_text(render_reproduce_r(blocks, package="metadat", version="t"), "utf-8")
    done = subprocess.run(
        ["Rscript", str(script)], capture_output=True, text=True, check=False, cwd="/"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "comparisons agree within" in done.stdout


@pytest.mark.live_r
def test_reproduce_r_reports_a_difference(tmp_path: Path) -> None:
    if not _metafor_available():
        pytest.skip("Rscript with metafor is not installed")
    blocks = _bcg_blocks(tmp_path)[:1]
    wrong = blocks[0].result.model_copy(update={"estimate": blocks[0].result.estimate + 0.01})
    blocks = [ExportBlock(key="x", title="x", csv_name=blocks[0].csv_name, result=wrong)]
    script = tmp_path / "reproduce.R"
    script.write_text(render_reproduce_r(blocks, package="metadat", version="t"), "utf-8")
    done = subprocess.run(["Rscript", str(script)], capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert "DIFFERENCES larger than" in done.stdout
