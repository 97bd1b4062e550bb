//! Dormand–Prince on a model with a mass matrix: `M du/dt = F` is the explicit ODE `du/dt = M⁻¹ F` when `M`
//! is non-singular, so `M` (constant within a solve) is factorised once and every right-hand side solved
//! with it. A singular `M` (a DAE) needs an implicit method and is refused.

use parfit_core::SimError;
use parfit_expr::Program;

use crate::linear::IterationMatrix;
use crate::solver::{SolverStats, System};

/// Whether the program's mass matrix, as started in `regs`, is the identity (or absent): then `F` is
/// `du/dt`, which the sensitivities' jump at an event needs.
pub(crate) fn is_identity(program: &Program, regs: &[f64]) -> bool {
    let m = &program.mass_entries;
    m.is_empty() || (m.len() == program.n_states && m.iter().all(|&(i, j, r)| i == j && regs[r as usize] == 1.0))
}

/// A system whose right-hand side is `M⁻¹ F` of the wrapped one, block by block (the state and, with
/// sensitivities, each parameter's sensitivities, which obey `M s' = J s + ∂F/∂p`).
pub(crate) struct MassSolved<'a, S> {
    sys: &'a mut S,
    lu: IterationMatrix,
    block: usize,
}

impl<'a, S: System> MassSolved<'a, S> {
    /// Factorise the mass matrix of `sys` (entries at `pattern`, blocks of `block`), read after the initial
    /// state was computed.
    pub fn new(sys: &'a mut S, block: usize, pattern: &[(u32, u32)]) -> Result<Self, SimError> {
        let mut mass = vec![0.0; pattern.len()];
        sys.mass(&mut mass);
        let mut lu = IterationMatrix::new(block, [], pattern);
        if !lu.factor(0.0, &[], &mass) {
            return Err(SimError::BadInput(
                "solver = \"dopri5\" cannot solve a DAE: the mass matrix M_i is singular (its algebraic equations \
                 need an implicit method); use \"bdf\" or \"auto\""
                    .into(),
            ));
        }
        Ok(MassSolved { sys, lu, block })
    }
}

impl<S: System> System for MassSolved<'_, S> {
    fn rhs(&mut self, t: f64, y: &[f64], dy: &mut [f64]) {
        self.sys.rhs(t, y, dy);
        for b in dy.chunks_exact_mut(self.block) {
            self.lu.solve(b);
        }
    }

    fn jacobian(&mut self, t: f64, y: &[f64], jac: &mut [f64]) {
        // Dormand–Prince never asks for it; `M⁻¹ J` would be the Jacobian.
        self.sys.jacobian(t, y, jac);
    }

    fn output(&mut self, i: usize, t: f64, y: &[f64]) {
        self.sys.output(i, t, y);
    }

    fn n_stops(&self) -> usize {
        self.sys.n_stops()
    }

    fn stop(&mut self, t: f64, y: &[f64], g: &mut [f64]) {
        self.sys.stop(t, y, g);
    }

    fn stats(&mut self) -> &mut SolverStats {
        self.sys.stats()
    }
}
