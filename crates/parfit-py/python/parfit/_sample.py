"""``parfit.sample``: a configuration's posterior by nested sampling or ensemble MCMC — ``parfit sample``'s
samples.csv and summary.json as Python objects."""

from __future__ import annotations

import json
from typing import Any, Mapping

import numpy as np

from . import _arguments, _native, _tables


class SampleResult:
    """A posterior sample (``parfit sample``): the weighted points, the summary, and the evidence for nested
    sampling."""

    def __init__(self, raw: dict[str, Any]):
        columns = list(raw["columns"])
        self._columns = columns
        values = np.asarray(raw["values"], dtype=float).reshape(-1, len(columns))
        self._values = values
        self._samples = _tables.frame({c: values[:, j] for j, c in enumerate(columns)})
        self._summary = json.loads(raw["summary"])

    @property
    def samples(self):
        """samples.csv: one row per posterior point — the sampled parameters (and ``sigma`` when it is fitted),
        ``weight`` (summing to one) and ``log_likelihood``."""
        return self._samples

    @property
    def summary(self) -> dict[str, Any]:
        """summary.json's content: per parameter mean, sd, mean_se, quantiles (and r_hat, ess for MCMC), the
        evidence, the run's sizes, seed and threads."""
        return self._summary

    @property
    def parameters(self) -> list[str]:
        """The sampled coordinates' names, in column order."""
        return self._columns[:-2]

    @property
    def algorithm(self) -> str:
        """``nested`` or ``mcmc``."""
        return self._summary["algorithm"]

    @property
    def log_z(self) -> float | None:
        """The log-evidence ln Z (nested sampling); None for MCMC."""
        return self._summary.get("log_z")

    @property
    def log_z_err(self) -> float | None:
        """The log-evidence's standard error (nested sampling); None for MCMC."""
        return self._summary.get("log_z_err")

    @property
    def evaluations(self) -> int:
        """Likelihood evaluations made."""
        return self._summary["evaluations"]

    @property
    def seconds(self) -> float:
        """Wall-clock seconds the sampler ran."""
        return self._summary["seconds"]

    def plot(self, fig: Any = None):
        """A corner plot: each parameter's weighted histogram on the diagonal, the weighted points of each pair
        below it (matplotlib); returns the figure."""
        import matplotlib.pyplot as plt

        names = self.parameters
        n = len(names)
        if fig is None:
            fig = plt.figure(figsize=(2.2 * n + 1, 2.2 * n + 1))
        axes = fig.subplots(n, n, squeeze=False)
        weights = self._values[:, -2]
        for i in range(n):
            for j in range(n):
                ax = axes[i][j]
                if j > i:
                    ax.set_visible(False)
                    continue
                if i == j:
                    ax.hist(self._values[:, i], bins=40, weights=weights, color="tab:blue")
                else:
                    ax.scatter(self._values[:, j], self._values[:, i], s=2, alpha=0.3,
                               c=weights, cmap="Blues")
                if i == n - 1:
                    ax.set_xlabel(names[j])
                if j == 0 and i > 0:
                    ax.set_ylabel(names[i])
        title = f"posterior ({self.algorithm})"
        if self.log_z is not None:
            title += f": ln Z = {self.log_z:.4f} ± {self.log_z_err:.4f}"
        fig.suptitle(title)
        return fig

    def _repr_html_(self) -> str:
        """A summary table for Jupyter."""
        s = self._summary
        rows: list[tuple[str, Any]] = [
            ("algorithm", f"{s['algorithm']} (seed {s['seed']}, {s['threads']} threads)"),
            ("result", f"{s['evaluations']} evaluations, {s['iterations']} iterations in {s['seconds']:.3f} s "
                       f"({s['termination']})"),
            ("samples", f"{s['samples']} ({s['effective_samples']:.1f} effective)"),
        ]
        if self.log_z is not None:
            rows.append(("ln Z", f"{self.log_z:.6g} ± {self.log_z_err:.3g}"))
        for name, p in s["parameters"].items():
            q = p["quantiles"]
            rows.append((name, f"mean {p['mean']:.6g}, sd {p['sd']:.3g}, 2.5% {q.get('2.5%', float('nan')):.6g}, "
                               f"97.5% {q.get('97.5%', float('nan')):.6g}"))
        return _tables.html_table(rows, "parfit sample")

    def __repr__(self) -> str:
        """The run in one line."""
        s = self._summary
        evidence = f", ln Z = {self.log_z:.6g}" if self.log_z is not None else ""
        return f"SampleResult({s['algorithm']}: {s['samples']} samples, {s['evaluations']} evaluations{evidence})"


def sample(
    config: Any,
    *,
    data: Any = None,
    set: Mapping[str, float] | None = None,
    seed: int | None = None,
    threads: int | None = None,
    plugins: Any = None,
    progress: Any = None,
) -> SampleResult:
    """Sample the posterior of a configuration's parameters given its data (``parfit sample``): nested sampling
    (with the log-evidence) or ensemble MCMC, as ``[sample]`` says, under the Gaussian likelihood.

    Parameters
    ----------
    config : str, os.PathLike or dict
        The configuration: a TOML file, or the same structure as a dict.
    data : DataFrame or dict of columns, optional
        The observations, instead of the file ``[data] path`` names (its columns as the file's).
    set : dict, optional
        Parameter starts, ``{name: value}`` (the CLI's ``--set``; MCMC walkers start there).
    seed : int, optional
        Overrides the configuration's ``seed``.
    threads : int, optional
        Worker threads (default: the configuration's ``threads``, else every core). The numbers do not depend on it.
    plugins : list of paths, optional
        Plugin files or directories searched first.
    progress : None, False or callable
        None shows a tqdm bar (after 1 s) when tqdm is installed; False nothing; a callable gets
        ``(done, total)`` (iterations; total 0 when unknown).

    Returns
    -------
    SampleResult
    """
    text = None if data is None else _tables.csv_text(data, "data")
    with _arguments.Progress(progress, "it") as bar:
        raw = _native.sample(
            _arguments.config(config), data=text, set=_arguments.sets(set), seed=seed, threads=threads,
            plugins=_arguments.plugins(plugins), progress=bar,
        )
    return SampleResult(raw)
