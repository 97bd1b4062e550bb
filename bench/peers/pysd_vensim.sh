#!/usr/bin/env bash
# Peer side of `cargo xtask bench`'s Vensim section: PySD 3.14.3 runs the given Vensim models.
#
# Creates (once) a venv in target/peers/pysd-venv with PySD 3.14.3 and the releases it predates (pandas 3
# breaks it), then runs bench/peers/pysd_vensim.py. Idempotent: a venv with these versions is reused.
#
# Usage: bash bench/peers/pysd_vensim.sh MODEL.mdl…   (prints a JSON array, one object per model)
# Needs: python3 (>= 3.9) with venv, PyPI reachable on the first run. Never a dependency of parfit's tests.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PEERS="$ROOT/target/peers"
VENV="$PEERS/pysd-venv"
PY="$VENV/bin/python"
PINS=("pysd==3.14.3" "numpy==2.2.6" "pandas==2.2.3" "xarray==2025.3.1" "scipy==1.15.3" "openpyxl==3.1.5")

mkdir -p "$PEERS"
if [ ! -x "$PY" ]; then
    python3 -m venv "$VENV"
    "$PY" -m pip install -q --upgrade pip
fi
if ! "$PY" - "${PINS[@]}" <<'PYCODE'
import importlib.metadata as m, sys
sys.exit(any(m.version(p.split("==")[0]) != p.split("==")[1] for p in sys.argv[1:]))
PYCODE
then
    echo "pysd_vensim.sh: installing ${PINS[*]} into $VENV" >&2
    "$PY" -m pip install -q "${PINS[@]}" >&2
fi

exec "$PY" "$ROOT/bench/peers/pysd_vensim.py" "$@"
