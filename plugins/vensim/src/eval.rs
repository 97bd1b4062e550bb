//! Straight-line register code, its interpreter, and the batching pass for the hot code.
//!
//! Every value lives in one `f64` register file; an instruction names its destination and operand
//! registers, so running a program is one pass over a slice with no name lookups and no allocation.
//!
//! Interpreting one instruction costs far more than the arithmetic it does, so [`batch`] regroups the
//! code run at every rate evaluation: instructions that do the same operation and do not depend on each
//! other (the eight `dec k / 10` of the aging chain) become one [`Batch`] over contiguous registers, a
//! tight loop instead of eight dispatches. Each lane still performs exactly the operation it replaced,
//! on the same values, so batching never changes a result bit. [`binary`] and [`unary`] are the single
//! definition of every operation, used by the interpreter, the batches and compile-time folding alike.

use std::collections::HashMap;

use crate::expr::{BinOp, UnOp};

/// A register index.
pub(crate) type Reg = u32;

/// One instruction: `dst = op(operands)`. Flat variants keep dispatch to a single jump.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Op {
    Add(Reg, Reg, Reg),
    Sub(Reg, Reg, Reg),
    Mul(Reg, Reg, Reg),
    Div(Reg, Reg, Reg),
    Pow(Reg, Reg, Reg),
    Min(Reg, Reg, Reg),
    Max(Reg, Reg, Reg),
    Eq(Reg, Reg, Reg),
    Ne(Reg, Reg, Reg),
    Lt(Reg, Reg, Reg),
    Le(Reg, Reg, Reg),
    Gt(Reg, Reg, Reg),
    Ge(Reg, Reg, Reg),
    And(Reg, Reg, Reg),
    Or(Reg, Reg, Reg),
    Neg(Reg, Reg),
    Not(Reg, Reg),
    Abs(Reg, Reg),
    Exp(Reg, Reg),
    Ln(Reg, Reg),
    Sqrt(Reg, Reg),
    /// `dst = if cond != 0 { a } else { b }`
    Select(Reg, Reg, Reg, Reg),
    /// `dst = if input is NaN { default } else { input }`: a stock's start, from the case or the file.
    Pick(Reg, Reg, Reg),
    /// Run [`Code::batches`]`[i]`.
    Batch(u32),
    /// `r[dst + i] = r[Code::gathered[from + i]]` for `i < n`: collect scattered operands of a batch.
    Gather {
        dst: Reg,
        from: u32,
        n: u32,
    },
}

impl Op {
    pub fn binary(op: BinOp, dst: Reg, a: Reg, b: Reg) -> Op {
        match op {
            BinOp::Add => Op::Add(dst, a, b),
            BinOp::Sub => Op::Sub(dst, a, b),
            BinOp::Mul => Op::Mul(dst, a, b),
            BinOp::Div => Op::Div(dst, a, b),
            BinOp::Pow => Op::Pow(dst, a, b),
            BinOp::Min => Op::Min(dst, a, b),
            BinOp::Max => Op::Max(dst, a, b),
            BinOp::Eq => Op::Eq(dst, a, b),
            BinOp::Ne => Op::Ne(dst, a, b),
            BinOp::Lt => Op::Lt(dst, a, b),
            BinOp::Le => Op::Le(dst, a, b),
            BinOp::Gt => Op::Gt(dst, a, b),
            BinOp::Ge => Op::Ge(dst, a, b),
            BinOp::And => Op::And(dst, a, b),
            BinOp::Or => Op::Or(dst, a, b),
        }
    }

    pub fn unary(op: UnOp, dst: Reg, a: Reg) -> Op {
        match op {
            UnOp::Neg => Op::Neg(dst, a),
            UnOp::Not => Op::Not(dst, a),
            UnOp::Abs => Op::Abs(dst, a),
            UnOp::Exp => Op::Exp(dst, a),
            UnOp::Ln => Op::Ln(dst, a),
            UnOp::Sqrt => Op::Sqrt(dst, a),
        }
    }

