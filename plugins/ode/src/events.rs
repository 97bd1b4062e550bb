//! Events: finding the zeros of a model's stop functions on the integrators' dense output, and the jump of
//! the forward sensitivities at a reset.
//!
//! After every accepted step the stop functions are evaluated at its end. A sign change of one of them over
//! the step (or an exact zero at its end) is an event; its time is located on the step's continuous
//! extension (Dormand–Prince's, or BDF's interpolating polynomial) by the Illinois-modified secant method of
//! CVODE's root finding, which diffsol uses too: each iteration brackets all stop functions at once, so of
//! several crossings inside one step the first in time wins, and ties go to the function with the larger
//! relative move across the step's end (the lower index on equal moves). The located time is the right end
//! of the final bracket, where the function has already changed sign, so a restart there does not find the
//! same event again. A stop function that is exactly zero at a (re)start takes the sign it has just after
//! it (CVODE's rule; diffsol's explicit and SDIRK methods lack it and miss the book's bouncing ball's second
//! bounce, a flight up and down within one step from x = 0). Otherwise, as in CVODE and diffsol, two
//! crossings of the *same* function within one step cancel out and are not seen: the step-size control, not
//! the event search, decides how finely a solution is resolved.

use parfit_core::SimError;
use parfit_expr::Program;

use crate::solver::System;

/// A system with events: what the solve does at a zero of a stop function.
pub(crate) trait Hybrid: System {
    /// Set `N` to the stop element `index` that fired at `t` and apply the model's reset to the state `y`
    /// (with sensitivities, their jump too). `false` when the model has no reset: the solve ends there.
    fn reset(&mut self, t: f64, index: usize, y: &mut [f64]) -> Result<bool, SimError>;
    /// There is no solution at `times[i]` (it is after a stop that ended the solve): NaN outputs.
    fn missing(&mut self, i: usize);
}

/// An event found during a step: the solution there is in the integrator's `y`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Event {
    /// When: the located zero.
    pub t: f64,
    /// The stop function that changed sign (DiffSL's index of the stop element, the new `N`).
    pub index: usize,
    /// The first requested time not yet reported (those at or before `t` were, with the state before any
    /// reset).
    pub next: usize,
}

/// The stop functions' values at the start of the current step and scratch for the search, made once per
/// integrator (no allocation per step).
#[derive(Debug, Clone, Default)]
pub(crate) struct RootFinder {
    t0: f64,
    g0: Vec<f64>,
    g1: Vec<f64>,
    gm: Vec<f64>,
}

/// The largest number of secant iterations: the bracket shrinks at least by a tenth in each, and the
/// tolerance is 100 ε relative, so this is never reached in practice; it only bounds a pathological search.
const MAX_ITERATIONS: usize = 200;

impl RootFinder {
    /// Start a search segment at `t`, with `g` filling the stop functions' values at a time.
    pub fn start(&mut self, n_stops: usize, t: f64, mut g: impl FnMut(f64, &mut [f64])) {
        for v in [&mut self.g0, &mut self.g1, &mut self.gm] {
            v.resize(n_stops, 0.0);
        }
        self.t0 = t;
        g(t, &mut self.g0);
    }

