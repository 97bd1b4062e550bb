"""numpy/scipy reference of the PySD cookbook's "Parallel Model Fitting" recipe for all 3,137 US counties.

Never run by the tests. Needs numpy and scipy only (the pinned versions are in README.md):

    python3 -m venv target/peers/venv
    target/peers/venv/bin/pip install numpy scipy
    target/peers/venv/bin/python tests/data/counties/make_reference.py [--workers 2] [--limit N]

Model: the cookbook's `Aging_Chain.mdl` as PySD runs it -- nine stocks D1..D9 started from the county's
2000 counts, Euler with h = 0.125 from 2000 to 2010 (80 steps),

    d1 = (0 - D1/10) - D1*r1,   dk = (D(k-1)/10 - Dk/10) - Dk*rk  (k = 2..8),   d9 = D8/10 - D9*r9,
    D <- D + d*0.125,

in that operation order, which reproduces PySD 3.14.3 bit for bit (checked against the golden trajectory in
`tests/data/aging_chain/` when it is present). Cost: the cookbook's error, SSE = sum over k = 2..9 of
(Dk(2010) - census2010_k)^2, summed left to right like the cookbook's builtin `sum`.

Two fits per county, both `scipy.optimize.minimize(method="L-BFGS-B")` from r = 0.05 (all nine), unbounded:

* `cookbook`: exactly the cookbook's call -- default options, no `jac`, so scipy's own forward differences
  (absolute step 1e-8). The only change is speed: scipy's `workers` option (a map-like callable for the
  finite-difference evaluations) is given a function that simulates the nine perturbed rate vectors in one
  vectorised Euler run. Every element goes through the same IEEE operations as a one-vector run, so the
  iterates, evaluation counts and results are bit-identical to the plain call (`--check N` verifies it on
  the first N counties against `minimize(error, x0, method="L-BFGS-B")` with nothing else).
* `tight`: the exact gradient of the discrete Euler map by reverse (adjoint) differentiation -- one forward
  run storing the 80 states, one backward sweep -- with ftol = 0, gtol = 1e-12, maxiter = maxfun = 100,000.
  It stops when the line search can make no more progress (rounding level).

Both final SSEs are recomputed with the same bit-exact simulation. Output `scipy_lbfgsb.csv`: state, county
(the census file's text), sse_cookbook, sse_tight, and dec_1_loss_rate..dec_9_loss_rate of the variant with
the lower SSE (tight on ties), floats as Python `repr` (shortest round-trip). Counties are split over
`--workers` processes (multiprocessing), results kept in input order.
"""

import argparse
import csv
import multiprocessing
import os
import pathlib
import platform
import sys
import time

# L-BFGS-B's 9-variable linear algebra goes through BLAS; a threaded OpenBLAS spends ~7 ms per call spinning
# its threads (10x the whole fit's arithmetic), so pin it to one thread before numpy loads.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.optimize  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[2]
DATA = ROOT / "examples" / "counties" / "Males_by_decade_and_county.csv"
GOLDEN = ROOT / "tests" / "data" / "aging_chain" / "aging_chain_golden_county1_allsteps.csv"
OUT = HERE / "scipy_lbfgsb.csv"

H = 0.125
STEPS = 80
X0 = [0.05] * 9
TIGHT = {"ftol": 0.0, "gtol": 1e-12, "maxiter": 100_000, "maxfun": 100_000}


def read_census(path):
    """(ids, d2000, d2010): ids as the file's text, counts as float arrays of shape (n, 9)."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    years, decades, names = rows[0], rows[1], rows[2]
    assert names[:2] == ["state", "county"], names
    col = {(y, d): i for i, (y, d) in enumerate(zip(years, decades)) if y}
    c2000 = [col[("2000", f"dec_{k}")] for k in range(1, 10)]
    c2010 = [col[("2010", f"dec_{k}")] for k in range(1, 10)]
    body = rows[3:]
    ids = [(r[0], r[1]) for r in body]
    d2000 = np.array([[float(r[c]) for c in c2000] for r in body])
    d2010 = np.array([[float(r[c]) for c in c2010] for r in body])
    return ids, d2000, d2010


def simulate(d0, rates, keep=False, steps=STEPS):
    """Euler run of the aging chain for a batch of rate vectors (shape (B, 9)) from stocks d0 (shape (9,)).

    Returns the stocks after `steps` steps (2010 by default), shape (B, 9), and with keep=True also the states
    before each step, shape (steps, B, 9)."""
    rates = np.atleast_2d(rates)
    d = np.array(np.broadcast_to(d0, rates.shape), dtype=float)
    inflow = np.zeros_like(d)  # D(k-1)/10, 0 for k = 1
    outflow = np.zeros_like(d)  # Dk/10, 0 for k = 9
    states = np.empty((steps,) + d.shape) if keep else None
    for n in range(steps):
        if keep:
            states[n] = d
        a = d / 10.0
        inflow[:, 1:] = a[:, :8]
        outflow[:, :8] = a[:, :8]
        deriv = (inflow - outflow) - d * rates
        d = d + deriv * H
    return (d, states) if keep else d


def sse_of(final, target):
    """The cookbook's error: builtin-sum order over decades 2..9 (batched over rows of final)."""
    e = final[:, 1:] - target[1:]
    total = e[:, 0] ** 2
    for j in range(1, 8):
        total = total + e[:, j] ** 2
    return total


