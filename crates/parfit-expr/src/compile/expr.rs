//! Code generation for tensors and expressions: each tensor's value is built element by element from its
//! expressions (evaluated as tensor values, summed over the letters the tensor lacks, and placed in their
//! blocks), with references, functions, `interp1d`, the model index `N` and random draws.

use std::rc::Rc;

use super::tensor::{self, Place, Tv, count};
use super::{Dialect, Gen, Role};
use crate::emit::{Level, Val};
use crate::eval::{DrawKind, Op, Program};
use crate::lexer::{Located, Pos};
use crate::lookup::LookupTable;
use crate::parser::{BinOp, Draw, Expr, Func, IntExpr, IntOp, Slice, TensorRef};
use crate::system::LookupMode;

impl<'a> Gen<'a> {
    /// The value of a tensor, generated once per section where it is used (the state and the inputs are
    /// their registers).
    pub(super) fn value(&mut self, tid: usize) -> Result<Rc<Tv>, Located> {
        if let Some(v) = self.static_vals[tid].clone().or_else(|| self.dynamic_vals[tid].clone()) {
            return Ok(v);
        }
        let (letters, shape) = {
            let layout = self.layouts[tid].as_ref().expect("layouts are computed first");
            (self.defs[tid].letters.clone(), layout.shape.clone())
        };
        let n = count(&shape) as usize;
        let vals: Rc<Tv> = Rc::new(match self.defs[tid].role {
            Role::State => {
                Tv::dense(letters, shape, (0..n).map(|k| Val::Reg(Program::state_reg(k) as u32, Level::Dynamic)))
            }
            Role::Dudt => Tv::dense(letters, shape, self.dudt_regs.iter().map(|&r| Val::Reg(r, Level::Dynamic))),
            Role::Input => {
                let p0 = 1 + self.e.n_states;
                Tv::dense(letters, shape, (0..n).map(|k| Val::Reg((p0 + k) as u32, Level::Param)))
            }
            _ => self.generate(tid)?,
        });
        if vals.entries.iter().any(|v| v.1.level() == Some(Level::Dynamic)) {
            self.dynamic_vals[tid] = Some(vals.clone());
        } else {
            self.static_vals[tid] = Some(vals.clone());
        }
        Ok(vals)
    }

    /// A tensor's entries as its elements define them (for the inputs: the defaults; for the state: the
    /// initial values). In tensors of two or more axes an entry that is exactly zero is a structural zero,
    /// as in DiffSL, so `(2, 2): 0.0` only sets the shape.
    pub(super) fn generate(&mut self, tid: usize) -> Result<Tv, Located> {
        let layout = self.layouts[tid].clone().expect("layouts are computed first");
        let letters = self.defs[tid].letters.clone();
        let t = self.defs[tid].t;
        let outer = (std::mem::take(&mut self.draw_block), self.at);
        let mut entries: Vec<(u64, Val, usize)> = Vec::new();
        for (e, el) in t.elements.iter().enumerate() {
            let b = &layout.blocks[e];
            self.at = el.expr_pos;
            let tv = match self.reads.get(&(tid, e)) {
                Some(tv) => Tv::clone(tv),
                None => {
                    self.draw_block = (letters.clone(), b.extent.clone());
                    let v = self.eval(&el.expr)?;
                    tensor::contract(&mut self.e, &v, &letters)
                }
            };
            let place = Place {
                letters: &letters,
                shape: &layout.shape,
                start: &b.start,
                extent: &b.extent,
                diagonal: b.diagonal,
            };
            entries.extend(tensor::place(&tv, &place).into_iter().map(|(k, v)| (k, v, e)));
        }
        (self.draw_block, self.at) = outer;
        entries.sort_by_key(|x| x.0);
        if letters.len() >= 2 {
            if let Some(w) = entries.windows(2).find(|w| w[0].0 == w[1].0) {
                let (mut c, later) = (Vec::new(), w[0].2.max(w[1].2));
                tensor::coords(w[0].0, &layout.shape, &mut c);
                let at: Vec<String> = c.iter().map(|x| x.to_string()).collect();
                let el = &t.elements[later];
                return Err(Located::new(
                    el.range.as_ref().map_or(el.pos, |r| r.pos),
                    format!("the entry ({}) of '{}' is given twice", at.join(", "), t.name),
                ));
            }
            entries.retain(|x| !matches!(x.1, Val::Const(z) if z == 0.0));
        }
        Ok(Tv { letters, shape: layout.shape.clone(), entries: entries.into_iter().map(|x| (x.0, x.1)).collect() })
    }

