//! A third-party parfit projection plugin: a portfolio of level-premium endowment policies, projected monthly
//! through plugin ABI v3's projection entry point.
//!
//! Each model point is `policy_count` policies on lives aged `age` (whole years) at issue, for `term_years`,
//! paying `sum_assured` at the end of the month of death within the term, or at the end of the term to the
//! survivors. Premiums are level, monthly in advance while in force: the net premium by the equivalence
//! principle (present value of premiums = present value of benefits at issue), times `1 + loading`. Mortality
//! is an annual `q_x` table (columns `age`, `qx`), spread over the months of a year of age as a constant force:
//! `q_mth = 1 − (1 − q_x)^(1/12)`. Interest is a constant annual effective rate. There is one scenario, id 1.
//!
//! The plugin describes three result tables: `pv` (per point: present values at issue), `cashflows` (per month,
//! summed over the asked points) and `audit` (per point and month: every quantity of the monthly loop).

use std::collections::BTreeMap;

use parfit_abi::core::projection::{ProjectionSpec, Projector, ResultTable, Scope};
use parfit_abi::core::{SimError, Workspace};
use parfit_abi::{Entry, KindInfo, Plugin, PluginInfo};

/// One model point.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub age: usize,
    pub term_months: usize,
    pub sum_assured: f64,
    pub policy_count: f64,
}

/// The portfolio and its assumptions, read and checked.
#[derive(Debug)]
pub struct Endowment {
    points: Vec<Point>,
    /// Annual mortality by age, from `first_age`.
    qx: Vec<f64>,
    first_age: usize,
    interest: f64,
    loading: f64,
    spec: ProjectionSpec,
}

const PV_COLUMNS: [&str; 4] = ["pv_premiums", "pv_death_benefits", "pv_maturity_benefits", "pv_net_cashflow"];
const CF_COLUMNS: [&str; 6] =
    ["premiums", "death_benefits", "maturity_benefits", "net_cashflow", "pols_if", "pols_death"];
const AUDIT_COLUMNS: [&str; 9] = [
    "age",
    "pols_if",
    "q_mth",
    "pols_death",
    "pols_maturity",
    "premium_pp",
    "premiums",
    "death_benefits",
    "maturity_benefits",
];
const PV: usize = 0;
const CASHFLOWS: usize = 1;

/// A CSV table as rows of numbers, with its header; errors name the file, line and column.
fn read_table(name: &str, text: &str, columns: &[&str]) -> Result<Vec<Vec<f64>>, String> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or_else(|| format!("{name}: the table is empty"))?;
    let header: Vec<&str> = header.split(',').map(str::trim).collect();
    let at: Vec<usize> = columns
        .iter()
        .map(|c| header.iter().position(|h| h == c).ok_or_else(|| format!("{name}:1: no column '{c}'")))
        .collect::<Result<_, _>>()?;
    lines
        .map(|(i, line)| {
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            at.iter()
                .zip(columns)
                .map(|(&j, c)| {
                    let cell = cells.get(j).copied().unwrap_or("");
                    cell.parse::<f64>()
                        .ok()
                        .filter(|v| v.is_finite())
                        .ok_or_else(|| format!("{name}:{}: column '{c}': '{cell}' is not a finite number", i + 1))
                })
                .collect()
        })
        .collect()
}

/// A table's text from the host's configuration (`{"name": file name, "text": CSV text}`).
fn table<'a>(tables: &'a serde_json::Value, role: &str) -> Result<(&'a str, &'a str), String> {
    let t = tables.get(role).ok_or_else(|| format!("the endowment projection needs a '{role}' table"))?;
    match (t.get("name").and_then(|v| v.as_str()), t.get("text").and_then(|v| v.as_str())) {
        (Some(name), Some(text)) => Ok((name, text)),
        _ => Err(format!("table '{role}': expected {{\"name\": …, \"text\": …}}")),
    }
}