def error(rates, d0, target):
    return float(sse_of(simulate(d0, rates), target)[0])


def fit_cookbook(d0, target):
    """The cookbook's minimize call; finite differences evaluated as one vectorised batch (bit-identical)."""

    def batch_map(_fun, xs):
        xs = np.array(list(xs))
        return list(sse_of(simulate(d0, xs), target))

    return scipy.optimize.minimize(error, args=(d0, target), x0=X0, method="L-BFGS-B",
                                   options={"workers": batch_map} if _HAS_WORKERS else {})


def error_and_grad(rates, d0, target):
    """SSE and its exact gradient through the discrete Euler map (adjoint sweep)."""
    final, states = simulate(d0, rates, keep=True)
    e = final[0, 1:] - target[1:]
    f = float(sse_of(final, target)[0])
    lam = np.zeros(9)
    lam[1:] = 2.0 * e
    keep_out = np.ones(9)
    keep_out[8] = 0.0
    diag = 1.0 - H * (keep_out / 10.0 + rates)  # dD(n+1)_k / dD(n)_k
    sub = H / 10.0  # dD(n+1)_(k+1) / dD(n)_k
    g = np.zeros(9)
    for n in range(STEPS - 1, -1, -1):
        g -= H * lam * states[n, 0]
        nxt = lam * diag
        nxt[:8] += sub * lam[1:]
        lam = nxt
    return f, g


def fit_tight(d0, target):
    return scipy.optimize.minimize(error_and_grad, args=(d0, target), x0=X0, jac=True, method="L-BFGS-B",
                                   options=TIGHT)


def fit_county(args):
    d0, target = args
    t = time.perf_counter()
    cook = fit_cookbook(d0, target)
    t_cook = time.perf_counter() - t
    t = time.perf_counter()
    tight = fit_tight(d0, target)
    t_tight = time.perf_counter() - t
    return {
        "x_cookbook": np.asarray(cook.x), "sse_cookbook": error(cook.x, d0, target),
        "nfev_cookbook": int(cook.nfev), "nit_cookbook": int(cook.nit), "msg_cookbook": str(cook.message),
        "x_tight": np.asarray(tight.x), "sse_tight": error(tight.x, d0, target),
        "nfev_tight": int(tight.nfev), "nit_tight": int(tight.nit), "msg_tight": str(tight.message),
        "t_cookbook": t_cook, "t_tight": t_tight,
    }


def _probe_workers():
    """scipy >= 1.16 accepts a map-like `workers` for L-BFGS-B's finite differences."""
    try:
        scipy.optimize.minimize(lambda x: float(x @ x), [1.0, 2.0], method="L-BFGS-B",
                                options={"workers": map})
        return True
    except TypeError:
        return False


_HAS_WORKERS = _probe_workers()


def check_golden():
    """Step the same simulate() one Euler step at a time against PySD's golden trajectory (all rates 0.05)."""
    if not GOLDEN.exists():
        print(f"golden trajectory {GOLDEN} absent: bit-exactness check skipped", file=sys.stderr)
        return
    rows = np.loadtxt(GOLDEN, delimiter=",", skiprows=1)
    rates = np.full((1, 9), 0.05)
    d = rows[0, 1:]
    for n in range(1, STEPS + 1):
        d = simulate(d, rates, steps=1)[0]
        if not np.array_equal(d, rows[n, 1:]):
            raise SystemExit(f"Euler step {n} differs from PySD's golden trajectory: {d} vs {rows[n, 1:]}")
    if not np.array_equal(simulate(rows[0, 1:], rates)[0], rows[-1, 1:]):
        raise SystemExit("80-step run differs from PySD's golden 2010 state")
    print("Euler recursion matches PySD's golden trajectory bit for bit (80 steps)", file=sys.stderr)


