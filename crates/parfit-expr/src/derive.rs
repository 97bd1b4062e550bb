//! Symbolic differentiation of register code: derivatives propagate forward through straight-line code as
//! sparse rows, emitted as new code by the shared [`Emitter`]. It gives the Jacobian ∂F/∂u, the forward
//! sensitivity sections (∂u0/∂p, ∂F/∂p, ∂out/∂(u, p)), the tangent code of explicit integrators, and the
//! event sections' derivatives.

use std::collections::{HashMap, HashSet};

use crate::emit::{Emitter, Level, Val};
use crate::eval::{Instr, Op, Program};
use crate::system::LookupMode;

/// A sparse row of derivatives with respect to the states: `(state index, value)`, sorted by state.
type Grad = Vec<(u32, Val)>;

/// The non-zero entries of a derivative: `(row, column, register)`.
type Entries = Vec<(u32, u32, u32)>;

impl Emitter {
    // ---- The Jacobian ∂F/∂u, by differentiating the right-hand side's code ----

    /// Generate code for the non-zero entries of `∂F/∂u` as a new dynamic section that runs after `rhs`
    /// (so it may read every right-hand-side result), and return the entries as `(row, column,
    /// register)`. Derivatives propagate forward through the straight-line code as sparse rows, so the
    /// sparsity pattern comes out exact and derivatives that depend only on parameters (all of them, for a
    /// linear model) are computed once per simulation in the setup code.
    pub fn jacobian(&mut self, rhs: &[Instr], f: &[u32]) -> Result<Vec<(u32, u32, u32)>, String> {
        // Let the derivative code reuse what the right-hand side already computed, e.g. `exp(x)`.
        self.share(rhs);
        let mut dynamic: HashSet<u32> = rhs.iter().map(|i| i.dst).collect();
        dynamic.insert(Program::T as u32);
        let mut grads: HashMap<u32, Grad> = HashMap::new();
        for j in 0..self.n_states {
            let r = Program::state_reg(j) as u32;
            dynamic.insert(r);
            grads.insert(r, vec![(j as u32, Val::Const(1.0))]);
        }
        self.derive(rhs, &dynamic, &mut grads)?;
        Ok(self.entries(&grads, f))
    }

    /// The derivatives of the registers `rows` with respect to the registers `seeds`, which `code` (the
    /// current dynamic section, already taken) reads as inputs: `(row, seed index, value)` for each one not
    /// identically zero. The mass matrix's entries are these for `M_i` over the `dudt_i` registers; a
    /// value's level tells whether it changes within a simulation.
    pub fn derivatives(&mut self, code: &[Instr], rows: &[u32], seeds: &[u32]) -> Result<Vec<(u32, u32, Val)>, String> {
        self.share(code);
        let mut dynamic: HashSet<u32> = code.iter().map(|i| i.dst).chain(seeds.iter().copied()).collect();
        dynamic.insert(Program::T as u32);
        dynamic.extend((0..self.n_states).map(|j| Program::state_reg(j) as u32));
        let mut grads: HashMap<u32, Grad> =
            seeds.iter().enumerate().map(|(k, &r)| (r, vec![(k as u32, Val::Const(1.0))])).collect();
        self.derive(code, &dynamic, &mut grads)?;
        let mut entries = Vec::new();
        for (row, r) in rows.iter().enumerate() {
            for &(col, v) in grads.get(r).map_or(&[][..], |g| &g[..]) {
                if !matches!(v, Val::Const(z) if z == 0.0) {
                    entries.push((row as u32, col, v));
                }
            }
        }
        Ok(entries)
    }

