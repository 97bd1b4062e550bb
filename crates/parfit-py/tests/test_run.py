"""parfit.run: a model file or model configuration simulated once, and Monte Carlo configurations — the CLI's
numbers bit for bit (the CLI of the same build, `parfit run`), whatever the thread count; errors located as the
CLI locates them; Ctrl-C stops a run with nothing returned."""

from __future__ import annotations

import json

import numpy as np
import pytest

import parfit
from exact import read_csv, same_bits

LV = "examples/lotka_volterra/lotka_volterra.ds"








def without_seconds(report: dict) -> dict:
    return {k: v for k, v in report.items() if k != "seconds"}


# ---- one simulation -------------------------------------------------------------------------------------------


def test_model_file_with_times_equals_parfit_run(cli):
    df = parfit.run(LV, times="0:20:41", progress=False)
    expected = read_csv(cli("run", LV, "--times", "0:20:41").stdout)
    assert list(df.columns) == list(expected.columns[1:])
    assert df.index.name == "time"
    assert same_bits(df.index, expected["time"])
    assert same_bits(df.to_numpy(), expected.iloc[:, 1:].to_numpy())


def test_times_as_an_array_equal_times_as_a_list(cli):
    times = np.array([0.0, 0.5, 1.25, 7.0, 19.5])
    df = parfit.run(LV, times=times)
    expected = read_csv(cli("run", LV, "--times", "0,0.5,1.25,7,19.5").stdout)
    assert same_bits(df.index, times)
    assert same_bits(df.to_numpy(), expected.iloc[:, 1:].to_numpy())
    # A range and the array numpy.linspace makes of it are the same times.
    assert same_bits(parfit.run(LV, times="0:10:11").to_numpy(), parfit.run(LV, times=np.linspace(0, 10, 11)).to_numpy())


def test_set_overrides_a_parameter_as_the_cli_set_does(cli):
    df = parfit.run(LV, times="0:10:21", set={"alpha": 1.3, "gamma": 0.25})
    expected = read_csv(cli("run", LV, "--times", "0:10:21", "--set", "alpha=1.3", "--set", "gamma=0.25").stdout)
    assert same_bits(df.to_numpy(), expected.iloc[:, 1:].to_numpy())
    assert not same_bits(df.to_numpy(), parfit.run(LV, times="0:10:21").to_numpy())


def test_model_configuration_runs_at_its_starts_and_data_times(cli, examples):
    config = "examples/lotka_volterra/fit.toml"
    df = parfit.run(config)
    expected = read_csv(cli("run", config).stdout)
    data = read_csv(examples / "lotka_volterra" / "data.csv")
    assert same_bits(df.index, data["t"])
    assert same_bits(df.to_numpy(), expected.iloc[:, 1:].to_numpy())


def test_model_configuration_as_a_dict_with_run_times(cli, tmp_path, examples):
    source = str(examples / "lotka_volterra" / "lotka_volterra.ds")
    config = {
        "model": {"kind": "diffsl", "source": source, "options": {"rtol": 1e-9, "atol": 1e-9}},
        "parameters": {"beta": {"fixed": 0.5}, "delta": {"start": 0.1}},
        "run": {"times": "0:5:6"},
    }
    df = parfit.run(config)
    path = tmp_path / "run.toml"
    path.write_text(
        f'[model]\nkind = "diffsl"\nsource = "{source}"\n[model.options]\nrtol = 1e-9\natol = 1e-9\n'
        '[parameters]\nbeta = { fixed = 0.5 }\ndelta = { start = 0.1 }\n[run]\ntimes = "0:5:6"\n'
    )
    expected = read_csv(cli("run", path).stdout)
    assert same_bits(df.index, expected["time"])
    assert same_bits(df.to_numpy(), expected.iloc[:, 1:].to_numpy())


def test_time_series_without_times_is_a_config_error():
    with pytest.raises(parfit.ConfigError, match="time series: give times="):
        parfit.run(LV)


def test_bad_times_and_unknown_parameter_are_config_errors(cli):
    with pytest.raises(parfit.ConfigError) as e:
        parfit.run(LV, times="0:10")
    cli_message = cli("run", LV, "--times", "0:10", check=False).stderr
    assert "expected three fields" in str(e.value) and "expected three fields" in cli_message
    with pytest.raises(parfit.ConfigError, match="no parameter named 'omega'.*alpha"):
        parfit.run(LV, times="0:1:2", set={"omega": 1.0})
    with pytest.raises(parfit.ConfigError, match="not a finite number"):
        parfit.run(LV, times="0:1:2", set={"alpha": float("nan")})


