//! The model's data, read once and checked: assumption tables (precomputed into the monthly rates the
//! projection indexes directly), named constants, and the model points.

use parfit_core::math;
use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use crate::tables::{TextFile, read};

/// The longest a projection may run, and how far a model point's duration may reach either way: 200 years.
const MAX_MONTHS: i64 = 12 * 200;

/// Which lifelib model the projection follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `savings.CashValue_ME`: account-value products, single or level premiums, optional surrender charges.
    CashValue,
    /// `basiclife.BasicTerm_ME`: level-premium term assurance.
    BasicTerm,
}

/// The named constants of a model, with lifelib's values as defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Constants {
    /// Lapse rate by policy year `y`: `max(lapse_initial − lapse_decrement · y, lapse_floor)`, annual.
    pub lapse_initial: f64,
    pub lapse_decrement: f64,
    pub lapse_floor: f64,
    /// Cost of insurance rate = `coi_multiplier` × monthly mortality rate (CashValue).
    pub coi_multiplier: f64,
    /// Annual maintenance fee on the account value (charged monthly as a twelfth; CashValue).
    pub maint_fee_rate: f64,
    /// Acquisition expense per new policy.
    pub expense_acq: f64,
    /// Annual maintenance expense per policy (charged monthly as a twelfth, inflated).
    pub expense_maint: f64,
    pub inflation_rate: f64,
    /// Commission as a share of premiums: every premium (CashValue), first-year premiums (BasicTerm).
    pub commission_rate: f64,
    /// Drift and volatility of the fund's lognormal monthly returns (CashValue).
    pub fund_mu: f64,
    pub fund_sigma: f64,
}

impl Constants {
    pub fn defaults(kind: Kind) -> Constants {
        let common = Constants {
            lapse_initial: 0.1,
            lapse_decrement: 0.02,
            lapse_floor: 0.02,
            coi_multiplier: 1.1,
            maint_fee_rate: 0.01,
            expense_acq: 5000.0,
            expense_maint: 500.0,
            inflation_rate: 0.01,
            commission_rate: 0.05,
            fund_mu: 0.02,
            fund_sigma: 0.03,
        };
        match kind {
            Kind::CashValue => common,
            Kind::BasicTerm => Constants { expense_acq: 300.0, expense_maint: 60.0, commission_rate: 1.0, ..common },
        }
    }

    /// The constants a kind uses, by name, for listing and overriding.
    pub fn names(kind: Kind) -> &'static [&'static str] {
        match kind {
            Kind::CashValue => &[
                "lapse_initial",
                "lapse_decrement",
                "lapse_floor",
                "coi_multiplier",
                "maint_fee_rate",
                "expense_acq",
                "expense_maint",
                "inflation_rate",
                "commission_rate",
                "fund_mu",
                "fund_sigma",
            ],
            Kind::BasicTerm => &[
                "lapse_initial",
                "lapse_decrement",
                "lapse_floor",
                "expense_acq",
                "expense_maint",
                "inflation_rate",
                "commission_rate",
            ],
        }
    }

    /// Whether `v` is a value constant `name` may take; `Err` words the range. Rates that are probabilities
    /// stay in [0, 1], amounts and multipliers are not negative, and inflation stays above −100 % (its factor
    /// is a power of 1 + rate).
    fn check_range(name: &str, v: f64) -> Result<(), &'static str> {
        let (ok, range) = match name {
            "lapse_initial" | "lapse_floor" | "maint_fee_rate" => ((0.0..=1.0).contains(&v), "between 0 and 1"),
            "inflation_rate" => (v > -1.0, "a finite number greater than -1"),
            "fund_mu" => (true, "a finite number"),
            _ => (v >= 0.0, "a finite number ≥ 0"),
        };
        if v.is_finite() && ok { Ok(()) } else { Err(range) }
    }

    fn slot(&mut self, name: &str) -> Option<&mut f64> {
        Some(match name {
            "lapse_initial" => &mut self.lapse_initial,
            "lapse_decrement" => &mut self.lapse_decrement,
            "lapse_floor" => &mut self.lapse_floor,
            "coi_multiplier" => &mut self.coi_multiplier,
            "maint_fee_rate" => &mut self.maint_fee_rate,
            "expense_acq" => &mut self.expense_acq,
            "expense_maint" => &mut self.expense_maint,
            "inflation_rate" => &mut self.inflation_rate,
            "commission_rate" => &mut self.commission_rate,
            "fund_mu" => &mut self.fund_mu,
            "fund_sigma" => &mut self.fund_sigma,
            _ => return None,
        })
    }

    /// Apply overrides from the configuration, refusing names the kind does not use and non-finite values.
    pub fn apply(&mut self, kind: Kind, overrides: &BTreeMap<String, f64>) -> Result<(), String> {
        for (name, value) in overrides {
            let known = Constants::names(kind);
            if !known.contains(&name.as_str()) {
                return Err(format!("constants: unknown constant '{name}' (this model has: {})", known.join(", ")));
            }
            Constants::check_range(name, *value)
                .map_err(|range| format!("constants: {name} = {value}: must be {range}"))?;
            if let Some(slot) = self.slot(name) {
                *slot = *value;
            }
        }
        Ok(())
    }
}

