#!/usr/bin/env python3
"""diffid peer benchmark: the Lotka–Volterra CMA-ES fit of diffid's "Parallel Optimisation" tutorial.

    python bench/peers/diffid_lv.py [DATA_CSV] [--reps N] [--solve-reps N]

Run it through bench/peers/diffid_lv.sh, which builds diffid 0.3.0 into target/peers/diffid-venv.
Prints one JSON object on stdout (progress goes to stderr).

As in the tutorial: DiffsolBuilder with the tutorial's DiffSL model, the data file, parameters alpha, beta, delta,
gamma started at (0.8, 0.3, 0.05, 0.3), SSE cost, CMA-ES with max_iter 100 and step size 0.3 (diffid's default
population for 4 parameters is 8), diffid's default solver settings (BDF, rtol 1e-6, atol 1e-8), run once with
.with_parallel(False) and once with .with_parallel(True). Parallel mode evaluates each CMA-ES population with rayon
in Rust; its thread count is rayon's (RAYON_NUM_THREADS, else the number of CPUs).

Unlike the tutorial, each repetition gets a fixed CMA-ES seed (with_seed(rep)), the same in both modes, so the two
modes do the same work and their timings compare like with like; the tutorial leaves the seed unset.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import diffid

ROOT = Path(__file__).resolve().parents[2]

# The tutorial's DiffSL model (the in_i defaults are overridden by the fitted parameters).
MODEL = """
in_i { alpha = 1.0, beta = 0.5, delta = 0.1, gamma = 0.5 }
x0 { 10.0 } y0 { 5.0 }
u_i {
    prey = x0,
    predator = y0,
}
F_i {
    alpha * prey - beta * prey * predator,
    delta * prey * predator - gamma * predator,
}
"""

START = {"alpha": 0.8, "beta": 0.3, "delta": 0.05, "gamma": 0.3}
TRUE = [1.1, 0.4, 0.1, 0.4]
MAX_ITER = 100
STEP = 0.3


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def builder(data, parallel):
    b = diffid.DiffsolBuilder().with_diffsl(MODEL).with_data(data)
    for name, value in START.items():
        b = b.with_parameter(name, value)
    return b.with_cost(diffid.SSE()).with_parallel(parallel)


def fit(data, parallel, seed):
    optimiser = diffid.CMAES().with_max_iter(MAX_ITER).with_step_size(STEP).with_seed(seed)
    t0 = time.perf_counter()
    problem = builder(data, parallel).with_optimiser(optimiser).build()
    result = problem.optimise()
    wall = time.perf_counter() - t0
    return {
        "wall_s": wall,
        "diffid_reported_time_s": result.time.total_seconds(),
        "evaluations": int(result.evaluations),
        "iterations": int(result.iterations),
        "sse": float(result.value),
        "params": [float(v) for v in result.x],
        "termination": str(result.termination_reason),
        # the SSE re-evaluated at the returned point, to check result.value belongs to result.x
        "sse_recomputed": float(problem.evaluate(list(result.x))),
    }


def summarise(runs):
    walls = [r["wall_s"] for r in runs]
    evals = [r["evaluations"] for r in runs]
    best = min(runs, key=lambda r: r["sse"])
    med = statistics.median(walls)
    return {
        "wall_s_median": med,
        "wall_s_all": walls,
        "wall_s_total": sum(walls),
        "s_per_evaluation_overall": sum(walls) / sum(evals),
        "evaluations": evals,
        "s_per_evaluation_median": statistics.median(r["wall_s"] / r["evaluations"] for r in runs),
        "final_sse": [r["sse"] for r in runs],
        "final_sse_median": statistics.median(r["sse"] for r in runs),
        "final_params": [r["params"] for r in runs],
        "best": {"sse": best["sse"], "params": best["params"], "seed": best["seed"]},
        "runs": runs,
    }


def time_single_solve(data, reps):
    """One SSE evaluation = one BDF solve over [0, 100] at the 500 times plus the SSE, at the true parameters."""
    problem = builder(data, False).build()
    first = time.perf_counter()
    sse = problem.evaluate(TRUE)  # first call builds and JIT-compiles the model (cached per thread)
    first = time.perf_counter() - first
    times = []
    # alternate two nearby points: diffid skips set_params when the parameters repeat, not the solve
    other = [TRUE[0] * (1 + 1e-12)] + TRUE[1:]
    for i in range(reps):
        p = TRUE if i % 2 == 0 else other
        t0 = time.perf_counter()
        problem.evaluate(p)
        times.append(time.perf_counter() - t0)
    return {
        "what": "problem.evaluate at (1.1, 0.4, 0.1, 0.4): diffid BDF solve (rtol 1e-6, atol 1e-8) + SSE, via Python",
        "sse_at_true_params": float(sse),
        "first_call_s_including_build_and_jit": first,
        "repetitions": reps,
        "median_s": statistics.median(times),
        "min_s": min(times),
    }


def accuracy(data):
    """diffid's SSE at the generating parameters and at the accurate optimum, at several solver tolerances."""
    ref = ROOT / "tests/data/lotka_volterra/optimum.json"
    points = {"generating_params": TRUE}
    if ref.exists():
        opt = json.loads(ref.read_text())
        points["reference_optimum"] = [opt[k] for k in ("alpha", "beta", "delta", "gamma")]
    out = {}
    for label, tol in (("default rtol 1e-6 atol 1e-8", None), ("rtol=atol=1e-8", 1e-8), ("rtol=atol=1e-10", 1e-10)):
        b = builder(data, False)
        if tol is not None:
            b = b.with_tolerances(tol, tol)
        problem = b.build()
        out[label] = {name: float(problem.evaluate(p)) for name, p in points.items()}
    return out


