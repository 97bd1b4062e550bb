//! `GET DIRECT …` / `GET XLS …` equations, read through [`crate::data`] once for all their cells, and data
//! variables without an equation, read from Vensim output files.

use std::rc::Rc;

use super::Lowerer;
use crate::data::{DataFiles, Series};
use crate::expr::Expr;
use crate::lexer::Located;
use crate::parser::{Equation, Rhs};

impl Lowerer<'_, '_> {
    /// What the `GET …` call that is equation `e`'s right-hand side reads, for all its cells at once.
    pub(super) fn read(&mut self, e: &Equation) -> Result<Rc<Read>, Located> {
        let key = e as *const Equation as usize;
        if let Some(r) = self.reads.get(&key) {
            return Ok(r.clone());
        }
        let Some((kind, text, args, at)) = get_call(&e.rhs) else {
            return Err(Located::new(e.lhs.at, "not a GET … equation"));
        };
        let mut shape = Vec::new();
        for s in &e.lhs.subs {
            shape.push(self.lhs_elements(s)?.1.len());
        }
        let name = text.to_uppercase();
        let place = |m: String| Located::new(at, format!("{name}: {m}"));
        let read = match kind {
            Get::Constants => {
                let (data, a) = get_args(&mut self.data, text, args, at, 3)?;
                Read::Values(data.constants(&a[0], &a[1], &a[2], &shape).map_err(place)?)
            }
            Get::Data | Get::Lookups => {
                let (data, a) = get_args(&mut self.data, text, args, at, 4)?;
                Read::Series(data.series(&a[0], &a[1], &a[2], &a[3], &shape).map_err(place)?)
            }
            Get::Subscript => {
                return Err(Located::new(at, "GET … SUBSCRIPT defines a subscript range, not a variable"));
            }
        };
        let read = Rc::new(read);
        self.reads.insert(key, read.clone());
        Ok(read)
    }

    /// The points of cell number `number` of a `GET … DATA/LOOKUPS` equation: empty values left out (Vensim
    /// interpolates across them).
    pub(super) fn read_points(&mut self, e: &Equation, number: usize) -> Result<Vec<(f64, f64)>, Located> {
        let read = self.read(e)?;
        let Read::Series(series) = read.as_ref() else { return Err(Located::new(e.lhs.at, "not a series")) };
        let ys = series
            .ys
            .get(number)
            .ok_or_else(|| Located::new(e.lhs.at, format!("no data for element {}", number + 1)))?;
        let points: Vec<(f64, f64)> =
            series.xs.iter().zip(ys).filter(|(_, y)| !y.is_nan()).map(|(&x, &y)| (x, y)).collect();
        if points.is_empty() {
            return Err(Located::new(e.lhs.at, format!("'{}' has no values in its data file", e.lhs.name)));
        }
        Ok(points)
    }

    /// The values of data variable cell `name` (no equation) from the first output file that has them.
    pub(super) fn output_points(&mut self, name: &str, e: &Equation) -> Result<Vec<(f64, f64)>, Located> {
        let no_data = || {
            Located::new(
                e.lhs.at,
                format!(
                    "'{name}' is a data variable without an equation, and no Vensim output file among the \
                     configuration's \"data_outputs\" has its values"
                ),
            )
        };
        let (Some(data), outputs) = (self.data.as_mut(), self.data_outputs) else { return Err(no_data()) };
        for file in outputs {
            let series = data.output_series(file, name).map_err(|m| Located::new(e.lhs.at, m))?;
            if let Some(Series { xs, ys }) = series {
                let values = ys.first().map(Vec::as_slice).unwrap_or(&[]);
                let points: Vec<(f64, f64)> =
                    xs.iter().zip(values).filter(|(_, y)| !y.is_nan()).map(|(&x, &y)| (x, y)).collect();
                if !points.is_empty() {
                    return Ok(points);
                }
            }
        }
        Err(no_data())
    }
}

/// Which `GET DIRECT …` / `GET XLS …` function a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Get {
    Constants,
    Data,
    Lookups,
    Subscript,
}

pub(super) fn get_kind(key: &str) -> Option<Get> {
    let rest = key.strip_prefix("get direct ").or_else(|| key.strip_prefix("get xls "))?;
    match rest {
        "constants" => Some(Get::Constants),
        "data" => Some(Get::Data),
        "lookups" => Some(Get::Lookups),
        "subscript" => Some(Get::Subscript),
        _ => None,
    }
}

/// The `GET …` call an equation's right-hand side is, if it is one.
pub(super) fn get_call(rhs: &Rhs) -> Option<(Get, &str, &[Expr], usize)> {
    let x = match rhs {
        Rhs::Expr(x) | Rhs::LookupGet(x) | Rhs::Data { expr: Some(x), .. } => x,
        _ => return None,
    };
    match x {
        Expr::Call { key, text, args, at, .. } => get_kind(key).map(|g| (g, text.as_str(), args.as_slice(), *at)),
        _ => None,
    }
}

/// The data files and the quoted arguments of a `GET …` call that takes `n` of them.
pub(super) fn get_args<'d>(
    data: &'d mut Option<DataFiles>,
    text: &str,
    args: &[Expr],
    at: usize,
    n: usize,
) -> Result<(&'d mut DataFiles, Vec<String>), Located> {
    let name = text.to_uppercase();
    let Some(data) = data.as_mut() else {
        return Err(Located::new(
            at,
            format!("{name} reads a data file, and this model was given none (set the configuration's \"data_dir\")"),
        ));
    };
    if args.len() != n {
        return Err(Located::new(at, format!("{name} takes {n} arguments, found {}", args.len())));
    }
    let mut out = Vec::with_capacity(n);
    for a in args {
        match a {
            Expr::Literal(s) => out.push(s.clone()),
            _ => return Err(Located::new(at, format!("{name}'s arguments must be quoted ('…')"))),
        }
    }
    Ok((data, out))
}

/// What a `GET …` equation read.
#[derive(Debug)]
pub(super) enum Read {
    Values(Vec<f64>),
    Series(Series),
}
