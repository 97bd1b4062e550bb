//! Tensor values while code is generated: a shape over index letters and the structurally non-zero entries,
//! each a constant or a register. DiffSL's index notation works on these: operands are aligned by letter and
//! broadcast (an axis of size 1, or a missing one, stretches), products keep the entries both operands have,
//! sums those either has, and a letter absent from the tensor being defined is summed over. Structural zeros
//! generate no code, so a sparse matrix times a vector costs one product per stored entry and its pattern is
//! what reaches the Jacobian.

use crate::emit::{Emitter, Val};
use crate::eval::Op;

/// A tensor value: `letters[a]` names axis `a` of `shape`; `entries` are `(flat row-major index, value)`,
/// sorted by index, and an index not listed is a structural zero.
#[derive(Debug, Clone)]
pub(super) struct Tv {
    pub letters: Vec<char>,
    pub shape: Vec<usize>,
    pub entries: Vec<(u64, Val)>,
}

/// The number of elements of a shape (dense), as `u64` so 2-D shapes cannot overflow on 32-bit targets.
pub(super) fn count(shape: &[usize]) -> u64 {
    shape.iter().map(|&n| n as u64).product()
}

/// Row-major strides of a shape.
pub(super) fn strides(shape: &[usize]) -> Vec<u64> {
    let mut s = vec![1u64; shape.len()];
    for a in (0..shape.len().saturating_sub(1)).rev() {
        s[a] = s[a + 1] * shape[a + 1] as u64;
    }
    s
}

/// The coordinates of a flat index.
pub(super) fn coords(mut flat: u64, shape: &[usize], out: &mut Vec<usize>) {
    out.clear();
    out.resize(shape.len(), 0);
    for a in (0..shape.len()).rev() {
        let n = shape[a].max(1) as u64;
        out[a] = (flat % n) as usize;
        flat /= n;
    }
}

impl Tv {
    pub fn scalar(v: Val) -> Tv {
        Tv { letters: Vec::new(), shape: Vec::new(), entries: vec![(0, v)] }
    }

    /// A dense tensor from its values in row-major order.
    pub fn dense(letters: Vec<char>, shape: Vec<usize>, vals: impl IntoIterator<Item = Val>) -> Tv {
        Tv { letters, shape, entries: vals.into_iter().enumerate().map(|(k, v)| (k as u64, v)).collect() }
    }

    pub fn len(&self) -> u64 {
        count(&self.shape)
    }

    pub fn is_dense(&self) -> bool {
        self.entries.len() as u64 == self.len()
    }

    /// The value at a flat index, `None` for a structural zero.
    pub fn get(&self, flat: u64) -> Option<Val> {
        if self.is_dense() {
            return self.entries.get(flat as usize).map(|e| e.1);
        }
        self.entries.binary_search_by_key(&flat, |e| e.0).ok().map(|k| self.entries[k].1)
    }

    /// Every element in row-major order, structural zeros as the constant 0.
    pub fn to_dense(&self) -> Vec<Val> {
        let mut out = vec![Val::Const(0.0); self.len() as usize];
        for &(k, v) in &self.entries {
            out[k as usize] = v;
        }
        out
    }

    /// The same entries under other letters (a reference `A_ji` to `A_ij`).
    pub fn relabel(mut self, letters: Vec<char>) -> Tv {
        self.letters = letters;
        self
    }
}

/// The letters and sizes of the space several operands broadcast to: their letters in order of first
/// appearance, each the largest size given (the operands were checked to broadcast when shapes were worked out).
pub(super) fn joint_space(ops: &[&Tv]) -> (Vec<char>, Vec<usize>) {
    let (mut letters, mut shape) = (Vec::new(), Vec::new());
    for t in ops {
        for (&c, &n) in t.letters.iter().zip(&t.shape) {
            match letters.iter().position(|&l| l == c) {
                Some(a) => shape[a] = n.max(shape[a]),
                None => {
                    letters.push(c);
                    shape.push(n);
                }
            }
        }
    }
    (letters, shape)
}

/// How many entries `t` spread over `letters`/`shape` has (see [`broadcast`]), as `f64` so no size overflows.
pub(super) fn spread_len(t: &Tv, letters: &[char], shape: &[usize]) -> f64 {
    let proj = projection(t, letters, shape);
    let free: f64 = (0..letters.len()).filter(|&a| proj[a].is_none()).map(|a| shape[a] as f64).product();
    t.entries.len() as f64 * free
}

/// For each axis of `space`, the axis of `t` it reads (`None` when `t` lacks the letter or has size 1 there,
/// so it broadcasts).
fn projection(t: &Tv, letters: &[char], shape: &[usize]) -> Vec<Option<usize>> {
    letters
        .iter()
        .zip(shape)
        .map(|(&c, &n)| t.letters.iter().position(|&l| l == c).filter(|&a| t.shape[a] == n))
        .collect()
}