    /// The operation an instruction performs and its destination and operand registers; `None` for
    /// [`Op::Batch`] and [`Op::Gather`].
    fn parts(&self) -> Option<(Kind, Reg, [Reg; 3], usize)> {
        use Kind::{Bin, Un};
        let bin = |k: BinOp, d, a, b| Some((Bin(k), d, [a, b, 0], 2));
        let un = |k: UnOp, d, a| Some((Un(k), d, [a, 0, 0], 1));
        match *self {
            Op::Add(d, a, b) => bin(BinOp::Add, d, a, b),
            Op::Sub(d, a, b) => bin(BinOp::Sub, d, a, b),
            Op::Mul(d, a, b) => bin(BinOp::Mul, d, a, b),
            Op::Div(d, a, b) => bin(BinOp::Div, d, a, b),
            Op::Pow(d, a, b) => bin(BinOp::Pow, d, a, b),
            Op::Min(d, a, b) => bin(BinOp::Min, d, a, b),
            Op::Max(d, a, b) => bin(BinOp::Max, d, a, b),
            Op::Eq(d, a, b) => bin(BinOp::Eq, d, a, b),
            Op::Ne(d, a, b) => bin(BinOp::Ne, d, a, b),
            Op::Lt(d, a, b) => bin(BinOp::Lt, d, a, b),
            Op::Le(d, a, b) => bin(BinOp::Le, d, a, b),
            Op::Gt(d, a, b) => bin(BinOp::Gt, d, a, b),
            Op::Ge(d, a, b) => bin(BinOp::Ge, d, a, b),
            Op::And(d, a, b) => bin(BinOp::And, d, a, b),
            Op::Or(d, a, b) => bin(BinOp::Or, d, a, b),
            Op::Neg(d, a) => un(UnOp::Neg, d, a),
            Op::Not(d, a) => un(UnOp::Not, d, a),
            Op::Abs(d, a) => un(UnOp::Abs, d, a),
            Op::Exp(d, a) => un(UnOp::Exp, d, a),
            Op::Ln(d, a) => un(UnOp::Ln, d, a),
            Op::Sqrt(d, a) => un(UnOp::Sqrt, d, a),
            Op::Select(d, c, a, b) => Some((Kind::Select, d, [c, a, b], 3)),
            Op::Pick(d, a, b) => Some((Kind::Pick, d, [a, b, 0], 2)),
            Op::Batch(_) | Op::Gather { .. } => None,
        }
    }

    fn from_parts(kind: Kind, d: Reg, r: [Reg; 3]) -> Op {
        match kind {
            Kind::Bin(k) => Op::binary(k, d, r[0], r[1]),
            Kind::Un(k) => Op::unary(k, d, r[0]),
            Kind::Select => Op::Select(d, r[0], r[1], r[2]),
            Kind::Pick => Op::Pick(d, r[0], r[1]),
        }
    }
}

/// What an instruction or batch computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Bin(BinOp),
    Un(UnOp),
    Select,
    Pick,
}

/// `n` lanes of one operation: lane `i` writes `dst + i` from operand `k` at `start_k + stride_k · i`
/// (stride 1: contiguous registers; stride 0: the same register for every lane).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Batch {
    pub kind: Kind,
    pub n: u32,
    pub dst: Reg,
    pub args: [(Reg, u32); 3],
}

/// A program: instructions plus the tables that [`Op::Batch`] and [`Op::Gather`] refer to.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Code {
    pub ops: Vec<Op>,
    pub batches: Vec<Batch>,
    pub gathered: Vec<Reg>,
}

impl Code {
    pub fn flat(ops: Vec<Op>) -> Code {
        Code { ops, ..Code::default() }
    }
}

