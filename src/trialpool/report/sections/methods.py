"""Section "Methods": the models, intervals, conversions and rules the plan applies."""

from __future__ import annotations

from trialpool.analysis.plan import describe_rule, rule_id
from trialpool.analysis.runs import metafor_analyses
from trialpool.report.context import Context
from trialpool.report.document import Bullets, Heading, Inlines, Node, Para, Strong


def section(ctx: Context) -> list[Node]:
    plan = ctx.plan
    d = plan.defaults
    analyses = metafor_analyses(plan)
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
    nodes: list[Node] = [Heading(2, "Methods", "methods")]
    if plan.description:
        nodes.append(Para([Strong(f"Plan: {plan.title}. "), plan.description]))
    nodes.append(Bullets(items))
    return nodes
