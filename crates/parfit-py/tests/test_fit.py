"""parfit.fit against `parfit fit` of the same build: the Lotka–Volterra example's numbers, history and fitted
curves bit for bit, whatever the thread count or the form the configuration and data are given in."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pandas as pd
import pytest

import parfit
from exact import same_bits


def lv(examples):
    return examples / "lotka_volterra" / "fit.toml"


def read_csv_exact(path):
    """A CSV file as (header, columns of floats parsed exactly)."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], [[float(r[j]) for r in rows[1:]] for j in range(len(rows[0]))]


def cli_fit(cli, config, out, *args):
    """`parfit fit CONFIG --output OUT --format json ARGS`: (stdout JSON, result.json)."""
    printed = json.loads(cli("fit", config, "--output", out, "--format", "json", *args).stdout)
    return printed, json.loads((out / "result.json").read_text())



def without_seconds(doc):
    return {k: v for k, v in doc.items() if k != "seconds"}


@pytest.mark.parametrize("threads", [1, 2])
def test_the_lv_fit_is_the_clis_bit_for_bit(examples, cli, tmp_path, threads):
    printed, document = cli_fit(cli, lv(examples), tmp_path, "--seed", "7", "--threads", str(threads))
    result = parfit.fit(lv(examples), seed=7, threads=threads, progress=False)

    assert result.x == printed["x"] and list(result.x) == ["alpha", "beta", "delta", "gamma"]
    assert all(float(result.x[k]).hex() == float(v).hex() for k, v in printed["x"].items())
    assert float(result.value).hex() == float(printed["value"]).hex()
    assert (result.evaluations, result.iterations, result.termination) == (
        printed["evaluations"], printed["iterations"], printed["termination"]
    )
    assert (result.seed, result.threads, result.algorithm, result.cost) == (7, threads, "cmaes", "sse")
    # result.json, history included, is the CLI's but for the wall time.
    assert without_seconds(result.to_dict()) == without_seconds(document)
    assert document["history"], "the example records its history"
    history = result.history
    assert list(history["evaluations"]) == [h["evaluations"] for h in document["history"]]
    assert list(history["iteration"]) == [h["iteration"] for h in document["history"]]
    assert same_bits(history["best_value"], [h["best_value"] for h in document["history"]])
    assert same_bits(history["best_x.gamma"], [h["best_x"][3] for h in document["history"]])
    # fitted.csv: the same grid and values, bit for bit.
    header, columns = read_csv_exact(tmp_path / "fitted.csv")
    fitted = result.fitted
    assert list(fitted.columns) == header == ["t", "prey", "predator"]
    assert len(fitted) == 1001
    for name, values in zip(header, columns):
        assert same_bits(fitted[name], values), name


def test_thread_counts_give_identical_fits(examples):
    one = parfit.fit(lv(examples), seed=7, threads=1, progress=False)
    two = parfit.fit(lv(examples), seed=7, threads=2, progress=False)
    assert without_seconds(one.to_dict()) == {**without_seconds(two.to_dict()), "threads": 1}
    pd.testing.assert_frame_equal(one.fitted, two.fitted, check_exact=True)


def config_as_dict(path):
    """examples/lotka_volterra/fit.toml written as a dict, as a notebook would, with its file names made absolute
    (a dict's names resolve against the working directory) and no [output]."""
    here = path.parent
    return {
        "seed": 42,
        "model": {"kind": "diffsl", "source": here / "lotka_volterra.ds", "options": {"rtol": 1e-8, "atol": 1e-8}},
        "data": {"path": here / "data.csv", "time": "t", "outputs": ["prey", "predator"]},
        "parameters": {
            "alpha": {"start": 0.8, "lower": 0.0, "upper": 5.0},
            "beta": {"start": 0.3, "lower": 0.0, "upper": 5.0},
            "delta": {"start": 0.05, "lower": 0.0, "upper": 5.0},
            "gamma": {"start": 0.3, "lower": 0.0, "upper": 5.0},
        },
        "fit": {
            "cost": "sse",
            "algorithm": "cmaes",
            "max_iterations": 100,
            "horizons": [10.0, 25.0, 50.0],
            "polish": True,
            "cmaes": {"sigma0": 0.3},
        },
    }


def test_a_dict_config_fits_as_its_file(examples):
    from_file = parfit.fit(lv(examples), seed=7, threads=2, progress=False)
    from_dict = parfit.fit(config_as_dict(lv(examples)), seed=7, threads=2, progress=False)
    assert from_dict.to_dict()["config"] == "<config>"
    assert without_seconds({**from_dict.to_dict(), "config": ""}) == without_seconds(
        {**from_file.to_dict(), "config": ""}
    )
    pd.testing.assert_frame_equal(from_dict.fitted, from_file.fitted, check_exact=True)


def test_data_as_a_dataframe_or_arrays_fits_as_the_csv(examples):
    from_file = parfit.fit(lv(examples), seed=3, threads=2, progress=False)
    frame = pd.read_csv(examples / "lotka_volterra" / "data.csv")
    from_frame = parfit.fit(lv(examples), data=frame, seed=3, threads=2, progress=False)
    arrays = {name: frame[name].to_numpy() for name in frame.columns}
    from_arrays = parfit.fit(lv(examples), data=arrays, seed=3, threads=2, progress=False)
    for other in (from_frame, from_arrays):
        assert without_seconds(other.to_dict()) == without_seconds(from_file.to_dict())
        pd.testing.assert_frame_equal(other.fitted, from_file.fitted, check_exact=True)