/// A product of the product spec table (CashValue).
#[derive(Debug, Clone)]
pub struct Product {
    pub id: String,
    /// Single premium at issue (else level premiums over the term).
    pub single_premium: bool,
    /// Column of the surrender-charge table, when the product has surrender charges.
    pub surr_charge: Option<usize>,
    pub load_prem_rate: f64,
    /// Whole life: the term runs to the mortality table's last age.
    pub whole_life: bool,
}

/// One model point, reduced to what the projection needs.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    /// Months in force at time 0 (negative: future new business issued at t = −d0).
    pub d0: i64,
    pub age_at_entry: i64,
    /// Policy term in months (whole life: to the mortality table's last age).
    pub term_months: i64,
    pub count: f64,
    pub sum_assured: f64,
    /// Premium per policy (CashValue: from the table; BasicTerm: sum assured × premium rate, rounded to cents).
    pub premium_pp: f64,
    pub av_pp_init: f64,
    /// Index into the product table (CashValue).
    pub product: u32,
    /// lifelib's `proj_len`: months until and including maturity, `max(term − d0 + 1, 0)`.
    pub proj_len: u32,
}

/// Monthly mortality by attained age × policy year, the last column being ultimate.
#[derive(Debug, Clone)]
pub struct Mortality {
    pub first_age: i64,
    pub ages: usize,
    /// Duration columns 0..cols−1; durations beyond use the last.
    pub cols: usize,
    /// Annual rates, row-major by age.
    pub annual: Vec<f64>,
    /// `1 − (1 − q)^(1/12)`.
    pub monthly: Vec<f64>,
    /// The first age whose rates are all 1 (lifelib's `mort_table_last_age`), else the last age.
    pub last_age: i64,
}

impl Mortality {
    /// Index of (attained age, policy year), or `None` where lifelib finds no rate and uses 0 (negative years
    /// before issue, ages outside the table).
    #[inline]
    pub fn index(&self, age: i64, year: i64) -> Option<usize> {
        let row = age - self.first_age;
        if year < 0 || row < 0 || row >= self.ages as i64 {
            return None;
        }
        Some(row as usize * self.cols + (year as usize).min(self.cols - 1))
    }

    pub fn table_last_age(&self) -> i64 {
        self.first_age + self.ages as i64 - 1
    }
}

/// The largest policy count or amount (sum assured, premium, account value) a model point may hold: their
/// products over a projection stay finite below it.
pub const MAX_AMOUNT: f64 = 1e100;

