"""Unique, primary-key and foreign-key checks of the fast path (part of
:mod:`trialpool.validate.fast`), as frictionless (v5) checks them.

The checks compare parsed values, as frictionless does: ``4`` and ``4.0`` are the same
number, an empty or invalid key cell is ``None``, and a NaN number equals nothing. A
unique field or a primary key repeated in a later row is an error at that row (its note
names the first row); a primary key whose cells are all ``None`` is an error; a foreign
key whose values (not all ``None``) are not among the referenced resource's rows is an
error. Each key's values are codes (``_Key``), so the checks are vectorised with pandas
and numpy.

``_error`` builds every error descriptor of the fast path with frictionless' own error
classes (the cell and end-of-file errors of :mod:`trialpool.validate.fast` use it too).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import numpy as np
import pandas as pd

from trialpool.package.loader import Resource


def _error(kind: str, **options: Any) -> dict[str, Any]:
    """A frictionless error descriptor, made by frictionless' own error class."""
    from frictionless import errors

    classes = {
        "type-error": errors.TypeError,
        "constraint-error": errors.ConstraintError,
        "missing-cell": errors.MissingCellError,
        "unique-error": errors.UniqueError,
        "blank-row": errors.BlankRowError,
        "primary-key": errors.PrimaryKeyError,
        "foreign-key": errors.ForeignKeyError,
        "hash-count": errors.HashCountError,
        "byte-count": errors.ByteCountError,
    }
    cls = classes[kind]
    if kind in {"hash-count", "byte-count"}:
        return dict(cls(note=options["note"]).to_descriptor())
    options.setdefault("cells", [])
    return dict(cls(**options).to_descriptor())


@dataclass
class _Key:
    """Parsed values of one field for the key checks: a code per row, the distinct values.

    Codes are equal exactly when frictionless' parsed values are equal (``None`` for an
    empty or invalid cell is one value; each NaN is its own).
    """

    codes: np.ndarray  # int64, one per row
    values: np.ndarray  # object, indexed by code

    @classmethod
    def from_parts(cls, parts: list[tuple[np.ndarray, np.ndarray]]) -> _Key:
        """Merge per-chunk (row codes, distinct values) into one code space."""
        if not parts:
            return cls(np.zeros(0, dtype=np.int64), np.empty(0, dtype=object))
        offsets = np.cumsum([0] + [len(v) for _, v in parts])
        merged = np.concatenate([v for _, v in parts])
        codes, values = pd.factorize(pd.Series(merged, dtype=object), use_na_sentinel=False)
        rows = np.concatenate([codes[off + c] for (c, _), off in zip(parts, offsets, strict=False)])
        # factorize turns None into NaN; a NaN number is a _Nan object, so NaN means None
        distinct = np.asarray(values, dtype=object).copy()
        distinct[pd.isna(distinct)] = None
        return cls(rows.astype(np.int64), distinct)

    @property
    def none(self) -> np.ndarray:
        """Per row: the parsed value is None."""
        return _is_none(self.values)[self.codes] if len(self.values) else np.zeros(0, bool)

    def value(self, row: int) -> Any:
        return self.values[self.codes[row]]


def _is_none(values: np.ndarray) -> np.ndarray:
    """Elementwise ``value is None`` (keys hold str, int, float, bool, _Nan or None)."""
    if len(values) == 0:
        return np.zeros(0, dtype=bool)
    return np.asarray(np.equal(values, None), dtype=bool)


class _Table(Protocol):
    """What the key checks read of a resource read on the fast path (``fast._Parsed``)."""

    resource: Resource
    fl_resource: Any
    rows: int
    keys: dict[str, _Key]


def _combine(parts: list[np.ndarray]) -> np.ndarray:
    """One code per row for a tuple of codes (equal exactly when all parts are equal).

    Codes are mixed by arithmetic while the product of their ranges fits in 62 bits, and
    renumbered (factorised) only when it would not."""
    key = parts[0].astype(np.int64)
    span = int(key.max(initial=0)) + 1
    for part in parts[1:]:
        size = int(part.max(initial=0)) + 1
        if span * size >= 1 << 62:
            key, uniques = pd.factorize(key)
            key = key.astype(np.int64)
            span = len(uniques)
        key = key * size + part
        span *= size
    return key


