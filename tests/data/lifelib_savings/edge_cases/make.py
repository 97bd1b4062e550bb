"""Make result_pv.csv: lifelib 0.17.2 CashValue_ME's result_pv() (scenario 1) for model_points.csv, whose points
exercise lifelib's edge cases: future new business (duration_mth < 0, points 1 and 2), points past maturity
(duration_mth > 12 x policy_term, points 3 and 5: never matured, projected over the whole horizon), a point in
force with an account value (4), and a whole-life point at age 20 that sets the horizon (6).

Run with lifelib 0.17.2, modelx 0.33.0, numpy and pandas installed (e.g. bash bench/peers/lifelib_savings.sh
makes such a venv): python make.py
"""
import os
import pathlib
import tempfile

import lifelib
import modelx as mx
import pandas as pd

here = pathlib.Path(__file__).resolve().parent
with tempfile.TemporaryDirectory() as tmp:
    lifelib.create("savings", os.path.join(tmp, "savings"))
    model = mx.read_model(os.path.join(tmp, "savings", "CashValue_ME"))
    points = pd.read_csv(here / "model_points.csv", index_col=0)
    model.Projection.model_point_table = points
    result = model.Projection.result_pv()
    result.index.name = "point_id"
    result.to_csv(here / "result_pv.csv", float_format="%.17g")
    print(result)