#[inline(always)]
fn truth(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// Every binary operation. MIN/MAX propagate NaN like numpy's `minimum`/`maximum` (what PySD calls),
/// unlike `f64::min`; comparisons and logic give 1 or 0, and any non-zero value is true.
#[inline(always)]
pub(crate) fn binary(op: BinOp, x: f64, y: f64) -> f64 {
    match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div => x / y,
        BinOp::Pow => x.powf(y),
        BinOp::Min => {
            if x.is_nan() || y.is_nan() {
                f64::NAN
            } else if y < x {
                y
            } else {
                x
            }
        }
        BinOp::Max => {
            if x.is_nan() || y.is_nan() {
                f64::NAN
            } else if y > x {
                y
            } else {
                x
            }
        }
        BinOp::Eq => truth(x == y),
        BinOp::Ne => truth(x != y),
        BinOp::Lt => truth(x < y),
        BinOp::Le => truth(x <= y),
        BinOp::Gt => truth(x > y),
        BinOp::Ge => truth(x >= y),
        BinOp::And => truth(x != 0.0 && y != 0.0),
        BinOp::Or => truth(x != 0.0 || y != 0.0),
    }
}

/// Every unary operation.
#[inline(always)]
pub(crate) fn unary(op: UnOp, x: f64) -> f64 {
    match op {
        UnOp::Neg => -x,
        UnOp::Not => truth(x == 0.0),
        UnOp::Abs => x.abs(),
        UnOp::Exp => x.exp(),
        UnOp::Ln => x.ln(),
        UnOp::Sqrt => x.sqrt(),
    }
}

/// `IF THEN ELSE`.
#[inline(always)]
pub(crate) fn select(c: f64, a: f64, b: f64) -> f64 {
    if c != 0.0 { a } else { b }
}

#[inline(always)]
fn pick(input: f64, default: f64) -> f64 {
    if input.is_nan() { default } else { input }
}

/// Run `code` over the register file, whose length must be a power of two above every register used.
///
/// Indices are masked with `len - 1`: a no-op for valid code that lets the compiler drop bounds checks.
pub(crate) fn exec(code: &Code, r: &mut [f64]) {
    debug_assert!(r.len().is_power_of_two());
    let m = r.len() - 1;
    let r = &mut r[..=m];
    macro_rules! bin {
        ($k:expr, $d:expr, $a:expr, $b:expr) => {
            r[$d as usize & m] = binary($k, r[$a as usize & m], r[$b as usize & m])
        };
    }
    macro_rules! un {
        ($k:expr, $d:expr, $a:expr) => {
            r[$d as usize & m] = unary($k, r[$a as usize & m])
        };
    }
    for op in &code.ops {
        match *op {
            Op::Add(d, a, b) => bin!(BinOp::Add, d, a, b),
            Op::Sub(d, a, b) => bin!(BinOp::Sub, d, a, b),
            Op::Mul(d, a, b) => bin!(BinOp::Mul, d, a, b),
            Op::Div(d, a, b) => bin!(BinOp::Div, d, a, b),
            Op::Pow(d, a, b) => bin!(BinOp::Pow, d, a, b),
            Op::Min(d, a, b) => bin!(BinOp::Min, d, a, b),
            Op::Max(d, a, b) => bin!(BinOp::Max, d, a, b),
            Op::Eq(d, a, b) => bin!(BinOp::Eq, d, a, b),
            Op::Ne(d, a, b) => bin!(BinOp::Ne, d, a, b),
            Op::Lt(d, a, b) => bin!(BinOp::Lt, d, a, b),
            Op::Le(d, a, b) => bin!(BinOp::Le, d, a, b),
            Op::Gt(d, a, b) => bin!(BinOp::Gt, d, a, b),
            Op::Ge(d, a, b) => bin!(BinOp::Ge, d, a, b),
            Op::And(d, a, b) => bin!(BinOp::And, d, a, b),
            Op::Or(d, a, b) => bin!(BinOp::Or, d, a, b),
            Op::Neg(d, a) => un!(UnOp::Neg, d, a),
            Op::Not(d, a) => un!(UnOp::Not, d, a),
            Op::Abs(d, a) => un!(UnOp::Abs, d, a),
            Op::Exp(d, a) => un!(UnOp::Exp, d, a),
            Op::Ln(d, a) => un!(UnOp::Ln, d, a),
            Op::Sqrt(d, a) => un!(UnOp::Sqrt, d, a),
            Op::Select(d, c, a, b) => {
                r[d as usize & m] = select(r[c as usize & m], r[a as usize & m], r[b as usize & m])
            }
            Op::Pick(d, a, b) => r[d as usize & m] = pick(r[a as usize & m], r[b as usize & m]),
            Op::Batch(i) => run_batch(&code.batches[i as usize], r),
            Op::Gather { dst, from, n } => {
                let from = from as usize;
                for (i, &src) in code.gathered[from..from + n as usize].iter().enumerate() {
                    r[(dst as usize + i) & m] = r[src as usize & m];
                }
            }
        }
    }
}

