"""Reference solutions of the upstream DiffSL corpus (manifest.json, written by extract.py).

Run with the bench venv's python (pydiffsol 0.6.2 — DiffSL 0.12.4, diffsol 0.16.1 — scipy and numpy):

    target/peers/bench-venv/bin/python plugins/ode/tests/upstream/make_references.py [MODEL …]

For each model of the manifest (or those named), pydiffsol solves it at rtol 1e-10 and atol 1e-10 (or 1e-2 of
the run's atol when that is tighter) with its default solver (BDF) at the run's output times, through
`solve_dense` (with the run's `ic_armijo_constant` for the consistent initialisation, where upstream sets
one), which handles `stop` and `reset` as DiffSL defines them: after a `stop` without `reset` the
solution ends at the root, and the outputs at later times are written as NaN. Writes
`references/<repo>/<name>.csv` (a header `t,out_0,out_1,…`, one row per requested time, shortest round-trip
floats) and `references/index.json`: per model, pydiffsol's outcome (`solved`, with the stop time when the
solve ended at a root; `refused` by DiffSL's parser or compiler, or `failed` in the solve or in a panic, with
pydiffsol's message) and, for plain ODEs (no mass matrix, events or
model index), the scipy cross-check: Radau and LSODA at rtol 1e-10 on pydiffsol's own right-hand side
(`Ode.rhs`), their states compared with pydiffsol's in units of the run's tolerance,
|scipy − pydiffsol| / (atol + rtol·|pydiffsol|) with the run's rtol and atol.
"""

import json
import math
import os
import re
import sys
from pathlib import Path

import numpy as np
import pydiffsol as ds
from scipy.integrate import solve_ivp

HERE = Path(__file__).resolve().parent
REF_RTOL = 1e-10
TIGHT_RTOL = 1e-12


def message(error):
    """pydiffsol's message: its exceptions, and Rust panics (pyo3's PanicException derives from BaseException,
    so the callers catch BaseException and this re-raises what is not pydiffsol's)."""
    if isinstance(error, (KeyboardInterrupt, SystemExit)):
        raise error
    return str(error).strip()


def block(text, name):
    """The body of the first tensor definition `name { … }` / `name_x { … }`, and its span."""
    match = re.search(r"(?<![\w.])" + name + r"(_[a-zA-Z])?\s*\{", text)
    if not match:
        return None
    depth, i = 0, match.end() - 1
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[match.end() : j], (match.start(), j + 1)
    return None


def strip_comments(text):
    return re.sub(r"//[^\n]*|/\*.*?\*/", "", text, flags=re.S)


def default_params(text):
    """The defaults of the `in` tensor's elements, in order (a range `(a:b): x = v` gives b − a of them)."""
    found = block(strip_comments(text), "in")
    if found is None:
        return []
    values = []
    for element in filter(str.strip, found[0].split(",")):
        element = element.strip()
        count = 1
        ranged = re.match(r"\((\d+)\s*:\s*(\d+)\)\s*:\s*(.*)", element, re.S)
        if ranged:
            count, element = int(ranged.group(2)) - int(ranged.group(1)), ranged.group(3)
        expr = element.split("=", 1)[1] if "=" in element else element
        if not re.fullmatch(r"[\d.eE+\-*/() \n\t]+", expr):
            raise ValueError(f"a default that is not a number: {expr.strip()}")
        values += [float(eval(expr))] * count  # digits and arithmetic only, checked above
    return values


def plain_ode(text):
    """No mass matrix, no events, no model index: scipy can integrate it from pydiffsol's right-hand side."""
    code = strip_comments(text)
    special = any(block(code, name) for name in ("dudt", "M", "stop", "reset"))
    return not special and re.search(r"(?<![\w.])N(?![\w])", code) is None


def without_outputs(text):
    """The model with its `out` tensor removed, so that its outputs are its states."""
    found = block(text, "out")
    return text if found is None else text[: found[1][0]] + text[found[1][1] :]


def outcome(error):
    """`refused` when DiffSL's parser or compiler rejects the text; `failed` when it compiled but pydiffsol
    could not solve it (a solver error, or a panic inside pydiffsol: a DiffSL bug, not a verdict on the text)."""
    text = message(error)
    refused = text.startswith(("DiffSL Parser error", "DiffSL Compiler error"))
    return {"pydiffsol": "refused" if refused else "failed", "message": text}


def solve(text, params, times, atol, rtol=REF_RTOL, armijo=None):
    ode = ds.Ode(text)
    if armijo is not None:
        ode.ic_options.armijo_constant = armijo
    ode.rtol = rtol
    ode.atol = atol
    solution = ode.solve_dense(np.array(params, dtype=float), np.array(times, dtype=float))
    return ode, np.asarray(solution.ts), np.atleast_2d(np.asarray(solution.ys))


