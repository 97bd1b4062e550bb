"""parfit.minimise: a Python function through the engine's optimisers reaches the point `parfit fit` reaches on
the same problem written as a model file, in the same number of evaluations; batches, failures, errors and
settings."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

import parfit

# Rosenbrock's function as least squares: residuals 10 (y - x²) and 1 - x, observed at zero, so the SSE the CLI
# minimises is 100 (y - x²)² + (1 - x)², summed in the same order as `rosenbrock` below.
MODEL = """\
in_i { x = -1.2, y = 1.0 }
r1 { 10 * (y - x * x) }
r2 { 1 - x }
u_i { z = 0 }
F_i { 0 }
out_i { r1, r2 }
"""

CONFIG = """\
seed = {seed}

[model]
kind = "diffsl"
source = "rosenbrock.ds"

[data]
path = "zero.csv"
outputs = ["r1", "r2"]

[parameters]
x = {{ start = -1.2, lower = -5.0, upper = 5.0 }}
y = {{ start = 1.0, lower = -5.0, upper = 5.0 }}

[fit]
algorithm = "{algorithm}"
"""

X0 = [-1.2, 1.0]
BOUNDS = [(-5.0, 5.0), (-5.0, 5.0)]


def rosenbrock(p):
    x, y = p
    r1 = 10 * (y - x * x)
    r2 = 1 - x
    return r1 * r1 + r2 * r2


def cli_fit(cli_json, tmp_path, algorithm, seed):
    (tmp_path / "rosenbrock.ds").write_text(MODEL)
    (tmp_path / "zero.csv").write_text("t,r1,r2\n0,0,0\n")
    config = tmp_path / f"{algorithm}.toml"
    config.write_text(CONFIG.format(seed=seed, algorithm=algorithm))
    return cli_json("fit", config)


def same_bits(a, b) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and np.array_equal(a.view(np.uint64), b.view(np.uint64))


@pytest.mark.parametrize("algorithm", ["cmaes", "nelder_mead", "differential_evolution", "lbfgsb"])
def test_a_python_function_reaches_what_parfit_fit_reaches_on_the_model_file(cli_json, tmp_path, algorithm):
    fitted = cli_fit(cli_json, tmp_path, algorithm, seed=3)
    result = parfit.minimise(rosenbrock, X0, BOUNDS, algorithm=algorithm, seed=3, progress=False)
    assert same_bits(result.x, [fitted["x"]["x"], fitted["x"]["y"]]), (result.x, fitted["x"])
    assert same_bits(result.value, fitted["value"])
    assert result.evaluations == fitted["evaluations"]
    assert result.iterations == fitted["iterations"]
    assert result.termination == fitted["termination"]
    if algorithm != "lbfgsb":  # L-BFGS-B stops on its own relative reduction, before 1e-6 of the minimum
        np.testing.assert_allclose(result.x, [1.0, 1.0], atol=1e-6)


def test_the_vectorised_function_gets_whole_batches_in_the_order_the_scalar_one_gets_points():
    points = []

    def scalar(x):
        points.append(x.copy())
        return rosenbrock(x)

    batches = []

    def vectorised(batch):
        assert batch.ndim == 2 and batch.dtype == np.float64
        batches.append(batch.copy())
        return np.array([rosenbrock(row) for row in batch])

    one = parfit.minimise(scalar, X0, BOUNDS, seed=5, progress=False)
    many = parfit.minimise(vectorised, X0, BOUNDS, seed=5, vectorised=True, progress=False)
    assert same_bits(one.x, many.x) and one.value == many.value and one.evaluations == many.evaluations
    # CMA-ES in 2-D: a population of 4 + ⌊3 ln 2⌋ = 6 per generation, one call per generation.
    assert {b.shape for b in batches} == {(6, 2)}
    assert len(batches) == many.iterations and 6 * len(batches) == many.evaluations
    assert same_bits(np.concatenate(batches), np.array(points))


def test_nelder_mead_batches_add_up_to_the_evaluations():
    sizes = []

    def vectorised(batch):
        sizes.append(len(batch))
        return [rosenbrock(row) for row in batch]

    result = parfit.minimise(vectorised, X0, BOUNDS, algorithm="nelder_mead", vectorised=True, progress=False)
    assert sizes[0] == 3  # the initial simplex, one batch
    assert sum(sizes) == result.evaluations


def test_an_exception_from_f_stops_the_run_and_is_raised():
    calls = []
    failure = ValueError("the model blew up")

    def f(x):
        calls.append(1)
        if len(calls) == 10:
            raise failure
        return rosenbrock(x)

    with pytest.raises(ValueError) as raised:
        parfit.minimise(f, X0, BOUNDS, progress=False)
    assert raised.value is failure
    assert len(calls) == 10, "nothing is evaluated after the exception"

    def vectorised(batch):
        raise KeyError("batch")

    with pytest.raises(KeyError, match="batch"):
        parfit.minimise(vectorised, X0, BOUNDS, vectorised=True, progress=False)


def test_a_vectorised_function_must_give_one_value_per_row():
    with pytest.raises(parfit.ConfigError, match=r"one value per row: got shape \(2,\) for a batch of shape \(6, 2\)"):
        parfit.minimise(lambda batch: np.zeros(2), X0, BOUNDS, vectorised=True, progress=False)


def test_non_finite_values_are_failures():
    # NaN and infinities on half the box: the optimiser treats them as worse than anything, and still finds the
    # minimum in the other half.
    def f(p):
        if p[0] < 0:
            return np.nan if p[1] < 1 else -np.inf
        return rosenbrock(p)

    result = parfit.minimise(f, [0.5, 0.5], BOUNDS, seed=1, progress=False)
    np.testing.assert_allclose(result.x, [1.0, 1.0], atol=1e-6)
    assert np.isfinite(result.value)
    # The history never records a failure as a best value.
    assert np.all(np.isfinite(np.asarray(result.history["best_value"])))

    with pytest.raises(parfit.RunError, match="every candidate failed to evaluate"):
        parfit.minimise(lambda p: np.nan, X0, BOUNDS, progress=False)


def test_bounds_and_start_are_checked():
    with pytest.raises(parfit.ConfigError, match="bounds: 1 pairs given for 2 coordinates"):
        parfit.minimise(rosenbrock, X0, [(-5, 5)], progress=False)
    with pytest.raises(parfit.ConfigError, match=r"bounds\[1\]: \(2.0, 1.0\) is no interval"):
        parfit.minimise(rosenbrock, X0, [(-5, 5), (2, 1)], progress=False)
    with pytest.raises(parfit.ConfigError, match=r"bounds\[0\]: \(NaN, 5.0\) is no interval"):
        parfit.minimise(rosenbrock, X0, [(np.nan, 5), (-5, 5)], progress=False)
    with pytest.raises(parfit.ConfigError, match=r"x0\[0\] = -1.2 lies outside its bounds \(0.0, 5.0\)"):
        parfit.minimise(rosenbrock, X0, [(0, 5), (-5, 5)], progress=False)
    with pytest.raises(parfit.ConfigError, match=r"x0\[1\] must be a finite number \(got inf\)"):
        parfit.minimise(rosenbrock, [0.0, np.inf], progress=False)
    with pytest.raises(parfit.ConfigError, match=r"bounds\[0\]: expected a pair"):
        parfit.minimise(rosenbrock, X0, [5, 5], progress=False)
    # None leaves a side open.
    result = parfit.minimise(rosenbrock, X0, [(None, 5), (-5, None)], algorithm="nelder_mead", progress=False)
    np.testing.assert_allclose(result.x, [1.0, 1.0], atol=1e-6)


def test_settings_are_the_configurations_keys():
    with pytest.raises(parfit.ConfigError, match=r"\[fit\.cmaes\] sigma0 must be"):
        parfit.minimise(rosenbrock, X0, BOUNDS, options={"sigma0": -1.0}, progress=False)
    with pytest.raises(parfit.ConfigError, match=r"options of nelder_mead: unknown field `sigma0`"):
        parfit.minimise(rosenbrock, X0, BOUNDS, algorithm="nelder_mead", options={"sigma0": 1.0}, progress=False)
    with pytest.raises(parfit.ConfigError, match=r"algorithm: unknown variant `bfgs`"):
        parfit.minimise(rosenbrock, X0, BOUNDS, algorithm="bfgs", progress=False)
    with pytest.raises(parfit.ConfigError, match="levenberg_marquardt minimises a sum of squared residuals"):
        parfit.minimise(rosenbrock, X0, BOUNDS, algorithm="levenberg_marquardt", progress=False)
    with pytest.raises(parfit.ConfigError, match=r"options: max_iterations must be at least 1 \(got 0\)"):
        parfit.minimise(rosenbrock, X0, BOUNDS, options={"max_iterations": 0}, progress=False)

    # A smaller population: more, smaller batches.
    sizes = []

    def vectorised(batch):
        sizes.append(len(batch))
        return [rosenbrock(row) for row in batch]

    parfit.minimise(vectorised, X0, BOUNDS, options={"population": 10}, vectorised=True, progress=False)
    assert set(sizes) == {10}

    # The stopping rules: a budget of evaluations (whole batches only), and [fit] rules among the options.
    capped = parfit.minimise(rosenbrock, X0, BOUNDS, max_evaluations=50, progress=False)
    assert capped.termination == "max_evaluations" and capped.evaluations == 48
    short = parfit.minimise(rosenbrock, X0, BOUNDS, options={"max_iterations": 3}, progress=False)
    assert (short.termination, short.iterations, short.evaluations) == ("max_iterations", 3, 18)
    with pytest.raises(parfit.ConfigError, match="max_evaluations is given twice"):
        parfit.minimise(rosenbrock, X0, BOUNDS, options={"max_evaluations": 5}, max_evaluations=5, progress=False)


def test_the_seed_decides_the_run_and_threads_do_not():
    a = parfit.minimise(rosenbrock, X0, BOUNDS, seed=11, threads=1, progress=False)
    b = parfit.minimise(rosenbrock, X0, BOUNDS, seed=11, threads=2, progress=False)
    c = parfit.minimise(rosenbrock, X0, BOUNDS, seed=12, progress=False)
    assert same_bits(a.x, b.x) and a.evaluations == b.evaluations
    assert not same_bits(a.x, c.x)


def test_result_history_and_progress():
    reports = []
    result = parfit.minimise(
        rosenbrock, X0, BOUNDS, options={"max_iterations": 40}, progress=lambda done, total: reports.append((done, total))
    )
    assert reports and reports[-1] == (40, 40)
    history = result.history
    assert list(history.columns) == ["iteration", "evaluations", "best_value", "x0", "x1"]
    assert len(history) == result.iterations == 40
    assert history["evaluations"].iloc[-1] == result.evaluations
    assert history["best_value"].iloc[-1] == result.value
    assert same_bits(history[["x0", "x1"]].iloc[-1].to_numpy(), result.x)
    assert np.all(np.diff(history["best_value"].to_numpy()) <= 0)
    html = result._repr_html_()
    assert "parfit.minimise" in html and "cmaes" in html and "max iterations" in html
    assert "MinimiseResult(x=" in repr(result)


def test_ctrl_c_stops_the_run_with_keyboard_interrupt():
    # SIGINT arrives while f runs on the engine's thread; the waiting thread turns it into a stop, the run ends
    # after the batch in hand, and minimise raises KeyboardInterrupt.
    calls = []

    def f(x):
        calls.append(1)
        if len(calls) == 30:
            os.kill(os.getpid(), signal.SIGINT)
        if len(calls) > 30:
            time.sleep(0.002)
        return rosenbrock(x)

    with pytest.raises(KeyboardInterrupt):
        parfit.minimise(f, X0, BOUNDS, options={"ftol": 0.0, "xtol": 0.0}, max_evaluations=100_000, progress=False)
    # Within a 50 ms wait of the signal, plus the batch under way (6 candidates of 2 ms).
    assert 30 <= len(calls) < 30 + 100, len(calls)


def test_without_pandas_the_history_is_a_dict_of_arrays(monkeypatch):
    monkeypatch.setattr(parfit._tables, "_pd", None)
    result = parfit.minimise(rosenbrock, X0, BOUNDS, options={"max_iterations": 5}, progress=False)
    history = result.history
    assert isinstance(history, dict) and list(history) == ["iteration", "evaluations", "best_value", "x0", "x1"]
    assert history["iteration"].tolist() == [1, 2, 3, 4, 5]
    assert history["best_value"][-1] == result.value
