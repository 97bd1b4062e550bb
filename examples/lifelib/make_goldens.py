"""Export lifelib's basiclife and savings models as data: their input tables and goldens made by lifelib itself.

Run with lifelib 0.17.2, modelx 0.33.0 and scipy installed (the venv of bench/peers/lifelib_venv.sh), from the
repository root:

    "$(bash bench/peers/lifelib_venv.sh)" examples/lifelib/make_goldens.py [MODEL ...]

Without arguments every model is made. For each model it creates lifelib's library in a temporary directory, reads
the model as shipped (its own model points, tables and references) and writes into examples/lifelib/<model>/:

- the tables the model reads (every PandasData input of the model), as CSV with lifelib's index and column names;
- result_pv (per model point, and per scenario / simulation where the model has them) and its column sums;
- result_cf and result_pols (monthly portfolio vectors) where the model defines them;
- audit_point1.csv.gz: every cell of the model that takes `t` (and, for cells of two parameters, each value the
  formula compares its second parameter with), for model point 1 (scenario 1, simulation 1), month by month;
- for the savings examples EX1, EX2 and EX4, whose draws are too many to commit: the draws' checksum
  (`std_norm_rand_check`; parfit makes the same draws itself, `parfit_core::numpy_rng`, and checks them against
  it);
- manifest.csv: every file of the model (name, role, path relative to the model's folder). A table or golden whose
  values are already in the repository (examples/savings, examples/basicterm, tests/data/lifelib_*, or another
  model's folder) is not written again: the manifest points to the existing file.

numpy's AVX-512 kernels are switched off (as in tests/data/lifelib_basiclife/regenerate_baseline_simd.py): its
AVX-512 `power` is one ulp off the correctly rounded value for some mortality rates; the baseline kernels call
libm's `pow`. Numbers are written with 17 significant digits; files over 64 KiB are gzip-compressed (level 9, no
name or time in the header, so the bytes are reproducible).
"""

import os

# Must be set before numpy is imported; numpy refuses to start if it names a feature it does not know.
os.environ["NPY_DISABLE_CPU_FEATURES"] = "X86_V4 AVX512_ICL"
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import gzip  # noqa: E402
import hashlib  # noqa: E402
import io  # noqa: E402
import pathlib  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

import lifelib  # noqa: E402
import modelx as mx  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

found = np._core._multiarray_umath.__cpu_features__
assert not any(found.get(f) for f in ("X86_V4", "AVX512_SKX", "AVX512_ICL")), "numpy still dispatches to AVX-512"

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "examples" / "lifelib"
GZIP_OVER = 64 * 1024

# (folder, lifelib library, model name, kind): "M" vectorised over model points, "S" one point per ItemSpace.
MODELS = [
    ("basicterm_s", "basiclife", "BasicTerm_S", "S"),
    ("basicterm_se", "basiclife", "BasicTerm_SE", "S"),
    ("basicterm_m", "basiclife", "BasicTerm_M", "M"),
    ("basicterm_me", "basiclife", "BasicTerm_ME", "M"),
    ("cashvalue_me", "savings", "CashValue_ME", "M"),
    ("cashvalue_se", "savings", "CashValue_SE", "S"),
    ("cashvalue_me_ex1", "savings", "CashValue_ME_EX1", "M"),
    ("cashvalue_me_ex2", "savings", "CashValue_ME_EX2", "M"),
    ("cashvalue_me_ex4", "savings", "CashValue_ME_EX4", "M"),
]

# Files already in the repository whose values a new file may repeat.
EXISTING = [
    *sorted((ROOT / "examples" / "savings").glob("*.csv*")),
    *sorted((ROOT / "examples" / "basicterm").glob("*.csv*")),
    *sorted((ROOT / "tests" / "data" / "lifelib_savings").glob("*.csv*")),
    *sorted((ROOT / "tests" / "data" / "lifelib_basiclife").glob("*.csv*")),
]


def csv_text(frame):
    buf = io.StringIO()
    frame.to_csv(buf, float_format="%.17g", lineterminator="\n")
    return buf.getvalue()


def values_of(text):
    """The cells of a CSV as strings parsed to floats where they are numbers (header ignored)."""
    rows = text.strip("\n").split("\n")[1:]
    out = []
    for row in rows:
        cells = []
        for c in row.split(","):
            try:
                cells.append(float(c))
            except ValueError:
                cells.append(c)
        out.append(cells)
    return out


def read_text(path):
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return data.decode()


_known = {}


def known_values():
    if not _known:
        for p in EXISTING + sorted(OUT.glob("*/*.csv*")):
            if p.name != "manifest.csv":
                _known[p] = values_of(read_text(p))
    return _known