def check_against_plain(d2000, d2010, n):
    """The batched finite differences give exactly the plain `minimize(error, x0, method="L-BFGS-B")`."""
    for i in range(n):
        plain = scipy.optimize.minimize(error, args=(d2000[i], d2010[i]), x0=X0, method="L-BFGS-B")
        fast = fit_cookbook(d2000[i], d2010[i])
        same = np.array_equal(plain.x, fast.x) and plain.fun == fast.fun and plain.nfev == fast.nfev
        if not same:
            raise SystemExit(f"county row {i}: batched FD differs from plain L-BFGS-B: {plain} vs {fast}")
    print(f"batched finite differences identical to plain L-BFGS-B on the first {n} counties", file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(DATA))
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--limit", type=int, default=None, help="only the first N counties")
    p.add_argument("--check", type=int, default=5, help="verify batched FD against plain scipy on N counties")
    a = p.parse_args()

    check_golden()
    ids, d2000, d2010 = read_census(a.data)
    if a.limit:
        ids, d2000, d2010 = ids[:a.limit], d2000[:a.limit], d2010[:a.limit]
    if not _HAS_WORKERS:
        print("scipy has no L-BFGS-B `workers` option: finite differences run one vector at a time",
              file=sys.stderr)
    check_against_plain(d2000, d2010, min(a.check, len(ids)))

    t0 = time.perf_counter()
    jobs = list(zip(d2000, d2010))
    if a.workers > 1:
        with multiprocessing.get_context("fork").Pool(a.workers) as pool:
            results = []
            for i, r in enumerate(pool.imap(fit_county, jobs, chunksize=8)):
                results.append(r)
                if (i + 1) % 250 == 0:
                    print(f"{i + 1}/{len(jobs)} counties, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    else:
        results = [fit_county(j) for j in jobs]
    wall = time.perf_counter() - t0

    with open(a.out, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["state", "county", "sse_cookbook", "sse_tight"] + [f"dec_{k}_loss_rate" for k in range(1, 10)])
        for (state, county), r in zip(ids, results):
            best = r["x_tight"] if r["sse_tight"] <= r["sse_cookbook"] else r["x_cookbook"]
            w.writerow([state, county, repr(r["sse_cookbook"]), repr(r["sse_tight"])] + [repr(float(v)) for v in best])

    def stats(name):
        sse = np.array([r[f"sse_{name}"] for r in results])
        nfev = np.array([r[f"nfev_{name}"] for r in results])
        nit = np.array([r[f"nit_{name}"] for r in results])
        secs = np.array([r[f"t_{name}"] for r in results])
        worst = int(np.argmax(sse))
        msgs = {}
        for r in results:
            msgs[r[f"msg_{name}"]] = msgs.get(r[f"msg_{name}"], 0) + 1
        print(f"{name}: below 2e-3 on {int((sse < 2e-3).sum())}/{len(sse)}; "
              f"below 1e-2 on {int((sse < 1e-2).sum())}; median SSE {np.median(sse):.6g}, "
              f"90% {np.quantile(sse, 0.9):.6g}, 99% {np.quantile(sse, 0.99):.6g}, max {sse.max():.6g} "
              f"(state {ids[worst][0]}, county {ids[worst][1]}); nfev median {np.median(nfev):.0f} "
              f"max {nfev.max()}; nit median {np.median(nit):.0f} max {nit.max()}; "
              f"CPU seconds {secs.sum():.1f} ({secs.mean() * 1e3:.2f} ms/county); messages {msgs}")
        return sse

    s_cook = stats("cookbook")
    s_tight = stats("tight")
    best = np.minimum(s_cook, s_tight)
    print(f"best of both: below 2e-3 on {int((best < 2e-3).sum())}/{len(best)}, max {best.max():.6g}; "
          f"tight better on {int((s_tight < s_cook).sum())}, cookbook better on {int((s_cook < s_tight).sum())}")
    print(f"wall {wall:.1f} s on {a.workers} process(es); python {platform.python_version()}, "
          f"numpy {np.__version__}, scipy {scipy.__version__}; wrote {a.out}")


if __name__ == "__main__":
    main()
