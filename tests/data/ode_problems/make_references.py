#!/usr/bin/env python3
"""Reference solutions for the ODE problems in this directory, computed with SciPy's solve_ivp.

Each problem is solved twice, with a primary method at tight tolerances (written to <name>.csv) and an
independent check method; the largest difference between the two, in units of the tolerance parfit's
tests use, is printed, so the references are known to be far more accurate than the tests need.

The right-hand sides here are written out by hand from the .ds files next to this script (same
parameters, same initial states); parfit's tests compare its solutions of the .ds files to these CSVs.

Run: python make_references.py   (needs numpy and scipy; writes the CSVs next to this file)
"""

import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import scipy
from scipy.integrate import solve_ivp

HERE = Path(__file__).resolve().parent


def logistic():
    r, K, y0 = 0.8, 10.0, 0.1

    def f(t, y):
        return [r * y[0] * (1 - y[0] / K)]

    def out(y):
        return np.vstack([y[0], y[0] / K])

    def exact(t):
        y = K / (1 + (K / y0 - 1) * np.exp(-r * t))
        return np.vstack([y, y / K])

    return dict(f=f, y0=[y0], t=np.linspace(0, 20, 81), out=out, names=["y", "fraction"], exact=exact)


def lotka_volterra():
    a, b, d, g = 1.1, 0.4, 0.1, 0.4

    def f(t, y):
        x, z = y
        return [a * x - b * x * z, d * x * z - g * z]

    return dict(f=f, y0=[10.0, 5.0], t=np.linspace(0, 50, 201), names=["prey", "predator"])


def sir():
    beta, gamma, pop, i0 = 0.3, 0.1, 1000.0, 10.0

    def f(t, y):
        s, i, _ = y
        inf = beta * s * i / pop
        return [-inf, inf - gamma * i, gamma * i]

    return dict(f=f, y0=[pop - i0, i0, 0.0], t=np.linspace(0, 160, 161), names=["S", "I", "R"])


def fitzhugh_nagumo():
    a, b, tau, current = 0.7, 0.8, 12.5, 0.5

    def f(t, y):
        v, w = y
        return [v - v**3 / 3 - w + current, (v + a - b * w) / tau]

    return dict(f=f, y0=[-1.0, 1.0], t=np.linspace(0, 200, 201), names=["v", "w"])


def van_der_pol():
    mu = 1000.0

    def f(t, y):
        x, v = y
        return [v, mu * (1 - x * x) * v - x]

    def jac(t, y):
        x, v = y
        return [[0.0, 1.0], [-2 * mu * x * v - 1, mu * (1 - x * x)]]

    return dict(f=f, jac=jac, y0=[2.0, 0.0], t=np.linspace(0, 3000, 301), names=["x", "v"], stiff=True)


def robertson():
    k1, k2, k3 = 0.04, 3e7, 1e4

    def f(t, y):
        y1, y2, y3 = y
        return [-k1 * y1 + k3 * y2 * y3, k1 * y1 - k3 * y2 * y3 - k2 * y2 * y2, k2 * y2 * y2]

    def jac(t, y):
        y1, y2, y3 = y
        return [[-k1, k3 * y3, k3 * y2],
                [k1, -k3 * y3 - 2 * k2 * y2, -k3 * y2],
                [0.0, 2 * k2 * y2, 0.0]]

    t = np.concatenate([[0.0], np.logspace(-5, 5, 101)])
    # atol = 1e-6 rtol: y2 (at most 3.6e-5) is resolved to about rtol too.
    return dict(f=f, jac=jac, y0=[1.0, 0.0, 0.0], t=t, names=["y1", "y2", "y3"], stiff=True, atol=1e-6)


def diffusion_chain():
    n, D = 100, 100.0
    A = np.zeros((n, n))
    for i in range(n):
        A[i, i] = -2 * D
        if i > 0:
            A[i, i - 1] = D
        if i < n - 1:
            A[i, i + 1] = D
    A[0, 0] = -D  # no flux at the left end

    def f(t, y):
        return A @ y

    y0 = np.zeros(n)
    y0[:10] = 1.0
    # A is symmetric, so y(t) = V exp(Λ t) Vᵀ y0 exactly.
    lam, V = np.linalg.eigh(A)
    c0 = V.T @ y0

    def exact(t):
        return V @ (np.exp(np.outer(lam, t)) * c0[:, None])

    return dict(f=f, jac=lambda t, y: A, y0=y0, t=np.linspace(0, 100, 51),
                names=[f"u_{k}" for k in range(n)], stiff=True, atol=1e-3, exact=exact)


PROBLEMS = [logistic, lotka_volterra, sir, fitzhugh_nagumo, van_der_pol, robertson, diffusion_chain]

# parfit's tests: rtol = 1e-8 and atol = 1e-8 (Robertson: 1e-14, for its small y2).
TEST_RTOL = 1e-8


def solve(p, method, rtol, atol):
    t = p["t"]
    kw = {"jac": p["jac"]} if "jac" in p and method in ("Radau", "BDF", "LSODA") else {}
    start = time.perf_counter()
    sol = solve_ivp(p["f"], (t[0], t[-1]), p["y0"], method=method, t_eval=t, rtol=rtol, atol=atol, **kw)
    seconds = time.perf_counter() - start
    if not sol.success:
        raise RuntimeError(f"{method}: {sol.message}")
    y = p["out"](sol.y) if "out" in p else sol.y
    return y, sol.nfev, seconds


def scaled_max(y, ref, atol, rtol):
    """max |y - ref| / (atol + rtol |ref|): a difference in units of a tolerance."""
    return float(np.max(np.abs(y - ref) / (atol + rtol * np.abs(ref))))


def main():
    print(f"python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}")
    print("differences from the reference, in units of the tests' tolerance (and of the reference's own)")
    for make in PROBLEMS:
        name = make.__name__
        p = make()
        stiff = p.get("stiff", False)
        # Stiff problems: Radau; the others: DOP853. Checked against the same method at a 10x looser
        # tolerance and an independent method (LSODA's accuracy ends near 1e-12).
        primary, rtol = ("Radau", 1e-13) if stiff else ("DOP853", 1e-13)
        checks = [("Radau", 1e-12), ("LSODA", 1e-12)] if stiff else [("DOP853", 1e-12), ("Radau", 1e-13)]
        scale = p.get("atol", 1.0)  # absolute tolerances relative to rtol (small components)
        y, nfev, seconds = solve(p, primary, rtol, scale * rtol)
        test_atol = 1e-14 if name == "robertson" else 1e-8
        print(f"{name}: {primary} rtol {rtol:.0e} atol {scale * rtol:.0e}: {nfev} evaluations, {seconds:.1f} s")
        for method, ctol in checks:
            yc, _, s = solve(p, method, ctol, scale * ctol)
            print(f"    vs {method} rtol {ctol:.0e}: {scaled_max(yc, y, test_atol, TEST_RTOL):.1e} "
                  f"({scaled_max(yc, y, scale * rtol, rtol):.1e}) [{s:.1f} s]")
        if "exact" in p:
            ex = p["exact"](p["t"])
            print(f"    vs the exact solution: {scaled_max(y, ex, test_atol, TEST_RTOL):.1e} "
                  f"({scaled_max(y, ex, scale * rtol, rtol):.1e})")
        with open(HERE / f"{name}.csv", "w") as fh:
            fh.write(",".join(["t"] + p["names"]) + "\n")
            for k, tk in enumerate(p["t"]):
                fh.write(",".join(repr(float(v)) for v in [tk, *y[:, k]]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
