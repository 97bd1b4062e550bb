"""Time PySD's run of each Vensim model given: translation once, then `model.run()` (every variable on the
saved times, Vensim's output) repeated; prints a JSON array, one object per model, times in microseconds."""

import json
import os
import shutil
import sys
import tempfile
import time
import warnings

import pysd

warnings.filterwarnings("ignore")


def time_model(path, scratch):
    # PySD writes its translation beside the model: translate a copy of the model's directory.
    copy = os.path.join(scratch, str(len(os.listdir(scratch))))
    shutil.copytree(os.path.dirname(os.path.abspath(path)), copy)
    start = time.perf_counter()
    try:
        model = pysd.read_vensim(os.path.join(copy, os.path.basename(path)))
        translate_us = (time.perf_counter() - start) * 1e6
        model.run()  # warm up (and the first run's one-off work)
    except Exception as e:  # noqa: BLE001 - a model PySD cannot run is reported, not fatal
        return {"model": path, "error": f"{type(e).__name__}: {e}".splitlines()[0][:300]}
    runs = []
    budget = time.perf_counter() + 2.0
    while len(runs) < 3 or (time.perf_counter() < budget and len(runs) < 50):
        start = time.perf_counter()
        model.run()
        runs.append((time.perf_counter() - start) * 1e6)
    runs.sort()
    return {"model": path, "translate_us": translate_us, "runs": len(runs), "best_us": runs[0],
            "median_us": runs[len(runs) // 2], "pysd": pysd.__version__}


with tempfile.TemporaryDirectory() as scratch:
    print(json.dumps([time_model(p, scratch) for p in sys.argv[1:]], indent=1))
