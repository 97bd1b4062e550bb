//! Vensim's allocation functions: `ALLOCATE BY PRIORITY` and `ALLOCATE AVAILABLE` clear a market of
//! requests over priority profiles, at the market priority found by bisection in hidden auxiliaries.

use parfit_expr::Op;
use parfit_expr::system::Expr as S;

use super::{Env, Lowerer, chain, op2};
use crate::expr::{Expr, Sub};
use crate::lexer::Located;

impl Lowerer<'_, '_> {
    /// `ALLOCATE BY PRIORITY(request[…, r], priority[…, r], size, width, supply)`: each requester along r
    /// gets `request × clamp((priority − x) / width + 1/2, 0, 1)` — the integral of a rectangular priority
    /// profile of that width — at the market priority x where the allocations add up to the supply.
    pub(super) fn allocate_by_priority(&mut self, args: &[Expr], at: usize, env: &Env) -> Result<S, Located> {
        const NAME: &str = "ALLOCATE BY PRIORITY";
        let [request, priority, _size, width, supply] = args else {
            return Err(Located::new(at, format!("{NAME} takes 5 arguments, found {}", args.len())));
        };
        let (requests, position) = self.along_last(request, env, NAME, at)?;
        let (priorities, _) = self.along_last(priority, env, NAME, at)?;
        if requests.len() != priorities.len() {
            return Err(Located::new(
                at,
                format!(
                    "{NAME}'s requests ({}) and priorities ({}) differ in length",
                    requests.len(),
                    priorities.len()
                ),
            ));
        }
        let width = self.expr(width, env)?;
        let profiles: Vec<Profile> = priorities
            .into_iter()
            .map(|priority| Profile { kind: S::Num(1.0), priority, width: width.clone() })
            .collect();
        let supply = self.expr(supply, env)?;
        let x = self.market_priority(&env.label, &requests, &profiles, supply);
        Ok(op2(Op::Mul, requests[position].clone(), profiles[position].share(&x)))
    }

    /// `ALLOCATE AVAILABLE(request[…, r], profile[…, r, ptype], available)`: as ALLOCATE BY PRIORITY with each
    /// requester's own priority profile, read from the elements of `profile`'s last range from the one
    /// written on (type, priority, width): 1 rectangular, 2 triangular, 4 exponential. The normal profile (3)
    /// is refused: Vensim's output departs from the normal distribution function by up to 1e-4 of the
    /// allocations (an approximation of its own), which this reader cannot reproduce.
    pub(super) fn allocate_available(&mut self, args: &[Expr], at: usize, env: &Env) -> Result<S, Located> {
        const NAME: &str = "ALLOCATE AVAILABLE";
        let [request, Expr::Var { key, text, subs, at: pat }, available] = args else {
            return Err(Located::new(at, format!("{NAME} takes a request, a priority profile and the supply")));
        };
        let (requests, position) = self.along_last(request, env, NAME, at)?;
        let profile_error = || {
            Located::new(
                *pat,
                format!("{NAME}'s priority profile must be written 'profile[…, r, ptype]', ptype an element"),
            )
        };
        let Some(&v) = self.scopes[env.scope].vars.get(key.as_str()) else { return Err(profile_error()) };
        let (Some(last), Some(along)) = (subs.last(), subs.len().checked_sub(2).and_then(|k| subs.get(k))) else {
            return Err(profile_error());
        };
        let Some(&dim) = self.scopes[env.scope].variables[v].dims.last() else { return Err(profile_error()) };
        let attributes = &self.subs.ranges[dim].elements;
        let Some(first) = attributes.iter().position(|e| *e == last.key) else { return Err(profile_error()) };
        let Some(names) = attributes.get(first..first + 3).map(<[String]>::to_vec) else { return Err(profile_error()) };
        let along_range = self.subs.range_of(along)?;
        let members = self.subs.ranges[along_range].elements.clone();
        if members.len() != requests.len() {
            return Err(Located::new(
                *pat,
                format!("{NAME}'s profiles ({}) and requests ({}) differ in length", members.len(), requests.len()),
            ));
        }
        let mut profiles = Vec::with_capacity(members.len());
        for member in members {
            let mut inner = env.clone();
            inner.binding.push((along.key.clone(), member));
            let attribute = |l: &mut Self, name: &String| {
                let mut subs = subs.clone();
                if let Some(s) = subs.last_mut() {
                    *s = Sub { key: name.clone(), text: l.subs.element_text(name).to_string(), bang: false, at: s.at };
                }
                l.expr(&Expr::Var { key: key.clone(), text: text.clone(), subs, at: *pat }, &inner)
            };
            let kind = attribute(self, &names[0])?;
            self.check_profile_type(&kind, &env.label, *pat)?;
            let priority = attribute(self, &names[1])?;
            let width = attribute(self, &names[2])?;
            profiles.push(Profile { kind, priority, width });
        }
        let supply = self.expr(available, env)?;
        let x = self.market_priority(&env.label, &requests, &profiles, supply);
        Ok(op2(Op::Mul, requests[position].clone(), profiles[position].share(&x)))
    }

