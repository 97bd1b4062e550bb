"""``parfit.run`` and ``parfit.project``: one simulation of a model, a Monte Carlo configuration's paths, or a
projection configuration's model points — the numbers ``parfit run`` prints and writes, as Python objects."""

from __future__ import annotations

import json
from typing import Any, Mapping

import numpy as np

from . import _arguments, _native, _tables


def _times(times: Any) -> str | None:
    """``times=``: "START:STOP:COUNT" or a list as the CLI's ``--times`` reads them; an array as that list, each
    float in its shortest round-trip form (so the engine reads exactly these numbers)."""
    if times is None or isinstance(times, str):
        return times
    values = np.asarray(times, dtype=float).ravel()
    return ",".join(repr(float(t)) for t in values)


def _ids(ids: list[str]) -> Any:
    """Point ids as a CSV reader takes them: whole numbers as integers, anything else as text."""
    try:
        if ids and all(i.strip().lstrip("+-").isdigit() for i in ids):
            return np.array([int(i) for i in ids], dtype=np.int64)
    except (ValueError, OverflowError):
        pass
    return np.array(ids, dtype=object)


def _rows(values: list[float], n_rows: int, columns: list[str]) -> np.ndarray:
    return np.asarray(values, dtype=float).reshape(n_rows, len(columns))


def _frame(matrix: np.ndarray, columns: list[str], index: Any = None, index_name: str | None = None):
    return _tables.frame({c: matrix[:, j] for j, c in enumerate(columns)}, index, index_name)


