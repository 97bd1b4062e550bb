#!/usr/bin/env bash
# Peer side of `cargo xtask bench --peers`: pycma, scipy, dynesty and pydiffsol on the problems of bench/suite.json.
#
# Creates (once) a venv in target/peers/bench-venv with the pinned versions below (all install from wheels), then
# runs bench/peers/suite.py. Idempotent: a venv where every package already has its pinned version is reused.
#
# Usage: bash bench/peers/suite.sh SECTION [SUITE.json]   (SECTION: cmaes | lbfgsb | nested | nested_lv | ode)
# Needs: python3 (>= 3.11, for tomllib) with venv, PyPI reachable on the first run. Never a dependency of tests.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PEERS="$ROOT/target/peers"
VENV="$PEERS/bench-venv"
PY="$VENV/bin/python"
PINS=("cma==4.5.0" "dynesty==3.1.0" "pydiffsol==0.6.2" "scipy==1.17.1" "numpy==2.4.6")

mkdir -p "$PEERS"
if [ ! -x "$PY" ]; then
    python3 -m venv "$VENV"
    "$PY" -m pip install -q --upgrade pip
fi

pinned() {
    "$PY" - "${PINS[@]}" <<'PYCODE'
import importlib.metadata as m, sys
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    try:
        if m.version(name) != want:
            sys.exit(1)
    except m.PackageNotFoundError:
        sys.exit(1)
PYCODE
}

if ! pinned; then
    echo "suite.sh: installing ${PINS[*]} into $VENV" >&2
    "$PY" -m pip install -q "${PINS[@]}" >&2
fi

# One BLAS thread: the tools run one process each, and a threaded BLAS on small matrices only adds overhead on
# a shared machine (it would favour no one).
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
exec "$PY" "$ROOT/bench/peers/suite.py" "$@"
