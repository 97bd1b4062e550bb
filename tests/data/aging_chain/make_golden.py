"""Make the PySD golden trajectories of the cookbook's aging chain for county 1 (state 1, county 1).

Never run by the tests. Needs pysd 3.14.3 (and its numpy/pandas):

    python3 -m venv target/peers/pysd-venv
    target/peers/pysd-venv/bin/pip install pysd==3.14.3
    target/peers/pysd-venv/bin/python tests/data/aging_chain/make_golden.py

Loads `Aging_Chain.mdl` with pysd (translated in a temporary directory, so nothing is written here), starts
the nine stocks from county 1's 2000 counts in `census_county1.csv`, sets all nine loss rates to 0.05, runs
PySD's Euler integration (TIME STEP 0.125 from the file) and writes two files with `%.17g` values (exact
doubles): `aging_chain_golden_county1.csv` (yearly rows 2000..2010) and `..._allsteps.csv` (every step).
"""

import csv
import pathlib
import shutil
import tempfile

import numpy as np
import pysd

HERE = pathlib.Path(__file__).resolve().parent
STOCKS = [f"dec {k}" for k in range(1, 10)]


def county1_2000():
    """The 2000 counts of dec_1..dec_9 for state 1, county 1 from the census extract (3 header rows)."""
    with open(HERE / "census_county1.csv", newline="") as f:
        rows = list(csv.reader(f))
    years, decades, ids = rows[0], rows[1], rows[2]
    assert ids[:2] == ["state", "county"], ids
    row = next(r for r in rows[3:] if float(r[0]) == 1 and float(r[1]) == 1)
    column = {(y, d): i for i, (y, d) in enumerate(zip(years, decades))}
    return {f"dec {k}": float(row[column[("2000", f"dec_{k}")]]) for k in range(1, 10)}


def run(model, initial, timestamps):
    params = {f"dec {k} loss rate": 0.05 for k in range(1, 10)}
    return model.run(params=params, initial_condition=(2000, initial), return_columns=STOCKS,
                     return_timestamps=timestamps)


def write(frame, path):
    with open(path, "w", newline="") as f:
        f.write("time," + ",".join(s.replace(" ", "_") for s in STOCKS) + "\n")
        for t, row in frame.iterrows():
            f.write(",".join("%.17g" % v for v in [t, *row[STOCKS]]) + "\n")


def main():
    initial = county1_2000()
    with tempfile.TemporaryDirectory() as tmp:
        mdl = pathlib.Path(tmp) / "Aging_Chain.mdl"
        shutil.copy(HERE / "Aging_Chain.mdl", mdl)
        model = pysd.read_vensim(str(mdl))
        yearly = run(model, initial, np.arange(2000, 2011))
        model = pysd.read_vensim(str(mdl))
        allsteps = run(model, initial, np.arange(81) * 0.125 + 2000)
    write(yearly, HERE / "aging_chain_golden_county1.csv")
    write(allsteps, HERE / "aging_chain_golden_county1_allsteps.csv")
    print(f"pysd {pysd.__version__}: wrote {len(yearly)} yearly rows and {len(allsteps)} steps from {initial}")


if __name__ == "__main__":
    main()
