"""Extract every complete DiffSL model text from the diffsl, diffsol and pydiffsol repositories.

Run with the bench venv's python (any Python >= 3.9 works: it needs only the standard library and git):

    python plugins/ode/tests/upstream/extract.py [--mirrors DIR]

DIR holds the bare mirrors `martinjrobins+diffsl/repo`, `martinjrobins+diffsol/repo` and
`alexallmont+pydiffsol/repo` (default /work/.mirror). The commits read are pinned below; the script refuses a
mirror whose HEAD is another commit unless `--any-commit` is given (then update COMMITS and re-check the
tables below: they name upstream texts by path and line).

Where DiffSL text lives upstream: `.ds`/`.diffsl` files; string literals in Rust sources (tests, examples,
benches, test models) and in Python (examples, tests, bench); fenced code blocks in Markdown (READMEs, the
books) and `code-block` directives in reStructuredText, including string literals inside Rust or Python code
blocks. A text is a candidate when it defines both the state `u` and the right-hand side `F` (DiffSL's two
required tensors). A candidate is a model unless it is listed in EXCLUDED (with why) or is a format template
(`format!` placeholders or a Python f-string: its text is built by code), except the templates of
INSTANTIATED, whose code fills in only the path of a file it writes (the file is written beside the model). Identical texts (up to indentation
and blank lines) are one model with all their sources listed.

Writes `models/<repo>/<name>.ds` and `manifest.json` beside this script (both regenerated from scratch).
"""

import argparse
import ast
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent

REPOS = {
    "diffsl": ("martinjrobins+diffsl", "martinjrobins/diffsl", "c9a26f2"),
    "diffsol": ("martinjrobins+diffsol", "martinjrobins/diffsol", "ad3477a"),
    "pydiffsol": ("alexallmont+pydiffsol", "alexallmont/pydiffsol", "c56f27b"),
}

STATE = re.compile(r"(?<![\w.])u(_[a-zA-Z])?\s*\{")
RHS = re.compile(r"(?<![\w.])F(_[a-zA-Z])?\s*\{")

# Upstream texts that upstream itself expects to fail, with the reason upstream's test gives.
NEGATIVE = {
    ("diffsl", "diffsl/src/discretise/discrete_model.rs", 1464): "F and u must have the same shape",
    ("diffsl", "diffsl/src/discretise/discrete_model.rs", 1473): "F, stop and out must not depend on dudt",
    ("diffsl", "diffsl/src/discretise/discrete_model.rs", 1490): "M must not be dependent on u",
    ("diffsl", "diffsl/src/discretise/discrete_model.rs", 1510): "input list is no longer supported",
    ("diffsl", "diffsl/src/discretise/discrete_model.rs", 1827): "reset_i must have the shape of u_i",
    ("diffsl", "diffsl/src/discretise/discrete_model.rs", 1850): "reset must not depend on dudt",
    ("diffsl", "diffsl/src/discretise/discrete_model.rs", 1874): "reset requires stop",
    ("diffsl", "diffsl/src/discretise/discrete_model.rs", 2126): "read() of a file that does not exist",
    ("diffsl", "diffsl/src/discretise/discrete_model.rs", 2215): "interp1d's x values must be sorted",
    ("diffsl", "diffsl/src/discretise/discrete_model.rs", 2233): "interp1d's x values must be constant",
    ("diffsl", "diffsl/src/discretise/discrete_model.rs", 2249): "interp1d's x and y must have the same shape",
    ("diffsl", "diffsl/src/parser/ds_parser.rs", 555): "a float is not allowed in an index expression",
    ("diffsl", "diffsl/src/parser/ds_parser.rs", 566): "only N may appear in an index expression",
    ("diffsl", "diffsl/src/execution/data_layout.rs", 1070): "interp1d's x values must be sorted",
    ("diffsol", "crates/diffsol/src/ode_equations/diffsl.rs", 1759): "unknown name missing_symbol",
}

