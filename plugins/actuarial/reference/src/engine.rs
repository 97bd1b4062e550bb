//! The monthly projection of one model point, written from lifelib's formulas (`savings.CashValue_ME`,
//! `basiclife.BasicTerm_ME`) with the same operations in the same order, so the results agree with lifelib's to
//! the last bits (up to the order of its BLAS present-value sums).
//!
//! A projection is one loop over months with a handful of state variables (policies in force, account value
//! per policy); every assumption is a precomputed table indexed directly, so a month costs a few dozen
//! floating-point operations and allocates nothing. What is done with each month is up to a [`Sink`]:
//! present values, monthly cash-flow rows, or every intermediate quantity for an audit.

use crate::data::{Kind, Point, Portfolio};

/// Every quantity of one month of one model point, named as lifelib names them (per policy: `_pp`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Month {
    pub t: f64,
    pub duration_mth: f64,
    pub duration: f64,
    pub age: f64,
    pub pols_if_bef_mat: f64,
    pub pols_maturity: f64,
    pub pols_if_bef_nb: f64,
    pub pols_new_biz: f64,
    pub pols_if_bef_decr: f64,
    pub mort_rate: f64,
    pub mort_rate_mth: f64,
    pub pols_death: f64,
    pub lapse_rate: f64,
    pub pols_lapse: f64,
    pub premium_pp: f64,
    pub prem_to_av_pp: f64,
    pub av_pp_bef_prem: f64,
    pub av_pp_bef_fee: f64,
    pub maint_fee_pp: f64,
    pub net_amt_at_risk: f64,
    pub coi_rate: f64,
    pub coi_pp: f64,
    pub av_pp_bef_inv: f64,
    pub inv_return_mth: f64,
    pub inv_income_pp: f64,
    pub av_pp_mid_mth: f64,
    pub av_bef_mat: f64,
    pub av_bef_fee: f64,
    pub premiums: f64,
    pub prem_to_av: f64,
    pub maint_fee: f64,
    pub coi: f64,
    pub inv_income: f64,
    pub claim_pp_death: f64,
    pub claims_death: f64,
    pub claims_from_av_lapse: f64,
    pub surr_charge_rate: f64,
    pub surr_charge: f64,
    pub claims_lapse: f64,
    pub claims_maturity: f64,
    pub claims_total: f64,
    pub inflation_factor: f64,
    pub expenses: f64,
    pub commissions: f64,
    pub av_change: f64,
    pub net_cf: f64,
    pub margin_expense: f64,
    pub margin_mortality: f64,
    /// The discount factor of month t.
    pub d: f64,
}

/// The audit columns both kinds share (t, age, policy counts and decrement rates), then each kind's own.
const DECREMENT_COLUMNS: [&str; 14] = [
    "t",
    "duration_mth",
    "duration",
    "age",
    "pols_if_bef_mat",
    "pols_maturity",
    "pols_if_bef_nb",
    "pols_new_biz",
    "pols_if_bef_decr",
    "mort_rate",
    "mort_rate_mth",
    "pols_death",
    "lapse_rate",
    "pols_lapse",
];
const CASH_VALUE_COLUMNS: [&str; 35] = [
    "premium_pp",
    "prem_to_av_pp",
    "av_pp_bef_prem",
    "av_pp_bef_fee",
    "maint_fee_pp",
    "net_amt_at_risk",
    "coi_rate",
    "coi_pp",
    "av_pp_bef_inv",
    "inv_return_mth",
    "inv_income_pp",
    "av_pp_mid_mth",
    "av_bef_mat",
    "av_bef_fee",
    "premiums",
    "prem_to_av",
    "maint_fee",
    "coi",
    "inv_income",
    "claim_pp_death",
    "claims_death",
    "claims_from_av_lapse",
    "surr_charge_rate",
    "surr_charge",
    "claims_lapse",
    "claims_maturity",
    "claims_total",
    "inflation_factor",
    "expenses",
    "commissions",
    "av_change",
    "net_cf",
    "margin_expense",
    "margin_mortality",
    "disc_factor",
];
const BASIC_TERM_COLUMNS: [&str; 8] =
    ["premium_pp", "premiums", "claims", "inflation_factor", "expenses", "commissions", "net_cf", "disc_factor"];

