"""Shared fixtures: the repository root, the CLI of the same build (PARFIT_CLI, set by `cargo xtask test`) and
a runner that returns its JSON output, so tests compare Python's numbers with the CLI's."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]


@pytest.fixture
def root() -> pathlib.Path:
    return ROOT


@pytest.fixture
def examples() -> pathlib.Path:
    return ROOT / "examples"


def _cli_path() -> str:
    cli = os.environ.get("PARFIT_CLI")
    if not cli:
        pytest.fail("PARFIT_CLI is not set: run the suite with `cargo xtask test-python`")
    return cli


@pytest.fixture
def cli():
    """Run the parfit CLI with the given arguments; returns the completed process (output as text)."""

    def run(*args, check=True):
        proc = subprocess.run([_cli_path(), *map(str, args)], capture_output=True, text=True, cwd=ROOT)
        if check and proc.returncode != 0:
            raise AssertionError(f"parfit {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    return run


@pytest.fixture
def cli_json(cli):
    """Run the CLI with `--format json` and parse what it prints."""

    def run(*args):
        return json.loads(cli(*args, "--format", "json").stdout)

    return run
