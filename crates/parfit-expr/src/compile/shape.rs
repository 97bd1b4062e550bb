//! Shapes: where each element of a tensor sits (its block) and how large every tensor is, worked out from
//! the element ranges and the shapes of expressions before any code is generated. Expressions' shapes follow
//! DiffSL's index notation: operands line up by index letter and broadcast (equal sizes, or 1), and a letter
//! absent from the tensor being defined is summed over.

use std::rc::Rc;

use super::tensor::count;
use super::{Gen, MAX_DEPTH, Role, Sym};
use crate::lexer::{Located, Pos};
use crate::parser::{Element, Expr, Func, Slice, TensorRef, unsupported};

/// An expression's shape: its index letters, in order of first appearance, with their sizes.
pub(super) type Shape = Vec<(char, usize)>;

/// Where one element sits: its first index and extent on each axis, and whether it is a diagonal
/// (`(0..3, 0..3)`: the entries `(k, k)` only).
#[derive(Debug, Clone)]
pub(super) struct Block {
    pub start: Vec<usize>,
    pub extent: Vec<usize>,
    pub diagonal: bool,
}

impl Block {
    /// How many entries the block can hold.
    fn stored(&self) -> u64 {
        if self.diagonal { self.extent.first().map_or(0, |&n| n as u64) } else { count(&self.extent) }
    }
}

/// A tensor's shape and its elements' blocks.
#[derive(Debug)]
pub(super) struct Layout {
    pub shape: Vec<usize>,
    pub blocks: Vec<Block>,
    /// How many levels of expressions and definitions generating its values recurses through (see
    /// [`MAX_DEPTH`]).
    pub depth: usize,
}

impl Layout {
    /// The number of elements, structural zeros included.
    pub fn len(&self) -> u64 {
        count(&self.shape)
    }

    /// At most how many entries the elements store.
    pub fn stored(&self) -> u64 {
        self.blocks.iter().map(Block::stored).sum()
    }

    /// Element `e`'s first index and length along the first axis (`(0, 1)` in a scalar).
    pub fn span(&self, e: usize) -> (usize, usize) {
        let b = &self.blocks[e];
        (b.start.first().copied().unwrap_or(0), b.extent.first().copied().unwrap_or(1))
    }
}

/// `a` and `b` broadcast together (sizes equal, or one of them 1), else an error at `at`.
pub(super) fn broadcast_shapes(a: &Shape, b: &Shape, at: Pos) -> Result<Shape, Located> {
    let mut out = a.clone();
    for &(c, n) in b {
        match out.iter_mut().find(|(l, _)| *l == c) {
            None => out.push((c, n)),
            Some((_, m)) if *m == n || n == 1 => {}
            Some((_, m)) if *m == 1 => *m = n,
            Some((_, m)) => {
                let what =
                    if a.len() <= 1 && b.len() <= 1 { "vectors of".to_string() } else { format!("index '{c}' of") };
                return Err(Located::new(at, format!("cannot combine {what} {m} and {n} elements element-wise")));
            }
        }
    }
    Ok(out)
}

impl<'a> Gen<'a> {
    /// The layout of a tensor, worked out on first use. `at` is where it is needed from (for cycles).
    pub(super) fn layout(&mut self, tid: usize, at: Pos) -> Result<Rc<Layout>, Located> {
        if let Some(l) = &self.layouts[tid] {
            return Ok(l.clone());
        }
        if let Some(k) = self.visiting.iter().position(|&j| j == tid) {
            let d = &self.defs[tid];
            return Err(match d.role {
                Role::Input => Located::new(at, "the defaults of inputs must be constant expressions"),
                Role::State => {
                    Located::new(at, format!("the initial values in '{}' cannot depend on the state", d.t.name))
                }
                _ => {
                    let mut chain: Vec<&str> =
                        self.visiting[k..].iter().map(|&j| self.defs[j].t.name.as_str()).collect();
                    chain.push(&d.t.name);
                    Located::new(at, format!("circular definition: {}", chain.join(" -> ")))
                }
            });
        }
        let too_deep =
            |at| Located::new(at, format!("definitions and expressions nested deeper than {MAX_DEPTH} levels"));
        if self.level > MAX_DEPTH {
            return Err(too_deep(at));
        }
        let outer = (self.entry, std::mem::take(&mut self.ref_depth));
        self.entry = self.level;
        self.visiting.push(tid);
        let l = self.compute_layout(tid);
        self.visiting.pop();
        let depth = self.ref_depth + 1;
        (self.entry, self.ref_depth) = outer;
        let l = Rc::new(Layout { depth, ..l? });
        if depth > MAX_DEPTH {
            return Err(too_deep(self.defs[tid].t.pos));
        }
        self.layouts[tid] = Some(l.clone());
        Ok(l)
    }