def test_bad_run_times_in_a_configuration_are_located(cli, tmp_path, examples):
    path = tmp_path / "bad.toml"
    path.write_text(
        f'[model]\nkind = "diffsl"\nsource = "{examples / "lotka_volterra" / "lotka_volterra.ds"}"\n'
        '[run]\ntimes = "0:1:0"\n'
    )
    with pytest.raises(parfit.ConfigError) as e:
        parfit.run(path)
    cli_message = cli("run", path, check=False).stderr
    assert f"{path}:5:" in str(e.value)
    assert str(e.value) in cli_message


# ---- Monte Carlo ----------------------------------------------------------------------------------------------


def compare_with_cli(cli, config, result, out, *args):
    cli("run", config, "--output", out, *args)
    summary = read_csv(out / "summary.csv")
    assert list(result.summary.columns) == list(summary.columns)
    for column in summary.columns:
        if column == "output":
            assert list(result.summary[column]) == list(summary[column])
        else:
            assert same_bits(result.summary[column], summary[column]), column
    report = json.loads((out / "summary.json").read_text())
    assert without_seconds(result.report) == without_seconds(report)
    return report


def test_wealth_median_equals_the_cli(cli, tmp_path):
    config = "examples/wealth/run.toml"
    result = parfit.run(config, threads=2, progress=False)
    report = compare_with_cli(cli, config, result, tmp_path / "out", "--threads", "2")
    median = report["points"][0]["statistics"]["w"]["median"]
    assert result.summary.loc[result.summary["output"] == "w", "median"].item() == median
    assert result.paths is None
    # The thread count changes no bit.
    one = parfit.run(config, threads=1, progress=False)
    assert same_bits(one.summary.drop(columns="output"), result.summary.drop(columns="output"))
    assert one.report["threads"] == 1


def test_wealth_sweep_and_seed_override_equal_the_cli(cli, tmp_path):
    config = "examples/wealth/sweep.toml"
    result = parfit.run(config, seed=7, threads=2, progress=False)
    compare_with_cli(cli, config, result, tmp_path / "out", "--threads", "2", "--seed", "7")
    assert list(result.summary.columns[:3]) == ["s", "v2", "output"]
    assert len(result.summary) == 9 * len(result.report["points"][0]["statistics"])


def test_per_path_values_and_set_equal_the_cli(cli, tmp_path, examples):
    source = examples / "wealth" / "wealth.mc"
    path = tmp_path / "paths.toml"
    path.write_text(
        f'seed = 4\n[model]\nkind = "montecarlo"\nsource = "{source}"\n'
        '[montecarlo]\npaths = 300\nperiods = 20\nper_path = true\nseeds = [1, 2]\nchunk = 7\n'
        'statistics = ["mean", "q10"]\n'
    )
    result = parfit.run(path, set={"s": 0.3}, threads=2, progress=False)
    out = tmp_path / "out"
    compare_with_cli(cli, path, result, out, "--threads", "2", "--set", "s=0.3")
    paths = read_csv(out / "paths.csv")
    assert list(result.paths.columns) == list(paths.columns)
    assert list(result.paths["path"]) == list(paths["path"])
    assert same_bits(result.paths.drop(columns="path"), paths.drop(columns="path"))


def test_monte_carlo_config_dict(cli, tmp_path, examples):
    source = str(examples / "wealth" / "wealth.mc")
    config = {"seed": 2, "model": {"kind": "montecarlo", "source": source},
              "montecarlo": {"paths": 500, "periods": 30, "statistics": ["median", "sd"]}}
    result = parfit.run(config, threads=1, progress=False)
    path = tmp_path / "mc.toml"
    path.write_text(
        f'seed = 2\n[model]\nkind = "montecarlo"\nsource = "{source}"\n'
        '[montecarlo]\npaths = 500\nperiods = 30\nstatistics = ["median", "sd"]\n'
    )
    compare_with_cli(cli, path, result, tmp_path / "out", "--threads", "1")


def test_bad_monte_carlo_configuration_is_located(cli, tmp_path, examples):
    path = tmp_path / "bad.toml"
    path.write_text(
        f'[model]\nkind = "montecarlo"\nsource = "{examples / "wealth" / "wealth.mc"}"\n'
        '[montecarlo]\npaths = 10\nperiods = 5\nstatistics = ["median", "q150"]\n'
    )
    with pytest.raises(parfit.ConfigError) as e:
        parfit.run(path, progress=False)
    assert f"{path}:7:14:" in str(e.value)
    assert str(e.value) in cli("run", path, check=False).stderr
    with pytest.raises(parfit.ConfigError, match="no parameter"):
        parfit.run("examples/wealth/run.toml", set={"nope": 1.0}, progress=False)


