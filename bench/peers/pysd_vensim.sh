#!/usr/bin/env bash
# Peer side of `cargo xtask bench`'s Vensim section: PySD 3.14.3 runs the given Vensim models.
#
# The venv is target/peers/pysd-venv with PySD 3.14.3 and the releases it predates (pandas 3 breaks it), made
# or updated by bench/peers/pysd_venv.sh; then it runs bench/peers/pysd_vensim.py.
#
# Usage: bash bench/peers/pysd_vensim.sh MODEL.mdl…   (prints a JSON array, one object per model)
# Needs: python3 (>= 3.9) with venv, PyPI reachable on the first run. Never a dependency of parfit's tests.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="$(bash "$ROOT/bench/peers/pysd_venv.sh")"

exec "$PY" "$ROOT/bench/peers/pysd_vensim.py" "$@"