    /// A tensor, or one of its named elements, under the tensor's own letters.
    fn block_value(&mut self, tid: usize, block: Option<usize>) -> Result<Tv, Located> {
        let full = self.value(tid)?;
        let Some(b) = block else { return Ok(Tv::clone(&full)) };
        let layout = self.layouts[tid].clone().expect("layouts are computed first");
        let blk = &layout.blocks[b];
        if full.letters.len() == 1 && full.is_dense() {
            let (a, n) = (blk.start[0], blk.extent[0]);
            return Ok(Tv::dense(full.letters.clone(), vec![n], full.entries[a..a + n].iter().map(|x| x.1)));
        }
        let local = tensor::strides(&blk.extent);
        let mut c = Vec::new();
        let mut entries = Vec::new();
        for &(k, v) in &full.entries {
            tensor::coords(k, &full.shape, &mut c);
            let inside = c.iter().zip(&blk.start).zip(&blk.extent).all(|((&x, &a), &n)| x >= a && x < a + n);
            let on_diagonal = !blk.diagonal || c.iter().zip(&blk.start).all(|(&x, &a)| x - a == c[0] - blk.start[0]);
            if inside && on_diagonal {
                entries.push((c.iter().zip(&blk.start).zip(&local).map(|((&x, &a), &s)| (x - a) as u64 * s).sum(), v));
            }
        }
        Ok(Tv { letters: full.letters.clone(), shape: blk.extent.clone(), entries })
    }

    /// The value of an expression (within the element being generated).
    fn eval(&mut self, e: &Expr) -> Result<Tv, Located> {
        Ok(match e {
            Expr::Num(v) => Tv::scalar(Val::Const(*v)),
            Expr::Name(name, _) if name == "t" => Tv::scalar(Val::Reg(Program::T as u32, Level::Dynamic)),
            Expr::Name(name, _) if name == "N" => Tv::scalar(self.e.model_index()),
            Expr::Name(name, pos) => {
                let (tid, block) = self.symbol(name, *pos)?;
                let v = self.block_value(tid, block)?;
                Tv::scalar(v.entries.first().map_or(Val::Const(0.0), |x| x.1))
            }
            Expr::Tensor(r) => self.ref_value(r)?,
            Expr::Neg(x) => {
                let x = self.eval(x)?;
                self.map(&[&x], |e, v| e.op(Op::Neg, v[0], v[0]))?
            }
            Expr::Chain(first, rest) => {
                let mut acc = self.eval(first)?;
                for (op, x) in rest {
                    let b = self.eval(x)?;
                    self.check_size(&acc, &b, matches!(op, BinOp::Mul | BinOp::Div))?;
                    acc = match op {
                        BinOp::Add => tensor::union(&mut self.e, Op::Add, &acc, &b),
                        BinOp::Sub => tensor::union(&mut self.e, Op::Sub, &acc, &b),
                        BinOp::Mul | BinOp::Div => {
                            let op = if *op == BinOp::Mul { Op::Mul } else { Op::Div };
                            tensor::intersect(&mut self.e, op, &acc, &b).map_err(|_| {
                                Located::new(
                                    self.at,
                                    "division by a structural zero: the divisor is sparse where the dividend is not \
                                     (DiffSL divides by a sparse tensor only with the dividend's pattern)",
                                )
                            })?
                        }
                    };
                }
                acc
            }
            Expr::Call(f, args) => self.call(*f, args)?,
            Expr::Draw(draw, args, pos, site) => self.draw(*draw, args, *pos, *site)?,
            Expr::Read(_, pos) => {
                return Err(Located::new(*pos, "read('file.tns') is only valid as a whole element of a tensor"));
            }
        })
    }

    /// [`tensor::map`], its memory refusal placed at the element being generated.
    fn map(&mut self, args: &[&Tv], f: impl FnMut(&mut crate::emit::Emitter, &[Val]) -> Val) -> Result<Tv, Located> {
        tensor::map(&mut self.e, args, f).map_err(|m| Located::new(self.at, m))
    }

    /// Refuse a product or sum whose operands, spread over their joint space, would not fit the memory
    /// budget, before they are formed: a product spreads the operand it iterates (the one that spans the
    /// space, else the first), a sum both.
    fn check_size(&self, a: &Tv, b: &Tv, product: bool) -> Result<(), Located> {
        let (letters, shape) = tensor::joint_space(&[a, b]);
        let spans = |t: &Tv| t.letters == letters && t.shape == shape;
        let spread = |t: &Tv| tensor::spread_len(t, &letters, &shape);
        let n = match product {
            true if spans(a) => a.entries.len() as f64,
            true if spans(b) => b.entries.len() as f64,
            true => spread(a),
            false => spread(a) + spread(b),
        };
        let what = format!("a tensor expression of {n} entries");
        parfit_core::limits::check_allocation(&what, n, super::BYTES_PER_ELEMENT).map_err(|m| Located::new(self.at, m))
    }

