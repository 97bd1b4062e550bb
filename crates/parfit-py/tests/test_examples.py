"""The scripts and the notebook of examples/python: each runs from the repository root and prints the numbers
its CLI example prints (the same configuration and seed, through the CLI of the same build)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest


def script(root, name, *args):
    """Run examples/python/NAME with this interpreter from the repository root; its stdout."""
    proc = subprocess.run([sys.executable, f"examples/python/{name}", *args], capture_output=True, text=True,
                          cwd=root)
    assert proc.returncode == 0, f"{name} failed ({proc.returncode}):\n{proc.stderr}"
    return proc.stdout


def test_lotka_volterra_prints_the_cli_fit(root, cli_json, tmp_path):
    expected = cli_json("fit", "examples/lotka_volterra/fit.toml", "--output", tmp_path)
    out = script(root, "lotka_volterra.py")
    assert out.startswith(f"SSE = {expected['value']:.6f} after {expected['evaluations']} evaluations, "
                          f"{expected['iterations']} iterations in "), out
    for name, value in expected["x"].items():
        assert f"\n{name:<12}{value:>14.6f}\n" in out
    assert f"with data=DataFrame: SSE = {expected['value']:.6f}, same fit as from the file: True" in out


def test_counties_prints_the_cli_summary(root, cli, tmp_path):
    cli("fit-many", "examples/counties/fit.toml", "--output", tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    out = script(root, "counties.py")
    assert out.startswith(f"{summary['cases']} cases, {summary['failed']} failed, "), out
    for name, stats in summary["parameters"].items():
        row = f"{name:<20}" + "".join(f"{stats[q]:>13.6f}" for q in ["q05", "q25", "median", "q75", "q95"])
        assert f"\n{row}\n" in out


def test_savings_prints_the_cli_totals(root, cli):
    table = cli("run", "examples/savings/run.toml").stdout
    out = script(root, "savings.py")
    # The CLI's table (present values in pv.csv's order), line for line after the timing line.
    expected = table.splitlines()[1:]
    assert len(expected) == 10 and expected[0].startswith("present value"), table
    assert out.splitlines()[1:11] == expected, out


def test_wealth_prints_the_cli_median(root, cli, tmp_path):
    cli("run", "examples/wealth/run.toml", "--output", tmp_path / "default")
    cli("run", "examples/wealth/run.toml", "--set", "s=0.35", "--output", tmp_path / "thrifty")
    median = [json.loads((tmp_path / d / "summary.json").read_text())["points"][0]["statistics"]["w"]["median"]
              for d in ["default", "thrifty"]]
    out = script(root, "wealth.py")
    assert f"median wealth after 1000 periods: {median[0]:.6f} (seed 1, 50000 households)" in out
    assert f"saving rate 0.35: median {median[1]:.6f}" in out
    # MonteCarloModel's households are the run's: their extremes are the run's min and max.
    stats = json.loads((tmp_path / "default" / "summary.json").read_text())["points"][0]["statistics"]["w"]
    assert f"richest household: {stats['max']:.6f} (household " in out
    assert f"poorest: {stats['min']:.6f}" in out


def test_minimise_finds_the_oscillation_scalar_and_batched_alike(root):
    out = script(root, "minimise.py")
    found = {m.group(1): (m.group(2), m.group(3)) for m in
             re.finditer(r"^(CMA-ES|CMA-ES, batched|Nelder–Mead): +x = \[([^\]]*)\], SSE ([0-9.]+)", out, re.M)}
    assert set(found) == {"CMA-ES", "CMA-ES, batched", "Nelder–Mead"}, out
    # The batched objective gives the same values, so the same seed takes CMA-ES along the same path.
    assert found["CMA-ES"] == found["CMA-ES, batched"]
    a, k, w = (float(v) for v in found["CMA-ES"][0].split())
    assert abs(a - 1.99104) < 1e-3 and abs(k - 0.29985) < 1e-3 and abs(w - 1.70324) < 1e-3, out
    # The least-squares optimum (scipy's Nelder–Mead to 1e-12): SSE 0.4571038 at (1.99104, 0.29985, 1.70324).
    # Both optimisers stop by their default tolerances, so both to 1e-4 relative.
    for name in ["CMA-ES", "Nelder–Mead"]:
        assert abs(float(found[name][1]) - 0.4571038) < 0.4571038e-4, out


def test_notebook_runs_top_to_bottom(root, tmp_path):
    pytest.importorskip("matplotlib")
    notebook = json.loads((root / "examples/python/parfit.ipynb").read_text())
    assert notebook["nbformat"] == 4
    cells = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]
    # Each code cell as the notebook runs it, in one namespace; its output directory kept out of the tree.
    program = "\n\n".join(cells).replace('"target/notebook/counties"', repr(str(tmp_path / "counties")))
    runner = tmp_path / "notebook.py"
    runner.write_text(program)
    proc = subprocess.run([sys.executable, str(runner)], capture_output=True, text=True, cwd=root,
                          env={**os.environ, "MPLBACKEND": "Agg"})
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "counties" / "results.csv").exists()
