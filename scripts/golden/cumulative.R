# Golden values for src/trialpool/stats/cumulative.py and analysis/cumulative.py: metafor's
# cumul() (cumulative meta-analysis) on real published datasets from metadat.
#
# Sourced by scripts/make_golden.R (which provides write_golden and loads metafor/metadat);
# writes tests/golden/cumulative.json. Every number in that file comes from metafor: the
# inputs (yi, vi, raw 2x2 counts, in cumulative order) and each step's outputs. Nothing is
# typed by hand.
#
# Order: as trialpool adds studies, by year of publication, ties by label (case-insensitive,
# then as written), studies without a year last. The labels are those of the engine-test
# packages tests/fixtures/metadat_* ("Author year" for dat.bcg and dat.nielweise2007, the
# data source for dat.normand1999, which documents no year). radix sorting compares bytes,
# as Python compares strings, whatever the locale.

methods <- c("EE", "DL", "REML", "PM", "ML")
tests <- c("z", "knha")

nn <- function(x) {
  x <- as.numeric(x)
  ifelse(is.finite(x), x, NA)
}

# positions of the studies in cumulative order (for cumul()'s `order` argument: it sorts
# by these values)
cumul_rank <- function(label, year) {
  ord <- order(is.na(year), ifelse(is.na(year), 0, year), tolower(label), label,
               seq_along(label), method = "radix")
  rk <- integer(length(label))
  rk[ord] <- seq_along(label)
  rk
}

steps_of <- function(cm, method) {
  tval <- if (!is.null(cm$tval)) cm$tval else cm$zval
  list(
    estimate = nn(cm$estimate), se = nn(cm$se), zval = nn(tval),
    pval = nn(if (!is.null(cm$pvals)) cm$pvals else cm$pval),
    ci_lb = nn(cm$ci.lb), ci_ub = nn(cm$ci.ub), QE = nn(cm$Q), QEp = nn(cm$Qp),
    # equal-effects and Mantel-Haenszel models have no tau^2 column (it is 0)
    tau2 = if (is.null(cm$tau2)) rep(0, length(cm$estimate)) else nn(cm$tau2),
    I2 = nn(cm$I2), H2 = nn(cm$H2)
  )
}

uni_cumul <- function(name, source, measure, label, year, yi, vi, which_methods = methods,
                      which_tests = tests) {
  rk <- cumul_rank(label, year)
  ord <- order(rk)
  fits <- list()
  for (method in which_methods) {
    for (test in which_tests) {
      res <- suppressWarnings(rma(yi, vi, method = method, test = test))
      cm <- suppressWarnings(cumul(res, order = rk))
      fits[[length(fits) + 1L]] <- c(
        list(method = if (method == "EE") "FE" else method, test = test, level = 95),
        steps_of(cm, method))
    }
  }
  list(name = name, source = source, measure = measure, k = length(yi),
       label = label[ord], year = year[ord], yi = as.numeric(yi)[ord],
       vi = as.numeric(vi)[ord], fits = fits)
}

mh_cumul <- function(name, source, measure, label, year, ai, n1i, ci, n2i) {
  rk <- cumul_rank(label, year)
  ord <- order(rk)
  res <- suppressWarnings(rma.mh(ai = ai, n1i = n1i, ci = ci, n2i = n2i, measure = measure))
  cm <- suppressWarnings(cumul(res, order = rk))
  c(list(name = name, source = source, measure = measure, method = "MH", test = "z",
         level = 95, k = length(ai), label = label[ord], year = year[ord],
         ai = ai[ord], n1i = n1i[ord], ci = ci[ord], n2i = n2i[ord]),
    steps_of(cm, "MH"))
}

uni <- list()
mh <- list()

# BCG vaccine trials (Colditz et al. 1994), k = 13: every trial (all allocations), and the
# randomised ones only (the fixture's design rct: what `trialpool pool` pools by default)
bcg <- dat.bcg
bcg_label <- paste(bcg$author, bcg$year)
for (measure in c("RR", "OR")) {
  d <- escalc(measure, ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg)
  uni[[length(uni) + 1L]] <- uni_cumul(paste0("bcg_", measure), "dat.bcg", measure,
                                       bcg_label, bcg$year, d$yi, d$vi,
                                       which_methods = if (measure == "RR") methods
                                                       else c("DL", "REML"))
}
d <- escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg)
rnd <- bcg$alloc == "random"
uni[[length(uni) + 1L]] <- uni_cumul("bcg_random_RR", "dat.bcg (alloc random)", "RR",
                                     bcg_label[rnd], bcg$year[rnd], d$yi[rnd], d$vi[rnd],
                                     which_methods = c("DL", "REML"))
for (measure in c("RR", "OR", "RD")) {
  mh[[length(mh) + 1L]] <- mh_cumul(paste0("bcg_MH_", measure), "dat.bcg", measure,
                                    bcg_label, bcg$year, bcg$tpos, bcg$tpos + bcg$tneg,
                                    bcg$cpos, bcg$cpos + bcg$cneg)
}

# Anti-infective catheters (Niel-Weise 2007), k = 18: zero cells, a double zero, ties in year
nw <- dat.nielweise2007
nw_label <- paste(nw$author, nw$year)
d <- escalc("RR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = nw)
uni[[length(uni) + 1L]] <- uni_cumul("nielweise2007_RR", "dat.nielweise2007", "RR", nw_label,
                                     nw$year, d$yi, d$vi, which_methods = c("EE", "DL", "REML"),
                                     which_tests = c("z", "knha"))
mh[[length(mh) + 1L]] <- mh_cumul("nielweise2007_MH_RR", "dat.nielweise2007", "RR", nw_label,
                                  nw$year, nw$ai, nw$n1i, nw$ci, nw$n2i)

# Stroke units (Normand 1999), k = 9: no year documented, so the order is by label alone
nd <- dat.normand1999
for (measure in c("MD", "SMD")) {
  d <- escalc(measure, m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i,
              data = nd)
  uni[[length(uni) + 1L]] <- uni_cumul(paste0("normand1999_", measure), "dat.normand1999",
                                       measure, as.character(nd$source),
                                       rep(NA_integer_, nrow(nd)), d$yi, d$vi,
                                       which_methods = c("DL", "REML"))
}

write_golden("cumulative", list(
  description = paste(
    "metafor reference values for trialpool's cumulative meta-analysis: cumul() of rma",
    "(EE/DL/REML/PM/ML, test z and knha) and of rma.mh (RR/OR/RD) on metadat datasets,",
    "studies ordered by year then label (no year: last, by label). Inputs and steps are in",
    "that order. Written by scripts/golden/cumulative.R."),
  uni = uni, mh = mh))