impl Endowment {
    /// Read the host's configuration: `{"tables": {"model_points": …, "mortality": …}, "constants": {…}}`.
    pub fn from_config(config_json: &str) -> Result<Endowment, String> {
        let config: serde_json::Value =
            serde_json::from_str(config_json).map_err(|e| format!("endowment configuration: {e}"))?;
        let tables = config.get("tables").ok_or("endowment configuration: no tables")?;
        if let Some(role) =
            tables.as_object().and_then(|t| t.keys().find(|k| !["model_points", "mortality"].contains(&k.as_str())))
        {
            return Err(format!("the endowment projection has no table role '{role}' (model_points, mortality)"));
        }
        let mut constants = BTreeMap::from([("interest", 0.03), ("loading", 0.05)]);
        for (name, value) in config.get("constants").and_then(|c| c.as_object()).into_iter().flatten() {
            let slot = constants
                .get_mut(name.as_str())
                .ok_or_else(|| format!("the endowment projection has no constant '{name}' (interest, loading)"))?;
            *slot =
                value.as_f64().filter(|v| v.is_finite()).ok_or_else(|| format!("constant '{name}': not a number"))?;
        }
        let (interest, loading) = (constants["interest"], constants["loading"]);
        if interest <= -1.0 || loading < 0.0 {
            return Err(format!(
                "constants: interest must be above -1 and loading at least 0 (got {interest}, {loading})"
            ));
        }

        let (name, text) = table(tables, "mortality")?;
        let rows = read_table(name, text, &["age", "qx"])?;
        let first_age = rows.first().map(|r| r[0]).ok_or_else(|| format!("{name}: no ages"))?;
        let mut qx = Vec::with_capacity(rows.len());
        for (i, r) in rows.iter().enumerate() {
            if r[0] != first_age + i as f64 || !(0.0..=1.0).contains(&r[1]) {
                return Err(format!("{name}:{}: ages must run up by one from the first, and qx lie in 0..=1", i + 2));
            }
            qx.push(r[1]);
        }
        if !(0.0..=200.0).contains(&first_age) || first_age.fract() != 0.0 {
            return Err(format!("{name}:2: the first age must be a whole number of years in 0..=200"));
        }
        let first_age = first_age as usize;

        let (name, text) = table(tables, "model_points")?;
        let columns = ["age", "term_years", "sum_assured", "policy_count"];
        let mut points = Vec::new();
        for (i, r) in read_table(name, text, &columns)?.into_iter().enumerate() {
            let [age, term, sum_assured, policy_count] = r[..] else {
                return Err(format!("{name}:{}: expected the columns {}", i + 2, columns.join(", ")));
            };
            let whole = |v: f64| v >= 0.0 && v.fract() == 0.0;
            let last_age = first_age + qx.len();
            if !(whole(age) && whole(term) && term >= 1.0 && age >= first_age as f64 && age + term <= last_age as f64) {
                return Err(format!(
                    "{name}:{}: age {age} and term {term} must be whole years within the mortality table's ages \
                     {first_age}..{last_age}",
                    i + 2
                ));
            }
            if !(sum_assured >= 0.0 && policy_count >= 0.0) {
                return Err(format!("{name}:{}: sum_assured and policy_count must not be negative", i + 2));
            }
            points.push(Point { age: age as usize, term_months: term as usize * 12, sum_assured, policy_count });
        }
        let horizon = points.iter().map(|p| p.term_months).max().unwrap_or(0);
        let result = |name: &str, scope, columns: &[&str]| ResultTable {
            name: name.into(),
            scope,
            columns: columns.iter().map(|c| c.to_string()).collect(),
        };
        let spec = ProjectionSpec {
            name: "endowment".into(),
            points: points.len(),
            horizon,
            scenarios: vec![1],
            point_months: points.iter().map(|p| p.term_months as u64).sum(),
            tables: vec![
                result("pv", Scope::Point, &PV_COLUMNS),
                result("cashflows", Scope::Month, &CF_COLUMNS),
                result("audit", Scope::PointMonth, &AUDIT_COLUMNS),
            ],
            // The host reads the ids from the table itself when a projection does not give them.
            ids: Vec::new(),
        };
        Ok(Endowment { points, qx, first_age, interest, loading, spec })
    }

    /// Monthly mortality in month `t` of a point's term.
    fn q_mth(&self, p: &Point, t: usize) -> f64 {
        // In the table: `from_config` checked that every point's term ends within its ages.
        let q = self.qx.get(p.age + t / 12 - self.first_age).copied().unwrap_or(1.0);
        1.0 - (1.0 - q).powf(1.0 / 12.0)
    }

    /// The level monthly premium per policy: net by the equivalence principle, then loaded.
    pub fn premium(&self, p: &Point) -> f64 {
        let v = (1.0 + self.interest).powf(-1.0 / 12.0);
        let (mut survival, mut discount, mut annuity, mut benefits) = (1.0, 1.0, 0.0, 0.0);
        for t in 0..p.term_months {
            let q = self.q_mth(p, t);
            annuity += discount * survival;
            benefits += discount * v * survival * q * p.sum_assured;
            survival *= 1.0 - q;
            discount *= v;
        }
        benefits += discount * survival * p.sum_assured;
        if annuity > 0.0 { (1.0 + self.loading) * benefits / annuity } else { 0.0 }
    }

