"""lifelib's savings model CashValue_ME (or its term-life model BasicTerm_ME): time result_pv() over a model point
table, as lifelib users run it.

Run through `bench/peers/lifelib_savings.sh` (it makes the venv). Usage:

    python bench/peers/lifelib_savings.py [--model cashvalue|basicterm] [--points CSV] [--reps N]

The model is created from the installed lifelib (`lifelib.create("savings", tmp)`, then
`modelx.read_model(".../CashValue_ME")`; for `basicterm` the library `basiclife` and `BasicTerm_ME`), its
`model_point_table` is set to the given table (default: the shipped 10K points,
`examples/savings/model_point_10000.csv`, identical to the model's own `model_point_10000`, or for `basicterm`
`examples/basicterm/basicterm_me_model_point_table.csv`, identical to BasicTerm_ME's own table), and
`Projection.result_pv()` is timed: wall seconds, CPU seconds of the process (user + system) and the peak
resident memory; `process_cpu_s` is the whole process's CPU seconds (its start, the imports, the model read
and every repetition). Each repetition reads the model afresh (modelx caches every cell). Prints one JSON object with
the median and every repetition, the column totals (to check against parfit's), and the versions.
"""

import argparse
import json
import os
import pathlib
import platform
import resource
import statistics
import sys
import tempfile
import time

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import lifelib  # noqa: E402
import modelx as mx  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
# kind → (library, model, default model points)
MODELS = {
    "cashvalue": ("savings", "CashValue_ME", ROOT / "examples" / "savings" / "model_point_10000.csv"),
    "basicterm": ("basiclife", "BasicTerm_ME", ROOT / "examples" / "basicterm" / "basicterm_me_model_point_table.csv"),
}


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=sorted(MODELS), default="cashvalue")
    parser.add_argument("--points")
    parser.add_argument("--reps", type=int, default=1)
    args = parser.parse_args()
    library, name, default_points = MODELS[args.model]
    points = pd.read_csv(args.points or default_points, index_col=0)
    runs = []
    totals = None
    with tempfile.TemporaryDirectory() as tmp:
        lifelib.create(library, os.path.join(tmp, library))
        for rep in range(args.reps):
            model = mx.read_model(os.path.join(tmp, library, name), name=f"{name}_{rep}")
            model.Projection.model_point_table = points
            wall, cpu = time.perf_counter(), cpu_seconds()
            result = model.Projection.result_pv()
            runs.append({"wall_s": time.perf_counter() - wall, "cpu_s": cpu_seconds() - cpu})
            totals = {k: float(v) for k, v in result.sum().items()}
            model.close()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # The whole process so far: Python's start, the imports, the library copied and each repetition's model read.
    process_cpu = cpu_seconds()
    print(json.dumps({
        "model": name,
        "points": len(points),
        "reps": args.reps,
        "wall_s_median": statistics.median(r["wall_s"] for r in runs),
        "cpu_s_median": statistics.median(r["cpu_s"] for r in runs),
        "runs": runs,
        "process_cpu_s": process_cpu,
        "peak_rss_mb": peak_kb / 1024,
        "totals": totals,
        "versions": {"lifelib": ".".join(map(str, lifelib.VERSION)),
                     "modelx": mx.__version__, "numpy": np.__version__, "pandas": pd.__version__,
                     "python": platform.python_version()},
    }))


if __name__ == "__main__":
    sys.exit(main())
