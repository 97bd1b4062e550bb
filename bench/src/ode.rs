//! ODE solves (against pydiffsol and scipy) of the reference problems of `tests/data/ode_problems`, at matched
//! accuracy: each tool climbs the same ladder of tolerances until its error against the reference meets the
//! accuracy asked for, and the solve at that rung is the one timed.

use parfit_core::Model;
use parfit_ode::{Method, OdeModel, SolverOptions};
use serde_json::{Value, json};

use crate::timing::per_call;
use crate::{Result, f64_of, f64s_of, root, str_of};

/// Times and row-major values (`values[i · outputs + j]`) of a reference CSV (`t,<outputs…>`).
struct Reference {
    outputs: usize,
    times: Vec<f64>,
    values: Vec<f64>,
}

fn reference(name: &str) -> Result<Reference> {
    let path = root().join(format!("tests/data/ode_problems/{name}.csv"));
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines = text.lines().enumerate();
    let outputs = lines.next().map_or(0, |(_, h)| h.split(',').count().saturating_sub(1));
    let (mut times, mut values) = (Vec::new(), Vec::new());
    for (i, line) in lines {
        let row: Vec<f64> = line
            .split(',')
            .map(|c| c.parse::<f64>().map_err(|e| format!("{}:{}: {e}", path.display(), i + 1)))
            .collect::<Result<_>>()?;
        if row.len() != outputs + 1 {
            return Err(format!("{}:{}: expected {} columns", path.display(), i + 1, outputs + 1));
        }
        times.push(row[0]);
        values.extend(&row[1..]);
    }
    Ok(Reference { outputs, times, values })
}

/// `max |y − ref| / (floor + |ref|)`: the error relative to the solution, floored where it is small; NaN
/// counts as infinitely wrong.
fn scaled_error(y: &[f64], reference: &[f64], floor: f64) -> f64 {
    y.iter()
        .zip(reference)
        .map(|(y, r)| (y - r).abs() / (floor + r.abs()))
        .fold(0.0, |m, e| if e.is_nan() { f64::INFINITY } else { m.max(e) })
}

pub fn problems(section: &Value) -> Result<Value> {
    let accuracies = f64s_of(section, "accuracy")?;
    let tightest = accuracies.iter().copied().fold(f64::INFINITY, f64::min);
    let ladder = f64s_of(section, "ladder")?;
    let list = section.get("problems").and_then(Value::as_array).ok_or("ode: \"problems\" must be a list")?;
    let (mut out, mut order) = (serde_json::Map::new(), Vec::new());
    for problem in list {
        let name = str_of(problem, "name")?;
        order.push(name);
        let stiff = problem.get("stiff").and_then(Value::as_bool).unwrap_or(false);
        let (atol_scale, floor) = (f64_of(problem, "atol_scale")?, f64_of(problem, "floor")?);
        let path = root().join(format!("tests/data/ode_problems/{name}.ds"));
        let source = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let r = reference(name)?;
        let method = if stiff { Method::Bdf } else { Method::Dopri5 };
        let solver = if stiff { "bdf" } else { "dopri5" };
        // A model parfit refuses is reported in its row (the refusal names the construct), not fatal to the suite.
        if let Err(e) = OdeModel::compile(&source, &format!("{name}.ds"), SolverOptions::default()) {
            out.insert(name.into(), json!({ "solver": solver, "unavailable": e.to_string() }));
            continue;
        }

        // Climb the ladder until the tightest accuracy is met; keep every rung for the work–precision record.
        let mut rungs = Vec::new();
        let mut timed = serde_json::Map::new();
        for &rtol in &ladder {
            let options = SolverOptions { rtol, atol: atol_scale * rtol, solver: method, ..SolverOptions::default() };
            let model = OdeModel::compile(&source, &format!("{name}.ds"), options).map_err(|e| e.to_string())?;
            let params = model.spec().defaults();
            if model.spec().output_len(r.times.len()) != r.values.len() || model.spec().outputs.len() != r.outputs {
                return Err(format!("{name}: the model's outputs do not match the reference's columns"));
            }
            let mut ws = model.workspace();
            let mut y = vec![f64::NAN; r.values.len()];
            if let Err(e) = model.simulate(&mut ws, &params, &[], &r.times, &mut y) {
                rungs.push(json!({ "rtol": rtol, "failed": e.to_string() }));
                continue;
            }
            let error = scaled_error(&y, &r.values, floor);
            let stats = model.stats(&ws);
            let mut rung = json!({ "rtol": rtol, "atol": atol_scale * rtol, "error": error, "stats": stats });
            for &accuracy in &accuracies {
                let key = format!("{accuracy:e}");
                if error <= accuracy && !timed.contains_key(&key) {
                    let (median_s, best_s) = per_call(3, 0.3, || {
                        model.simulate(&mut ws, &params, &[], &r.times, &mut y).expect("the solve succeeded before");
                    });
                    rung["median_s"] = json!(median_s);
                    timed.insert(
                        key,
                        json!({
                            "rtol": rtol, "atol": atol_scale * rtol, "error": error / accuracy, "stats": stats,
                            "median_s": median_s, "best_s": best_s,
                        }),
                    );
                }
            }
            rungs.push(rung);
            if error <= tightest {
                break;
            }
        }
        out.insert(name.into(), json!({ "solver": solver, "matched": timed, "ladder": rungs }));
    }
    Ok(json!({ "tool": "parfit", "version": env!("CARGO_PKG_VERSION"), "order": order, "problems": out }))
}