/// The audit columns of each kind, in the order lifelib's quantities are listed (t first).
pub fn audit_columns(kind: Kind) -> Vec<&'static str> {
    let own: &[&str] = match kind {
        Kind::CashValue => &CASH_VALUE_COLUMNS,
        Kind::BasicTerm => &BASIC_TERM_COLUMNS,
    };
    DECREMENT_COLUMNS.iter().chain(own).copied().collect()
}

impl Month {
    /// Write this month's audit columns (see [`audit_columns`]) into `row`.
    pub fn audit(&self, kind: Kind, row: &mut [f64]) {
        let m = self;
        let (head, tail) = row.split_at_mut(DECREMENT_COLUMNS.len());
        head.copy_from_slice(&[
            m.t,
            m.duration_mth,
            m.duration,
            m.age,
            m.pols_if_bef_mat,
            m.pols_maturity,
            m.pols_if_bef_nb,
            m.pols_new_biz,
            m.pols_if_bef_decr,
            m.mort_rate,
            m.mort_rate_mth,
            m.pols_death,
            m.lapse_rate,
            m.pols_lapse,
        ]);
        match kind {
            Kind::CashValue => tail.copy_from_slice(&[
                m.premium_pp,
                m.prem_to_av_pp,
                m.av_pp_bef_prem,
                m.av_pp_bef_fee,
                m.maint_fee_pp,
                m.net_amt_at_risk,
                m.coi_rate,
                m.coi_pp,
                m.av_pp_bef_inv,
                m.inv_return_mth,
                m.inv_income_pp,
                m.av_pp_mid_mth,
                m.av_bef_mat,
                m.av_bef_fee,
                m.premiums,
                m.prem_to_av,
                m.maint_fee,
                m.coi,
                m.inv_income,
                m.claim_pp_death,
                m.claims_death,
                m.claims_from_av_lapse,
                m.surr_charge_rate,
                m.surr_charge,
                m.claims_lapse,
                m.claims_maturity,
                m.claims_total,
                m.inflation_factor,
                m.expenses,
                m.commissions,
                m.av_change,
                m.net_cf,
                m.margin_expense,
                m.margin_mortality,
                m.d,
            ]),
            Kind::BasicTerm => tail.copy_from_slice(&[
                m.premium_pp,
                m.premiums,
                m.claims_total,
                m.inflation_factor,
                m.expenses,
                m.commissions,
                m.net_cf,
                m.d,
            ]),
        }
    }
}

/// What a projection does with each month.
pub trait Sink {
    fn month(&mut self, t: usize, m: &Month);
}

/// Months to project for present values and portfolio cash flows. After maturity every cash flow and policy
/// count is exactly zero, so a point stops at its `proj_len`. A point already past its maturity never matures
/// (lifelib matures policies only at `duration_mth == term`), so it runs to the portfolio's horizon, as in
/// lifelib.
pub fn run_length(pf: &Portfolio, p: &Point) -> usize {
    if p.d0 <= p.term_months { p.proj_len as usize } else { pf.horizon }
}

/// Project point `p` for `months` months (at most the horizon) under the given monthly fund returns.
#[inline]
pub fn project<S: Sink>(pf: &Portfolio, p: &Point, returns: &[f64], months: usize, sink: &mut S) {
    match pf.kind {
        Kind::CashValue => cash_value(pf, p, returns, months, sink),
        Kind::BasicTerm => basic_term(pf, p, months, sink),
    }
}

/// Policies in force through month t: lifelib's `pols_if_at` timings and decrements.
#[derive(Clone, Copy)]
struct Decrements {
    bef_mat: f64,
    maturity: f64,
    bef_nb: f64,
    new_biz: f64,
    bef_decr: f64,
    death: f64,
    lapse: f64,
    /// `pols_if_at(t + 1, "BEF_MAT")`.
    next_bef_mat: f64,
}