/// One loop per operation, so the operation is chosen once per batch rather than once per lane. Every
/// operand register lies below `dst` (see [`batch`]), so operands and results are disjoint slices and the
/// loops over contiguous operands compile to straight (vectorisable) code.
fn run_batch(bt: &Batch, r: &mut [f64]) {
    let n = bt.n as usize;
    let (lo, hi) = r.split_at_mut(bt.dst as usize);
    let out = &mut hi[..n];
    let [(a, sa), (b, sb), (c, sc)] = bt.args.map(|(s, k)| (s as usize, k));
    macro_rules! one {
        (|$x:ident| $e:expr) => {
            if sa == 0 {
                let $x = lo[a];
                out.fill($e);
            } else {
                for (o, &$x) in out.iter_mut().zip(&lo[a..a + n]) {
                    *o = $e;
                }
            }
        };
    }
    macro_rules! two {
        (|$x:ident, $y:ident| $e:expr) => {
            match (sa, sb) {
                (0, 0) => {
                    let ($x, $y) = (lo[a], lo[b]);
                    out.fill($e);
                }
                (0, _) => {
                    let $x = lo[a];
                    for (o, &$y) in out.iter_mut().zip(&lo[b..b + n]) {
                        *o = $e;
                    }
                }
                (_, 0) => {
                    let $y = lo[b];
                    for (o, &$x) in out.iter_mut().zip(&lo[a..a + n]) {
                        *o = $e;
                    }
                }
                _ => {
                    for ((o, &$x), &$y) in out.iter_mut().zip(&lo[a..a + n]).zip(&lo[b..b + n]) {
                        *o = $e;
                    }
                }
            }
        };
    }
    macro_rules! each {
        (binary: $($b:ident),*; unary: $($u:ident),*) => {
            match bt.kind {
                $(Kind::Bin(BinOp::$b) => two!(|x, y| binary(BinOp::$b, x, y)),)*
                $(Kind::Un(UnOp::$u) => one!(|x| unary(UnOp::$u, x)),)*
                Kind::Pick => two!(|x, y| pick(x, y)),
                Kind::Select => {
                    for (i, o) in out.iter_mut().enumerate() {
                        *o = select(lo[a + sa as usize * i], lo[b + sb as usize * i], lo[c + sc as usize * i]);
                    }
                }
            }
        };
    }
    each!(binary: Add, Sub, Mul, Div, Pow, Min, Max, Eq, Ne, Lt, Le, Gt, Ge, And, Or; unary: Neg, Not, Abs, Exp, Ln, Sqrt);
}