/// Everything a projection reads: the checked tables precomputed for direct indexing, and the model points.
#[derive(Debug)]
pub struct Portfolio {
    pub kind: Kind,
    pub constants: Constants,
    pub products: Vec<Product>,
    pub mortality: Mortality,
    /// Surrender charge rates: `surr[year.min(surr_years − 1) * surr_cols + column]`.
    pub surr: Vec<f64>,
    pub surr_years: usize,
    pub surr_cols: usize,
    /// Annual and monthly lapse rates by policy year, offset by `lapse_first_year`.
    pub lapse_annual: Vec<f64>,
    pub lapse_monthly: Vec<f64>,
    pub lapse_first_year: i64,
    /// lifelib's `max_proj_len`: the longest `proj_len` of the table, the horizon of every projection.
    pub horizon: usize,
    /// Discount factor and inflation factor for t = 0..horizon.
    pub disc: Vec<f64>,
    pub inflation: Vec<f64>,
    /// Monthly fund returns per scenario, `returns[(scenario − first_scenario) * horizon + t]` (CashValue).
    pub returns: Vec<f64>,
    pub first_scenario: i64,
    pub scenarios: usize,
    pub points: Vec<Point>,
}

/// The tables a configuration provides, by role.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Files {
    pub model_points: Option<TextFile>,
    pub product_spec: Option<TextFile>,
    pub mortality: Option<TextFile>,
    pub surrender_charge: Option<TextFile>,
    pub discount: Option<TextFile>,
    pub scenarios: Option<TextFile>,
    pub premium: Option<TextFile>,
}

fn need<'a>(file: &'a Option<TextFile>, role: &str, kind: Kind) -> Result<&'a TextFile, String> {
    file.as_ref().ok_or_else(|| format!("tables: the {kind:?} model needs the '{role}' table"))
}

fn refuse(file: &Option<TextFile>, role: &str, kind: Kind) -> Result<(), String> {
    match file {
        Some(f) => Err(format!("tables: the {kind:?} model does not use a '{role}' table ({})", f.name)),
        None => Ok(()),
    }
}

impl Portfolio {
    pub fn read(kind: Kind, files: &Files, constants: Constants) -> Result<Portfolio, String> {
        let mortality = read_mortality(need(&files.mortality, "mortality", kind)?)?;
        let (products, surr, surr_years, surr_cols, premium) = match kind {
            Kind::CashValue => {
                refuse(&files.premium, "premium", kind)?;
                let (surr, years, cols, names) =
                    read_surrender(need(&files.surrender_charge, "surrender_charge", kind)?)?;
                let products = read_products(need(&files.product_spec, "product_spec", kind)?, &names)?;
                (products, surr, years, cols, None)
            }
            Kind::BasicTerm => {
                for (f, role) in [
                    (&files.product_spec, "product_spec"),
                    (&files.surrender_charge, "surrender_charge"),
                    (&files.scenarios, "scenarios"),
                ] {
                    refuse(f, role, kind)?;
                }
                (vec![], vec![], 0, 0, Some(read_premiums(need(&files.premium, "premium", kind)?)?))
            }
        };
        let points = read_points(
            kind,
            need(&files.model_points, "model_points", kind)?,
            &products,
            &mortality,
            premium.as_ref(),
        )?;
        let horizon = points.iter().map(|p| p.proj_len as usize).max().unwrap_or(0);
        let disc = read_discount(need(&files.discount, "discount", kind)?, horizon)?;
        let inflation: Vec<f64> =
            (0..horizon).map(|t| math::powf(1.0 + constants.inflation_rate, t as f64 / 12.0)).collect();
        let (returns, first_scenario, scenarios) = match kind {
            Kind::CashValue => read_scenarios(need(&files.scenarios, "scenarios", kind)?, horizon, &constants)?,
            Kind::BasicTerm => (vec![], 1, 1),
        };
        // Lapse rates for every policy year a projection can reach, from the earliest future issue to the end.
        let first_year = points.iter().map(|p| p.d0.div_euclid(12)).min().unwrap_or(0);
        let last_year = points.iter().map(|p| (p.d0 + horizon as i64).div_euclid(12)).max().unwrap_or(0);
        let (mut lapse_annual, mut lapse_monthly) = (vec![], vec![]);
        for year in first_year..=last_year {
            let c = &constants;
            let rate = (c.lapse_initial - c.lapse_decrement * year as f64).max(c.lapse_floor);
            lapse_annual.push(rate);
            lapse_monthly.push(1.0 - math::powf(1.0 - rate, 1.0 / 12.0));
        }
        Ok(Portfolio {
            kind,
            constants,
            products,
            mortality,
            surr,
            surr_years,
            surr_cols,
            lapse_annual,
            lapse_monthly,
            lapse_first_year: first_year,
            horizon,
            disc,
            inflation,
            returns,
            first_scenario,
            scenarios,
            points,
        })
    }

