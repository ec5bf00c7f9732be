# Golden values for src/trialpool/pooling.py: metafor's rma, rma.mh, predict, confint,
# weights and leave1out on real published datasets from metadat.
#
# Sourced by scripts/make_golden.R (which provides write_golden and loads metafor/metadat);
# writes tests/golden/pooling.json. Every number in that file comes from metafor: the
# inputs (yi, vi, raw 2x2 counts) and the outputs. Nothing is typed by hand.

methods <- c("EE", "DL", "REML", "PM", "ML")
tests <- c("z", "knha")

num_or_null <- function(x) {
  if (is.null(x) || length(x) == 0L) return(NULL)
  x <- as.numeric(x)
  if (length(x) == 1L && is.na(x)) return(NULL)
  x
}

# One rma fit with everything the Python side compares.
fit_one <- function(yi, vi, method, test, level = 95) {
  res <- suppressWarnings(rma(yi, vi, method = method, test = test, level = level))
  pred <- predict(res)
  ci_tau2 <- if (method != "EE" && res$k > 1L) {
    ci <- suppressWarnings(confint(res))
    as.numeric(ci$random["tau^2", c("ci.lb", "ci.ub")])
  } else {
    c(NA, NA)
  }
  list(
    method = if (method == "EE") "FE" else method,
    test = test,
    level = level,
    k = res$k,
    beta = as.numeric(res$beta),
    se = res$se,
    zval = res$zval,
    pval = num_or_null(res$pval),
    ci_lb = num_or_null(res$ci.lb),
    ci_ub = num_or_null(res$ci.ub),
    tau2 = res$tau2,
    tau2_ci_lb = num_or_null(ci_tau2[1]),
    tau2_ci_ub = num_or_null(ci_tau2[2]),
    I2 = num_or_null(res$I2),
    H2 = num_or_null(res$H2),
    QE = res$QE,
    QEp = res$QEp,
    s2w = res$s2w,
    weights = as.numeric(weights(res)),
    # predict() has no prediction interval for equal-effects models
    pi_lb = num_or_null(pred$pi.lb),
    pi_ub = num_or_null(pred$pi.ub)
  )
}

uni_case <- function(name, source, measure, yi, vi, levels = 95) {
  fits <- list()
  for (level in levels) {
    for (method in methods) {
      for (test in tests) {
        fits[[length(fits) + 1L]] <- fit_one(yi, vi, method, test, level)
      }
    }
  }
  list(name = name, source = source, measure = measure, k = length(yi),
       yi = as.numeric(yi), vi = as.numeric(vi), fits = fits)
}

mh_case <- function(name, source, ai, n1i, ci, n2i, measures = c("RR", "OR", "RD")) {
  out <- list()
  for (measure in measures) {
    res <- suppressWarnings(rma.mh(ai = ai, n1i = n1i, ci = ci, n2i = n2i,
                                   measure = measure))
    out[[length(out) + 1L]] <- list(
      name = paste0(name, "_MH_", measure), source = source, measure = measure,
      ai = ai, n1i = n1i, ci = ci, n2i = n2i,
      k = res$k, k_yi = res$k.yi,
      beta = num_or_null(res$beta), se = num_or_null(res$se),
      zval = num_or_null(res$zval), pval = num_or_null(res$pval),
      ci_lb = num_or_null(res$ci.lb), ci_ub = num_or_null(res$ci.ub),
      QE = res$QE, QEp = res$QEp, I2 = num_or_null(res$I2), H2 = num_or_null(res$H2),
      CO = num_or_null(res$CO), COp = num_or_null(res$COp),
      MH = num_or_null(res$MH), MHp = num_or_null(res$MHp),
      TA = num_or_null(res$TA), TAp = num_or_null(res$TAp),
      weights = as.numeric(weights(res)),
      # escalc values rma.mh used for Q (add 1/2 to zero-cell tables, double zeros NA)
      yi = as.numeric(res$yi.f), vi = as.numeric(res$vi.f)
    )
  }
  out
}