    fn compute_layout(&mut self, tid: usize) -> Result<Layout, Located> {
        let (t, letters) = (self.defs[tid].t, self.defs[tid].letters.clone());
        let rank = letters.len();
        let mut blocks: Vec<Block> = Vec::with_capacity(t.elements.len());
        let mut next = 0; // where an element without a range starts on the first axis
        for (e, el) in t.elements.iter().enumerate() {
            let block = match (&el.range, &el.expr) {
                (Some(r), Expr::Read(file, pos)) => {
                    let extent: Vec<usize> = r.axes.iter().map(|&(a, b)| b - a).collect();
                    let tv = self.read_tensor(file, *pos, &letters, &extent)?;
                    self.reads.insert((tid, e), Rc::new(tv));
                    Block { start: r.axes.iter().map(|a| a.0).collect(), extent, diagonal: false }
                }
                (None, Expr::Read(_, pos)) => {
                    return Err(Located::new(
                        *pos,
                        format!(
                            "read(…) needs the shape it fills as a range, as '(0:3, 0:3): read(…)' in '{}'",
                            t.name
                        ),
                    ));
                }
                (Some(r), expr) => {
                    let shape = self.element_shape(expr, &letters, el.expr_pos)?;
                    let extent: Vec<usize> = r.axes.iter().map(|&(a, b)| b - a).collect();
                    let ranges: Vec<String> = r.axes.iter().map(|(a, b)| format!("{a}:{b}")).collect();
                    let ranges = ranges.join(", ");
                    if extent.contains(&0) {
                        return Err(Located::new(r.pos, format!("the range ({ranges}) is empty")));
                    }
                    if r.diagonal && extent.iter().any(|&n| n != extent[0]) {
                        return Err(Located::new(r.pos, format!("the diagonal range ({ranges}) is not square")));
                    }
                    for &(c, n) in &shape {
                        let want = letters.iter().position(|&l| l == c).map_or(1, |a| extent[a]);
                        if n != 1 && n != want {
                            let msg = if rank == 1 {
                                format!(
                                    "cannot fit a vector of {n} elements into the range ({ranges}) of {want} elements"
                                )
                            } else {
                                format!("index '{c}' has {n} elements but the range ({ranges}) gives it {want}")
                            };
                            return Err(Located::new(el.expr_pos, msg));
                        }
                    }
                    Block { start: r.axes.iter().map(|a| a.0).collect(), extent, diagonal: r.diagonal }
                }
                (None, expr) => {
                    let shape = self.element_shape(expr, &letters, el.expr_pos)?;
                    let extent: Vec<usize> =
                        letters.iter().map(|&l| shape.iter().find(|s| s.0 == l).map_or(1, |s| s.1)).collect();
                    let mut start = vec![0; rank];
                    if let Some(s) = start.first_mut() {
                        *s = next;
                    }
                    Block { start, extent, diagonal: false }
                }
            };
            if rank > 0 {
                next = block.start[0] + block.extent[0];
            }
            blocks.push(block);
        }
        let shape: Vec<usize> =
            (0..rank).map(|a| blocks.iter().map(|b| b.start[a] + b.extent[a]).max().unwrap_or(0)).collect();
        if rank == 1 {
            self.check_vector_blocks(tid, &blocks)?;
        }
        Ok(Layout { shape, blocks, depth: 0 })
    }

