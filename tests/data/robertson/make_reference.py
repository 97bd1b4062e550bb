#!/usr/bin/env python3
"""Make the Robertson DAE example's reference files in this directory (see README.md here).

    target/peers/bench-venv/bin/python tests/data/robertson/make_reference.py

Needs numpy, scipy and pydiffsol; never run by the test suite. Writes, beside this script:
  reference_radau.csv      A, 1e4·B and C at the true rate constants from scipy's Radau on the equivalent ODE
                           (make_data.concentrations, rtol 1e-12, atol 1e-16) at 61 log-spaced times 1e-5 … 1e5
                           (those of data.csv among them), with pydiffsol's DAE solution's largest distance from it
  optimum.json             the least-squares optimum of the SSE over examples/robertson/data.csv, found with scipy
                           least_squares on the same Radau solutions, and the standard errors of the estimate
"""

import datetime
import importlib.metadata
import importlib.util
import json
from pathlib import Path

import numpy as np
import pydiffsol
import scipy
from scipy.optimize import least_squares

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parents[2] / "examples" / "robertson"
spec = importlib.util.spec_from_file_location("make_data", EXAMPLE / "make_data.py")
make_data = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_data)

NAMES = list(make_data.TRUE)
TRUTH = [make_data.TRUE[n] for n in NAMES]
SCALE = np.array([1.0, 1e4, 1.0])  # the outputs A, Bx1e4, C


def standard_errors(times):
    """Asymptotic standard errors of the unweighted least-squares estimates of k1, k2, k3 when each observation
    carries make_data.NOISE proportional error: the sandwich covariance at the truth, with the Jacobian by central
    differences in ln k."""
    exact = (make_data.concentrations(times, *TRUTH) * SCALE).ravel()
    jac = np.empty((exact.size, len(TRUTH)))
    for j in range(len(TRUTH)):
        up, down = np.log(TRUTH), np.log(TRUTH)
        up[j] += 1e-5
        down[j] -= 1e-5
        plus = make_data.concentrations(times, *np.exp(up)) * SCALE
        minus = make_data.concentrations(times, *np.exp(down)) * SCALE
        jac[:, j] = (plus - minus).ravel() / 2e-5 / TRUTH[j]  # d/dk = d/d(ln k) / k
    bread = np.linalg.inv(jac.T @ jac)
    meat = jac.T @ np.diag((make_data.NOISE * exact) ** 2) @ jac
    return np.sqrt(np.diag(bread @ meat @ bread))


def main():
    times = np.logspace(-5, 5, 61)
    radau = make_data.concentrations(times, *TRUTH) * SCALE
    ode = pydiffsol.Ode((EXAMPLE / "robertson.ds").read_text())
    ode.rtol, ode.atol = 1e-10, 1e-14
    dae = np.array(ode.solve_dense(np.array(TRUTH), times).ys).T
    rows = [",".join(repr(float(v)) for v in (t, *y)) for t, y in zip(times, radau)]
    (HERE / "reference_radau.csv").write_text("t,A,Bx1e4,C\n" + "\n".join(rows) + "\n")

    data = np.loadtxt(EXAMPLE / "data.csv", delimiter=",", skiprows=1)
    t_data, observed = data[:, 0], data[:, 1:]

    def residuals(log_k):
        return (make_data.concentrations(t_data, *np.exp(log_k)) * SCALE - observed).ravel()

    runs = []
    for start in ([0.1, 3e3, 1e8], TRUTH):
        for method in ("trf", "lm"):
            fit = least_squares(residuals, np.log(start), method=method, xtol=1e-14, ftol=1e-14, gtol=1e-14)
            runs.append({"start": start, "method": method, "x": np.exp(fit.x).tolist(), "sse": float(2 * fit.cost)})
    best = min(runs, key=lambda r: r["sse"])
    spread = max(max(abs(a - b) / b for a, b in zip(r["x"], best["x"])) for r in runs)
    out = {
        **dict(zip(NAMES, best["x"])),
        "sse": best["sse"],
        "sse_at_truth": float(np.sum(residuals(np.log(TRUTH)) ** 2)),
        "standard_errors_at_truth": dict(zip(NAMES, standard_errors(t_data).tolist())),
        "true_params": make_data.TRUE,
        "method": "SSE = sum over data.csv's three columns of (model - data)^2, the model A, 1e4*B, C from scipy "
        "Radau on the equivalent ODE (rtol 1e-12, atol 1e-16), minimised over ln k1, ln k2, ln k3 with "
        "scipy.optimize.least_squares (trf and lm, xtol = ftol = gtol = 1e-14) from (0.1, 3e3, 1e8) and from the "
        "true rate constants; the parameters are those of the lowest-SSE run. Standard errors: the sandwich covariance "
        "of the unweighted least-squares estimate under the data's 2 % proportional noise, at the truth.",
        "runs": runs,
        "max_relative_param_spread_between_runs": spread,
        "pydiffsol_dae_vs_radau_max_abs": np.abs(dae - radau).max(axis=0).tolist(),
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__,
                     "pydiffsol": importlib.metadata.version("pydiffsol")},
        "date": datetime.date.today().isoformat(),
    }
    (HERE / "optimum.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: out[k] for k in NAMES + ["sse", "sse_at_truth", "standard_errors_at_truth", "max_relative_param_spread_between_runs",
                                                  "pydiffsol_dae_vs_radau_max_abs"]}, indent=1))


if __name__ == "__main__":
    main()
