#!/usr/bin/env bash
# Ranks × threads scaling of the county fits and the 100K-policy projection (BENCHMARKS.md, "MPI ranks").
# Builds the release binary with the mpi feature, runs each layout REPS times and prints the medians of the job's
# own seconds, of the whole command's wall time (mpirun start-up included) and of the CPU seconds of every
# process of the job (user + system: what spreading costs, whatever else the machine runs).
#   bench/mpi_scaling.sh [REPS]        (needs Open MPI: apt-get install openmpi-bin libopenmpi-dev libclang-dev)
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-3}
target=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet -p parfit-cli --features mpi -p parfit-vensim -p parfit-actuarial
bin=$target/release/parfit
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mpi=(mpirun --oversubscribe --allow-run-as-root --bind-to none --mca btl_vader_single_copy_mechanism none)

# measure REPS CMD…: runs CMD (which prints parfit's JSON report) REPS times; prints median job, wall, CPU seconds.
measure() {
    python3 - "$@" <<'PY'
import json, resource, statistics, subprocess, sys, time
reps, cmd = int(sys.argv[1]), sys.argv[2:]
job, wall, cpu = [], [], []
for _ in range(reps):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
    wall.append(time.perf_counter() - start)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    job.append(json.loads(out)["seconds"])
print("\t".join(f"{statistics.median(v):.3f}" for v in (job, wall, cpu)))
PY
}

printf 'workload\tranks\tthreads\tjob_s\twall_s\tcpu_s\n'
for workload in "counties fit-many examples/counties/fit.toml" "savings-100k run examples/savings/run_100k.toml"; do
    set -- $workload
    label=$1
    shift
    for layout in "0 1" "0 2" "1 1" "1 2" "2 1" "2 2" "3 1"; do
        read -r ranks threads <<<"$layout"
        launch=()
        [ "$ranks" = 0 ] || launch=("${mpi[@]}" -np "$ranks")
        printf '%s\t%s\t%s\t' "$label" "$ranks" "$threads"
        measure "$reps" "${launch[@]}" "$bin" "$@" --threads "$threads" --format json --output "$out/x"
        rm -rf "$out/x"
    done
done
