"""parfit.fit_many against `parfit fit-many` of the same build: the county fit (all 3,137 counties) gives
results.csv cell for cell, the checkpoint is the CLI's (a run interrupted from Python, by a progress callback or
a real SIGINT, resumes to the uninterrupted table), and bad input is a ConfigError with the CLI's message."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

import parfit

N_COUNTIES = 3137


def counties(examples):
    return examples / "counties" / "fit.toml"


@pytest.fixture(scope="module")
def cli_counties(tmp_path_factory):
    """The CLI's county fit on 2 threads: its output directory (results.csv, summary.json, checkpoint.jsonl)."""
    from conftest import ROOT

    out = tmp_path_factory.mktemp("counties-cli")
    cli = os.environ.get("PARFIT_CLI")
    if not cli:
        pytest.fail("PARFIT_CLI is not set: run the suite with `cargo xtask test-python`")
    subprocess.run(
        [cli, "fit-many", str(ROOT / "examples/counties/fit.toml"), "--threads", "2", "--output", str(out)],
        check=True,
        capture_output=True,
    )
    return out


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def assert_table_is_the_csv(table, path):
    """Every cell of `table` is the CSV's cell at the same place: numbers bit for bit (their shortest round-trip
    text), texts equal, an empty cell NaN."""
    rows = read_rows(path)
    header, body = rows[0], rows[1:]
    assert list(table.columns) == header
    assert len(table) == len(body)
    for j, name in enumerate(header):
        column = table[name].tolist()
        for i, value in enumerate(column):
            cell = body[i][j]
            if cell == "":
                assert isinstance(value, float) and np.isnan(value), (i, name, value)
            elif isinstance(value, float):
                assert float(cell).hex() == value.hex(), (i, name, cell, value)
            else:
                assert str(value) == cell, (i, name, cell, value)


def test_the_county_fit_is_the_clis_results_table_cell_for_cell(examples, cli_counties, tmp_path):
    result = parfit.fit_many(counties(examples), threads=2, output=tmp_path, progress=False)
    assert (result.cases, result.failed, result.fitted, result.resumed) == (N_COUNTIES, 0, N_COUNTIES, 0)
    assert result.output == os.fspath(tmp_path)
    assert result.parameters == [f"dec {k} loss rate" for k in range(1, 10)]
    table = result.table
    assert list(table.columns[:2]) == ["state", "county"] and len(table) == N_COUNTIES
    assert_table_is_the_csv(table, cli_counties / "results.csv")
    # The files written are the CLI's, byte for byte; the checkpoint has the CLI's fingerprint and records.
    assert (tmp_path / "results.csv").read_bytes() == (cli_counties / "results.csv").read_bytes()
    assert (tmp_path / "summary.json").read_bytes() == (cli_counties / "summary.json").read_bytes()
    assert result.summary == json.loads((cli_counties / "summary.json").read_text())
    ours = (tmp_path / "checkpoint.jsonl").read_text().splitlines()
    theirs = (cli_counties / "checkpoint.jsonl").read_text().splitlines()
    assert ours[0] == theirs[0] and len(ours) == N_COUNTIES + 1
    assert sorted(ours[1:]) == sorted(theirs[1:])


def test_thread_counts_give_identical_tables(examples, tmp_path):
    one = parfit.fit_many(counties(examples), threads=1, output=tmp_path / "one", progress=False)
    two = parfit.fit_many(counties(examples), threads=2, output=tmp_path / "two", progress=False)
    pd.testing.assert_frame_equal(one.table, two.table, check_exact=True)
    assert (tmp_path / "one/results.csv").read_bytes() == (tmp_path / "two/results.csv").read_bytes()