    /// Propagate sparse derivative rows forward through `code`: `grads` holds the rows of the registers
    /// derived so far (the seeds) and receives one for every result that depends on them. `dynamic` holds
    /// the registers whose values change within a simulation (the rest are parameter-level), so each
    /// derivative lands in the right section.
    ///
    /// Every intermediate value keeps its row, so a dense model (each value depending on many states) holds
    /// many entries: their count is checked against the memory budget as they grow.
    fn derive(&mut self, code: &[Instr], dynamic: &HashSet<u32>, grads: &mut HashMap<u32, Grad>) -> Result<(), String> {
        let entry_bytes = std::mem::size_of::<(u32, Val)>() as f64;
        let budget = parfit_core::limits::memory_limit() as f64 / entry_bytes;
        let mut held: f64 = grads.values().map(|g| g.len() as f64).sum();
        let consts: HashMap<u32, f64> = self.consts.iter().copied().collect();
        // The model index `N` is an input that changes within a simulation, like the state.
        let model_index = self.model_index;
        let val = |r: u32| match consts.get(&r) {
            Some(&c) => Val::Const(c),
            None if dynamic.contains(&r) || model_index == Some(r) => Val::Reg(r, Level::Dynamic),
            None => Val::Reg(r, Level::Param),
        };
        let none = Grad::new();
        for i in code {
            let (a, b) = (val(i.a), val(i.b));
            let dst = val(i.dst);
            let da = grads.get(&i.a).unwrap_or(&none).clone();
            // Unary ops repeat `a` as `b` and `c`; only binary ops and `Select` have a second gradient.
            let db = match i.op {
                Op::Add
                | Op::Sub
                | Op::Mul
                | Op::Div
                | Op::Pow
                | Op::Min
                | Op::Max
                | Op::Modulo
                | Op::NanElse
                | Op::Select
                | Op::If
                | Op::LookupArea => grads.get(&i.b).unwrap_or(&none).clone(),
                _ => Grad::new(),
            };
            if da.is_empty() && db.is_empty() && !matches!(i.op, Op::Select | Op::If) {
                continue;
            }
            let one = Val::Const(1.0);
            let g = match i.op {
                Op::Add => self.lin(one, &da, one, &db),
                Op::Sub => self.lin(one, &da, Val::Const(-1.0), &db),
                Op::Mul => self.lin(b, &da, a, &db),
                Op::Div => {
                    // d(a/b) = (da - (a/b) db) / b
                    let inv = self.d_div(one, b);
                    let cb = if db.is_empty() { Val::Const(0.0) } else { self.d_mul(dst, inv) };
                    let cb = self.d_neg(cb);
                    self.lin(inv, &da, cb, &db)
                }
                Op::Pow => {
                    // d(a^b) = b a^(b-1) da + a^b ln(a) db
                    let ca = match b {
                        Val::Const(2.0) => self.d_mul(Val::Const(2.0), a),
                        Val::Const(e) => {
                            let p = match self.small_power(a, e - 1.0) {
                                Some(p) => p,
                                None => self.op(Op::Pow, a, Val::Const(e - 1.0)),
                            };
                            self.d_mul(b, p)
                        }
                        _ => {
                            let bm1 = self.d_sub(b, one);
                            let p = self.op(Op::Pow, a, bm1);
                            self.d_mul(b, p)
                        }
                    };
                    let cb = if db.is_empty() {
                        Val::Const(0.0)
                    } else {
                        let ln = self.op(Op::Log, a, a);
                        self.d_mul(dst, ln)
                    };
                    self.lin(ca, &da, cb, &db)
                }
                // The derivative of the branch taken (ties go to `a`).
                Op::Min => {
                    let cond = self.op(Op::Sub, b, a);
                    self.choose(Op::Select, cond, &da, &db)
                }
                Op::Max => {
                    let cond = self.op(Op::Sub, a, b);
                    self.choose(Op::Select, cond, &da, &db)
                }
                Op::Select | Op::If => {
                    let dc = grads.get(&i.c).unwrap_or(&none).clone();
                    if db.is_empty() && dc.is_empty() {
                        continue;
                    }
                    self.choose(i.op, a, &db, &dc)
                }
                Op::NanElse => {
                    // The derivative of the value taken: `b`'s where `a` is NaN.
                    let nan = self.op(Op::Ne, a, a);
                    self.choose(Op::If, nan, &db, &da)
                }
                Op::Modulo => {
                    // a mod b = a - q·b with q = trunc(a / b), a whole number: d = da - q·db, with the q
                    // this remainder implies.
                    let cb = if db.is_empty() {
                        Val::Const(0.0)
                    } else {
                        let diff = self.op(Op::Sub, a, dst);
                        let q = self.op(Op::Div, diff, b);
                        self.d_neg(q)
                    };
                    self.lin(one, &da, cb, &db)
                }
                Op::Lookup(mode) => {
                    if matches!(mode, LookupMode::Forward | LookupMode::Backward) {
                        continue;
                    }
                    let k = self.table_op(Op::LookupSlope(mode), i.d, a, a);
                    self.lin(k, &da, Val::Const(0.0), &none)
                }
                Op::LookupArea => {
                    // d∫_a^b f = f(b) db - f(a) da
                    let interpolate = Op::Lookup(LookupMode::Interpolate);
                    let fa = if da.is_empty() { Val::Const(0.0) } else { self.table_op(interpolate, i.d, a, a) };
                    let fa = self.d_neg(fa);
                    let fb = if db.is_empty() { Val::Const(0.0) } else { self.table_op(interpolate, i.d, b, b) };
                    self.lin(fa, &da, fb, &db)
                }
                // Piecewise constant: no derivative (a table's slope is constant on each segment).
                Op::LookupSlope(_) => continue,
                Op::Heaviside
                | Op::Trunc
                | Op::Floor
                | Op::Eq
                | Op::Ne
                | Op::Lt
                | Op::Le
                | Op::Gt
                | Op::Ge
                | Op::And
                | Op::Or
                | Op::Not => continue,
                Op::Copysign => {
                    // |a| sign(b): the sign of a times the sign of b (b's own derivative is zero almost
                    // everywhere).
                    let sa = self.op(Op::Copysign, one, a);
                    let sb = self.op(Op::Copysign, one, b);
                    let s = self.d_mul(sa, sb);
                    self.lin(s, &da, Val::Const(0.0), &none)
                }
                op => {
                    let k = self.unary_derivative(op, a, dst);
                    self.lin(k, &da, Val::Const(0.0), &none)
                }
            };
            held += g.len() as f64;
            if held > budget {
                let what = "the derivatives of the model's code (for its Jacobian or sensitivities)";
                parfit_core::limits::check_allocation(what, held, entry_bytes)?;
            }
            if !g.is_empty() {
                grads.insert(i.dst, g);
            }
        }
        Ok(())
    }

