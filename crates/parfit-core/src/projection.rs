//! Projections: a portfolio of model points projected over a horizon of months under one or more scenarios,
//! in blocks of consecutive points. This is the shape of plugin ABI v3's projection entry point
//! (`parfit-abi`), and what the application layer runs in parallel; a plugin linked directly (the browser
//! build) implements [`Projector`] as a loaded one does through the ABI.
//!
//! A projector *describes* what it returns ([`ProjectionSpec`]): its model points, horizon and scenario ids,
//! and result tables, each with its column names and its [`Scope`]. The host asks for a block of points under
//! a list of scenarios and for a subset of the tables, and receives the tables' values one after the other in
//! one buffer ([`ProjectionSpec::block_len`] gives its length).

use serde::{Deserialize, Serialize};

use crate::{SimError, Workspace};

/// What one row of a result table stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// One row per point of the block and scenario asked for, points outermost (`count × scenarios` rows).
    Point,
    /// One row per month `0..horizon`: the sum over the block's points and scenarios, added point by point
    /// (points outermost, then scenarios), so a host summing blocks in order gets one fixed order of additions.
    Month,
    /// One row per point, scenario and month (`count × scenarios × horizon` rows, months innermost): every
    /// monthly quantity of each point, e.g. for an audit of one point.
    PointMonth,
}

/// One result table of a projection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultTable {
    /// Its name (a host writes a table to `<name>.csv`).
    pub name: String,
    pub scope: Scope,
    pub columns: Vec<String>,
}

/// What a projector is: its portfolio's size, horizon and scenarios, and the tables it returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectionSpec {
    /// The model's name, for messages.
    pub name: String,
    /// Model points, numbered `0..points` in table order.
    pub points: usize,
    /// Months of the projection; [`Scope::Month`] and [`Scope::PointMonth`] tables have this many rows (per point).
    pub horizon: usize,
    /// The scenario ids a block may name; the first is the default scenario.
    pub scenarios: Vec<i64>,
    /// Point-months projected by one pass over every point under one scenario (each point's months until it
    /// ends): a measure of the work, for reports.
    pub point_months: u64,
    /// At most 64 tables (a block names the ones it wants by bit).
    pub tables: Vec<ResultTable>,
    /// The points' ids (their table's first column), in table order, so the host need not read the table again
    /// for them; a projector may leave it empty (the host then reads the ids itself), else it has one per point.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<String>,
}

/// The most tables a projection may describe: a block's request is a 64-bit mask.
pub const MAX_TABLES: usize = 64;

impl ProjectionSpec {
    /// The number of values table `t` holds for a block of `count` points under `scenarios` scenarios; `None`
    /// for a table that does not exist or a size that overflows.
    pub fn table_len(&self, t: usize, count: usize, scenarios: usize) -> Option<usize> {
        let table = self.tables.get(t)?;
        let rows = match table.scope {
            Scope::Point => count.checked_mul(scenarios)?,
            Scope::Month => self.horizon,
            Scope::PointMonth => count.checked_mul(scenarios)?.checked_mul(self.horizon)?,
        };
        rows.checked_mul(table.columns.len())
    }

    /// The length of a block's buffer: the tables of `mask` (bit `t` for table `t`) in table order.
    pub fn block_len(&self, mask: u64, count: usize, scenarios: usize) -> Option<usize> {
        if self.tables.len() < MAX_TABLES && mask >> self.tables.len() != 0 {
            return None;
        }
        (0..self.tables.len())
            .filter(|t| mask >> t & 1 == 1)
            .try_fold(0usize, |n, t| n.checked_add(self.table_len(t, count, scenarios)?))
    }

    /// The index of the table named `name`.
    pub fn table(&self, name: &str) -> Option<usize> {
        self.tables.iter().position(|t| t.name == name)
    }

    /// The problems of a description a host cannot use: too many tables, or a table without columns.
    pub fn check(&self) -> Result<(), String> {
        if self.tables.len() > MAX_TABLES {
            return Err(format!("{}: {} result tables, at most {MAX_TABLES}", self.name, self.tables.len()));
        }
        if let Some(t) = self.tables.iter().find(|t| t.columns.is_empty()) {
            return Err(format!("{}: result table '{}' has no columns", self.name, t.name));
        }
        if !self.ids.is_empty() && self.ids.len() != self.points {
            return Err(format!("{}: {} point ids for {} points", self.name, self.ids.len(), self.points));
        }
        Ok(())
    }
}

/// A projection model: blocks of points in, described tables out. Implementations must be pure functions of
/// their arguments (a block's values never depend on which thread or process asked, nor on other blocks).
pub trait Projector: Send + Sync {
    fn spec(&self) -> &ProjectionSpec;

    /// Per-thread scratch space, passed back to [`Projector::project`].
    fn workspace(&self) -> Workspace;

    /// Project points `first..first + count` under each of `scenarios` (ids of [`ProjectionSpec::scenarios`]),
    /// writing the tables of `mask` into `out`, one after the other in table order, each laid out as its
    /// [`Scope`] says; `out.len()` is [`ProjectionSpec::block_len`]. Bad arguments are a [`SimError::BadInput`].
    fn project(
        &self,
        ws: &mut Workspace,
        first: usize,
        count: usize,
        scenarios: &[i64],
        mask: u64,
        out: &mut [f64],
    ) -> Result<(), SimError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn spec() -> ProjectionSpec {
        let table = |name: &str, scope, n: usize| ResultTable {
            name: name.into(),
            scope,
            columns: (0..n).map(|c| format!("{name}{c}")).collect(),
        };
        ProjectionSpec {
            name: "p".into(),
            points: 10,
            horizon: 12,
            scenarios: vec![1, 2],
            point_months: 120,
            tables: vec![
                table("pv", Scope::Point, 3),
                table("cf", Scope::Month, 2),
                table("audit", Scope::PointMonth, 4),
            ],
            ids: vec![],
        }
    }

    #[test]
    fn a_block_holds_the_asked_tables_in_their_scopes_layout() {
        let s = spec();
        assert_eq!(s.table_len(0, 5, 2), Some(5 * 2 * 3));
        assert_eq!(s.table_len(1, 5, 2), Some(12 * 2));
        assert_eq!(s.table_len(2, 5, 2), Some(5 * 2 * 12 * 4));
        assert_eq!(s.block_len(0b011, 5, 2), Some(30 + 24));
        assert_eq!(s.block_len(0b100, 1, 1), Some(48));
        assert_eq!(s.block_len(0, 5, 2), Some(0));
        assert_eq!(s.block_len(0b1000, 5, 2), None, "a table that is not described");
        assert_eq!(s.block_len(0b100, usize::MAX, 2), None, "an overflowing size");
        assert_eq!(s.table("cf"), Some(1));
        assert!(s.check().is_ok());
        let mut bad = s.clone();
        bad.tables[1].columns.clear();
        assert!(bad.check().unwrap_err().contains("'cf' has no columns"));
    }
}
