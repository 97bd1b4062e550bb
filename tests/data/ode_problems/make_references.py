#!/usr/bin/env python3
"""Reference solutions for the ODE problems in this directory, computed with SciPy's solve_ivp.

Each problem is solved twice, with a primary method at tight tolerances (written to <name>.csv) and an
independent check method; the largest difference between the two, in units of the tolerance parfit's
tests use, is printed, so the references are known to be far more accurate than the tests need.

The right-hand sides here are written out by hand from the .ds files next to this script (same
parameters, same initial states); parfit's tests compare its solutions of the .ds files to these CSVs.

Run: python make_references.py [NAME...]   (needs numpy and scipy; writes the CSVs next to this file, and
heat_2d.ds; with pydiffsol importable, as in the bench venv, each reference is checked against it too)
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


def robertson_dae():
    # The diffsl README's DAE, whose k2 and k3 are robertson()'s k3 and k2. SciPy has no mass matrices; the
    # algebraic equation x + y + z = 1 differentiated once is z' = k3 y^2 (index reduction), which makes the
    # DAE robertson()'s ODE: the same solution. Its z is then a state, not 1 - x - y, whose cancellation would
    # cost z (1.6e-11 at the first time) four digits. Checked below against pydiffsol solving the DAE itself.
    p = robertson()
    p["names"] = ["x", "y", "z"]
    return p


BALL = dict(g=9.81, h=10.0, e=0.8, ground=1e-12)


def bouncing_ball():
    g, h, e, ground = BALL["g"], BALL["h"], BALL["e"], BALL["ground"]

    def f(t, y):
        return [y[1], -g]

    def jac(t, y):
        return [[0.0, 1.0], [0.0, 0.0]]

    def stop(t, y):
        return y[0]

    stop.terminal, stop.direction = True, -1

    def reset(t, y):
        return [ground, -e * y[1]]

    def exact(times):
        # Piecewise parabolic: each flight from (x0, v0) ends at the root of x0 + v0 s - g s^2 / 2, where the
        # reset starts the next one.
        out = np.empty((2, len(times)))
        start, x0, v0 = 0.0, h, 0.0
        for k, t in enumerate(times):
            while True:
                flight = (v0 + math.sqrt(v0 * v0 + 2 * g * x0)) / g
                if t <= start + flight:
                    break
                start, x0, v0 = start + flight, ground, -e * (v0 - g * flight)
            s = t - start
            out[:, k] = [x0 + v0 * s - 0.5 * g * s * s, v0 - g * s]
        return out

    return dict(f=f, jac=jac, y0=[h, 0.0], t=np.linspace(0, 12, 241), names=["x", "v"], stop=stop,
                reset=reset, exact=exact, primary="exact")


HEAT_N, HEAT_D = 30, 0.1


def laplacian_2d(n):
    """The 5-point Laplacian (without the 1/h^2) on an n x n grid, row by row, zero outside: sparse."""
    from scipy.sparse import diags, identity, kron

    second = diags([np.ones(n - 1), -2 * np.ones(n), np.ones(n - 1)], [-1, 0, 1])
    return (kron(identity(n), second) + kron(second, identity(n))).tocsr()


def heat_2d_initial(n):
    """1 on the middle third of the grid in both directions, 0 elsewhere."""
    lo, hi = n // 3, n - n // 3
    u = np.zeros((n, n))
    u[lo:hi, lo:hi] = 1.0
    return u.ravel()


def heat_2d_source(n, D):
    """The DiffSL text of heat_2d.ds: A_ij's diagonals as `..` ranges, the initial block as ranges of u_i."""
    N, lo, hi = n * n, n // 3, n - n // 3
    lines = [
        f"// The 2-D heat equation u_t = D (u_xx + u_yy) on the unit square with u = 0 on its boundary, by the",
        f"// 5-point stencil on {n} x {n} interior points (h = 1/{n + 1}), numbered row by row; initially 1 on",
        f"// the middle block. A_ij is the stencil as diagonals (`..` ranges), broken at the ends of rows.",
        f"// Written by make_references.py (heat_2d_source), the way pydiffsol's 5_1_heat_equation writes 1-D.",
        f"in_i {{ D = {D} }}",
        f"h {{ 1.0 / {n + 1} }}",
        "A_ij {",
        f"  (0..{N}, 0..{N}): -4.0,",
    ]
    for r in range(n):
        a = r * n
        lines += [f"  ({a}..{a + n - 1}, {a + 1}..{a + n}): 1.0,", f"  ({a + 1}..{a + n}, {a}..{a + n - 1}): 1.0,"]
    lines += [f"  ({n}..{N}, 0..{N - n}): 1.0,", f"  (0..{N - n}, {n}..{N}): 1.0,", "}", "u_i {"]
    at = 0
    for r in range(lo, hi):
        start, end = r * n + lo, r * n + hi
        if start > at:
            lines.append(f"  ({at}:{start}): 0,")
        lines.append(f"  ({start}:{end}): 1,")
        at = end
    lines += [f"  ({at}:{N}): 0,", "}", "heat_i { A_ij * u_j }", "F_i { D * heat_i / (h * h) }"]
    return "\n".join(lines) + "\n"


