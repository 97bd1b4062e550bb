"""The Python layer's overhead over the CLI on the Lotka–Volterra fit (`cargo xtask bench python` runs it).

    python bench/python/overhead.py --cli target/release/parfit [--runs 20] [--threads 2] [--output DIR]

Runs in the venv the release wheel is installed in. Alternating, `runs` times each (default 20, after one
unmeasured run of each), with the same thread count:
- the release CLI `parfit fit examples/lotka_volterra/fit.toml --format json` as a process: its wall time
  (process start, configuration, plugin and model, the fit, result.json, fitted.csv and two SVG plots written)
  and the `seconds` it reports (the fit alone, by its own clock);
- `parfit.fit("examples/lotka_volterra/fit.toml")` in this process: the call's wall time (configuration,
  plugin and model, the fit, the results converted to Python objects: x, history and fitted curves as
  DataFrames) and the `seconds` the result reports;
- a fresh `python -c "import parfit; parfit.fit(...)"` process: its wall time (interpreter, numpy and pandas
  imported, then the call), and `python -c "import parfit"` alone.
CPU seconds (user + system: the CLI process's, this process's during the call) are recorded beside the wall
times; on a machine busy with other work they move less, as do the fastest runs and the median of each
back-to-back pair's ratio. Prints one JSON object: the medians, the minima, the ratios Python ÷ CLI, and whether
every run gave the CLI's SSE, point and evaluation count bit for bit.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import parfit

CONFIG = "examples/lotka_volterra/fit.toml"


def cpu(who):
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def cli_run(cli, threads, output):
    t, c = time.perf_counter(), cpu(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([cli, "fit", CONFIG, "--format", "json", "--threads", str(threads), "--output", output],
                          capture_output=True, text=True)
    wall, used = time.perf_counter() - t, cpu(resource.RUSAGE_CHILDREN) - c
    if proc.returncode != 0:
        sys.exit(f"parfit fit failed ({proc.returncode}):\n{proc.stderr}")
    r = json.loads(proc.stdout)
    return {"wall": wall, "cpu": used, "seconds": r["seconds"], "value": r["value"], "x": r["x"],
            "evaluations": r["evaluations"]}


def python_run(threads):
    t, c = time.perf_counter(), cpu(resource.RUSAGE_SELF)
    r = parfit.fit(CONFIG, threads=threads, progress=False)
    wall, used = time.perf_counter() - t, cpu(resource.RUSAGE_SELF) - c
    return {"wall": wall, "cpu": used, "seconds": r.seconds, "value": r.value, "x": dict(r.x),
            "evaluations": r.evaluations}


def process_run(threads, fit=True):
    code = f"import parfit; parfit.fit({CONFIG!r}, threads={threads}, progress=False)" if fit else "import parfit"
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"python -c parfit.fit failed ({proc.returncode}):\n{proc.stderr}")
    return wall


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cli", required=True)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--output", default=None, help="the CLI's output directory (default: a temporary one)")
    a = p.parse_args()
    output = a.output or tempfile.mkdtemp(prefix="parfit_overhead_")

    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    load_start = os.getloadavg()
    cli_run(a.cli, a.threads, output)  # unmeasured: disk cache, plugin libraries
    python_run(a.threads)
    cli, py, proc, imports = [], [], [], []
    for i in range(a.runs):
        # Alternate which goes first, so a change in the machine's load hits both alike.
        if i % 2 == 0:
            cli.append(cli_run(a.cli, a.threads, output))
            py.append(python_run(a.threads))
        else:
            py.append(python_run(a.threads))
            cli.append(cli_run(a.cli, a.threads, output))
        proc.append(process_run(a.threads))
        imports.append(process_run(a.threads, fit=False))

    def med(runs, key):
        return statistics.median(r[key] for r in runs)

    reference = cli[0]
    same = all(r["value"] == reference["value"] and r["x"] == reference["x"]
               and r["evaluations"] == reference["evaluations"] for r in cli + py)
    out = {
        "workload": f"parfit fit {CONFIG} (seed 42: CMA-ES in horizon stages, Levenberg–Marquardt polish)",
        "started": started,
        "runs": a.runs,
        "threads": a.threads,
        "cli_wall_s_median": med(cli, "wall"),
        "cli_seconds_median": med(cli, "seconds"),
        "python_wall_s_median": med(py, "wall"),
        "python_seconds_median": med(py, "seconds"),
        "python_process_wall_s_median": statistics.median(proc),
        "python_wall_over_cli_wall": med(py, "wall") / med(cli, "wall"),
        "python_seconds_over_cli_seconds": med(py, "seconds") / med(cli, "seconds"),
        "python_wall_over_cli_seconds": med(py, "wall") / med(cli, "seconds"),
        "python_process_over_cli_wall": statistics.median(proc) / med(cli, "wall"),
        "python_import_process_wall_s_median": statistics.median(imports),
        # Each run's pair (back to back) as a ratio, and the fastest runs: both steadier than the medians
        # when other work shares the machine.
        "paired_python_wall_over_cli_wall_median": statistics.median(p["wall"] / c["wall"] for p, c in zip(py, cli)),
        "paired_python_seconds_over_cli_seconds_median":
            statistics.median(p["seconds"] / c["seconds"] for p, c in zip(py, cli)),
        "cli_wall_s_min": min(r["wall"] for r in cli),
        "python_wall_s_min": min(r["wall"] for r in py),
        "cli_seconds_min": min(r["seconds"] for r in cli),
        "python_seconds_min": min(r["seconds"] for r in py),
        "python_process_wall_s_min": min(proc),
        "cli_cpu_s_median": med(cli, "cpu"),
        "python_cpu_s_median": med(py, "cpu"),
        "python_cpu_over_cli_cpu": med(py, "cpu") / med(cli, "cpu"),
        "cli_wall_s_all": [r["wall"] for r in cli],
        "cli_seconds_all": [r["seconds"] for r in cli],
        "python_wall_s_all": [r["wall"] for r in py],
        "python_seconds_all": [r["seconds"] for r in py],
        "python_process_wall_s_all": proc,
        "sse": reference["value"],
        "evaluations": reference["evaluations"],
        "identical_to_cli": same,
        "load_average_at_start": [round(v, 2) for v in load_start],
        "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
        "versions": {"parfit": parfit.__version__, "python": platform.python_version()},
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