    /// A vector's elements must not overlap; those of the inputs, the state and the outputs must also
    /// cover every index in order, since each element is a named value.
    fn check_vector_blocks(&self, tid: usize, blocks: &[Block]) -> Result<(), Located> {
        let t = self.defs[tid].t;
        let range_of = |e: usize| {
            let (a, n) = (blocks[e].start[0], blocks[e].extent[0]);
            (a, a + n)
        };
        let pos_of = |e: usize| t.elements[e].range.as_ref().map_or(t.elements[e].pos, |r| r.pos);
        let mut order: Vec<usize> = (0..blocks.len()).collect();
        order.sort_by_key(|&e| range_of(e));
        for w in order.windows(2) {
            let ((_, end), (a, _)) = (range_of(w[0]), range_of(w[1]));
            if a < end {
                // Reported at whichever of the two comes later in the text.
                let (later, other) = if w[1] > w[0] { (w[1], w[0]) } else { (w[0], w[1]) };
                let ((la, lb), (oa, ob)) = (range_of(later), range_of(other));
                let msg = if later == w[1] {
                    format!("the range ({la}:{lb}) overlaps the elements before it, which end at index {end}")
                } else {
                    format!("the range ({la}:{lb}) overlaps the element ({oa}:{ob})")
                };
                return Err(Located::new(pos_of(later), msg));
            }
        }
        if matches!(self.defs[tid].role, Role::Input | Role::State | Role::Out) {
            let mut at = 0;
            for e in 0..blocks.len() {
                let (a, b) = range_of(e);
                if a != at {
                    return Err(Located::new(
                        pos_of(e),
                        format!(
                            "the range ({a}:{b}) leaves indices {at}..{a} of '{}' undefined: its elements are named \
                             values, given in order",
                            t.name
                        ),
                    ));
                }
                at = b;
            }
        }
        Ok(())
    }

    /// The shape of an element's expression in a tensor with index letters `letters`: its letters that are
    /// the tensor's (a letter the tensor lacks is summed over, and at most one may be).
    fn element_shape(&mut self, e: &Expr, letters: &[char], at: Pos) -> Result<Shape, Located> {
        let shape = self.expr_shape(e, at)?;
        let summed: Vec<char> = shape.iter().map(|s| s.0).filter(|c| !letters.contains(c)).collect();
        if summed.len() > 1 {
            let list: Vec<String> = summed.iter().map(|c| format!("'{c}'")).collect();
            return Err(Located::new(
                at,
                format!(
                    "the expression sums over {} indices at once ({}): DiffSL contracts one index per definition; \
                     sum through an intermediate tensor",
                    summed.len(),
                    list.join(", ")
                ),
            ));
        }
        Ok(shape.into_iter().filter(|s| letters.contains(&s.0)).collect())
    }

    /// The shape of an expression.
    pub(super) fn expr_shape(&mut self, e: &Expr, at: Pos) -> Result<Shape, Located> {
        self.level += 1;
        let n = self.expr_shape_inner(e, at);
        self.level -= 1;
        n
    }

    fn expr_shape_inner(&mut self, e: &Expr, at: Pos) -> Result<Shape, Located> {
        Ok(match e {
            Expr::Num(_) => Vec::new(),
            Expr::Name(name, _) if name == "t" || name == "N" => Vec::new(),
            Expr::Name(name, pos) => {
                let (tid, block) = self.symbol(name, *pos)?;
                let n = match block {
                    Some(b) => self.layout(tid, *pos)?.blocks[b].stored(),
                    None => self.layout(tid, *pos)?.len(),
                };
                if n != 1 {
                    let ix = self.defs[tid].letter();
                    return Err(Located::new(
                        *pos,
                        format!("'{name}' is a vector of {n} elements: refer to it as '{name}_{ix}'"),
                    ));
                }
                Vec::new()
            }
            Expr::Tensor(r) => self.ref_shape(r)?,
            Expr::Neg(x) => self.expr_shape(x, at)?,
            Expr::Chain(first, rest) => {
                let mut s = self.expr_shape(first, at)?;
                for (_, e) in rest {
                    let m = self.expr_shape(e, at)?;
                    s = broadcast_shapes(&s, &m, at)?;
                }
                s
            }
            Expr::Call(Func::Interp1d, args) => {
                for a in &args[..2] {
                    let s = self.expr_shape(a, at)?;
                    if s.len() != 1 {
                        return Err(Located::new(
                            at,
                            "interp1d(x_i, y_i, q) needs its points x_i and y_i as vectors (constant, 1-D)",
                        ));
                    }
                }
                self.expr_shape(&args[2], at)?
            }
            Expr::Call(_, args) | Expr::Draw(_, args, ..) => {
                let mut s = Vec::new();
                for a in args {
                    let m = self.expr_shape(a, at)?;
                    s = broadcast_shapes(&s, &m, at)?;
                }
                s
            }
            Expr::Read(_, pos) => {
                return Err(Located::new(
                    *pos,
                    "read('file.tns') is only valid as a whole element of a constant tensor",
                ));
            }
        })
    }