def test_a_bad_thread_count_in_a_monte_carlo_configuration_is_located_as_the_cli_locates_it(cli, tmp_path, examples):
    path = tmp_path / "threads.toml"
    path.write_text(
        f'threads = 0\n[model]\nkind = "montecarlo"\nsource = "{examples / "wealth" / "wealth.mc"}"\n'
        "[montecarlo]\npaths = 10\nperiods = 5\n"
    )
    with pytest.raises(parfit.ConfigError) as e:
        parfit.run(path, progress=False)
    assert str(e.value) == f"{path}:1:11: threads must be from 1 to 1024 (got 0)"
    assert str(e.value) in cli("run", path, check=False).stderr
    # The call's threads= replaces the configuration's, as --threads does.
    assert parfit.run(path, threads=1, progress=False).report["threads"] == 1


def test_ctrl_c_stops_a_long_monte_carlo_run_with_nothing_returned(examples):
    source = str(examples / "wealth" / "wealth.mc")
    config = {"seed": 1, "model": {"kind": "montecarlo", "source": source},
              "montecarlo": {"paths": 2_000_000, "periods": 1000, "chunk": 1000}}
    calls = []

    def interrupt(done, total):
        calls.append((done, total))
        if done > 0:
            raise KeyboardInterrupt

    result = None
    with pytest.raises(KeyboardInterrupt):
        result = parfit.run(config, threads=2, progress=interrupt)
    assert result is None
    assert calls and calls[-1][0] < calls[-1][1] == 2_000_000


def test_progress_reaches_the_total():
    seen = []
    parfit.run("examples/wealth/sweep.toml", threads=2, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (90_000, 90_000)


def test_monte_carlo_result_repr_and_plot():
    result = parfit.run("examples/wealth/sweep.toml", progress=False)
    html = result._repr_html_()
    assert "Monte Carlo" in html and "10000 × 200" in html
    import matplotlib

    matplotlib.use("Agg")
    ax = result.plot()
    assert len(ax.lines) == 3  # median, q5, q95 of w across the sweep


def test_a_broken_model_file_is_a_model_error_placed_as_the_cli_places_it(cli, tmp_path):
    broken = tmp_path / "broken.ds"
    broken.write_text("in_i { a = 1 }\nu_i { x = a * }\nF_i { -x }\nout_i { x }\n")
    with pytest.raises(parfit.ModelError) as e:
        parfit.run(broken, times="0:1:3")
    assert str(e.value).startswith(f"{broken}:2:")
    assert str(e.value) in cli("run", broken, "--times", "0:1:3", check=False).stderr


def test_a_real_sigint_stops_a_monte_carlo_run(examples):
    import os
    import signal
    import threading

    source = str(examples / "wealth" / "wealth.mc")
    config = {"seed": 1, "model": {"kind": "montecarlo", "source": source},
              "montecarlo": {"paths": 2_000_000, "periods": 1000, "chunk": 1000}}
    seen = []
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            parfit.run(config, threads=2, progress=lambda d, t: seen.append(d))
    finally:
        timer.cancel()
    assert seen and seen[-1] < 2_000_000


def test_the_default_progress_bar_runs_and_closes():
    quiet = parfit.run("examples/wealth/sweep.toml", threads=2, progress=False)
    shown = parfit.run("examples/wealth/sweep.toml", threads=2)  # progress=None: a tqdm bar after 1 s
    assert same_bits(shown.summary.drop(columns="output"), quiet.summary.drop(columns="output"))


def test_without_pandas_results_are_dicts_of_arrays(monkeypatch):
    with_pandas = parfit.run(LV, times="0:2:5")
    mc_with_pandas = parfit.run("examples/wealth/sweep.toml", threads=2, progress=False)
    monkeypatch.setattr(parfit._tables, "_pd", None)
    table = parfit.run(LV, times="0:2:5")
    assert isinstance(table, dict) and list(table) == ["time", *with_pandas.columns]
    assert same_bits(table["time"], with_pandas.index)
    for column in with_pandas.columns:
        assert same_bits(table[column], with_pandas[column])
    mc = parfit.run("examples/wealth/sweep.toml", threads=2, progress=False)
    assert isinstance(mc.summary, dict) and list(mc.summary["output"]) == list(mc_with_pandas.summary["output"])
    assert same_bits(mc.summary["median"], mc_with_pandas.summary["median"])