    /// The monthly fund returns of scenario `id`, or `None` if the table has no such scenario.
    pub fn scenario_returns(&self, id: i64) -> Option<&[f64]> {
        if self.kind == Kind::BasicTerm {
            return Some(&[]);
        }
        let k = id - self.first_scenario;
        if k < 0 || k >= self.scenarios as i64 {
            return None;
        }
        let k = k as usize;
        Some(&self.returns[k * self.horizon..(k + 1) * self.horizon])
    }
}

fn read_mortality(file: &TextFile) -> Result<Mortality, String> {
    let mut first_age = 0;
    let mut ages = 0usize;
    let mut annual = vec![];
    let cols = read(
        file,
        |h| {
            // First column: attained age; then one column per policy year 0, 1, …, the last being ultimate.
            for (i, name) in h.names.iter().enumerate().skip(1) {
                if name.parse::<usize>() != Ok(i - 1) {
                    return Err(format!(
                        "{}:1: column {} is '{name}', expected policy year {} (columns after the age are years \
                         0, 1, …, the last being ultimate)",
                        file.name,
                        i + 1,
                        i - 1
                    ));
                }
            }
            match h.names.len() - 1 {
                0 => Err(format!("{}:1: no policy-year columns after the age column", file.name)),
                cols => Ok(cols),
            }
        },
        |&cols, r| {
            let age = r.integer(0)?;
            if ages == 0 {
                first_age = age;
            } else if age != first_age + ages as i64 {
                return Err(r.error(0, format!("ages must go up by one; expected {}", first_age + ages as i64)));
            }
            for c in 1..=cols {
                let q = r.number(c)?;
                if !(0.0..=1.0).contains(&q) {
                    return Err(r.error(c, format!("{q} is not a probability between 0 and 1")));
                }
                annual.push(q);
            }
            ages += 1;
            Ok(())
        },
    )?;
    let monthly = annual.iter().map(|q| 1.0 - math::powf(1.0 - q, 1.0 / 12.0)).collect();
    let last_age = (0..ages).find(|&a| annual[a * cols..(a + 1) * cols].iter().all(|&q| q == 1.0)).unwrap_or(ages - 1)
        as i64
        + first_age;
    Ok(Mortality { first_age, ages, cols, annual, monthly, last_age })
}

/// Surrender charge rates by policy year (rows 0, 1, …; later years use the last row) × charge type.
fn read_surrender(file: &TextFile) -> Result<(Vec<f64>, usize, usize, Vec<String>), String> {
    let mut rates = vec![];
    let mut years = 0usize;
    let names = read(
        file,
        |h| match &h.names[1..] {
            [] => Err(format!("{}:1: no charge-type columns after the duration column", file.name)),
            names => Ok(names.to_vec()),
        },
        |names, r| {
            let year = r.integer(0)?;
            if year != years as i64 {
                return Err(r.error(0, format!("durations must be 0, 1, 2, …; expected {years}")));
            }
            for c in 1..=names.len() {
                rates.push(r.number(c)?);
            }
            years += 1;
            Ok(())
        },
    )?;
    let cols = names.len();
    Ok((rates, years, cols, names))
}

