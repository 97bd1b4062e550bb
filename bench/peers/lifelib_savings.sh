#!/usr/bin/env bash
# Peer benchmark: lifelib 0.17.2 (modelx 0.33.0) savings model CashValue_ME, result_pv() over a model point table.
#
# Creates (once) a venv in target/peers/lifelib-venv with lifelib, modelx, numpy, pandas and openpyxl, then runs
# bench/peers/lifelib_savings.py. Idempotent: a venv where `import lifelib, modelx, pandas` works is reused.
#
# Usage: bash bench/peers/lifelib_savings.sh [--points FILE] [--reps N]
# Needs: python3 (>= 3.9) with venv, PyPI reachable on the first run. Never a dependency of parfit's tests.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PEERS="$ROOT/target/peers"
VENV="$PEERS/lifelib-venv"
PY="$VENV/bin/python"

mkdir -p "$PEERS"
if [ ! -x "$PY" ]; then
    python3 -m venv "$VENV"
    "$PY" -m pip install -q --upgrade pip
fi
if ! "$PY" -c 'import lifelib, modelx, pandas, openpyxl' >/dev/null 2>&1; then
    echo "lifelib_savings.sh: installing lifelib 0.17.2 and modelx 0.33.0 into $VENV" >&2
    "$PY" -m pip install -q "lifelib==0.17.2" "modelx==0.33.0" numpy pandas openpyxl
fi
exec "$PY" "$ROOT/bench/peers/lifelib_savings.py" "$@"
