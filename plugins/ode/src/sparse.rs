//! Sparse LU factorisation with partial pivoting, for iteration matrices whose pattern is neither small nor
//! banded (2-D and 3-D grids: a 5-point stencil on an `m × m` grid has bandwidth `m`, and a banded LU fills
//! the whole band).
//!
//! Once per pattern, a minimum-degree ordering of the symmetrised pattern chooses the order of the columns
//! (fill-reducing: on an `m × m` grid the factors hold `O(m² log m)` entries instead of the band's `O(m³)`),
//! and its symbolic elimination estimates the work. Each factorisation is then left-looking (Gilbert &
//! Peierls, as in CSparse's `cs_lu` and KLU): column `k` of `L` and `U` is the sparse triangular solve of
//! `L x = A(:, q_k)` over the rows a depth-first search reaches, then a pivot chosen among the rows not yet
//! used — the column's own diagonal row while its value is at least `PIVOT_THRESHOLD` of the largest
//! candidate (so the planned ordering holds), else the largest. The factors are then copied by rows, for
//! solves that accumulate each unknown in a register. The factors' storage keeps its capacity from one
//! factorisation to the next, so refactorising allocates nothing once it has grown.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A diagonal pivot is kept while at least this fraction of the largest candidate in its column (UMFPACK's
/// default): far better for fill than always the largest, and its growth stays small (residuals of random
/// systems ≤ 1e-13 relative, where KLU's 0.001 let them reach 3e-11).
const PIVOT_THRESHOLD: f64 = 0.1;

/// Marks a row not yet chosen as a pivot.
const NONE: usize = usize::MAX;

/// A sparse `n × n` matrix with a fixed pattern (in compressed columns) and, after [`SparseLu::factor`], its
/// factors `P A Q = L U`.
#[derive(Debug, Clone)]
pub(crate) struct SparseLu {
    n: usize,
    /// `A` by columns: column `j`'s rows are `a_rows[a_start[j]..a_start[j + 1]]`, sorted.
    a_start: Vec<usize>,
    a_rows: Vec<usize>,
    a_vals: Vec<f64>,
    /// The column order: step `k` eliminates column `q[k]` of `A`.
    q: Vec<usize>,
    /// `pinv[row]`: the step at which the row became a pivot (`NONE` while it is not one).
    pinv: Vec<usize>,
    /// `L` (unit diagonal not stored) by columns, rows as steps once factorised.
    l_start: Vec<usize>,
    l_rows: Vec<usize>,
    l_vals: Vec<f64>,
    /// `U` by columns, rows as steps, without its diagonal, which is in `u_diag`.
    u_start: Vec<usize>,
    u_rows: Vec<usize>,
    u_vals: Vec<f64>,
    u_diag: Vec<f64>,
    /// `L` and `U` (still without its diagonal) by rows, for the solves.
    l_by_rows: ByRows,
    u_by_rows: ByRows,
    /// Scratch for a column: dense values, the reach (`reach[top..]`), the depth-first stacks and marks.
    x: Vec<f64>,
    reach: Vec<usize>,
    stack: Vec<usize>,
    next_child: Vec<usize>,
    mark: Vec<usize>,
    /// Multiply-adds of a factorisation, and the entries of its factors (a solve's multiply-adds), when
    /// every pivot is on the diagonal: the symbolic elimination's estimates.
    work: f64,
    entries: f64,
    /// Whether the last factorisation succeeded with every pivot on the diagonal (then the next one may reuse
    /// its pattern: [`SparseLu::refactor`]).
    diagonal_pivots: bool,
}

impl SparseLu {
    /// For `n × n` matrices with non-zeros only at `pattern` (row, column) and on the diagonal.
    #[cfg(test)]
    pub fn new(n: usize, pattern: impl IntoIterator<Item = (usize, usize)>) -> Self {
        Self::within(n, pattern, f64::INFINITY).unwrap()
    }

