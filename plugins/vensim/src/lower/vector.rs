//! Vector functions, lowered to scalar operations over a range's elements: `SUM`-like folds over `range!`
//! (their environments), `VECTOR SELECT`, `VECTOR RANK`/`SORT ORDER`/`REORDER` and `VECTOR ELM MAP` along a
//! subscript, and `INVERT MATRIX`.

use parfit_expr::Op;
use parfit_expr::system::Expr as S;

use super::{Env, Lowerer, Slot, chain, op2};
use crate::expr::{Expr, Sub};
use crate::lexer::Located;

impl Lowerer<'_, '_> {
    /// `VECTOR RANK(vector[…, r], direction)` (`rank`: each element's rank from 1) or `VECTOR SORT ORDER`
    /// (the 0-based index of the element ranked at this position), ascending unless direction is 0.
    pub(super) fn vector_rank(
        &mut self,
        rank: bool,
        vector: &Expr,
        direction: &Expr,
        function: &str,
        at: usize,
        env: &Env,
    ) -> Result<S, Located> {
        let Some(direction) = direction.as_literal() else {
            return Err(Located::new(
                at,
                format!("{function}'s direction must be a number (1 ascending, 0 descending)"),
            ));
        };
        let (values, position) = self.along_last(vector, env, function, at)?;
        let ranks = ranks(&values, direction != 0.0);
        Ok(match rank {
            true => ranks[position].clone(),
            false => ranks
                .into_iter()
                .enumerate()
                .map(|(i, r)| op2(Op::Mul, S::Num(i as f64), op2(Op::Eq, r, S::Num((position + 1) as f64))))
                .reduce(|a, b| chain(Op::Add, a, b))
                .unwrap_or(S::Num(f64::NAN)),
        })
    }

    /// `VECTOR REORDER(vector[…, r], order)`: the element of the vector at (0-based) index `order`.
    pub(super) fn vector_reorder(&mut self, vector: &Expr, order: &Expr, at: usize, env: &Env) -> Result<S, Located> {
        let (values, _) = self.along_last(vector, env, "VECTOR REORDER", at)?;
        let order = self.expr(order, env)?;
        Ok(values.into_iter().enumerate().rev().fold(S::Num(f64::NAN), |rest, (i, v)| {
            S::Op(Op::If, vec![op2(Op::Eq, order.clone(), S::Num(i as f64)), v, rest])
        }))
    }

    /// The values of `x` for every combination of the `range!` subscripts in it, in row-major order.
    pub(super) fn unroll(&mut self, x: &Expr, env: &Env, function: &str, at: usize) -> Result<Vec<S>, Located> {
        let envs = self.bang_envs(&[x], env, function, at)?;
        envs.iter().map(|e| self.expr(x, e)).collect()
    }

    /// `env` extended with each combination of the `range!` subscripts in `xs`, in row-major order.
    pub(super) fn bang_envs(
        &mut self,
        xs: &[&Expr],
        env: &Env,
        function: &str,
        at: usize,
    ) -> Result<Vec<Env>, Located> {
        let mut bangs: Vec<&Sub> = Vec::new();
        for x in xs {
            x.visit_subs(&mut |s| {
                if s.bang && !bangs.iter().any(|b| b.key == s.key) {
                    bangs.push(s);
                }
            });
        }
        if bangs.is_empty() {
            return Err(Located::new(
                at,
                format!("{function} needs a subscript range marked with '!' in its argument"),
            ));
        }
        let mut ranges = Vec::new();
        for b in &bangs {
            ranges.push(self.subs.range_of(b)?);
        }
        let sizes: Vec<usize> = ranges.iter().map(|&r| self.subs.ranges[r].elements.len()).collect();
        let count: f64 = sizes.iter().map(|&n| n as f64).product();
        parfit_core::limits::check_allocation(&format!("{function} over {count} elements"), count, 256.0)
            .map_err(|m| Located::new(at, m))?;
        self.unrolled += count;
        let mut envs = Vec::new();
        let mut tuple = vec![0usize; ranges.len()];
        for _ in 0..count as usize {
            let mut inner = env.clone();
            for ((b, &r), &i) in bangs.iter().zip(&ranges).zip(&tuple) {
                inner.binding.push((format!("{}!", b.key), self.subs.ranges[r].elements[i].clone()));
            }
            envs.push(inner);
            for p in (0..tuple.len()).rev() {
                tuple[p] += 1;
                if tuple[p] < sizes[p] {
                    break;
                }
                tuple[p] = 0;
            }
        }
        Ok(envs)
    }