    /// `(row, column, register)` of the non-zero derivatives of the registers `rows`.
    fn entries(&mut self, grads: &HashMap<u32, Grad>, rows: &[u32]) -> Vec<(u32, u32, u32)> {
        let mut entries = Vec::new();
        for (row, r) in rows.iter().enumerate() {
            for &(col, v) in grads.get(r).map_or(&[][..], |g| &g[..]) {
                if !matches!(v, Val::Const(z) if z == 0.0) {
                    let reg = self.reg(v);
                    entries.push((row as u32, col, reg));
                }
            }
        }
        entries
    }

    /// Code for the parameter derivatives the forward sensitivity equations need, run only when they are
    /// wanted: ∂(parameter-level values)/∂p (once per simulation; gives ∂u0/∂p), ∂F/∂p (after the
    /// right-hand side and the Jacobian code, whose results it may reuse), and ∂out/∂u and ∂out/∂p (after
    /// the output code).
    pub fn sensitivities(&mut self, p: &mut Program) -> Result<(), String> {
        let n = self.n_states as u32;
        let mark = self.setup.len();
        let pgrads = self.parameter_derivatives(p)?;

        // ∂F/∂p with the state held fixed: parameter-level values are the only seeds.
        self.take_dynamic();
        self.share(&p.rhs);
        self.share(&p.jac);
        let mut dynamic: HashSet<u32> = p.rhs.iter().chain(&p.jac).map(|i| i.dst).collect();
        dynamic.insert(Program::T as u32);
        dynamic.extend((0..n).map(|j| Program::state_reg(j as usize) as u32));
        let mut grads = pgrads.clone();
        self.derive(&p.rhs, &dynamic, &mut grads)?;
        p.pjac_entries = self.entries(&grads, &p.f);
        p.pjac = self.take_dynamic();

        // Outputs: columns 0..n are the states, n.. the parameters.
        let (dout, entries) = self.state_parameter_derivatives(&p.out, &p.out_regs, &pgrads, None)?;
        let (dy, dp): (Vec<_>, Vec<_>) = entries.into_iter().partition(|&(_, col, _)| col < n);
        p.dout_dy = dy;
        p.dout_dp = dp.into_iter().map(|(row, col, r)| (row, col - n, r)).collect();
        p.dout = dout;
        // The events' sections, with `t` as one more column after the parameters (the jump conditions of
        // the sensitivities need ∂/∂t too).
        let t_col = Some(n + p.n_params as u32);
        (p.dstop, p.dstop_entries) = self.state_parameter_derivatives(&p.stop, &p.stop_regs, &pgrads, t_col)?;
        (p.dreset, p.dreset_entries) = self.state_parameter_derivatives(&p.reset, &p.reset_regs, &pgrads, t_col)?;
        p.dsetup = self.setup.split_off(mark);
        p.sensitivities = true;
        Ok(())
    }

