"""``parfit.fit`` and ``parfit.fit_many``: the CLI's ``parfit fit`` and ``parfit fit-many`` from Python, with
their numbers bit for bit (the same Rust code runs them); results as objects with DataFrames."""

from __future__ import annotations

import io
import json
import os
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from . import _arguments, _native, _tables
from ._arguments import Config, PathLike
from ._arguments import ProgressArg as Progress



class FitResult:
    """The outcome of :func:`fit`: the CLI's ``parfit fit`` result (``result.json`` and ``fitted.csv``).

    Attributes are read-only; :meth:`to_dict` gives ``result.json``'s content."""

    def __init__(self, raw: dict):
        self._raw = raw
        self._doc = json.loads(raw["document"])
        self._x = {name: value for name, value in raw["x"]}

    @property
    def x(self) -> dict:
        """The fitted value of each free parameter, by name (model units), in the model's order."""
        return dict(self._x)

    @property
    def value(self) -> float:
        """The cost at :attr:`x`."""
        return self._doc["value"]

    @property
    def cost(self) -> str:
        """The cost's name: ``"sse"``, ``"rmse"`` or ``"gaussian_nll"``."""
        return self._doc["cost"]

    @property
    def evaluations(self) -> int:
        """How many times the objective was evaluated (every stage and the polish)."""
        return self._doc["evaluations"]

    @property
    def iterations(self) -> int:
        """The optimiser iterations (generations, simplex steps, …) over every stage and the polish."""
        return self._doc["iterations"]

    @property
    def termination(self) -> str:
        """Why the last run stopped, e.g. ``"function_tolerance"`` or ``"max_iterations"``."""
        return self._doc["termination"]

    @property
    def seconds(self) -> float:
        """Wall time of the fit in seconds."""
        return self._doc["seconds"]

    @property
    def seed(self) -> int:
        """The seed used (the call's, else the configuration's, else 0)."""
        return self._doc["seed"]

    @property
    def threads(self) -> int:
        """The worker threads used."""
        return self._doc["threads"]

    @property
    def algorithm(self) -> str:
        """The optimiser, e.g. ``"cmaes"``."""
        return self._doc["algorithm"]

    @property
    def history(self):
        """The convergence history, one row per iteration: ``iteration``, ``evaluations``, ``best_value`` and
        ``best_x.NAME`` per free parameter (the optimiser's coordinates: the natural log of a ``log_scale``
        parameter). A DataFrame (a dict of arrays without pandas); empty when ``history=False``."""
        points = self._doc.get("history") or []
        free = self._raw["free"]
        columns = {
            "iteration": np.array([p["iteration"] for p in points], dtype=np.int64),
            "evaluations": np.array([p["evaluations"] for p in points], dtype=np.int64),
            "best_value": np.array([_number(p["best_value"]) for p in points], dtype=float),
        }
        for k, name in enumerate(free):
            columns[f"best_x.{name}"] = np.array([_number(p["best_x"][k]) for p in points], dtype=float)
        return _tables.frame(columns)

    @property
    def fitted(self):
        """The fitted model's outputs on the CLI's plot grid over the data's span (``fitted.csv``): a column ``t``,
        then one per model output. A DataFrame (a dict of arrays without pandas)."""
        curves = self._raw["fitted"]
        outputs = curves["outputs"]
        values = np.array(curves["values"], dtype=float).reshape(len(curves["times"]), len(outputs))
        columns = {"t": np.array(curves["times"], dtype=float)}
        for j, name in enumerate(outputs):
            columns[name] = values[:, j]
        return _tables.frame(columns)

    def to_dict(self) -> dict:
        """``result.json``'s content: the fitted values, cost, counts, termination, how the fit ran and its
        history."""
        return json.loads(self._raw["document"])

    def plot(self, ax=None):
        """Plot the data and the fitted curves of each observed output (matplotlib); returns the axes."""
        plt = _arguments.matplotlib()
        if ax is None:
            _, ax = plt.subplots()
        data = self._raw["data"]
        times = np.array(data["times"], dtype=float)
        observed = np.array(data["values"], dtype=float).reshape(len(times), len(data["outputs"]))
        curves = self._raw["fitted"]
        fitted = np.array(curves["values"], dtype=float).reshape(len(curves["times"]), len(curves["outputs"]))
        for k, name in enumerate(data["outputs"]):
            line = ax.plot(curves["times"], fitted[:, curves["outputs"].index(name)], label=f"{name} (fitted)")[0]
            ax.plot(times, observed[:, k], "o", ms=3, color=line.get_color(), alpha=0.6, label=f"{name} (data)")
        ax.set_xlabel("t")
        ax.set_title(f"{self._doc['config']}: {self.cost.upper()} = {self.value:.6g}")
        ax.legend()
        return ax

    def _repr_html_(self) -> str:
        rows = [
            ("algorithm", f"{self.algorithm} (seed {self.seed}, {self.threads} threads)"),
            (self.cost.upper(), self.value),
            ("evaluations", self.evaluations),
            ("iterations", self.iterations),
            ("termination", self.termination),
            ("seconds", self.seconds),
        ]
        rows += [(name, value) for name, value in self._x.items()]
        return _tables.html_table(rows, f"parfit fit: {self._doc['config']}")

    def __repr__(self) -> str:
        x = ", ".join(f"{k}={v:.6g}" for k, v in self._x.items())
        return f"FitResult({self.cost}={self.value:.6g}, {x}, evaluations={self.evaluations})"