l1o_case <- function(name, yi, vi, method, test) {
  res <- suppressWarnings(rma(yi, vi, method = method, test = test))
  l1o <- leave1out(res)
  list(name = name, method = if (method == "EE") "FE" else method, test = test,
       yi = as.numeric(yi), vi = as.numeric(vi),
       estimate = l1o$estimate, se = l1o$se,
       zval = if (test == "knha") l1o$tval else l1o$zval, pval = l1o$pval,
       ci_lb = l1o$ci.lb, ci_ub = l1o$ci.ub, QE = l1o$Q, QEp = l1o$Qp,
       tau2 = if (method == "EE") rep(0, length(yi)) else l1o$tau2,
       I2 = l1o$I2, H2 = l1o$H2)
}

uni <- list()
mh <- list()

# BCG vaccine trials (Colditz et al. 1994), k = 13: RR, OR, RD
bcg <- dat.bcg
for (measure in c("RR", "OR", "RD")) {
  d <- escalc(measure, ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg)
  uni[[length(uni) + 1L]] <- uni_case(paste0("bcg_", measure), "dat.bcg", measure,
                                      d$yi, d$vi, levels = if (measure == "RR") c(95, 90) else 95)
}
mh <- c(mh, mh_case("bcg", "dat.bcg", bcg$tpos, bcg$tpos + bcg$tneg,
                    bcg$cpos, bcg$cpos + bcg$cneg))

# k = 2 and k = 1 subsets of the BCG trials (RR)
d <- escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg)
uni[[length(uni) + 1L]] <- uni_case("bcg_RR_k2", "dat.bcg[1:2]", "RR", d$yi[1:2], d$vi[1:2])
uni[[length(uni) + 1L]] <- uni_case("bcg_RR_k2_het", "dat.bcg[c(4, 8)]", "RR",
                                    d$yi[c(4, 8)], d$vi[c(4, 8)])
uni[[length(uni) + 1L]] <- list(
  name = "bcg_RR_k1", source = "dat.bcg[1]", measure = "RR", k = 1L,
  yi = I(d$yi[1]), vi = I(d$vi[1]),
  fits = lapply(methods, function(m) fit_one(d$yi[1], d$vi[1], m, "z")))
mh <- c(mh, mh_case("bcg_k2", "dat.bcg[1:2]", bcg$tpos[1:2], (bcg$tpos + bcg$tneg)[1:2],
                    bcg$cpos[1:2], (bcg$cpos + bcg$cneg)[1:2]))

# Stroke units (Normand 1999), k = 9: MD and SMD
for (measure in c("MD", "SMD")) {
  d <- escalc(measure, m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i,
              data = dat.normand1999)
  uni[[length(uni) + 1L]] <- uni_case(paste0("normand1999_", measure), "dat.normand1999",
                                      measure, d$yi, d$vi)
}

# Passive smoking and lung cancer (Hackshaw 1998), k = 37: log OR given as yi/vi
uni[[length(uni) + 1L]] <- uni_case("hackshaw1998_OR", "dat.hackshaw1998", "OR",
                                    dat.hackshaw1998$yi, dat.hackshaw1998$vi)

# Sclerotherapy and bleeding (Collins & Langman 1985), k = 27: OR
# (two trials did not report bleeding; they are left out, as rma and rma.mh would do)
col <- dat.collins1985a[!is.na(dat.collins1985a$b.xti), ]
d <- escalc("OR", ai = b.xti, n1i = nti, ci = b.xci, n2i = nci, data = col)
uni[[length(uni) + 1L]] <- uni_case("collins1985a_OR", "dat.collins1985a", "OR", d$yi, d$vi)
mh <- c(mh, mh_case("collins1985a", "dat.collins1985a", col$b.xti, col$nti, col$b.xci, col$nci))