    /// A tensor reference: the tensor under the reference's letters, or the element or range it selects.
    fn ref_value(&mut self, r: &TensorRef) -> Result<Tv, Located> {
        let (tid, block) = self.symbol(&r.base, r.pos)?;
        let mut v = self.block_value(tid, block)?;
        if v.shape.is_empty() {
            v.shape.push(1); // a scalar read as a vector of one element
        }
        let letters: Vec<char> = r.index.chars().collect();
        Ok(match &r.slice {
            None => v.relabel(letters),
            Some(Slice::At(k)) => Tv::scalar(v.get(*k as u64).unwrap_or(Val::Const(0.0))),
            Some(Slice::Range(a, b)) => {
                let (a, b) = (*a as u64, *b as u64);
                let entries = v.entries.iter().filter(|x| (a..b).contains(&x.0)).map(|x| (x.0 - a, x.1)).collect();
                Tv { letters: vec![letters[0]], shape: vec![(b - a) as usize], entries }
            }
            Some(Slice::Model(ix)) => {
                let at = self.index_value(ix);
                let vals = v.to_dense();
                Tv::scalar(self.select(at, &vals))
            }
            Some(Slice::ModelRange(start, w)) => {
                let start = self.index_value(start);
                let vals = v.to_dense();
                let mut out = Vec::with_capacity(*w);
                for k in 0..*w {
                    let at = self.e.op(Op::Add, start, Val::Const(k as f64));
                    out.push(self.select(at, &vals));
                }
                Tv::dense(vec![letters[0]], vec![*w], out)
            }
        })
    }

    /// An integer index expression as code: `/` truncates and `%` keeps the dividend's sign, as integer
    /// arithmetic does; whole numbers of this size are exact in `f64`.
    fn index_value(&mut self, ix: &IntExpr) -> Val {
        match ix {
            IntExpr::Int(k) => Val::Const(*k as f64),
            IntExpr::N => self.e.model_index(),
            IntExpr::Neg(x) => {
                let x = self.index_value(x);
                self.e.op(Op::Neg, x, x)
            }
            IntExpr::Bin(op, a, b) => {
                let (a, b) = (self.index_value(a), self.index_value(b));
                match op {
                    IntOp::Add => self.e.op(Op::Add, a, b),
                    IntOp::Sub => self.e.op(Op::Sub, a, b),
                    IntOp::Mul => self.e.op(Op::Mul, a, b),
                    IntOp::Div => {
                        let q = self.e.op(Op::Div, a, b);
                        self.e.op(Op::Trunc, q, q)
                    }
                    IntOp::Rem => self.e.op(Op::Modulo, a, b),
                }
            }
        }
    }

    /// `vals[at]`, chosen at run time; NaN when `at` is not an index of `vals`.
    fn select(&mut self, at: Val, vals: &[Val]) -> Val {
        let mut acc = Val::Const(f64::NAN);
        for (k, &v) in vals.iter().enumerate().rev() {
            let hit = self.e.op(Op::Eq, at, Val::Const(k as f64));
            acc = self.e.op3(Op::If, hit, v, acc);
        }
        acc
    }

    fn call(&mut self, func: Func, args: &[Expr]) -> Result<Tv, Located> {
        if func == Func::Interp1d {
            return self.interp1d(args);
        }
        let tvs = args.iter().map(|a| self.eval(a)).collect::<Result<Vec<Tv>, Located>>()?;
        let refs: Vec<&Tv> = tvs.iter().collect();
        Ok(match func {
            // piecewise(c0, v0, c1, v1, …, fallback), built from the fallback outwards.
            Func::Piecewise => self.map(&refs, |e, v| {
                let mut acc = v[v.len() - 1];
                for pair in v[..v.len() - 1].chunks(2).rev() {
                    acc = e.op3(Op::Select, pair[0], pair[1], acc);
                }
                acc
            })?,
            Func::Pow => self.map(&refs, |e, v| {
                let small = match v[1] {
                    Val::Const(x) => e.small_power(v[0], x),
                    Val::Reg(..) => None,
                };
                small.unwrap_or_else(|| e.op(Op::Pow, v[0], v[1]))
            })?,
            _ => {
                let op = match func {
                    Func::Exp => Op::Exp,
                    Func::Log => Op::Log,
                    Func::Log10 => Op::Log10,
                    Func::Sqrt => Op::Sqrt,
                    Func::Sin => Op::Sin,
                    Func::Cos => Op::Cos,
                    Func::Tan => Op::Tan,
                    Func::Sinh => Op::Sinh,
                    Func::Cosh => Op::Cosh,
                    Func::Tanh => Op::Tanh,
                    Func::Arcsinh => Op::Asinh,
                    Func::Arccosh => Op::Acosh,
                    Func::Arctan => Op::Atan,
                    Func::Abs => Op::Abs,
                    Func::Sigmoid => Op::Sigmoid,
                    Func::Heaviside => Op::Heaviside,
                    Func::Min => Op::Min,
                    Func::Max => Op::Max,
                    Func::Copysign => Op::Copysign,
                    Func::Pow | Func::Piecewise | Func::Interp1d => Op::Pow, // handled above
                };
                self.map(&refs, |e, v| e.op(op, v[0], *v.get(1).unwrap_or(&v[0])))?
            }
        })
    }