    /// Run point `p`'s monthly loop, calling `month(t, [audit columns])` for each month of its term.
    fn project_point(&self, p: &Point, mut month: impl FnMut(usize, &[f64; 9])) {
        let premium = self.premium(p);
        let mut pols_if = p.policy_count;
        for t in 0..p.term_months {
            let q = self.q_mth(p, t);
            let deaths = pols_if * q;
            let maturity = if t + 1 == p.term_months { pols_if - deaths } else { 0.0 };
            let age = (p.age + t / 12) as f64;
            month(
                t,
                &[
                    age,
                    pols_if,
                    q,
                    deaths,
                    maturity,
                    premium,
                    premium * pols_if,
                    deaths * p.sum_assured,
                    maturity * p.sum_assured,
                ],
            );
            pols_if -= deaths + maturity;
        }
    }
}

impl Projector for Endowment {
    fn spec(&self) -> &ProjectionSpec {
        &self.spec
    }

    fn workspace(&self) -> Workspace {
        Box::new(())
    }

    fn project(
        &self,
        _ws: &mut Workspace,
        first: usize,
        count: usize,
        scenarios: &[i64],
        mask: u64,
        out: &mut [f64],
    ) -> Result<(), SimError> {
        let points = first.checked_add(count).and_then(|end| self.points.get(first..end)).ok_or_else(|| {
            SimError::BadInput(format!("points {first}..{first}+{count} beyond {}", self.points.len()))
        })?;
        if let Some(s) = scenarios.iter().find(|&&s| s != 1) {
            return Err(SimError::BadInput(format!("scenario {s}: the endowment projection has one scenario, 1")));
        }
        let spec = &self.spec;
        let n_scen = scenarios.len();
        let len = |t: usize| if mask >> t & 1 == 1 { spec.table_len(t, count, n_scen).unwrap_or(0) } else { 0 };
        if spec.block_len(mask, count, n_scen) != Some(out.len()) {
            return Err(SimError::BadInput(format!(
                "mask {mask:#x} or the output length {} is not a block's",
                out.len()
            )));
        }
        let (pv, rest) = out.split_at_mut(len(PV));
        // The audit table (2) is what remains.
        let (cashflows, audit) = rest.split_at_mut(len(CASHFLOWS));
        let (horizon, w_pv, w_cf, w_audit) = (spec.horizon, PV_COLUMNS.len(), CF_COLUMNS.len(), AUDIT_COLUMNS.len());
        let v = (1.0 + self.interest).powf(-1.0 / 12.0);
        for (j, p) in points.iter().enumerate() {
            for k in 0..n_scen {
                let case = j * n_scen + k;
                let mut sums = [0.0; 3];
                let mut discount = 1.0;
                if !audit.is_empty() {
                    audit[case * horizon * w_audit..(case + 1) * horizon * w_audit].fill(0.0);
                }
                self.project_point(p, |t, m| {
                    let [_, pols_if, _, deaths, _, _, premiums, death_benefits, maturity_benefits] = *m;
                    // Premiums in advance; benefits at the end of the month.
                    sums[0] += discount * premiums;
                    sums[1] += discount * v * death_benefits;
                    sums[2] += discount * v * maturity_benefits;
                    discount *= v;
                    if !cashflows.is_empty() {
                        let net = premiums - death_benefits - maturity_benefits;
                        let row = [premiums, death_benefits, maturity_benefits, net, pols_if, deaths];
                        cashflows[t * w_cf..(t + 1) * w_cf].iter_mut().zip(row).for_each(|(a, b)| *a += b);
                    }
                    if !audit.is_empty() {
                        let at = (case * horizon + t) * w_audit;
                        audit[at..at + w_audit].copy_from_slice(m);
                    }
                });
                if !pv.is_empty() {
                    let [premiums, deaths, maturities] = sums;
                    pv[case * w_pv..(case + 1) * w_pv].copy_from_slice(&[
                        premiums,
                        deaths,
                        maturities,
                        premiums - deaths - maturities,
                    ]);
                }
            }
        }
        Ok(())
    }
}

/// The plugin as parfit loads it.
pub struct EndowmentPlugin;

impl Plugin for EndowmentPlugin {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "endowment".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kinds: vec![KindInfo {
                kind: "endowment".into(),
                extensions: vec![],
                description: "level-premium endowment portfolio, projected monthly (tables: model_points, \
                              mortality; constants: interest, loading)"
                    .into(),
                entry: Entry::Projection,
            }],
        }
    }

    fn create(kind: &str, _config_json: &str) -> Result<Box<dyn parfit_abi::core::Model>, String> {
        Err(format!("'{kind}' is a projection: configure it with a [projection] table"))
    }

    fn create_projection(kind: &str, config_json: &str) -> Result<Box<dyn Projector>, String> {
        if kind != "endowment" {
            return Err(format!("the endowment plugin has no kind '{kind}' (endowment)"));
        }
        Ok(Box::new(Endowment::from_config(config_json)?))
    }
}

parfit_abi::export_plugin!(EndowmentPlugin);