fn read_products(file: &TextFile, surr_names: &[String]) -> Result<Vec<Product>, String> {
    let mut products: Vec<Product> = vec![];
    read(
        file,
        |h| {
            Ok([
                h.column("spec_id")?,
                h.column("premium_type")?,
                h.column("has_surr_charge")?,
                h.column("surr_charge_id")?,
                h.column("load_prem_rate")?,
                h.column("is_wl")?,
            ])
        },
        |&[id, ptype, has_surr, surr_id, load, wl], r| {
            let name = r.text(id).to_string();
            if products.iter().any(|p| p.id == name) {
                return Err(r.error(id, format!("product '{name}' is defined twice")));
            }
            let single_premium = match r.text(ptype) {
                "SINGLE" => true,
                "LEVEL" => false,
                other => return Err(r.error(ptype, format!("'{other}' is neither SINGLE nor LEVEL"))),
            };
            let surr_charge = if r.boolean(has_surr)? {
                let wanted = r.text(surr_id);
                Some(surr_names.iter().position(|n| n == wanted).ok_or_else(|| {
                    r.error(
                        surr_id,
                        format!("'{wanted}' is not a column of the surrender charge table ({})", surr_names.join(", ")),
                    )
                })?)
            } else {
                None
            };
            products.push(Product {
                id: name,
                single_premium,
                surr_charge,
                load_prem_rate: {
                    // The loaded share of each premium: 1 − rate of it is invested.
                    let rate = r.number(load)?;
                    if !(0.0..=1.0).contains(&rate) {
                        return Err(r.error(load, format!("the premium load {rate:?} is outside 0..=1")));
                    }
                    rate
                },
                whole_life: r.boolean(wl)?,
            });
            Ok(())
        },
    )?;
    Ok(products)
}

/// BasicTerm's premium rates by (age at entry, policy term).
fn read_premiums(file: &TextFile) -> Result<BTreeMap<(i64, i64), f64>, String> {
    let mut rates = BTreeMap::new();
    read(
        file,
        |h| Ok([h.column("age_at_entry")?, h.column("policy_term")?, h.column("premium_rate")?]),
        |&[age, term, rate], r| {
            let key = (r.integer(age)?, r.integer(term)?);
            if rates.insert(key, r.number(rate)?).is_some() {
                return Err(r.row_error(format!("a second rate for age {} and term {}", key.0, key.1)));
            }
            Ok(())
        },
    )?;
    Ok(rates)
}

/// The spot curve by whole year (0, 1, …), turned into monthly discount factors for t < horizon exactly as
/// lifelib does: `(1 + ((1 + r[t // 12])^(1/12) − 1))^(−t)`.
fn read_discount(file: &TextFile, horizon: usize) -> Result<Vec<f64>, String> {
    let mut spot = vec![];
    read(
        file,
        |h| Ok(h.names.len().checked_sub(1).filter(|&n| n >= 1).map(|_| 1)),
        |col, r| {
            let Some(col) = *col else { return Err(r.row_error("expected two columns: year, spot rate")) };
            let year = r.integer(0)?;
            if year != spot.len() as i64 {
                return Err(r.error(0, format!("years must be 0, 1, 2, …; expected {}", spot.len())));
            }
            let rate = r.number(col)?;
            // Discount factors are (1 + rate)^(-t): a rate of -1 or below has none.
            if rate <= -1.0 {
                return Err(r.error(col, format!("the spot rate {rate:?} must be greater than -1")));
            }
            spot.push(rate);
            Ok(())
        },
    )?;
    let years_needed = horizon.div_ceil(12);
    if spot.len() < years_needed {
        return Err(format!(
            "{}: the curve has {} years but the model points need {years_needed} ({horizon} months)",
            file.name,
            spot.len()
        ));
    }
    Ok((0..horizon)
        .map(|t| {
            let monthly = math::powf(1.0 + spot[t / 12], 1.0 / 12.0) - 1.0;
            math::powf(1.0 + monthly, -(t as f64))
        })
        .collect())
}

