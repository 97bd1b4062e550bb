//! The kinds `cashvalue` and `basicterm`: the bundled model files over tables given by role, with the named
//! constants checked against their ranges as before the models were files.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::model::{ModelConfig, ModelProjector, TextFile};

/// Which bundled lifelib model a kind is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `savings.CashValue_ME`: account-value products, single or level premiums, optional surrender charges.
    CashValue,
    /// `basiclife.BasicTerm_ME`: level-premium term assurance.
    BasicTerm,
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

/// A kind's projection configuration (JSON): tables by role and overrides of the named constants.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectionConfig {
    pub tables: Files,
    #[serde(default)]
    pub constants: BTreeMap<String, f64>,
}

pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::CashValue => "cashvalue",
        Kind::BasicTerm => "basicterm",
    }
}

pub fn parse_kind(kind: &str) -> Result<Kind, String> {
    match kind {
        "cashvalue" => Ok(Kind::CashValue),
        "basicterm" => Ok(Kind::BasicTerm),
        other => Err(format!("the actuarial plugin has no model kind '{other}' (cashvalue, basicterm, projection)")),
    }
}

/// The named constants a kind takes (the model's parameters but `mort_table_last_age`, which comes from the
/// mortality table).
fn constant_names(kind: Kind) -> &'static [&'static str] {
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

/// Refuse constants a kind does not take and values outside their range: rates that are probabilities stay in
/// [0, 1], amounts and multipliers are not negative, inflation stays above −100 %.
fn check_constants(kind: Kind, constants: &BTreeMap<String, f64>) -> Result<(), String> {
    for (name, &v) in constants {
        let known = constant_names(kind);
        if !known.contains(&name.as_str()) {
            return Err(format!("constants: unknown constant '{name}' (this model has: {})", known.join(", ")));
        }
        let (ok, range) = match name.as_str() {
            "lapse_initial" | "lapse_floor" | "maint_fee_rate" => ((0.0..=1.0).contains(&v), "between 0 and 1"),
            "inflation_rate" => (v > -1.0, "a finite number greater than -1"),
            "fund_mu" => (true, "a finite number"),
            _ => (v >= 0.0, "a finite number ≥ 0"),
        };
        if !(v.is_finite() && ok) {
            return Err(format!("constants: {name} = {v}: must be {range}"));
        }
    }
    Ok(())
}

/// The bundled model files: the kinds `cashvalue` and `basicterm` are these models over tables given by role.
const CASHVALUE_ME: &str = include_str!("../models/cashvalue_me.prj");
const BASICTERM_ME: &str = include_str!("../models/basicterm_me.prj");

/// A kind's projection as its bundled model file: the tables by role renamed to the names the model declares,
/// the constants checked against their ranges, and (CashValue) the mortality table's last age, lifelib's
/// `mort_table_last_age`, taken from the table.
pub fn bundled_projection(kind: Kind, config: ProjectionConfig) -> Result<ModelProjector, String> {
    let ProjectionConfig { tables: files, constants } = config;
    check_constants(kind, &constants)?;
    let (file, text, roles): (&str, &str, &[(&str, &str)]) = match kind {
        Kind::CashValue => (
            "cashvalue_me.prj",
            CASHVALUE_ME,
            &[
                ("product_spec", "product"),
                ("mortality", "mort"),
                ("surrender_charge", "surr_charge_table"),
                ("discount", "disc_rate_ann"),
                ("scenarios", "std_norm_rand"),
            ],
        ),
        Kind::BasicTerm => (
            "basicterm_me.prj",
            BASICTERM_ME,
            &[("premium", "premium_table"), ("mortality", "mort"), ("discount", "disc_rate_ann")],
        ),
    };
    let given = [
        ("model_points", files.model_points),
        ("product_spec", files.product_spec),
        ("mortality", files.mortality),
        ("surrender_charge", files.surrender_charge),
        ("discount", files.discount),
        ("scenarios", files.scenarios),
        ("premium", files.premium),
    ];
    let mut tables = BTreeMap::new();
    for (role, f) in given {
        let name =
            if role == "model_points" { Some("model_points") } else { roles.iter().find(|r| r.0 == role).map(|r| r.1) };
        match (name, f) {
            (Some(name), Some(f)) => {
                tables.insert(name.to_string(), f);
            }
            (Some(_), None) => return Err(format!("tables: the {kind:?} model needs the '{role}' table")),
            (None, Some(f)) => {
                return Err(format!("tables: the {kind:?} model does not use a '{role}' table ({})", f.name));
            }
            (None, None) => {}
        }
    }
    let mut params: BTreeMap<String, f64> = constants;
    if kind == Kind::CashValue
        && let Some(mort) = tables.get("mort")
    {
        params.insert("mort_table_last_age".into(), mortality_last_age(text, mort)?);
    }
    let model = TextFile { name: file.into(), text: text.into(), ..TextFile::default() };
    Ok(ModelProjector::new(ModelConfig { model, tables, constants: params })?.rename(kind_name(kind)))
}

/// lifelib's `mort_table_last_age`: the first age whose rates are all 1, else the table's last age.
fn mortality_last_age(model: &str, mort: &TextFile) -> Result<f64, String> {
    use parfit_expr::projection::{ColumnData, Key, read_table, table_declarations};
    let decls = table_declarations("model", model)?;
    let decl = decls.iter().find(|d| d.name == "mort").ok_or("the bundled model declares no 'mort' table")?;
    let table = read_table(decl, &mort.name, &mort.text)?;
    let (Some((_, Key::Ints { values: ages, .. })), Some((_, ColumnData::Numbers(rates)))) =
        (table.keys.first(), table.columns.first())
    else {
        return Err(format!("{}: the mortality table is not ages by policy years", mort.name));
    };
    let cols = rates.len() / ages.len().max(1);
    let all_one = |a: usize| rates.get(a * cols..(a + 1) * cols).is_some_and(|r| r.iter().all(|&q| q == 1.0));
    let last = (0..ages.len()).find(|&a| all_one(a)).or(ages.len().checked_sub(1));
    last.and_then(|a| ages.get(a)).map(|&a| a as f64).ok_or_else(|| format!("{}: no ages", mort.name))
}
