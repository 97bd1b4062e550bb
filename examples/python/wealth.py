"""QuantEcon's "Parallelization" wealth simulation from Python: the counterpart of

    parfit run examples/wealth/run.toml

50,000 households over 1,000 periods, seed 1: the same statistics as the CLI prints, for any thread count. The
median wealth is 1.835866 (the stationary median is 1.835241; a 50,000-household median's 3σ band is ± 0.021).

Run from the repository root:  python examples/python/wealth.py
"""

import numpy as np

import parfit

result = parfit.run("examples/wealth/run.toml")
print(result.summary)  # summary.csv: one row per output, one column per statistic

point = result.report["points"][0]  # summary.json: the one sweep point of this configuration
print(f"median wealth after {result.report['periods']} periods: {point['statistics']['w']['median']:.6f} "
      f"(seed {point['seed']}, {result.report['paths']} households)")

# Another seed, or a parameter changed as the CLI's --set does:
thrifty = parfit.run("examples/wealth/run.toml", set={"s": 0.35}, progress=False)
print(f"saving rate 0.35: median {thrifty.report['points'][0]['statistics']['w']['median']:.6f}")

# Every household's wealth, from the model file itself: the 50,000 values the run summarised, bit for bit (the
# numbers `per_path = true` writes to paths.csv), one row per household.
households = parfit.MonteCarloModel("examples/wealth/wealth.mc").simulate(paths=50_000, periods=1_000, seed=1,
                                                                          progress=False)
w = np.asarray(households)[:, 0]
print(f"richest household: {w.max():.6f} (household {w.argmax()}), poorest: {w.min():.6f}")
