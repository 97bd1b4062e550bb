"""``parfit.minimise``: a Python function minimised by parfit's optimisers (CMA-ES, Nelder–Mead, differential
evolution, L-BFGS-B) — the engine's own ask–tell driver, for models written in Python."""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from . import _arguments, _native, _tables
from ._native import ConfigError


class MinimiseResult:
    """The outcome of :func:`minimise`.

    Attributes
    ----------
    x : numpy.ndarray
        The best point found.
    value : float
        The function's value there.
    evaluations : int
        Function evaluations (candidates evaluated, whatever the batching).
    iterations : int
        The optimiser's iterations (generations, simplex steps, …).
    termination : str
        Why it stopped: ``"function_tolerance"``, ``"parameter_tolerance"``, ``"max_evaluations"``, … (as the CLI's
        ``result.json`` says it).
    seconds : float
        Wall time.
    algorithm : str
        The optimiser's name as the CLI spells it.
    """

    def __init__(self, raw: Mapping[str, Any], algorithm: str) -> None:
        self.x = np.frombuffer(raw["x"], dtype=np.float64).copy()
        self.value = float(raw["value"])
        self.evaluations = int(raw["evaluations"])
        self.iterations = int(raw["iterations"])
        self.termination = str(raw["termination"])
        self.seconds = float(raw["seconds"])
        self.algorithm = algorithm
        self._history = list(raw["history"])

    @property
    def history(self):
        """The best value after every iteration: columns ``iteration``, ``evaluations``, ``best_value`` and the
        best point's coordinates ``x0``, ``x1``, … (a DataFrame, or a dict of arrays without pandas)."""
        n = len(self.x)
        columns: dict[str, list] = {
            "iteration": [h["iteration"] for h in self._history],
            "evaluations": [h["evaluations"] for h in self._history],
            "best_value": [h["best_value"] for h in self._history],
        }
        for i in range(n):
            columns[f"x{i}"] = [h["best_x"][i] for h in self._history]
        return _tables.frame(columns)

    def __repr__(self) -> str:
        return (
            f"MinimiseResult(x={self.x.tolist()!r}, value={self.value!r}, evaluations={self.evaluations}, "
            f"iterations={self.iterations}, termination={self.termination!r})"
        )

    def _repr_html_(self) -> str:
        return _tables.html_table(
            [
                ("algorithm", self.algorithm),
                ("x", ", ".join(f"{v:.8g}" for v in self.x)),
                ("value", self.value),
                ("evaluations", self.evaluations),
                ("iterations", self.iterations),
                ("termination", self.termination.replace("_", " ")),
                ("seconds", self.seconds),
            ],
            "parfit.minimise",
        )


