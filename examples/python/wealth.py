"""QuantEcon's "Parallelization" wealth simulation from Python: the counterpart of

    parfit run examples/wealth/run.toml

50,000 households over 1,000 periods, seed 1: the same statistics as the CLI prints, for any thread count. The
median wealth is 1.835866 (the stationary median is 1.835241; a 50,000-household median's 3σ band is ± 0.021).

Run from the repository root:  python examples/python/wealth.py
"""

import parfit

result = parfit.run("examples/wealth/run.toml")
print(result.summary)  # summary.csv: one row per output, one column per statistic

point = result.report["points"][0]  # summary.json: the one sweep point of this configuration
print(f"median wealth after {result.report['periods']} periods: {point['statistics']['w']['median']:.6f} "
      f"(seed {point['seed']}, {result.report['paths']} households)")

# Another seed, or a parameter changed as the CLI's --set does:
thrifty = parfit.run("examples/wealth/run.toml", set={"s": 0.35}, progress=False)
print(f"saving rate 0.35: median {thrifty.report['points'][0]['statistics']['w']['median']:.6f}")
