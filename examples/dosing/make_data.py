"""Make data.csv for the dosing example: one patient's plasma concentrations under repeated oral doses.

The concentrations are the one-compartment oral model of dosing.ds at the true parameters, in closed form (each
dose adds a Bateman curve), times log-normal measurement noise exp(0.1 z) with z standard normal from numpy's
default_rng(18), rounded to the assay's 0.001 mg/L. It also prints the asymptotic standard errors of the
least-squares fit under that noise (the sandwich covariance for an unweighted SSE with proportional errors),
which DATA.md quotes.

    python3 examples/dosing/make_data.py
"""

from pathlib import Path

import numpy as np

TRUE = {"ka": 1.2, "CL": 4.0, "V": 35.0}
DOSES = [(0.0, 200.0)] + [(12.0 * k, 100.0) for k in range(1, 6)]  # (time h, amount mg)
# A rich profile after the first dose, troughs 15 minutes before each later dose, a rich profile after the last.
TIMES = [0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10, 11.75, 23.75, 35.75, 47.75, 59.75,
         60.25, 60.5, 60.75, 61, 61.5, 62, 63, 64, 65, 66, 68, 70, 72]
NOISE = 0.1  # proportional (log-normal) error of the assay
SEED = 18


def concentration(t, ka, CL, V):
    """Plasma concentration (mg/L) at times t: the sum over the doses given before t of their Bateman curves."""
    t = np.asarray(t, dtype=float)
    k = CL / V
    c = np.zeros_like(t)
    for t_dose, amount in DOSES:
        s = t - t_dose
        after = s > 0  # a dose at t itself has not been absorbed yet
        c[after] += amount * ka / (V * (ka - k)) * (np.exp(-k * s[after]) - np.exp(-ka * s[after]))
    return c


def standard_errors(times, theta):
    """Asymptotic standard errors of the unweighted least-squares estimates when the noise is NOISE · C."""
    c = concentration(times, *theta)
    jac = np.empty((len(times), len(theta)))
    for j, value in enumerate(theta):
        step = 1e-6 * value
        up, down = list(theta), list(theta)
        up[j] += step
        down[j] -= step
        jac[:, j] = (concentration(times, *up) - concentration(times, *down)) / (2 * step)
    bread = np.linalg.inv(jac.T @ jac)
    meat = jac.T @ np.diag((NOISE * c) ** 2) @ jac
    return np.sqrt(np.diag(bread @ meat @ bread))


def main():
    rng = np.random.default_rng(SEED)
    times = np.array(TIMES, dtype=float)
    truth = [TRUE["ka"], TRUE["CL"], TRUE["V"]]
    observed = concentration(times, *truth) * np.exp(NOISE * rng.standard_normal(len(times)))
    lines = ["t,conc"] + [f"{t:g},{c:.3f}" for t, c in zip(times, observed)]
    Path(__file__).with_name("data.csv").write_text("\n".join(lines) + "\n")
    for name, value, se in zip(TRUE, truth, standard_errors(times, truth)):
        print(f"{name}: true {value}, standard error {se:.4g} ({100 * se / value:.2f} %)")


if __name__ == "__main__":
    main()
