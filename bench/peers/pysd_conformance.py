"""PySD's outputs for the conformance test's models, so that `tests/conformance.rs` can hold PySD to the same
references and tolerance (its ignored test `pysd_on_the_same_references`).

Usage: python pysd_conformance.py CORPUS OUT   (CORPUS: plugins/vensim/tests/test-models)
Writes OUT/<model path>.tab (Time and every variable PySD returns, at PySD's saved times) or
OUT/<model path>.error (why PySD could not run the model), for every model with a Vensim reference.
"""

import glob
import os
import shutil
import sys
import tempfile
import warnings

import pysd

warnings.filterwarnings("ignore")
corpus, out = sys.argv[1], sys.argv[2]
models = sorted(
    os.path.relpath(m, corpus)
    for m in glob.glob(os.path.join(corpus, "*", "*", "*"))
    if m.lower().endswith(".mdl")
    and any(os.path.exists(os.path.join(os.path.dirname(m), r)) for r in ("output.tab", "output.csv"))
)
with tempfile.TemporaryDirectory() as scratch:
    for k, model in enumerate(models):
        # PySD writes its translation beside the model: translate a copy of the model's directory.
        copy = os.path.join(scratch, str(k))
        shutil.copytree(os.path.join(corpus, os.path.dirname(model)), copy)
        target = os.path.join(out, model)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        try:
            # Other Vensim outputs beside the model give its data variables (as conformance.rs does).
            tabs = sorted(f for f in os.listdir(copy) if f.lower().endswith(".tab") and f != "output.tab")
            data_files = [os.path.join(copy, f) for f in tabs] or None
            run = pysd.read_vensim(os.path.join(copy, os.path.basename(model)), data_files=data_files).run()
            run.index.name = "Time"
            run.to_csv(target + ".tab", sep="\t", float_format="%.17g")
        except Exception as e:  # noqa: BLE001 - a model PySD cannot run is recorded, not fatal
            with open(target + ".error", "w") as f:
                f.write(f"{type(e).__name__}: {e}".splitlines()[0][:300] if str(e) else type(e).__name__)
        print(f"{k + 1}/{len(models)} {model}", file=sys.stderr)
