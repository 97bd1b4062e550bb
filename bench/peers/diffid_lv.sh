#!/usr/bin/env bash
# Peer benchmark: diffid 0.3.0 on the Lotka–Volterra fit of diffid's "Parallel Optimisation" tutorial.
#
# Creates (once) a venv in target/peers/diffid-venv, builds diffid 0.3.0 from its sdist with the Cranelift
# backend (its default backend needs LLVM 18, which Debian here lacks), then runs bench/peers/diffid_lv.py.
# Idempotent: an existing working install is reused. The first build takes ≈ 8 minutes on 2 cores.
#
# Usage: bash bench/peers/diffid_lv.sh [data.csv] [--reps N]   (arguments are passed to diffid_lv.py)
# Needs: python3 (>= 3.11) with venv, a Rust toolchain (cargo) on PATH, PyPI reachable.
# Never a dependency of parfit's tests.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PEERS="$ROOT/target/peers"
VENV="$PEERS/diffid-venv"
SRC="$PEERS/diffid-src"
VERSION="0.3.0"
PY="$VENV/bin/python"

mkdir -p "$PEERS"

if [ ! -x "$PY" ]; then
    python3 -m venv "$VENV"
    "$PY" -m pip install -q --upgrade pip
fi

installed="$("$PY" -c 'import importlib.metadata as m; print(m.version("diffid"))' 2>/dev/null || true)"
if [ "$installed" != "$VERSION" ] || ! "$PY" -c 'import diffid' >/dev/null 2>&1; then
    echo "diffid_lv.sh: building diffid $VERSION from source (Cranelift backend); this takes several minutes" >&2
    mkdir -p "$SRC"
    tarball="$SRC/diffid-$VERSION.tar.gz"
    if [ ! -f "$tarball" ]; then
        "$PY" -m pip download "diffid==$VERSION" --no-deps --no-binary :all: -d "$SRC"
    fi
    rm -rf "$SRC/diffid-$VERSION"
    tar xzf "$tarball" -C "$SRC"
    manifest="$SRC/diffid-$VERSION/python/Cargo.toml"
    # On non-Windows targets the Python crate takes the core with its default (LLVM 18) backend. Make it use
    # Cranelift, as the Windows target already does.
    sed -i 's|^diffid_core = { package = "diffid", path = "../rust" }$|diffid_core = { package = "diffid", path = "../rust", default-features = false, features = ["cranelift-backend"] }|' "$manifest"
    if grep -q '^diffid_core = { package = "diffid", path = "../rust" }$' "$manifest" \
        || [ "$(grep -c 'features = \["cranelift-backend"\]' "$manifest")" -lt 2 ]; then
        echo "diffid_lv.sh: could not patch $manifest" >&2
        exit 1
    fi
    # Keep cargo's build directory outside the unpacked source so a rebuild reuses it.
    CARGO_TARGET_DIR="$PEERS/diffid-cargo-target" "$PY" -m pip install "$SRC/diffid-$VERSION"
fi

# scipy is not needed by diffid_lv.py; numpy comes with diffid.
exec "$PY" "$ROOT/bench/peers/diffid_lv.py" "$@"