#[inline(always)]
fn decrements(p: &Point, bef_mat: f64, dm: i64, q: f64, w: f64) -> Decrements {
    let maturity = if dm == p.term_months { bef_mat } else { 0.0 };
    let bef_nb = bef_mat - maturity;
    let new_biz = if dm == 0 { p.count } else { 0.0 };
    let bef_decr = bef_nb + new_biz;
    let death = bef_decr * q;
    let lapse = (bef_decr - death) * w;
    let next_bef_mat = bef_decr - lapse - death;
    Decrements { bef_mat, maturity, bef_nb, new_biz, bef_decr, death, lapse, next_bef_mat }
}

impl Month {
    /// A month with its time, age and policy counts filled in (the other quantities zero).
    #[inline(always)]
    fn decrements(t: usize, dm: i64, p: &Point, (q_ann, q, lapse_ann): (f64, f64, f64), n: &Decrements) -> Month {
        let year = dm.div_euclid(12);
        Month {
            t: t as f64,
            duration_mth: dm as f64,
            duration: year as f64,
            age: (p.age_at_entry + year) as f64,
            pols_if_bef_mat: n.bef_mat,
            pols_maturity: n.maturity,
            pols_if_bef_nb: n.bef_nb,
            pols_new_biz: n.new_biz,
            pols_if_bef_decr: n.bef_decr,
            mort_rate: q_ann,
            mort_rate_mth: q,
            pols_death: n.death,
            lapse_rate: lapse_ann,
            pols_lapse: n.lapse,
            ..Month::default()
        }
    }
}

/// Mortality (annual, monthly) and lapse (annual, monthly) rates of policy year `year`.
#[inline(always)]
fn rates(pf: &Portfolio, p: &Point, year: i64) -> (f64, f64, f64, f64) {
    let (q_ann, q) = match pf.mortality.index(p.age_at_entry + year, year) {
        Some(i) => (pf.mortality.annual[i], pf.mortality.monthly[i]),
        None => (0.0, 0.0),
    };
    let l = (year - pf.lapse_first_year) as usize;
    (q_ann, q, pf.lapse_annual[l], pf.lapse_monthly[l])
}

#[inline(always)]
fn max(a: f64, b: f64) -> f64 {
    if a >= b { a } else { b }
}

