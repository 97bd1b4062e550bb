#!/usr/bin/env bash
# Peer benchmark: PySD 3.14.3 + scipy on the PySD cookbook's "Parallel Model Fitting" recipe (the aging chain
# fitted to US counties with L-BFGS-B), on a sample of counties, serially and with multiprocessing.
#
# Creates (once) a venv in target/peers/pysd-venv with pysd 3.14.3 and scipy, then runs
# bench/peers/pysd_counties.py. Idempotent: a venv where `import pysd, scipy` already works is reused.
#
# Usage: bash bench/peers/pysd_counties.sh [--counties N] [--workers W] [--modes serial,pool]
#        (arguments are passed to pysd_counties.py; default 20 counties, 2 workers, both modes)
# Needs: python3 (>= 3.9) with venv, PyPI reachable on the first run. Never a dependency of parfit's tests.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PEERS="$ROOT/target/peers"
VENV="$PEERS/pysd-venv"
VERSION="3.14.3"
PY="$VENV/bin/python"

mkdir -p "$PEERS"

if [ ! -x "$PY" ]; then
    python3 -m venv "$VENV"
    "$PY" -m pip install -q --upgrade pip
fi

if ! "$PY" -c 'import pysd, scipy' >/dev/null 2>&1; then
    echo "pysd_counties.sh: installing pysd $VERSION and scipy into $VENV" >&2
    "$PY" -m pip install -q "pysd==$VERSION" scipy
fi

installed="$("$PY" -c 'import pysd; print(pysd.__version__)')"
if [ "$installed" != "$VERSION" ]; then
    echo "pysd_counties.sh: note: $VENV has pysd $installed, not $VERSION" >&2
fi

exec "$PY" "$ROOT/bench/peers/pysd_counties.py" "$@"
