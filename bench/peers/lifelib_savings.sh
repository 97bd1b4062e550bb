#!/usr/bin/env bash
# Peer benchmark: lifelib 0.17.2 (modelx 0.33.0) savings model CashValue_ME, result_pv() over a model point table.
#
# Runs bench/peers/lifelib_savings.py in the venv of bench/peers/lifelib_venv.sh (target/peers/lifelib-venv, made
# on first use).
#
# Usage: bash bench/peers/lifelib_savings.sh [--points FILE] [--reps N]
# Needs: python3 (>= 3.9) with venv, PyPI reachable on the first run. Never a dependency of parfit's tests.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="$(bash "$ROOT/bench/peers/lifelib_venv.sh")"
exec "$PY" "$ROOT/bench/peers/lifelib_savings.py" "$@"
