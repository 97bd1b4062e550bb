"""numpy's own values for the checks of parfit_core::numpy_rng (numpy_checks.csv beside this file).

Run from the repository root with numpy installed (any numpy >= 1.17; these were made with the lifelib venv's):

    "$(bash bench/peers/lifelib_venv.sh)" crates/parfit-core/src/numpy_rng/numpy_checks.py

Rows (kind, seed, index, value):
- seed_u32: SeedSequence(seed).generate_state(8, uint32), word `index`;
- state_u64: SeedSequence(seed).generate_state(4, uint64) (PCG64's initial state and stream words);
- raw: PCG64(seed).random_raw(), output `index`;
- double: default_rng(seed).random(), draw `index`;
- normal: default_rng(seed).standard_normal(), draw `index` (the first FIRST of each seed's stream);
- tail: a draw of default_rng(seed).standard_normal(TAIL_SCAN) beyond the ziggurat's tail start r (|x| > r,
  which only the tail's fallback returns), at its index in the stream.
Integers are written in decimal, doubles with 17 significant digits (they parse back to the same bits).
"""

import pathlib

import numpy as np

SEEDS = [0, 1, 1234, 2**32 + 5, 2**63 - 1]
FIRST = 300
TAIL_SCAN = 200_000
R = 3.6541528853610087963519472518
OUT = pathlib.Path(__file__).resolve().with_name("numpy_checks.csv")

rows = []
for seed in SEEDS:
    seq = np.random.SeedSequence(seed)
    rows += [("seed_u32", seed, i, str(int(v))) for i, v in enumerate(seq.generate_state(8, np.uint32))]
    rows += [("state_u64", seed, i, str(int(v))) for i, v in enumerate(seq.generate_state(4, np.uint64))]
    rows += [("raw", seed, i, str(int(v))) for i, v in enumerate(np.random.PCG64(seed).random_raw(8))]
    rows += [("double", seed, i, "%.17g" % v) for i, v in enumerate(np.random.default_rng(seed).random(8))]
    rows += [("normal", seed, i, "%.17g" % v) for i, v in enumerate(np.random.default_rng(seed).standard_normal(FIRST))]
    draws = np.random.default_rng(seed).standard_normal(TAIL_SCAN)
    rows += [("tail", seed, int(i), "%.17g" % draws[i]) for i in np.flatnonzero(np.abs(draws) > R)]

with OUT.open("w") as f:
    f.write("kind,seed,index,value\n")
    for kind, seed, i, v in rows:
        f.write(f"{kind},{seed},{i},{v}\n")
print(f"{OUT}: {len(rows)} rows (numpy {np.__version__})")
