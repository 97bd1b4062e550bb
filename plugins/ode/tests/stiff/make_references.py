#!/usr/bin/env python3
"""Reference solutions for the stiff-solver tests (plugins/ode/tests/stiff_references.rs).

- robertson_4e10: diffsol's Robertson ODE over [0, 4e10], SciPy Radau (analytic Jacobian) at rtol 1e-12,
  atol 1e-24, checked against LSODA (rtol 1e-10) and pydiffsol's BDF (rtol 1e-10).
- population_dynamics: diffsol's population-dynamics example over [0, 40], SciPy DOP853 at rtol = atol =
  1e-13, checked against Radau (rtol 1e-12) and pydiffsol's BDF at rtol 1e-10.

The right-hand sides are written out by hand from the .ds files next to this script; pydiffsol solves the
.ds files themselves. Each CSV is a header `t,<states>` then one row per time (Python's shortest repr).
The largest difference between the reference and each check is printed relative to |ref| + floor.

Run with numpy, scipy and (optionally) pydiffsol installed: python make_references.py
"""

from pathlib import Path

import numpy as np
import scipy
from scipy.integrate import solve_ivp

HERE = Path(__file__).resolve().parent


def robertson():
    k1, k2, k3 = 0.04, 1e4, 3e7

    def f(t, u):
        x, y, z = u
        return [-k1 * x + k2 * y * z, k1 * x - k2 * y * z - k3 * y * y, k3 * y * y]

    def jac(t, u):
        x, y, z = u
        return [[-k1, k2 * z, k2 * y], [k1, -k2 * z - 2 * k3 * y, -k2 * y], [0, 2 * k3 * y, 0]]

    t = np.concatenate([[0.0], np.logspace(-6, np.log10(4e10), 61)])
    t[-1] = 4e10
    return dict(name="robertson_4e10", f=f, jac=jac, y0=[1.0, 0.0, 0.0], t=t, names=["x", "y", "z"],
                ref=("Radau", 1e-12, 1e-24), check=("LSODA", 1e-10, 1e-22), floor=1e-20,
                params=[k1, k2, k3], pydiffsol=(1e-10, 1e-22))


def population_dynamics():
    a, b, c, d = 2.0 / 3.0, 4.0 / 3.0, 1.0, 1.0

    def f(t, u):
        y1, y2 = u
        return [a * y1 - b * y1 * y2, c * y1 * y2 - d * y2]

    def jac(t, u):
        y1, y2 = u
        return [[a - b * y2, -b * y1], [c * y2, c * y1 - d]]

    t = np.linspace(0.0, 40.0, 401)
    return dict(name="population_dynamics", f=f, jac=jac, y0=[1.0, 1.0], t=t, names=["y1", "y2"],
                ref=("DOP853", 1e-13, 1e-13), check=("Radau", 1e-12, 1e-12), floor=1e-8,
                params=[1.0], pydiffsol=(1e-10, 1e-10))


def solve(p, method, rtol, atol):
    kw = dict(jac=p["jac"]) if method in ("Radau", "BDF", "LSODA") else {}
    s = solve_ivp(p["f"], (p["t"][0], p["t"][-1]), p["y0"], method=method, t_eval=p["t"], rtol=rtol,
                  atol=atol, **kw)
    assert s.success, s.message
    return s.y


def pydiffsol(p, rtol, atol):
    try:
        import pydiffsol as ds
    except ImportError:
        return None
    ode = ds.Ode((HERE / f"{p['name']}.ds").read_text(), ode_solver=ds.bdf)
    ode.rtol, ode.atol = rtol, atol
    sol = ode.solve_dense(np.array(p["params"]), p["t"])
    return np.asarray(sol.ys)


def main():
    print(f"scipy {scipy.__version__}, numpy {np.__version__}")
    for p in (robertson(), population_dynamics()):
        ref = solve(p, *p["ref"])
        scale = np.abs(ref) + p["floor"]
        check = solve(p, *p["check"])
        print(f"{p['name']}: {p['ref']} vs {p['check']}: max rel diff {np.max(np.abs(check - ref) / scale):.2e}")
        theirs = pydiffsol(p, *p["pydiffsol"])
        if theirs is not None:
            print(f"{p['name']}: vs pydiffsol bdf {p['pydiffsol']}: max rel diff {np.max(np.abs(theirs - ref) / scale):.2e}")
        with open(HERE / f"{p['name']}.csv", "w") as out:
            out.write(",".join(["t"] + p["names"]) + "\n")
            for i, t in enumerate(p["t"]):
                out.write(",".join(repr(float(v)) for v in [t, *ref[:, i]]) + "\n")


if __name__ == "__main__":
    main()