/// Standard normal draws by (scenario, month), turned into monthly fund returns
/// `exp((μ − σ²/2)·dt + σ·√dt·z) − 1` with dt = 1/12, for t < horizon. Scenarios must be numbered
/// consecutively and each must cover months 0..horizon in order.
fn read_scenarios(file: &TextFile, horizon: usize, c: &Constants) -> Result<(Vec<f64>, i64, usize), String> {
    let dt = 1.0 / 12.0;
    let drift = (c.fund_mu - 0.5 * math::powf(c.fund_sigma, 2.0)) * dt;
    let vol = c.fund_sigma * math::powf(dt, 0.5);
    let mut returns = vec![];
    let mut first = None;
    let mut current: Option<(i64, usize)> = None; // (scenario, next month)
    let mut scenarios = 0usize;
    let finish = |current: Option<(i64, usize)>, at: &str| -> Result<(), String> {
        if let Some((id, next)) = current
            && next < horizon
        {
            return Err(format!(
                "{}{at}: scenario {id} ends at month {} but the model points need months 0..{horizon}",
                file.name,
                next as i64 - 1
            ));
        }
        Ok(())
    };
    read(
        file,
        |h| Ok([h.column("scen_id")?, h.column("t")?, h.column("std_norm_rand")?]),
        |&[sc, t, z], r| {
            let (id, month) = (r.integer(sc)?, r.integer(t)?);
            let z = r.number(z)?;
            match current {
                Some((cur, next)) if cur == id => {
                    if month != next as i64 {
                        return Err(r.error(t, format!("expected month {next} of scenario {id}")));
                    }
                    current = Some((id, next + 1));
                }
                _ => {
                    finish(current, &format!(":{}", r.line()))?;
                    let expected = first.map_or(id, |f: i64| f + scenarios as i64);
                    if id != expected {
                        return Err(
                            r.error(sc, format!("scenarios must be numbered consecutively; expected {expected}"))
                        );
                    }
                    if month != 0 {
                        return Err(r.error(t, format!("scenario {id} must start at month 0")));
                    }
                    first.get_or_insert(id);
                    scenarios += 1;
                    current = Some((id, 1));
                }
            }
            if (month as usize) < horizon {
                returns.push(math::exp(drift + vol * z) - 1.0);
            }
            Ok(())
        },
    )?;
    finish(current, "")?;
    Ok((returns, first.unwrap_or(1), scenarios))
}