    /// The shape of a tensor reference: the referenced tensor's (or named element's) axes under the
    /// reference's letters, or what its index or slice leaves.
    fn ref_shape(&mut self, r: &TensorRef) -> Result<Shape, Located> {
        let name = r.full_name();
        let (tid, block) = self.symbol(&r.base, r.pos)?;
        let layout = self.layout(tid, r.pos)?;
        let mut shape = match block {
            Some(b) => layout.blocks[b].extent.clone(),
            None => layout.shape.clone(),
        };
        let letters: Vec<char> = r.index.chars().collect();
        if shape.is_empty() && letters.len() == 1 {
            shape.push(1); // a scalar read as a vector of one element
        }
        if let Some(c) = letters.iter().enumerate().find(|&(k, c)| letters[..k].contains(c)).map(|x| x.1) {
            return Err(unsupported(
                r.pos,
                "repeated index letters",
                &format!("'{name}' repeats '{c}' (a trace or a diagonal); give each axis its own letter"),
            ));
        }
        if letters.len() != shape.len() {
            return Err(Located::new(
                r.pos,
                format!(
                    "'{name}' has {} index letter(s) but '{}' has {} axes: write one letter per axis",
                    letters.len(),
                    r.base,
                    shape.len()
                ),
            ));
        }
        let Some(slice) = &r.slice else { return Ok(letters.into_iter().zip(shape).collect()) };
        if shape.len() != 1 {
            return Err(Located::new(r.pos, format!("only vectors can be indexed, and '{name}' is {}-D", shape.len())));
        }
        let len = shape[0];
        Ok(match *slice {
            Slice::At(k) => {
                if k >= len {
                    return Err(Located::new(r.pos, format!("index {k} is out of range: '{name}' has {len} elements")));
                }
                Vec::new()
            }
            Slice::Range(a, b) => {
                if b > len {
                    return Err(Located::new(
                        r.pos,
                        format!("index range {a}:{b} is out of range: '{name}' has {len} elements"),
                    ));
                }
                vec![(letters[0], b - a)]
            }
            Slice::Model(_) => Vec::new(),
            Slice::ModelRange(_, w) => {
                if w > len {
                    return Err(Located::new(
                        r.pos,
                        format!("index range of {w} elements is longer than '{name}' ({len})"),
                    ));
                }
                vec![(letters[0], w)]
            }
        })
    }

    /// The tensor and named element (if any) a name refers to. While layouts are worked out this also
    /// records how deep the reference reaches.
    pub(super) fn symbol(&mut self, name: &str, pos: Pos) -> Result<(usize, Option<usize>), Located> {
        let Some(&(sym, _)) = self.syms.get(name) else {
            return Err(Located::new(pos, format!("unknown name '{name}'")));
        };
        let (tid, block) = match sym {
            Sym::Tensor(tid) => (tid, None),
            Sym::Block(tid, e) => (tid, Some(e)),
        };
        let layout = self.layout(tid, pos)?;
        self.ref_depth = self.ref_depth.max(self.level - self.entry + layout.depth);
        Ok((tid, block))
    }

    /// The element holding flat index `k` of a vector (or the scalar's one element).
    pub(super) fn element_at(&self, tid: usize, k: usize) -> &'a Element {
        let layout = self.layouts[tid].as_ref().expect("layouts are computed first");
        let t = self.defs[tid].t;
        let e = (0..layout.blocks.len())
            .find(|&e| {
                let (a, n) = layout.span(e);
                (a..a + n).contains(&k)
            })
            .unwrap_or(0);
        &t.elements[e]
    }
}