    /// After a step accepted from the last start (or step) to `t1`: the first zero of a stop function in
    /// `(t0, t1]`, `g` giving their values on the step's continuous extension (exactly the step's end at
    /// `t1`). Without one, `t1` becomes the start of the next step's search.
    pub fn step(&mut self, t1: f64, mut g: impl FnMut(f64, &mut [f64])) -> Option<(f64, usize)> {
        if self.g0.is_empty() {
            return None;
        }
        g(t1, &mut self.g1);
        let tol = 100.0 * f64::EPSILON * (t1.abs() + (t1 - self.t0).abs());
        if self.g0.contains(&0.0) && self.t0 + tol < t1 {
            // A stop function exactly zero where the segment starts (a reset put the state on it, as the
            // bouncing ball's `x = 0`) takes the sign it has just after the start (CVODE's rule), so that its
            // crossing back within the first step is seen: otherwise that step would start from 0 and end on
            // the other side with no sign change.
            g(self.t0 + tol, &mut self.gm);
            for (g0, &gm) in self.g0.iter_mut().zip(&self.gm) {
                if *g0 == 0.0 {
                    *g0 = gm;
                }
            }
        }
        let Some(mut imax) = crossing(&self.g0, &self.g1) else {
            // No sign change: a function arriving at exactly zero at the end is an event there (one that
            // stays at zero is not: it would fire at every step).
            let zero = self.g0.iter().zip(&self.g1).position(|(&a, &b)| b == 0.0 && a != 0.0);
            std::mem::swap(&mut self.g0, &mut self.g1);
            self.t0 = t1;
            return zero.map(|k| (t1, k));
        };
        let (mut lo, mut hi) = (self.t0, t1);
        // Illinois: the weight of the end that stayed put is halved after two moves of the other end in a row.
        let mut alpha = 1.0;
        let mut moved_lo = [false, false];
        let mut found = None;
        for it in 0..MAX_ITERATIONS {
            if (hi - lo).abs() <= tol {
                break;
            }
            let (g0, g1) = (self.g0[imax], self.g1[imax]);
            let mut tm = hi - (hi - lo) * g1 / (g1 - alpha * g0);
            // Keep the trial point off the bracket's ends, so the bracket always shrinks.
            let margin = 0.5 * tol;
            let frac = if (hi - lo).abs() / tol > 5.0 { 0.1 } else { 0.5 / ((hi - lo).abs() / tol) };
            if !tm.is_finite() || (tm - lo).abs() < margin {
                tm = lo + frac * (hi - lo);
            }
            if (hi - tm).abs() < margin {
                tm = hi - frac * (hi - lo);
            }
            g(tm, &mut self.gm);
            let lower = match crossing(&self.g0, &self.gm) {
                Some(k) => {
                    hi = tm;
                    imax = k;
                    std::mem::swap(&mut self.g1, &mut self.gm);
                    true
                }
                None => match self.g0.iter().zip(&self.gm).position(|(&a, &b)| b == 0.0 && a != 0.0) {
                    Some(k) => {
                        found = Some((tm, k));
                        break;
                    }
                    None => {
                        lo = tm;
                        std::mem::swap(&mut self.g0, &mut self.gm);
                        false
                    }
                },
            };
            moved_lo = [moved_lo[1], !lower];
            if it >= 1 {
                alpha = match moved_lo {
                    [a, b] if a != b => 1.0,
                    [true, true] => 2.0 * alpha,
                    _ => 0.5 * alpha,
                };
            }
        }
        Some(found.unwrap_or((hi, imax)))
    }
}

/// The forward sensitivities' jump at a reset (the chain rule through the event time τ(p)).
///
/// With the state `u⁻` before and `u⁺ = R(u⁻, p, t)` after the reset, `F⁻`, `F⁺` the right-hand side at each
/// (`N` before, and after it became `index`) and `g = 0` the stop function that fired, the event time moves
/// by `dτ/dp = -(∂g/∂u·s⁻ + ∂g/∂p) / (∂g/∂u·F⁻ + ∂g/∂t)`, and
/// `s⁺ = ∂R/∂u·s⁻ + ∂R/∂p + (∂R/∂u·F⁻ + ∂R/∂t - F⁺)·dτ/dp`.
///
/// `y` is the augmented state `[u, s_1, …, s_P]`, updated in place; `N` is still the old index on entry and
/// is `index` on return. `work` is scratch.
pub(crate) fn reset_with_sensitivities(
    program: &Program,
    regs: &mut [f64],
    work: &mut Vec<f64>,
    t: f64,
    index: usize,
    y: &mut [f64],
) -> Result<(), SimError> {
    let (n, np) = (program.n_states, program.n_params);
    let (t_col, p_col) = (n + np, n);
    let (ns, nr) = (program.dstop_entries.len(), program.dreset_entries.len());
    // Scratch: F⁻, F⁺, u⁺, the stop's and the reset's derivative values, the correction direction c.
    work.resize(4 * n + ns + nr, 0.0);
    let (f_minus, rest) = work.split_at_mut(n);
    let (f_plus, rest) = rest.split_at_mut(n);
    let (u_plus, rest) = rest.split_at_mut(n);
    let (dstop, rest) = rest.split_at_mut(ns);
    let (dreset, c) = rest.split_at_mut(nr);
    let (u, s) = y.split_at_mut(n);

    program.rhs(regs, t, u, f_minus);
    program.stop_derivatives(regs, t, u, dstop);
    program.set_model_index(regs, index);
    program.reset_state(regs, t, u, u_plus);
    program.reset_derivatives(regs, t, u, dreset);
    program.rhs(regs, t, u_plus, f_plus);

    // The stop function's rate along the flow, ∂g/∂u·F⁻ + ∂g/∂t.
    let fired = || program.dstop_entries.iter().zip(dstop.iter()).filter(|(e, _)| e.0 as usize == index);
    let mut rate = 0.0;
    for (&(_, col, _), &v) in fired() {
        let col = col as usize;
        rate += if col < n {
            v * f_minus[col]
        } else if col == t_col {
            v
        } else {
            0.0
        };
    }
    if rate.is_nan() || rate.abs() <= 100.0 * f64::EPSILON {
        return Err(SimError::Other(format!(
            "the sensitivities cannot cross the event at t = {t}: stop element {index} is not crossing zero there              (its rate along the solution is {rate:e}), so the event time has no derivative"
        )));
    }
    // c = ∂R/∂u·F⁻ + ∂R/∂t - F⁺.
    for (ci, &fp) in c.iter_mut().zip(f_plus.iter()) {
        *ci = -fp;
    }
    for (&(row, col, _), &v) in program.dreset_entries.iter().zip(dreset.iter()) {
        let col = col as usize;
        if col < n {
            c[row as usize] += v * f_minus[col];
        } else if col == t_col {
            c[row as usize] += v;
        }
    }
    for (p, sp) in s.chunks_exact_mut(n).enumerate() {
        let mut num = 0.0;
        for (&(_, col, _), &v) in fired() {
            let col = col as usize;
            if col < n {
                num += v * sp[col];
            } else if col == p_col + p {
                num += v;
            }
        }
        let dtau = -num / rate;
        // s⁺ = ∂R/∂u·s⁻ + ∂R/∂p_p + dτ·c, built in `f_minus` (no longer needed) before overwriting s⁻.
        let s_new = &mut *f_minus;
        for (v, &ci) in s_new.iter_mut().zip(c.iter()) {
            *v = dtau * ci;
        }
        for (&(row, col, _), &v) in program.dreset_entries.iter().zip(dreset.iter()) {
            let col = col as usize;
            if col < n {
                s_new[row as usize] += v * sp[col];
            } else if col == p_col + p {
                s_new[row as usize] += v;
            }
        }
        sp.copy_from_slice(s_new);
    }
    u.copy_from_slice(u_plus);
    Ok(())
}

