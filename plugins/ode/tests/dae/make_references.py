"""Reference solutions for the DAE tests (tests/dae.rs), written to references.json.

Each DAE is reduced by hand to the ODE its algebraic equations imply and solved by SciPy's Radau at
rtol = 1e-13 (exponential decay: the closed form); pydiffsol (DiffSL's own solver) solves the model text as
it is, at rtol = 1e-10, atol = 1e-16, as a cross-check whose largest relative difference is printed (and must be small).

Run with the bench venv (pydiffsol 0.6.2, scipy 1.17, numpy):
    target/peers/bench-venv/bin/python plugins/ode/tests/dae/make_references.py
"""

import json
import pathlib

import numpy as np
import pydiffsol as ds
from scipy.integrate import solve_ivp

HERE = pathlib.Path(__file__).parent


def radau(f, y0, times, atol):
    sol = solve_ivp(f, (0.0, times[-1]), y0, method="Radau", t_eval=times, rtol=1e-13, atol=atol,
                    dense_output=False)
    assert sol.success, sol.message
    return sol.y


def robertson(times):
    k1, k2, k3 = 0.04, 1e4, 3e7

    def f(t, u):
        x, y = u
        z = 1 - x - y
        return [-k1 * x + k2 * y * z, k1 * x - k2 * y * z - k3 * y * y]

    x, y = radau(f, [1.0, 0.0], times, [1e-22, 1e-24])
    return np.vstack([x, y, 1 - x - y])


def circuit(times):
    R, L, C, V0, omega = 100.0, 1.0, 0.001, 10.0, 100.0

    def f(t, u):
        iL, V = u
        return [(V0 * np.sin(omega * t) - V) / L, (iL - V / R) / C]

    iL, V = radau(f, [0.0, 0.0], times, [1e-16, 1e-16])
    return np.vstack([V / R])


def decay(times):
    e = np.exp(-0.1 * times)
    return np.vstack([e, e, e])


MODELS = {
    "robertson_dae": (robertson, [0.04, 1e4, 3e7], np.array([0.0] + [4.0 * 10.0**k for k in range(-1, 11)])),
    "electrical_circuit": (circuit, [], np.linspace(0.0, 1.0, 101)),
    "exponential_decay_with_algebraic": (decay, [0.1], np.linspace(0.0, 10.0, 11)),
}


def main():
    out = {}
    for name, (reference, params, times) in MODELS.items():
        values = reference(times)
        ode = ds.Ode((HERE / f"{name}.ds").read_text())
        ode.rtol, ode.atol = 1e-10, 1e-16
        peer = ode.solve_dense(np.array(params, dtype=float), times).ys
        # Relative, floored at 1e-3 of each output's largest magnitude (the circuit's current crosses zero).
        floor = 1e-3 * np.abs(values).max(axis=1, keepdims=True)
        diff = np.max(np.abs(peer - values) / (np.abs(values) + floor))
        print(f"{name}: pydiffsol vs reference, largest relative difference {diff:.2e}")
        out[name] = {"params": params, "times": times.tolist(), "values": values.T.tolist()}
    (HERE / "references.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