# Candidates that are not whole models, and why.
EXCLUDED = {
    ("diffsl", "diffsl/src/parser/ds_parser.rs", 354): "a parser test's text, not a model: F is a scalar with two "
    "elements and dydt is never defined (upstream only parses it)",
}

# Templates whose code fills in only a file's path, and the file: upstream's test writes the FROSTT file a
# `read(…)` imports to a temporary path; here it is written beside the model, under the model's name.
INSTANTIATED = {
    ("diffsl", "diffsl/src/discretise/discrete_model.rs", 2037): {
        "placeholder": "path",
        "file": "# 1-based FROSTT coordinates\n2 3 5.0\n1 1 2.0\n",
    },
    ("diffsl", "diffsl/src/execution/compiler.rs", 1342): {
        "placeholder": "path",
        "file": "# intentionally out of order\n2 3 5.0\n1 1 2.0\n",
    },
}

# The run to compare, from the upstream context where it gives one (the comment says where): parameters (None:
# the `in` tensor's defaults), final time, and either the number of equally spaced output times on [0, t_final]
# or the times themselves; atol where the default 1e-8 is too loose for the model's scale. Models without an
# entry run at their defaults over [0, 1] at 21 times.
ROBERTSON_TIMES = [0.0] + [4.0 * 10.0**k for k in range(-5, 11)]
RUNS = {
    # diffsol examples: the final times their main.rs solve to.
    "diffsol/bouncing_ball": {"t_final": 10.0, "n_times": 41},
    "diffsol/bouncing_ball_declarative": {"t_final": 10.0, "n_times": 41},
    "diffsol/compartmental_models_drug_delivery": {"t_final": 24.0, "n_times": 49},
    "diffsol/compartmental_models_drug_delivery_declarative": {"t_final": 24.0, "n_times": 49},
    "diffsol/compartmental_models_drug_delivery_hybrid": {"t_final": 24.0, "n_times": 49},
    "diffsol/compartmental_models_drug_delivery_sensitivities": {"t_final": 24.0, "n_times": 49},
    "diffsol/diffsol_c_logistic": {"params": [2.0], "t_final": 1.0, "n_times": 5},
    "diffsol/electrical_circuits": {"t_final": 1.0, "n_times": 41},
    "diffsol/epidemic_sir_policy_switching": {"t_final": 300.0, "n_times": 61},
    "diffsol/pde_heat": {"t_final": 0.99, "n_times": 100},
    "diffsol/population_dynamics": {"t_final": 40.0, "n_times": 81},
    "diffsol/spring_mass_system": {"t_final": 40.0, "n_times": 81},
    "diffsol/mass_spring_fitting_adjoint": {"t_final": 40.0, "n_times": 81},
    "diffsol/predator_prey_fitting_forward": {"t_final": 40.0, "n_times": 81},
    # benches/pybamm_dfn.rs, whose consistent initialisation needs a smaller Armijo constant than the default.
    "diffsol/pybamm_dfn": {"t_final": 3600.0, "n_times": 100, "ic_armijo_constant": 0.1},
    "diffsl/pybamm_dfn": {"t_final": 3600.0, "n_times": 100},
    "diffsol/spm": {"params": [1.0], "t_final": 3600.0, "n_times": 61},  # physics-based-battery-simulation
    # pydiffsol examples and bench: the final times (and parameters) they solve with.
    "pydiffsol/1_1_population_dynamics_solve": {"t_final": 40.0, "n_times": 81},
    "pydiffsol/1_2_population_dynamics_phase_plane": {"t_final": 40.0, "n_times": 81},
    "pydiffsol/3_1_compartmental_models_of_drug_delivery": {"params": [1000.0, 1000.0, 100.0, 50.0], "t_final": 24.0, "n_times": 49},
    "pydiffsol/3_2_bouncing_ball": {"params": [9.81, 10.0, 0.8], "t_final": 10.0, "n_times": 41},
    "pydiffsol/5_1_heat_equation": {"t_final": 0.1, "n_times": 21},
    "pydiffsol/diffsol_lotka_volterra": {"t_final": 10.0, "n_times": 41},
    "pydiffsol/readme_23": {"params": [2.0], "t_final": 0.4, "n_times": 21},
    # Robertson's problem over diffsol's [0, 4e10]; y2 stays below 3.7e-5, so a tight atol.
    "diffsl/readme_27": {"times": ROBERTSON_TIMES, "atol": 1e-12},
    "diffsol/robertson_ode_diffsl_problem": {"times": ROBERTSON_TIMES, "atol": 1e-12},
}


