"""Conversions between Python tables and parfit's CSV inputs and results (no logic beyond conversions)."""

from __future__ import annotations

import io
import os
from typing import Any, Mapping, Sequence

import numpy as np

try:  # pandas is optional: results are DataFrames when it is installed.
    import pandas as _pd
except ImportError:  # pragma: no cover - exercised only without pandas
    _pd = None


def has_pandas() -> bool:
    return _pd is not None


def csv_text(table: Any, what: str) -> str:
    """A table given from Python as CSV text: a pandas DataFrame (its columns, not its index), or a mapping of
    column name to a 1-D sequence or array. Floats are written in their shortest round-trip form, so the engine
    reads exactly the numbers given."""
    if _pd is not None and isinstance(table, _pd.DataFrame):
        columns = {str(c): table[c].to_numpy() for c in table.columns}
    elif isinstance(table, Mapping):
        columns = {str(k): np.asarray(v) for k, v in table.items()}
    else:
        raise TypeError(
            f"{what} must be a pandas DataFrame or a dict of column name -> values (got {type(table).__name__})"
        )
    lengths = {name: len(values) for name, values in columns.items()}
    for name, values in columns.items():
        if values.ndim != 1:
            raise ValueError(f"{what}: column {name!r} must be one-dimensional (shape {values.shape})")
    if len(set(lengths.values())) > 1:
        raise ValueError(f"{what}: columns differ in length: {lengths}")
    out = io.StringIO()
    out.write(",".join(_quote(n) for n in columns) + "\n")
    n = next(iter(lengths.values()), 0)
    cells = [[_cell(v) for v in values] for values in columns.values()]
    for i in range(n):
        out.write(",".join(c[i] for c in cells) + "\n")
    return out.getvalue()


def _cell(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return "" if f != f else repr(f)  # NaN: a missing observation
    if isinstance(v, (bool, np.bool_)):
        return "1" if v else "0"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if v is None:
        return ""
    return _quote(str(v))


def _quote(s: str) -> str:
    if any(ch in s for ch in ',"\n\r') or s != s.strip():
        return '"' + s.replace('"', '""') + '"'
    return s


def frame(columns: Mapping[str, Sequence[Any]], index: Sequence[Any] | None = None, index_name: str | None = None):
    """A result table: a pandas DataFrame when pandas is installed, else a dict of numpy arrays."""
    if _pd is not None:
        df = _pd.DataFrame({k: list(v) if not isinstance(v, np.ndarray) else v for k, v in columns.items()})
        if index is not None:
            df.index = _pd.Index(index, name=index_name)
        return df
    out = {k: np.asarray(v) for k, v in columns.items()}
    if index is not None:
        out = {index_name or "index": np.asarray(index), **out}
    return out


def html_table(rows: Sequence[tuple[str, Any]], title: str) -> str:
    """A small two-column HTML table for ``_repr_html_``."""
    import html

    body = "".join(
        f"<tr><th style='text-align:left'>{html.escape(str(k))}</th><td style='text-align:left'>"
        f"{html.escape(_show(v))}</td></tr>"
        for k, v in rows
    )
    return f"<div><strong>{html.escape(title)}</strong><table>{body}</table></div>"


def _show(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def fspath(p: Any) -> str:
    return os.fspath(p)
