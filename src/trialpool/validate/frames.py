"""Reading rows for the rules: every cell as text, as frictionless splits records, then typed.

Lenient on purpose: a cell that does not parse becomes missing (Table Schema has already
reported it), so the cross-table rules can run on everything else.
"""

from __future__ import annotations

import csv
import re
from typing import Any

import numpy as np
import pandas as pd

from trialpool.package.loader import Resource
from trialpool.validate import fast as fastvalidate
from trialpool.validate.rules import INT64_MAX, INT64_MIN, NONFINITE, OUT_OF_RANGE

_NONFINITE = re.compile(r"[+-]?(s?nan[0-9]*|inf|infinity)")


def read_text_frame(resource: Resource, fl_resource: Any = None) -> pd.DataFrame | None:
    """Every cell of a CSV as text (missing cells as ""), or None when unreadable.

    Records are split by Python's csv module, as frictionless splits them: with the
    encoding frictionless detects and the dialect it sniffs when ``fl_resource`` (the
    frictionless resource) is given, else UTF-8 (BOM allowed) and the declared or
    default dialect. Short rows are padded, long ones cut to the header's width; blank
    lines are kept, so the frame's position ``i`` is frictionless row ``i + 2``.
    """

    dialect: Any = None
    encoding = "utf-8-sig"
    if fl_resource is not None:
        try:
            encoding = fastvalidate.detect_encoding(resource.path, fl_resource)
            dialect = fastvalidate.sniff_dialect(resource.path, encoding, fl_resource)
        except (fastvalidate.FallbackError, OSError, LookupError):
            dialect = None
    if dialect is None:
        declared = resource.descriptor.get("dialect")
        declared = declared if isinstance(declared, dict) else {}
        dialect = csv.excel()
        dialect.delimiter = str(declared.get("delimiter", ","))[:1] or ","
        dialect.quotechar = str(declared.get("quoteChar", '"'))[:1] or '"'
    try:
        with open(resource.path, encoding=encoding, newline="") as handle:
            records = csv.reader(handle, dialect=dialect)
            header = next(records, None)
            if not header:
                return None
            width = len(header)
            body = [(r + [""] * width)[:width] for r in records]
    except (OSError, UnicodeDecodeError, LookupError, csv.Error, ValueError):
        return None
    return pd.DataFrame(body, columns=header, dtype=object)


def _missing_values(resource: Resource, spec: dict[str, Any]) -> set[str]:
    values = spec.get("missingValues", resource.schema.get("missingValues", [""]))
    return {v for v in values if isinstance(v, str)} if isinstance(values, list) else {""}


def _beyond_int64(stripped: pd.Series, missing: pd.Series) -> pd.Series:
    """Per cell: an integer (as ``int()`` reads it, like frictionless) beyond int64.

    Only cells longer than 18 characters can be; each distinct one is read once.
    """
    long = ~missing & (stripped.str.len() > 18)
    if not long.any():
        return pd.Series(False, index=stripped.index)

    def beyond(text: str) -> bool:
        try:
            value = int(text)
        except ValueError:
            return False
        return not INT64_MIN <= value <= INT64_MAX

    distinct = pd.unique(stripped[long])
    flagged = {text for text in distinct if beyond(text)}
    return long & stripped.isin(flagged)


def typed_frame(resource: Resource, text: pd.DataFrame) -> pd.DataFrame:
    """Type a text frame by the schema, leniently: cells that do not parse become missing.

    Strings are categorical columns (missing = NaN; fast to compare, count and test for
    missing values at a million rows); numbers and integers are float64
    (missing or unparsable = NaN; ``inf`` stays) with, for numbers, a boolean column
    ``__nonfinite__<name>`` marking NaN, infinity and values beyond float64 as written in
    the file, and for integers ``__outofrange__<name>`` marking values beyond int64;
    booleans are pandas ``boolean``.
    Frictionless reports the cells that do not parse; the rules then skip them.
    """
    out: dict[str, pd.Series] = {}
    for spec in resource.schema.get("fields", []):
        name = spec["name"]
        if name not in text.columns or isinstance(text[name], pd.DataFrame):
            continue
        raw = text[name].astype(str)
        missing = raw.isin(_missing_values(resource, spec))
        kind = spec.get("type", "string")
        if kind in {"number", "integer"}:
            values = pd.to_numeric(raw.str.strip().where(~missing), errors="coerce")
            values = values.astype("float64")
            if kind == "integer":
                values = values.where(np.isfinite(values) & (values == np.round(values)))
                out[f"{OUT_OF_RANGE}{name}"] = _beyond_int64(raw.str.strip(), missing)
            else:
                lowered = raw.str.strip().str.lower()
                out[f"{NONFINITE}{name}"] = (
                    ~missing & (lowered.str.fullmatch(_NONFINITE) | np.isinf(values))
                ).astype(bool)
            out[name] = values
        elif kind == "boolean":
            true_values = set(spec.get("trueValues", ["true", "True", "TRUE", "1"]))
            false_values = set(spec.get("falseValues", ["false", "False", "FALSE", "0"]))
            col = pd.Series(pd.NA, index=raw.index, dtype="boolean")
            col[raw.isin(true_values) & ~missing] = True
            col[raw.isin(false_values) & ~missing] = False
            out[name] = col
        else:
            values = raw.to_numpy(dtype=object).copy()
            values[missing.to_numpy(dtype=bool)] = None
            out[name] = pd.Series(pd.Categorical(values), index=raw.index)
    return pd.DataFrame(out, index=text.index)
