#!/usr/bin/env bash
# Ranks × threads scaling of the county fits and the 100K-policy projection (BENCHMARKS.md, "MPI ranks").
# Builds the release binary with the mpi feature, then runs each layout REPS times and prints, per layout, the
# median of the job's own reported seconds and of the whole command's wall time (mpirun start-up included).
#   bench/mpi_scaling.sh [REPS]        (needs Open MPI: apt-get install openmpi-bin libopenmpi-dev libclang-dev)
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-3}
target=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet -p parfit-cli --features mpi -p parfit-aging-chain -p parfit-actuarial
bin=$target/release/parfit
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mpi=(mpirun --oversubscribe --allow-run-as-root --bind-to none --mca btl_vader_single_copy_mechanism none)

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# run LABEL RANKS THREADS ARGS…: RANKS 0 means the plain process, no mpirun.
run() {
    local label=$1 ranks=$2 threads=$3
    shift 3
    local job=() wall=()
    for _ in $(seq "$reps"); do
        local start end json
        start=$(date +%s.%N)
        if [ "$ranks" = 0 ]; then
            json=$("$bin" "$@" --threads "$threads" --format json --output "$out/x")
        else
            json=$("${mpi[@]}" -np "$ranks" "$bin" "$@" --threads "$threads" --format json --output "$out/x")
        fi
        end=$(date +%s.%N)
        job+=("$(printf '%s' "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')")
        wall+=("$(echo "$end - $start" | bc -l)")
        rm -rf "$out/x"
    done
    printf '%s\t%s\t%s\t%.3f\t%.3f\n' "$label" "$ranks" "$threads" \
        "$(printf '%s\n' "${job[@]}" | median)" "$(printf '%s\n' "${wall[@]}" | median)"
}

printf 'workload\tranks\tthreads\tjob_s\twall_s\n'
for layout in "0 1" "0 2" "1 1" "1 2" "2 1" "2 2" "3 1"; do
    set -- $layout
    run counties "$1" "$2" fit-many examples/counties/fit.toml
done
for layout in "0 1" "0 2" "1 1" "1 2" "2 1" "2 2" "3 1"; do
    set -- $layout
    run savings-100k "$1" "$2" run examples/savings/run_100k.toml
done