def _number(v: Any) -> float:
    """A JSON number, or NaN for the ``null`` a non-finite value is written as."""
    return float("nan") if v is None else float(v)


def fit(
    config: Config,
    *,
    data: Any = None,
    algorithm: Optional[str] = None,
    set: Optional[Mapping[str, float]] = None,
    seed: Optional[int] = None,
    threads: Optional[int] = None,
    plugins: Optional[Sequence[PathLike]] = None,
    progress: Progress = None,
    history: bool = True,
) -> FitResult:
    """Fit a model to data as ``parfit fit`` does, with the CLI's numbers bit for bit.

    Parameters
    ----------
    config
        A TOML configuration file's path, or the same structure as a dict (``[model]``, ``[data]``,
        ``[parameters]``, ``[fit]``…); relative paths in a dict resolve against the working directory.
    data
        The observations as a pandas DataFrame or a dict of columns, instead of the file ``[data] path`` names
        (the columns ``[data]`` names: time and observed outputs).
    algorithm
        The optimiser, overriding ``[fit] algorithm``: ``"cmaes"``, ``"nelder_mead"``,
        ``"differential_evolution"``, ``"lbfgsb"`` or ``"levenberg_marquardt"``.
    set
        Parameter starts by name, overriding ``[parameters]`` (the CLI's ``--set``).
    seed
        The random seed (default: the configuration's ``seed``, else 0).
    threads
        Worker threads (default: the configuration's ``threads``, else one per core). Results do not depend on it.
    plugins
        Plugin files or directories searched before ``PARFIT_PLUGIN_PATH`` and the bundled plugins.
    progress
        ``None``: a tqdm bar of iterations when tqdm is installed; ``False``: none; a callable: called as
        ``progress(done, total)``: iterations over every horizon stage and the polish, out of ``[fit]
        max_iterations`` per stage (``total`` 0 without a limit; the polish may go past it).
    history
        Record the best value after every iteration (:attr:`FitResult.history`).

    Returns
    -------
    FitResult

    Raises
    ------
    ConfigError
        A bad configuration or data, with the CLI's ``file:line:column`` message.
    ModelError
        The model file's error.
    RunError
        No candidate could be simulated.
    KeyboardInterrupt
        Ctrl-C or an exception from ``progress`` stopped the fit.
    """
    files = {}
    data_name = None
    if data is not None:
        data_name = "<data>"
        files[data_name] = _tables.csv_text(data, "data")
    with _arguments.Progress(progress, "it") as callback:
        raw = _native.fit(
            _arguments.config(config),
            files=files,
            data=data_name,
            algorithm=algorithm,
            set=_arguments.sets(set),
            seed=seed,
            threads=threads,
            plugins=_arguments.plugins(plugins),
            progress=callback,
            history=bool(history),
        )
    return FitResult(raw)