/// `t` spread over `letters`/`shape` (a superset of its letters): each entry repeated along the axes it
/// broadcasts over. The result has as many entries as it has non-zeros, which the callers bound.
pub(super) fn broadcast(t: &Tv, letters: &[char], shape: &[usize]) -> Tv {
    if t.letters == letters && t.shape == shape {
        return t.clone();
    }
    let proj = projection(t, letters, shape);
    let st = strides(shape);
    let free: Vec<usize> = (0..letters.len()).filter(|&a| proj[a].is_none() && shape[a] > 1).collect();
    let free_shape: Vec<usize> = free.iter().map(|&a| shape[a]).collect();
    let n_free = count(&free_shape);
    let mut entries = Vec::with_capacity(t.entries.len() * n_free as usize);
    let (mut c, mut fc) = (Vec::new(), Vec::new());
    for &(k, v) in &t.entries {
        coords(k, &t.shape, &mut c);
        let base: u64 = proj.iter().enumerate().filter_map(|(a, p)| p.map(|ta| c[ta] as u64 * st[a])).sum();
        for f in 0..n_free {
            coords(f, &free_shape, &mut fc);
            let off: u64 = free.iter().zip(&fc).map(|(&a, &x)| x as u64 * st[a]).sum();
            entries.push((base + off, v));
        }
    }
    entries.sort_unstable_by_key(|e| e.0);
    Tv { letters: letters.to_vec(), shape: shape.to_vec(), entries }
}

/// The flat index, in the operand `proj` projects onto, of the element at `c` of the joint space
/// (broadcast axes read index 0).
fn index_in(proj: &[Option<usize>], st_t: &[u64], c: &[usize]) -> u64 {
    proj.iter().enumerate().filter_map(|(a, p)| p.map(|ta| c[a] as u64 * st_t[ta])).sum()
}

/// `a op b` where only entries both have can be non-zero (products, quotients): the result follows the
/// entries of the operand that spans the joint space, reading the other where it lines up. `Err(position)`
/// is a quotient whose divisor is a structural zero where the dividend is not (DiffSL refuses those).
pub(super) fn intersect(e: &mut Emitter, op: Op, a: &Tv, b: &Tv) -> Result<Tv, u64> {
    let (letters, shape) = joint_space(&[a, b]);
    // Iterate the dividend for a quotient; otherwise whichever operand already spans the space.
    let a_spans = a.letters == letters && a.shape == shape;
    let b_spans = b.letters == letters && b.shape == shape;
    let (lead, other, lead_is_a) = if op == Op::Div || a_spans || !b_spans {
        (if a_spans { a.clone() } else { broadcast(a, &letters, &shape) }, b, true)
    } else {
        (b.clone(), a, false)
    };
    let proj = projection(other, &letters, &shape);
    let st_o = strides(&other.shape);
    let mut entries = Vec::with_capacity(lead.entries.len());
    let mut c = Vec::new();
    for &(k, v) in &lead.entries {
        coords(k, &shape, &mut c);
        match other.get(index_in(&proj, &st_o, &c)) {
            Some(w) => {
                let (x, y) = if lead_is_a { (v, w) } else { (w, v) };
                entries.push((k, e.op(op, x, y)));
            }
            None if op == Op::Div => return Err(k),
            None => {}
        }
    }
    Ok(Tv { letters, shape, entries })
}

/// `a + b` or `a - b`: non-zero where either is; where one is absent the other is taken as it is (negated
/// for a subtrahend), with no operation on a zero.
pub(super) fn union(e: &mut Emitter, op: Op, a: &Tv, b: &Tv) -> Tv {
    let (letters, shape) = joint_space(&[a, b]);
    let (a, b) = (broadcast(a, &letters, &shape), broadcast(b, &letters, &shape));
    let mut entries = Vec::with_capacity(a.entries.len().max(b.entries.len()));
    let (mut i, mut j) = (0, 0);
    while i < a.entries.len() || j < b.entries.len() {
        let ka = a.entries.get(i).map_or(u64::MAX, |x| x.0);
        let kb = b.entries.get(j).map_or(u64::MAX, |x| x.0);
        if ka == kb {
            entries.push((ka, e.op(op, a.entries[i].1, b.entries[j].1)));
            i += 1;
            j += 1;
        } else if ka < kb {
            entries.push(a.entries[i]);
            i += 1;
        } else {
            let w = b.entries[j].1;
            entries.push((kb, if op == Op::Sub { e.op(Op::Neg, w, w) } else { w }));
            j += 1;
        }
    }
    Tv { letters, shape, entries }
}

