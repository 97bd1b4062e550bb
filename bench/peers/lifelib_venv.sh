#!/usr/bin/env bash
# The lifelib venv: target/peers/lifelib-venv with lifelib 0.17.2, modelx 0.33.0, numpy, pandas, openpyxl (the
# models' Excel tables) and scipy (the savings examples import scipy.stats). Creates it on first use, installs
# what is missing, and prints the venv's python.
#
# Used by bench/peers/lifelib_savings.sh, examples/lifelib/make_goldens.py and the scripts of tests/data/lifelib_*.
# Needs: python3 (>= 3.9) with venv, PyPI reachable on the first run. Never a dependency of parfit's tests.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PEERS="$ROOT/target/peers"
VENV="$PEERS/lifelib-venv"
PY="$VENV/bin/python"

mkdir -p "$PEERS"
if [ ! -x "$PY" ]; then
    python3 -m venv "$VENV" >&2
    "$PY" -m pip install -q --upgrade pip >&2
fi
if ! "$PY" -c 'import lifelib, modelx, pandas, openpyxl, scipy' >/dev/null 2>&1; then
    echo "lifelib_venv.sh: installing lifelib 0.17.2 and modelx 0.33.0 into $VENV" >&2
    "$PY" -m pip install -q "lifelib==0.17.2" "modelx==0.33.0" numpy pandas openpyxl scipy >&2
fi
echo "$PY"
