"""parfit.sample: nested sampling and ensemble MCMC on the Lotka–Volterra example with small budgets — the CLI's
samples.csv and summary.json bit for bit (the CLI of the same build), whatever the thread count; data= and set=
as the file and --set; bad configurations located as the CLI locates them; Ctrl-C stops a run."""

from __future__ import annotations

import json

import numpy as np
import pytest

import parfit
from exact import read_csv, same_bits

BOX = """alpha = { start = 1.1164, lower = 1.0, upper = 1.25 }
beta = { start = 0.4242, lower = 0.35, upper = 0.5 }
delta = { start = 0.09451, lower = 0.08, upper = 0.11 }
gamma = { start = 0.3891, lower = 0.33, upper = 0.45 }"""


def write_config(tmp_path, examples, algorithm: str, extra: str = "", parameters: str = BOX, sample: str = "sigma = 0.3"):
    lv = examples / "lotka_volterra"
    text = f"""seed = 3

[model]
kind = "diffsl"
source = "{lv / "lotka_volterra.ds"}"

[model.options]
rtol = 1e-8
atol = 1e-8

[data]
path = "{lv / "data.csv"}"
outputs = ["prey", "predator"]

[parameters]
{parameters}

[sample]
algorithm = "{algorithm}"
{sample}

[sample.nested]
live_points = 25
dlogz = 0.5

[sample.nested.dynamic]
max_batches = 0

[sample.mcmc]
walkers = 12
steps = 60
burn_in = 20
{extra}"""
    path = tmp_path / f"{algorithm}.toml"
    path.write_text(text)
    return path








def without_seconds(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k != "seconds"}


def assert_equals_cli(cli, config, result, out, *args):
    cli("sample", config, "--output", out, *args)
    samples = read_csv(out / "samples.csv")
    assert list(result.samples.columns) == list(samples.columns)
    assert same_bits(result.samples.to_numpy(), samples.to_numpy())
    summary = json.loads((out / "summary.json").read_text())
    assert without_seconds(result.summary) == without_seconds(summary)


@pytest.mark.parametrize("algorithm", ["nested", "mcmc"])
def test_sample_equals_the_cli_and_threads_change_no_bit(cli, tmp_path, examples, algorithm):
    config = write_config(tmp_path, examples, algorithm)
    two = parfit.sample(config, threads=2, progress=False)
    assert_equals_cli(cli, config, two, tmp_path / "out", "--threads", "2")
    one = parfit.sample(config, threads=1, progress=False)
    assert same_bits(one.samples.to_numpy(), two.samples.to_numpy())
    assert without_seconds(one.summary) == {**without_seconds(two.summary), "threads": 1}
    assert one.parameters == ["alpha", "beta", "delta", "gamma"]
    assert one.algorithm == algorithm
    if algorithm == "nested":
        assert one.log_z == one.summary["log_z"] and np.isfinite(one.log_z)
        assert one.log_z_err > 0
    else:
        assert one.log_z is None and one.log_z_err is None
        assert "r_hat" in one.summary["parameters"]["alpha"]
    assert one.evaluations == one.summary["evaluations"] > 0
    assert abs(one.samples["weight"].sum() - 1.0) < 1e-12


def test_seed_set_and_fitted_sigma_equal_the_cli(cli, tmp_path, examples):
    config = write_config(
        tmp_path, examples, "mcmc",
        sample='sigma = "fitted"\nsigma_prior = { kind = "uniform", lower = 0.1, upper = 1.0 }',
    )
    result = parfit.sample(config, seed=11, set={"alpha": 1.12}, threads=2, progress=False)
    assert_equals_cli(cli, config, result, tmp_path / "out", "--threads", "2", "--seed", "11", "--set", "alpha=1.12")
    assert result.parameters[-1] == "sigma"
    assert result.summary["seed"] == 11


def test_data_frame_and_dict_config_give_the_file_s_numbers(tmp_path, examples):
    config = write_config(tmp_path, examples, "nested")
    from_file = parfit.sample(config, threads=2, progress=False)
    data = read_csv(examples / "lotka_volterra" / "data.csv")
    from_frame = parfit.sample(config, data=data, threads=2, progress=False)
    assert same_bits(from_frame.samples.to_numpy(), from_file.samples.to_numpy())
    import tomllib

    as_dict = tomllib.loads(config.read_text())
    from_dict = parfit.sample(as_dict, threads=2, progress=False)
    assert same_bits(from_dict.samples.to_numpy(), from_file.samples.to_numpy())
    assert from_dict.summary["config"] == "<config>"
    shifted = data.assign(prey=data["prey"] + 0.5)
    assert not same_bits(parfit.sample(config, data=shifted, threads=2, progress=False).samples.to_numpy(),
                         from_file.samples.to_numpy())


@pytest.mark.parametrize(
    "change, where",
    [
        (("sigma = 0.3", "sigma = -1.0"), "sigma"),
        (("sigma = 0.3", 'sigma = "fitted"'), "needs a prior"),
        (("live_points = 25", "live_points = 1"), "live_points"),
        (("alpha = { start = 1.1164, lower = 1.0, upper = 1.25 }", "alpha = { start = 1.1164 }"), "finite bounds"),
    ],
)
def test_bad_configurations_are_config_errors_located_as_the_cli_says(cli, tmp_path, examples, change, where):
    config = write_config(tmp_path, examples, "nested")
    config.write_text(config.read_text().replace(*change))
    with pytest.raises(parfit.ConfigError) as e:
        parfit.sample(config, progress=False)
    assert where in str(e.value)
    assert str(e.value).startswith(f"{config}:")
    assert str(e.value) in cli("sample", config, check=False).stderr


def test_every_parameter_fixed_and_a_missing_data_section_are_refused(tmp_path, examples):
    fixed = "\n".join(line.split("=")[0] + "= { fixed = 1.0 }" for line in BOX.splitlines())
    config = write_config(tmp_path, examples, "nested", parameters=fixed)
    with pytest.raises(parfit.ConfigError, match="nothing to sample"):
        parfit.sample(config, progress=False)
    with pytest.raises(parfit.ConfigError, match=r"data= replaces the \[data\] table's file"):
        parfit.sample({"model": {"kind": "diffsl", "source": "x.ds"}, "sample": {"sigma": 1.0}},
                      data={"t": [0.0], "prey": [1.0]}, progress=False)


def test_ctrl_c_stops_sampling_with_nothing_returned(tmp_path, examples):
    config = write_config(tmp_path, examples, "mcmc")
    config.write_text(config.read_text().replace("steps = 60", "steps = 100000"))
    calls = []

    def interrupt(done, total):
        calls.append(done)
        if done > 2:
            raise KeyboardInterrupt

    result = None
    with pytest.raises(KeyboardInterrupt):
        result = parfit.sample(config, threads=2, progress=interrupt)
    assert result is None and calls[-1] > 2


def test_sample_result_repr_and_plot(tmp_path, examples):
    result = parfit.sample(write_config(tmp_path, examples, "nested"), progress=False)
    html = result._repr_html_()
    assert "ln Z" in html and "alpha" in html
    assert "SampleResult(nested" in repr(result)
    import matplotlib

    matplotlib.use("Agg")
    fig = result.plot()
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 10  # 4 histograms, 6 pairs