/// The stop function with a sign change from `g0` to `g1` whose zero is nearest the end (the largest
/// `|g1 / (g1 - g0)|`, the first on ties), if any changes sign.
fn crossing(g0: &[f64], g1: &[f64]) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (k, (&a, &b)) in g0.iter().zip(g1).enumerate() {
        if a * b < 0.0 {
            let frac = (b / (b - a)).abs();
            if best.is_none_or(|(_, f)| frac > f) {
                best = Some((k, frac));
            }
        }
    }
    best.map(|(k, _)| k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use parfit_core::math;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn find(g: impl Fn(f64, &mut [f64]), n: usize, t0: f64, t1: f64) -> Option<(f64, usize)> {
        let mut r = RootFinder::default();
        r.start(n, t0, &g);
        r.step(t1, &g)
    }

    #[test]
    fn the_first_crossing_in_time_wins() {
        // Zeros at 0.7 (function 0) and 0.4 (function 1) within one step.
        let g = |t: f64, g: &mut [f64]| {
            g[0] = t - 0.7;
            g[1] = (t - 0.4) * math::exp(2.0 + t);
        };
        let (t, k) = find(g, 2, 0.0, 1.0).unwrap();
        assert_eq!(k, 1);
        assert!((t - 0.4).abs() <= 1e-15 && t >= 0.4, "{t}");
    }

    #[test]
    fn a_located_zero_is_on_the_far_side_and_not_found_again() {
        let g = |t: f64, g: &mut [f64]| g[0] = math::sin(t * t - 2.0);
        let (t, _) = find(g, 1, 1.0, 1.5).unwrap();
        let root = 2f64.sqrt();
        assert!((t - root).abs() <= 4.0 * f64::EPSILON * root, "{t}");
        let mut v = [0.0];
        g(t, &mut v);
        assert!(v[0] >= 0.0, "g({t}) = {} has crossed", v[0]);
        // Restarting there finds nothing until the next sign change.
        assert_eq!(find(g, 1, t, 1.6), None);
    }

    #[test]
    fn exact_zeros_count_at_the_end_of_a_step_but_not_at_its_start() {
        let g = |t: f64, g: &mut [f64]| g[0] = t - 2.0;
        assert_eq!(find(g, 1, 1.0, 2.0), Some((2.0, 0)));
        assert_eq!(find(g, 1, 2.0, 3.0), None);
        // No stop functions: never an event.
        assert_eq!(find(|_, _| {}, 0, 0.0, 1.0), None);
    }

    #[test]
    fn a_function_zero_at_the_start_takes_the_sign_it_has_just_after() {
        // The bouncing ball after a bounce: x = t (1 - t) from x = 0, up and down within one step to 1.5.
        let g = |t: f64, g: &mut [f64]| g[0] = t * (1.0 - t);
        let (t, k) = find(g, 1, 0.0, 1.5).unwrap();
        assert!(k == 0 && t >= 1.0 && t - 1.0 <= 1e-13, "{t}");
        // Identically zero: never an event.
        assert_eq!(find(|_, g: &mut [f64]| g[0] = 0.0, 1, 0.0, 1.0), None);
    }

    #[test]
    fn a_zero_hit_exactly_inside_the_step_is_returned_as_is() {
        let g = |t: f64, g: &mut [f64]| {
            g[0] = if t < 0.25 {
                -1.0
            } else if t > 0.25 {
                1.0
            } else {
                0.0
            }
        };
        let (t, _) = find(g, 1, 0.0, 1.0).unwrap();
        assert!((t - 0.25).abs() < 1e-14, "{t}");
    }
}