    /// The derivatives of the registers `results` of the dynamic section `code` (run after `t` and the state
    /// were written) with respect to the state (columns `0..n`), the parameters (`n..`, from their
    /// parameter-level derivatives `pgrads`) and, given its column, `t`: a new section run after `code`, and
    /// its non-zero entries `(result, column, register)`.
    fn state_parameter_derivatives(
        &mut self,
        code: &[Instr],
        results: &[u32],
        pgrads: &HashMap<u32, Grad>,
        t_col: Option<u32>,
    ) -> Result<(Vec<Instr>, Entries), String> {
        let n = self.n_states as u32;
        self.take_dynamic();
        self.share(code);
        let mut dynamic: HashSet<u32> = code.iter().map(|i| i.dst).collect();
        dynamic.insert(Program::T as u32);
        let mut grads: HashMap<u32, Grad> =
            pgrads.iter().map(|(&r, g)| (r, g.iter().map(|&(c, v)| (c + n, v)).collect())).collect();
        for j in 0..n {
            let r = Program::state_reg(j as usize) as u32;
            dynamic.insert(r);
            grads.insert(r, vec![(j, Val::Const(1.0))]);
        }
        if let Some(col) = t_col {
            grads.insert(Program::T as u32, vec![(col, Val::Const(1.0))]);
        }
        self.derive(code, &dynamic, &mut grads)?;
        let entries = self.entries(&grads, results);
        Ok((self.take_dynamic(), entries))
    }

    /// ∂(parameter-level values)/∂p as sparse rows over the parameters, by derivative code appended to the
    /// setup code, and from them the initial sensitivities [`Program::init_sens`].
    fn parameter_derivatives(&mut self, p: &mut Program) -> Result<HashMap<u32, Grad>, String> {
        let setup = self.setup.clone();
        let mut pgrads: HashMap<u32, Grad> = HashMap::new();
        for k in 0..p.n_params {
            pgrads.insert(p.param_reg(k) as u32, vec![(k as u32, Val::Const(1.0))]);
        }
        self.derive(&setup, &HashSet::new(), &mut pgrads)?;
        p.init_sens = self.entries(&pgrads, &p.init);
        Ok(pgrads)
    }