#[inline(always)]
fn cash_value<S: Sink>(pf: &Portfolio, p: &Point, returns: &[f64], months: usize, sink: &mut S) {
    let c = &pf.constants;
    let product = &pf.products[p.product as usize];
    let fee_rate = c.maint_fee_rate / 12.0;
    let prem_share = 1.0 - product.load_prem_rate;
    let months = months.min(pf.horizon);
    let (returns, disc, inflation) = (&returns[..months], &pf.disc[..months], &pf.inflation[..months]);
    let mut av = p.av_pp_init;
    let mut bef_mat = if p.d0 > 0 { p.count } else { 0.0 };
    for t in 0..months {
        let dm = p.d0 + t as i64;
        let year = dm.div_euclid(12);
        let (q_ann, q, lapse_ann, w) = rates(pf, p, year);
        let n = decrements(p, bef_mat, dm, q, w);

        let premium_pp = if product.single_premium {
            if dm == 0 { p.premium_pp } else { 0.0 }
        } else if dm < p.term_months {
            p.premium_pp
        } else {
            0.0
        };
        let prem_to_av_pp = prem_share * premium_pp;
        let av_bef_fee = av + prem_to_av_pp;
        let maint_fee_pp = fee_rate * av_bef_fee;
        // numpy's maximum; written as a comparison because `f64::max`'s NaN handling lengthens the account
        // value's dependency chain, which bounds the speed of the loop (values are never NaN here).
        let net_amt_at_risk = max(p.sum_assured - av_bef_fee, 0.0);
        let coi_rate = c.coi_multiplier * q;
        let coi_pp = coi_rate * net_amt_at_risk;
        let av_bef_inv = av_bef_fee - maint_fee_pp - coi_pp;
        let inv_return = returns[t];
        let inv_income_pp = inv_return * av_bef_inv;
        let av_mid = av_bef_inv + 0.5 * inv_income_pp;
        let next_av = av_bef_inv + inv_income_pp;

        let surr_charge_rate = match product.surr_charge {
            Some(col) if year >= 0 => pf.surr[(year as usize).min(pf.surr_years - 1) * pf.surr_cols + col],
            _ => 0.0,
        };
        let premiums = premium_pp * n.bef_decr;
        let claim_pp_death = max(p.sum_assured, av_mid);
        let claims_death = claim_pp_death * n.death;
        let claims_from_av_lapse = av_mid * n.lapse;
        let surr_charge = surr_charge_rate * av_mid * n.lapse;
        let claims_lapse = claims_from_av_lapse - surr_charge;
        let claims_maturity = av * n.maturity;
        let claims_total = claims_death + claims_lapse + claims_maturity;
        let expenses = c.expense_acq * n.new_biz + n.bef_decr * c.expense_maint / 12.0 * inflation[t];
        let commissions = c.commission_rate * premiums;
        let inv_income = inv_income_pp * n.next_bef_mat + 0.5 * inv_income_pp * (n.death + n.lapse);
        let av_change = next_av * n.next_bef_mat - av * n.bef_mat;
        let net_cf = premiums + inv_income - claims_total - expenses - commissions - av_change;
        let maint_fee = maint_fee_pp * n.bef_decr;
        let coi = coi_pp * n.bef_decr;

        sink.month(
            t,
            &Month {
                premium_pp,
                prem_to_av_pp,
                av_pp_bef_prem: av,
                av_pp_bef_fee: av_bef_fee,
                maint_fee_pp,
                net_amt_at_risk,
                coi_rate,
                coi_pp,
                av_pp_bef_inv: av_bef_inv,
                inv_return_mth: inv_return,
                inv_income_pp,
                av_pp_mid_mth: av_mid,
                av_bef_mat: av * n.bef_mat,
                av_bef_fee: av_bef_fee * n.bef_decr,
                premiums,
                prem_to_av: prem_to_av_pp * n.bef_decr,
                maint_fee,
                coi,
                inv_income,
                claim_pp_death,
                claims_death,
                claims_from_av_lapse,
                surr_charge_rate,
                surr_charge,
                claims_lapse,
                claims_maturity,
                claims_total,
                inflation_factor: inflation[t],
                expenses,
                commissions,
                av_change,
                net_cf,
                margin_expense: product.load_prem_rate * premium_pp * n.bef_decr + surr_charge + maint_fee
                    - commissions
                    - expenses,
                margin_mortality: coi - (claims_death - av_mid * n.death),
                d: disc[t],
                ..Month::decrements(t, dm, p, (q_ann, q, lapse_ann), &n)
            },
        );
        av = next_av;
        bef_mat = n.next_bef_mat;
    }
}

#[inline(always)]
fn basic_term<S: Sink>(pf: &Portfolio, p: &Point, months: usize, sink: &mut S) {
    let c = &pf.constants;
    let months = months.min(pf.horizon);
    let (disc, inflation) = (&pf.disc[..months], &pf.inflation[..months]);
    let mut bef_mat = if p.d0 > 0 { p.count } else { 0.0 };
    for t in 0..months {
        let dm = p.d0 + t as i64;
        let year = dm.div_euclid(12);
        let (q_ann, q, lapse_ann, w) = rates(pf, p, year);
        let n = decrements(p, bef_mat, dm, q, w);
        let premiums = p.premium_pp * n.bef_decr;
        let claims = p.sum_assured * n.death;
        let expenses = c.expense_acq * n.new_biz + n.bef_decr * c.expense_maint / 12.0 * inflation[t];
        let commissions = if year == 0 { c.commission_rate * premiums } else { 0.0 };
        let net_cf = premiums - claims - expenses - commissions;
        sink.month(
            t,
            &Month {
                premium_pp: p.premium_pp,
                premiums,
                claims_death: claims,
                claims_total: claims,
                inflation_factor: inflation[t],
                expenses,
                commissions,
                net_cf,
                d: disc[t],
                ..Month::decrements(t, dm, p, (q_ann, q, lapse_ann), &n)
            },
        );
        bef_mat = n.next_bef_mat;
    }
}