def test_algorithm_and_set_override_as_the_clis_flags(examples, cli, tmp_path):
    args = ("--seed", "2", "--algorithm", "levenberg_marquardt", "--set", "alpha=1.0", "--threads", "2")
    printed, document = cli_fit(cli, lv(examples), tmp_path, *args)
    result = parfit.fit(
        lv(examples), seed=2, algorithm="levenberg_marquardt", set={"alpha": 1.0}, threads=2, progress=False
    )
    assert result.algorithm == "levenberg_marquardt"
    assert without_seconds(result.to_dict()) == without_seconds(document)
    # The start moved: a different path from the configured start.
    plain = parfit.fit(lv(examples), seed=2, algorithm="levenberg_marquardt", threads=2, progress=False)
    assert plain.evaluations != result.evaluations or plain.x != result.x


def test_progress_counts_iterations_over_the_stages_and_a_raising_callback_stops_the_fit(examples):
    seen = []
    parfit.fit(lv(examples), seed=7, threads=1, progress=lambda done, total: seen.append((done, total)))
    assert seen and all(total == 400 for _, total in seen), seen[:3]  # 100 iterations × (3 horizons + 1)
    # Iterations counted over the horizon stages and the polish, never going back.
    done = [d for d, _ in seen]
    assert done == sorted(done) and done[-1] > 100, done

    def stop(done, total):
        raise KeyboardInterrupt("stop here")

    with pytest.raises(KeyboardInterrupt):
        parfit.fit(lv(examples), seed=7, threads=1, progress=stop)


def write_config(tmp_path, examples, replace):
    text = lv(examples).read_text()
    for old, new in replace:
        assert old in text
        text = text.replace(old, new)
    text = text.replace('source = "lotka_volterra.ds"', f'source = "{examples / "lotka_volterra" / "lotka_volterra.ds"}"')
    text = text.replace('path = "data.csv"', f'path = "{examples / "lotka_volterra" / "data.csv"}"')
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "replace",
    [
        # A start outside its bounds: placed at the parameter's entry.
        [("alpha = { start = 0.8, lower = 0.0", "alpha = { start = 9.8, lower = 0.0")],
        # An option out of range: placed at its key.
        [("sigma0 = 0.3", "sigma0 = -0.3")],
        # Not TOML.
        [("max_iterations = 100", "max_iterations = = 100")],
        # A decreasing horizon list.
        [("horizons = [10.0, 25.0, 50.0]", "horizons = [10.0, 5.0]")],
        # A thread count out of range.
        [("seed = 42", "seed = 42\nthreads = 0")],
    ],
)
def test_a_bad_configuration_is_a_config_error_with_the_clis_message(examples, cli, tmp_path, replace):
    path = write_config(tmp_path, examples, replace)
    proc = cli("fit", path, check=False)
    assert proc.returncode == 2, proc.stderr
    expected = proc.stderr.strip().removeprefix("error: ")
    with pytest.raises(parfit.ConfigError) as e:
        parfit.fit(path, progress=False)
    assert str(e.value) == expected
    assert str(e.value).startswith(f"{path}:"), str(e.value)
    line_column = str(e.value)[len(str(path)) + 1 :].split(":")[:2]
    assert all(part.isdigit() for part in line_column), str(e.value)


def test_bad_arguments_are_config_errors(examples):
    with pytest.raises(parfit.ConfigError, match="not one of cmaes"):
        parfit.fit(lv(examples), algorithm="simplex", progress=False)
    with pytest.raises(parfit.ConfigError, match="finite"):
        parfit.fit(lv(examples), set={"alpha": math.inf}, progress=False)
    with pytest.raises(parfit.ConfigError, match="--set nope"):
        parfit.fit(lv(examples), set={"nope": 1.0}, progress=False)
    bad = config_as_dict(lv(examples))
    bad["parameters"]["alpha"]["start"] = 9.0
    with pytest.raises(parfit.ConfigError, match=r"^<config>:\d+:\d+: "):
        parfit.fit(bad, progress=False)


def test_the_result_shows_itself_and_plots(examples):
    import matplotlib

    matplotlib.use("Agg")
    result = parfit.fit(lv(examples), seed=7, threads=2, progress=False)
    html = result._repr_html_()
    assert "alpha" in html and "cmaes" in html and "SSE" in html
    ax = result.plot()
    # Two observed outputs: a fitted line and a data series each.
    assert len(ax.lines) == 4
    assert np.allclose(ax.lines[0].get_xdata(), result.fitted["t"])
    assert "FitResult(sse=" in repr(result)


def test_the_default_progress_bar_runs(examples, capsys):
    result = parfit.fit(lv(examples), seed=7, threads=2)  # progress=None: tqdm.auto, shown after a second
    assert result.evaluations > 0


def test_without_pandas_tables_are_dicts_of_arrays(examples, monkeypatch):
    with_pandas = parfit.fit(lv(examples), seed=7, threads=2, progress=False)
    monkeypatch.setattr(parfit._tables, "_pd", None)
    result = parfit.fit(lv(examples), seed=7, threads=2, progress=False)
    fitted, history = result.fitted, result.history
    assert isinstance(fitted, dict) and list(fitted) == ["t", "prey", "predator"]
    for name in fitted:
        assert same_bits(fitted[name], with_pandas.fitted[name])
    assert isinstance(history, dict) and same_bits(history["best_value"], with_pandas.history["best_value"])
