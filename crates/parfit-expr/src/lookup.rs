//! Lookup tables in programs: piecewise-linear functions given as points, read in the modes Vensim has.
//!
//! A table's points have non-decreasing `x` (two equal neighbours are a jump) and finite values; a table
//! has at least one point. [`LookupTable::new`] checks that, so every read below is total.
//!
//! Edge behaviour, mode by mode (`x` NaN gives NaN in every mode):
//! - `Interpolate`: the first `y` before the first point, the last `y` from the last point on; exactly at a
//!   point its `y`; at a jump (points of equal `x`) the last of them, so the table is continuous from the
//!   right; between points `y_j + slope·(x - x_j)`. A one-point table is constant.
//! - `Extrapolate`: as `Interpolate` inside; outside, the end segment (the first two or the last two
//!   points) extended: `y_0 + slope·(x - x_0)`, `y_n + slope·(x - x_n)`. A vertical end segment (a jump at
//!   the end) or a one-point table holds the end value.
//! - `Forward`: the `y` of the first point at or after `x` (at a jump, the first of its points), the last
//!   `y` after the table.
//! - `Backward`: the `y` of the last point at or before `x` (at a jump, the last of its points), the first
//!   `y` before the table.
//! - `Invert` (`x` is the `y` sought): the smallest `x` at which the interpolated table takes that value,
//!   scanning the segments in order (a flat segment at that value gives its start; a one-point table its `x`
//!   where the value is its `y`); NaN when the value lies outside the table's range of `y`, for the front
//!   end to turn into its "not available" value (Vensim's `:NA:`).
//! - `Area` (from `a` to `b`): the integral of the `Interpolate` function from `a` to `b` (held end values
//!   outside the table; negative when `b < a`), computed as `A(b) - A(a)` from the running area `A` from the
//!   first point, which is kept per point.
//!
//! Derivatives (the `LookupSlope` operations): the segment's slope inside for `Interpolate` (0 outside, and
//! at a jump or a point the slope of the segment that starts there), the end segment's outside for
//! `Extrapolate`, 0 for `Forward` and `Backward`, and `dx/dy` of the segment found for `Invert` (0 on a flat
//! segment, NaN outside); `Area`'s are ∓ the `Interpolate` value at its bounds.

use std::sync::OnceLock;

use crate::eval::Op;
use crate::system::LookupMode;

/// A validated table with its running areas.
#[derive(Debug, Clone)]
pub struct LookupTable {
    /// The points' `x`, empty when they are 0, 1, 2, … (`indexed`).
    xs: Vec<f64>,
    ys: Vec<f64>,
    /// `areas[k]`: the integral from the first point to point `k`, made on the first area read (only Vensim's
    /// `LOOKUP AREA` reads it; a projection's column may be large).
    areas: OnceLock<Vec<f64>>,
    /// Whether the points' `x` are 0, 1, 2, …: a point is then found by rounding down instead of a search
    /// (projection tables read by position), and `x` is not stored.
    indexed: bool,
}

impl PartialEq for LookupTable {
    fn eq(&self, other: &LookupTable) -> bool {
        (self.indexed, &self.xs, &self.ys) == (other.indexed, &other.xs, &other.ys)
    }
}

impl LookupTable {
    /// Check and keep the points; the error says what is wrong with which point.
    pub fn new(points: &[(f64, f64)]) -> Result<LookupTable, String> {
        if points.is_empty() {
            return Err("the lookup table has no points".into());
        }
        for (k, &(x, y)) in points.iter().enumerate() {
            if !x.is_finite() || !y.is_finite() {
                return Err(format!("point {} of the lookup table, ({x}, {y}), is not finite", k + 1));
            }
            if k > 0 && x < points[k - 1].0 {
                return Err(format!(
                    "the x values of a lookup table must not decrease, but point {} has x = {x} after x = {}",
                    k + 1,
                    points[k - 1].0
                ));
            }
        }
        let (xs, ys): (Vec<f64>, Vec<f64>) = points.iter().copied().unzip();
        Ok(LookupTable::with_points(xs, ys))
    }

    /// [`LookupTable::new`] of the points (0, `ys[0]`), (1, `ys[1]`), … without building the points (a
    /// projection's column, which may be large).
    pub fn from_values(ys: Vec<f64>) -> Result<LookupTable, String> {
        if ys.is_empty() {
            return Err("the lookup table has no points".into());
        }
        if let Some(k) = ys.iter().position(|y| !y.is_finite()) {
            return Err(format!("point {} of the lookup table, ({k}, {}), is not finite", k + 1, ys[k]));
        }
        Ok(LookupTable { xs: Vec::new(), ys, areas: OnceLock::new(), indexed: true })
    }

