"""PySD + scipy on the PySD cookbook's "Parallel Model Fitting" recipe, for a sample of US counties.

Run through `bench/peers/pysd_counties.sh` (it makes the venv). Usage:

    python bench/peers/pysd_counties.py [--counties N] [--workers W] [--modes serial,pool]
                                        [--data CSV] [--model MDL] [--reference CSV]

The recipe as the cookbook writes it: `model = pysd.read_vensim("Aging_Chain.mdl")`; for each county an
error function runs the model with the nine loss rates as `params` and the stocks started from the county's
2000 counts (`initial_condition=(2000, ...)`), returns the 2010 stocks, and sums the squared errors of
decades 2..9 with the builtin `sum`; `scipy.optimize.minimize(error, x0=[.05]*9, method="L-BFGS-B")` with
default options (finite-difference gradients). Adaptations to PySD 3 (the cookbook predates it): the run
asks for `return_columns=["dec 1", ..., "dec 9"]` and `return_timestamps=[2010]` (PySD 3 names columns by the
Vensim names and has no `rtol` argument), and the model is translated in a temporary directory so nothing is
written beside the .mdl file.

The first N counties (rows of the census file) are fitted serially, then again with
`multiprocessing.Pool(W)` (fork; the model loaded once in the parent, as the cookbook's notebook does).
BLAS is pinned to one thread (a threaded OpenBLAS slows L-BFGS-B's tiny linear algebra ~10x on a busy
machine; pinning favours the peer). Prints one JSON object on stdout: per mode the wall seconds for the
sample, seconds per county, the extrapolation to all 3,137 counties, median/max SSE (recomputed at the returned
rates, outside the timing), median evaluations (finite-difference ones included), CPU seconds (user + system, of the process or of the
pool's workers) in total, per county and per evaluation -- the figure to trust on a machine busy with other work;
and the pysd/scipy/numpy/pandas versions. With `--reference` (default `tests/data/counties/scipy_lbfgsb.csv`,
if present) it also reports the largest difference between PySD's SSE and the numpy reference's
`sse_cookbook` on the sample.
"""

import argparse
import csv
import json
import multiprocessing
import os
import pathlib
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pandas  # noqa: E402
import pysd  # noqa: E402
import scipy  # noqa: E402
import scipy.optimize  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "examples" / "counties" / "Males_by_decade_and_county.csv"
MODEL = ROOT / "examples" / "counties" / "Aging_Chain.mdl"
REFERENCE = ROOT / "tests" / "data" / "counties" / "scipy_lbfgsb.csv"
ALL_COUNTIES = 3137

STOCKS = [f"dec {k}" for k in range(1, 10)]
param_names = ["dec_%i_loss_rate" % i for i in range(1, 10)]
model = None  # loaded in main(), inherited by the forked workers