    /// [`SparseLu::new`], or `None` as soon as the ordering finds that a factorisation would take more than
    /// `max_work` multiply-adds (the ordering's own cost grows with that work, so it stops early).
    pub fn within(n: usize, pattern: impl IntoIterator<Item = (usize, usize)>, max_work: f64) -> Option<Self> {
        let mut cols: Vec<Vec<usize>> = (0..n).map(|j| vec![j]).collect();
        for (i, j) in pattern {
            cols[j].push(i);
        }
        for c in &mut cols {
            c.sort_unstable();
            c.dedup();
        }
        let mut a_start = Vec::with_capacity(n + 1);
        a_start.push(0);
        for c in &cols {
            a_start.push(a_start.last().copied().unwrap_or(0) + c.len());
        }
        let (q, work, entries) = minimum_degree(n, &cols, max_work)?;
        let a_rows: Vec<usize> = cols.into_iter().flatten().collect();
        Some(SparseLu {
            n,
            a_vals: vec![0.0; a_rows.len()],
            a_start,
            a_rows,
            q,
            pinv: vec![NONE; n],
            l_start: vec![0; n + 1],
            l_rows: Vec::new(),
            l_vals: Vec::new(),
            u_start: vec![0; n + 1],
            u_rows: Vec::new(),
            u_vals: Vec::new(),
            u_diag: vec![0.0; n],
            l_by_rows: ByRows::default(),
            u_by_rows: ByRows::default(),
            x: vec![0.0; n],
            reach: vec![0; n],
            stack: vec![0; n],
            next_child: vec![0; n],
            mark: vec![NONE; n],
            work,
            entries,
            diagonal_pivots: false,
        })
    }

    /// Multiply-adds of one factorisation and of one solve in the planned order (estimates, to choose the
    /// storage).
    pub fn work(&self) -> (f64, f64) {
        (self.work, self.entries)
    }

    /// Where entry `(i, j)` (in the pattern or on the diagonal) is in [`SparseLu::storage`].
    pub fn index(&self, i: usize, j: usize) -> usize {
        let col = &self.a_rows[self.a_start[j]..self.a_start[j + 1]];
        let k = col.binary_search(&i);
        debug_assert!(k.is_ok(), "({i}, {j}) is not in the pattern");
        self.a_start[j] + k.unwrap_or(0)
    }

    /// The values of `A`, to be filled through [`SparseLu::index`] before [`SparseLu::factor`].
    pub fn storage(&mut self) -> &mut [f64] {
        &mut self.a_vals
    }

    /// Factorise. False when a column has no usable pivot (the matrix is singular) or a value is not finite.
    pub fn factor(&mut self) -> bool {
        // Only an all-diagonal pivot sequence is reused: a fresh factorisation would choose it again whenever
        // every diagonal still passes the threshold, so the result never depends on what came before.
        let ok = (self.diagonal_pivots && self.refactor()) || self.factor_afresh();
        if ok {
            by_rows(self.n, &self.l_start, &self.l_rows, &self.l_vals, &mut self.l_by_rows);
            by_rows(self.n, &self.u_start, &self.u_rows, &self.u_vals, &mut self.u_by_rows);
        }
        ok
    }

    /// The factorisation with the last one's pattern and (diagonal) pivots, without searching: the same
    /// arithmetic in the same order as [`SparseLu::factor_afresh`]. False when a diagonal pivot no longer
    /// passes the threshold (or a value is not finite).
    fn refactor(&mut self) -> bool {
        let x = &mut self.x;
        for k in 0..self.n {
            let col = self.q[k];
            let (u, l) = (self.u_start[k]..self.u_start[k + 1], self.l_start[k]..self.l_start[k + 1]);
            // Rows are numbered by their steps here.
            x[k] = 0.0;
            for &s in self.u_rows[u.clone()].iter().chain(&self.l_rows[l.clone()]) {
                x[s] = 0.0;
            }
            for p in self.a_start[col]..self.a_start[col + 1] {
                x[self.pinv[self.a_rows[p]]] = self.a_vals[p];
            }
            for p in u {
                let s = self.u_rows[p];
                let xs = x[s];
                self.u_vals[p] = xs;
                let below = self.l_start[s]..self.l_start[s + 1];
                for (&r, &v) in self.l_rows[below.clone()].iter().zip(&self.l_vals[below]) {
                    x[r] -= v * xs;
                }
            }
            let pivot = x[k];
            let mut largest = pivot.abs();
            for &r in &self.l_rows[l.clone()] {
                largest = largest.max(x[r].abs());
            }
            if !(largest.is_finite() && largest > 0.0 && pivot.abs() >= PIVOT_THRESHOLD * largest) {
                return false;
            }
            self.u_diag[k] = pivot;
            for p in l {
                self.l_vals[p] = x[self.l_rows[p]] / pivot;
            }
        }
        true
    }