def git(repo_dir, *args):
    return subprocess.run(["git", "-C", str(repo_dir), *args], capture_output=True, check=True).stdout


def rust_literals(text, first_line=1):
    """(line, value) of each string literal in Rust source, escapes resolved; comments and chars skipped."""
    out, i, n, line = [], 0, len(text), first_line
    escapes = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'", "0": "\0", "r": "\r"}
    while i < n:
        c = text[i]
        if c == "\n":
            line, i = line + 1, i + 1
            continue
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            line, i = line + text.count("\n", i, j), j
            continue
        raw = re.match(r'b?r(#*)"', text[i : i + 40])
        if raw and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            close = '"' + raw.group(1)
            start = i + raw.end()
            end = text.find(close, start)
            if end < 0:
                break
            out.append((line, text[start:end], False))
            line, i = line + text.count("\n", i, end), end + len(close)
            continue
        if c == "'":
            char = re.match(r"'(\\.|[^\\'])'|'\\u\{[0-9a-fA-F]+\}'", text[i : i + 12])
            i += char.end() if char else 1
            continue
        if c == '"':
            j, buf = i + 1, []
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    e = text[j + 1]
                    if e == "\n":  # a line continuation drops the newline and the next line's indentation
                        j += 2
                        while j < n and text[j] in " \t\r\n":
                            j += 1
                        continue
                    buf.append(escapes.get(e, "\\" + e))
                    j += 2
                    continue
                buf.append(text[j])
                j += 1
            # A literal that is a format string (format!, println! …): `{{` and `}}` stand for braces.
            before = text[max(0, i - 40) : i]
            is_format = re.search(r"\b(format|println|print|write|writeln)!\s*\(\s*$", before) is not None
            out.append((line, "".join(buf), is_format))
            line, i = line + text.count("\n", i, j), j + 1
            continue
        i += 1
    return out


def python_literals(text, first_line=1):
    """(line, value, is_template) of each string constant in Python source; f-strings are templates."""
    out = []
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return out
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.append((node.lineno + first_line - 1, node.value, False))
        elif isinstance(node, ast.JoinedStr):
            out.append((node.lineno + first_line - 1, ast.unparse(node), True))
    return out


def markdown_blocks(text):
    """(first line, language, body) of each fenced code block."""
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        fence = re.match(r"\s*(```+|~~~+)\s*([\w+-]*)", lines[i])
        if fence:
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith(fence.group(1)):
                j += 1
            out.append((i + 2, fence.group(2).lower(), "\n".join(lines[i + 1 : j])))
            i = j + 1
        else:
            i += 1
    return out


def rst_blocks(text):
    """(first line, language, body) of each `code-block` directive's indented body."""
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        directive = re.match(r"\s*\.\. code-block::\s*(\w*)", lines[i])
        if directive:
            j = i + 1
            while j < len(lines) and (not lines[j].strip() or lines[j].startswith((" ", "\t"))):
                j += 1
            out.append((i + 2, directive.group(1).lower(), "\n".join(lines[i + 1 : j])))
            i = j
        else:
            i += 1
    return out


def literals(path, text):
    """(line, value, is_template) of every place in a file where DiffSL text could be."""
    if path.endswith((".ds", ".diffsl")):
        return [(1, text, False)]
    if path.endswith(".rs"):
        return [format_literal(line, value, fmt) for line, value, fmt in rust_literals(text)]
    if path.endswith(".py"):
        return python_literals(text)
    blocks = markdown_blocks(text) if path.endswith(".md") else rst_blocks(text) if path.endswith(".rst") else []
    out = []
    for line, language, body in blocks:
        if language in ("rust", "rs"):
            out += [format_literal(line + l - 1, v, f) for l, v, f in rust_literals(body)]
        elif language in ("py", "python"):
            out += python_literals(textwrap.dedent(body), line)
        else:
            out.append((line, body, False))
    return out