# Magnesium in myocardial infarction (Li 2007), k = 22, zero cells: OR
d <- escalc("OR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = dat.li2007)
uni[[length(uni) + 1L]] <- uni_case("li2007_OR", "dat.li2007", "OR", d$yi, d$vi)
mh <- c(mh, mh_case("li2007", "dat.li2007", dat.li2007$ai, dat.li2007$n1i,
                    dat.li2007$ci, dat.li2007$n2i))

# Anti-infective catheters (Niel-Weise 2007), k = 18, zero cells and a double zero: RR
nw <- dat.nielweise2007
d <- escalc("RR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = nw)
uni[[length(uni) + 1L]] <- uni_case("nielweise2007_RR", "dat.nielweise2007", "RR", d$yi, d$vi)
mh <- c(mh, mh_case("nielweise2007", "dat.nielweise2007", nw$ai, nw$n1i, nw$ci, nw$n2i))

# Beta blockers (Yusuf 1985), table 9 (complete tables), with double-zero tables: MH only
y9 <- dat.yusuf1985[dat.yusuf1985$table == "9", ]
y9 <- y9[complete.cases(y9[, c("ai", "n1i", "ci", "n2i")]), ]
mh <- c(mh, mh_case("yusuf1985_t9", "dat.yusuf1985 (table 9)", y9$ai, y9$n1i, y9$ci, y9$n2i))

# Modified school calendars (Konstantopoulos 2011), k = 56: SMD given as yi/vi
uni[[length(uni) + 1L]] <- uni_case("konstantopoulos2011_SMD", "dat.konstantopoulos2011", "SMD",
                                    dat.konstantopoulos2011$yi, dat.konstantopoulos2011$vi)

# Elevated CO2 and plant biomass (Curtis 1998), k = 102: ROM
d <- escalc("ROM", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i,
            data = dat.curtis1998)
uni[[length(uni) + 1L]] <- uni_case("curtis1998_ROM", "dat.curtis1998", "ROM", d$yi, d$vi)

# Leave-one-out (BCG RR, and Normand MD)
d <- escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg)
dn <- escalc("MD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i,
             data = dat.normand1999)
l1o <- list(
  l1o_case("bcg_RR_REML_z", d$yi, d$vi, "REML", "z"),
  l1o_case("bcg_RR_REML_knha", d$yi, d$vi, "REML", "knha"),
  l1o_case("bcg_RR_DL_z", d$yi, d$vi, "DL", "z"),
  l1o_case("bcg_RR_FE_z", d$yi, d$vi, "EE", "z"),
  l1o_case("normand1999_MD_PM_knha", dn$yi, dn$vi, "PM", "knha")
)

# Test for subgroup differences: BCG RR by allocation (random, alternate, systematic), each
# subgroup pooled by REML, then the fixed-effect Q over the subgroup estimates.
sub <- list()
for (method in c("REML", "DL")) {
  ests <- c()
  vars <- c()
  for (g in unique(bcg$alloc)) {
    r <- rma(yi, vi, data = d, subset = bcg$alloc == g, method = method)
    ests <- c(ests, as.numeric(r$beta))
    vars <- c(vars, r$se^2)
  }
  bt <- rma(ests, vars, method = "EE")
  sub[[length(sub) + 1L]] <- list(name = paste0("bcg_RR_alloc_", method), method = method,
                                  estimates = ests, variances = vars,
                                  Q = bt$QE, df = bt$k - 1L, p = bt$QEp)
}

write_golden("pooling", list(
  description = paste(
    "metafor reference values for trialpool.pooling: rma (EE/DL/REML/PM/ML, test z and knha),",
    "predict, confint (Q-profile tau^2 CI), weights, rma.mh (RR/OR/RD), leave1out and the",
    "test for subgroup differences, on metadat datasets. Written by scripts/golden/pooling.R."),
  uni = uni, mh = mh, leave1out = l1o, subgroup = sub))
