"""The bundled plugins are found, and a plugin path given by the caller is searched first."""

import parfit


def test_bundled_plugins_offer_every_kind_the_cli_has(cli):
    kinds = {k["kind"] for p in parfit.plugins() for k in p["kinds"]}
    listed = cli("plugins").stdout
    for kind in kinds:
        assert kind in listed
    assert {"diffsl", "vensim"} <= kinds
    extensions = {e for p in parfit.plugins() for k in p["kinds"] for e in k["extensions"]}
    assert {"ds", "mdl", "mc"} <= extensions


def test_a_missing_plugin_path_is_a_config_error(tmp_path):
    missing = tmp_path / "libparfit_nothing.so"
    try:
        parfit.plugins([missing])
    except parfit.ConfigError as e:
        assert str(missing) in str(e)
    else:
        raise AssertionError("a named plugin path that does not exist must be refused")
