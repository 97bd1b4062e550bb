"""parfit.project (and parfit.run on a projection configuration): the CLI's pv.csv, totals.json, result_cf.csv,
result_pols.csv and audit.csv bit for bit (the CLI of the same build), for the savings example's 10,000 points and
basicterm's; the thread count changes no bit; model_points= replaces the table; errors are located; Ctrl-C
stops a long projection with nothing returned."""

from __future__ import annotations

import json
import re
import time

import pytest

import parfit
from exact import read_csv, same_bits

SAVINGS = "examples/savings/run.toml"
BASICTERM = "examples/basicterm/run.toml"








def without_timing(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in ("seconds", "threads")}


def assert_equals_cli_files(result: parfit.ProjectionResult, out, threads: int):
    pv = read_csv(out / "pv.csv")
    assert result.pv.index.name == "point_id"
    assert list(result.pv.index) == list(pv["point_id"])
    assert list(result.pv.columns) == list(pv.columns[1:])
    assert same_bits(result.pv.to_numpy(), pv.iloc[:, 1:].to_numpy())
    totals = json.loads((out / "totals.json").read_text())
    assert without_timing(result.totals) == without_timing(totals)
    assert result.totals["threads"] == threads
    for name, table in [("result_cf.csv", result.result_cf), ("result_pols.csv", result.result_pols)]:
        expected = read_csv(out / name)
        assert table.index.name == "t"
        assert list(table.index) == list(expected["t"])
        assert list(table.columns) == list(expected.columns[1:])
        assert same_bits(table.to_numpy(), expected.iloc[:, 1:].to_numpy()), name
    audit = read_csv(out / "audit.csv")
    assert list(result.audit.columns) == list(audit.columns)
    assert same_bits(result.audit.to_numpy(), audit.to_numpy())


def test_savings_ten_thousand_points_equal_the_cli_files(cli, tmp_path):
    started = time.perf_counter()
    result = parfit.project(SAVINGS, threads=2, progress=False)
    seconds = time.perf_counter() - started
    out = tmp_path / "out"
    cli("run", SAVINGS, "--output", out, "--threads", "2")
    assert len(result.pv) == 10_000
    assert_equals_cli_files(result, out, 2)
    print(f"savings 10K projection from Python (this build, 2 threads): {seconds:.2f} s")


def test_threads_change_no_bit_and_run_is_project(tmp_path):
    two = parfit.project(SAVINGS, threads=2, progress=False)
    one = parfit.run(SAVINGS, threads=1, progress=False)
    assert isinstance(one, parfit.ProjectionResult)
    assert same_bits(one.pv.to_numpy(), two.pv.to_numpy())
    assert without_timing(one.totals) == without_timing(two.totals)
    assert same_bits(one.result_cf.to_numpy(), two.result_cf.to_numpy())
    assert same_bits(one.result_pols.to_numpy(), two.result_pols.to_numpy())
    assert same_bits(one.audit.to_numpy(), two.audit.to_numpy())


def test_basicterm_equals_the_cli_files(cli, tmp_path):
    result = parfit.project(BASICTERM, threads=2, progress=False)
    out = tmp_path / "out"
    cli("run", BASICTERM, "--output", out, "--threads", "2")
    assert_equals_cli_files(result, out, 2)
    # What the engine's `summary` model output gave, now the projection's report.
    assert result.totals["points"] == 10000 and result.totals["scenarios"] == [1]
    assert result.totals["horizon_months"] == 277 and result.totals["point_months"] > 0


def test_a_model_file_gives_the_kinds_results(examples):
    kind = parfit.project(BASICTERM, threads=2, progress=False)
    model = parfit.project(examples / "basicterm" / "run_model.toml", threads=2, progress=False)
    assert same_bits(kind.pv.to_numpy(), model.pv.to_numpy())
    assert same_bits(kind.result_cf.to_numpy(), model.result_cf.to_numpy())
    assert same_bits(kind.audit.to_numpy(), model.audit.to_numpy())


def test_model_points_dataframe_replaces_the_table(examples):
    points = read_csv(examples / "savings" / "model_point_10000.csv")
    subset = points.iloc[:300]
    result = parfit.project(SAVINGS, model_points=subset, threads=2, progress=False)
    full = parfit.project(SAVINGS, threads=2, progress=False)
    assert list(result.pv.index) == list(full.pv.index[:300])
    # Each point's present values do not depend on the other points.
    assert same_bits(result.pv.to_numpy(), full.pv.to_numpy()[:300])
    assert result.totals["points"] == 300
    # A dict of columns is the same table.
    as_dict = parfit.project(SAVINGS, model_points={c: subset[c].to_numpy() for c in subset.columns}, progress=False)
    assert same_bits(as_dict.pv.to_numpy(), result.pv.to_numpy())