def format_literal(line, value, is_format):
    """A Rust format string's text with `{{`/`}}` resolved; a template when a placeholder remains."""
    if not is_format:
        return (line, value, False)
    placeholder = re.search(r"(?<!\{)\{(?!\{)[^{}]*\}(?!\})", value.replace("{{", "").replace("}}", ""))
    if placeholder:
        return (line, value, True)
    return (line, value.replace("{{", "{").replace("}}", "}"), False)


def instantiate(value, placeholder, replacement):
    """A format string with `{placeholder}` replaced and `{{`/`}}` resolved; still a template if another
    placeholder remains."""
    value = value.replace("{{", "\0").replace("}}", "\1").replace("{" + placeholder + "}", replacement)
    left = re.search(r"\{[^{}]*\}", value) is not None
    return value.replace("\0", "{").replace("\1", "}"), left


def normalise(text):
    """The model text as written to its .ds file: dedented, without leading and trailing blank lines."""
    lines = textwrap.dedent(text.expandtabs(4)).split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(line.rstrip() for line in lines) + "\n"


def user_facing(path):
    """READMEs, examples, books, benchmarks and docs are what users read; the rest are upstream's tests."""
    name = path.split("/")[-1]
    return name.startswith("README") or path.startswith(("examples/", "book/", "bench/", "docs/")) or (
        "/benches/" in path or path.startswith("benches/")
    )


def context_name(path, text, line):
    """A short name for a text: the enclosing test or macro entry, else the file's directory or stem."""
    parts = path.split("/")
    if parts[0] == "examples" and len(parts) > 2 and path.endswith(".rs"):
        return parts[1]
    if parts[0] in ("examples", "bench") and path.endswith(".py"):
        return Path(parts[-1]).stem
    if path.endswith((".md", ".rst")):
        return f"{Path(parts[-1]).stem}_{line}"
    before = text.split("\n")[:line]
    for previous in reversed(before[-60:]):
        entry = re.match(r"\s*(?:pub\s+)?(?:fn|def)\s+(\w+)|\s*(\w+):\s*(r#*)?\"", previous)
        if entry:
            return entry.group(1) or entry.group(2)
    return Path(parts[-1]).stem.replace(".", "_")


def linspace(t_final, n):
    return [t_final * k / (n - 1) for k in range(n)]