    /// Tangent (forward-mode) code for explicit integrators, which never form ∂F/∂u: for one parameter `p_k`
    /// at a time, given the state's tangent `ṡ = ∂u/∂p_k` and the tangents of the parameter-level values the
    /// dynamic code reads (written by the runner into *tangent input* registers), `tan_rhs` computes
    /// `Ḟ = ∂F/∂u·ṡ + ∂F/∂p_k` and `tan_out` the outputs' tangents. Each is the dynamic code differentiated
    /// instruction by instruction, every derivative a single value (a one-column [`derive`](Self::derive)),
    /// so its size is a small multiple of the code's whatever the Jacobian's density. The parameter-level
    /// tangents come from the same `dsetup` code as the Jacobian mode's ∂u0/∂p.
    pub fn tangents(&mut self, p: &mut Program) -> Result<(), String> {
        let mark = self.setup.len();
        let pgrads = self.parameter_derivatives(p)?;
        let tangent = |r: u32| vec![(0, Val::Reg(r, Level::Dynamic))];
        let mut seeds: HashMap<u32, Grad> = HashMap::new();
        for j in 0..self.n_states {
            let input = self.fresh();
            p.tan_state.push(input);
            seeds.insert(Program::state_reg(j) as u32, tangent(input));
        }
        // The parameter-level values the dynamic code reads, each with a tangent input.
        let read: std::collections::BTreeSet<u32> = p
            .rhs
            .iter()
            .chain(&p.out)
            .flat_map(|i| [i.a, i.b, i.c])
            .chain(p.f.iter().chain(&p.out_regs).copied())
            .filter(|r| pgrads.contains_key(r))
            .collect();
        for r in read {
            let input = self.fresh();
            p.tan_inputs.push(input);
            seeds.insert(r, tangent(input));
            for &(k, v) in &pgrads[&r] {
                let source = self.reg(v);
                p.tan_seeds.push((k, input, source));
            }
        }
        p.tan_seeds.sort_unstable();

        let section = |e: &mut Emitter, code: &[Instr], results: &[u32]| -> Result<(Vec<Instr>, Vec<u32>), String> {
            e.take_dynamic();
            e.share(code);
            let mut dynamic: HashSet<u32> = code.iter().map(|i| i.dst).collect();
            dynamic.insert(Program::T as u32);
            dynamic.extend((0..e.n_states).map(|j| Program::state_reg(j) as u32));
            let mut grads = seeds.clone();
            e.derive(code, &dynamic, &mut grads)?;
            let regs = results
                .iter()
                .map(|r| {
                    let v = grads.get(r).and_then(|g| g.first()).map_or(Val::Const(0.0), |&(_, v)| v);
                    e.reg(v)
                })
                .collect();
            Ok((e.take_dynamic(), regs))
        };
        (p.tan_rhs, p.tan_f) = section(self, &p.rhs, &p.f)?;
        (p.tan_out, p.tan_out_regs) = section(self, &p.out, &p.out_regs)?;
        p.dsetup = self.setup.split_off(mark);
        p.tangent = true;
        Ok(())
    }

    /// `d op(a) / da` for the one-argument functions, given `dst = op(a)`.
    fn unary_derivative(&mut self, op: Op, a: Val, dst: Val) -> Val {
        let one = Val::Const(1.0);
        match op {
            Op::Neg => Val::Const(-1.0),
            Op::Exp => dst,
            Op::Log => self.d_div(one, a),
            Op::Log10 => {
                let x = self.d_mul(a, Val::Const(std::f64::consts::LN_10));
                self.d_div(one, x)
            }
            Op::Sqrt => {
                let x = self.d_mul(Val::Const(2.0), dst);
                self.d_div(one, x)
            }
            Op::Sin => self.op(Op::Cos, a, a),
            Op::Cos => {
                let s = self.op(Op::Sin, a, a);
                self.d_neg(s)
            }
            Op::Tan => {
                let sq = self.op(Op::Mul, dst, dst);
                self.op(Op::Add, one, sq)
            }
            Op::Sinh => self.op(Op::Cosh, a, a),
            Op::Cosh => self.op(Op::Sinh, a, a),
            Op::Tanh => {
                let sq = self.op(Op::Mul, dst, dst);
                self.op(Op::Sub, one, sq)
            }
            Op::Asinh => {
                let sq = self.op(Op::Mul, a, a);
                let x = self.op(Op::Add, sq, one);
                let r = self.op(Op::Sqrt, x, x);
                self.d_div(one, r)
            }
            Op::Acosh => {
                // 1 / (sqrt(a - 1) sqrt(a + 1)): accurate near a = 1, unlike sqrt(a² - 1).
                let (m, p) = (self.op(Op::Sub, a, one), self.op(Op::Add, a, one));
                let (m, p) = (self.op(Op::Sqrt, m, m), self.op(Op::Sqrt, p, p));
                let x = self.op(Op::Mul, m, p);
                self.d_div(one, x)
            }
            Op::Asin | Op::Acos => {
                // ±1 / sqrt(1 - a²)
                let sq = self.op(Op::Mul, a, a);
                let x = self.op(Op::Sub, one, sq);
                let r = self.op(Op::Sqrt, x, x);
                let sign = if op == Op::Asin { one } else { Val::Const(-1.0) };
                self.d_div(sign, r)
            }
            Op::Atan => {
                let sq = self.op(Op::Mul, a, a);
                let x = self.op(Op::Add, one, sq);
                self.d_div(one, x)
            }
            Op::Abs => self.op(Op::Copysign, one, a),
            Op::Sigmoid => {
                let x = self.op(Op::Sub, one, dst);
                self.op(Op::Mul, dst, x)
            }
            Op::Erf | Op::Erfc => {
                // ±2/√π · e^(−a²)
                let sq = self.op(Op::Mul, a, a);
                let neg = self.op(Op::Neg, sq, sq);
                let e = self.op(Op::Exp, neg, neg);
                let c = std::f64::consts::FRAC_2_SQRT_PI;
                self.op(Op::Mul, Val::Const(if op == Op::Erf { c } else { -c }), e)
            }
            _ => unreachable!("not a one-argument function: {op:?}"),
        }
    }