def config_as_dict(path):
    """examples/counties/fit.toml written as a dict, as a notebook would, with its file names made absolute (a
    dict's names resolve against the working directory) and no [output]."""
    here = path.parent
    decades = range(1, 10)
    return {
        "seed": 0,
        "model": {"kind": "vensim", "source": here / "Aging_Chain.mdl"},
        "cases": {
            "path": here / "Males_by_decade_and_county.csv",
            "header_rows": 3,
            "id": ["state", "county"],
            "inputs": {f"dec {k}": f"2000 dec_{k}" for k in decades},
            "observe": [{"time": 2010.0, "columns": {f"dec {k}": f"2010 dec_{k}" for k in decades if k > 1}}],
        },
        "parameters": {"births": {"fixed": 0.0}, **{f"dec {k} loss rate": {"start": 0.05} for k in decades}},
        "fit": {
            "cost": "sse",
            "algorithm": "levenberg_marquardt",
            "max_evaluations": 20000,
            "ftol": 1e-10,
            "xtol": 1e-10,
        },
    }


def test_a_dict_config_fits_as_its_file_and_writes_nothing_without_an_output(
    examples, cli_counties, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # a dict's [output] would resolve here; it has none
    result = parfit.fit_many(config_as_dict(counties(examples)), threads=2, progress=False)
    assert result.output is None and list(tmp_path.iterdir()) == []
    assert_table_is_the_csv(result.table, cli_counties / "results.csv")


def county_subset(examples, rows):
    """The first `rows` counties as a one-header table (columns named as the three-row header names them)."""
    header_rows = read_rows(examples / "counties" / "Males_by_decade_and_county.csv")
    names = [" ".join(c for c in cells if c) for cells in zip(*header_rows[:3])]
    return names, header_rows[3 : 3 + rows]


def test_cases_as_a_dataframe_fit_as_the_csv(examples, cli, tmp_path):
    names, rows = county_subset(examples, 40)
    with open(tmp_path / "subset.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(names)
        writer.writerows(rows)
    config = counties(examples).read_text()
    config = config.replace('source = "Aging_Chain.mdl"', f'source = "{examples / "counties" / "Aging_Chain.mdl"}"')
    config = config.replace('path = "Males_by_decade_and_county.csv"', 'path = "subset.csv"')
    config = config.replace("header_rows = 3", "header_rows = 1")
    (tmp_path / "subset.toml").write_text(config)
    cli("fit-many", tmp_path / "subset.toml", "--output", tmp_path / "cli")

    frame = pd.read_csv(tmp_path / "subset.csv")
    from_frame = parfit.fit_many(tmp_path / "subset.toml", cases=frame, output=tmp_path / "py", progress=False)
    assert from_frame.cases == 40
    assert_table_is_the_csv(from_frame.table, tmp_path / "cli" / "results.csv")
    assert (tmp_path / "py/results.csv").read_bytes() == (tmp_path / "cli/results.csv").read_bytes()
    arrays = {name: frame[name].to_numpy() for name in frame.columns}
    from_arrays = parfit.fit_many(tmp_path / "subset.toml", cases=arrays, progress=False, output=tmp_path / "py2")
    pd.testing.assert_frame_equal(from_arrays.table, from_frame.table, check_exact=True)


def test_an_interrupted_run_resumes_to_the_uninterrupted_table(examples, cli_counties, tmp_path):
    seen = []

    def stop_after_some(done, total):
        seen.append((done, total))
        if done >= 300:
            raise KeyboardInterrupt("enough")

    with pytest.raises(KeyboardInterrupt) as stopped:
        parfit.fit_many(counties(examples), threads=2, output=tmp_path, progress=stop_after_some)
    message = str(stopped.value)
    saved = int(message.split("interrupted: ")[1].split(" of ")[0])
    assert 300 <= saved < N_COUNTIES, message
    assert f"of {N_COUNTIES} cases are done and saved in {tmp_path / 'checkpoint.jsonl'}" in message
    assert "resume=True" in message
    assert all(total == N_COUNTIES for _, total in seen)
    lines = (tmp_path / "checkpoint.jsonl").read_text().splitlines()
    assert len(lines) == saved + 1, "the header and one record per saved case"
    assert not (tmp_path / "results.csv").exists(), "an interrupted run writes no results"

    progress = []
    resumed = parfit.fit_many(
        counties(examples), threads=2, output=tmp_path, resume=True, progress=lambda d, t: progress.append(d)
    )
    assert (resumed.resumed, resumed.fitted) == (saved, N_COUNTIES - saved)
    assert progress[0] >= saved, "progress starts from the cases already saved"
    assert_table_is_the_csv(resumed.table, cli_counties / "results.csv")
    assert (tmp_path / "results.csv").read_bytes() == (cli_counties / "results.csv").read_bytes()


def test_a_checkpoint_the_cli_left_resumes_from_python(examples, cli_counties, tmp_path):
    lines = (cli_counties / "checkpoint.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "checkpoint.jsonl").write_text("".join(lines[:1001]))
    result = parfit.fit_many(counties(examples), threads=2, output=tmp_path, resume=True, progress=False)
    assert (result.resumed, result.fitted) == (1000, N_COUNTIES - 1000)
    assert (tmp_path / "results.csv").read_bytes() == (cli_counties / "results.csv").read_bytes()


def test_ctrl_c_in_a_subprocess_is_a_keyboard_interrupt_that_keeps_the_checkpoint(examples, tmp_path):
    script = textwrap.dedent(
        f"""
        import sys, parfit
        started = []
        def progress(done, total):
            if not started:
                started.append(1)
                print("started", flush=True)
        try:
            parfit.fit_many({str(counties(examples))!r}, threads=1, output={str(tmp_path)!r}, progress=progress)
        except KeyboardInterrupt as e:
            print("interrupted:", e, flush=True)
            sys.exit(0)
        print("finished", flush=True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "started"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert out.startswith("interrupted: interrupted: "), out
    saved = int(out.split("interrupted: ")[2].split(" of ")[0])
    assert saved < N_COUNTIES and "resume=True" in out, out
    lines = (tmp_path / "checkpoint.jsonl").read_text().splitlines()
    assert len(lines) == saved + 1
    assert not (tmp_path / "results.csv").exists()
    # The checkpoint is whole: resuming finishes the run.
    finished = parfit.fit_many(counties(examples), threads=2, output=tmp_path, resume=True, progress=False)
    assert (finished.resumed, finished.cases) == (saved, N_COUNTIES)


def test_resume_without_an_output_directory_is_a_config_error(examples):
    with pytest.raises(parfit.ConfigError, match=r"resume=True .* give output=DIR or \[output\] dir"):
        parfit.fit_many(config_as_dict(counties(examples)), resume=True, progress=False)


def test_an_output_directory_in_use_is_refused(examples, tmp_path):
    import fcntl

    held = os.open(tmp_path, os.O_RDONLY)
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running `parfit fit-many` holds it
        with pytest.raises(parfit.RunError, match="another parfit run is using this output directory"):
            parfit.fit_many(counties(examples), output=tmp_path, progress=False)
        assert not (tmp_path / "checkpoint.jsonl").exists()
    finally:
        os.close(held)
    parfit.fit_many(counties(examples), output=tmp_path, progress=False)
    assert (tmp_path / "results.csv").exists()


def test_a_checkpoint_of_another_run_is_refused_on_resume(examples, cli_counties, tmp_path):
    lines = (cli_counties / "checkpoint.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "checkpoint.jsonl").write_text("".join(lines[:10]))
    with pytest.raises(parfit.ConfigError, match="different configuration.*without resume=True"):
        parfit.fit_many(counties(examples), seed=5, output=tmp_path, resume=True, progress=False)


def write_bad(tmp_path, examples, old, new):
    text = counties(examples).read_text()
    assert old in text
    text = text.replace(old, new)
    text = text.replace('source = "Aging_Chain.mdl"', f'source = "{examples / "counties" / "Aging_Chain.mdl"}"')
    csv_path = examples / "counties" / "Males_by_decade_and_county.csv"
    text = text.replace('path = "Males_by_decade_and_county.csv"', f'path = "{csv_path}"')
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "old, new",
    [
        ('"dec 4" = "2000 dec_4"', '"dec 4" = "2000 dec_40"'),  # no such column
        ("ftol = 1e-10", "ftol = -1e-10"),  # out of range
        ('algorithm = "levenberg_marquardt"', 'algorithm = "gradient"'),  # no such algorithm
        ('"dec 1 loss rate" = { start = 0.05 }', '"dec 1 loss rate" = { start = 0.05, lower = 0.1 }'),
        ("seed = 0", "seed = 0\nthreads = 2000"),  # out of range
    ],
)
def test_a_bad_configuration_is_a_config_error_with_the_clis_message(examples, cli, tmp_path, old, new):
    path = write_bad(tmp_path, examples, old, new)
    proc = cli("fit-many", path, "--output", tmp_path / "cli", check=False)
    assert proc.returncode == 2, proc.stderr
    expected = proc.stderr.strip().removeprefix("error: ")
    with pytest.raises(parfit.ConfigError) as e:
        parfit.fit_many(path, output=tmp_path / "py", progress=False)
    assert str(e.value) == expected
    place = str(e.value).split(": ")[0]
    assert place.startswith(f"{path}:") and all(p.isdigit() for p in place.split(":")[-2:]), str(e.value)


def test_the_result_shows_itself_and_plots(examples, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    result = parfit.fit_many(counties(examples), threads=2, progress=False, output=tmp_path)
    html = result._repr_html_()
    assert "3137" in html and "dec 9 loss rate" in html
    figure = result.plot()
    assert len([ax for ax in figure.axes if ax.get_visible()]) == 9
    assert "FitManyResult(cases=3137" in repr(result)


def test_without_pandas_the_table_is_a_dict_of_the_csvs_columns(examples, cli_counties, monkeypatch, tmp_path):
    monkeypatch.setattr(parfit._tables, "_pd", None)
    result = parfit.fit_many(counties(examples), threads=2, progress=False, output=tmp_path)
    table = result.table
    assert isinstance(table, dict)
    rows = read_rows(cli_counties / "results.csv")
    assert list(table) == rows[0]
    for j, name in enumerate(rows[0]):
        for i, cell in enumerate(r[j] for r in rows[1:]):
            value = table[name][i]
            if cell == "":
                assert np.isnan(value), (i, name)
            elif isinstance(value, str):
                assert value == cell, (i, name)
            else:
                assert float(cell).hex() == float(value).hex(), (i, name)


def test_a_checkpoint_python_left_resumes_with_the_cli(examples, cli, cli_counties, tmp_path):
    def stop(done, total):
        if done >= 200:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        parfit.fit_many(counties(examples), threads=2, output=tmp_path, progress=stop)
    printed = json.loads(
        cli("fit-many", counties(examples), "--output", tmp_path, "--resume", "--format", "json").stdout
    )
    assert 200 <= printed["resumed"] < N_COUNTIES and printed["resumed"] + printed["fitted"] == N_COUNTIES
    assert (tmp_path / "results.csv").read_bytes() == (cli_counties / "results.csv").read_bytes()


def test_starts_set_from_python_are_the_clis_set_flags(examples, cli, tmp_path):
    cli("fit-many", counties(examples), "--set", "dec 1 loss rate=0.1", "--output", tmp_path / "cli")
    lines = (tmp_path / "cli" / "checkpoint.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "py").mkdir()
    (tmp_path / "py" / "checkpoint.jsonl").write_text("".join(lines[:501]))
    # The same starts fingerprint alike, so Python resumes the CLI's run and finishes it identically.
    result = parfit.fit_many(
        counties(examples), set={"dec 1 loss rate": 0.1}, output=tmp_path / "py", resume=True, progress=False
    )
    assert result.resumed == 500
    assert (tmp_path / "py/results.csv").read_bytes() == (tmp_path / "cli/results.csv").read_bytes()
    unset = parfit.fit_many(counties(examples), output=tmp_path / "unset", progress=False)
    assert not unset.table.equals(result.table), "the start moved the fits"
