#!/usr/bin/env bash
# The PySD venv the peer benchmarks share: target/peers/pysd-venv with PySD 3.14.3 and the releases it predates
# (pandas 3 breaks it). Creates it on first use and installs the pins when any differs; prints the venv's python.
#
# Used by bench/peers/pysd_vensim.sh and `cargo xtask bench python` (which installs parfit's wheel into it).
# Needs: python3 (>= 3.9) with venv, PyPI reachable on the first run. Never a dependency of parfit's tests.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PEERS="${CARGO_TARGET_DIR:-$ROOT/target}/peers"
VENV="$PEERS/pysd-venv"
PY="$VENV/bin/python"
PINS=("pysd==3.14.3" "numpy==2.2.6" "pandas==2.2.3" "xarray==2025.3.1" "scipy==1.15.3" "openpyxl==3.1.5")

mkdir -p "$PEERS"
if [ ! -x "$PY" ]; then
    python3 -m venv "$VENV" >&2
    "$PY" -m pip install -q --upgrade pip >&2
fi
if ! "$PY" - "${PINS[@]}" <<'PYCODE'
import importlib.metadata as m, sys
def version(name):
    try:
        return m.version(name)
    except m.PackageNotFoundError:
        return None
sys.exit(any(version(p.split("==")[0]) != p.split("==")[1] for p in sys.argv[1:]))
PYCODE
then
    echo "pysd_venv.sh: installing ${PINS[*]} into $VENV" >&2
    "$PY" -m pip install -q "${PINS[@]}" >&2
fi
echo "$PY"
