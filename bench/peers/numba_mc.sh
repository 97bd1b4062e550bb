#!/usr/bin/env bash
# Peer benchmark: numba on the QuantEcon "Parallelization" Monte Carlo workloads (household wealth median, π).
#
# Creates (once) a venv in target/peers/numba-venv with numba (and numpy) from PyPI, then runs
# bench/peers/numba_mc.py. Idempotent: an existing working install is reused.
#
# Usage: bash bench/peers/numba_mc.sh [--reps N] [--threads N]   (arguments are passed to numba_mc.py)
# Needs: python3 (>= 3.10) with venv, PyPI reachable. Never a dependency of parfit's tests.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PEERS="${PARFIT_PEERS_DIR:-$ROOT/target/peers}"
VENV="$PEERS/numba-venv"
PY="$VENV/bin/python"

mkdir -p "$PEERS"
if [ ! -x "$PY" ]; then
    python3 -m venv "$VENV"
    "$PY" -m pip install -q --upgrade pip
fi
if ! "$PY" -c 'import numba, numpy' >/dev/null 2>&1; then
    "$PY" -m pip install -q numba
fi
exec "$PY" "$ROOT/bench/peers/numba_mc.py" "$@"
