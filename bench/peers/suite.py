#!/usr/bin/env python3
"""The peers' side of `cargo xtask bench`: pycma, scipy, dynesty and pydiffsol on the problems of bench/suite.json.

    python bench/peers/suite.py SECTION [SUITE.json]

SECTION is one of
  cmaes      pycma (cma.fmin2) on the CMA-ES problems: evaluations and seconds to the target value
  lbfgsb     scipy.optimize.minimize(method="L-BFGS-B") on Rosenbrock, forward differences and exact gradient
  nested     dynesty's static NestedSampler on the Gaussian likelihoods (analytic log-evidence)
  nested_lv  dynesty's DynamicNestedSampler on the Lotka-Volterra posterior, pydiffsol solving the model
  ode        pydiffsol and scipy.integrate.solve_ivp on tests/data/ode_problems at matched accuracy

Run it through bench/peers/suite.sh, which makes the venv. Prints one JSON object on stdout (progress on stderr).
Each section mirrors the parfit side (bench/src/*.rs) setting for setting; the comments say where a tool's own
default differs. Timings are wall-clock seconds of one Python process; BLAS is pinned to one thread by suite.sh.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import re
import statistics
import sys
import time
import tomllib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
ODE_DIR = ROOT / "tests" / "data" / "ode_problems"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def version(package):
    return importlib.metadata.version(package)


def quartile(values, q):
    return float(np.quantile(values, q)) if values else None


def median(values):
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.median(values) if values else None


# --- test functions (the same as bench/src/functions.rs) -------------------------------------------------------


def sphere(x):
    return float(np.dot(x, x))


def ellipsoid(x):
    n = len(x)
    w = 10.0 ** (6.0 * np.arange(n) / max(n - 1, 1))
    return float(np.dot(w, x * x))


def rosenbrock(x):
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


def rosenbrock_gradient(x):
    g = np.zeros_like(x)
    t = x[1:] - x[:-1] ** 2
    g[:-1] += -400.0 * x[:-1] * t - 2.0 * (1.0 - x[:-1])
    g[1:] += 200.0 * t
    return g


def rastrigin(x):
    return float(10.0 * len(x) + np.sum(x * x - 10.0 * np.cos(2.0 * np.pi * x)))


FUNCTIONS = {"sphere": sphere, "ellipsoid": ellipsoid, "rosenbrock": rosenbrock, "rastrigin": rastrigin}


class Tally:
    """Counts evaluations of f and notes when the target was first reached (count and seconds)."""

    def __init__(self, f, target):
        self.f, self.target = f, target
        self.evaluations, self.hit = 0, None
        self.start = time.perf_counter()

    def __call__(self, x, *args):
        value = self.f(np.asarray(x, dtype=float))
        self.evaluations += 1
        if self.hit is None and value <= self.target:
            self.hit = (self.evaluations, time.perf_counter() - self.start)
        return value


def summarise(runs):
    ok = [r for r in runs if r["success"]]
    return {
        "successes": len(ok),
        "runs": len(runs),
        "evaluations_median": median([r["evaluations_to_target"] for r in ok]),
        # numpy's linear quartiles, as the parfit side (parfit_core::statistics::quantile).
        "evaluations_q1": quartile([r["evaluations_to_target"] for r in ok], 0.25),
        "evaluations_q3": quartile([r["evaluations_to_target"] for r in ok], 0.75),
        "seconds_median": median([r["seconds_to_target"] for r in ok]),
    }


# --- CMA-ES: pycma -----------------------------------------------------------------------------------------------


def cmaes(suite):
    import cma

    section = suite["cmaes"]
    target = section["target"]
    out = {}
    for problem in section["problems"]:
        f = FUNCTIONS[problem["function"]]
        dim, sigma0 = problem["dim"], problem["sigma0"]
        x0 = np.full(dim, float(problem["x0"]))
        bounds = problem.get("bounds")
        restarts = problem["restarts"]
        runs = []
        for seed in problem.get("seeds", section["seeds"]):
            # pycma's seed 0 means "random": the suite's seeds start at 1.
            opts = {"seed": seed, "ftarget": target, "maxfevals": problem["max_evaluations"], "verbose": -9,
                    "verb_log": 0, "verb_disp": 0, "tolfun": section["ftol"], "tolx": section["xtol"],
                    # pycma evaluates the final mean after the run by default: one evaluation parfit does not make.
                    "eval_final_mean": False}
            if bounds:
                opts["bounds"] = [bounds[0], bounds[1]]
            kwargs = {}
            start = x0
            if restarts != "none":
                # parfit's IPOP/BIPOP: up to 9 (large) restarts, population doubling, each restart from a uniform
                # random point of the box. pycma restarts from x0 unless x0 is callable, which it calls per run.
                kwargs = {"restarts": 9, "incpopsize": 2, "bipop": restarts == "bipop"}
                rng = np.random.default_rng(seed)
                calls = [0]

                def start(rng=rng, calls=calls):
                    calls[0] += 1
                    return x0.copy() if calls[0] == 1 else rng.uniform(bounds[0], bounds[1], dim)

            tally = Tally(f, target)
            t0 = time.perf_counter()
            _, es = cma.fmin2(tally, start, sigma0, opts, **kwargs)
            seconds = time.perf_counter() - t0
            success = tally.hit is not None
            runs.append({
                "seed": seed, "success": success, "value": float(es.best.f), "evaluations": tally.evaluations,
                # The whole generation in which the target was reached, as parfit counts it.
                "evaluations_to_target": tally.evaluations if success else None,
                "seconds": seconds, "seconds_to_target": seconds if success else None,
                "stop": {k: str(v) for k, v in es.stop().items()},
            })
        out[problem["name"]] = {"summary": summarise(runs), "runs": runs}
        log(f"pycma {problem['name']}: {out[problem['name']]['summary']}")
    return {"tool": "pycma", "version": version("cma"), "target": target, "problems": out}


# --- L-BFGS-B: scipy ---------------------------------------------------------------------------------------------


def lbfgsb(suite):
    from scipy.optimize import minimize

    section = suite["lbfgsb"]
    target = section["target"]
    lo, hi = section["bounds"]
    out = {}
    for gradient in section["gradients"]:
        runs = []
        for k, start in enumerate(section["starts"]):
            x0 = np.array(start, dtype=float)
            # scipy's forward differences use an absolute step of 1e-8 (parfit: 1.5e-8 · max(|x|, 1)).
            jac = rosenbrock_gradient if gradient == "exact" else None
            options = {"maxcor": section["memory"], "gtol": section["gtol"], "ftol": section["ftol"],
                       "maxfun": section["max_evaluations"], "maxiter": section["max_evaluations"]}
            repeats = []
            # Deterministic: three runs, median times (as the parfit side does).
            for _ in range(3):
                tally = Tally(rosenbrock, target)
                res = minimize(tally, x0, jac=jac, method="L-BFGS-B", bounds=[(lo, hi)] * len(x0), options=options)
                repeats.append((tally, res, time.perf_counter() - tally.start))
            tally, res, _ = repeats[0]
            seconds = median([r[2] for r in repeats])
            runs.append({
                "start": k, "success": tally.hit is not None, "value": float(res.fun),
                "evaluations": tally.evaluations,
                "evaluations_to_target": tally.hit[0] if tally.hit else None,
                "seconds_to_target": median([r[0].hit[1] for r in repeats]) if tally.hit else None,
                "seconds": seconds, "message": str(res.message),
            })
        summary = summarise(runs)
        summary["final_value_median"] = median([r["value"] for r in runs])
        summary["evaluations_total_median"] = median([r["evaluations"] for r in runs])
        out[gradient] = {"summary": summary, "runs": runs}
        log(f"scipy L-BFGS-B {gradient}: {summary}")
    return {"tool": "scipy", "version": version("scipy"), "target": target, "gradients": out}


# --- nested sampling: dynesty ------------------------------------------------------------------------------------


def normal_cdf(z):
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def nested(suite):
    import dynesty

    section = suite["nested_gaussian"]
    w = section["half_width"]
    out = {}
    for d in section["dims"]:
        mu = np.array([0.4 * (i % 5) - 0.8 for i in range(d)])
        sd = np.array([0.5 + 0.1 * (i % 4) for i in range(d)])
        norm = float(-np.sum(np.log(sd)) - 0.5 * d * math.log(2.0 * math.pi))
        truth = sum(math.log((normal_cdf((w - m) / s) - normal_cdf((-w - m) / s)) / (2.0 * w)) for m, s in zip(mu, sd))

        def loglike(x, mu=mu, sd=sd, norm=norm):
            z = (x - mu) / sd
            return norm - 0.5 * float(np.dot(z, z))

        def prior_transform(u):
            return (2.0 * u - 1.0) * w

        runs = []
        for seed in section["seeds"]:
            t0 = time.perf_counter()
            # The same settings as parfit: static run, 500 live points, multi-ellipsoid bounds, "auto" sampling
            # (dynesty: uniform below 10 dimensions, random walks from 10), dlogz 0.01 (the same criterion).
            sampler = dynesty.NestedSampler(loglike, prior_transform, d, nlive=section["live_points"], bound="multi",
                                            sample="auto", rstate=np.random.default_rng(seed))
            sampler.run_nested(dlogz=section["dlogz"], print_progress=False)
            seconds = time.perf_counter() - t0
            res = sampler.results
            log_z, log_z_err = float(res.logz[-1]), float(res.logzerr[-1])
            runs.append({"seed": seed, "log_z": log_z, "log_z_err": log_z_err, "error": log_z - truth,
                         "calls": int(np.sum(res.ncall)), "seconds": seconds, "samples": int(len(res.logl))})
        within = sum(abs(r["error"]) <= 3.0 * r["log_z_err"] for r in runs)
        summary = {
            "runs": len(runs),
            "abs_error_median": median([abs(r["error"]) for r in runs]),
            "log_z_err_median": median([r["log_z_err"] for r in runs]),
            "within_3_err": within,
            "calls_median": median([r["calls"] for r in runs]),
            "seconds_median": median([r["seconds"] for r in runs]),
        }
        out[f"d{d}"] = {"d": d, "truth": truth, "summary": summary, "runs": runs}
        log(f"dynesty d = {d}: {summary}")
    return {"tool": "dynesty", "version": version("dynesty"), "problems": out}


def nested_lv(suite):
    import dynesty
    import pydiffsol as ds

    section = suite["nested_lv"]
    config_path = ROOT / section["config"]
    config = tomllib.loads(config_path.read_text())
    base = config_path.parent
    names = list(config["parameters"])
    lower = np.array([config["parameters"][n]["lower"] for n in names], dtype=float)
    upper = np.array([config["parameters"][n]["upper"] for n in names], dtype=float)
    sigma = float(config["sample"]["sigma"])
    nested_options = config["sample"].get("nested", {})
    dynamic = nested_options.get("dynamic", {})
    nlive = nested_options.get("live_points", 500)
    data = np.genfromtxt(base / config["data"]["path"], delimiter=",", names=True)
    times = np.ascontiguousarray(data[config["data"]["time"]], dtype=float)
    observed = np.vstack([data[c] for c in config["data"]["outputs"]])
    n_obs = observed.size
    norm = -n_obs * (math.log(sigma) + 0.5 * math.log(2.0 * math.pi))

    ode = ds.Ode((base / config["model"]["source"]).read_text(), ode_solver=ds.tsit45)
    ode.rtol = ode.atol = section["pydiffsol_tolerance"]
    if ode.nparams != len(names):
        raise SystemExit(f"{config_path}: the model has {ode.nparams} parameters, the config {len(names)}")

    likelihood_seconds = [0.0]

    def loglike(x):
        t = time.perf_counter()
        try:
            ys = ode.solve_dense(np.ascontiguousarray(x, dtype=float), times).ys
            sse = float(np.sum((ys - observed) ** 2))
        except Exception:  # a failed solve rules the point out, as in parfit
            sse = math.inf
        likelihood_seconds[0] += time.perf_counter() - t
        return -0.5 * sse / (sigma * sigma) + norm if math.isfinite(sse) else -1e300

    def prior_transform(u):
        return lower + u * (upper - lower)

    runs = []
    for seed in section["seeds"]:
        likelihood_seconds[0] = 0.0
        t0 = time.perf_counter()
        # parfit's dynamic run: baseline of `live_points` to dlogz, then batches of as many live points (parfit's
        # default dynamic.live_points) with dynesty's own defaults for the weight function, which are parfit's too
        # (posterior fraction 0.8, max fraction 0.8, pad 1), until n_effective or max_batches.
        sampler = dynesty.DynamicNestedSampler(loglike, prior_transform, len(names), bound="multi", sample="auto",
                                               rstate=np.random.default_rng(seed))
        sampler.run_nested(nlive_init=nlive, dlogz_init=nested_options.get("dlogz", 0.01),
                           nlive_batch=dynamic.get("live_points", nlive), maxbatch=dynamic.get("max_batches", 100),
                           n_effective=dynamic.get("n_effective", 10000), print_progress=False)
        seconds = time.perf_counter() - t0
        res = sampler.results
        weights = np.exp(res.logwt - res.logz[-1])
        weights /= weights.sum()
        means = (weights[:, None] * res.samples).sum(axis=0)
        sds = np.sqrt((weights[:, None] * (res.samples - means) ** 2).sum(axis=0))
        runs.append({
            "seed": seed, "log_z": float(res.logz[-1]), "log_z_err": float(res.logzerr[-1]),
            "calls": int(np.sum(res.ncall)), "seconds": seconds, "likelihood_seconds": likelihood_seconds[0],
            "means": dict(zip(names, map(float, means))), "sds": dict(zip(names, map(float, sds))),
        })
        log(f"dynesty LV seed {seed}: ln Z {runs[-1]['log_z']:.3f} ± {runs[-1]['log_z_err']:.3f}, "
            f"{runs[-1]['calls']} calls, {seconds:.1f} s")
    return {"tool": "dynesty+pydiffsol", "version": version("dynesty"), "pydiffsol_version": version("pydiffsol"),
            "pydiffsol_tolerance": section["pydiffsol_tolerance"], "runs": runs}


# --- ODE solves: pydiffsol and scipy -----------------------------------------------------------------------------


def per_call(call, min_calls=3, budget_s=0.3):
    """One warm-up call, then at least min_calls and until budget_s seconds: (median, best) seconds per call."""
    call()
    times = []
    start = time.perf_counter()
    while len(times) < min_calls or (time.perf_counter() - start < budget_s and len(times) < 10000):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times)


def reference(name):
    table = np.loadtxt(ODE_DIR / f"{name}.csv", delimiter=",", skiprows=1, ndmin=2)
    return np.ascontiguousarray(table[:, 0]), table[:, 1:]


def default_parameters(source):
    """The `in_i { name = value, ... }` defaults of a DiffSL model, in order."""
    block = re.search(r"in_i\s*\{([^}]*)\}", source)
    if not block:
        return []
    return [float(v) for v in re.findall(r"=\s*([-+0-9.eE]+)", block.group(1))]


def scaled_error(y, ref, floor):
    err = np.abs(y - ref) / (floor + np.abs(ref))
    return math.inf if np.isnan(err).any() else float(err.max())


def ladder(section, problem, solve):
    """Climb the tolerance ladder; time the loosest rung meeting each accuracy. `solve(rtol, atol)` returns the
    solution (times x outputs) and the tool's work counters (or None)."""
    accuracies = section["accuracy"]
    tightest = min(accuracies)
    times, ref = reference(problem["name"])
    rungs, matched = [], {}
    for rtol in section["ladder"]:
        atol = problem["atol_scale"] * rtol
        try:
            y, stats = solve(rtol, atol, times)
        except Exception as e:  # a failed solve at a loose tolerance: try the next rung
            rungs.append({"rtol": rtol, "failed": str(e)[:200]})
            continue
        error = scaled_error(y, ref, problem["floor"])
        rung = {"rtol": rtol, "atol": atol, "error": error, "stats": stats}
        for accuracy in accuracies:
            key = f"{accuracy:e}".replace("e-0", "e-").replace(".000000", "")
            if error <= accuracy and key not in matched:
                median_s, best_s = per_call(lambda: solve(rtol, atol, times))
                rung["median_s"] = median_s
                matched[key] = {"rtol": rtol, "atol": atol, "error": error / accuracy, "stats": stats,
                                "median_s": median_s, "best_s": best_s}
        rungs.append(rung)
        if error <= tightest:
            break
    return {"matched": matched, "ladder": rungs}