def heat_2d():
    n, D = HEAT_N, HEAT_D
    A = D * (n + 1) ** 2 * laplacian_2d(n)

    def f(t, y):
        return A @ y

    y0 = heat_2d_initial(n)
    # A is symmetric, so y(t) = V exp(Λ t) Vᵀ y0 exactly.
    lam, V = np.linalg.eigh(A.toarray())
    c0 = V.T @ y0

    def exact(t):
        return V @ (np.exp(np.outer(lam, t)) * c0[:, None])

    # LSODA takes no sparse Jacobian: BDF with it is the other check.
    return dict(f=f, jac=lambda t, y: A, y0=y0, t=np.linspace(0, 0.5, 11), names=[f"u_{k}" for k in range(n * n)],
                stiff=True, exact=exact, primary="exact", source=heat_2d_source(n, D),
                checks=[("Radau", 1e-12), ("BDF", 1e-10)])


PROBLEMS = [logistic, lotka_volterra, sir, fitzhugh_nagumo, van_der_pol, robertson, diffusion_chain, robertson_dae,
            bouncing_ball, heat_2d]

# parfit's tests: rtol = 1e-8 and atol = 1e-8 (Robertson: 1e-14, for its small y2).
TEST_RTOL = 1e-8


def solve(p, method, rtol, atol):
    """solve_ivp at the problem's times; with a `stop` event, a restart loop applies `reset` at each of its roots
    (the output exactly at a root is the state before the reset, as in DiffSL). Returns the outputs (outputs x
    times), solve_ivp's work counters summed over the restarts, and the seconds taken."""
    t = p["t"]
    kw = {"jac": p["jac"]} if "jac" in p and method in ("Radau", "BDF", "LSODA") else {}
    start = time.perf_counter()
    if "stop" not in p:
        sol = solve_ivp(p["f"], (t[0], t[-1]), p["y0"], method=method, t_eval=t, rtol=rtol, atol=atol, **kw)
        if not sol.success:
            raise RuntimeError(f"{method}: {sol.message}")
        y, work = sol.y, [sol]
    else:
        y, work = np.empty((len(p["y0"]), len(t))), []
        t0, y0, done = t[0], np.array(p["y0"], dtype=float), 0
        while done < len(t):
            sol = solve_ivp(p["f"], (t0, t[-1]), y0, method=method, events=p["stop"], dense_output=True, rtol=rtol,
                            atol=atol, **kw)
            if not sol.success:
                raise RuntimeError(f"{method}: {sol.message}")
            work.append(sol)
            end = sol.t_events[0][0] if sol.status == 1 else t[-1]
            upto = int(np.searchsorted(t, end, side="right"))
            if upto > done:
                y[:, done:upto] = sol.sol(t[done:upto])
                done = upto
            if sol.status != 1:
                break
            t0, y0 = end, np.array(p["reset"](end, sol.y_events[0][0]), dtype=float)
    seconds = time.perf_counter() - start
    y = p["out"](y) if "out" in p else y
    stats = {"rhs_evaluations": sum(int(s.nfev) for s in work), "jacobian_evaluations": sum(int(s.njev) for s in work),
             "factorisations": sum(int(s.nlu) for s in work)}
    return y, stats, seconds