class MonteCarloResult:
    """A Monte Carlo configuration's run (``parfit run`` on a ``[montecarlo]`` configuration)."""

    def __init__(self, raw: dict[str, Any]):
        columns = list(raw["summary_columns"])
        rows = raw["summary_rows"]
        text_column = columns.index("output")
        cells = {
            c: [r[j] if j == text_column else float(r[j]) for r in rows] for j, c in enumerate(columns)
        }
        self._summary = _tables.frame(cells)
        self._report = json.loads(raw["report"])
        self._paths = None
        if raw["paths"] is not None:
            p = raw["paths"]
            swept = len(p["swept"][0]) if p["swept"] else 0
            n_out = p["outputs"]
            blocks = []
            for point, values in zip(p["swept"], p["values"]):
                v = np.asarray(values, dtype=float).reshape(-1, max(n_out, 1))[:, :n_out]
                n = v.shape[0]
                block = np.empty((n, swept + 1 + n_out), dtype=float)
                block[:, :swept] = point
                block[:, swept] = np.arange(n)
                block[:, swept + 1 :] = v
                blocks.append(block)
            table = np.vstack(blocks) if blocks else np.empty((0, len(p["columns"])))
            cols = {c: table[:, j] for j, c in enumerate(p["columns"])}
            cols["path"] = cols["path"].astype(np.int64)
            self._paths = _tables.frame(cols)

    @property
    def summary(self):
        """summary.csv: the swept values (if any), ``output`` and one column per statistic, one row per sweep
        point and summarised output."""
        return self._summary

    @property
    def report(self) -> dict[str, Any]:
        """summary.json's content: sizes, seeds, threads, seconds and each point's parameters and statistics."""
        return self._report

    @property
    def paths(self):
        """paths.csv when the configuration sets ``per_path = true`` (swept values, ``path``, every output);
        else None."""
        return self._paths

    def plot(self, ax: Any = None):
        """The summarised statistics of each output across the sweep points (matplotlib); returns the axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots()
        points = self._report["points"]
        for output, stats in points[0]["statistics"].items():
            for stat in stats:
                ax.plot(range(len(points)), [p["statistics"][output][stat] for p in points], marker="o",
                        label=f"{output} {stat}")
        ax.set_xlabel("sweep point")
        ax.set_ylabel("value")
        ax.set_title(f"{self._report['model']}: {self._report['paths']} paths × {self._report['periods']} periods")
        ax.legend(fontsize="small")
        return ax

    def _repr_html_(self) -> str:
        """A summary table for Jupyter."""
        r = self._report
        rows = [
            ("model", r["model"]),
            ("paths × periods", f"{r['paths']} × {r['periods']}"),
            ("seeds", ", ".join(map(str, r["seeds"]))),
            ("sweep points", len(r["points"])),
            ("threads", r["threads"]),
            ("seconds", r["seconds"]),
        ]
        for output, stats in r["points"][0]["statistics"].items():
            rows.append((f"{output} (first point)", ", ".join(f"{k} {v:.6g}" for k, v in stats.items())))
        return _tables.html_table(rows, "parfit Monte Carlo run")

    def __repr__(self) -> str:
        """The run in one line."""
        r = self._report
        return f"MonteCarloResult({r['model']}: {r['paths']} paths × {r['periods']} periods, {len(r['points'])} point(s))"


class ProjectionResult:
    """A projection configuration's run (``parfit run`` on a ``[projection]`` configuration)."""

    def __init__(self, raw: dict[str, Any]):
        pv = raw["pv"]
        ids = list(pv["ids"])
        self._pv = _frame(_rows(pv["values"], len(ids), pv["columns"]), pv["columns"], _ids(ids), "point_id")
        self._totals = json.loads(raw["totals"])
        self._monthly = {}
        for table in raw["monthly"]:
            matrix = _rows(table["values"], table["months"], table["columns"])
            self._monthly[table["name"]] = _frame(matrix, table["columns"], np.arange(table["months"]), "t")
        self._audit = None
        if raw["audit"] is not None:
            a = raw["audit"]
            n = len(a["values"]) // max(len(a["columns"]), 1)
            self._audit = _frame(_rows(a["values"], n, a["columns"]), a["columns"])
            self._audit_id = a["id"]

    @property
    def pv(self):
        """pv.csv: each model point's present values (the mean over the scenarios), indexed by ``point_id``."""
        return self._pv

    @property
    def totals(self) -> dict[str, Any]:
        """totals.json's content: the totals (mean over scenarios), per-scenario totals, sizes, threads, seconds."""
        return self._totals

    @property
    def result_cf(self):
        """result_cf.csv: the portfolio's monthly cash flows, indexed by month ``t``; None without ``monthly``."""
        return self._monthly.get("result_cf.csv")

    @property
    def result_pols(self):
        """result_pols.csv: the portfolio's monthly policy counts, indexed by month ``t``; None without
        ``monthly``."""
        return self._monthly.get("result_pols.csv")

    @property
    def audit(self):
        """audit.csv: every monthly quantity of the configuration's ``audit_point`` (one row per month); None
        without it."""
        return self._audit

    def plot(self, ax: Any = None):
        """The monthly net cash flow and policies in force (with ``monthly``), else the present value totals
        (matplotlib); returns the axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots()
        cf, pols = self.result_cf, self.result_pols
        if cf is not None and "Net Cashflow" in _columns(cf):
            ax.plot(_column(cf, "Net Cashflow"), label="Net Cashflow")
            ax.set_xlabel("month")
            ax.set_ylabel("net cash flow")
            if pols is not None and "pols_if" in _columns(pols):
                twin = ax.twinx()
                twin.plot(_column(pols, "pols_if"), color="tab:orange", label="pols_if")
                twin.set_ylabel("policies in force")
        else:
            names = list(self._totals["totals"])
            ax.bar(names, [self._totals["totals"][n] for n in names])
            ax.set_ylabel("present value")
            ax.tick_params(axis="x", labelrotation=45)
        ax.set_title(f"{self._totals['model']}: {self._totals['points']} model points")
        return ax

    def _repr_html_(self) -> str:
        """A summary table for Jupyter."""
        t = self._totals
        rows = [
            ("model", f"{t['model']} (plugin {t['plugin']})"),
            ("model points", t["points"]),
            ("scenarios", ", ".join(map(str, t["scenarios"]))),
            ("horizon (months)", t["horizon_months"]),
            ("threads", t["threads"]),
            ("seconds", t["seconds"]),
        ]
        rows += [(f"PV {name}", v) for name, v in t["totals"].items()]
        return _tables.html_table(rows, "parfit projection")

    def __repr__(self) -> str:
        """The run in one line."""
        t = self._totals
        return f"ProjectionResult({t['model']}: {t['points']} model points, {len(t['scenarios'])} scenario(s))"


def _columns(table: Any) -> list[str]:
    return list(table.columns) if hasattr(table, "columns") else list(table)


def _column(table: Any, name: str) -> np.ndarray:
    return np.asarray(table[name])


def run(
    config: Any,
    *,
    times: Any = None,
    set: Mapping[str, float] | None = None,
    seed: int | None = None,
    threads: int | None = None,
    plugins: Any = None,
    progress: Any = None,
):
    """Run a model file, a model configuration, a Monte Carlo configuration or a projection configuration — what
    ``parfit run`` does with it.

    Parameters
    ----------
    config : str, os.PathLike or dict
        A model file (``.ds``, ``.mdl``, ``.mc``, …), or a TOML configuration (a path, or the same structure as a
        dict).
    times : str or array-like, optional
        Output times of a model: ``"START:STOP:COUNT"``, a comma-separated list, or an array (the CLI's
        ``--times``). Default: the configuration's ``[run] times``, else its data's times.
    set : dict, optional
        Parameter values, ``{name: value}`` (the CLI's ``--set``).
    seed : int, optional
        The Monte Carlo seed (overrides the configuration's ``seed`` and ``seeds``); a single simulation has none.
    threads : int, optional
        Worker threads of a Monte Carlo run or projection (default: the configuration's ``threads``, else every
        core); the numbers do not depend on it. A single simulation runs on the calling thread.
    plugins : list of paths, optional
        Plugin files or directories searched first.
    progress : None, False or callable
        None shows a tqdm bar (after 1 s) when tqdm is installed; False nothing; a callable gets
        ``(done, total)``.

    Returns
    -------
    DataFrame
        For a model: one row per time (index ``time``; one row without index for a scalar model), one column per
        output, as ``parfit run`` prints (a dict of arrays without pandas).
    MonteCarloResult
        For a ``[montecarlo]`` configuration.
    ProjectionResult
        For a ``[projection]`` configuration (as :func:`project`).
    """
    config = _arguments.config(config)
    kind = _native.run_kind(config)
    if kind == "projection":
        if times is not None or set is not None or seed is not None:
            raise _native.ConfigError("a projection takes no times=, set= or seed= (its model points set everything)")
        return project(config, threads=threads, plugins=plugins, progress=progress)
    if kind == "montecarlo":
        if times is not None:
            raise _native.ConfigError("a Monte Carlo run takes no times= (its [montecarlo] periods set them)")
        with _arguments.Progress(progress, "paths") as bar:
            raw = _native.run_montecarlo(
                config, set=_arguments.sets(set), seed=seed, threads=threads, plugins=_arguments.plugins(plugins),
                progress=bar,
            )
        return MonteCarloResult(raw)
    raw = _native.run_model(config, times=_times(times), set=_arguments.sets(set), plugins=_arguments.plugins(plugins))
    columns = list(raw["columns"])
    if raw["times"] is None:
        values = np.asarray(raw["values"], dtype=float).reshape(1, len(columns))
        return _frame(values, columns)
    t = np.asarray(raw["times"], dtype=float)
    values = np.asarray(raw["values"], dtype=float).reshape(len(t), len(columns))
    return _frame(values, columns, t, "time")


def project(
    config: Any,
    *,
    model_points: Any = None,
    threads: int | None = None,
    plugins: Any = None,
    progress: Any = None,
) -> ProjectionResult:
    """Project every model point of a projection configuration (a TOML file with a ``[projection]`` table, or the
    same structure as a dict) — ``parfit run`` on it, without files.

    Parameters
    ----------
    config : str, os.PathLike or dict
        The projection configuration.
    model_points : DataFrame or dict of columns, optional
        The model point table, instead of the file ``[projection] model_points`` names (its first column is the
        point id).
    threads, plugins, progress
        As for :func:`run`.

    Returns
    -------
    ProjectionResult
        ``pv``, ``totals``, ``result_cf``, ``result_pols`` and ``audit``: the CLI's files as DataFrames and a dict.
    """
    text = None if model_points is None else _tables.csv_text(model_points, "model_points")
    with _arguments.Progress(progress, "points") as bar:
        raw = _native.project(
            _arguments.config(config), model_points=text, threads=threads, plugins=_arguments.plugins(plugins), progress=bar
        )
    return ProjectionResult(raw)
