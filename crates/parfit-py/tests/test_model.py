"""parfit.Model: the spec, and simulations equal to `parfit run FILE --times … --format csv` bit for bit (DiffSL,
Vensim, Monte Carlo), sensitivities, parameters and inputs by name or in order, and the CLI's checks on times."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest

import parfit


def cli_run(cli, *args):
    """`parfit run … --format csv` as (header, rows of floats)."""
    text = cli("run", *args, "--format", "csv").stdout
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], np.array([[float(v) for v in row] for row in rows[1:]])


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.ascontiguousarray(a, dtype=np.float64), np.ascontiguousarray(b, dtype=np.float64)
    return a.shape == b.shape and np.array_equal(a.view(np.uint64), b.view(np.uint64))


def test_lotka_volterra_simulates_as_the_cli_prints_it(cli, examples):
    path = examples / "lotka_volterra" / "lotka_volterra.ds"
    header, table = cli_run(cli, path, "--times", "0:20:201", "--rtol", "1e-8", "--atol", "1e-8")
    model = parfit.Model(path, rtol=1e-8, atol=1e-8)
    assert header == ["time", *model.outputs]
    frame = model.simulate(times=table[:, 0])
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["prey", "predator"] and frame.index.name == "t"
    assert same_bits(frame.index.to_numpy(), table[:, 0])
    assert same_bits(frame.to_numpy(), table[:, 1:])


def test_vensim_aging_chain_simulates_as_the_cli_prints_it(cli, examples):
    path = examples / "counties" / "Aging_Chain.mdl"
    header, table = cli_run(cli, path, "--times", "2000:2010:81")
    model = parfit.Model(path)
    assert (model.kind, model.plugin) == ("vensim", "vensim")
    assert header[1:] == model.outputs
    values = model.simulate(times=table[:, 0]).to_numpy()
    assert same_bits(values, table[:, 1:])
    # Not a copy of the defaults: a loss rate changes the chain.
    other = model.simulate({"dec 3 loss rate": 0.2}, times=table[:, 0]).to_numpy()
    assert not np.array_equal(other, values)


def test_monte_carlo_paths_are_the_cli_s_per_path_values(cli, examples, tmp_path):
    # MonteCarloModel runs blocks of paths through the plugin's paths entry: the values `parfit run` writes to
    # paths.csv for the same seed, parameters and periods, bit for bit, on any thread count.
    source = examples / "wealth" / "wealth.mc"
    config = tmp_path / "wealth.toml"
    config.write_text(
        f'seed = 7\n[model]\nkind = "montecarlo"\nsource = "{source}"\n'
        "[montecarlo]\npaths = 300\nperiods = 40\nper_path = true\nchunk = 7\n[parameters]\ns = 0.35\n"
    )
    out = tmp_path / "out"
    cli("run", config, "--output", out, "--threads", "1")
    table = pd.read_csv(out / "paths.csv")
    model = parfit.MonteCarloModel(source)
    assert (model.kind, model.plugin, model.outputs) == ("montecarlo", "montecarlo", ["w"])
    assert model.parameters == ["r", "s", "v1", "v2"] and model.spec["name"] == "wealth"
    paths = model.simulate({"s": 0.35}, paths=300, periods=40, seed=7, threads=2, progress=False)
    assert list(paths.columns) == ["w"] and paths.index.name == "path"
    assert list(paths.index) == list(table["path"])
    assert same_bits(paths["w"].to_numpy(), table["w"].to_numpy())
    # One thread, parameters in spec order and numpy integers give the same bits; the first paths of a larger
    # run are the paths of a smaller one.
    again = model.simulate([0.1, 0.35, 0.1, 1.0], paths=np.int64(100), periods=40, seed=7, threads=1, progress=False)
    assert same_bits(again.to_numpy(), paths.to_numpy()[:100])
    # Another seed draws other paths; the defaults are the model's.
    assert not np.array_equal(model.simulate({"s": 0.35}, paths=5, periods=40, seed=8, progress=False).to_numpy(),
                              paths.to_numpy()[:5])
    default = model.simulate(paths=5, periods=40, seed=7, progress=False).to_numpy()
    assert same_bits(default, model.simulate({"s": 0.3}, paths=5, periods=40, seed=7, progress=False).to_numpy())
    assert "wealth.mc" in repr(model) and "per path" in model._repr_html_()


def test_monte_carlo_arguments_are_checked(examples):
    model = parfit.MonteCarloModel(examples / "wealth" / "wealth.mc")
    with pytest.raises(parfit.ConfigError, match=r"paths= must be in 1\.\.=2\^53 \(got 0\)"):
        model.simulate(paths=0, periods=5)
    with pytest.raises(parfit.ConfigError, match=r"periods= must be in 0\.\.=2\^53 \(got -1\)"):
        model.simulate(paths=1, periods=-1)
    with pytest.raises(parfit.ConfigError, match=r"seed= must be in 0\.\.=2\^53 \(got 9007199254740993\)"):
        model.simulate(paths=1, periods=1, seed=2**53 + 1)
    with pytest.raises(parfit.ConfigError, match=r"paths= must be a whole number \(got 10\.0\)"):
        model.simulate(paths=10.0, periods=1)
    with pytest.raises(parfit.ConfigError, match=r"params: the model has no parameter named 'q' \(it has: r, s, v1, v2\)"):
        model.simulate({"q": 1.0}, paths=1, periods=1)
    with pytest.raises(parfit.ConfigError, match=r"params: s must be a finite number \(got inf\)"):
        model.simulate({"s": np.inf}, paths=1, periods=1)
    with pytest.raises(parfit.ConfigError, match=r"paths=: 1125899906842624 paths × 1 output\(s\) would need about"):
        model.simulate(paths=2**50, periods=1)
    with pytest.raises(TypeError):
        model.simulate(paths=1)


def test_a_monte_carlo_model_is_no_model_to_simulate_at_times(cli, examples, tmp_path):
    # The montecarlo plugin has no model entry: Model, run() on the file, and a [model] without [montecarlo] are
    # refused with what runs it instead; the CLI refuses the same configuration at the same place.
    source = examples / "wealth" / "wealth.mc"
    with pytest.raises(parfit.ConfigError, match=r"wealth\.mc: model kind 'montecarlo' is a Monte Carlo model, which "
                       r"runs as paths, not at times: open it with parfit\.MonteCarloModel"):
        parfit.Model(source)
    with pytest.raises(parfit.ConfigError, match=r"parfit\.Model\(kind=\"montecarlo\"\): model kind 'montecarlo'"):
        parfit.Model(kind="montecarlo")
    with pytest.raises(parfit.ConfigError, match=r"\[montecarlo\] section, or open it with parfit\.MonteCarloModel"):
        parfit.run(source)
    config = tmp_path / "wealth.toml"
    config.write_text(f'[model]\nkind = "montecarlo"\nsource = "{source}"\n\n[model.options]\nperiods = 40\n')
    with pytest.raises(parfit.ConfigError) as raised:
        parfit.run(config, times="0:9:10")
    message = f"{config}:2:8: model kind 'montecarlo' is a Monte Carlo model: it runs as paths, from a configuration " \
              "with a [montecarlo] section (paths, periods)"
    assert str(raised.value).startswith(message)
    assert message in cli("run", config, "--times", "0:9:10", check=False).stderr
    # MonteCarloModel refuses what is not a Monte Carlo model, naming what opens it.
    with pytest.raises(parfit.ConfigError, match=r"lotka_volterra\.ds: model kind 'diffsl' is not a Monte Carlo model .*parfit\.Model"):
        parfit.MonteCarloModel(examples / "lotka_volterra" / "lotka_volterra.ds")
    with pytest.raises(parfit.ConfigError, match=r"kind 'basicterm' is a projection, not a Monte Carlo model: run it with parfit\.project"):
        parfit.MonteCarloModel(kind="basicterm")


def test_spec_properties_and_repr(examples):
    model = parfit.Model(examples / "lotka_volterra" / "lotka_volterra.ds")
    assert model.parameters == ["alpha", "beta", "delta", "gamma"]
    assert model.outputs == ["prey", "predator"] and model.inputs == []
    spec = model.spec
    assert spec["output_kind"] == "time_series"
    assert spec["parameters"][0] == {"name": "alpha", "default": 1.1, "lower": -np.inf, "upper": np.inf}
    assert model.path.endswith("lotka_volterra.ds") and model.kind == "diffsl" and model.plugin == "ode"
    assert "lotka_volterra.ds" in repr(model) and "alpha" in model._repr_html_()


def test_kind_chooses_the_plugin_instead_of_the_extension(examples, tmp_path):
    copy = tmp_path / "lv.txt"
    copy.write_text((examples / "lotka_volterra" / "lotka_volterra.ds").read_text())
    with pytest.raises(parfit.ConfigError, match=r"no plugin reads '\.txt' files"):
        parfit.Model(copy)
    by_kind = parfit.Model(copy, kind="diffsl")
    by_file = parfit.Model(examples / "lotka_volterra" / "lotka_volterra.ds")
    assert same_bits(by_kind.simulate(times=[0, 1, 2]).to_numpy(), by_file.simulate(times=[0, 1, 2]).to_numpy())
    with pytest.raises(parfit.ConfigError, match="found no plugin 'vensim' with model kind 'diffsl'"):
        parfit.Model(copy, kind="diffsl", plugin="vensim")


def test_parameters_by_name_or_in_order_and_inputs(examples):
    model = parfit.Model(examples / "lotka_volterra" / "lotka_volterra.ds")
    times = np.linspace(0, 5, 11)
    by_name = model.simulate({"beta": 0.5}, times=times).to_numpy()
    in_order = model.simulate([1.1, 0.5, 0.1, 0.4], times=times).to_numpy()
    as_array = model.simulate(np.array([1.1, 0.5, 0.1, 0.4]), times=times).to_numpy()
    as_series = model.simulate(pd.Series({"beta": 0.5}), times=times).to_numpy()
    assert same_bits(by_name, in_order) and same_bits(by_name, as_array) and same_bits(by_name, as_series)
    assert not np.array_equal(by_name, model.simulate(times=times).to_numpy())

    chain = parfit.Model(examples / "counties" / "Aging_Chain.mdl")
    start = chain.simulate(times=[2000.0], inputs={"dec 1": 1234.0, "dec 9": 5.0})
    assert start.loc[2000.0, "dec 1"] == 1234.0 and start.loc[2000.0, "dec 9"] == 5.0
    ordered = chain.simulate(times=[2000.0], inputs=[1234.0] + [np.nan] * 7 + [5.0])
    assert same_bits(ordered.to_numpy(), start.to_numpy())
    with pytest.raises(parfit.ConfigError, match=r"inputs: the model has no input named 'dec 10' \(it has: dec 1, "):
        chain.simulate(times=[2000.0], inputs={"dec 10": 1.0})


def test_sensitivities_are_the_derivatives(examples):
    model = parfit.Model(examples / "lotka_volterra" / "lotka_volterra.ds", rtol=1e-10, atol=1e-10)
    times = np.linspace(0, 3, 7)
    params = np.array([1.1, 0.4, 0.1, 0.4])
    values, d = model.sensitivities(params, times=times)
    assert values.shape == (7, 2) and d.shape == (7, 2, 4)
    np.testing.assert_allclose(values, model.simulate(params, times=times).to_numpy(), rtol=1e-8)
    for k in range(4):
        h = 1e-6 * params[k]
        up, down = params.copy(), params.copy()
        up[k] += h
        down[k] -= h
        central = (model.simulate(up, times=times).to_numpy() - model.simulate(down, times=times).to_numpy()) / (2 * h)
        np.testing.assert_allclose(d[:, :, k], central, rtol=1e-4, atol=1e-6)


def test_times_are_checked_as_the_cli_checks_them(examples):
    model = parfit.Model(examples / "lotka_volterra" / "lotka_volterra.ds")
    with pytest.raises(parfit.ConfigError, match="times must be non-decreasing"):
        model.simulate(times=[0.0, 2.0, 1.0])
    with pytest.raises(parfit.ConfigError, match=r"every time must be a finite number \(got NaN\)"):
        model.simulate(times=[0.0, np.nan])
    with pytest.raises(parfit.ConfigError, match=r"every time must be a finite number \(got inf\)"):
        model.simulate(times=[0.0, np.inf])
    with pytest.raises(parfit.ConfigError, match="outputs are time series: give times="):
        model.simulate()
    with pytest.raises(parfit.ConfigError, match="one-dimensional"):
        model.simulate(times=[[0.0, 1.0]])


def test_times_within_the_memory_budget(tmp_path):
    # The budget, as `parfit run` applies it: times × outputs × 8 bytes. It is read once per process, so each
    # setting runs in a fresh interpreter.
    model = tmp_path / "still.ds"
    model.write_text("u_i { z = 1 }\nF_i { 0 }\nout_i { z }\n")
    script = (
        "import numpy as np, parfit\n"
        f"m = parfit.Model({str(model)!r})\n"
        "try:\n"
        "    print(m.simulate(times=np.arange(100000.0)).shape)\n"
        "except parfit.ConfigError as e:\n"
        "    print(e)\n"
    )

    def run(limit):
        env = {**os.environ, "PARFIT_MEMORY_LIMIT": limit}
        return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True).stdout

    assert run("799999").startswith("times: 100000 times × 1 outputs would need about 781.2 KiB of memory, more than")
    assert run("800000").strip() == "(100000, 1)"


def test_a_failed_simulation_is_a_model_error(examples):
    model = parfit.Model(examples / "lotka_volterra" / "lotka_volterra.ds", max_steps=3)
    with pytest.raises(parfit.ModelError, match=r"lotka_volterra\.ds: simulation failed: more than 3 steps"):
        model.simulate(times=[0.0, 50.0])



def test_a_monte_carlo_path_that_overflows_is_a_model_error_naming_it(tmp_path):
    path = tmp_path / "grow.mc"
    path.write_text("in_i { g = 1e300 }\nu_i { x = 1 }\nnext_i { g * x }\nout_i { x }\n")
    model = parfit.MonteCarloModel(path)
    assert same_bits(model.simulate(paths=3, periods=1, progress=False).to_numpy(), np.full((3, 1), 1e300))
    with pytest.raises(parfit.ModelError, match=r"grow\.mc: simulation failed \(sweep point 1, paths 0–2\): path 0: "
                       r"output 'x' is inf after 2 periods"):
        model.simulate(paths=3, periods=2, progress=False)


def test_a_model_without_sensitivities_says_so(examples):
    chain = parfit.Model(examples / "counties" / "Aging_Chain.mdl")
    with pytest.raises(parfit.ModelError, match=r"Aging_Chain\.mdl: this model \(vensim via plugin vensim\) has no sensitivities"):
        chain.sensitivities(times=[2000.0])


def test_bad_parameters_are_config_errors(examples):
    model = parfit.Model(examples / "lotka_volterra" / "lotka_volterra.ds")
    with pytest.raises(parfit.ConfigError, match=r"params: the model has no parameter named 'alpa' \(it has: alpha, beta, delta, gamma\)"):
        model.simulate({"alpa": 1.0}, times=[0])
    with pytest.raises(parfit.ConfigError, match=r"params: 2 values given for the model's 4 parameters"):
        model.simulate([1.0, 2.0], times=[0])
    with pytest.raises(parfit.ConfigError, match=r"params: beta must be a finite number \(got NaN\)"):
        model.simulate({"beta": np.nan}, times=[0])
    with pytest.raises(parfit.ConfigError, match="params: alpha must be a number"):
        model.simulate({"alpha": "fast"}, times=[0])


def test_options_are_the_plugins(examples):
    path = examples / "lotka_volterra" / "lotka_volterra.ds"
    with pytest.raises(parfit.ConfigError, match=r"lotka_volterra\.ds \(Model options\): .*unknown field `rtoll`"):
        parfit.Model(path, rtoll=1e-6)
    with pytest.raises(parfit.ConfigError, match=r"\[model\.options\] rtol must be a finite number \(got inf\)"):
        parfit.Model(path, rtol=np.inf)
    loose = parfit.Model(path, rtol=1e-3, atol=1e-3).simulate(times=[0, 10]).to_numpy()
    tight = parfit.Model(path, rtol=1e-10, atol=1e-10).simulate(times=[0, 10]).to_numpy()
    assert not np.array_equal(loose, tight)
    np.testing.assert_allclose(loose, tight, rtol=1e-2)


def test_simulate_releases_the_gil(examples):
    # A long simulation on one thread while another Python thread keeps running: the other thread's counter
    # advances during the simulation only if the GIL was released.
    model = parfit.Model(examples / "lotka_volterra" / "lotka_volterra.ds", rtol=1e-12, atol=1e-12, max_steps=10**8)
    ticks = []
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    times = np.linspace(0, 50000, 5)
    start = time.perf_counter()
    model.simulate(times=times[:2])  # warm up (compilation)
    start = time.perf_counter()
    thread = threading.Thread(target=tick)
    thread.start()
    model.simulate(times=times)
    end = time.perf_counter()
    stop.set()
    thread.join()
    assert end - start > 0.05, "the simulation must take long enough to measure"
    during = [t for t in ticks if start < t < end]
    assert len(during) >= 5, f"{len(during)} ticks in {end - start:.3f} s"


def test_python_threads_simulate_one_model_at_once(examples):
    # Each call takes its own workspace, so threads may share a model; results are those of one thread alone.
    from concurrent.futures import ThreadPoolExecutor

    model = parfit.Model(examples / "lotka_volterra" / "lotka_volterra.ds", rtol=1e-10, atol=1e-10)
    times = np.linspace(0, 30, 301)
    settings = [{"alpha": 0.9 + 0.01 * i} for i in range(16)]
    alone = [model.simulate(p, times=times).to_numpy() for p in settings]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda p: model.simulate(p, times=times).to_numpy(), settings))
    assert all(same_bits(a, b) for a, b in zip(alone, together))


def test_the_actuarial_kinds_are_projections_not_models(examples):
    # The actuarial plugin's kinds run model files as projections (parfit.project); as a Model they are refused
    # with the way to run them.
    tables = {"model_points": {"name": "mp.csv", "text": "policy_id\n1\n"}}
    with pytest.raises(parfit.ConfigError, match="kind 'basicterm' is a projection: configure it in a \\[projection\\]"):
        parfit.Model(kind="basicterm", tables=tables)


def test_without_pandas_simulate_gives_the_array(examples, monkeypatch):
    model = parfit.Model(examples / "lotka_volterra" / "lotka_volterra.ds")
    frame = model.simulate({"alpha": 1.0}, times=[0.0, 1.0, 2.0])
    monkeypatch.setattr(parfit._tables, "_pd", None)
    array = model.simulate({"alpha": 1.0}, times=[0.0, 1.0, 2.0])
    assert isinstance(array, np.ndarray) and array.shape == (3, 2)
    assert same_bits(array, frame.to_numpy())
