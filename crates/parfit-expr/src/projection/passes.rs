//! What the projection language's passes over the months need, apart from the compiler proper (`mod.rs`): cells
//! with a start and last month's values (`x[0]` beside `x = …`, `y[t-1]`), the pass each value is computed in
//! (a monthly value reading a present value waits for a pass that summed it), and the per-policy projection
//! length (`proj_len`).

use std::collections::{HashMap, HashSet};

use super::syntax::{Expr, Kind, Node, Stmt, When};
use super::{Program, err};
use crate::lexer::Pos;

/// Every `x[t-1]` (of a cell or recursion; tables' are keys) in an expression, with its place.
fn prev_reads<'e>(node: &'e Node, tables: &HashSet<&str>, out: &mut Vec<(&'e str, Pos)>) {
    let mut stack = vec![node];
    while let Some((e, p)) = stack.pop() {
        match e {
            Expr::Name(n, When::Prev) if !tables.contains(n.as_str()) => out.push((n, *p)),
            Expr::Table { keys, .. } | Expr::Call(_, keys) => stack.extend(keys.iter()),
            Expr::Unary(_, a) => stack.push(a),
            Expr::Binary(_, a, b) => stack.extend([&**a, &**b]),
            Expr::If(c, a, b) => stack.extend([&**c, &**a, &**b]),
            _ => {}
        }
    }
}

/// A cell with a start, `x[0] = A` beside `x = B`, becomes the cell `x = if t == 0 then A else B`: B is read
/// from month 1 on, so it alone may read last month's values (`y[t-1]`). Anywhere else `y[t-1]` is an error:
/// it would be read at t = 0, where there is no last month. Returns the statements and the names read as
/// `y[t-1]`, in order of first reading.
pub(super) fn started_cells(
    file: &str,
    stmts: Vec<Stmt>,
    tables: &HashSet<&str>,
) -> Result<(Vec<Stmt>, Vec<String>), String> {
    let has = |kind: Kind, name: &str| stmts.iter().any(|s| s.kind == kind && s.name == name);
    let mut starts: HashMap<String, Node> = HashMap::new();
    for s in &stmts {
        if s.kind == Kind::Init && !has(Kind::Next, &s.name) && has(Kind::Cell, &s.name) {
            starts.entry(s.name.clone()).or_insert_with(|| s.expr.clone());
        }
    }
    let (mut dropped, mut folded) = (HashSet::new(), HashSet::new());
    let mut out = Vec::with_capacity(stmts.len());
    let mut lagged: Vec<String> = vec![];
    let check = |node: &Node, lagged: &mut Vec<String>, allowed: bool| -> Result<(), String> {
        let mut reads = vec![];
        prev_reads(node, tables, &mut reads);
        for (n, p) in reads {
            if !allowed {
                return Err(err(
                    file,
                    p,
                    format!(
                        "'{n}[t-1]' has no value at t = 0: last month's values are read in a cell with a start \
                         ('x[0] = …' beside 'x = …')"
                    ),
                ));
            }
            if !lagged.iter().any(|l| l == n) {
                lagged.push(n.to_string());
            }
        }
        Ok(())
    };
    for mut s in stmts {
        if s.kind == Kind::Init && starts.contains_key(&s.name) && dropped.insert(s.name.clone()) {
            continue;
        }
        if s.kind == Kind::Cell
            && let Some(a) = starts.get(&s.name)
            && folded.insert(s.name.clone())
        {
            check(a, &mut lagged, false)?;
            check(&s.expr, &mut lagged, true)?;
            let pos = s.pos;
            let t = Box::new((Expr::Name("t".into(), When::Now), pos));
            let is_first = (Expr::Binary("==", t, Box::new((Expr::Num(0.0), pos))), pos);
            let b = std::mem::replace(&mut s.expr, (Expr::Num(0.0), pos));
            s.expr = (Expr::If(Box::new(is_first), Box::new(a.clone()), Box::new(b)), pos);
        } else {
            check(&s.expr, &mut lagged, false)?;
        }
        out.push(s);
    }
    Ok((out, lagged))
}