class Model:
    def __init__(self, folder):
        self.dir = OUT / folder
        self.dir.mkdir(parents=True, exist_ok=True)
        for old in self.dir.glob("*.csv*"):
            known_values().pop(old, None)
            old.unlink()
        self.rows = []

    def write(self, name, role, frame):
        text = csv_text(frame)
        vals = values_of(text)
        for path, known in known_values().items():
            if len(known) == len(vals) and known == vals:
                self.rows.append((name, role, os.path.relpath(path, self.dir)))
                return
        data = text.encode()
        fname = name + ".csv"
        if len(data) > GZIP_OVER:
            fname += ".gz"
            data = gzip.compress(data, compresslevel=9, mtime=0)
        path = self.dir / fname
        path.write_bytes(data)
        known_values()[path] = vals
        self.rows.append((name, role, fname))

    def finish(self):
        man = pd.DataFrame(self.rows, columns=["name", "role", "path"]).set_index("name")
        (self.dir / "manifest.csv").write_text(csv_text(man))


def input_tables(model, space):
    """Every reference of the space that the model reads from a file (a PandasData input), as (name, value)."""
    out = []
    for spec in model.iospecs:
        for name, value in space.refs.items():
            if getattr(value, "_mx_dataclient", None) is spec:
                out.append((name, value))
    return out


def as_frame(value, name):
    if isinstance(value, pd.Series):
        return value.to_frame(value.name if value.name is not None else name)
    return value


def totals(frame):
    return frame.sum().to_frame("total")


def cell_params(cell):
    return tuple(cell.parameters)


def second_values(cell):
    """The strings a two-parameter cell's formula compares its second parameter with, in order."""
    p = cell_params(cell)[1]
    found = re.findall(p + r"""\s*==\s*["'](\w+)["']""", cell.formula.source)
    return list(dict.fromkeys(found))


def variants(space):
    """For each cell of `t` (and one more parameter), the argument tuples after `t` to audit it with.

    The second parameter's values are the strings the formula compares it with; a cell that only passes it on
    (e.g. `claims_over_av(t, kind)`) gets the values other cells compare a parameter of that name with. A
    second parameter with a default (e.g. `claims(t, kind=None)`) is also audited without it.
    """
    by_name = {}
    for cell in space.cells.values():
        params = cell_params(cell)
        if len(params) == 2 and params[0] == "t":
            by_name.setdefault(params[1], []).extend(second_values(cell))
    out = {}
    for name, cell in sorted(space.cells.items()):
        params = cell_params(cell)
        if not params or params[0] != "t" or len(params) > 2:
            continue
        if len(params) == 1:
            out[name] = [()]
            continue
        values = second_values(cell) or list(dict.fromkeys(by_name.get(params[1], [])))
        head = "def " + name + "("
        src = cell.formula.source
        sig = src[src.find(head):src.find(")", src.find(head))]
        defaulted = re.search(params[1] + r"\s*=", sig) is not None
        out[name] = ([()] if defaulted else []) + [(v,) for v in values]
    return out


def pick(value, key, pos):
    """Point `key` (a dict of index level → value; position `pos` among the model points) of a cell's value, or
    None if the value is not one number per point. A Series indexed by some of the levels only (e.g. by scenario)
    is looked up by those."""
    if isinstance(value, pd.DataFrame):
        return None
    if isinstance(value, pd.Series):
        names = list(value.index.names)
        if names == [None]:  # an unnamed index: one value per point, in the points' order
            return float(value.iloc[pos]) if pos < len(value) else None
        if key is None or not all(n in key for n in names):
            return None
        k = tuple(key[n] for n in names) if len(names) > 1 else key[names[0]]
        if k not in value.index:
            return None
        v = value.loc[k]
        return None if isinstance(v, pd.Series) else float(v)
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return float(value)
        if value.ndim == 1 and pos < len(value):
            return float(value[pos])
        return None
    if isinstance(value, (bool, int, float, np.number, np.bool_)):
        return float(value)
    return None