    /// `interp1d(x_i, y_i, q)`: a lookup table through the constant points, read at each element of `q`
    /// (clamped to the end values outside, as DiffSL does).
    fn interp1d(&mut self, args: &[Expr]) -> Result<Tv, Located> {
        let at = self.at;
        let constant = |t: &Tv| -> Option<Vec<f64>> {
            t.to_dense()
                .into_iter()
                .map(|v| match v {
                    Val::Const(c) => Some(c),
                    Val::Reg(..) => None,
                })
                .collect()
        };
        let (x, y) = (self.eval(&args[0])?, self.eval(&args[1])?);
        let (Some(xs), Some(ys)) = (constant(&x), constant(&y)) else {
            return Err(Located::new(
                at,
                "interp1d's points x_i and y_i must be constants (numbers, not inputs or states)",
            ));
        };
        if xs.len() != ys.len() || xs.len() < 2 {
            return Err(Located::new(
                at,
                format!(
                    "interp1d needs x_i and y_i of the same length, at least 2: found {} and {}",
                    xs.len(),
                    ys.len()
                ),
            ));
        }
        if let Some(k) = (1..xs.len()).find(|&k| xs[k] <= xs[k - 1]) {
            return Err(Located::new(
                at,
                format!("interp1d's x_i must be strictly increasing, but x[{k}] = {} follows {}", xs[k], xs[k - 1]),
            ));
        }
        let points: Vec<(f64, f64)> = xs.into_iter().zip(ys).collect();
        let table = LookupTable::new(&points).map_err(|m| Located::new(at, format!("interp1d: {m}")))?;
        let id = self.e.tables.len() as u32;
        self.e.tables.push(table);
        let q = self.eval(&args[2])?;
        let read = Op::Lookup(LookupMode::Interpolate);
        self.map(&[&q], |e, v| e.table_op(read, id, v[0], v[0]))
    }

    /// The value of a random draw: a normal or uniform slot per entry of the element being generated,
    /// transformed as the function asks.
    fn draw(&mut self, draw: Draw, args: &[Expr], pos: Pos, site: usize) -> Result<Tv, Located> {
        let name = draw.name();
        if self.dialect != Dialect::MonteCarlo {
            return Err(Located::new(
                pos,
                format!("random draws are only allowed in Monte Carlo models (line {}): '{name}(…)'", pos.line),
            ));
        }
        if let Some(what) = self.draws_refused {
            return Err(Located::new(
                pos,
                format!(
                    "random draws are not allowed in {what} (line {}): '{name}(…)' draws once per path and period",
                    pos.line
                ),
            ));
        }
        let kind = match draw {
            Draw::Normal | Draw::Lognormal => DrawKind::Normal,
            Draw::Uniform | Draw::Bernoulli => DrawKind::Uniform,
        };
        let (letters, extent) = self.draw_block.clone();
        let mut slots = Vec::new();
        for k in 0..count(&extent) as usize {
            let reg = match self.draw_slots.get(&(site, k)) {
                Some(&(_, r)) => r,
                None => {
                    let r = self.e.fresh();
                    self.draw_slots.insert((site, k), (kind, r));
                    r
                }
            };
            slots.push(Val::Reg(reg, Level::Dynamic));
        }
        let z = Tv::dense(letters, extent, slots);
        Ok(match draw {
            Draw::Normal | Draw::Uniform => z,
            Draw::Lognormal => {
                let (mu, sigma) = (self.eval(&args[0])?, self.eval(&args[1])?);
                let sz = tensor::intersect(&mut self.e, Op::Mul, &sigma, &z)
                    .map_err(|_| Located::new(pos, "lognormal: unreachable structural zero"))?;
                // exp(0 + x) = exp(x) exactly, so a zero mean costs nothing.
                let zero_mean = mu.letters.is_empty() && matches!(mu.entries[..], [(_, Val::Const(m))] if m == 0.0);
                let x = if zero_mean { sz } else { tensor::union(&mut self.e, Op::Add, &mu, &sz) };
                self.map(&[&x], |e, v| e.op(Op::Exp, v[0], v[0]))?
            }
            Draw::Bernoulli => {
                // 1 when u < p, i.e. when u - p < 0.
                let p = self.eval(&args[0])?;
                let d = tensor::union(&mut self.e, Op::Sub, &z, &p);
                self.map(&[&d], |e, v| e.op3(Op::Select, v[0], Val::Const(0.0), Val::Const(1.0)))?
            }
        })
    }
}
