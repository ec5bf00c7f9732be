#!/usr/bin/env Rscript
# Compute metafor's reference values ("golden values") on real datasets from metadat and
# write them as JSON into tests/golden/. Each part lives in scripts/golden/*.R and is
# sourced in turn; every part writes its own tests/golden/<part>.json with the metafor
# and metadat versions it used.
#
# Usage (from the repository root):  Rscript scripts/make_golden.R
suppressPackageStartupMessages({
  library(metafor)
  library(metadat)
})
if (!requireNamespace("jsonlite", quietly = TRUE)) {
  stop("jsonlite is needed (Debian: apt-get install r-cran-jsonlite)")
}
golden_dir <- file.path("tests", "golden")
dir.create(golden_dir, showWarnings = FALSE, recursive = TRUE)
versions <- list(
  metafor = as.character(packageVersion("metafor")),
  metadat = as.character(packageVersion("metadat")),
  R = R.version.string
)
write_golden <- function(name, payload) {
  payload$versions <- versions
  path <- file.path(golden_dir, paste0(name, ".json"))
  writeLines(jsonlite::toJSON(payload, auto_unbox = TRUE, digits = NA, null = "null",
                              na = "null", pretty = TRUE), path)
  message("wrote ", path)
}
for (part in sort(list.files(file.path("scripts", "golden"), pattern = "\\.R$",
                             full.names = TRUE))) {
  message("running ", part)
  source(part, local = new.env())
}