def solve_pydiffsol(name, p, rtol, atol):
    """pydiffsol (diffsol's BDF for the stiff problems, Tsit45 otherwise) on the .ds text, or None without it."""
    try:
        import pydiffsol as ds
    except ImportError:
        return None
    sys.path.insert(0, str(HERE.parents[2] / "bench" / "peers"))
    from suite import default_parameters  # the .ds file's `in_i` defaults, as the benchmark reads them

    source = (HERE / f"{name}.ds").read_text()
    kw = {"matrix_type": ds.faer_sparse} if len(p["y0"]) > 100 else {}
    ode = ds.Ode(source, ode_solver=ds.bdf if p.get("stiff") else ds.tsit45, **kw)
    ode.rtol, ode.atol = rtol, atol
    return ode.solve_dense(np.array(default_parameters(source), dtype=float), p["t"]).ys


def scaled_max(y, ref, atol, rtol):
    """max |y - ref| / (atol + rtol |ref|): a difference in units of a tolerance."""
    return float(np.max(np.abs(y - ref) / (atol + rtol * np.abs(ref))))


def main():
    print(f"python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}")
    print("differences from the reference, in units of the tests' tolerance (and of the reference's own)")
    only = set(sys.argv[1:])
    for make in PROBLEMS:
        name = make.__name__
        if only and name not in only:
            continue
        p = make()
        stiff = p.get("stiff", False)
        if "source" in p:  # a model text too long to write by hand
            (HERE / f"{name}.ds").write_text(p["source"])
        # Stiff problems: Radau; the others: DOP853. Checked against the same method at a 10x looser
        # tolerance and an independent method (LSODA's accuracy ends near 1e-12). Where the exact solution is
        # known and cheap, it is the reference and every method a check.
        primary, rtol = ("Radau", 1e-13) if stiff else ("DOP853", 1e-13)
        checks = [("Radau", 1e-12), ("LSODA", 1e-12)] if stiff else [("DOP853", 1e-12), ("Radau", 1e-13)]
        checks = p.get("checks", checks)
        scale = p.get("atol", 1.0)  # absolute tolerances relative to rtol (small components)
        test_atol = 1e-14 if name in ("robertson", "robertson_dae") else 1e-8
        if p.get("primary") == "exact":
            y = p["exact"](p["t"])
            checks = [(primary, rtol)] + checks
            print(f"{name}: the exact solution")
        else:
            y, stats, seconds = solve(p, primary, rtol, scale * rtol)
            print(f"{name}: {primary} rtol {rtol:.0e} atol {scale * rtol:.0e}: {stats['rhs_evaluations']} evaluations, "
                  f"{seconds:.1f} s")
        for method, ctol in checks:
            yc, _, s = solve(p, method, ctol, scale * ctol)
            print(f"    vs {method} rtol {ctol:.0e}: {scaled_max(yc, y, test_atol, TEST_RTOL):.1e} "
                  f"({scaled_max(yc, y, scale * rtol, rtol):.1e}) [{s:.1f} s]")
        if "exact" in p and p.get("primary") != "exact":
            ex = p["exact"](p["t"])
            print(f"    vs the exact solution: {scaled_max(y, ex, test_atol, TEST_RTOL):.1e} "
                  f"({scaled_max(y, ex, scale * rtol, rtol):.1e})")
        yd = solve_pydiffsol(name, p, 1e-10, scale * 1e-10)
        if yd is not None:
            print(f"    vs pydiffsol rtol 1e-10: {scaled_max(yd, y, test_atol, TEST_RTOL):.1e}")
        with open(HERE / f"{name}.csv", "w") as fh:
            fh.write(",".join(["t"] + p["names"]) + "\n")
            for k, tk in enumerate(p["t"]):
                fh.write(",".join(repr(float(v)) for v in [tk, *y[:, k]]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
