"""``parfit.Model``: a model file (DiffSL ``.ds``, Vensim ``.mdl``, …) simulated from Python; and
``parfit.MonteCarloModel``: a Monte Carlo model file (``.mc``) whose paths are run from Python."""

from __future__ import annotations

import operator
import os
from typing import Any, Mapping, Sequence, Union

import numpy as np

from . import _arguments, _native, _tables
from ._native import ConfigError

Values = Union[Mapping[str, float], Sequence[float], np.ndarray, None]


class _Opened:
    """What both kinds of model share: the plugin opens the file (or the kind) with its options; ``_open`` is the
    native class that does it."""

    _open: Any

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        *,
        kind: str | None = None,
        plugin: str | None = None,
        plugins: Sequence[str | os.PathLike] | None = None,
        **options: Any,
    ) -> None:
        self._native = type(self)._open(
            None if path is None else os.fspath(path),
            kind=kind,
            plugin=plugin,
            plugins=[os.fspath(p) for p in (plugins or [])],
            options=options,
        )
        self._spec = self._native.spec

    @property
    def path(self) -> str | None:
        """The model file, as given (None for a model made from a kind alone)."""
        path = self._native.path
        return None if path is None else os.fspath(path)

    @property
    def kind(self) -> str:
        """The model kind, e.g. ``"diffsl"`` or ``"montecarlo"``."""
        return self._native.kind

    @property
    def plugin(self) -> str:
        """The name of the plugin that made the model."""
        return self._native.plugin


class Model(_Opened):
    """A model made by a plugin, as ``parfit run FILE`` makes it.

    Parameters
    ----------
    path : str or os.PathLike, optional
        The model file. The plugin is the one reading its extension (``.ds`` DiffSL, ``.mdl`` Vensim, …) unless
        ``kind`` says otherwise. May be None for a kind that needs no file. A Monte Carlo model (``.mc``) has no
        times to simulate at: open it with :class:`MonteCarloModel`.
    kind : str, optional
        The model kind (as :func:`parfit.plugins` lists them), instead of choosing by extension.
    plugin : str, optional
        The plugin's name, when several offer the kind.
    plugins : list of paths, optional
        Plugin files or directories searched first (the CLI's ``--plugin``), before ``PARFIT_PLUGIN_PATH`` and
        the plugins bundled with this package.
    **options
        The plugin's options, as a configuration's ``[model.options]`` table: ``rtol``, ``atol``, ``solver`` for
        DiffSL models; and so on.

    Raises
    ------
    ModelError
        The model file has an error (the message is placed at ``file:line:column``) or the plugin refused it.
    ConfigError
        No plugin reads the file or offers the kind, the file cannot be read, an option is refused, or the kind is
        a Monte Carlo model (the message names :class:`MonteCarloModel`).

    Examples
    --------
    >>> lv = parfit.Model("examples/lotka_volterra/lotka_volterra.ds", rtol=1e-8, atol=1e-8)
    >>> lv.simulate({"alpha": 1.0}, times=np.linspace(0, 10, 101))  # doctest: +SKIP
    """

    _open = _native.NativeModel

    @property
    def spec(self) -> dict:
        """What the model declares: ``parameters`` (each a dict of ``name``, ``default``, ``lower``, ``upper``),
        ``inputs`` and ``outputs`` (names), and ``output_kind`` (``"time_series"`` or ``"scalar"``)."""
        return {
            "parameters": [dict(p) for p in self._spec["parameters"]],
            "inputs": list(self._spec["inputs"]),
            "outputs": list(self._spec["outputs"]),
            "output_kind": self._spec["output_kind"],
        }

    @property
    def parameters(self) -> list[str]:
        """The parameter names, in spec order."""
        return [p["name"] for p in self._spec["parameters"]]

    @property
    def inputs(self) -> list[str]:
        """The per-case input names, in spec order (an input not given takes the model's own value)."""
        return list(self._spec["inputs"])

    @property
    def outputs(self) -> list[str]:
        """The output names, in spec order."""
        return list(self._spec["outputs"])

    def simulate(self, params: Values = None, times: Any = None, inputs: Values = None):
        """Simulate once, with the GIL released.

        Parameters
        ----------
        params : dict, pandas.Series or sequence, optional
            Parameter values: a dict (or Series) of name -> value (the others keep their defaults) or a sequence
            of every parameter in spec order. Default: the model's defaults.
        times : array-like, optional
            Output times: finite and non-decreasing. Required for time-series models; ignored by scalar models.
        inputs : dict, pandas.Series or sequence, optional
            Per-case inputs by name or in spec order; an input not given (or NaN) takes the model's own value.

        Returns
        -------
        pandas.DataFrame or numpy.ndarray
            One column per output and one row per time (index ``"t"``), or a single row for a scalar model — the
            numbers ``parfit run FILE --times …`` prints, bit for bit. Without pandas, the ``[T, O]`` array.

        Raises
        ------
        ConfigError
            Bad parameters, inputs or times.
        ModelError
            The simulation failed (the message is the engine's).
        """
        t = _times(times)
        data, rows, cols = self._native.simulate(_values(params, "params"), None if t is None else t.tobytes(), _values(inputs, "inputs"))
        values = np.frombuffer(data, dtype=np.float64).reshape(rows, cols).copy()
        if not _tables.has_pandas():
            return values
        import pandas as pd

        index = pd.Index(t, name="t") if self._spec["output_kind"] == "time_series" else None
        return pd.DataFrame(values, columns=self.outputs, index=index)

    def sensitivities(self, params: Values = None, times: Any = None, inputs: Values = None):
        """Simulate with the exact derivatives of the outputs with respect to the parameters (forward
        sensitivity equations, for models whose plugin provides them — DiffSL models do).

        Parameters are as for :meth:`simulate`.

        Returns
        -------
        values : numpy.ndarray, shape [T, O]
            The outputs, as :meth:`simulate` gives them (from the sensitivity solve, whose error control also
            covers the derivatives, so the last digits may differ from a plain simulation's).
        derivatives : numpy.ndarray, shape [T, O, P]
            ``derivatives[i, j, k]`` = d output j at time i / d parameter k (spec order).

        Raises
        ------
        ModelError
            The model has no sensitivities, or the simulation failed.
        """
        t = _times(times)
        values, d, rows, cols, n = self._native.sensitivities(
            _values(params, "params"), None if t is None else t.tobytes(), _values(inputs, "inputs")
        )
        return (
            np.frombuffer(values, dtype=np.float64).reshape(rows, cols).copy(),
            np.frombuffer(d, dtype=np.float64).reshape(rows, cols, n).copy(),
        )

    def __repr__(self) -> str:
        where = self.path if self.path is not None else f"kind={self.kind!r}"
        return f"parfit.Model({where}: {self.kind} via plugin {self.plugin}; {len(self.parameters)} parameters, outputs {self.outputs})"

    def _repr_html_(self) -> str:
        return _tables.html_table(
            [
                ("path", self.path),
                ("kind", f"{self.kind} (plugin {self.plugin})"),
                ("parameters", ", ".join(f"{p['name']} = {p['default']:g}" for p in self._spec["parameters"])),
                ("inputs", ", ".join(self.inputs) or "none"),
                ("outputs", ", ".join(self.outputs) + f" ({self._spec['output_kind'].replace('_', ' ')})"),
            ],
            "parfit.Model",
        )


