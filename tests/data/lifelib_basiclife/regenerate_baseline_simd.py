"""Regenerate lifelib's BasicTerm_ME result_pv with numpy's baseline (pre-AVX-512) SIMD kernels.

numpy's AVX-512 `power` is one ulp off the correctly rounded (1 - q)^(1/12) in 52 of the 618 mortality-table
entries; with those kernels switched off numpy calls libm's `pow`, as parfit does. Run with lifelib 0.17.2 and
modelx 0.33.0 installed (e.g. target/peers/lifelib-venv, made by bench/peers/lifelib_savings.sh):

    python tests/data/lifelib_basiclife/regenerate_baseline_simd.py

Writes basicterm_me_result_pv_baseline_simd.csv.gz and _totals.csv next to this script.
"""
import os
import sys
import tempfile

# Must be set before numpy is imported; numpy refuses to start if it names a feature it does not know.
os.environ["NPY_DISABLE_CPU_FEATURES"] = "X86_V4 AVX512_ICL"

import lifelib  # noqa: E402
import modelx as mx  # noqa: E402
import numpy as np  # noqa: E402

found = np._core._multiarray_umath.__cpu_features__
assert not any(found.get(f) for f in ("X86_V4", "AVX512_SKX", "AVX512_ICL")), "numpy still dispatches to AVX-512"

here = os.path.dirname(os.path.abspath(__file__))
with tempfile.TemporaryDirectory() as tmp:
    lifelib.create("basiclife", os.path.join(tmp, "lib"))
    model = mx.read_model(os.path.join(tmp, "lib", "BasicTerm_ME"))
    pv = model.Projection.result_pv()
    pv.index.name = "policy_id"
    stem = os.path.join(here, "basicterm_me_result_pv_baseline_simd")
    pv.to_csv(stem + ".csv.gz", float_format="%.17g")
    pv.sum().to_frame("total").to_csv(stem + "_totals.csv", float_format="%.17g")
print(f"wrote {pv.shape[0]} rows", file=sys.stderr)