    /// The factorisation with a search for each column's rows and pivot (see the module's description).
    fn factor_afresh(&mut self) -> bool {
        let n = self.n;
        self.diagonal_pivots = false;
        let mut all_diagonal = true;
        self.pinv.fill(NONE);
        self.mark.fill(NONE);
        self.l_rows.clear();
        self.l_vals.clear();
        self.u_rows.clear();
        self.u_vals.clear();
        for k in 0..n {
            self.l_start[k] = self.l_rows.len();
            self.u_start[k] = self.u_rows.len();
            let col = self.q[k];
            // x = L \ A(:, col) over the rows reachable from A(:, col)'s, in topological order.
            let top = self.reach_of(col, k);
            for &i in &self.reach[top..] {
                self.x[i] = 0.0;
            }
            for p in self.a_start[col]..self.a_start[col + 1] {
                self.x[self.a_rows[p]] = self.a_vals[p];
            }
            for &j in &self.reach[top..] {
                let step = self.pinv[j];
                if step == NONE {
                    continue;
                }
                let xj = self.x[j];
                for p in self.l_start[step]..self.l_start[step + 1] {
                    self.x[self.l_rows[p]] -= self.l_vals[p] * xj;
                }
            }
            // U's column from the pivotal rows; the pivot among the others.
            let (mut best, mut best_abs, mut diag_abs) = (NONE, -1.0, -1.0);
            for &i in &self.reach[top..] {
                let v = self.x[i];
                if self.pinv[i] != NONE {
                    self.u_rows.push(self.pinv[i]);
                    self.u_vals.push(v);
                } else {
                    if !v.is_finite() {
                        return false;
                    }
                    if v.abs() > best_abs {
                        (best, best_abs) = (i, v.abs());
                    }
                    if i == col {
                        diag_abs = v.abs();
                    }
                }
            }
            if best == NONE || best_abs == 0.0 {
                return false;
            }
            let pivot_row = if diag_abs >= PIVOT_THRESHOLD * best_abs { col } else { best };
            all_diagonal &= pivot_row == col;
            let pivot = self.x[pivot_row];
            self.pinv[pivot_row] = k;
            self.u_diag[k] = pivot;
            for &i in &self.reach[top..] {
                if self.pinv[i] == NONE {
                    self.l_rows.push(i);
                    self.l_vals.push(self.x[i] / pivot);
                }
            }
        }
        self.l_start[n] = self.l_rows.len();
        self.u_start[n] = self.u_rows.len();
        // L's rows as steps, as U's are.
        for r in &mut self.l_rows {
            *r = self.pinv[*r];
        }
        self.diagonal_pivots = all_diagonal;
        true
    }

    /// The rows reachable in the graph of `L` (so far) from the rows of `A(:, col)`, in `reach[top..]` in
    /// topological order (a row before those it updates); returns `top`. `stamp` marks this column's visits.
    fn reach_of(&mut self, col: usize, stamp: usize) -> usize {
        let mut top = self.n;
        for p in self.a_start[col]..self.a_start[col + 1] {
            let start = self.a_rows[p];
            if self.mark[start] == stamp {
                continue;
            }
            // Depth-first, without recursion: `next_child[d]` is where node `stack[d]`'s scan resumes.
            self.mark[start] = stamp;
            self.stack[0] = start;
            self.next_child[0] = self.children(start).0;
            let mut depth = 0;
            loop {
                let node = self.stack[depth];
                let (_, to) = self.children(node);
                let mut descended = false;
                for p in self.next_child[depth]..to {
                    let child = self.l_rows[p];
                    if self.mark[child] != stamp {
                        self.mark[child] = stamp;
                        self.next_child[depth] = p + 1;
                        depth += 1;
                        self.stack[depth] = child;
                        self.next_child[depth] = self.children(child).0;
                        descended = true;
                        break;
                    }
                }
                if !descended {
                    top -= 1;
                    self.reach[top] = node;
                    if depth == 0 {
                        break;
                    }
                    depth -= 1;
                }
            }
        }
        top
    }