def reference(model):
    text = (HERE / "models" / model["model"]).read_text()
    os.chdir(HERE / "models" / model["model"].split("/")[0])
    run = model["run"]
    times = run["times"]
    atol = min(1e-10, 1e-2 * run["atol"])
    entry = {}
    try:
        params = run["params"] if run["params"] is not None else default_params(text)
        ode, ts, ys = solve(text, params, times, atol, armijo=run.get("ic_armijo_constant"))
    except BaseException as error:
        return outcome(error), None
    rows = np.full((len(times), ys.shape[0]), np.nan)
    n = min(len(ts), len(times))
    # solve_dense returns the requested times up to a stop, then the stop's time.
    solved = [k for k in range(n) if ts[k] == times[k]]
    for k in solved:
        rows[k] = ys[:, k]
    entry["pydiffsol"] = "solved"
    if len(ts) < len(times) or (len(ts) and ts[-1] != times[-1]):
        entry["stop_time"] = float(ts[-1])
    entry["params"] = list(map(float, params))
    if plain_ode(text):
        entry["scipy"] = cross_check(text, ode, params, times, atol, run)
        worst = max([v for v in entry["scipy"].values() if isinstance(v, float)], default=0.0)
        if worst > 0.1:
            # pydiffsol's BDF at 1e-10 is not always within a tenth of the run's tolerance (long oscillating
            # runs): the reference is then its solve at 1e-12, cross-checked again.
            ode, ts, ys = solve(text, params, times, 1e-2 * atol, TIGHT_RTOL)
            rows[:] = ys.T[: len(times)]
            entry["reference_rtol"] = TIGHT_RTOL
            entry["scipy_at_1e-10_before"] = entry["scipy"]
            entry["scipy"] = cross_check(text, ode, params, times, 1e-2 * atol, run, TIGHT_RTOL)
    return entry, rows


def cross_check(text, ode, params, times, atol, run, rtol=REF_RTOL):
    """Radau and LSODA on pydiffsol's right-hand side against pydiffsol's states: the largest error in units of
    the run's tolerance, per method."""
    try:
        _, ts, states = solve(without_outputs(text), params, times, atol, rtol)
    except BaseException as error:
        return {"error": message(error)}
    p = np.array(params, dtype=float)
    y0 = np.array(states[:, 0], dtype=float)  # the state at the first time, t = 0
    result = {}
    for method in ("Radau", "LSODA"):
        try:
            sol = solve_ivp(
                lambda t, y: np.asarray(ode.rhs(p, t, np.ascontiguousarray(y, dtype=float))),
                (times[0], times[-1]),
                y0,
                method=method,
                t_eval=times,
                rtol=rtol,
                atol=atol,
            )
            if not sol.success or sol.y.shape[1] != len(times):
                result[method] = f"failed: {sol.message}"
                continue
            scale = run["atol"] + run["rtol"] * np.abs(states)
            result[method] = float(np.max(np.abs(sol.y - states) / scale))
        except BaseException as error:
            result[method] = f"failed: {error}"
    return result


def number(x):
    return "NaN" if math.isnan(x) else repr(float(x))


def main():
    # A model's `read('file.tns')` names a file beside it: pydiffsol reads it relative to the working directory.
    os.chdir(HERE / "models")
    manifest = json.loads((HERE / "manifest.json").read_text())
    wanted = set(sys.argv[1:])
    index_path = HERE / "references" / "index.json"
    index = json.loads(index_path.read_text()) if wanted and index_path.exists() else {}
    for model in manifest["models"]:
        if wanted and model["model"] not in wanted:
            continue
        if model["negative"]:
            try:
                params = default_params((HERE / "models" / model["model"]).read_text())
            except ValueError:
                params = []
            try:
                solve((HERE / "models" / model["model"]).read_text(), params, [0.0, 1.0], 1e-10)
                entry = {"pydiffsol": "solved", "note": "upstream expects an error; pydiffsol 0.6.2 solves it"}
            except BaseException as error:
                entry = outcome(error)
            index[model["model"]] = entry
            print(model["model"], entry["pydiffsol"], flush=True)
            continue
        entry, rows = reference(model)
        index[model["model"]] = entry
        if rows is not None:
            csv = HERE / "references" / model["model"].replace(".ds", ".csv")
            csv.parent.mkdir(parents=True, exist_ok=True)
            header = ",".join(["t"] + [f"out_{k}" for k in range(rows.shape[1])])
            lines = [header] + [
                ",".join([number(t)] + [number(v) for v in row]) for t, row in zip(model["run"]["times"], rows)
            ]
            csv.write_text("\n".join(lines) + "\n")
        print(model["model"], json.dumps(entry)[:160], flush=True)
    index_path.parent.mkdir(parents=True, exist_ok=True)
    index_path.write_text(json.dumps(dict(sorted(index.items())), indent=1) + "\n")


if __name__ == "__main__":
    main()