/// Regroup straight-line SSA code (each register written once, every write before its reads) into
/// batches: instructions are placed by dependency depth, and the ones of one depth doing the same
/// operation become a batch when there are at least two. Registers the code writes are renumbered from
/// `next_reg` up so that each batch writes a contiguous block, and lanes follow the original order so
/// the next batch's operands tend to be contiguous too; operands that are not are gathered first.
///
/// Returns the code, the first free register after it, and the map from old to new registers (for
/// whatever reads the code's results afterwards).
pub(crate) fn batch(ops: &[Op], mut next_reg: Reg) -> (Code, Reg, HashMap<Reg, Reg>) {
    let parts: Vec<(Kind, Reg, [Reg; 3], usize)> =
        ops.iter().map(|op| op.parts().expect("batching runs on flat code")).collect();
    let producer: HashMap<Reg, usize> = parts.iter().enumerate().map(|(i, p)| (p.1, i)).collect();
    let mut depth = vec![0usize; ops.len()];
    for (i, (_, _, args, n)) in parts.iter().enumerate() {
        depth[i] = args[..*n].iter().filter_map(|a| producer.get(a)).map(|&j| depth[j] + 1).max().unwrap_or(0);
    }
    // Groups in order of depth, then of first appearance; lanes in code order.
    let mut groups: Vec<(usize, Kind, Vec<usize>)> = Vec::new();
    let mut group_of: HashMap<(usize, Kind), usize> = HashMap::new();
    let mut by_depth: Vec<usize> = (0..ops.len()).collect();
    by_depth.sort_by_key(|&i| depth[i]); // stable: code order within a depth
    for i in by_depth {
        let key = (depth[i], parts[i].0);
        let g = *group_of.entry(key).or_insert_with(|| {
            groups.push((key.0, key.1, Vec::new()));
            groups.len() - 1
        });
        groups[g].2.push(i);
    }

    let mut code = Code::default();
    let mut renamed: HashMap<Reg, Reg> = HashMap::new();
    for (_, kind, lanes) in groups {
        let (_, _, _, n_args) = parts[lanes[0]];
        // Operands come from earlier depths (already renamed) or from outside this code.
        let operands: Vec<Vec<Reg>> = (0..n_args)
            .map(|k| {
                lanes
                    .iter()
                    .map(|&i| {
                        let a = parts[i].2[k];
                        *renamed.get(&a).unwrap_or(&a)
                    })
                    .collect()
            })
            .collect();
        // Each operand is shared by every lane, contiguous, or scattered (and then gathered first).
        let shared = |regs: &[Reg]| regs.iter().all(|&x| x == regs[0]);
        let contiguous = |regs: &[Reg]| regs.windows(2).all(|w| w[1] == w[0] + 1);
        let n_gathers = operands.iter().filter(|r| !shared(r) && !contiguous(r)).count();
        // Batch only when it saves work: a dispatch costs about as much as four lanes of copying, and
        // the batch saves n - 1 dispatches but costs one per gather plus the gathered lanes.
        let n = lanes.len();
        if 4 * (n - 1) <= n_gathers * (4 + n) {
            for (k, &i) in lanes.iter().enumerate() {
                let args = [0, 1, 2].map(|a| operands.get(a).map_or(0, |r| r[k]));
                code.ops.push(Op::from_parts(kind, next_reg, args));
                renamed.insert(parts[i].1, next_reg);
                next_reg += 1;
            }
            continue;
        }
        let mut args = [(0, 0); 3];
        for (arg, regs) in args.iter_mut().zip(&operands) {
            *arg = if shared(regs) {
                (regs[0], 0)
            } else if contiguous(regs) {
                (regs[0], 1)
            } else {
                let at = next_reg;
                next_reg += regs.len() as Reg;
                code.ops.push(Op::Gather { dst: at, from: code.gathered.len() as u32, n: regs.len() as u32 });
                code.gathered.extend(regs);
                (at, 1)
            };
        }
        // Results above every operand (gathered ones included): see `run_batch`.
        let dst = next_reg;
        next_reg += n as Reg;
        debug_assert!(args[..n_args].iter().all(|&(s, k)| s + k * (n as Reg - 1) < dst));
        for (k, &i) in lanes.iter().enumerate() {
            renamed.insert(parts[i].1, dst + k as Reg);
        }
        code.ops.push(Op::Batch(code.batches.len() as u32));
        code.batches.push(Batch { kind, n: n as u32, dst, args });
    }
    (code, next_reg, renamed)
}