    /// The range of `L`'s entries below a row's pivot: its column's, if the row is a pivot yet.
    fn children(&self, row: usize) -> (usize, usize) {
        match self.pinv[row] {
            NONE => (0, 0),
            step => (self.l_start[step], self.l_start[step + 1]),
        }
    }

    /// Solve `A x = b` in place with the last factorisation (which succeeded). By rows: each unknown is its
    /// right-hand side minus a sum accumulated in a register (column-wise updates, stored back to memory
    /// entry by entry, took twice as long).
    pub fn solve(&mut self, b: &mut [f64]) {
        let y = &mut self.x;
        for (row, &v) in b.iter().enumerate() {
            y[self.pinv[row]] = v;
        }
        let l = &self.l_by_rows;
        for k in 0..self.n {
            let row = l.start[k]..l.start[k + 1];
            let mut acc = y[k];
            for (&c, &v) in l.cols[row.clone()].iter().zip(&l.vals[row]) {
                acc -= v * y[c as usize];
            }
            y[k] = acc;
        }
        let u = &self.u_by_rows;
        for k in (0..self.n).rev() {
            let row = u.start[k]..u.start[k + 1];
            let mut acc = y[k];
            for (&c, &v) in u.cols[row.clone()].iter().zip(&u.vals[row]) {
                acc -= v * y[c as usize];
            }
            y[k] = acc / self.u_diag[k];
        }
        for (&col, &v) in self.q.iter().zip(y.iter()) {
            b[col] = v;
        }
    }
}

/// A factor by rows (compressed sparse rows), for the solves.
#[derive(Debug, Clone, Default)]
struct ByRows {
    start: Vec<usize>,
    cols: Vec<u32>,
    vals: Vec<f64>,
}

/// `out` = the `n × n` matrix given by columns (`start`, `rows`, `vals`), by rows; its storage is reused.
fn by_rows(n: usize, start: &[usize], rows: &[usize], vals: &[f64], out: &mut ByRows) {
    // Counting sort by row: counts at row + 2, prefix sums, then each entry placed at its row's cursor
    // (`start[row + 1]`), which leaves `start[row + 1]` at the row's end.
    out.start.clear();
    out.start.resize(n + 2, 0);
    for &r in rows {
        out.start[r + 2] += 1;
    }
    for i in 2..n + 2 {
        out.start[i] += out.start[i - 1];
    }
    out.cols.resize(rows.len(), 0);
    out.vals.resize(rows.len(), 0.0);
    for j in 0..n {
        for p in start[j]..start[j + 1] {
            let cursor = &mut out.start[rows[p] + 1];
            out.cols[*cursor] = j as u32;
            out.vals[*cursor] = vals[p];
            *cursor += 1;
        }
    }
    out.start.pop();
}