def audit(space, length, key, pos):
    """Monthly values of every cell of `t` for one point: a DataFrame indexed by t. A month where lifelib's cell
    raises (e.g. BasicTerm_M's `pols_maturity(0)`, which recurses below t = 0 and which lifelib never asks for)
    is left empty; a cell whose value is not one number per point (a table, a vector over scenarios) is left out."""
    cols = {}
    for name, extras in variants(space).items():
        cell = space.cells[name]
        for extra in extras:
            col = name if not extra else f"{name}({extra[0]})"
            series = []
            for t in range(length):
                try:
                    value = cell(t, *extra)
                except Exception:  # noqa: BLE001 - lifelib's cell is not defined at this t
                    series.append(np.nan)
                    continue
                v = pick(value, key, pos)
                if v is None:
                    break
                series.append(v)
            if len(series) == length and not all(np.isnan(series)):
                cols[col] = series
                missing = [t for t, v in enumerate(series) if np.isnan(v)]
                if missing:
                    print(f"  audit: {col} undefined at t = {missing}", file=sys.stderr)
            else:
                print(f"  audit: {col} left out (not one number per point)", file=sys.stderr)
    frame = pd.DataFrame(cols)
    frame.index.name = "t"
    return frame


def run_vectorised(folder, model, extra_axis=None):
    """A model over all its points at once; extra_axis = (reference, values) loops a scenario reference."""
    P = model.Projection
    out = Model(folder)
    for ref, value in input_tables(model, P):
        out.write(ref, "input", as_frame(value, ref))
    axis_name, axis_values = extra_axis if extra_axis else (None, [None])
    pvs, cfs, pols = [], [], []
    for a in axis_values:
        if axis_name:
            setattr(P, axis_name, a)
        pv = P.result_pv()
        cf = P.result_cf()
        pl = P.result_pols() if "result_pols" in P.cells else None
        if axis_name:
            pv = pd.concat({a: pv}, names=[axis_name]).reorder_levels(list(range(1, pv.index.nlevels + 1)) + [0])
            cf = pd.concat({a: cf}, names=[axis_name])
            if pl is not None:
                pl = pd.concat({a: pl}, names=[axis_name])
        pvs.append(pv), cfs.append(cf), pols.append(pl)
    pv = pd.concat(pvs).sort_index()
    out.write("result_pv", "result_pv", pv)
    out.write("result_pv_totals", "result_pv_totals", totals(pv))
    out.write("result_cf", "result_cf", cf_index(pd.concat(cfs)))
    if pols[0] is not None:
        out.write("result_pols", "result_pols", cf_index(pd.concat(pols)))
    if axis_name:
        setattr(P, axis_name, axis_values[0])
    key = first_key(P.model_point())
    length = int(P.max_proj_len()) if "max_proj_len" in P.cells else int(np.max(P.proj_len()))
    out.write("audit_point1", "audit", audit(P, length, key, 0))
    return out


def first_key(points):
    """The first model point's index as a dict of level name → value."""
    first = points.index[0]
    first = first if isinstance(first, tuple) else (first,)
    return dict(zip(points.index.names, first))


def cf_index(frame):
    names = list(frame.index.names)
    names[-1] = "t"
    return frame.rename_axis(names)


def run_seriatim(folder, model, scenarios=None):
    """A model of one point per ItemSpace (Projection[point_id]), over every point of its table."""
    P = model.Projection
    out = Model(folder)
    for ref, value in input_tables(model, P):
        out.write(ref, "input", as_frame(value, ref))
    ids = list(P.model_point_table.index)
    pv_rows, cf_sum, pols_sum, keys = [], {}, {}, []
    for s in scenarios or [None]:
        if s is not None:
            P.scen_id = s
        cf_total, pols_total = None, None
        for i in ids:
            item = P[i]
            pv = item.result_pv()
            pv_rows.append(pv.iloc[0].to_numpy(dtype=float))
            keys.append((i, s) if s is not None else i)
            cf = item.result_cf()
            cf_total = cf if cf_total is None else cf_total.add(cf, fill_value=0.0)
            if "result_pols" in P.cells:
                pl = item.result_pols()
                pols_total = pl if pols_total is None else pols_total.add(pl, fill_value=0.0)
            del P[i]  # free the ItemSpace: 10,000 of them do not fit in memory
        cf_sum[s], pols_sum[s] = cf_total, pols_total
    index = (pd.MultiIndex.from_tuples(keys, names=["point_id", "scen_id"]) if scenarios
             else pd.Index(keys, name="point_id"))
    pv = pd.DataFrame(pv_rows, index=index, columns=list(P[ids[0]].result_pv().columns)).sort_index()
    out.write("result_pv", "result_pv", pv)
    out.write("result_pv_totals", "result_pv_totals", totals(pv))
    if scenarios:
        cf = pd.concat(cf_sum, names=["scen_id"])
        pl = pd.concat(pols_sum, names=["scen_id"]) if pols_sum[scenarios[0]] is not None else None
    else:
        cf, pl = cf_sum[None], pols_sum[None]
    out.write("result_cf", "result_cf", cf_index(cf))
    if pl is not None:
        out.write("result_pols", "result_pols", cf_index(pl))
    if scenarios:
        P.scen_id = scenarios[0]
    item = P[ids[0]]
    out.write("audit_point1", "audit", audit(item, int(item.proj_len()), None, 0))
    return out