def busy_cpu_s():
    """CPU seconds the whole machine has spent busy (all cores), from /proc/stat; None if unavailable."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", nargs="?", default=str(ROOT / "examples/lotka_volterra/data.csv"))
    ap.add_argument("--reps", type=int, default=10, help="repetitions of each fit (seeds 0..reps-1)")
    ap.add_argument("--solve-reps", type=int, default=1000)
    args = ap.parse_args()

    data = np.loadtxt(args.data, delimiter=",", skiprows=1)
    log(f"data {args.data}: {data.shape}")

    # warm-up (JIT compile on the main thread and on the pool threads) so the first timed run is not penalised
    for parallel in (False, True):
        fit(data, parallel, seed=12345)

    busy0, own0 = busy_cpu_s(), own_cpu_s()
    modes = {"sequential": [], "parallel": []}
    for rep in range(args.reps):
        for mode in modes:  # interleave the modes so drift in machine load hits both alike
            r = fit(data, mode == "parallel", seed=rep)
            r["seed"] = rep
            modes[mode].append(r)
            log(f"{mode:10s} rep {rep}: {r['wall_s']:.3f} s, {r['evaluations']} evals, SSE {r['sse']:.3f}")

    busy1, own1 = busy_cpu_s(), own_cpu_s()
    out = {
        "tool": "diffid",
        "diffid_version": importlib.metadata.version("diffid"),
        "backend": "Cranelift JIT (diffid built from the 0.3.0 sdist with diffid core features = ['cranelift-backend'])",
        "cpu_count": os.cpu_count(),
        "threads_parallel": int(os.environ.get("RAYON_NUM_THREADS") or os.cpu_count()),
        "threads_sequential": 1,
        "data": str(args.data),
        "settings": {
            "start": list(START.values()),
            "optimiser": f"CMAES max_iter {MAX_ITER}, step_size {STEP}, default population (8), seed = repetition",
            "cost": "SSE",
            "solver": "diffid default: BDF, rtol 1e-6, atol 1e-8, dense backend",
        },
        "repetitions": args.reps,
        "sequential": summarise(modes["sequential"]),
        "parallel": summarise(modes["parallel"]),
        "single_solve": time_single_solve(data, args.solve_reps),
        "sse_by_diffid_tolerance": accuracy(data),
        # CPU time other processes used while the fits ran: well above 0 means the timings are disturbed
        "other_processes_cpu_s_during_fits": None if busy0 is None else (busy1 - busy0) - (own1 - own0),
        "loadavg_at_end": os.getloadavg(),
    }
    seq, par = out["sequential"], out["parallel"]
    out["speedup_of_medians"] = seq["wall_s_median"] / par["wall_s_median"]
    out["speedup_of_totals"] = seq["wall_s_total"] / par["wall_s_total"]
    out["speedup_per_seed_median"] = statistics.median(s / p for s, p in zip(seq["wall_s_all"], par["wall_s_all"]))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
