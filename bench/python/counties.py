"""The PySD cookbook's county fit written the cookbook's way (PySD + scipy) against `parfit.fit_many`, in one
Python process (`cargo xtask bench python` runs it in the PySD venv, with the release wheel installed there).

    python bench/python/counties.py [--counties N] [--threads 1,2] [--workers 2]

PySD side, as the cookbook's "Parallel Model Fitting" writes it: the census table read with pandas
(`header=[0, 1], skiprows=[2]`), `pysd.read_vensim("Aging_Chain.mdl")`, an error function that runs the model
with the nine loss rates as `params` from the county's 2000 counts (`initial_condition=(2000, row["2000"])`) and
sums the squared errors of decades 2–9 in 2010, and `scipy.optimize.minimize(error, x0=[.05] * 9,
method="L-BFGS-B")` per county through `data.apply(fit, axis=1)`. One adaptation to PySD 3: the run names its
return columns (`dec 1` … `dec 9`), since PySD 3 labels them by their Vensim names and the cookbook's
subtraction would no longer align with the table's `dec_1` … `dec_9`. The full 3,137 counties take hours this
way, so the first N counties are timed and the time per county extrapolated. Then the cookbook's parallel
version: the sample split into one share per worker, each share's `apply(fit)` in a `multiprocessing.Pool`
process (`--workers`, default 2). BLAS is pinned to one thread (a threaded OpenBLAS slows L-BFGS-B's 9-variable
steps on a busy machine; pinning favours PySD).

parfit side: `parfit.fit_many("examples/counties/fit.toml")` over all 3,137 counties, with the configuration's
Levenberg–Marquardt and with `algorithm="lbfgsb"` (the cookbook's algorithm), for each thread count; the call's
wall time (reading the table and the model included) per county.

Prints one JSON object: seconds per county for each, the ratios PySD ÷ parfit per county (serial PySD against
each thread count; the pool against as many threads as workers), and the SSEs both reach on the sampled counties.
"""

import argparse
import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import json  # noqa: E402
import multiprocessing  # noqa: E402
import pathlib  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pysd  # noqa: E402
import scipy  # noqa: E402
import scipy.optimize  # noqa: E402

import parfit  # noqa: E402

DATA = "examples/counties/Males_by_decade_and_county.csv"
MODEL = "examples/counties/Aging_Chain.mdl"
CONFIG = "examples/counties/fit.toml"

# The cookbook's recipe (PySD 3: the stocks named as the run returns them).
param_names = ["dec_%i_loss_rate" % i for i in range(1, 10)]
stocks = ["dec %i" % i for i in range(1, 10)]
model = None
evaluations = []


def error(param_vals, measurements):
    evaluations[-1] += 1
    predictions = model.run(params=dict(zip(param_names, param_vals)),
                            initial_condition=(2000, measurements["2000"]),
                            return_timestamps=2010,
                            return_columns=stocks).loc[2010]
    errors = predictions.values - measurements["2010"].values
    return sum(errors[1:] ** 2)  # ignore first decade: no birth info


def fit(row):
    evaluations.append(0)
    res = scipy.optimize.minimize(error, args=row, x0=[.05] * 9, method="L-BFGS-B")
    return pd.Series(index=param_names, data=res["x"])


def fit_rows(rows):
    """One worker's share of the counties, fitted as the serial loop fits them."""
    return rows.apply(fit, axis=1)


def apply_in_pool(rows, workers):
    """The cookbook's parallel step: the table split into one contiguous share per worker, each share's
    `apply(fit)` in a `multiprocessing.Pool` process (forked, so the model loaded here is inherited), the
    results concatenated in order."""
    bounds = np.linspace(0, len(rows), workers + 1).astype(int)
    shares = [rows.iloc[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:])]
    with multiprocessing.get_context("fork").Pool(processes=workers) as pool:
        return pd.concat(pool.map(fit_rows, shares))


