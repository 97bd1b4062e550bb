#!/usr/bin/env python3
"""Make the dosing example's reference files in this directory (see README.md here).

    target/peers/bench-venv/bin/python tests/data/dosing/make_reference.py

Needs numpy, scipy and pydiffsol; never run by the test suite. Writes, beside this script:
  reference_pydiffsol.csv  examples/dosing/dosing.ds at its defaults (the true parameters) solved by pydiffsol
                           (BDF, rtol = atol = 1e-10) at every quarter hour over [0, 72] and at the data's times
  optimum.json             the least-squares optimum of the SSE over examples/dosing/data.csv, found with scipy
                           least_squares on the closed-form solution (make_data.py's), and the standard errors
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
EXAMPLE = HERE.parents[2] / "examples" / "dosing"
spec = importlib.util.spec_from_file_location("make_data", EXAMPLE / "make_data.py")
make_data = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_data)

NAMES = list(make_data.TRUE)
TRUTH = [make_data.TRUE[n] for n in NAMES]


def pydiffsol_solution(times):
    ode = pydiffsol.Ode((EXAMPLE / "dosing.ds").read_text())
    ode.rtol, ode.atol = 1e-10, 1e-10
    return ode.solve_dense(np.array(TRUTH), np.asarray(times)).ys[0]


def main():
    data = np.loadtxt(EXAMPLE / "data.csv", delimiter=",", skiprows=1)
    t_data, observed = data[:, 0], data[:, 1]

    times = np.union1d(np.arange(0, 72.0 + 1e-9, 0.25), t_data)
    solution = pydiffsol_solution(times)
    exact = make_data.concentration(times, *TRUTH)
    rows = [f"{t!r},{c!r}" for t, c in zip(times.tolist(), solution.tolist())]
    (HERE / "reference_pydiffsol.csv").write_text("t,conc\n" + "\n".join(rows) + "\n")

    def residuals(log_theta):
        return make_data.concentration(t_data, *np.exp(log_theta)) - observed

    runs = []
    for start in ([0.5, 2.0, 20.0], TRUTH):
        for method in ("trf", "lm"):
            fit = least_squares(residuals, np.log(start), method=method, xtol=1e-15, ftol=1e-15, gtol=1e-15)
            x = np.exp(fit.x)
            runs.append({"start": start, "method": method, "x": x.tolist(), "sse": float(2 * fit.cost)})
    best = min(runs, key=lambda r: r["sse"])
    spread = max(max(abs(a - b) / b for a, b in zip(r["x"], best["x"])) for r in runs)
    errors = make_data.standard_errors(t_data, TRUTH)
    out = {
        **dict(zip(NAMES, best["x"])),
        "sse": best["sse"],
        "standard_errors_at_truth": dict(zip(NAMES, errors.tolist())),
        "true_params": make_data.TRUE,
        "method": "SSE = sum over data.csv of (C(t) - conc)^2 with C the closed-form concentration (a Bateman "
        "curve per dose, make_data.concentration), minimised over ln(ka), ln(CL), ln(V) with "
        "scipy.optimize.least_squares (trf and lm, xtol = ftol = gtol = 1e-15) from (0.5, 2, 20) and from the "
        "true parameters; the parameters are those of the lowest-SSE run. Standard errors: the sandwich "
        "covariance of the unweighted least-squares estimate under 10 % proportional noise, at the truth.",
        "runs": runs,
        "max_relative_param_spread_between_runs": spread,
        "pydiffsol_vs_closed_form_max_abs": float(np.max(np.abs(solution - exact))),
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__, "pydiffsol": importlib.metadata.version("pydiffsol")},
        "date": datetime.date.today().isoformat(),
    }
    (HERE / "optimum.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: out[k] for k in NAMES + ["sse", "max_relative_param_spread_between_runs",
                                                  "pydiffsol_vs_closed_form_max_abs"]}, indent=1))


if __name__ == "__main__":
    main()