def random_draws(out, P):
    """The EX models draw their scenarios with numpy (default_rng(1234)): too many to commit, so their checksum
    (which parfit's own draws, parfit_core::numpy_rng, are checked against)."""
    rnd = np.asarray(P.std_norm_rand(), dtype="<f8").reshape(-1)
    digest = hashlib.sha256(rnd.tobytes()).hexdigest()
    frame = pd.DataFrame({"count": [rnd.size], "sha256_f64le": [digest],
                          "first": [rnd[0]], "last": [rnd[-1]], "sum": [float(np.sum(rnd))]})
    frame.index.name = "draws"
    out.write("std_norm_rand_check", "draws_check", frame)


def option_values(out, P):
    """The savings examples' check of the maturity guarantee (GMAB): its Monte Carlo value per point, the mean
    over scenarios of pv_claims_over_av('MATURITY'), beside the Black-Scholes-Merton put, formula_option_put, over
    the model_point_moneyness table (as the savings_example1 notebook does), for each policy term in it."""
    P.model_point_table = P.model_point_moneyness
    mc = pd.Series(np.asarray(P.pv_claims_over_av("MATURITY"), dtype=float), index=P.model_point().index)
    mc = mc.groupby(level="point_id").mean()
    bs = pd.concat([pd.Series(np.asarray(P.formula_option_put(12 * int(term)), dtype=float),
                              index=P.model_point_moneyness.index[P.model_point_moneyness["policy_term"] == term])
                    for term in sorted(set(P.model_point_moneyness["policy_term"]))]).sort_index()
    frame = pd.DataFrame({"monte_carlo": mc, "black_scholes": bs})
    frame.index.name = "point_id"
    out.write("option_values_moneyness", "option_values", frame)


def make(folder, library, name, kind, tmp):
    model = mx.read_model(os.path.join(tmp, library, name), name=name)
    P = model.Projection
    if name == "CashValue_ME":
        scen = sorted(set(P.std_norm_rand.index.get_level_values(0)))
        out = run_vectorised(folder, model, ("scen_id", scen))
    elif name == "CashValue_SE":
        scen = sorted(set(P.std_norm_rand.index.get_level_values(0)))
        out = run_seriatim(folder, model, scen)
    elif name == "CashValue_ME_EX2":
        out = run_ex2(folder, model)
    elif kind == "S":
        out = run_seriatim(folder, model)
    else:
        out = run_vectorised(folder, model)
    if name in ("CashValue_ME_EX1", "CashValue_ME_EX4"):
        random_draws(out, P)
    if name == "CashValue_ME_EX1":
        option_values(out, P)
    out.finish()
    model.close()


def run_ex2(folder, model):
    """EX2: Projection[sim_id] for each row of sim_param_table (result_pv_sim<id>); Summary.result() gathers their
    Monte Carlo means."""
    P = model.Projection
    out = Model(folder)
    for ref, value in input_tables(model, P):
        out.write(ref, "input", as_frame(value, ref))
    sims = list(P.sim_param_table.index)
    cfs, pols = {}, {}
    for s in sims:
        item = P[s]
        pv = item.result_pv()
        out.write(f"result_pv_sim{s}", "result_pv", pv)
        out.write(f"result_pv_totals_sim{s}", "result_pv_totals", totals(pv))
        cfs[s] = item.result_cf()
        pols[s] = item.result_pols()
    out.write("result_cf", "result_cf", cf_index(pd.concat(cfs, names=["sim_id"])))
    out.write("result_pols", "result_pols", cf_index(pd.concat(pols, names=["sim_id"])))
    out.write("summary_result", "summary", model.Summary.result())
    item = P[sims[0]]
    key = first_key(item.model_point())
    out.write("audit_point1", "audit", audit(item, int(item.max_proj_len()), key, 0))
    random_draws(out, item)
    return out


def main(argv):
    wanted = set(argv) if argv else None
    with tempfile.TemporaryDirectory() as tmp:
        for library in ("basiclife", "savings"):
            lifelib.create(library, os.path.join(tmp, library))
        for folder, library, name, kind in MODELS:
            if wanted and name not in wanted and folder not in wanted:
                continue
            print(f"make_goldens: {name}", file=sys.stderr, flush=True)
            make(folder, library, name, kind, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