def minimise(
    f: Callable,
    x0: Sequence[float],
    bounds: Sequence[tuple[float | None, float | None]] | None = None,
    *,
    algorithm: str = "cmaes",
    vectorised: bool = False,
    seed: int = 0,
    threads: int | None = None,
    options: Mapping[str, Any] | None = None,
    max_evaluations: int | None = None,
    progress: Any = None,
) -> MinimiseResult:
    """Minimise a Python function with parfit's optimisers.

    The optimisers and the driver are the engine's: the same settings give the same optimiser as ``parfit fit``
    builds, so a problem written as a Python function and as a model file reach the same point in the same
    number of evaluations.

    Parameters
    ----------
    f : callable
        ``f(x) -> float`` for a point ``x`` (a 1-D float array), called once per candidate in the order the
        optimiser asks for them; or, with ``vectorised=True``, ``f(X) -> array`` for a batch ``X`` of shape
        ``[batch, n]`` (a CMA-ES generation, a Nelder–Mead step, a finite-difference gradient), returning one value
        per row. A value that is not finite (NaN, ±inf) counts as a failed evaluation (+inf). An exception raised
        by ``f`` stops the run and is raised from here.
    x0 : sequence of float
        The start.
    bounds : sequence of (lower, upper), optional
        One pair per coordinate; None (or ±inf) leaves a side open. Default: unbounded.
    algorithm : str
        ``"cmaes"`` (default), ``"nelder_mead"``, ``"differential_evolution"`` or ``"lbfgsb"`` — the CLI's names.
    vectorised : bool
        Call ``f`` once per batch instead of once per candidate.
    seed : int
        Seed of the random optimisers (CMA-ES, differential evolution).
    threads : int, optional
        Size of the engine's thread pool (``f`` itself runs under the GIL, one call at a time).
    options : dict, optional
        The optimiser's settings, as the keys of the configuration's ``[fit.<algorithm>]`` table (``sigma0``,
        ``population``, ``restarts`` for CMA-ES; ``initial_step`` for Nelder–Mead; …), and any of the ``[fit]``
        stopping rules ``max_iterations``, ``target_value``, ``max_seconds``, ``ftol``, ``xtol``.
    max_evaluations : int, optional
        Stop once this many evaluations are spent (a batch that would exceed it is not evaluated).
    progress : None, False or callable
        None shows a tqdm progress bar (when tqdm is installed and the run takes over a second), False nothing;
        a callable is called as ``progress(done, total)`` with iterations.

    Returns
    -------
    MinimiseResult

    Raises
    ------
    ConfigError
        Bad bounds, start, algorithm or option (the message names the key).
    RunError
        The function gave no finite value anywhere the optimiser looked.
    """
    if not callable(f):
        raise TypeError(f"f must be callable (got {type(f).__name__})")
    try:
        start = np.asarray(x0, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"x0: not numbers ({e})") from None
    if start.ndim != 1:
        raise ConfigError(f"x0 must be one-dimensional (got shape {start.shape})")
    n = start.size
    lower, upper = _bounds(bounds, n)
    evaluate = _batch_evaluator(f, n, vectorised)
    with _arguments.Progress(progress, "it") as report:
        raw = _native.minimise(
            evaluate,
            start.tolist(),
            lower,
            upper,
            algorithm=algorithm,
            seed=int(seed),
            threads=threads,
            options=dict(options) if options is not None else None,
            max_evaluations=max_evaluations,
            progress=report,
        )
    return MinimiseResult(raw, algorithm)


def _bounds(bounds: Any, n: int) -> tuple[list[float], list[float]]:
    if bounds is None:
        return [-math.inf] * n, [math.inf] * n
    pairs = list(bounds)
    if len(pairs) != n:
        raise ConfigError(f"bounds: {len(pairs)} pairs given for {n} coordinates of x0")
    lower, upper = [], []
    for i, pair in enumerate(pairs):
        try:
            lo, hi = pair
            lower.append(-math.inf if lo is None else float(lo))
            upper.append(math.inf if hi is None else float(hi))
        except (TypeError, ValueError):
            raise ConfigError(f"bounds[{i}]: expected a pair (lower, upper), got {pair!r}") from None
    return lower, upper


def _batch_evaluator(f: Callable, n: int, vectorised: bool) -> Callable[[bytes, int, int], list]:
    """The adaptor the engine calls with each batch (its points as bytes of float64, row after row)."""

    if vectorised:

        def evaluate(data: bytes, rows: int, n: int) -> list:
            batch = np.frombuffer(data, dtype=np.float64).reshape(rows, n).copy()
            values = np.asarray(f(batch), dtype=np.float64)
            if values.shape not in ((rows,), (rows, 1)):
                raise ConfigError(
                    f"a vectorised f returns one value per row: got shape {values.shape} for a batch of shape "
                    f"{batch.shape}"
                )
            return values.reshape(rows).tolist()

    else:

        def evaluate(data: bytes, rows: int, n: int) -> list:
            batch = np.frombuffer(data, dtype=np.float64).reshape(rows, n)
            return [float(f(batch[i].copy())) for i in range(rows)]

    return evaluate
