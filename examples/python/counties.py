"""Every US county fitted from Python: the counterpart of

    parfit fit-many examples/counties/fit.toml

The PySD cookbook's "Parallel Model Fitting" loop (a scipy minimize per county, over multiprocessing) in three
lines: the cases, the model and the fit are the configuration's; the 3,137 fits run on parfit's thread pool
with the GIL released. results.csv, summary.json and the checkpoint go to the configuration's [output] dir
(examples/counties/results), as the CLI writes them; `resume=True` continues an interrupted run.

Run from the repository root:  python examples/python/counties.py
"""

import parfit

result = parfit.fit_many("examples/counties/fit.toml")
print(f"{result.cases} cases, {result.failed} failed, {result.seconds:.3f} s; results in {result.output}")

# The CLI's table: quantiles of each fitted loss rate over the counties (from summary.json).
quantiles = ["q05", "q25", "median", "q75", "q95"]
print(f"{'parameter':<20}" + "".join(f"{q:>13}" for q in quantiles))
for name, stats in result.summary["parameters"].items():
    print(f"{name:<20}" + "".join(f"{stats[q]:>13.6f}" for q in quantiles))

# One row per county, in the table's order (results.csv's columns).
print(result.table.head())