def read_census(path, n):
    """The first n county rows: (state, county) text and {"2000": {stock: count}, "2010": [...]}."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    years, decades = rows[0], rows[1]
    col = {(y, d): i for i, (y, d) in enumerate(zip(years, decades)) if y}
    out = []
    for r in rows[3:3 + n]:
        out.append({
            "id": (r[0], r[1]),
            "2000": {s: float(r[col[("2000", f"dec_{k}")]]) for k, s in enumerate(STOCKS, 1)},
            "2010": np.array([float(r[col[("2010", f"dec_{k}")]]) for k in range(1, 10)]),
        })
    return out


def error(param_vals, measurements):
    predictions = model.run(params=dict(zip(param_names, param_vals)),
                            initial_condition=(2000, measurements["2000"]),
                            return_columns=STOCKS,
                            return_timestamps=[2010]).loc[2010]
    errors = predictions.values - measurements["2010"]
    return sum(errors[1:] ** 2)  # ignore first decade: no birth info


def fit(row):
    res = scipy.optimize.minimize(error, args=row, x0=[.05] * 9, method="L-BFGS-B")
    return {"x": [float(v) for v in res.x], "nfev": int(res.nfev), "nit": int(res.nit)}


def add_sse(results, rows):
    """SSE at the returned rates, outside the timing (L-BFGS-B's `res.fun` can differ from it in the last bits
    when it stops with ABNORMAL and restores an earlier point)."""
    for res, row in zip(results, rows):
        res["sse"] = float(error(res["x"], row))


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def summarise(results, seconds, workers, cpu):
    n = len(results)
    sse = [r["sse"] for r in results]
    return {
        "workers": workers,
        "counties": n,
        "seconds": round(seconds, 3),
        "seconds_per_county": seconds / n,
        "extrapolated_seconds_all_counties": seconds / n * ALL_COUNTIES,
        "median_sse": statistics.median(sse),
        "max_sse": max(sse),
        "median_evaluations": statistics.median(r["nfev"] for r in results),
        "cpu_seconds": round(cpu, 3),
        "cpu_seconds_per_county": cpu / n,
        "cpu_seconds_per_evaluation": cpu / sum(r["nfev"] for r in results),
    }


def main():
    global model
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--counties", type=int, default=20)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--modes", default="serial,pool")
    p.add_argument("--data", default=str(DATA))
    p.add_argument("--model", default=str(MODEL))
    p.add_argument("--reference", default=str(REFERENCE))
    a = p.parse_args()

    rows = read_census(a.data, a.counties)
    tmp = tempfile.mkdtemp(prefix="pysd_counties_")
    try:
        mdl = pathlib.Path(tmp) / "Aging_Chain.mdl"
        shutil.copy(a.model, mdl)
        t = time.perf_counter()
        model = pysd.read_vensim(str(mdl))
        load_seconds = time.perf_counter() - t

        out = {"workload": "PySD cookbook Parallel Model Fitting (Aging_Chain.mdl, L-BFGS-B from 0.05)",
               "sample": f"first {len(rows)} counties of {pathlib.Path(a.data).name}",
               "model_load_seconds": round(load_seconds, 3),
               "load_average_at_start": [round(v, 2) for v in os.getloadavg()]}
        modes = [m.strip() for m in a.modes.split(",") if m.strip()]
        results = {}
        if "serial" in modes:
            t, c = time.perf_counter(), time.process_time()
            results["serial"] = [fit(r) for r in rows]
            seconds, cpu = time.perf_counter() - t, time.process_time() - c
            add_sse(results["serial"], rows)
            out["serial"] = summarise(results["serial"], seconds, 1, cpu)
            print(f"serial done: {out['serial']['seconds']} s", file=sys.stderr)
        if "pool" in modes:
            t, c = time.perf_counter(), children_cpu()
            pool = multiprocessing.get_context("fork").Pool(a.workers)
            results["pool"] = pool.map(fit, rows, chunksize=1)
            pool.close()
            pool.join()  # reaps the workers, so their CPU time is in RUSAGE_CHILDREN
            seconds, cpu = time.perf_counter() - t, children_cpu() - c
            add_sse(results["pool"], rows)
            out[f"pool{a.workers}"] = summarise(results["pool"], seconds, a.workers, cpu)
            print(f"pool done: {out[f'pool{a.workers}']['seconds']} s", file=sys.stderr)
        if "serial" in results and "pool" in results:
            out["serial_and_pool_identical"] = results["serial"] == results["pool"]

        ref = pathlib.Path(a.reference)
        first = next(iter(results.values()), None)
        if first is not None and ref.exists():
            with open(ref, newline="") as f:
                ref_sse = {(r["state"], r["county"]): float(r["sse_cookbook"]) for r in csv.DictReader(f)}
            diffs = [abs(res["sse"] - ref_sse[row["id"]]) for row, res in zip(rows, first)
                     if row["id"] in ref_sse]
            out["reference_sse_cookbook_max_abs_diff"] = max(diffs) if diffs else None
            out["reference_counties_compared"] = len(diffs)
        out["versions"] = {"pysd": pysd.__version__, "scipy": scipy.__version__, "numpy": np.__version__,
                           "pandas": pandas.__version__, "python": platform.python_version()}
        out["cpus"] = os.cpu_count()
        out["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
        print(json.dumps(out, indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
