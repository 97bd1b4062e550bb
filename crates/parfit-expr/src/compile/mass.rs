//! Mass matrices: `M_i` gives `M·du/dt` in terms of the derivatives `dudt_i` names, so the model is
//! `M du/dt = F(u, p, t)`. `M_i` must be linear and homogeneous in those names, which may appear nowhere
//! else, and `M` may depend on parameters but not on `t` or the state. Its entries are the derivatives of
//! `M_i`'s code with respect to registers standing for `dudt_i`, so they come out as constants or
//! parameter-level values (computed once per simulation), like the entries of a linear model's Jacobian.

use super::{Gen, Role, Sym, TDef};
use crate::emit::{Level, Val};
use crate::eval::Program;
use crate::lexer::{Located, Pos};
use crate::parser::{BinOp, Expr, unsupported};

/// How an expression of `M_i` depends on the names of `dudt_i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Degree {
    /// Not at all.
    Free,
    /// Linearly and homogeneously: a sum of terms each `du/dt` times something free of it.
    Linear,
}

/// `M_i` needs `dudt_i`, to name the derivatives it multiplies (checked before anything is resolved).
pub(super) fn check_pairing(defs: &[TDef<'_>]) -> Result<(), Located> {
    let has = |role| defs.iter().find(|d| d.role == role);
    if let (Some(m), None) = (has(Role::Mass), has(Role::Dudt)) {
        return Err(Located::new(
            m.t.pos,
            format!(
                "'{}' gives M·du/dt in terms of the derivatives 'dudt_i' names, but there is no 'dudt_i': add one, \
                 with one named element per state (as 'dudt_i {{ dxdt = 0, … }}')",
                m.t.name
            ),
        ));
    }
    Ok(())
}

/// Check `M_i` and `dudt_i` against the state `u` (one element of each per state), and that no tensor but
/// `M_i` reads `dudt_i`. Returns `dudt_i`, if there is one. Without `M_i` it is accepted and unused (the
/// mass matrix is the identity), as DiffSL does.
pub(super) fn check_shapes(g: &Gen<'_>, u: usize) -> Result<Option<usize>, Located> {
    let find = |role| g.defs.iter().position(|d| d.role == role);
    let (mass, dudt) = (find(Role::Mass), find(Role::Dudt));
    let n = g.len(u);
    let states = &g.defs[u].t.name;
    for (tid, what) in [(mass, "M·du/dt has one element per state"), (dudt, "one derivative per state")] {
        if let Some(tid) = tid
            && g.len(tid) != n
        {
            let d = &g.defs[tid].t;
            return Err(Located::new(
                d.pos,
                format!("'{}' has {} elements but '{states}' has {n} states ({what})", d.name, g.len(tid)),
            ));
        }
    }
    if let Some(dudt) = dudt {
        for d in g.defs.iter().filter(|d| !matches!(d.role, Role::Mass | Role::Dudt)) {
            for el in &d.t.elements {
                if let Some((name, pos)) = g.dudt_reference(&el.expr, dudt) {
                    return Err(Located::new(
                        pos,
                        format!(
                            "'{name}' is du/dt (named by '{}'): it may appear only in 'M_i', and '{}' cannot \
                             depend on it",
                            g.defs[dudt].t.name, d.t.name
                        ),
                    ));
                }
            }
        }
    }
    Ok(dudt)
}

impl Gen<'_> {
    /// The first name in `e` that refers to (part of) the tensor `dudt`, with where it is.
    fn dudt_reference(&self, e: &Expr, dudt: usize) -> Option<(String, Pos)> {
        let refers = |name: &str| match self.syms.get(name) {
            Some(&(Sym::Tensor(tid) | Sym::Block(tid, _), _)) => tid == dudt,
            None => false,
        };
        match e {
            Expr::Num(_) | Expr::Read(..) => None,
            Expr::Name(name, pos) => refers(name).then(|| (name.clone(), *pos)),
            Expr::Tensor(r) => refers(&r.base).then(|| (r.full_name(), r.pos)),
            Expr::Neg(x) => self.dudt_reference(x, dudt),
            Expr::Chain(first, rest) => {
                std::iter::once(&**first).chain(rest.iter().map(|(_, e)| e)).find_map(|e| self.dudt_reference(e, dudt))
            }
            Expr::Call(_, args) | Expr::Draw(_, args, ..) => args.iter().find_map(|a| self.dudt_reference(a, dudt)),
        }
    }

    /// How `e` (in `M_i`) depends on `dudt`, or why it is not linear in it.
    fn degree(&self, e: &Expr, dudt: usize) -> Result<Degree, &'static str> {
        let of = |found: bool| if found { Degree::Linear } else { Degree::Free };
        Ok(match e {
            Expr::Num(_) | Expr::Read(..) => Degree::Free,
            Expr::Name(..) | Expr::Tensor(_) => of(self.dudt_reference(e, dudt).is_some()),
            Expr::Neg(x) => self.degree(x, dudt)?,
            Expr::Chain(first, rest) => {
                let mut acc = self.degree(first, dudt)?;
                for (op, e) in rest {
                    let d = self.degree(e, dudt)?;
                    acc = match (op, acc, d) {
                        (BinOp::Add | BinOp::Sub, a, b) if a == b => a,
                        (BinOp::Add | BinOp::Sub, ..) => return Err("adds a term without du/dt to one with it"),
                        (BinOp::Mul, Degree::Linear, Degree::Linear) => return Err("multiplies du/dt by du/dt"),
                        (BinOp::Mul, a, b) => of(a == Degree::Linear || b == Degree::Linear),
                        (BinOp::Div, _, Degree::Linear) => return Err("divides by du/dt"),
                        (BinOp::Div, a, Degree::Free) => a,
                    };
                }
                acc
            }
            Expr::Call(_, args) | Expr::Draw(_, args, ..) => {
                if args.iter().any(|a| self.dudt_reference(a, dudt).is_some()) {
                    return Err("applies a function to du/dt");
                }
                Degree::Free
            }
        })
    }

    /// The entries of the mass matrix of `M_i` (tensor `m`) as `(row, column, register)`. With
    /// `sensitivities`, `M` must be constant: the sensitivity equations would need `∂M/∂p · du/dt`.
    pub(super) fn mass_matrix(&mut self, m: usize, sensitivities: bool) -> Result<Vec<(u32, u32, u32)>, Located> {
        let dudt = self.dudt.expect("check_shapes requires dudt_i with M_i");
        let t = self.defs[m].t;
        let layout = self.layouts[m].clone().expect("layouts are computed first");
        let mut free = Vec::new();
        for (e, el) in t.elements.iter().enumerate() {
            let (start, len) = layout.span(e);
            match self.degree(&el.expr, dudt) {
                Ok(Degree::Linear) => {}
                Ok(Degree::Free) => free.push((el.expr_pos, start, len)),
                Err(why) => {
                    return Err(Located::new(
                        el.expr_pos,
                        format!("'{}' must be linear in du/dt (the names of 'dudt_i'): this element {why}", t.name),
                    ));
                }
            }
        }

        let n = self.e.n_states;
        self.dudt_regs = (0..n).map(|_| self.e.fresh()).collect();
        self.take_dynamic();
        let vals = self.value(m)?.to_dense();
        let rows: Vec<u32> = vals.iter().map(|&v| self.e.reg(v)).collect();
        let code = self.take_dynamic();
        let located = |g: &Self, m| Located::new(g.defs[dudt].t.pos, m);
        let row_pos = |g: &Self, row: usize| g.element_at(m, row).expr_pos;
        let states: Vec<u32> = (0..n).map(|j| Program::state_reg(j) as u32).collect();
        let by_state = self.e.derivatives(&code, &rows, &states).map_err(|m| located(self, m))?;
        self.take_dynamic();
        if let Some(&(row, ..)) = by_state.first() {
            // DiffSL refuses this itself ("M must not be dependent on u").
            return Err(Located::new(
                row_pos(self, row as usize),
                format!("'{}' must not depend on the state: the mass matrix multiplies du/dt by constants", t.name),
            ));
        }
        let entries = self.e.derivatives(&code, &rows, &self.dudt_regs.clone()).map_err(|m| located(self, m))?;
        self.take_dynamic();
        // What changes within a solve and is not the state is `t` (or `N`): a coefficient of du/dt, or an
        // element without du/dt.
        let changing =
            entries.iter().find(|e| e.2.level() == Some(Level::Dynamic)).map(|e| e.0 as usize).or_else(|| {
                free.iter()
                    .flat_map(|&(_, start, len)| start..start + len)
                    .find(|&k| vals[k].level() == Some(Level::Dynamic))
            });
        if let Some(row) = changing {
            return Err(unsupported(
                row_pos(self, row),
                "a mass matrix that changes with t or the state",
                &format!("this element of '{}' depends on t; parfit's mass matrices are constant", t.name),
            ));
        }
        for &(pos, start, len) in &free {
            if vals[start..start + len].iter().any(|v| !matches!(v, Val::Const(z) if *z == 0.0)) {
                return Err(Located::new(
                    pos,
                    format!(
                        "this element of '{}' does not involve du/dt, so it must be 0: M·du/dt has no constant term",
                        t.name
                    ),
                ));
            }
        }
        if sensitivities && let Some(&(row, ..)) = entries.iter().find(|e| e.2.level() == Some(Level::Param)) {
            return Err(unsupported(
                row_pos(self, row as usize),
                "a mass matrix that depends on parameters, with sensitivities",
                &format!(
                    "this element of '{}' reads a parameter; set the option sensitivities = false (fitters then use \
                     finite differences)",
                    t.name
                ),
            ));
        }
        Ok(entries.into_iter().map(|(row, col, v)| (row, col, self.e.reg(v))).collect())
    }
}