    /// `VECTOR SELECT(selection[r!], values[s!], missing, action, error action)` over every combination of
    /// the `!` ranges of both arrays (an array without one of them repeats along it), keeping those whose
    /// selection s is not 0: actions 0–4 combine s·v (sum, product, minimum, maximum, mean), 5 is the product
    /// of v^s, 6–10 combine v itself as 0–4 do; `missing` when nothing is selected. An action computed at
    /// run time chooses among all eleven.
    pub(super) fn vector_select(&mut self, args: &[Expr], at: usize, env: &Env) -> Result<S, Located> {
        let [selection, values, missing, action, _error] = args else {
            return Err(Located::new(at, format!("VECTOR SELECT takes 5 arguments, found {}", args.len())));
        };
        let mut selected = Vec::new();
        let mut vals = Vec::new();
        for env in self.bang_envs(&[selection, values], env, "VECTOR SELECT", at)? {
            selected.push(self.expr(selection, &env)?);
            vals.push(self.expr(values, &env)?);
        }
        let missing = self.expr(missing, env)?;
        let flag = |s: &S| op2(Op::Ne, s.clone(), S::Num(0.0));
        let count = selected.iter().map(flag).reduce(|a, b| chain(Op::Add, a, b)).unwrap_or(S::Num(0.0));
        let result = |action: u8| {
            let terms = selected.iter().zip(&vals).map(|(s, v)| match action {
                0..=4 => op2(Op::Mul, s.clone(), v.clone()),
                5 => op2(Op::Pow, v.clone(), s.clone()),
                _ => v.clone(),
            });
            // How the terms combine: 0 sum, 1 product, 2 minimum, 3 maximum, 4 mean.
            let combine = match action {
                0..=4 => action,
                5 => 1,
                _ => action - 6,
            };
            let (op, neutral) = match combine {
                0 | 4 => (Op::Add, 0.0),
                1 => (Op::Mul, 1.0),
                2 => (Op::Min, f64::INFINITY),
                _ => (Op::Max, f64::NEG_INFINITY),
            };
            let folded = selected
                .iter()
                .zip(terms)
                .map(|(s, t)| S::Op(Op::If, vec![flag(s), t, S::Num(neutral)]))
                .reduce(|a, b| chain(op, a, b))
                .unwrap_or(S::Num(neutral));
            if combine == 4 { op2(Op::Div, folded, count.clone()) } else { folded }
        };
        let chosen = match action.as_literal() {
            Some(a) if a.fract() == 0.0 && (0.0..=10.0).contains(&a) => result(a as u8),
            Some(a) => {
                return Err(Located::new(at, format!("VECTOR SELECT's numerical action must be 0 to 10, found {a}")));
            }
            None => {
                let action = self.expr(action, env)?;
                (0..=10u8).rev().fold(S::Num(f64::NAN), |rest, k| {
                    S::Op(Op::If, vec![op2(Op::Eq, action.clone(), S::Num(f64::from(k))), result(k), rest])
                })
            }
        };
        Ok(S::Op(Op::If, vec![count, chosen, missing]))
    }

    /// The values of a vector function's argument `vector[…, r]` along its last subscript's range r, and the
    /// position along r that `env` stands at.
    pub(super) fn along_last(
        &mut self,
        x: &Expr,
        env: &Env,
        function: &str,
        at: usize,
    ) -> Result<(Vec<S>, usize), Located> {
        let along = || {
            Located::new(
                at,
                format!("{function} runs along its argument's last subscript, which must be a range without '!'"),
            )
        };
        let Expr::Var { subs, .. } = x else { return Err(along()) };
        let Some(last) = subs.last().filter(|s| !s.bang) else { return Err(along()) };
        let r = self.subs.range_of(last)?;
        let here = self.element(env, last)?;
        let elements = self.subs.ranges[r].elements.clone();
        // Ranks compare every pair: n² expression nodes for each of n cells.
        let n = elements.len() as f64;
        parfit_core::limits::check_allocation(&format!("{function} along {n} elements"), n * n * n, 64.0)
            .map_err(|m| Located::new(at, m))?;
        let position = elements.iter().position(|e| *e == here).ok_or_else(|| {
            Located::new(last.at, format!("'{}' is not an element of '{}'", self.subs.element_text(&here), last.text))
        })?;
        let mut values = Vec::with_capacity(elements.len());
        for e in elements {
            let mut inner = env.clone();
            inner.binding.push((last.key.clone(), e));
            values.push(self.expr(x, &inner)?);
        }
        Ok((values, position))
    }