def test_a_projection_without_monthly_or_audit_has_none_of_them(examples):
    base = examples / "savings"
    config = {
        "projection": {
            "kind": "cashvalue",
            "model_points": str(base / "model_point_samples.csv"),
            "tables": {
                "product_spec": str(base / "product_spec_table.csv"),
                "mortality": str(base / "mort_table.csv"),
                "surrender_charge": str(base / "surr_charge_table.csv"),
                "discount": str(base / "disc_rate_ann.csv"),
                "scenarios": str(base / "std_norm_rand.csv"),
            },
        }
    }
    result = parfit.project(config, progress=False)
    assert result.result_cf is None and result.result_pols is None and result.audit is None
    assert result.totals["config"] == "<config>"


def test_bad_projection_configurations_are_config_errors_located_as_the_cli_says(cli, tmp_path, examples):
    base = examples / "savings"
    text = (base / "run.toml").read_text().replace("audit_point = 1", "audit_point = 999999")
    text = re.sub(r'"([\w.]+\.csv)"', lambda m: f'"{base / m.group(1)}"', text)
    path = tmp_path / "bad-audit-point.toml"
    path.write_text(text)
    with pytest.raises(parfit.ConfigError) as e:
        parfit.project(path, progress=False)
    message = cli("run", path, check=False).stderr
    assert "audit_point: no point has id '999999'" in str(e.value)
    assert str(e.value) in message
    assert f"{path}:" in str(e.value)
    with pytest.raises(parfit.ConfigError, match="unknown field"):
        parfit.project({"projection": {"kind": "cashvalue", "model_points": "x.csv", "colour": 1}})
    with pytest.raises(parfit.ConfigError, match="no_such.csv"):
        parfit.project({"projection": {"kind": "cashvalue", "model_points": str(tmp_path / "no_such.csv")}})


def test_a_bad_thread_count_in_a_projection_configuration_is_located_as_the_cli_locates_it(cli, tmp_path, examples):
    base = examples / "savings"
    text = re.sub(r'"([\w.]+\.csv)"', lambda m: f'"{base / m.group(1)}"', (base / "run.toml").read_text())
    path = tmp_path / "threads.toml"
    path.write_text("threads = 5000\n" + text)
    with pytest.raises(parfit.ConfigError) as e:
        parfit.project(path, progress=False)
    assert str(e.value) == f"{path}:1:11: threads must be from 1 to 1024 (got 5000)"
    assert str(e.value) in cli("run", path, check=False).stderr


def savings_dict(examples, **projection) -> dict:
    """The savings example as a dict, its files named by absolute paths."""
    import tomllib

    base = examples / "savings"
    config = tomllib.loads((base / "run.toml").read_text())
    p = config["projection"]
    p["model_points"] = str(base / p["model_points"])
    p["tables"] = {role: str(base / name) for role, name in p["tables"].items()}
    p.update(projection)
    return config


def test_ctrl_c_stops_a_long_projection_with_nothing_returned(examples):
    # 10,000 points × 10 scenarios: several seconds in this build; the first wave's progress report stops it.
    config = savings_dict(examples, scenarios=list(range(1, 11)), monthly=False)
    calls = []

    def interrupt(done, total):
        calls.append((done, total))
        if done > 0:
            raise KeyboardInterrupt

    result = None
    started = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        result = parfit.project(config, threads=2, progress=interrupt)
    assert result is None
    assert 0 < calls[-1][0] < calls[-1][1] == 10_000
    print(f"projection stopped after {calls[-1][0]} of 10000 points, {time.perf_counter() - started:.2f} s")


def test_projection_result_repr_and_plot():
    result = parfit.project(BASICTERM, progress=False)
    html = result._repr_html_()
    assert "basicterm" in html and "10000" in html
    import matplotlib

    matplotlib.use("Agg")
    ax = result.plot()
    assert len(ax.lines) == 1 and ax.get_xlabel() == "month"


def test_without_pandas_tables_are_dicts_of_arrays(monkeypatch, examples):
    config = savings_dict(examples, model_points=str(examples / "savings" / "model_point_samples.csv"))
    with_pandas = parfit.project(config, progress=False)
    monkeypatch.setattr(parfit._tables, "_pd", None)
    result = parfit.project(config, progress=False)
    assert isinstance(result.pv, dict) and list(result.pv) == ["point_id", *with_pandas.pv.columns]
    assert list(result.pv["point_id"]) == list(with_pandas.pv.index)
    for column in with_pandas.pv.columns:
        assert same_bits(result.pv[column], with_pandas.pv[column])
    assert list(result.result_cf) == ["t", *with_pandas.result_cf.columns]
    assert same_bits(result.result_cf["Net Cashflow"], with_pandas.result_cf["Net Cashflow"])
    import matplotlib

    matplotlib.use("Agg")
    assert result.plot().get_xlabel() == "month"
