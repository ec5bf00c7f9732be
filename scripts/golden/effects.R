# Golden values for src/trialpool/effects.py (escalc, conversions) and for the end-to-end
# tests of the fixture packages built from metadat datasets (tests/fixtures/metadat_*).
#
# Sourced by scripts/make_golden.R (which loads metafor/metadat and provides write_golden);
# writes tests/golden/effects.json and exports the raw metadat datasets used here as CSV
# into tests/golden/data/ (scripts/make_fixture_packages.py builds the fixtures from them).
# Every number comes from metadat (inputs) or metafor (outputs); nothing is typed by hand.

data_dir <- file.path("tests", "golden", "data")
dir.create(data_dir, showWarnings = FALSE, recursive = TRUE)

export <- function(name) {
  dat <- get(name)
  write.csv(dat, file.path(data_dir, paste0(name, ".csv")), row.names = FALSE,
            fileEncoding = "UTF-8")
  dat
}

# What metadat's help pages say about each dataset (title and Source section), so the
# fixture packages cite the original publication in metadat's own words.
rd_text <- function(name) {
  rd <- tools::Rd_db("metadat")[[paste0(name, ".Rd")]]
  out <- tempfile()
  tools::Rd2txt(rd, out = out, options = list(underline_titles = FALSE, width = 1000))
  lines <- readLines(out, encoding = "UTF-8")
  lines <- gsub("_", "", lines, fixed = TRUE)
  heads <- grep("^[A-Z][A-Za-z()]*:$", lines)
  section <- function(label) {
    at <- match(paste0(label, ":"), lines)
    if (is.na(at)) return(NULL)
    end <- c(heads[heads > at], length(lines) + 1L)[1L] - 1L
    body <- trimws(lines[(at + 1L):end])
    paras <- split(body, cumsum(body == ""))
    paras <- vapply(paras, function(p) paste(p[p != ""], collapse = " "), "")
    paras[paras != ""]
  }
  list(title = trimws(lines[1L]), source = section("Source"),
       help_url = paste0("https://wviechtb.github.io/metadat/reference/", name, ".html"))
}

bcg <- export("dat.bcg")
bcg$n1i <- bcg$tpos + bcg$tneg
bcg$n2i <- bcg$cpos + bcg$cneg
normand <- export("dat.normand1999")
niel <- export("dat.nielweise2007")
hahn <- export("dat.hahn2001")
li <- export("dat.li2007")
export("dat.hackshaw1998")
metadat_docs <- lapply(c(dat.bcg = "dat.bcg", dat.normand1999 = "dat.normand1999",
                         dat.nielweise2007 = "dat.nielweise2007"), rd_text)
writeLines(jsonlite::toJSON(metadat_docs, auto_unbox = TRUE, pretty = TRUE),
           file.path(data_dir, "metadat_docs.json"), useBytes = TRUE)

no_args <- setNames(list(), character(0))  # written as {} in JSON

escalc_case <- function(dataset, measure, ..., args = no_args) {
  inputs <- list(...)
  res <- suppressWarnings(do.call(escalc, c(list(measure = measure), inputs, args)))
  list(dataset = dataset, measure = measure, args = args, inputs = inputs,
       yi = as.numeric(res$yi), vi = as.numeric(res$vi))
}

cont <- function(dat, name, measure) {
  escalc_case(name, measure, m1i = dat$m1i, sd1i = dat$sd1i, n1i = dat$n1i,
              m2i = dat$m2i, sd2i = dat$sd2i, n2i = dat$n2i)
}

bin <- function(name, measure, ai, n1i, ci, n2i, args = no_args) {
  escalc_case(name, measure, ai = ai, n1i = n1i, ci = ci, n2i = n2i, args = args)
}

cases <- list(cont(normand, "dat.normand1999", "MD"), cont(normand, "dat.normand1999", "SMD"))
binary_sets <- list(
  list(name = "dat.bcg", ai = bcg$tpos, n1i = bcg$n1i, ci = bcg$cpos, n2i = bcg$n2i),
  list(name = "dat.nielweise2007", ai = niel$ai, n1i = niel$n1i, ci = niel$ci, n2i = niel$n2i),
  list(name = "dat.hahn2001", ai = hahn$ai, n1i = hahn$n1i, ci = hahn$ci, n2i = hahn$n2i),
  list(name = "dat.li2007", ai = li$ai, n1i = li$n1i, ci = li$ci, n2i = li$n2i)
)
# escalc's defaults (add = 1/2, to = "only0", drop00 = FALSE) and the other choices,
# on data sets with zero cells (nielweise2007, li2007) and double zeros (nielweise2007,
# hahn2001); to = "none" is left out where it would give infinite values.
variants <- list(no_args, list(drop00 = TRUE), list(to = "all"), list(to = "if0all"),
                 list(add = 0.25))