#[cfg(test)]
mod tests {
    use crate::{Dialect, compile, compile_with_sensitivities};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// The mass matrix as `(row, column, value)` after starting the program with `params`.
    fn mass(src: &str, params: &[f64]) -> Vec<(u32, u32, f64)> {
        let p = compile(src, Dialect::Ode).unwrap_or_else(|e| panic!("{e}")).program;
        let mut regs = vec![0.0; p.n_regs];
        let mut y = vec![0.0; p.n_states];
        p.start(&mut regs, params, &mut y);
        let mut values = vec![0.0; p.mass_entries.len()];
        p.mass_values(&regs, &mut values);
        p.mass_entries.iter().zip(values).map(|(&(i, j, _), v)| (i, j, v)).collect()
    }

    fn err(src: &str) -> String {
        let e = compile(src, Dialect::Ode).map(|_| ()).unwrap_err();
        format!("{}:{}: {}", e.pos.line, e.pos.col, e.message)
    }

    #[test]
    fn the_mass_matrix_is_read_from_m_i() {
        // The diffsl README's Robertson DAE: M = diag(1, 1, 0).
        let robertson = "in_i { k1 = 0.04, k2 = 10000, k3 = 30000000 }
u_i { x = 1, y = 0, z = 0 }
dudt_i { dxdt = 1, dydt = 0, dzdt = 0 }
M_i { dxdt, dydt, 0 }
F_i { -k1 * x + k2 * y * z, k1 * x - k2 * y * z - k3 * y * y, 1 - x - y - z }";
        assert_eq!(mass(robertson, &[0.04, 1e4, 3e7]), [(0, 0, 1.0), (1, 1, 1.0)]);
        // Parameters, constants, sums, scaled and negated terms, vector names, off-diagonal entries.
        let src = "in_i { k = 3 }
c { 0.5 }
u_i { (0:2): x = 1, y = 0 }
dudt_i { (0:2): dx = 0, dy = 0 }
M_i { (0:2): k * dx_i, c * dy - dx_i[0] / 4 + -(dx_i[1]) }
F_i { -x_i, y }";
        assert_eq!(mass(src, &[3.0]), [(0, 0, 3.0), (1, 1, 3.0), (2, 0, -0.25), (2, 1, -1.0), (2, 2, 0.5)]);
        // `M_i { dudt_i }` is the identity, written out.
        let identity = "u_i { (0:3): x = 1 }\ndudt_i { (0:3): d = 0 }\nM_i { dudt_i }\nF_i { -x_i }";
        assert_eq!(mass(identity, &[]), [(0, 0, 1.0), (1, 1, 1.0), (2, 2, 1.0)]);
        // `dudt_i` without `M_i` is allowed and unused, as in DiffSL.
        assert!(mass("u_i { x = 1 }\ndudt_i { dxdt = 0 }\nF_i { -x }", &[]).is_empty());
    }