def slug(text):
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mirrors", default="/work/.mirror")
    parser.add_argument("--any-commit", action="store_true")
    args = parser.parse_args()

    models = {}  # normalised, whitespace-collapsed text -> entry
    excluded = []
    for repo, (mirror, github, pinned) in REPOS.items():
        repo_dir = Path(args.mirrors) / mirror / "repo"
        commit = git(repo_dir, "rev-parse", "HEAD").decode().strip()
        if not commit.startswith(pinned) and not args.any_commit:
            sys.exit(f"{repo_dir}: HEAD is {commit}, not the pinned {pinned} (--any-commit to read it anyway)")
        for path in git(repo_dir, "ls-tree", "-r", "--name-only", "HEAD").decode().split("\n"):
            if not path.endswith((".rs", ".py", ".md", ".rst", ".ds", ".diffsl")):
                continue
            text = git(repo_dir, "show", f"HEAD:{path}").decode("utf-8", "replace")
            for line, value, template in literals(path, text):
                if not (STATE.search(value) and RHS.search(value)):
                    continue
                key = (repo, path, line)
                source = {
                    "repo": github,
                    "commit": commit,
                    "path": path,
                    "line": line,
                    "user_facing": user_facing(path),
                }
                file = None
                if template and key in INSTANTIATED:
                    name = slug(context_name(path, text, line))
                    file = (f"{name}.tns", INSTANTIATED[key]["file"])
                    value, template = instantiate(value, INSTANTIATED[key]["placeholder"], file[0])
                if template:
                    why = "a template: code fills in its placeholders (format! or an f-string)"
                    excluded.append({**source, "why": why, "text": normalise(value)})
                    continue
                if key in EXCLUDED:
                    excluded.append({**source, "why": EXCLUDED[key], "text": normalise(value)})
                    continue
                body = normalise(value)
                same = " ".join(body.split())
                entry = models.get(same)
                if entry is None:
                    name = slug(context_name(path, text, line))
                    entry = models[same] = {"repo": repo, "name": name, "text": body, "sources": []}
                entry["sources"].append(source)
                if file:
                    entry["file"] = file
                if key in NEGATIVE:
                    entry["negative"] = NEGATIVE[key]
    missing = set(NEGATIVE) | set(EXCLUDED)
    for entry in models.values():
        for s in entry["sources"]:
            missing.discard((next(r for r, v in REPOS.items() if v[1] == s["repo"]), s["path"], s["line"]))
    for s in excluded:
        missing.discard((next(r for r, v in REPOS.items() if v[1] == s["repo"]), s["path"], s["line"]))
    if missing:
        sys.exit(f"listed upstream texts not found (the tables are out of date): {sorted(missing)}")

    # Unique names within each repository: a clash gets the source's line.
    taken = {}
    for entry in models.values():
        taken.setdefault((entry["repo"], entry["name"]), []).append(entry)
    for (repo, name), entries in taken.items():
        if len(entries) > 1:
            for entry in entries:
                entry["name"] = f"{name}_{entry['sources'][0]['line']}"

    unknown = set(RUNS) - {f"{e['repo']}/{e['name']}" for e in models.values()}
    if unknown:
        sys.exit(f"RUNS names models that are not in the corpus: {sorted(unknown)}")
    out_dir = HERE / "models"
    for old in [*out_dir.glob("*/*.ds"), *out_dir.glob("*/*.tns")]:
        old.unlink()
    manifest = []
    for entry in sorted(models.values(), key=lambda e: (e["repo"], e["name"])):
        rel = f"{entry['repo']}/{entry['name']}.ds"
        (out_dir / entry["repo"]).mkdir(parents=True, exist_ok=True)
        (out_dir / rel).write_text(entry["text"])
        if "file" in entry:
            (out_dir / entry["repo"] / entry["file"][0]).write_text(entry["file"][1])
        run = RUNS.get(f"{entry['repo']}/{entry['name']}", {})
        manifest.append(
            {
                "model": rel,
                "user_facing": any(s["user_facing"] for s in entry["sources"]),
                "negative": "negative" in entry,
                **({"reads": entry["file"][0]} if "file" in entry else {}),
                **({"upstream_error": entry["negative"]} if "negative" in entry else {}),
                "run": {
                    "params": run.get("params"),
                    "times": run.get("times") or linspace(run.get("t_final", 1.0), run.get("n_times", 21)),
                    "rtol": 1e-8,
                    "atol": run.get("atol", 1e-8),
                    **({k: run[k] for k in ("ic_armijo_constant",) if k in run}),
                },
                "sources": entry["sources"],
            }
        )
    excluded.sort(key=lambda s: (s["repo"], s["path"], s["line"]))
    counts = {
        "models": len(manifest),
        "negative": sum(m["negative"] for m in manifest),
        "runnable": sum(not m["negative"] for m in manifest),
        "user_facing_runnable": sum(m["user_facing"] and not m["negative"] for m in manifest),
        "excluded_candidates": len(excluded),
    }
    document = {
        "about": "The upstream DiffSL corpus: written by extract.py, see its docstring. Each model's run: "
        "params null = the defaults of its `in` tensor; the initial state at t = 0, outputs at `times`.",
        "counts": counts,
        "models": manifest,
        "excluded": excluded,
    }
    (HERE / "manifest.json").write_text(json.dumps(document, indent=1) + "\n")
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
