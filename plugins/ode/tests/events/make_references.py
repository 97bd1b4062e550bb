"""Reference solutions of the event models in this directory, by pydiffsol (0.6.2: DiffSL 0.12.4,
diffsol 0.16.1) at rtol = atol = 1e-12, written to references.json.

Run with the bench venv's Python: `target/peers/bench-venv/bin/python plugins/ode/tests/events/make_references.py`.
Each model is solved with BDF at the requested times and checked against a witness to 1e-8 relative: ESDIRK34,
or for the book's bouncing ball its exact solution (pydiffsol's explicit and SDIRK methods miss its second
bounce: restarting at x = 0, their steps grow over the whole next flight, x changes sign twice within one step
and no sign change is seen). BDF's values are recorded. After a stop without a reset pydiffsol's solution ends
at the root; the requested times after it are recorded as null (parfit gives NaN there).
"""

import json
import pathlib

import numpy as np
import pydiffsol as ds

HERE = pathlib.Path(__file__).parent

# Model: (parameters, requested times). Times avoid the events themselves, where the output jumps.
CASES = {
    # Bounces accumulate at t = 10.19 (Zeno), where no integrator follows the ball.
    "ball_book": ([], np.linspace(0.05, 7.95, 34)),
    "ball_declarative": ([], np.linspace(0.05, 9.95, 34)),
    "drug_delivery_declarative": ([], np.linspace(0.5, 23.5, 24)),
    "drug_delivery_hybrid": ([], np.linspace(0.5, 23.5, 24)),
    "sir_policy_switching": ([], np.linspace(1.0, 299.0, 50)),
    "logistic_stop": ([2.0, 1.0, 0.1], np.array([0.5, 1.0, 1.5, 2.0])),
    "hybrid_logistic": ([2.0], np.array([0.5, 1.0, 2.0, 2.5, 3.0, 4.0, 4.8])),
    "logistic_time_reset": ([1.0], np.array([0.25, 0.49, 0.51, 1.0, 2.0])),
    "dosing_book": ([], np.array([1.0, 23.0, 25.0, 30.0, 60.0])),
    "growth_decay_book": ([], np.array([10.0, 23.0, 25.0, 40.0, 47.0, 49.0, 60.0])),
}


def solve(src, params, times, method):
    ode = ds.Ode(src)
    ode.rtol = 1e-12
    ode.atol = 1e-12
    ode.ode_solver = method
    sol = ode.solve_dense(np.array(params, dtype=float), times)
    ys = np.full((sol.ys.shape[0], len(times)), np.nan)
    ys[:, : len(sol.ts)] = sol.ys
    # A stop without reset ends the solution at the root, which is then its last time.
    if len(sol.ts) < len(times) or not np.array_equal(sol.ts, times):
        assert np.array_equal(sol.ts[:-1], times[: len(sol.ts) - 1]), sol.ts
        ys[:, len(sol.ts) - 1] = np.nan
    return ys


def ball_exact(times, g=9.81, e=0.8, v0=10.0):
    """The bouncing ball exactly: flights of 2 v_k / g with v_k = e^k v0."""
    ys = []
    for t in times:
        start, v = 0.0, v0
        while t > start + 2 * v / g:
            start, v = start + 2 * v / g, e * v
        s = t - start
        ys.append([v * s - 0.5 * g * s * s, v - g * s])
    return np.array(ys).T


def main():
    refs = {}
    for name, (params, times) in CASES.items():
        src = (HERE / f"{name}.ds").read_text()
        bdf = solve(src, params, times, ds.bdf)
        rk = ball_exact(times) if name == "ball_book" else solve(src, params, times, ds.esdirk34)
        both = ~np.isnan(bdf)
        assert np.array_equal(both, ~np.isnan(rk)), name
        assert np.allclose(bdf[both], rk[both], rtol=1e-8, atol=1e-8), (name, np.max(np.abs(bdf - rk)))
        refs[name] = {
            "params": params,
            "times": times.tolist(),
            # Row per time, one value per output; null where there is no solution.
            "outputs": [[None if np.isnan(v) else float(v) for v in row] for row in bdf.T],
        }
    (HERE / "references.json").write_text(json.dumps(refs, indent=1) + "\n")


if __name__ == "__main__":
    main()