class FitManyResult:
    """The outcome of :func:`fit_many`: the CLI's ``parfit fit-many`` results (``results.csv``, ``summary.json``)."""

    def __init__(self, raw: dict):
        self._raw = raw
        self._summary = json.loads(raw["summary"])
        self._table = _read_results(raw["csv"])

    @property
    def table(self):
        """One row per case in input order, with ``results.csv``'s columns and values: the case's id columns,
        each fitted parameter, the cost, ``evaluations``, ``iterations``, ``termination`` and ``error`` (a failed
        case has no parameter values). A DataFrame (a dict of arrays without pandas)."""
        return self._table.copy()

    @property
    def summary(self) -> dict:
        """``summary.json``: the number of cases and failures, each failure, and quantiles, min and max of each
        parameter, of the cost and of the evaluations over the cases that succeeded."""
        return json.loads(self._raw["summary"])

    @property
    def cases(self) -> int:
        """The number of cases."""
        return self._raw["cases"]

    @property
    def failed(self) -> int:
        """The number of cases whose fit failed (their errors are in :attr:`table`'s ``error`` column)."""
        return self._summary["failed"]

    @property
    def fitted(self) -> int:
        """Cases fitted by this call (the rest came from the checkpoint)."""
        return self._raw["fitted"]

    @property
    def resumed(self) -> int:
        """Cases read back from the checkpoint (``resume=True``)."""
        return self._raw["resumed"]

    @property
    def seconds(self) -> float:
        """Wall time of this call's fits in seconds."""
        return self._raw["seconds"]

    @property
    def parameters(self) -> list:
        """The fitted parameters' names (their columns in :attr:`table`)."""
        return list(self._raw["parameters"])

    @property
    def output(self) -> Optional[str]:
        """The output directory holding ``checkpoint.jsonl``, ``results.csv`` and ``summary.json``, or ``None``
        when there was none (nothing written)."""
        out = self._raw["output"]
        return None if out is None else os.fspath(out)

    def plot(self, bins: int = 40):
        """Histograms of each fitted parameter over the cases that succeeded (matplotlib); returns the figure."""
        plt = _arguments.matplotlib()
        names = self.parameters
        cols = min(3, max(1, len(names)))
        rows = (len(names) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
        table = self._table
        for ax, name in zip(axes.flat, names):
            values = np.asarray(table[name], dtype=float)
            ax.hist(values[np.isfinite(values)], bins=bins)
            ax.set_title(name)
        for ax in list(axes.flat)[len(names) :]:
            ax.set_visible(False)
        fig.suptitle(f"fitted parameters over {self.cases} cases")
        fig.tight_layout()
        return fig

    def _repr_html_(self) -> str:
        cost = self._raw["cost"]
        rows = [
            ("cases", f"{self.cases} ({self.fitted} fitted now, {self.resumed} from the checkpoint)"),
            ("failed", self.failed),
            ("seconds", self.seconds),
            ("threads", self._raw["threads"]),
            ("output", self.output),
        ]
        for name in self.parameters:
            p = self._summary["parameters"][name]
            rows.append((name, f"median {_show(p['median'])} (q05 {_show(p['q05'])}, q95 {_show(p['q95'])})"))
        rows.append((cost, f"median {_show(self._summary[cost]['median'])}"))
        return _tables.html_table(rows, "parfit fit_many")

    def __repr__(self) -> str:
        return f"FitManyResult(cases={self.cases}, failed={self.failed}, output={self.output!r})"


def _show(v: Any) -> str:
    return "–" if v is None else f"{v:.6g}"


def _read_results(text: str):
    """``results.csv``'s text as a table, numbers exactly as written."""
    if _tables.has_pandas():
        import pandas as pd

        # pandas before 3 rounds some decimals unless asked not to; from 3 on, exact is the default.
        exact = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}
        return pd.read_csv(io.StringIO(text), keep_default_na=False, na_values=[""], **exact)
    import csv

    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], rows[1:]
    columns = {}
    for j, name in enumerate(header):
        cells = [r[j] for r in body]
        try:
            columns[name] = np.array([float(c) if c != "" else np.nan for c in cells])
        except ValueError:
            columns[name] = np.array(cells, dtype=object)
    return columns


def fit_many(
    config: Config,
    *,
    cases: Any = None,
    output: Optional[PathLike] = None,
    resume: bool = False,
    algorithm: Optional[str] = None,
    set: Optional[Mapping[str, float]] = None,
    seed: Optional[int] = None,
    threads: Optional[int] = None,
    plugins: Optional[Sequence[PathLike]] = None,
    progress: Progress = None,
) -> FitManyResult:
    """Fit a model to every case (row) of a table independently, cases in parallel, as ``parfit fit-many`` does,
    with the CLI's numbers bit for bit.

    Each finished case is appended to ``checkpoint.jsonl`` in the output directory (the CLI's file); when every
    case is done, ``results.csv`` and ``summary.json`` are written there too. Ctrl-C (or an exception from
    ``progress``) stops starting cases and raises KeyboardInterrupt saying how many cases are saved; calling again
    with ``resume=True`` fits only the rest and gives the uninterrupted results.

    Parameters
    ----------
    config
        A TOML configuration file's path, or the same structure as a dict, with a ``[cases]`` table.
    cases
        The cases table as a pandas DataFrame or a dict of columns, instead of the file ``[cases] path`` names.
    output
        The output directory (default: the configuration's ``[output] dir``; with neither, nothing is written
        and there is no checkpoint).
    resume
        Continue from the output directory's checkpoint, fitting only the cases it lacks.
    algorithm, set, seed, threads, plugins
        As for :func:`fit` (``set`` gives every case's starts).
    progress
        ``None``: a tqdm bar of cases when tqdm is installed; ``False``: none; a callable: called as
        ``progress(done, total)`` in cases.

    Returns
    -------
    FitManyResult

    Raises
    ------
    ConfigError
        A bad configuration, table or checkpoint (``file:line:column``), or ``resume=True`` without an output
        directory.
    ModelError
        The model file's error.
    RunError
        Every case failed, or the checkpoint could not be written.
    KeyboardInterrupt
        The run was stopped; the message says how many cases are saved.
    """
    files = {}
    cases_name = None
    if cases is not None:
        cases_name = "<cases>"
        files[cases_name] = _tables.csv_text(cases, "cases")
    with _arguments.Progress(progress, "case") as callback:
        raw = _native.fit_many(
            _arguments.config(config),
            files=files,
            cases=cases_name,
            output=None if output is None else os.fspath(output),
            resume=bool(resume),
            algorithm=algorithm,
            set=_arguments.sets(set),
            seed=seed,
            threads=threads,
            plugins=_arguments.plugins(plugins),
            progress=callback,
        )
    return FitManyResult(raw)