def _joint(a: _Key, b: _Key) -> tuple[np.ndarray, np.ndarray]:
    """Codes of two keys in one code space (for foreign keys)."""
    merged = np.concatenate([a.values, b.values])
    codes, _ = pd.factorize(pd.Series(merged, dtype=object), use_na_sentinel=False)
    return codes[: len(a.values)][a.codes], codes[len(a.values) :][b.codes]


def _prev_same(codes: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """For each row, the index of the previous row with the same code (-1 if none)."""
    prev = np.full(len(codes), -1, dtype=np.int64)
    idx = np.flatnonzero(valid)
    if len(idx) == 0:
        return prev
    order = idx[np.argsort(codes[idx], kind="stable")]
    same = codes[order][1:] == codes[order][:-1]
    prev[order[1:][same]] = order[:-1][same]
    return prev


def _key_errors(parsed: _Table, lookups: Mapping[str, _Table]) -> list[tuple[int, int, Any]]:
    """unique, primary-key and foreign-key errors over all rows, as (row, rank, maker).

    ``maker()`` builds the error descriptor (only for the errors that are reported).
    """
    out: list[tuple[int, int, Any]] = []
    schema = parsed.fl_resource.schema
    n = parsed.rows
    if n == 0:
        return []
    names = [f.name for f in schema.fields]
    for j, fl_field in enumerate(schema.fields):
        if not fl_field.constraints.get("unique"):
            continue
        key = parsed.keys[fl_field.name]
        prev = _prev_same(key.codes, ~key.none)
        for i in np.flatnonzero(prev >= 0).tolist():
            out.append(
                (
                    i + 2,
                    20_000 + j,
                    partial(
                        _error,
                        "unique-error",
                        note=f"the same as in the row at position {int(prev[i]) + 2}",
                        row_number=i + 2,
                        cell=_text(key.value(i)),
                        field_name=fl_field.name,
                        field_number=j + 1,
                    ),
                )
            )
    pk = list(schema.primary_key)
    if pk and set(pk) <= set(names):
        keys = [parsed.keys[name] for name in pk]
        all_none = np.ones(n, dtype=bool)
        for key in keys:
            all_none &= key.none
        prev = _prev_same(_combine([key.codes for key in keys]), ~all_none)
        for i in np.flatnonzero(all_none | (prev >= 0)).tolist():
            note = (
                'cells composing the primary keys are all "None"'
                if all_none[i]
                else f"the same as in the row at position {int(prev[i]) + 2}"
            )
            out.append((i + 2, 30_000, partial(_error, "primary-key", note=note, row_number=i + 2)))
    for k, fk in enumerate(schema.foreign_keys):
        local = list(fk["fields"])
        ref_name = fk["reference"]["resource"] or parsed.resource.name
        ref_fields = list(fk["reference"]["fields"])
        if not set(local) <= set(names):
            continue
        ref = lookups[ref_name]
        target = [parsed.keys[f] for f in local]
        source = [ref.keys[f] for f in ref_fields]
        t_none = np.ones(n, dtype=bool)
        for key in target:
            t_none &= key.none
        s_none = np.ones(ref.rows, dtype=bool)
        for key in source:
            s_none &= key.none
        pairs = [_joint(a, b) for a, b in zip(target, source, strict=True)]
        joint = _combine([np.concatenate([t, r]) for t, r in pairs])
        found = np.isin(joint[:n], joint[n:][~s_none])
        for i in np.flatnonzero(~found & ~t_none).tolist():
            cells = [key.value(i) for key in target]
            note = 'for "{}": values "{}" not found in the lookup table "{}" as "{}"'.format(
                ", ".join(local),
                ", ".join(str(c) for c in cells),
                ref_name,
                ", ".join(ref_fields),
            )
            out.append(
                (
                    i + 2,
                    40_000 + k,
                    partial(
                        _error,
                        "foreign-key",
                        note=note,
                        row_number=i + 2,
                        field_names=local,
                        field_cells=[_text(c) for c in cells],
                        reference_name=ref_name,
                        reference_field_names=ref_fields,
                    ),
                )
            )
    out.sort(key=lambda t: (t[0], t[1]))
    return out


def _text(value: Any) -> str:
    return "" if value is None else str(value)
