"""Make data.csv for the Robertson example: noisy concentrations of the three species at log-spaced times.

The concentrations are robertson.ds at the true rate constants, computed by scipy's Radau on the equivalent ODE
(C = 1 - A - B substituted) at rtol 1e-12, atol 1e-16, times log-normal measurement noise exp(0.02 z) with z
standard normal from numpy's default_rng(18) (2 % error, drawn species by species, time by time). B is written in
units of 1e-4, as the model's output Bx1e4.

    python3 examples/robertson/make_data.py        # needs numpy and scipy
"""

from pathlib import Path

import numpy as np
from scipy.integrate import solve_ivp

TRUE = {"k1": 0.04, "k2": 1e4, "k3": 3e7}
TIMES = np.logspace(-5, 5, 31)  # 1e-5 … 1e5, three points a decade
NOISE = 0.02
SEED = 18


def concentrations(times, k1, k2, k3):
    """A, B and C at the given times from (1, 0, 0) at t = 0 (rows: times)."""

    def rhs(_, y):
        a, b = y
        c = 1.0 - a - b
        return [-k1 * a + k2 * b * c, k1 * a - k2 * b * c - k3 * b * b]

    def jac(_, y):
        a, b = y
        c = 1.0 - a - b
        return [[-k1 - k2 * b, k2 * c - k2 * b], [k1 + k2 * b, -k2 * c + k2 * b - 2 * k3 * b]]

    sol = solve_ivp(rhs, (0.0, times[-1]), [1.0, 0.0], method="Radau", t_eval=times, rtol=1e-12, atol=1e-16, jac=jac)
    a, b = sol.y
    return np.column_stack([a, b, 1.0 - a - b])


def main():
    rng = np.random.default_rng(SEED)
    exact = concentrations(TIMES, *TRUE.values())
    observed = exact * np.exp(NOISE * rng.standard_normal(exact.shape))
    lines = ["t,A,Bx1e4,C"] + [f"{t:.6g},{a:.6g},{1e4 * b:.6g},{c:.6g}" for t, (a, b, c) in zip(TIMES, observed)]
    Path(__file__).with_name("data.csv").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