    #[test]
    fn malformed_mass_matrices_are_refused_where_they_are() {
        let head = "in_i { k = 2 }\nu_i { x = 1, y = 0 }\n";
        let dudt = "dudt_i { dxdt = 0, dydt = 0 }\n";
        let f = "F_i { -x, x - y }\n";
        let cases: &[(&str, &str)] = &[
            (
                "M_i { dxdt, 0 }\n",
                "3:1: 'M_i' gives M·du/dt in terms of the derivatives 'dudt_i' names, but there is no",
            ),
            ("dudt_i { dxdt = 0 }\nM_i { dxdt, 0 }\n", "3:1: 'dudt_i' has 1 elements but 'u_i' has 2 states"),
            ("dudt_i { dxdt = 0, dydt = 0 }\nM_i { dxdt }\n", "4:1: 'M_i' has 1 elements but 'u_i' has 2 states"),
            ("dudt_i { dxdt = 0, dydt = 0 }\nM_i { dxdt * dxdt, 0 }\n", "4:7: 'M_i' must be linear in du/dt"),
            ("dudt_i { dxdt = 0, dydt = 0 }\nM_i { dxdt + 1, 0 }\n", "4:7: 'M_i' must be linear in du/dt (the names"),
            ("dudt_i { dxdt = 0, dydt = 0 }\nM_i { dxdt, 1 / dydt }\n", "4:13: 'M_i' must be linear in du/dt"),
            ("dudt_i { dxdt = 0, dydt = 0 }\nM_i { dxdt, exp(dydt) }\n", "4:13: 'M_i' must be linear in du/dt"),
            ("dudt_i { dxdt = 0, dydt = 0 }\nM_i { dxdt, k }\n", "4:13: this element of 'M_i' does not involve du/dt"),
            ("dudt_i { dxdt = 0, dydt = 0 }\nM_i { dxdt, y * dydt }\n", "4:13: 'M_i' must not depend on the state"),
            ("dudt_i { dxdt = 0, dydt = 0 }\nM_i { dxdt, 2 * y }\n", "4:13: 'M_i' must not depend on the state"),
            (
                "dudt_i { dxdt = 0, dydt = 0 }\nM_i { dxdt, t }\n",
                "4:13: not supported: a mass matrix that changes with t",
            ),
            (
                "dudt_i { dxdt = 0, dydt = 0 }\nM_i { (1 + t) * dxdt, dydt }\n",
                "4:7: not supported: a mass matrix that changes with t or the state (line 4)",
            ),
            ("dudt_i { dxdt = 0, dydt = 0 }\nM_i { dxdt, dydt }\nout_i { dxdt }\n", "5:9: 'dxdt' is du/dt"),
            ("dudt_i { (0:2): d = 0 }\nM_i { d_i }\nv_i { 2 * d_i }\n", "5:11: 'd_i' is du/dt"),
        ];
        for (mid, want) in cases {
            let src = format!("{head}{mid}{f}");
            let got = err(&src);
            assert!(got.starts_with(want), "source:\n{src}\ngot:  {got}\nwant: {want}…");
        }
        // du/dt in F_i, which DiffSL refuses too ("F must not be dependent on dudt").
        let got = err(&format!("{head}{dudt}M_i {{ dxdt, 0 }}\nF_i {{ -x + dxdt, x - y }}\n"));
        assert!(got.starts_with("5:12: 'dxdt' is du/dt (named by 'dudt_i'): it may appear only in 'M_i'"), "{got}");
    }

    /// With sensitivities the mass matrix must be constant; a plain compile accepts a parameter in it.
    #[test]
    fn a_parameter_dependent_mass_matrix_is_refused_with_sensitivities() {
        let src = "in_i { k = 2 }\nu_i { x = 1 }\ndudt_i { dxdt = 0 }\nM_i { k * dxdt }\nF_i { -x }";
        assert_eq!(mass(src, &[2.0]), [(0, 0, 2.0)]);
        let e = compile_with_sensitivities(src).map(|_| ()).unwrap_err();
        assert!(
            e.message
                .starts_with("not supported: a mass matrix that depends on parameters, with sensitivities (line 4)"),
            "{}",
            e.message
        );
        let constant = src.replace("k * dxdt", "2 * dxdt");
        assert!(compile_with_sensitivities(&constant).is_ok());
    }
}
