"""parfit's exceptions: one hierarchy under ParfitError; a model file's error is a ModelError placed at
file:line:column (as the CLI places it); a bad configuration given as a dict is a ConfigError naming `<config>`
and the key."""

from __future__ import annotations

import pytest

import parfit


def test_the_hierarchy():
    assert issubclass(parfit.ParfitError, Exception)
    for error in (parfit.ConfigError, parfit.ModelError, parfit.RunError):
        assert issubclass(error, parfit.ParfitError)
        assert error.__module__ == "parfit"
        assert error.__doc__
    assert not issubclass(parfit.ConfigError, parfit.ModelError)
    assert not issubclass(parfit.ModelError, parfit.ConfigError)
    assert parfit.ConfigError is parfit._native.ConfigError
    for name in ("ParfitError", "ConfigError", "ModelError", "RunError"):
        assert name in parfit.__all__


@pytest.mark.parametrize(
    "name, text, place, message",
    [
        ("bad.ds", "in_i { a = 1 }\nu_i { x = a }\nF_i { a * y }\nout_i { x }\n", "3:11", "unknown name 'y'"),
        ("bad.mdl", "x = INTEG(y, 1)\n\t~\t~\t|\ny = x * \n\t~\t~\t|\n", "4:2", "expected a number, a name or '('"),
        ("bad.mc", "u_i { w = 1 }\nnext_i { w + }\nout_i { w }\n", "2:14", "expected an expression, found '}'"),
    ],
)
def test_a_model_file_with_an_error_is_a_model_error_at_its_place(cli, tmp_path, name, text, place, message):
    path = tmp_path / name
    path.write_text(text)
    monte_carlo = name.endswith(".mc")
    with pytest.raises(parfit.ModelError) as raised:
        (parfit.MonteCarloModel if monte_carlo else parfit.Model)(path)
    assert str(raised.value).startswith(f"{path}:{place}: {message}")
    # The CLI says the same of the same file (a Monte Carlo model runs from a [montecarlo] configuration).
    if monte_carlo:
        config = tmp_path / "run.toml"
        config.write_text(f'[model]\nkind = "montecarlo"\nsource = "{path}"\n[montecarlo]\npaths = 1\nperiods = 1\n')
        stderr = cli("run", config, check=False).stderr
    else:
        stderr = cli("run", path, "--times", "0:1:2", check=False).stderr
    assert f"{path}:{place}: {message}" in stderr


def test_a_file_that_cannot_be_read_or_has_no_plugin_is_a_config_error(tmp_path):
    with pytest.raises(parfit.ConfigError, match=r"missing\.ds: cannot read"):
        parfit.Model(tmp_path / "missing.ds")
    other = tmp_path / "model.xyz"
    other.write_text("x")
    with pytest.raises(parfit.ConfigError, match=r"model\.xyz: no plugin reads '\.xyz' files \(known extensions: "):
        parfit.Model(other)
    with pytest.raises(parfit.ConfigError, match="found no plugin offering model kind 'nonsense'"):
        parfit.Model(other, kind="nonsense")


def _fit():
    fit = getattr(parfit, "fit", None)
    if fit is None:
        pytest.skip("parfit.fit is not on this branch (it joins with the fit engineer's)")
    return fit


def test_a_bad_dict_configuration_is_a_config_error_naming_config_and_the_key(examples):
    fit = _fit()
    lv = examples / "lotka_volterra"
    config = {
        "model": {"kind": "diffsl", "source": str(lv / "lotka_volterra.ds")},
        "data": {"path": str(lv / "data.csv"), "outputs": ["prey", "predator"]},
        "fit": {"algorithm": "cmaes", "max_iterations": 2, "cmaes": {"sigma0": -1.0}},
    }
    with pytest.raises(parfit.ConfigError, match=r"^<config>:\d+:\d+: \[fit\.cmaes\] sigma0 must be"):
        fit(config, progress=False)
    config["fit"] = {"algoritm": "cmaes"}
    with pytest.raises(parfit.ConfigError, match=r"^<config>:\d+:\d+: unknown field `algoritm`"):
        fit(config, progress=False)
