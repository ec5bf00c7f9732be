# Golden values for src/trialpool/small_study.py: metafor's regtest (Egger's test),
# trimfill and the meta-regressions behind them, on real datasets from metadat.
#
# Sourced by scripts/make_golden.R (which loads metafor/metadat and provides write_golden);
# writes tests/golden/small_study.json. Inputs come from metadat (yi/vi from escalc where
# the dataset has raw data), outputs from metafor; nothing is typed by hand.

num <- function(x) if (is.null(x) || length(x) == 0L) NULL else as.numeric(x)

bcg <- escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
normand <- escalc("SMD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i,
                  n2i = n2i, data = dat.normand1999)
niel <- escalc("OR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = dat.nielweise2007)
datasets <- list(
  list(name = "dat.hackshaw1998", measure = "OR", yi = dat.hackshaw1998$yi,
       vi = dat.hackshaw1998$vi),
  list(name = "dat.bcg", measure = "RR", yi = as.numeric(bcg$yi), vi = as.numeric(bcg$vi)),
  list(name = "dat.normand1999", measure = "SMD", yi = as.numeric(normand$yi),
       vi = as.numeric(normand$vi)),
  list(name = "dat.nielweise2007", measure = "OR", yi = as.numeric(niel$yi),
       vi = as.numeric(niel$vi))
)

reg_out <- function(rt) {
  list(zval = rt$zval, pval = rt$pval, df = if (is.na(rt$dfs)) NULL else rt$dfs,
       est = num(rt$est), ci_lb = num(rt$ci.lb), ci_ub = num(rt$ci.ub),
       fit_beta = if (rt$model == "rma") num(rt$fit$beta) else num(coef(rt$fit)),
       fit_se = if (rt$model == "rma") num(rt$fit$se) else
         num(summary(rt$fit)$coefficients[, 2]),
       fit_tau2 = if (rt$model == "rma") rt$fit$tau2 else 0)
}

tf_out <- function(tf, estimator) {
  fill <- if (is.null(tf$fill)) rep(FALSE, tf$k) else tf$fill
  list(estimator = estimator, k0 = tf$k0, se_k0 = tf$se.k0, side = tf$side,
       p_k0 = num(tf$p.k0), filled_yi = num(tf$yi[fill]), filled_vi = num(tf$vi[fill]),
       k = tf$k, beta = as.numeric(tf$beta), se = tf$se, zval = tf$zval, pval = tf$pval,
       ci_lb = tf$ci.lb, ci_ub = tf$ci.ub, tau2 = tf$tau2, test = tf$test)
}

cases <- list()
for (d in datasets) {
  for (method in c("REML", "DL", "EE", "ML")) {
    for (test in c("z", "knha")) {
      res <- suppressWarnings(rma(d$yi, d$vi, method = method, test = test))
      case <- list(dataset = d$name, measure = d$measure,
                   method = if (method == "EE") "FE" else method,
                   hksj = test == "knha", yi = d$yi, vi = d$vi, beta = as.numeric(res$beta),
                   tau2 = res$tau2)
      case$regtest_rma <- reg_out(suppressWarnings(regtest(res)))
      case$regtest_rma_vi <- reg_out(suppressWarnings(regtest(res, predictor = "vi")))
      case$regtest_lm <- reg_out(suppressWarnings(regtest(res, model = "lm")))
      case$trimfill <- list(tf_out(suppressWarnings(trimfill(res)), "L0"),
                            tf_out(suppressWarnings(trimfill(res, estimator = "R0")), "R0"),
                            tf_out(suppressWarnings(trimfill(res, estimator = "Q0")), "Q0"))
      cases[[length(cases) + 1L]] <- case
    }
  }
}

write_golden("small_study", list(cases = cases))