/// The pass over the months in which each cell, recursion and present value is computed. A monthly value that
/// reads a present value (BasicTerm's premium, solved from the present values of claims and policies) is known
/// only after a pass over all months has summed it: its pass is one after the present value's. So a value's
/// pass is the latest of what it reads (a present value read: its pass + 1), found by iterating to the fixed
/// point; a present value summed from values that read it would climb without end, and is refused.
pub(super) fn stages<'a>(
    file: &str,
    stmts: &'a [Stmt],
    defs: &HashMap<&'a str, (usize, Option<usize>)>,
    pvs: &[usize],
    tables: &HashSet<&str>,
) -> Result<HashMap<&'a str, usize>, String> {
    let pv_names: HashSet<&str> = pvs.iter().map(|&i| stmts[i].name.as_str()).collect();
    let mut stage: HashMap<&'a str, usize> = HashMap::new();
    fn of(node: &Node, stage: &HashMap<&str, usize>, pvs: &HashSet<&str>, tables: &HashSet<&str>) -> usize {
        let mut stack = vec![node];
        let mut s = 0;
        while let Some((e, _)) = stack.pop() {
            match e {
                Expr::Name(n, _) => {
                    let v = stage.get(n.as_str()).copied().unwrap_or(0);
                    s = s.max(if pvs.contains(n.as_str()) { v + 1 } else { v });
                }
                Expr::Table { name, keys, .. } => {
                    if !tables.contains(name.as_str()) {
                        s = s.max(stage.get(name.as_str()).copied().unwrap_or(0));
                    }
                    stack.extend(keys.iter());
                }
                Expr::Call(_, args) => stack.extend(args.iter()),
                Expr::Unary(_, a) => stack.push(a),
                Expr::Binary(_, a, b) => stack.extend([&**a, &**b]),
                Expr::If(c, a, b) => stack.extend([&**c, &**a, &**b]),
                _ => {}
            }
        }
        s
    }
    let mut named: Vec<(&'a str, Vec<usize>)> =
        defs.iter().map(|(&n, &(i, next))| (n, std::iter::once(i).chain(next).collect())).collect();
    named.extend(pvs.iter().map(|&i| (stmts[i].name.as_str(), vec![i])));
    named.sort();
    loop {
        let mut changed = false;
        for (n, at) in &named {
            let s = at.iter().map(|&i| of(&stmts[i].expr, &stage, &pv_names, tables)).max().unwrap_or(0);
            if s > stage.get(n).copied().unwrap_or(0) {
                if s > pvs.len() {
                    let (i, what) = match pvs.iter().find(|&&i| stage.get(stmts[i].name.as_str()) >= Some(&pvs.len())) {
                        Some(&i) => (i, stmts[i].name.as_str()),
                        None => (at[0], *n),
                    };
                    return Err(err(
                        file,
                        stmts[i].pos,
                        format!("circular definition: present value '{what}' is summed from values that read it"),
                    ));
                }
                stage.insert(n, s);
                changed = true;
            }
        }
        if !changed {
            return Ok(stage);
        }
    }
}

/// The name of the per-policy projection length: months from it on are not projected.
pub(super) const PROJ_LEN: &str = "proj_len";

/// One pass over the months (its program laid out as the last pass's: the same states and inputs).
#[derive(Debug)]
pub(super) struct Pass {
    pub program: Program,
    pub starts: Vec<u32>,
    pub proj_len: Option<u32>,
    /// The present values it sums, by their index.
    pub sums: Vec<usize>,
}

/// The number of months to project: `months`, or fewer when the policy's projection length (`proj_len`, in
/// register `reg`) is shorter.
pub(super) fn run_length(regs: &[f64], reg: Option<u32>, months: usize, at: &str) -> Result<usize, String> {
    let Some(r) = reg else { return Ok(months) };
    let v = regs.get(r as usize).copied().unwrap_or(f64::NAN);
    if !(v >= 0.0 && v.fract() == 0.0) {
        return Err(format!(
            "{at}: the projection length '{PROJ_LEN}' of this policy is {v}, not a whole number of months"
        ));
    }
    Ok(if v < months as f64 { v as usize } else { months })
}
