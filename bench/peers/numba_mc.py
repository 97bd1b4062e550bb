"""numba on the QuantEcon "Parallelization" lecture's Monte Carlo workloads, serial and with prange.

Wealth: 50,000 households x 1,000 periods of w' = R*s*w + y, R = (1 + r)*exp(v1*xi), y = exp(v2*eta), xi, eta
standard normal, r = 0.1, s = 0.3, v1 = 0.1, v2 = 1.0, w0 = 1; the result is the median of the final wealth
(the lecture's `h` and `compute_long_run_median[_parallel]`).
pi: 10^8 hit-or-miss points, a point (u, v) uniform on the unit square counting when it falls in the circle of
radius 1/2 around (1/2, 1/2); the estimate is 4 x the hit fraction (the lecture's exercise, as a loop so that
10^8 points need no 1.6 GB of arrays).

Every timing excludes JIT compilation (each function runs once on a small size first). numba's generator is seeded
inside the jitted code with np.random.seed(seed); with prange each worker thread has its own generator state, so
the parallel results change from run to run even with a fixed seed: the script reports the distinct results it saw.
Prints one JSON object on stdout.
"""

import argparse
import json
import os
import statistics
import time

import numba
import numpy as np
from numba import njit, prange


@njit
def h(w, r=0.1, s=0.3, v1=0.1, v2=1.0):
    R = (1 + r) * np.exp(v1 * np.random.randn())
    y = np.exp(v2 * np.random.randn())
    return R * s * w + y


@njit
def seed_numba(seed):
    np.random.seed(seed)


@njit
def wealth_serial(w0, T, num_reps):
    obs = np.empty(num_reps)
    for i in range(num_reps):
        w = w0
        for t in range(T):
            w = h(w)
        obs[i] = w
    return np.median(obs)


@njit(parallel=True)
def wealth_parallel(w0, T, num_reps):
    obs = np.empty(num_reps)
    for i in prange(num_reps):
        w = w0
        for t in range(T):
            w = h(w)
        obs[i] = w
    return np.median(obs)


@njit
def pi_serial(n):
    hits = 0
    for i in range(n):
        u = np.random.uniform(0.0, 1.0)
        v = np.random.uniform(0.0, 1.0)
        if (u - 0.5) ** 2 + (v - 0.5) ** 2 < 0.25:
            hits += 1
    return 4.0 * hits / n


@njit(parallel=True)
def pi_parallel(n):
    hits = 0
    for i in prange(n):
        u = np.random.uniform(0.0, 1.0)
        v = np.random.uniform(0.0, 1.0)
        if (u - 0.5) ** 2 + (v - 0.5) ** 2 < 0.25:
            hits += 1
    return 4.0 * hits / n


def timed(f, args, reps, seed):
    walls, results = [], []
    for _ in range(reps):
        seed_numba(seed)
        start = time.perf_counter()
        results.append(float(f(*args)))
        walls.append(time.perf_counter() - start)
    return {"median_s": statistics.median(walls), "min_s": min(walls), "all_s": walls, "results": results,
            "distinct_results": len(set(results))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--households", type=int, default=50_000)
    ap.add_argument("--periods", type=int, default=1_000)
    ap.add_argument("--points", type=int, default=100_000_000)
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()
    numba.set_num_threads(min(a.threads, numba.config.NUMBA_NUM_THREADS))
    # Compile every function before timing.
    wealth_serial(1.0, 2, 10), wealth_parallel(1.0, 2, 10), pi_serial(10), pi_parallel(10)
    wealth = (1.0, a.periods, a.households)
    out = {
        "numba_version": numba.__version__, "numpy_version": np.__version__,
        "threads": numba.get_num_threads(), "reps": a.reps, "seed": a.seed,
        "households": a.households, "periods": a.periods, "points": a.points,
        "wealth_serial": timed(wealth_serial, wealth, a.reps, a.seed),
        "wealth_parallel": timed(wealth_parallel, wealth, a.reps, a.seed),
        "pi_serial": timed(pi_serial, (a.points,), a.reps, a.seed),
        "pi_parallel": timed(pi_parallel, (a.points,), a.reps, a.seed),
        "loadavg": os.getloadavg(),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
