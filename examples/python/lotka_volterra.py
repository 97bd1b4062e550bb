"""The Lotka–Volterra fit from Python: the counterpart of

    parfit fit examples/lotka_volterra/fit.toml

Same configuration, same seed (42), so the same numbers as the CLI prints, bit for bit. Then the same fit
with the observations given as a DataFrame instead of the CSV file the configuration names.

Run from the repository root:  python examples/python/lotka_volterra.py
"""

import pandas as pd

import parfit

CONFIG = "examples/lotka_volterra/fit.toml"

result = parfit.fit(CONFIG)
print(f"SSE = {result.value:.6f} after {result.evaluations} evaluations, {result.iterations} iterations "
      f"in {result.seconds:.3f} s ({result.termination}; {result.algorithm}, seed {result.seed}, "
      f"{result.threads} threads)")
print(f"{'parameter':<12}{'fitted':>14}")
for name, value in result.x.items():
    print(f"{name:<12}{value:>14.6f}")

# The observations as a DataFrame (columns t, prey, predator — the names [data] maps): the same fit.
data = pd.read_csv("examples/lotka_volterra/data.csv")
again = parfit.fit(CONFIG, data=data, progress=False)
print(f"\nwith data=DataFrame: SSE = {again.value:.6f}, same fit as from the file: {again.x == result.x}")

# The fitted curves on the CLI's plot grid (fitted.csv's columns) and the convergence history.
print(result.fitted.head())
print(result.history.tail(3))