    /// `INVERT MATRIX(m[…, rows, columns], n)`: the element of the inverse of the n × n matrix over the last two
    /// subscripts at this equation's row and column, as the adjugate over the determinant (exact cofactor
    /// expansion, so n is at most 4).
    pub(super) fn invert_matrix(&mut self, args: &[Expr], at: usize, env: &Env) -> Result<S, Located> {
        let [matrix @ Expr::Var { subs, .. }, size] = args else {
            return Err(Located::new(at, "INVERT MATRIX takes a subscripted variable and its size"));
        };
        let [.., row_sub, col_sub] = subs.as_slice() else {
            return Err(Located::new(at, "INVERT MATRIX needs a variable with two subscripts at least"));
        };
        let (rows, cols) = (self.subs.range_of(row_sub)?, self.subs.range_of(col_sub)?);
        let n = self.subs.ranges[rows].elements.len();
        if self.subs.ranges[cols].elements.len() != n || size.as_literal() != Some(n as f64) {
            return Err(Located::new(at, format!("INVERT MATRIX needs a square matrix whose size is given, {n}")));
        }
        if n > 4 {
            return Err(Located::new(
                at,
                format!("INVERT MATRIX of a {n} × {n} matrix is not supported (at most 4 × 4)"),
            ));
        }
        let position = |l: &Self, sub: &Sub, r: usize| -> Result<usize, Located> {
            let e = l.element(env, sub)?;
            l.subs.ranges[r].elements.iter().position(|x| *x == e).ok_or_else(|| {
                Located::new(sub.at, format!("'{}' is not an element of '{}'", l.subs.element_text(&e), sub.text))
            })
        };
        let (i, j) = (position(self, row_sub, rows)?, position(self, col_sub, cols)?);
        let mut m = vec![Vec::with_capacity(n); n];
        for (p, row) in m.iter_mut().enumerate() {
            for q in 0..n {
                let mut inner = env.clone();
                inner.binding.push((row_sub.key.clone(), self.subs.ranges[rows].elements[p].clone()));
                inner.binding.push((col_sub.key.clone(), self.subs.ranges[cols].elements[q].clone()));
                row.push(self.expr(matrix, &inner)?);
            }
        }
        let all: Vec<usize> = (0..n).collect();
        let without = |k: usize| all.iter().copied().filter(|&x| x != k).collect::<Vec<_>>();
        let cofactor = determinant(&m, &without(j), &without(i));
        let cofactor = if (i + j) % 2 == 0 { cofactor } else { S::Op(Op::Neg, vec![cofactor]) };
        Ok(op2(Op::Div, cofactor, determinant(&m, &all, &all)))
    }

    /// `VECTOR ELM MAP(vector[e], offset)`: the element of `vector` `offset` places after `e` along its
    /// first position's range (NaN outside it).
    pub(super) fn vector_elm_map(&mut self, args: &[Expr], at: usize, env: &Env) -> Result<S, Located> {
        let [Expr::Var { key, text, subs, at: vat }, offset] = args else {
            return Err(Located::new(at, "VECTOR ELM MAP takes a subscripted variable and an offset"));
        };
        let Some(&v) = self.scopes[env.scope].vars.get(key.as_str()) else {
            return Err(Located::new(*vat, format!("unknown variable '{text}'")));
        };
        if subs.is_empty() {
            return Err(Located::new(*vat, "VECTOR ELM MAP needs a subscripted variable"));
        }
        let base = self.cell_index(env, v, text, subs, *vat)?;
        let dims = self.scopes[env.scope].variables[v].dims.clone();
        let stride: usize = dims[1..].iter().map(|&d| self.subs.ranges[d].elements.len()).product();
        let n = self.subs.ranges[dims[0]].elements.len();
        let start = base / stride;
        let offset = self.expr(offset, env)?;
        let mut result = S::Num(f64::NAN);
        for i in (0..n).rev() {
            let k = base - start * stride + i * stride;
            let value = match self.slot_of(env.scope, v, k, *vat)? {
                Slot::Param(p) => S::Param(p),
                Slot::State(s) => S::State(s),
                Slot::Var(x) => S::Var(x),
                Slot::Table(_) => return Err(Located::new(*vat, format!("'{text}' is a lookup"))),
            };
            let hit = op2(Op::Eq, S::Op(Op::Trunc, vec![offset.clone()]), S::Num(i as f64 - start as f64));
            result = S::Op(Op::If, vec![hit, value, result]);
        }
        Ok(result)
    }
}

/// The determinant of the rows × cols minor of `m`, by cofactor expansion along its first row.
pub(super) fn determinant(m: &[Vec<S>], rows: &[usize], cols: &[usize]) -> S {
    match (rows, cols) {
        ([], _) | (_, []) => S::Num(1.0),
        ([r], [c]) => m[*r][*c].clone(),
        ([r, rest @ ..], _) => cols
            .iter()
            .enumerate()
            .map(|(k, &c)| {
                let minor: Vec<usize> = cols.iter().copied().filter(|&x| x != c).collect();
                let term = op2(Op::Mul, m[*r][c].clone(), determinant(m, rest, &minor));
                (k, term)
            })
            .fold(None, |acc: Option<S>, (k, term)| {
                Some(match acc {
                    None => term,
                    Some(acc) => op2(if k % 2 == 0 { Op::Add } else { Op::Sub }, acc, term),
                })
            })
            .unwrap_or(S::Num(0.0)),
    }
}

/// The rank (from 1) of each value, ascending or descending; ties ranked in order of position.
pub(super) fn ranks(values: &[S], ascending: bool) -> Vec<S> {
    let before = if ascending { Op::Lt } else { Op::Gt };
    (0..values.len())
        .map(|i| {
            values.iter().enumerate().filter(|&(j, _)| j != i).fold(S::Num(1.0), |rank, (j, v)| {
                let ahead = match j < i {
                    // An equal value earlier in the vector ranks first.
                    true => S::Op(
                        Op::Or,
                        vec![op2(before, v.clone(), values[i].clone()), op2(Op::Eq, v.clone(), values[i].clone())],
                    ),
                    false => op2(before, v.clone(), values[i].clone()),
                };
                chain(Op::Add, rank, ahead)
            })
        })
        .collect()
}
