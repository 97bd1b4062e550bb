"""lifelib's savings model over 10,000 model points from Python: the counterpart of

    parfit run examples/savings/run.toml

The projection's present values per point (pv.csv), the portfolio totals (totals.json), the monthly cash flows
and policy counts, and point 1's audit — the CLI's numbers bit for bit, for any thread count.

Run from the repository root:  python examples/python/savings.py
"""

import parfit


def show(v):
    """A number as the CLI's table shows it: six decimals, or six in scientific form (3.081531e11)."""
    if v == 0 or 1e-4 <= abs(v) < 1e6:
        return f"{v:.6f}"
    mantissa, exponent = f"{v:.6e}".split("e")
    return f"{mantissa}e{int(exponent)}"


result = parfit.project("examples/savings/run.toml")
t = result.totals  # totals.json
print(f"{t['points']} model points × {len(t['scenarios'])} scenario(s), {t['horizon_months']} months, "
      f"{t['ranks']} rank(s) × {t['threads']} thread(s): {t['seconds']:.3f} s")

# The CLI's table: each present value summed over the portfolio, in pv.csv's column order.
print(f"{'present value':<20} total")
for name in result.pv.columns:
    print(f"{name:<20} {show(t['totals'][name])}")

print(result.pv.head())          # one row per model point
print(result.result_cf.head())   # monthly portfolio cash flows