/// Every lane of `code` in execution order: the register it writes and those it reads. For checks.
#[cfg(test)]
pub(crate) fn lanes(code: &Code) -> Vec<(Reg, Vec<Reg>)> {
    let mut out = Vec::new();
    for op in &code.ops {
        match *op {
            Op::Batch(i) => {
                let bt = &code.batches[i as usize];
                let (kind, d, _, n_args) = Op::from_parts(bt.kind, 0, [0; 3]).parts().expect("flat");
                debug_assert!(kind == bt.kind && d == 0);
                for lane in 0..bt.n {
                    let reads = bt.args[..n_args].iter().map(|&(s, k)| s + k * lane).collect();
                    out.push((bt.dst + lane, reads));
                }
            }
            Op::Gather { dst, from, n } => {
                for lane in 0..n {
                    out.push((dst + lane, vec![code.gathered[(from + lane) as usize]]));
                }
            }
            op => {
                let (_, d, args, n) = op.parts().expect("flat");
                out.push((d, args[..n].to_vec()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn run(code: &Code, regs: &[f64]) -> Vec<f64> {
        let mut r = regs.to_vec();
        r.resize(regs.len().next_power_of_two(), 0.0);
        exec(code, &mut r);
        r
    }

    #[test]
    fn operations_follow_vensim_conventions() {
        assert_eq!(binary(BinOp::Pow, 2.0, 0.5), 2f64.sqrt());
        assert_eq!(binary(BinOp::Lt, 1.0, 2.0), 1.0);
        assert_eq!(binary(BinOp::And, 2.0, 0.0), 0.0);
        assert_eq!(binary(BinOp::Or, 0.0, -3.0), 1.0);
        assert!(binary(BinOp::Min, f64::NAN, 1.0).is_nan());
        assert!(binary(BinOp::Max, 1.0, f64::NAN).is_nan());
        assert_eq!(binary(BinOp::Max, -1.0, 3.0), 3.0);
        assert_eq!(unary(UnOp::Not, 0.0), 1.0);
        assert_eq!(unary(UnOp::Not, 0.5), 0.0);
        assert_eq!(select(0.0, 1.0, 2.0), 2.0);
        let r = run(&Code::flat(vec![Op::Pick(2, 0, 1), Op::Pick(3, 1, 0)]), &[f64::NAN, 7.0, 0.0, 0.0]);
        assert_eq!(r[2..], [7.0, 7.0]);
    }

    /// A chain like the aging chain's: batched code computes the same bits as the flat code.
    #[test]
    fn batching_changes_no_result() {
        // r0..r3: stocks; r4: 10; r5..r8: rates (params).
        let mut ops = Vec::new();
        let mut next = 9;
        let mut fresh = || {
            next += 1;
            next - 1
        };
        let ages: Vec<Reg> = (0..4)
            .map(|k| (fresh(), k))
            .map(|(d, k)| {
                ops.push(Op::Div(d, k, 4));
                d
            })
            .collect();
        let losses: Vec<Reg> = (0..4)
            .map(|k| (fresh(), k))
            .map(|(d, k)| {
                ops.push(Op::Mul(d, k, 5 + k));
                d
            })
            .collect();
        let mut outs = Vec::new();
        for k in 0..4 {
            let inflow = if k == 0 { 8 } else { ages[k as usize - 1] };
            let t = fresh();
            ops.push(Op::Sub(t, inflow, ages[k as usize]));
            let d = fresh();
            ops.push(Op::Sub(d, t, losses[k as usize]));
            outs.push(d);
        }
        let e = fresh();
        ops.push(Op::Exp(e, outs[0]));
        let (code, end, renamed) = batch(&ops, next);
        let mut regs = vec![0.0; end as usize];
        regs[..9].copy_from_slice(&[3375.0, 3630.0, 2461.0, 3407.0, 10.0, 0.05, 0.07, 0.11, 0.13]);
        let flat = run(&Code::flat(ops.clone()), &regs);
        // Divisions, products, and both rounds of subtractions; the first round's inflows are gathered.
        assert_eq!(code.batches.len(), 4);
        assert_eq!(code.ops.iter().filter(|o| matches!(o, Op::Gather { .. })).count(), 1);
        let batched = run(&code, &regs);
        for &r in outs.iter().chain([&e]) {
            assert_eq!(flat[r as usize].to_bits(), batched[renamed[&r] as usize].to_bits());
        }
    }
}