def main():
    global model
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--counties", type=int, default=10)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--workers", type=int, default=2, help="processes of the cookbook's parallel version (0: none)")
    a = p.parse_args()
    threads = [int(t) for t in a.threads.split(",") if t.strip()]
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    load_start = os.getloadavg()

    data = pd.read_csv(DATA, header=[0, 1], skiprows=[2])
    sample = data.iloc[:a.counties]
    tmp = tempfile.mkdtemp(prefix="pysd_parfit_")
    try:
        # Translated in a temporary directory, so nothing is written beside the example's .mdl.
        shutil.copy(MODEL, tmp)
        t = time.perf_counter()
        model = pysd.read_vensim(str(pathlib.Path(tmp) / "Aging_Chain.mdl"))
        load_seconds = time.perf_counter() - t

        t, c = time.perf_counter(), time.process_time()
        county_params = sample.apply(fit, axis=1)
        pysd_seconds, pysd_cpu = time.perf_counter() - t, time.process_time() - c
        pysd_evaluations = list(evaluations)  # before the SSEs below add to the count
        pysd_sse = [float(error(county_params.iloc[i].values, sample.iloc[i])) for i in range(len(sample))]
        per_county = pysd_seconds / len(sample)
        out = {
            "workload": "PySD cookbook Parallel Model Fitting: Aging_Chain.mdl per US county, L-BFGS-B from 0.05",
            "started": started,
            "pysd": {
                "counties": len(sample),
                "sample": f"the first {len(sample)} counties of {DATA}",
                "model_load_seconds": load_seconds,
                "seconds": pysd_seconds,
                "cpu_seconds": pysd_cpu,
                "seconds_per_county": per_county,
                "cpu_seconds_per_county": pysd_cpu / len(sample),
                "extrapolated_seconds_all_counties": per_county * len(data),
                "median_evaluations": statistics.median(pysd_evaluations),
                "median_sse": statistics.median(pysd_sse),
                "max_sse": max(pysd_sse),
            },
            "parfit": [],
        }
        if a.workers > 0:
            t = time.perf_counter()
            pooled = apply_in_pool(sample, a.workers)
            pool_seconds = time.perf_counter() - t
            out["pysd_pool"] = {
                "workers": a.workers,
                "counties": len(sample),
                "seconds": pool_seconds,
                "seconds_per_county": pool_seconds / len(sample),
                "extrapolated_seconds_all_counties": pool_seconds / len(sample) * len(data),
                "same_fits_as_serial": bool(np.array_equal(pooled.values, county_params.values)),
            }
        for algorithm in [None, "lbfgsb"]:
            for n in threads:
                output = tempfile.mkdtemp(prefix="fit_many_", dir=tmp)
                t = time.perf_counter()
                r = parfit.fit_many(CONFIG, algorithm=algorithm, threads=n, output=output, progress=False)
                wall = time.perf_counter() - t
                sse = [float(v) for v in r.table["sse"].iloc[:len(sample)]]
                out["parfit"].append({
                    "algorithm": algorithm or "levenberg_marquardt (the configuration's)",
                    "threads": n,
                    "counties": r.cases,
                    "failed": r.failed,
                    "wall_seconds": wall,
                    "seconds": r.seconds,
                    "seconds_per_county": wall / r.cases,
                    "median_evaluations": r.summary["evaluations"]["median"],
                    "sample_median_sse": statistics.median(sse),
                    "sample_max_sse": max(sse),
                    "pysd_over_parfit_per_county": per_county / (wall / r.cases),
                    "pysd_cpu_over_parfit_per_county": (pysd_cpu / len(sample)) / (wall / r.cases),
                })
                if "pysd_pool" in out and out["pysd_pool"]["workers"] == n:
                    out["parfit"][-1]["pysd_pool_over_parfit_per_county"] = \
                        out["pysd_pool"]["seconds_per_county"] / (wall / r.cases)
        out["load_average_at_start"] = [round(v, 2) for v in load_start]
        out["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
        out["versions"] = {"parfit": parfit.__version__, "pysd": pysd.__version__, "scipy": scipy.__version__,
                           "numpy": np.__version__, "pandas": pd.__version__, "python": platform.python_version()}
        print(json.dumps(out, indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
