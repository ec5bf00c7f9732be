"""Render every figure type of trialpool.report.figures into a folder for visual checking.

    python scripts/demo_plots.py [--out /tmp/plots_demo] [--package datapackage.json]

All inputs built here are SYNTHETIC: invented numbers, labelled as such in every
title, used only to exercise the layouts (many studies, long labels, zero cells, CIs
far outside the axis, k = 1). They are not trial data and must never be read as such.
With ``--package``, the risk-of-bias and PRISMA figures are also drawn from the
package's ``bias_judgements`` and ``screening`` resources when these have rows.
The output folder is for looking at, not for committing.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pandas as pd

from trialpool.report.figures import (
    forest_plot,
    funnel_plot,
    prisma_counts,
    prisma_flow,
    rob_graph,
    rob_summary,
    save,
)
from trialpool.stats import effects, pooling
from trialpool.stats.results import NotPooled, PoolResult, StudyEffect, SubgroupResult

SYN = "SYNTHETIC EXAMPLE: "


def _dl_pool(studies: list[StudyEffect], measure: str, *, hksj: bool = False) -> PoolResult:
    """Pool synthetic effects with the engine (DerSimonian-Laird)."""
    yi = np.array([s.yi for s in studies])
    vi = np.array([s.vi for s in studies])
    fit = pooling.rma(yi, vi, method="DL", hksj=hksj)
    return pooling.result_from_fit(fit, measure=measure, studies=studies)


def _md_study(
    sid: str,
    label: str,
    m1: float,
    sd1: float,
    n1: int,
    m2: float,
    sd2: float,
    n2: int,
    derived: bool = False,
) -> StudyEffect:
    es = effects.escalc_continuous("MD", [m1], [sd1], [n1], [m2], [sd2], [n2])
    return StudyEffect(
        study_id=sid,
        label=label,
        yi=float(es.yi[0]),
        vi=float(es.vi[0]),
        weight=0.0,
        derived=derived,
        arm_data={"m1": m1, "sd1": sd1, "n1": n1, "m2": m2, "sd2": sd2, "n2": n2},
    )


def _rr_study(sid: str, label: str, e1: int, t1: int, e2: int, t2: int) -> StudyEffect:
    es = effects.escalc_binary("RR", [e1], [t1], [e2], [t2])
    return StudyEffect(
        study_id=sid,
        label=label,
        yi=float(es.yi[0]),
        vi=float(es.vi[0]),
        weight=0.0,
        zero_cell_corrected=bool(es.zero_cell_corrected[0]),
        arm_data={"e1": e1, "t1": t1, "e2": e2, "t2": t2},
    )


def synthetic_forests(out: Path) -> list[Path]:
    """Forest plots from synthetic inputs."""
    written: list[Path] = []
    meld = [
        _md_study("syn_a", "Synthetic A 2011", 18.2, 5.1, 24, 21.9, 6.0, 23),
        _md_study("syn_b", "Synthetic B 2014", 20.5, 7.4, 56, 22.1, 7.9, 54, derived=True),
        _md_study("syn_c", "Synthetic C 2017", 16.9, 4.2, 30, 19.8, 4.9, 31),
        _md_study("syn_d", "Synthetic D 2020", 22.3, 8.8, 15, 21.7, 9.1, 14),
        _md_study("syn_e", "Synthetic E 2023", 17.4, 5.5, 40, 20.6, 5.2, 40),
    ]
    res = _dl_pool(meld, "MD", hksj=True)
    fig = forest_plot(
        [(None, res)],
        measure="MD",
        outcome_label=SYN + "MELD score",
        unit="points",
        lower_is_better=True,
    )
    written += save(fig, out / "forest_md_simple")

    # subgroups by time point, one not pooled (k = 1), higher is better
    g4 = [
        _md_study("syn_a", "Synthetic A 2011", 31.2, 3.9, 24, 29.8, 4.4, 23),
        _md_study("syn_c", "Synthetic C 2017", 32.0, 4.5, 30, 30.1, 4.0, 31),
        _md_study("syn_e", "Synthetic E 2023", 30.4, 3.2, 40, 30.0, 3.6, 40),
    ]
    g12 = [
        _md_study("syn_b", "Synthetic B 2014", 33.5, 4.1, 50, 31.0, 4.6, 49),
        _md_study("syn_d", "Synthetic D 2020", 32.8, 5.0, 15, 32.9, 5.3, 14, derived=True),
    ]
    g24 = [_md_study("syn_f", "Synthetic F 2019", 34.0, 4.4, 20, 31.5, 4.8, 20)]
    r4, r12 = _dl_pool(g4, "MD"), _dl_pool(g12, "MD")
    np24 = NotPooled(
        k=1,
        measure="MD",
        method="DL",
        reason="k = 1: not pooled",
        studies=g24,
        missing=["a second study reporting albumin at 24 weeks"],
    )
    sg = SubgroupResult(
        variable="timepoint_weeks",
        groups={"4 weeks": r4, "12 weeks": r12, "24 weeks": np24},
        q_between=1.37,
        q_between_df=1,
        q_between_p=0.242,
    )
    fig = forest_plot(
        sg,
        measure="MD",
        outcome_label=SYN + "albumin by time point",
        unit="g/L",
        lower_is_better=False,
    )
    written += save(fig, out / "forest_md_subgroups")

    death = [
        _rr_study("syn_a", "Synthetic A 2011", 3, 24, 7, 23),
        _rr_study("syn_b", "Synthetic B 2014", 10, 56, 15, 54),
        _rr_study("syn_c", "Synthetic C 2017", 0, 30, 4, 31),
        _rr_study("syn_d", "Synthetic D 2020", 5, 15, 5, 14),
    ]
    res = _dl_pool(death, "RR")
    fig = forest_plot(
        [(None, res)], measure="RR", outcome_label=SYN + "death at 12 weeks", lower_is_better=True
    )
    written += save(fig, out / "forest_rr")

    rng = np.random.default_rng(20250)
    many = []
    for i in range(40):
        n = int(rng.integers(10, 120))
        label = f"Synthetic study {i + 1:02d} 20{10 + i % 15}"
        if i == 7:
            label = (
                "Synthetic multicentre study with an exceptionally long label "
                "(Beijing, Shanghai, Guangzhou) 2018"
            )
        yi = float(rng.normal(-0.3, 0.35))
        vi = 4 / n + yi**2 / (4 * n)
        if i == 11:
            vi = 2.5  # CI far outside the axis
        many.append(StudyEffect(study_id=f"s{i}", label=label, yi=yi, vi=vi, weight=0.0))
    res = _dl_pool(many, "SMD")
    res = res.model_copy(
        update={"notes": ["Synthetic inputs generated at random to test the layout with k = 40."]}
    )
    fig = forest_plot(
        [(None, res)], measure="SMD", outcome_label=SYN + "k = 40 layout test", lower_is_better=True
    )
    written += save(fig, out / "forest_smd_k40")

    single = NotPooled(
        k=1,
        measure="OR",
        method="MH",
        reason="k = 1: not pooled",
        studies=[_rr_study("syn_g", "Synthetic G 2016", 2, 20, 1, 20)],
    )
    fig = forest_plot(
        [("Severe infection", single)],
        measure="OR",
        outcome_label=SYN + "severe infection",
        lower_is_better=True,
    )
    written += save(fig, out / "forest_or_not_pooled")
    empty = NotPooled(
        k=0,
        measure="MD",
        method="REML",
        reason="no extractable data yet",
        missing=["per-arm mean and SD of CHE for any study"],
    )
    fig = forest_plot(
        [(None, empty)],
        measure="MD",
        outcome_label=SYN + "cholinesterase",
        unit="U/L",
        lower_is_better=False,
    )
    written += save(fig, out / "forest_md_no_data")
    return written


def synthetic_rob() -> dict[str, pd.DataFrame]:
    """Long-form synthetic judgements for rob1, rob2 and robins_i."""
    rows = []
    rob1_domains = [
        "random_sequence_generation",
        "allocation_concealment",
        "blinding_participants_personnel",
        "blinding_outcome_assessment",
        "incomplete_outcome_data",
        "selective_reporting",
        "other_bias",
    ]
    pattern = ["low", "unclear", "high", "low", "low", "unclear", "low"]
    for i, sid in enumerate(["syn_a", "syn_b", "syn_c", "syn_d", "syn_e"]):
        for j, dom in enumerate(rob1_domains):
            rows.append((sid, "rob1", dom, "all", pattern[(i + j) % len(pattern)]))
    rows.append(("syn_c", "rob1", "blinding_outcome_assessment", "death", "low"))
    rob2_domains = [
        "randomisation_process",
        "deviations_from_intended_interventions",
        "missing_outcome_data",
        "measurement_of_outcome",
        "selection_of_reported_result",
        "overall",
    ]
    p2 = ["low", "some_concerns", "high", "low", "no_information", "some_concerns"]
    for i, sid in enumerate(["syn_a", "syn_b", "syn_c"]):
        for j, dom in enumerate(rob2_domains):
            rows.append((sid, "rob2", dom, "all", p2[(i * 2 + j) % len(p2)]))
    ri_domains = [
        "confounding",
        "selection_of_participants",
        "classification_of_interventions",
        "deviations_from_intended_interventions",
        "missing_data",
        "measurement_of_outcomes",
        "selection_of_reported_result",
        "overall",
    ]
    p3 = ["serious", "moderate", "low", "low", "no_information", "moderate", "low", "critical"]
    for i, sid in enumerate(["syn_h", "syn_j"]):
        for j, dom in enumerate(ri_domains):
            if i == 1 and dom == "missing_data":
                continue  # a cell with no judgement recorded
            rows.append((sid, "robins_i", dom, "all", p3[(i + j) % len(p3)]))
    df = pd.DataFrame(rows, columns=["study_id", "tool", "domain", "result_scope", "judgement"])
    df["support"] = "synthetic"
    return {t: df for t in ("rob1", "rob2", "robins_i")}


SYN_LABELS = {
    "syn_a": "Synthetic A 2011",
    "syn_b": "Synthetic B 2014",
    "syn_c": "Synthetic C 2017",
    "syn_d": "Synthetic D 2020",
    "syn_e": "Synthetic E 2023",
    "syn_h": "Synthetic H 2012",
    "syn_j": "Synthetic J 2021",
}


def synthetic_screening() -> pd.DataFrame:
    """A small synthetic screening table (every stage and decision used once or more)."""
    rows = [
        ("r01", "syn_a", "journal_article", "review_reference", "included", "include", None),
        ("r02", "syn_b", "journal_article", "review_reference", "included", "include", None),
        ("r03", "syn_b", "registry_record", "registry_search", "included", "include", None),
        ("r04", "syn_c", "journal_article", "database_search", "included", "include", None),
        (
            "r05",
            "syn_x",
            "journal_article",
            "database_search",
            "eligibility",
            "exclude",
            "No untreated control group",
        ),
        (
            "r06",
            "syn_y",
            "conference_abstract",
            "citation_search",
            "eligibility",
            "exclude",
            "No untreated control group",
        ),
        (
            "r07",
            "syn_z",
            "journal_article",
            "database_search",
            "eligibility",
            "exclude",
            "Not acute-on-chronic liver failure (decompensated cirrhosis without ACLF)",
        ),
        (
            "r08",
            "syn_w",
            "registry_record",
            "registry_search",
            "eligibility",
            "ongoing",
            "Recruiting; no results posted",
        ),
        (
            "r09",
            "syn_v",
            "registry_record",
            "registry_search",
            "eligibility",
            "awaiting",
            "Completed; results not yet published",
        ),
        (
            "r10",
            "syn_u",
            "journal_article",
            "database_search",
            "screening",
            "exclude",
            "Animal study",
        ),
        (
            "r11",
            "syn_t",
            "journal_article",
            "database_search",
            "screening",
            "exclude",
            "Review article",
        ),
        (
            "r12",
            "syn_s",
            "journal_article",
            "database_search",
            "identification",
            "exclude",
            "Duplicate record",
        ),
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "record_id",
            "study_id",
            "record_kind",
            "identified_via",
            "stage",
            "decision",
            "reason",
        ],
    )


def package_forests(pkg: object, out: Path) -> list[Path]:
    """Forest plots of the package's own data (death and severe infection as RR, MELD
    and albumin as MD), through trialpool.analysis.pooled; labels, units and directions
    from the package's ``outcomes``; whatever cannot be pooled shows its reason."""
    from trialpool.analysis.pooled import pool_outcome
    from trialpool.analysis.runs import outcome_infos

    infos = outcome_infos(pkg)  # type: ignore[arg-type]
    written: list[Path] = []
    specs = [
        ("death", "RR", "MH"),
        ("severe_infection", "RR", "MH"),
        ("meld", "MD", "REML"),
        ("alb", "MD", "REML"),
    ]
    for outcome, measure, method in specs:
        info = infos.get(outcome)
        if info is None:  # not an outcome of this package
            continue
        result = pool_outcome(pkg, outcome, measure=measure, method=method)  # type: ignore[arg-type]
        fig = forest_plot(
            [(None, result)],
            measure=measure,
            outcome_label=f"Package data: {info.label}",
            unit=info.unit if measure == "MD" else None,
            lower_is_better=info.lower_is_better,
        )
        written += save(fig, out / f"real_forest_{outcome}")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/plots_demo"))
    parser.add_argument(
        "--package",
        type=Path,
        default=None,
        help="also draw RoB and PRISMA figures from this package",
    )
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    written = synthetic_forests(out)

    rob = synthetic_rob()
    for tool, df in rob.items():
        written += save(
            rob_summary(df, SYN_LABELS, tool=tool, title=SYN + f"risk of bias ({tool})"),
            out / f"rob_summary_{tool}",
        )
        written += save(
            rob_graph(df, tool=tool, title=SYN + f"risk-of-bias graph ({tool})"),
            out / f"rob_graph_{tool}",
        )

    counts = prisma_counts(synthetic_screening())
    written += save(prisma_flow(counts, title=SYN + "PRISMA 2020 flow diagram"), out / "prisma")

    rng = np.random.default_rng(7)
    sei = rng.uniform(0.08, 0.6, 14)
    yi = rng.normal(-0.4, sei) - 0.6 * sei
    fig = funnel_plot(
        yi,
        sei,
        estimate=-0.55,
        measure="SMD",
        labels=[f"S{i + 1}" for i in range(len(yi))],
        egger={"z": -2.1, "p": 0.036, "intercept": -0.38, "slope": -0.9},
        filled=[(-0.2, 0.45), (-0.1, 0.52)],
        title=SYN + "funnel plot",
    )
    written += save(fig, out / "funnel_smd")
    fig = funnel_plot(
        [math.log(0.6), math.log(0.9), math.log(0.45), math.log(1.3)],
        [0.35, 0.5, 0.62, 0.8],
        estimate=math.log(0.7),
        measure="RR",
        title=SYN + "funnel plot (risk ratio)",
    )
    written += save(fig, out / "funnel_rr")

    if args.package is not None:
        from trialpool.package.loader import load_package

        pkg = load_package(args.package)
        studies = pkg.table("studies")
        labels = dict(zip(studies["study_id"], studies["label"], strict=True))
        bias = pkg.table("bias_judgements")
        for tool in sorted(set(bias["tool"].dropna())):
            written += save(rob_summary(bias, labels, tool=tool), out / f"real_rob_summary_{tool}")
            written += save(rob_graph(bias, tool=tool), out / f"real_rob_graph_{tool}")
        screening = pkg.table("screening")
        if len(screening):
            written += save(prisma_flow(prisma_counts(screening)), out / "real_prisma")
        written += package_forests(pkg, out)
    for path in written:
        print(path)


if __name__ == "__main__":
    main()