    /// The table of checked points.
    fn with_points(xs: Vec<f64>, ys: Vec<f64>) -> LookupTable {
        // To the bit, so that `x` need not be kept (a first point at -0 is kept).
        let indexed = xs.iter().enumerate().all(|(k, &x)| x.to_bits() == (k as f64).to_bits());
        let xs = if indexed { Vec::new() } else { xs };
        LookupTable { xs, ys, areas: OnceLock::new(), indexed }
    }

    /// Point `k`'s `x`.
    fn x(&self, k: usize) -> f64 {
        if self.indexed { k as f64 } else { self.xs[k] }
    }

    /// The running areas at the points.
    fn areas(&self) -> &[f64] {
        self.areas.get_or_init(|| {
            let mut areas = Vec::with_capacity(self.ys.len());
            let mut sum = 0.0;
            for k in 0..self.ys.len() {
                if k > 0 {
                    sum += (self.x(k) - self.x(k - 1)) * (self.ys[k - 1] + self.ys[k]) / 2.0;
                }
                areas.push(sum);
            }
            areas
        })
    }

    /// The values of a table whose points are at 0, 1, 2, … (a projection's column, read by position), which
    /// native code reads in place; `None` for other tables.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn indexed_values(&self) -> Option<&[f64]> {
        self.indexed.then_some(&self.ys[..])
    }

    fn last(&self) -> usize {
        self.ys.len() - 1
    }

    /// The index of the last point at or before `x` (`None` before the table); `x` is not NaN.
    fn at_or_before(&self, x: f64) -> Option<usize> {
        if self.indexed {
            // The same answer as the search: no point before 0, else the whole part, at most the last.
            return if x < 0.0 { None } else { Some((x.floor() as usize).min(self.last())) };
        }
        self.xs.partition_point(|&p| p <= x).checked_sub(1)
    }

    /// The slope of the segment from point `j` to `j + 1` (0 if vertical: a jump has no slope to follow).
    fn slope(&self, j: usize) -> f64 {
        let dx = self.x(j + 1) - self.x(j);
        if dx == 0.0 { 0.0 } else { (self.ys[j + 1] - self.ys[j]) / dx }
    }

    /// The table read at `x` in `mode`.
    pub fn read(&self, mode: LookupMode, x: f64) -> f64 {
        if x.is_nan() {
            return f64::NAN;
        }
        let n = self.last();
        match mode {
            LookupMode::Interpolate | LookupMode::Extrapolate => match self.at_or_before(x) {
                None if mode == LookupMode::Extrapolate && n > 0 => self.ys[0] + self.slope(0) * (x - self.x(0)),
                None => self.ys[0],
                Some(j) if j == n => {
                    if mode == LookupMode::Extrapolate && n > 0 && x > self.x(n) {
                        self.ys[n] + self.slope(n - 1) * (x - self.x(n))
                    } else {
                        self.ys[n]
                    }
                }
                Some(j) if x == self.x(j) => self.ys[j],
                Some(j) => self.slope(j) * (x - self.x(j)) + self.ys[j],
            },
            LookupMode::Forward => {
                // The number of points before `x`.
                let k = if !self.indexed {
                    self.xs.partition_point(|&p| p < x)
                } else if x <= 0.0 {
                    0
                } else {
                    (x.ceil() as usize).min(n + 1)
                };
                self.ys[k.min(n)]
            }
            LookupMode::Backward => self.ys[self.at_or_before(x).unwrap_or(0)],
            LookupMode::Invert => match self.invert_segment(x) {
                Some((j, None)) => self.x(j),
                Some((j, Some(k))) => {
                    let dy = self.ys[k] - self.ys[j];
                    self.x(j) + (x - self.ys[j]) * (self.x(k) - self.x(j)) / dy
                }
                None => f64::NAN,
            },
        }
    }

    /// d(read)/dx in `mode` (see the module's notes).
    pub fn slope_at(&self, mode: LookupMode, x: f64) -> f64 {
        if x.is_nan() {
            return f64::NAN;
        }
        let n = self.last();
        match mode {
            LookupMode::Forward | LookupMode::Backward => 0.0,
            _ if n == 0 && mode != LookupMode::Invert => 0.0,
            LookupMode::Interpolate => match self.at_or_before(x) {
                Some(j) if j < n => self.slope(j),
                _ => 0.0,
            },
            LookupMode::Extrapolate => match self.at_or_before(x) {
                None => self.slope(0),
                Some(j) if j == n => self.slope(n - 1),
                Some(j) => self.slope(j),
            },
            LookupMode::Invert => match self.invert_segment(x) {
                Some((j, Some(k))) => (self.x(k) - self.x(j)) / (self.ys[k] - self.ys[j]),
                Some((_, None)) => 0.0,
                None => f64::NAN,
            },
        }
    }

    /// Where the interpolated table first takes the value `y`: `(j, None)` at point `j` itself (a point or
    /// flat segment at `y`), `(j, Some(j + 1))` strictly inside that segment; `None` if never.
    fn invert_segment(&self, y: f64) -> Option<(usize, Option<usize>)> {
        if self.ys[0] == y {
            return Some((0, None));
        }
        for j in 0..self.last() {
            let (a, b) = (self.ys[j], self.ys[j + 1]);
            if b == y {
                // Reached at the segment's end: interpolating there would round, the point is exact.
                return Some((j + 1, None));
            }
            if (a < y && y < b) || (b < y && y < a) {
                return Some((j, Some(j + 1)));
            }
        }
        None
    }

    /// The running area from the first point to `x`, of the `Interpolate` function.
    fn running_area(&self, x: f64) -> f64 {
        let n = self.last();
        match self.at_or_before(x) {
            None => (x - self.x(0)) * self.ys[0],
            Some(j) if j == n => self.areas()[n] + (x - self.x(n)) * self.ys[n],
            Some(j) => {
                let y = self.read(LookupMode::Interpolate, x);
                self.areas()[j] + (x - self.x(j)) * (self.ys[j] + y) / 2.0
            }
        }
    }

    /// The area under the `Interpolate` function from `a` to `b` (Vensim's `LOOKUP AREA`).
    pub fn area(&self, a: f64, b: f64) -> f64 {
        if a.is_nan() || b.is_nan() {
            return f64::NAN;
        }
        self.running_area(b) - self.running_area(a)
    }

    /// A table operation: [`Op::Lookup`] and [`Op::LookupSlope`] at `a`, [`Op::LookupArea`] from `a` to `b`;
    /// NaN for operations that read no table.
    pub fn apply(&self, op: Op, a: f64, b: f64) -> f64 {
        match op {
            Op::Lookup(mode) => self.read(mode, a),
            Op::LookupSlope(mode) => self.slope_at(mode, a),
            Op::LookupArea => self.area(a, b),
            _ => f64::NAN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LookupMode::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn table(points: &[(f64, f64)]) -> LookupTable {
        LookupTable::new(points).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn tables_at_0_1_2_read_as_a_search_would() {
        let fast = table(&[(0.0, 3.0), (1.0, -1.0), (2.0, 7.0), (3.0, 0.5)]);
        assert!(fast.indexed);
        assert!(fast.xs.is_empty(), "the points' x are not kept");
        let slow = LookupTable { indexed: false, xs: vec![0.0, 1.0, 2.0, 3.0], ..fast.clone() };
        let values = LookupTable::from_values(vec![3.0, -1.0, 7.0, 0.5]).unwrap();
        assert_eq!(values, fast);
        for x in [
            -1e300,
            -1.0,
            -0.5,
            -0.0,
            0.0,
            0.3,
            1.0,
            1.999,
            2.0,
            2.5,
            3.0,
            3.5,
            1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            for mode in [Interpolate, Extrapolate, Forward, Backward, Invert] {
                assert_eq!(fast.read(mode, x).to_bits(), slow.read(mode, x).to_bits(), "{mode:?} at {x}");
                assert_eq!(fast.slope_at(mode, x).to_bits(), slow.slope_at(mode, x).to_bits(), "{mode:?} slope at {x}");
            }
            assert_eq!(fast.area(0.2, x).to_bits(), slow.area(0.2, x).to_bits(), "area to {x}");
        }
        assert!(!table(&[(0.0, 1.0), (2.0, 1.0)]).indexed && !table(&[(1.0, 1.0), (2.0, 1.0)]).indexed);
    }

    #[test]
    fn bad_tables_are_refused_with_the_point() {
        assert_eq!(LookupTable::new(&[]).unwrap_err(), "the lookup table has no points");
        let e = LookupTable::new(&[(0.0, 1.0), (1.0, f64::NAN)]).unwrap_err();
        assert_eq!(e, "point 2 of the lookup table, (1, NaN), is not finite");
        let e = LookupTable::new(&[(0.0, 1.0), (2.0, 1.0), (1.0, 0.0)]).unwrap_err();
        assert_eq!(e, "the x values of a lookup table must not decrease, but point 3 has x = 1 after x = 2");
        assert!(LookupTable::new(&[(f64::INFINITY, 0.0)]).is_err());
    }

    /// Vensim's documented examples (LOOKUP FORWARD, BACKWARD, INVERT and the lookup call) and the edges
    /// the module describes.
    #[test]
    fn each_mode_at_its_edges() {
        let look = table(&[(0.0, 1.0), (1.0, 1.0), (2.0, 2.0)]);
        assert_eq!([-1.0, 1.5, 2.5].map(|x| look.read(Backward, x)), [1.0, 1.0, 2.0]);
        assert_eq!([-1.0, 1.5, 2.5].map(|x| look.read(Forward, x)), [1.0, 2.0, 2.0]);
        let look = table(&[(0.0, 0.0), (1.0, 1.0), (3.0, 2.0)]);
        assert!(look.read(Invert, -1.0).is_nan());
        assert_eq!([0.5, 1.5, 0.0, 1.0, 2.0].map(|y| look.read(Invert, y)), [0.5, 2.0, 0.0, 1.0, 3.0]);
        assert!(look.read(Invert, 2.5).is_nan());
        let look = table(&[(0.0, 0.0), (1.0, 2.0), (2.0, 3.0)]);
        assert_eq!(
            [-1.0, 0.0, 0.5, 1.0, 1.7, 2.0, 9.0].map(|x| look.read(Interpolate, x)),
            [0.0, 0.0, 1.0, 2.0, 0.7 * 1.0 + 2.0, 3.0, 3.0]
        );
        assert_eq!([-1.0, 0.5, 3.0].map(|x| look.read(Extrapolate, x)), [-2.0, 1.0, 4.0]);
        assert_eq!([-1.0, 0.5, 1.5, 3.0].map(|x| look.slope_at(Interpolate, x)), [0.0, 2.0, 1.0, 0.0]);
        assert_eq!([-1.0, 0.5, 1.5, 3.0].map(|x| look.slope_at(Extrapolate, x)), [2.0, 2.0, 1.0, 1.0]);

        // A jump at x = 1: continuous from the right; FORWARD takes its first point, BACKWARD its last.
        let jump = table(&[(0.0, 0.0), (1.0, 1.0), (1.0, 5.0), (2.0, 6.0)]);
        assert_eq!([0.5, 1.0, 1.5].map(|x| jump.read(Interpolate, x)), [0.5, 5.0, 5.5]);
        assert_eq!([0.5, 1.0, 1.5].map(|x| jump.read(Forward, x)), [1.0, 1.0, 6.0]);
        assert_eq!([0.5, 1.0, 1.5].map(|x| jump.read(Backward, x)), [0.0, 5.0, 5.0]);
        assert_eq!([1.0, 3.0, 5.0].map(|y| jump.read(Invert, y)), [1.0, 1.0, 1.0]);
        assert_eq!(jump.slope_at(Invert, 3.0), 0.0, "along the jump x does not move");
        // A jump at the end is held when extrapolating.
        let end = table(&[(0.0, 0.0), (1.0, 1.0), (1.0, 3.0)]);
        assert_eq!((end.read(Extrapolate, 2.0), end.slope_at(Extrapolate, 2.0)), (3.0, 0.0));

        // One point: constant, no slope; INVERT finds it only at its own y.
        let one = table(&[(2.0, 7.0)]);
        for mode in [Interpolate, Extrapolate, Forward, Backward] {
            assert_eq!([-5.0, 2.0, 9.0].map(|x| one.read(mode, x)), [7.0; 3], "{mode:?}");
            assert_eq!(one.slope_at(mode, 9.0), 0.0);
        }
        assert_eq!(one.read(Invert, 7.0), 2.0);
        assert!(one.read(Invert, 6.0).is_nan());
        assert_eq!(one.area(0.0, 3.0), 21.0);

        // Non-monotone: INVERT gives the smallest x.
        let hill = table(&[(0.0, 0.0), (1.0, 2.0), (2.0, 0.0)]);
        assert_eq!((hill.read(Invert, 1.0), hill.slope_at(Invert, 1.0)), (0.5, 0.5));
        for mode in [Interpolate, Extrapolate, Forward, Backward, Invert] {
            assert!(hill.read(mode, f64::NAN).is_nan() && hill.slope_at(mode, f64::NAN).is_nan());
        }
        assert_eq!((hill.read(Interpolate, f64::NEG_INFINITY), hill.read(Interpolate, f64::INFINITY)), (0.0, 0.0));
    }

    #[test]
    fn area_integrates_the_held_interpolation() {
        let look = table(&[(0.0, 0.0), (1.0, 2.0), (2.0, 2.0)]);
        assert_eq!(look.area(0.0, 2.0), 3.0);
        assert_eq!(look.area(0.0, 0.5), 0.25);
        assert_eq!(look.area(0.5, 0.0), -0.25);
        // Held ends: nothing below 0 (y = 0 there), 2 per unit beyond 2.
        assert_eq!(look.area(-3.0, 4.0), 7.0);
        assert_eq!(look.area(1.5, 1.5), 0.0);
        assert!(look.area(f64::NAN, 1.0).is_nan());
    }
}