/// Present values of the cash flows (lifelib's `result_pv`): sums of cash flow × discount factor.
#[derive(Debug, Clone, Copy, Default)]
pub struct PvSink {
    pub premiums: f64,
    pub death: f64,
    pub surrender: f64,
    pub maturity: f64,
    pub expenses: f64,
    pub commissions: f64,
    pub inv_income: f64,
    pub av_change: f64,
    pub claims: f64,
}

impl Sink for PvSink {
    #[inline(always)]
    fn month(&mut self, _t: usize, m: &Month) {
        let d = m.d;
        self.premiums += m.premiums * d;
        self.death += m.claims_death * d;
        self.surrender += m.claims_lapse * d;
        self.maturity += m.claims_maturity * d;
        self.expenses += m.expenses * d;
        self.commissions += m.commissions * d;
        self.inv_income += m.inv_income * d;
        self.av_change += m.av_change * d;
        self.claims += m.claims_total * d;
    }
}

/// lifelib's `result_pv` columns of each kind.
pub fn pv_columns(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::CashValue => &[
            "Premiums",
            "Death",
            "Surrender",
            "Maturity",
            "Expenses",
            "Commissions",
            "Investment Income",
            "Change in AV",
            "Net Cashflow",
        ],
        Kind::BasicTerm => &["PV Premiums", "PV Claims", "PV Expenses", "PV Commissions", "PV Net Cashflow"],
    }
}

impl PvSink {
    /// The `result_pv` row, net cash flow composed from the other present values as lifelib does.
    pub fn write(&self, kind: Kind, out: &mut [f64]) {
        let s = self;
        match kind {
            Kind::CashValue => out.copy_from_slice(&[
                s.premiums,
                s.death,
                s.surrender,
                s.maturity,
                s.expenses,
                s.commissions,
                s.inv_income,
                s.av_change,
                s.premiums + s.inv_income - s.claims - s.expenses - s.commissions - s.av_change,
            ]),
            Kind::BasicTerm => out.copy_from_slice(&[
                s.premiums,
                s.claims,
                s.expenses,
                s.commissions,
                s.premiums - s.claims - s.expenses - s.commissions,
            ]),
        }
    }
}

/// The monthly portfolio columns (lifelib's `result_cf` then `result_pols`).
pub const MONTHLY_COLUMNS: [&str; 10] = [
    "Premiums",
    "Claims",
    "Expenses",
    "Commissions",
    "Net Cashflow",
    "pols_if",
    "pols_maturity",
    "pols_new_biz",
    "pols_death",
    "pols_lapse",
];

/// Writes each month's `result_cf` and `result_pols` quantities as a row of [`MONTHLY_COLUMNS`].
pub struct MonthlySink<'a> {
    pub rows: &'a mut [f64],
}

impl Sink for MonthlySink<'_> {
    #[inline(always)]
    fn month(&mut self, t: usize, m: &Month) {
        let w = MONTHLY_COLUMNS.len();
        self.rows[t * w..(t + 1) * w].copy_from_slice(&[
            m.premiums,
            m.claims_total,
            m.expenses,
            m.commissions,
            m.net_cf,
            m.pols_if_bef_mat,
            m.pols_maturity,
            m.pols_new_biz,
            m.pols_death,
            m.pols_lapse,
        ]);
    }
}

/// Writes every month's audit columns.
pub struct AuditSink<'a> {
    pub kind: Kind,
    /// Columns per row: `audit_columns(kind).len()`.
    pub width: usize,
    pub rows: &'a mut [f64],
}

impl Sink for AuditSink<'_> {
    fn month(&mut self, t: usize, m: &Month) {
        let w = self.width;
        m.audit(self.kind, &mut self.rows[t * w..(t + 1) * w]);
    }
}