fn read_points(
    kind: Kind,
    file: &TextFile,
    products: &[Product],
    mortality: &Mortality,
    premiums: Option<&BTreeMap<(i64, i64), f64>>,
) -> Result<Vec<Point>, String> {
    let mut points = vec![];
    // Each policy id (the first column, as the host reads it) with the row and line it was first seen on.
    let mut ids: HashMap<String, (usize, usize)> = HashMap::new();
    let last_age = mortality.table_last_age();
    read(
        file,
        |h| {
            let common = [
                h.column("age_at_entry")?,
                h.column("policy_term")?,
                h.column("policy_count")?,
                h.column("sum_assured")?,
                h.column("duration_mth")?,
            ];
            let extra = match kind {
                Kind::CashValue => Some([h.column("spec_id")?, h.column("premium_pp")?, h.column("av_pp_init")?]),
                Kind::BasicTerm => None,
            };
            Ok((common, extra))
        },
        |&([age, term, count, sa, dur], extra), r| {
            if let Some((row, line)) = ids.insert(r.text(0).to_string(), (r.row(), r.line())) {
                return Err(r.error(0, format!("policy id '{}' is also row {row} (line {line})", r.text(0))));
            }
            let age_at_entry = r.integer(age)?;
            if age_at_entry < mortality.first_age || age_at_entry > last_age {
                return Err(r.error(
                    age,
                    format!(
                        "age {age_at_entry} is outside the mortality table (ages {}..{last_age})",
                        mortality.first_age
                    ),
                ));
            }
            let policy_count = r.number(count)?;
            if policy_count < 0.0 {
                return Err(r.error(count, format!("the policy count {policy_count} is negative")));
            }
            let sum_assured = r.number(sa)?;
            if sum_assured < 0.0 {
                return Err(r.error(sa, format!("the sum assured {sum_assured} is negative")));
            }
            let d0 = r.integer(dur)?;
            if d0.abs() > MAX_MONTHS {
                return Err(r.error(
                    dur,
                    format!("duration_mth {d0} is outside -{MAX_MONTHS}..={MAX_MONTHS} (200 years either way)"),
                ));
            }
            let table_term = r.integer(term)?;
            let (product, whole_life, premium_pp, av_pp_init) = match extra {
                Some([spec, prem, av]) => {
                    let id = r.text(spec);
                    let index = products.iter().position(|p| p.id == id).ok_or_else(|| {
                        let known: Vec<&str> = products.iter().map(|p| p.id.as_str()).collect();
                        r.error(spec, format!("unknown product '{id}' (the product table has {})", known.join(", ")))
                    })?;
                    let premium_pp = r.number(prem)?;
                    if premium_pp < 0.0 {
                        return Err(r.error(prem, format!("the premium {premium_pp} is negative")));
                    }
                    let av_pp_init = r.number(av)?;
                    if av_pp_init < 0.0 {
                        return Err(r.error(av, format!("the initial account value {av_pp_init:?} is negative")));
                    }
                    (index as u32, products[index].whole_life, premium_pp, av_pp_init)
                }
                None => {
                    let rate = premiums.and_then(|t| t.get(&(age_at_entry, table_term))).ok_or_else(|| {
                        r.row_error(format!(
                            "the premium table has no rate for age_at_entry {age_at_entry} and policy_term \
                             {table_term}"
                        ))
                    })?;
                    // numpy.around(x, 2): scale, round half to even, scale back.
                    let premium_pp = (sum_assured * rate * 100.0).round_ties_even() / 100.0;
                    (0, false, premium_pp, 0.0)
                }
            };
            let policy_term = if whole_life { mortality.last_age - age_at_entry } else { table_term };
            if policy_term < 0 {
                return Err(r.error(term, format!("the policy term {policy_term} is negative")));
            }
            if !whole_life && age_at_entry.saturating_add(policy_term) > last_age + 1 {
                return Err(r.error(
                    term,
                    format!(
                        "age {age_at_entry} plus a {policy_term}-year term runs past the mortality table's last \
                         age {last_age}"
                    ),
                ));
            }
            // Counts times amounts times rates, summed over months and points, must stay finite.
            for (col, value) in [(count, policy_count), (sa, sum_assured)]
                .into_iter()
                .chain(extra.map(|[_, prem, av]| [(prem, premium_pp), (av, av_pp_init)]).into_iter().flatten())
            {
                if value > MAX_AMOUNT {
                    return Err(
                        r.error(col, format!("{value:?} is beyond {MAX_AMOUNT:e}, where the projection overflows"))
                    );
                }
            }
            let term_months = 12 * policy_term;
            let proj_len = (term_months - d0 + 1).max(0);
            if proj_len > MAX_MONTHS {
                return Err(r.error(dur, format!("the projection would be {proj_len} months (more than 200 years)")));
            }
            points.push(Point {
                d0,
                age_at_entry,
                term_months,
                count: policy_count,
                sum_assured,
                premium_pp,
                av_pp_init,
                product,
                proj_len: proj_len as u32,
            });
            Ok(())
        },
    )?;
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// A BasicTerm portfolio over `points` (rows after the header) with tiny tables: ages 40–42, one policy year
    /// of mortality, 10-year terms.
    fn basic_term(points: &str, overrides: &[(&str, f64)]) -> Result<Portfolio, String> {
        let file = |name: &str, text: String| Some(TextFile { name: name.into(), text });
        let files = Files {
            model_points: file(
                "mp.csv",
                format!("policy_id,age_at_entry,policy_term,policy_count,sum_assured,duration_mth\n{points}"),
            ),
            mortality: file("mort.csv", "Age,0\n40,0.001\n41,0.002\n42,0.003\n".into()),
            premium: file("prem.csv", "age_at_entry,policy_term,premium_rate\n40,1,0.01\n41,1,0.01\n".into()),
            discount: file("disc.csv", "year,zero_spot\n0,0.01\n1,0.01\n".into()),
            ..Files::default()
        };
        let mut constants = Constants::defaults(Kind::BasicTerm);
        let overrides: BTreeMap<String, f64> = overrides.iter().map(|&(k, v)| (k.to_string(), v)).collect();
        constants.apply(Kind::BasicTerm, &overrides)?;
        Portfolio::read(Kind::BasicTerm, &files, constants)
    }

    #[test]
    fn the_tiny_portfolio_reads() {
        let pf = basic_term("1,40,1,10,1000,0\n2,41,1,5,1000,-3\n", &[]).unwrap();
        assert_eq!((pf.points.len(), pf.horizon), (2, 16));
    }

    #[test]
    fn durations_beyond_200_years_are_refused_at_their_cell() {
        for d in ["9223372036854775807", "1000000000000", "2401", "-2401", "-9000000000000000"] {
            let e = basic_term(&format!("1,40,1,10,1000,{d}\n"), &[]).map(|_| ()).unwrap_err();
            let want = format!("mp.csv:2 (row 1), column 'duration_mth': duration_mth {d} is outside -2400..=2400");
            assert!(e.starts_with(&want), "{e}");
        }
        assert!(basic_term("1,40,1,10,1000,2400\n", &[]).is_ok(), "a matured policy projects nothing");
        let e = basic_term("1,40,9223372036854775807,10,1000,0\n", &[]).map(|_| ()).unwrap_err();
        assert!(e.contains("no rate for age_at_entry 40 and policy_term 9223372036854775807"), "{e}");
    }

    #[test]
    fn duplicate_policy_ids_are_refused_naming_both_rows() {
        let e = basic_term("7,40,1,10,1000,0\n8,40,1,10,1000,0\n\n7,41,1,10,1000,0\n", &[]).map(|_| ()).unwrap_err();
        assert_eq!(e, "mp.csv:5 (row 3), column 'policy_id': policy id '7' is also row 1 (line 2)");
    }

    #[test]
    fn constants_out_of_their_range_are_refused_with_the_value() {
        let e = |name: &str, v: f64| basic_term("1,40,1,10,1000,0\n", &[(name, v)]).map(|_| ()).unwrap_err();
        assert_eq!(e("lapse_floor", -5.0), "constants: lapse_floor = -5: must be between 0 and 1");
        assert_eq!(e("lapse_initial", 1.5), "constants: lapse_initial = 1.5: must be between 0 and 1");
        assert_eq!(e("lapse_decrement", -0.1), "constants: lapse_decrement = -0.1: must be a finite number ≥ 0");
        assert_eq!(e("expense_maint", -1.0), "constants: expense_maint = -1: must be a finite number ≥ 0");
        assert_eq!(
            e("inflation_rate", -1.0),
            "constants: inflation_rate = -1: must be a finite number greater than -1"
        );
        assert_eq!(e("commission_rate", f64::NAN), "constants: commission_rate = NaN: must be a finite number ≥ 0");
        assert!(basic_term("1,40,1,10,1000,0\n", &[("lapse_floor", 0.0), ("inflation_rate", -0.5)]).is_ok());
    }
}