for (s in binary_sets) {
  for (measure in c("RR", "OR", "RD")) {
    for (v in variants) {
      cases[[length(cases) + 1L]] <- bin(s$name, measure, s$ai, s$n1i, s$ci, s$n2i, v)
    }
  }
}
cases[[length(cases) + 1L]] <- bin("dat.bcg", "RR", bcg$tpos, bcg$n1i, bcg$cpos, bcg$n2i,
                                   list(to = "none"))

# conv.fivenum exists from metafor 4.0 on; with an older metafor it is recorded as absent.
has_conv <- exists("conv.fivenum", envir = asNamespace("metafor"), inherits = FALSE)
conv <- list(available = has_conv, metafor = as.character(packageVersion("metafor")))
if (has_conv) {
  grid <- data.frame(
    n = c(10, 25, 40, 60, 120, 300),
    min = c(1.2, 10, 30, 2.5, 4, 100),
    q1 = c(2.5, 14, 38, 5.5, 7, 130),
    median = c(3.1, 16, 41, 7, 8, 141),
    q3 = c(4.0, 19, 45, 8.9, 9.5, 150),
    max = c(6.0, 26, 55, 13, 14, 190)
  )
  f <- get("conv.fivenum", envir = asNamespace("metafor"))
  run <- function(...) {
    out <- suppressWarnings(f(..., n = grid$n, test = FALSE, transf = FALSE))
    list(mean = as.numeric(out$mean), sd = as.numeric(out$sd))
  }
  conv$inputs <- grid
  conv$median_iqr <- run(q1 = grid$q1, median = grid$median, q3 = grid$q3)
  conv$median_range <- run(min = grid$min, median = grid$median, max = grid$max)
  conv$five_number <- run(min = grid$min, q1 = grid$q1, median = grid$median,
                          q3 = grid$q3, max = grid$max)
}

# Reference pools for the fixture packages: what `trialpool pool <fixture> --json` must
# print. Pooled on the analysis scale (log for RR/OR); the test exponentiates.
pool_fit <- function(res, yi, vi) {
  pred <- predict(res)
  list(k = res$k, beta = as.numeric(res$beta), se = res$se, zval = res$zval,
       pval = res$pval, ci_lb = res$ci.lb, ci_ub = res$ci.ub,
       tau2 = if (is.null(res$tau2)) 0 else res$tau2,
       I2 = res$I2, H2 = res$H2, QE = res$QE, QEp = res$QEp,
       pi_lb = if (is.null(pred$pi.lb)) NULL else pred$pi.lb,
       pi_ub = if (is.null(pred$pi.ub)) NULL else pred$pi.ub,
       weights = as.numeric(weights(res)), yi = as.numeric(yi), vi = as.numeric(vi))
}
uni_pools <- function(es) {
  out <- list()
  for (method in c("EE", "DL", "REML", "PM", "ML")) {
    for (test in c("z", "knha")) {
      res <- suppressWarnings(rma(es$yi, es$vi, method = method, test = test))
      fit <- pool_fit(res, es$yi, es$vi)
      fit$method <- if (method == "EE") "FE" else method
      fit$hksj <- test == "knha"
      out[[length(out) + 1L]] <- fit
    }
  }
  out
}
bin_pools <- function(ai, n1i, ci, n2i) {
  out <- list()
  for (measure in c("RR", "OR", "RD")) {
    es <- escalc(measure, ai = ai, n1i = n1i, ci = ci, n2i = n2i)
    fits <- uni_pools(es)
    mh <- suppressWarnings(rma.mh(measure = measure, ai = ai, n1i = n1i, ci = ci, n2i = n2i))
    mhfit <- pool_fit(mh, es$yi, es$vi)
    mhfit$method <- "MH"
    mhfit$hksj <- FALSE
    fits[[length(fits) + 1L]] <- mhfit
    out[[measure]] <- fits
  }
  out
}
cont_pools <- function(dat) {
  out <- list()
  for (measure in c("MD", "SMD")) {
    es <- escalc(measure, m1i = dat$m1i, sd1i = dat$sd1i, n1i = dat$n1i,
                 m2i = dat$m2i, sd2i = dat$sd2i, n2i = dat$n2i)
    out[[measure]] <- uni_pools(es)
  }
  out
}
rnd <- bcg[bcg$alloc == "random", ]
fixture_pools <- list(
  # the bcg fixture labels random allocation as rct and alternate/systematic allocation
  # as non_randomised_controlled, so the default (RCT-only) pool uses the random trials
  metadat_bcg = list(trials = rnd$trial, pools = bin_pools(rnd$tpos, rnd$n1i, rnd$cpos, rnd$n2i)),
  metadat_bcg_all = list(trials = bcg$trial,
                         pools = bin_pools(bcg$tpos, bcg$n1i, bcg$cpos, bcg$n2i)),
  metadat_nielweise2007 = list(trials = niel$study,
                               pools = bin_pools(niel$ai, niel$n1i, niel$ci, niel$n2i)),
  metadat_normand1999 = list(trials = normand$study, pools = cont_pools(normand))
)

write_golden("effects", list(escalc = cases, conv_fivenum = conv, fixture_pools = fixture_pools))
