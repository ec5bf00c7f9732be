"""Section "Methods": the models, intervals, conversions and rules the plan applies.

Analyses pooled with metafor's conventions and analyses of an imported review (RevMan's
conventions, as each analysis recorded them) are described each in their own terms; a
plan with both gets both.
"""

from __future__ import annotations

from trialpool.analysis.plan import RevManAnalysis, describe_rule, rule_id
from trialpool.analysis.revman import model_text
from trialpool.report.context import Context
from trialpool.report.document import Bullets, Heading, Inlines, Node, Para, Strong
from trialpool.report.figures.forest_review import measure_label

#: the reference of RevMan's conventions
DEEKS_HIGGINS = (
    "Deeks JJ, Higgins JPT. Statistical algorithms in Review Manager 5. The Cochrane "
    "Collaboration, 2010"
)


def _grouped(analyses: list[RevManAnalysis]) -> str:
    """ "Risk Ratio, M-H, Random (DL, Wald): 1.1, 1.2; Mean Difference, IV, Fixed: 2.1"."""
    groups: dict[str, list[str]] = {}
    for a in analyses:
        groups.setdefault(f"{measure_label(a)}, {model_text(a)}", []).append(a.id)
    return "; ".join(f"{k}: {', '.join(ids)}" for k, ids in groups.items())


def revman_items(analyses: list[RevManAnalysis]) -> list[Inlines]:
    """RevMan's conventions, as far as the plan's RevMan analyses use them."""
    methods = {a.method for a in analyses}
    types = {a.data_type for a in analyses}
    measures = {a.measure for a in analyses}
    items: list[Inlines] = [
        [
            Strong("Engine: "),
            "each analysis of the review is pooled from the package's rows with the settings "
            "the review recorded for it, as Review Manager (RevMan 5, RevMan Web) computes it "
            f"({DEEKS_HIGGINS}; RevMan Web's random-effects options as in the Cochrane "
            "Handbook v6.5, 10.10.4).",
        ],
        [Strong("Method per analysis (as recorded): "), _grouped(analyses) + "."],
    ]
    if "MH" in methods:
        items.append(
            [
                Strong("Mantel-Haenszel (M-H): "),
                "fixed effect: the M-H weighted risk ratio, odds ratio or risk difference "
                "(RD with Greenland & Robins' variance). Heterogeneity: Chi² (Cochran's Q) "
                "about the M-H estimate with inverse-variance weights; random effects: "
                "DerSimonian-Laird τ² from that Q, then inverse-variance weights 1/(vᵢ + τ²) "
                "on the study (log) effects.",
            ]
        )
    if "IV" in methods:
        items.append(
            [
                Strong("Inverse variance (IV): "),
                "fixed effect, or random effects with τ² by DerSimonian-Laird (REML where "
                "RevMan Web recorded it) and a Wald-type CI (Hartung-Knapp-Sidik-Jonkman "
                "where recorded).",
            ]
        )
    if "PETO" in methods:
        items.append(
            [
                Strong("Peto: "),
                "Peto's one-step odds ratio per study ((O − E)/V, variance 1/V), pooled with "
                "fixed effect.",
            ]
        )
    said: list[str] = []
    if "MD" in measures:
        said.append("MD: raw mean difference (group 1 minus group 2)")
    if "SMD" in measures:
        said.append(
            "SMD: RevMan's Hedges' adjusted g, g = d × (1 − 3/(4N − 9)), with variance "
            "N/(n₁n₂) + g²/(2(N − 3.94))"
        )
    if measures & {"RR", "OR", "PETO_OR"} or "PETO" in methods:
        said.append("RR and OR pooled on the log scale, shown as ratios")
    if "RD" in measures:
        said.append("RD: raw risk difference")
    if "generic" in types:
        said.append(
            "generic inverse variance: each study's entered estimate and SE (estimates "
            "entered as natural logs are shown as ratios)"
        )
    items.append([Strong("Effect measures: "), "; ".join(said) + "."])
    if "dichotomous" in types:
        items.append(
            [
                Strong("Zero cells: "),
                "0.5 added to all four cells of a study with a zero cell (its own effect and "
                "variance, and inside the M-H RR and OR); a study with no events in either "
                "group (for OR also one where everybody had the event) is not estimable for "
                'RR and OR and shown as "Not estimable" with weight 0; for RD it counts '
                "with RD = 0.",
            ]
        )
    items += [
        [
            Strong("Heterogeneity and tests: "),
            "Chi² (Cochran's Q) with its df and P; I² = (Q − df)/Q (0 when Q ≤ df); Tau² for "
            "random effects; test for overall effect Z = |estimate|/SE (t on k − 1 df with "
            "HKSJ); test for subgroup differences: Cochran's Q of the subgroup estimates "
            "about their inverse-variance mean, with its I². A single study is its own total "
            "(Chi² = 0 on 0 df).",
        ],
        [
            Strong("Totals: "),
            "the review's Totals option is kept: totals and subtotals, subtotals only (study "
            "weights are then percentages of their subgroup and no overall total is drawn) "
            "or none (study estimates only).",
        ],
        [
            Strong("Reproduction: "),
            "every number RevMan stored with the review is compared with trialpool's in the "
            "reproduction audit. P of Chi² is computed as RevMan computes it (its incomplete "
            "gamma series, summed while the terms are at least 1e-6), not as the exact chi² "
            "tail; a difference that remains is marked there as known, with its reason.",
        ],
        [
            Strong("Nothing added: "),
            "each analysis reproduces the review's own, with the study rows it pooled "
            "whatever their design; no design restriction, sensitivity analysis or "
            "funnel plot is added.",
        ],
    ]
    return items


def section(ctx: Context) -> list[Node]:
    plan = ctx.plan
    nodes: list[Node] = [Heading(2, "Methods", "methods")]
    if plan.description:
        nodes.append(Para([Strong(f"Plan: {plan.title}. "), plan.description]))
    metafor, revman = ctx.metafor_analyses, ctx.revman_analyses
    if metafor and revman:
        nodes.append(Heading(3, "Analyses pooled with metafor's conventions", "methods-metafor"))
    if metafor:
        nodes.append(Bullets(_metafor_items(ctx)))
    if metafor and revman:
        nodes.append(
            Heading(3, "Analyses of the imported review (RevMan's conventions)", "methods-revman")
        )
    if revman:
        nodes.append(Bullets(revman_items(revman)))
    return nodes


def _metafor_items(ctx: Context) -> list[Inlines]:
    """metafor's conventions, the plan's defaults and its sensitivity rules."""
    plan = ctx.plan
    d = plan.defaults
    analyses = ctx.metafor_analyses
    rules = {rule_id(r): describe_rule(r) for a in analyses for r in a.sensitivity}
    methods = sorted({plan.method_for(a) for a in analyses})
    measures = sorted({a.measure for a in analyses})
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
    return items