    /// `ca · da + cb · db` on sparse rows.
    fn lin(&mut self, ca: Val, da: &[(u32, Val)], cb: Val, db: &[(u32, Val)]) -> Grad {
        let mut out = Grad::with_capacity(da.len().max(db.len()));
        let (mut i, mut j) = (0, 0);
        while i < da.len() || j < db.len() {
            let ka = da.get(i).map_or(u32::MAX, |e| e.0);
            let kb = db.get(j).map_or(u32::MAX, |e| e.0);
            let k = ka.min(kb);
            let x = if ka == k {
                i += 1;
                self.d_mul(ca, da[i - 1].1)
            } else {
                Val::Const(0.0)
            };
            let v = if kb == k {
                j += 1;
                match cb {
                    // `x - dy` rather than `x + (-dy)`: one instruction fewer.
                    Val::Const(-1.0) => self.d_sub(x, db[j - 1].1),
                    _ => {
                        let y = self.d_mul(cb, db[j - 1].1);
                        self.d_add(x, y)
                    }
                }
            } else {
                x
            };
            out.push((k, v));
        }
        out
    }

    /// Element-wise `if cond >= 0 { dx } else { dy }` (`op` = `Select`) or `if cond != 0 { dx } else { dy }`
    /// (`If`) on sparse rows.
    fn choose(&mut self, op: Op, cond: Val, dx: &[(u32, Val)], dy: &[(u32, Val)]) -> Grad {
        let zero = Val::Const(0.0);
        let (mut i, mut j, mut out) = (0, 0, Grad::new());
        while i < dx.len() || j < dy.len() {
            let ka = dx.get(i).map_or(u32::MAX, |e| e.0);
            let kb = dy.get(j).map_or(u32::MAX, |e| e.0);
            let k = ka.min(kb);
            let x = if ka == k {
                i += 1;
                dx[i - 1].1
            } else {
                zero
            };
            let y = if kb == k {
                j += 1;
                dy[j - 1].1
            } else {
                zero
            };
            out.push((k, self.op3(op, cond, x, y)));
        }
        out
    }

    // Arithmetic for derivative code: like `op`, but also dropping additions of 0 and multiplications by
    // 0 and ±1, which chain-rule products are full of. (Not used for the model's own code, where `0 · x`
    // must stay NaN for an infinite `x`.)

    fn d_add(&mut self, a: Val, b: Val) -> Val {
        match (a, b) {
            (Val::Const(0.0), x) | (x, Val::Const(0.0)) => x,
            _ => self.op(Op::Add, a, b),
        }
    }

    fn d_sub(&mut self, a: Val, b: Val) -> Val {
        match (a, b) {
            (x, Val::Const(0.0)) => x,
            (Val::Const(0.0), x) => self.d_neg(x),
            _ => self.op(Op::Sub, a, b),
        }
    }

    fn d_mul(&mut self, a: Val, b: Val) -> Val {
        match (a, b) {
            (Val::Const(0.0), _) | (_, Val::Const(0.0)) => Val::Const(0.0),
            (Val::Const(1.0), x) | (x, Val::Const(1.0)) => x,
            (Val::Const(-1.0), x) | (x, Val::Const(-1.0)) => self.d_neg(x),
            _ => self.op(Op::Mul, a, b),
        }
    }

    fn d_div(&mut self, a: Val, b: Val) -> Val {
        match (a, b) {
            (Val::Const(0.0), _) => Val::Const(0.0),
            (x, Val::Const(1.0)) => x,
            _ => self.op(Op::Div, a, b),
        }
    }

    fn d_neg(&mut self, a: Val) -> Val {
        self.op(Op::Neg, a, a)
    }
}
