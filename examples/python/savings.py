"""lifelib's savings model over 10,000 model points from Python: the counterpart of

    parfit run examples/savings/run.toml

The projection's present values per point (pv.csv), the portfolio totals (totals.json), the monthly cash flows
and policy counts, and point 1's audit — the CLI's numbers bit for bit, for any thread count.

Run from the repository root:  python examples/python/savings.py
"""

import parfit

result = parfit.project("examples/savings/run.toml")

# The CLI's table: each present value summed over the portfolio (scenario 1).
print(f"{'present value':<20} total")
for scenario in result.totals["scenario_totals"]:
    for name, total in scenario["totals"].items():
        print(f"{name:<20} {total:e}")

print(result.pv.head())          # one row per model point
print(result.result_cf.head())   # monthly portfolio cash flows