/// A minimum-degree ordering of the symmetric pattern of `A + Aᵀ` (`cols[j]`: the rows of column `j`,
/// diagonal included), by eliminating the node of least degree in the elimination graph (ties: the lowest
/// index) and joining its neighbours into a clique; also the multiply-adds that elimination order costs
/// (`Σ d²`, `d` a node's degree when it goes) and the entries of `L` and `U` it makes (`n + 2 Σ d`); `None`
/// once that work exceeds `max_work`.
fn minimum_degree(n: usize, cols: &[Vec<usize>], max_work: f64) -> Option<(Vec<usize>, f64, f64)> {
    let mut adj: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (j, rows) in cols.iter().enumerate() {
        for &i in rows {
            if i != j {
                adj[i].push(j);
                adj[j].push(i);
            }
        }
    }
    for a in &mut adj {
        a.sort_unstable();
        a.dedup();
    }
    let mut heap: BinaryHeap<Reverse<(usize, usize)>> = (0..n).map(|v| Reverse((adj[v].len(), v))).collect();
    let mut gone = vec![false; n];
    let (mut order, mut work, mut entries) = (Vec::with_capacity(n), 0.0, n as f64);
    let mut merged = Vec::new();
    while let Some(Reverse((degree, v))) = heap.pop() {
        // Entries go stale as degrees change; only the current one counts.
        if gone[v] || degree != adj[v].len() {
            continue;
        }
        gone[v] = true;
        order.push(v);
        work += (degree * degree) as f64;
        entries += 2.0 * degree as f64;
        if work > max_work {
            return None;
        }
        let clique = std::mem::take(&mut adj[v]);
        for &u in &clique {
            // adj[u] ← (adj[u] ∪ clique) \ {u, v}, both sorted.
            merged.clear();
            let (a, b) = (&adj[u], &clique);
            let (mut i, mut j) = (0, 0);
            while i < a.len() || j < b.len() {
                let next = match (a.get(i), b.get(j)) {
                    (Some(&x), Some(&y)) if x == y => {
                        i += 1;
                        j += 1;
                        x
                    }
                    (Some(&x), Some(&y)) if x < y => {
                        i += 1;
                        x
                    }
                    (Some(&x), None) => {
                        i += 1;
                        x
                    }
                    (_, Some(&y)) => {
                        j += 1;
                        y
                    }
                    (None, None) => break,
                };
                if next != u && next != v {
                    merged.push(next);
                }
            }
            std::mem::swap(&mut adj[u], &mut merged);
            heap.push(Reverse((adj[u].len(), u)));
        }
    }
    Some((order, work, entries))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{DMatrix, DVector};
    use parfit_core::math;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// A deterministic pseudo-random sequence in [0, 1).
    fn lcg(state: &mut u64) -> f64 {
        *state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (*state >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `SparseLu` over `entries` (row, column, value): a backward-stable solve (a residual of rounding size
    /// against `|A| |x|`; threshold pivoting lets it grow a little beyond partial pivoting's ~1e-15), and the
    /// same solution as nalgebra's dense LU as far as the conditioning allows.
    fn check(n: usize, entries: &[(usize, usize, f64)]) {
        let mut lu = SparseLu::new(n, entries.iter().map(|&(i, j, _)| (i, j)));
        let mut dense = DMatrix::zeros(n, n);
        for &(i, j, v) in entries {
            let k = lu.index(i, j);
            lu.storage()[k] += v;
            dense[(i, j)] += v;
        }
        assert!(lu.factor());
        let b: Vec<f64> = (0..n).map(|i| 1.0 + math::cos(i as f64)).collect();
        let mut x = b.clone();
        lu.solve(&mut x);
        let (mut residual, mut size) = (b.iter().map(|v| -v).collect::<Vec<f64>>(), vec![0.0; n]);
        for &(i, j, v) in entries {
            residual[i] += v * x[j];
            size[i] += (v * x[j]).abs();
        }
        for i in 0..n {
            let r = residual[i].abs() / (size[i] + b[i].abs());
            assert!(r <= 1e-13, "n = {n}: residual {:e} in row {i}", residual[i]);
        }
        let want = dense.lu().solve(&DVector::from_column_slice(&b)).expect("non-singular");
        let scale = want.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        for i in 0..n {
            assert!((x[i] - want[i]).abs() <= 1e-8 * scale, "n = {n}: x[{i}] = {} vs {}", x[i], want[i]);
        }
    }

    #[test]
    fn random_sparse_systems_solve_as_dense_lu_does() {
        let mut s = 7;
        for n in [1, 2, 5, 17, 60, 200] {
            // A few entries per column; the diagonal sometimes zero or tiny, so rows must be interchanged.
            let mut entries = Vec::new();
            for j in 0..n {
                let d = lcg(&mut s);
                entries.push((
                    j,
                    j,
                    if d < 0.2 {
                        0.0
                    } else if d < 0.3 {
                        1e-9
                    } else {
                        d
                    },
                ));
                for _ in 0..3 {
                    let i = (lcg(&mut s) * n as f64) as usize;
                    entries.push((i, j, 2.0 * lcg(&mut s) - 1.0));
                }
            }
            // A permutation's worth of large entries keeps the matrix well away from singular.
            for j in 0..n {
                entries.push(((j * 7 + 3) % n, j, 3.0 + lcg(&mut s)));
            }
            check(n, &entries);
        }
    }

    /// Every column's diagonal is zero: every pivot is off the diagonal.
    #[test]
    fn a_zero_diagonal_pivots_off_it() {
        let n = 30;
        let entries: Vec<(usize, usize, f64)> =
            (0..n).flat_map(|j| [(j, j, 0.0), ((j + 1) % n, j, 2.0 + j as f64), ((j + 5) % n, j, 0.5)]).collect();
        check(n, &entries);
    }

    #[test]
    fn a_singular_matrix_is_reported() {
        // Column 2 is column 0 plus column 1.
        let entries = [(0, 0, 1.0), (1, 1, 1.0), (0, 2, 1.0), (1, 2, 1.0), (2, 2, 0.0)];
        let mut lu = SparseLu::new(3, entries.iter().map(|&(i, j, _)| (i, j)));
        for &(i, j, v) in &entries {
            let k = lu.index(i, j);
            lu.storage()[k] = v;
        }
        assert!(!lu.factor());
    }

    /// A factorisation that reuses the last one's pattern gives the bits a fresh one gives, and a matrix whose
    /// diagonal no longer serves as pivots is factorised afresh.
    #[test]
    fn refactorising_gives_the_bits_of_a_fresh_factorisation() {
        let n = 40;
        let pattern: Vec<(usize, usize)> =
            (0..n).flat_map(|j| [(j, j), ((j + 3) % n, j), ((j * 7 + 1) % n, j), (j, (j + 11) % n)]).collect();
        let mut s = 3;
        let values = |s: &mut u64, diagonal: f64| -> Vec<f64> {
            pattern.iter().map(|&(i, j)| if i == j { diagonal + lcg(s) } else { lcg(s) - 0.5 }).collect()
        };
        let solve = |lu: &mut SparseLu, vals: &[f64]| -> Vec<f64> {
            lu.storage().fill(0.0);
            for (&(i, j), &v) in pattern.iter().zip(vals) {
                let k = lu.index(i, j);
                lu.storage()[k] += v;
            }
            assert!(lu.factor());
            let mut x: Vec<f64> = (0..n).map(|i| math::sin(i as f64)).collect();
            lu.solve(&mut x);
            x
        };
        let mut reused = SparseLu::new(n, pattern.iter().copied());
        for diagonal in [5.0, 3.0, 0.0, 4.0] {
            let vals = values(&mut s, diagonal);
            let was_diagonal = reused.diagonal_pivots;
            let x = solve(&mut reused, &vals);
            let fresh = solve(&mut SparseLu::new(n, pattern.iter().copied()), &vals);
            assert_eq!(x, fresh, "diagonal {diagonal}");
            // A diagonal of 5 or 3 pivots on the diagonal; near 0 some pivots go off it.
            assert_eq!(reused.diagonal_pivots, diagonal > 1.0, "diagonal {diagonal}");
            assert!(was_diagonal || diagonal != 3.0);
        }
    }

    /// On an `m × m` grid the ordering keeps the factors far below the band's `m³`.
    #[test]
    fn minimum_degree_limits_fill_on_a_grid() {
        let m = 40;
        let n = m * m;
        let mut pattern = Vec::new();
        for k in 0..n {
            let (r, c) = (k / m, k % m);
            for (dr, dc) in [(0, 1), (1, 0)] {
                if r + dr < m && c + dc < m {
                    let o = (r + dr) * m + c + dc;
                    pattern.extend([(k, o), (o, k)]);
                }
            }
        }
        assert!(SparseLu::within(n, pattern.iter().copied(), 1e4).is_none(), "gives up beyond its budget");
        let lu = SparseLu::new(n, pattern);
        let (work, entries) = lu.work();
        let band_entries = (n * (2 * m + 1)) as f64;
        assert!(entries < 0.35 * band_entries, "{entries} entries, band {band_entries}");
        assert!(work < 0.1 * (n * m * 2 * m) as f64, "{work} multiply-adds");
    }
}
