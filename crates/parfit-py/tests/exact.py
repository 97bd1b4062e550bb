"""Reading what the CLI wrote with every float exact, and comparing floats by their bits: the suite's claim is
that Python gives the CLI's numbers bit for bit, so no test compares with a tolerance where bits are promised."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd


def read_csv(text_or_path, **kw) -> pd.DataFrame:
    """A CSV (a path, or the text itself), every float read back exactly (round trip)."""
    source = io.StringIO(text_or_path) if isinstance(text_or_path, str) and "\n" in text_or_path else text_or_path
    return exact(pd.read_csv(source, dtype=str, keep_default_na=False, **kw))


def exact(table: pd.DataFrame) -> pd.DataFrame:
    """A CSV read as text, each numeric column then parsed by Python's float (correctly rounded, so the CLI's
    shortest round-trip floats come back bit for bit); whole-number columns as integers."""
    out = {}
    for column in table.columns:
        cells = list(table[column])
        try:
            out[column] = np.array([int(c) for c in cells], dtype=np.int64)
        except ValueError:
            try:
                out[column] = np.array([float(c) for c in cells], dtype=float)
            except ValueError:
                out[column] = cells
    return pd.DataFrame(out)


def same_bits(a, b) -> bool:
    """Whether two float arrays (or sequences) hold the same numbers bit for bit, NaNs included."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and np.array_equal(a.view(np.uint64), b.view(np.uint64))