class MonteCarloModel(_Opened):
    """A Monte Carlo model (``.mc``, or a plugin's Monte Carlo kind): many independent paths of a stochastic model
    stepped over periods, each path drawing from its own random stream keyed by (seed, path index).

    :meth:`simulate` runs paths ``0 … paths − 1`` in parallel and gives every path's outputs after the last period:
    the numbers ``parfit run`` writes to ``paths.csv`` for a configuration with ``per_path = true`` and the same
    seed, bit for bit, whatever the thread count. For statistics over many paths, sweeps and several seeds, run a
    configuration with a ``[montecarlo]`` section with :func:`parfit.run`.

    Parameters
    ----------
    path : str or os.PathLike, optional
        The model file; the plugin is the one reading its extension unless ``kind`` says otherwise.
    kind : str, optional
        The model kind (a Monte Carlo kind :func:`parfit.plugins` lists), instead of choosing by extension.
    plugin : str, optional
        The plugin's name, when several offer the kind.
    plugins : list of paths, optional
        Plugin files or directories searched first (the CLI's ``--plugin``).
    **options
        The plugin's options, as a configuration's ``[model.options]`` table (the ``.mc`` plugin takes none).

    Raises
    ------
    ModelError
        The model file has an error (placed at ``file:line:column``) or the plugin refused it.
    ConfigError
        No plugin reads the file or offers the kind, the file cannot be read, an option is refused, or the kind is
        not a Monte Carlo model (the message names what opens it).

    Examples
    --------
    >>> wealth = parfit.MonteCarloModel("examples/wealth/wealth.mc")
    >>> w = wealth.simulate({"s": 0.35}, paths=10_000, periods=1_000, seed=1)  # doctest: +SKIP
    >>> w["w"].median()  # doctest: +SKIP
    """

    _open = _native.NativeMonteCarloModel

    @property
    def spec(self) -> dict:
        """What the model declares: ``name``, ``parameters`` (each a dict of ``name``, ``default``, ``lower``,
        ``upper``) and ``outputs`` (each path's, by name)."""
        return {
            "name": self._spec["name"],
            "parameters": [dict(p) for p in self._spec["parameters"]],
            "outputs": list(self._spec["outputs"]),
        }

    @property
    def parameters(self) -> list[str]:
        """The parameter names, in spec order."""
        return [p["name"] for p in self._spec["parameters"]]

    @property
    def outputs(self) -> list[str]:
        """The output names, in spec order."""
        return list(self._spec["outputs"])

    def simulate(
        self,
        params: Values = None,
        *,
        paths: int,
        periods: int,
        seed: int = 0,
        threads: int | None = None,
        progress: Any = None,
    ):
        """Run paths ``0 … paths − 1`` over ``periods`` periods, in parallel with the GIL released.

        Parameters
        ----------
        params : dict, pandas.Series or sequence, optional
            Parameter values: a dict (or Series) of name -> value (the others keep their defaults) or a sequence
            of every parameter in spec order. Default: the model's defaults.
        paths : int
            The number of paths (1 to 2^53).
        periods : int
            The number of periods each path is stepped over (0 to 2^53).
        seed : int, optional
            The seed (0 to 2^53; default 0). A path's values depend only on the seed, its index, the parameters
            and the number of periods, so the first ``n`` paths of a larger run are the ``n`` paths of a smaller.
        threads : int, optional
            Worker threads (default: every core); the numbers do not depend on it.
        progress : None, False or callable
            None shows a tqdm bar (after 1 s) when tqdm is installed; False nothing; a callable gets
            ``(done, total)`` in paths.

        Returns
        -------
        pandas.DataFrame or numpy.ndarray
            One row per path (index ``path``) and one column per output. Without pandas, the ``[paths, outputs]``
            array.

        Raises
        ------
        ConfigError
            Bad parameters, or ``paths``, ``periods`` or ``seed`` out of range (or more paths than memory allows).
        ModelError
            A path's outputs were not finite (the message names the path and output).
        """
        with _arguments.Progress(progress, "paths") as bar:
            data, rows, cols = self._native.simulate(
                _values(params, "params"),
                paths=_whole(paths, "paths"),
                periods=_whole(periods, "periods"),
                seed=_whole(seed, "seed"),
                threads=threads,
                progress=bar,
            )
        values = np.frombuffer(data, dtype=np.float64).reshape(rows, cols).copy()
        if not _tables.has_pandas():
            return values
        import pandas as pd

        return pd.DataFrame(values, columns=self.outputs, index=pd.RangeIndex(rows, name="path"))

    def __repr__(self) -> str:
        where = self.path if self.path is not None else f"kind={self.kind!r}"
        return (
            f"parfit.MonteCarloModel({where}: {self.kind} via plugin {self.plugin}; {len(self.parameters)} "
            f"parameters, outputs {self.outputs})"
        )

    def _repr_html_(self) -> str:
        return _tables.html_table(
            [
                ("path", self.path),
                ("kind", f"{self.kind} (plugin {self.plugin})"),
                ("parameters", ", ".join(f"{p['name']} = {p['default']:g}" for p in self._spec["parameters"])),
                ("outputs", ", ".join(self.outputs) + " (per path, after the last period)"),
            ],
            "parfit.MonteCarloModel",
        )


def _whole(value: Any, name: str) -> int:
    """An integer argument (a Python or numpy integer), or a ConfigError naming it."""
    try:
        return operator.index(value)
    except TypeError:
        raise ConfigError(f"{name}= must be a whole number (got {value!r})") from None


def _times(times: Any) -> np.ndarray | None:
    if times is None:
        return None
    try:
        t = np.asarray(times, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"times: not numbers ({e})") from None
    if t.ndim == 0:
        t = t.reshape(1)
    if t.ndim != 1:
        raise ConfigError(f"times must be one-dimensional (got shape {t.shape})")
    return np.ascontiguousarray(t)


def _values(values: Values, what: str):
    if values is None or isinstance(values, Mapping):
        return values
    if _tables.has_pandas():
        import pandas as pd

        if isinstance(values, pd.Series):  # by its index's names, as a dict
            return {str(k): v for k, v in values.items()}
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{what}: give a dict of name -> value or a sequence of numbers ({e})") from None
    if array.ndim != 1:
        raise ConfigError(f"{what}: a sequence must be one-dimensional (got shape {array.shape})")
    return array.tolist()
