#!/usr/bin/env python3
"""Make the synthetic observations of the regions example (see DATA.md). Standard library only.

Runs population.mdl with `parfit run` at the true parameter values below, takes every region's total population
each year, multiplies each value by exp(NOISE_SD * z) with z a standard normal draw from a seeded generator,
rounds to whole people, and writes
  data.csv        - one dataset: t, then total population[r1] ... total population[r50], yearly 2000-2030
                    (seed 1); for `parfit fit` (fit.toml)
  replicates.csv  - REPLICATES more datasets of the same truth, one per row, observed every five years
                    (2005-2030; seeds 101, 102, ...); for the parametric bootstrap of `parfit fit-many`
                    (fit_many.toml). Header rows: year, region, then the id column's name.

    python3 examples/regions/make_data.py [path to parfit]   # default: target/release/parfit
"""

import csv
import io
import math
import random
import subprocess
import sys
from pathlib import Path

TRUTH = {
    "fertility": 0.032,
    "mortality scale": 1.15,
    "migration sensitivity": 0.1,
    "perception delay": 3.0,
}
NOISE_SD = 0.02  # multiplicative, on the log scale
REGIONS = [f"r{i}" for i in range(1, 51)]
YEARS = list(range(2000, 2031))
CENSUS_YEARS = list(range(2005, 2031, 5))
REPLICATES = 50

HERE = Path(__file__).resolve().parent


def simulate(parfit):
    """Every region's total population at each of YEARS, by `parfit run` at TRUTH."""
    command = [parfit, "run", str(HERE / "population.mdl"), "--times", f"{YEARS[0]}:{YEARS[-1]}:{len(YEARS)}"]
    command += ["--format", "csv"]
    for name, value in TRUTH.items():
        command += ["--set", f"{name}={value!r}"]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    return {float(r["time"]): [float(r[f"total population[{region}]"]) for region in REGIONS] for r in rows}


def noisy(values, rng):
    return [round(v * math.exp(NOISE_SD * rng.gauss(0.0, 1.0))) for v in values]


def main():
    root = HERE.parent.parent
    parfit = sys.argv[1] if len(sys.argv) > 1 else str(root / "target" / "release" / "parfit")
    if not Path(parfit).is_file():
        sys.exit(f"{parfit}: no such file (build it with `cargo build --release`, or name parfit's path)")
    exact = simulate(parfit)

    rng = random.Random(1)
    with open(HERE / "data.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["t"] + [f"total population[{region}]" for region in REGIONS])
        for year in YEARS:
            w.writerow([year] + noisy(exact[float(year)], rng))

    with open(HERE / "replicates.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow([""] + [year for year in CENSUS_YEARS for _ in REGIONS])
        w.writerow([""] + [region for _ in CENSUS_YEARS for region in REGIONS])
        w.writerow(["replicate"] + [""] * (len(CENSUS_YEARS) * len(REGIONS)))
        for k in range(1, REPLICATES + 1):
            rng = random.Random(100 + k)
            w.writerow([k] + [n for year in CENSUS_YEARS for n in noisy(exact[float(year)], rng)])


if __name__ == "__main__":
    main()