def ode(suite):

    try:
        import pydiffsol as ds
    except ImportError as e:  # reported in the results and BENCHMARKS.md, with scipy still measured
        ds, missing = None, f"pydiffsol does not import here: {e}"

    sys.path.insert(0, str(ODE_DIR))
    import make_references  # the right-hand sides (and Jacobians) the references were made with

    section = suite["ode"]
    out = {"pydiffsol": {}, "scipy": {}}
    for problem in section["problems"]:
        name, stiff = problem["name"], problem["stiff"]
        source = (ODE_DIR / f"{name}.ds").read_text()
        params = np.array(default_parameters(source), dtype=float)

        # pydiffsol: its BDF for the stiff problems, Tsitouras 5(4) for the others. It reports no work counters.
        if ds is None:
            out["pydiffsol"][name] = {"unavailable": missing}
        else:
            method = ds.bdf if stiff else ds.tsit45
            # diffsol's dense matrices by default; its sparse ones where the suite says (the PDE: pydiffsol's
            # heat-equation example recommends faer_sparse for larger systems; dense LU of 900 states is 40x slower).
            matrix = getattr(ds, problem.get("pydiffsol_matrix", "nalgebra_dense"))
            model = ds.Ode(source, ode_solver=method, matrix_type=matrix)

            def solve_diffsol(rtol, atol, times, model=model, params=params):
                model.rtol, model.atol = rtol, atol
                return model.solve_dense(params, times).ys.T, None

            result = ladder(section, problem, solve_diffsol)
            result["solver"] = str(method).split(".")[-1] + ("" if matrix == ds.nalgebra_dense else ", sparse")
            out["pydiffsol"][name] = result
            log(f"pydiffsol {name}: {result['matched']}")

        # scipy: BDF with the analytic Jacobian (sparse for the PDE) for the stiff problems, DOP853 for the others;
        # a model with a stop event restarts solve_ivp at each root (make_references.solve).
        if "scipy" in problem:  # why scipy cannot solve this problem as written
            out["scipy"][name] = {"unavailable": problem["scipy"]}
            continue
        p = getattr(make_references, name)()
        scipy_method = "BDF" if stiff else "DOP853"

        def solve_scipy(rtol, atol, times, p=p, scipy_method=scipy_method):
            y, stats, _ = make_references.solve(p, scipy_method, rtol, atol)
            return y.T, stats

        result = ladder(section, problem, solve_scipy)
        result["solver"] = scipy_method
        out["scipy"][name] = result
        log(f"scipy {name}: {result['matched']}")
    versions = {"scipy_version": version("scipy")}
    if ds is not None:
        versions.update(pydiffsol_version=version("pydiffsol"), diffsol_version=ds.diffsol_version(),
                        jit_backend=str(ds.default_enabled_jit_backend()))
    return {"tool": "pydiffsol+scipy", **versions, "problems": out}


SECTIONS = {"cmaes": cmaes, "lbfgsb": lbfgsb, "nested": nested, "nested_lv": nested_lv, "ode": ode}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in SECTIONS:
        raise SystemExit(__doc__)
    path = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "bench" / "suite.json"
    suite = json.loads(path.read_text())
    report = SECTIONS[sys.argv[1]](suite)
    report["load_average"] = os.getloadavg()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