    /// Refuse a profile type known when the model is compiled (a number, or a constant's default, which then
    /// may not change) that is not supported: 0 fixed quantity, 3 normal, 5 constant elasticity, or none.
    fn check_profile_type(&mut self, kind: &S, label: &str, at: usize) -> Result<(), Located> {
        let known = match kind {
            S::Num(k) => *k,
            S::Param(p) => {
                self.lw.structural.push((*p, format!("the profile type of ALLOCATE AVAILABLE in {label}")));
                self.lw.system.params.get(*p).map_or(f64::NAN, |(_, d)| *d)
            }
            _ => return Ok(()),
        };
        let name = match known {
            1.0 | 2.0 | 4.0 => return Ok(()),
            0.0 => "fixed quantity",
            3.0 => "normal",
            5.0 => "constant elasticity",
            _ => "unknown",
        };
        Err(Located::new(
            at,
            format!(
                "ALLOCATE AVAILABLE's priority profile type {known} ({name}) is not supported (1 rectangular, \
                 2 triangular and 4 exponential are)"
            ),
        ))
    }

    /// The market priority at which the requests' shares add up to the supply (all requests when they fit,
    /// none without supply): bisection, 64 halvings of a bracket wider than every profile, each a hidden
    /// auxiliary. Computed once for all the cells of a call that share requests, profiles and supply.
    pub(super) fn market_priority(&mut self, label: &str, requests: &[S], profiles: &[Profile], supply: S) -> S {
        let key = format!("{requests:?}{profiles:?}{supply:?}");
        if let Some(x) = self.markets.get(&key) {
            return x.clone();
        }
        let label = format!("{label} (allocation)");
        let hidden = |l: &mut Self, what: &str, value: S| S::Var(l.push_var(format!("{label} {what}"), value, l.at));
        let supply = hidden(self, "supply", supply);
        let profiles: Vec<Profile> = profiles
            .iter()
            .map(|p| Profile {
                kind: hidden(self, "profile", p.kind.clone()),
                priority: hidden(self, "priority", p.priority.clone()),
                width: hidden(self, "width", p.width.clone()),
            })
            .collect();
        // Every share is 1 below the bracket and 0 above it (within rounding for the unbounded profiles).
        let reach = |p: &Profile, sign: f64| {
            op2(Op::Add, p.priority.clone(), op2(Op::Mul, S::Num(sign * 40.0), p.width.clone()))
        };
        let fold = |op: Op, sign: f64| {
            profiles.iter().map(|p| reach(p, sign)).reduce(|a, b| chain(op, a, b)).unwrap_or(S::Num(0.0))
        };
        let mut lo = hidden(self, "low", fold(Op::Min, -1.0));
        let mut hi = hidden(self, "high", fold(Op::Max, 1.0));
        for _ in 0..64 {
            let mid = hidden(self, "mid", op2(Op::Mul, op2(Op::Add, lo.clone(), hi.clone()), S::Num(0.5)));
            let total = requests.iter().zip(&profiles).map(|(r, p)| op2(Op::Mul, r.clone(), p.share(&mid)));
            let total = total.reduce(|a, b| chain(Op::Add, a, b)).unwrap_or(S::Num(0.0));
            // Too much allocated: the market priority is higher.
            let over = hidden(self, "over", op2(Op::Gt, total, supply.clone()));
            lo = hidden(self, "low", S::Op(Op::If, vec![over.clone(), mid.clone(), lo]));
            hi = hidden(self, "high", S::Op(Op::If, vec![over, hi, mid]));
        }
        let x = hidden(self, "market priority", op2(Op::Mul, op2(Op::Add, lo, hi), S::Num(0.5)));
        self.markets.insert(key, x.clone());
        x
    }
}

/// A requester's priority profile in an allocation: its type (1 rectangular, 2 triangular, 4 exponential),
/// centre and width.
#[derive(Debug, Clone)]
pub(super) struct Profile {
    kind: S,
    priority: S,
    width: S,
}

impl Profile {
    /// The share of its request a requester takes at market priority x: one minus the profile's distribution
    /// function at x − priority (NaN for another type, which only a type computed at run time can be).
    pub(super) fn share(&self, x: &S) -> S {
        let u = op2(Op::Div, op2(Op::Sub, x.clone(), self.priority.clone()), self.width.clone());
        let num = S::Num;
        let if_ = |c: S, a: S, b: S| S::Op(Op::If, vec![c, a, b]);
        let sq = |e: S| op2(Op::Mul, e.clone(), e);
        let rectangular = op2(Op::Max, num(0.0), op2(Op::Min, num(1.0), op2(Op::Sub, num(0.5), u.clone())));
        // A symmetric triangle of base 1 (in widths) around the priority.
        let triangular = if_(
            op2(Op::Le, u.clone(), num(-0.5)),
            num(1.0),
            if_(
                op2(Op::Lt, u.clone(), num(0.0)),
                op2(Op::Sub, num(1.0), op2(Op::Mul, num(2.0), sq(op2(Op::Add, u.clone(), num(0.5))))),
                if_(
                    op2(Op::Lt, u.clone(), num(0.5)),
                    op2(Op::Mul, num(2.0), sq(op2(Op::Sub, num(0.5), u.clone()))),
                    num(0.0),
                ),
            ),
        );
        // The symmetric exponential (Laplace) distribution of scale 1.
        let exponential = if_(
            op2(Op::Lt, u.clone(), num(0.0)),
            op2(Op::Sub, num(1.0), op2(Op::Mul, num(0.5), S::Op(Op::Exp, vec![u.clone()]))),
            op2(Op::Mul, num(0.5), S::Op(Op::Exp, vec![S::Op(Op::Neg, vec![u])])),
        );
        let kind = |k: f64| op2(Op::Eq, self.kind.clone(), num(k));
        match self.kind {
            S::Num(1.0) => rectangular,
            _ => if_(kind(1.0), rectangular, if_(kind(2.0), triangular, if_(kind(4.0), exponential, num(f64::NAN)))),
        }
    }
}