/// An element-wise function of several operands (`f` gets one value per operand, zeros for structural
/// zeros): non-zero where any operand is, or everywhere when `f` of all zeros is not exactly zero
/// (`exp(A_ij)` of a sparse `A` is dense; `Err` when that would not fit the memory budget).
pub(super) fn map(e: &mut Emitter, args: &[&Tv], mut f: impl FnMut(&mut Emitter, &[Val]) -> Val) -> Result<Tv, String> {
    let (letters, shape) = joint_space(args);
    let zeros = vec![Val::Const(0.0); args.len()];
    let at_zero = f(e, &zeros);
    let dense = !matches!(at_zero, Val::Const(z) if z == 0.0);
    if dense {
        let n = count(&shape) as f64;
        parfit_core::limits::check_allocation(&format!("a dense tensor of {n} entries"), n, super::BYTES_PER_ELEMENT)?;
    }
    let spread: Vec<Tv> = args.iter().map(|t| broadcast(t, &letters, &shape)).collect();
    let mut keys: Vec<u64> = if dense {
        (0..count(&shape)).collect()
    } else {
        let mut k: Vec<u64> = spread.iter().flat_map(|t| t.entries.iter().map(|x| x.0)).collect();
        k.sort_unstable();
        k.dedup();
        k
    };
    let mut entries = Vec::with_capacity(keys.len());
    let mut vals = Vec::with_capacity(args.len());
    for k in keys.drain(..) {
        vals.clear();
        vals.extend(spread.iter().map(|t| t.get(k).unwrap_or(Val::Const(0.0))));
        let v = if vals.iter().all(|v| matches!(v, Val::Const(z) if *z == 0.0)) { at_zero } else { f(e, &vals) };
        entries.push((k, v));
    }
    Ok(Tv { letters, shape, entries })
}

/// Sum `t` over the letters not in `keep`: the result has the kept letters in `t`'s order, and each sum
/// adds its terms in `t`'s row-major order. An output element no term reaches stays a structural zero.
pub(super) fn contract(e: &mut Emitter, t: &Tv, keep: &[char]) -> Tv {
    let kept: Vec<usize> = (0..t.letters.len()).filter(|&a| keep.contains(&t.letters[a])).collect();
    if kept.len() == t.letters.len() {
        return t.clone();
    }
    let letters: Vec<char> = kept.iter().map(|&a| t.letters[a]).collect();
    let shape: Vec<usize> = kept.iter().map(|&a| t.shape[a]).collect();
    let st = strides(&shape);
    let mut c = Vec::new();
    let mut terms: Vec<(u64, Val)> = t
        .entries
        .iter()
        .map(|&(k, v)| {
            coords(k, &t.shape, &mut c);
            (kept.iter().zip(&st).map(|(&a, &s)| c[a] as u64 * s).sum(), v)
        })
        .collect();
    terms.sort_by_key(|x| x.0); // stable: each sum keeps row-major order
    let mut entries: Vec<(u64, Val)> = Vec::new();
    for (k, v) in terms {
        match entries.last_mut() {
            Some(last) if last.0 == k => last.1 = e.op(Op::Add, last.1, v),
            _ => entries.push((k, v)),
        }
    }
    Tv { letters, shape, entries }
}

/// Where an element's value lands in the tensor being defined.
pub(super) struct Place<'a> {
    /// The defined tensor's letters and shape.
    pub letters: &'a [char],
    pub shape: &'a [usize],
    /// The element's block: its first index and extent on each axis, or a diagonal.
    pub start: &'a [usize],
    pub extent: &'a [usize],
    pub diagonal: bool,
}

/// The entries an element's value (its letters a subset of the tensor's) puts into the tensor, as
/// `(flat index in the tensor, value)`: the value broadcast over its block, or along the block's diagonal.
pub(super) fn place(t: &Tv, p: &Place<'_>) -> Vec<(u64, Val)> {
    let st = strides(p.shape);
    let at = |c: &[usize]| -> u64 { c.iter().enumerate().map(|(a, &x)| (p.start[a] + x) as u64 * st[a]).sum() };
    if p.diagonal {
        let n = p.extent.first().copied().unwrap_or(0);
        let st_t = strides(&t.shape);
        let mut out = Vec::with_capacity(n);
        for k in 0..n {
            let flat: u64 = t
                .letters
                .iter()
                .zip(&t.shape)
                .zip(&st_t)
                .map(|((_, &m), &s)| if m == 1 { 0 } else { k as u64 * s })
                .sum();
            if let Some(v) = t.get(flat) {
                out.push((at(&vec![k; p.letters.len()]), v));
            }
        }
        return out;
    }
    let spread = broadcast(t, p.letters, p.extent);
    let mut c = Vec::new();
    spread
        .entries
        .iter()
        .map(|&(k, v)| {
            coords(k, p.extent, &mut c);
            (at(&c), v)
        })
        .collect()
}
