//! SVG plots a person would rather look at than a table: data with fitted curves, convergence, histograms,
//! corner plots and projections.
//!
//! Every axis range is computed here from plottable values only: a value that is not finite or beyond
//! ±[`PLOT_LIMIT`] is left out (and counted on stderr), since plotters' tick computation never ends on such
//! ranges. A series with far more points than the plot has pixels is thinned to [`MAX_POINTS`] evenly spaced
//! points, so the file stays small (a 10^7-row fit once wrote a 1.87 GB SVG).

use parfit_core::math;
use std::path::Path;

use plotters::prelude::*;

use crate::error::{CliResult, failed};

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
];

/// One observed output: its data points and the fitted curve.
pub struct Series<'a> {
    pub name: &'a str,
    pub data: Vec<(f64, f64)>,
    pub fitted: Vec<(f64, f64)>,
}

/// The largest magnitude plotted: far beyond any meaningful result, far enough below `f64::MAX` that an axis
/// range and its ticks stay finite.
pub const PLOT_LIMIT: f64 = 1e100;

/// The most points drawn of one series.
pub const MAX_POINTS: usize = 4000;

fn plottable(v: f64) -> bool {
    v.is_finite() && v.abs() <= PLOT_LIMIT
}

/// An axis range over the plottable `values`, padded by 5 % (and never empty); (0, 1) when there are none.
fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) =
        values.filter(|&v| plottable(v)).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(lo.abs().max(hi.abs()) * 1e-9).max(1e-12);
    (lo - pad, hi + pad)
}

/// The plottable points of `points`, thinned to at most [`MAX_POINTS`]; counts what was left out in `skipped`.
fn drawable(points: &[(f64, f64)], skipped: &mut usize) -> Vec<(f64, f64)> {
    let kept: Vec<(f64, f64)> = points.iter().copied().filter(|p| plottable(p.0) && plottable(p.1)).collect();
    *skipped += points.len() - kept.len();
    let stride = kept.len().div_ceil(MAX_POINTS).max(1);
    kept.into_iter().step_by(stride).collect()
}

/// Say on stderr how many values a plot left out.
fn note_skipped(path: &Path, skipped: usize) {
    if skipped > 0 {
        crate::console::note(&format!(
            "note: {}: {skipped} value(s) not finite or beyond ±{PLOT_LIMIT:e} are not drawn",
            path.file_name().map_or(path.display().to_string(), |n| {
                let name = n.to_string_lossy();
                name.strip_suffix(".partial").unwrap_or(&name).to_string()
            })
        ));
    }
}

fn plot_error(path: &Path, e: impl std::fmt::Display) -> crate::error::CliError {
    failed(format!("{}: cannot draw the plot ({e})", path.display()))
}

/// Data as points and fitted model outputs as lines, one colour per output.
pub fn fit_plot(path: &Path, title: &str, series: &[Series]) -> CliResult<()> {
    let mut skipped = 0;
    let drawn: Vec<[Vec<(f64, f64)>; 2]> =
        series.iter().map(|s| [drawable(&s.data, &mut skipped), drawable(&s.fitted, &mut skipped)]).collect();
    note_skipped(path, skipped);
    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
    let xs = range(drawn.iter().flatten().flatten().map(|p| p.0));
    let ys = range(drawn.iter().flatten().flatten().map(|p| p.1));
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(xs.0..xs.1, ys.0..ys.1)
        .map_err(|e| plot_error(path, e))?;
    chart.configure_mesh().x_desc("t").draw().map_err(|e| plot_error(path, e))?;
    for (i, (s, [data, fitted])) in series.iter().zip(drawn).enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        chart
            .draw_series(data.into_iter().map(|(x, y)| Circle::new((x, y), 2, colour.mix(0.5).filled())))
            .map_err(|e| plot_error(path, e))?
            .label(format!("{} (data)", s.name))
            .legend(move |(x, y)| Circle::new((x + 10, y), 3, colour.mix(0.5).filled()));
        chart
            .draw_series(LineSeries::new(fitted, colour.stroke_width(2)))
            .map_err(|e| plot_error(path, e))?
            .label(format!("{} (fitted)", s.name))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| plot_error(path, e))?;
    root.present().map_err(|e| plot_error(path, e))
}

/// Best value against evaluations, as log10 of the value when every value is positive. (plotters' own log
/// axis loops on a range of hundreds of decades, which a cost falling from 1e300 spans.)
pub fn convergence_plot(path: &Path, title: &str, points: &[(f64, f64)]) -> CliResult<()> {
    // A best value of +inf before the first success is no news: leave those out quietly.
    let found: Vec<(f64, f64)> = points.iter().copied().filter(|p| p.1 != f64::INFINITY).collect();
    let log = !found.is_empty() && found.iter().all(|p| p.1 > 0.0 && p.1.is_finite());
    let shown: Vec<(f64, f64)> = if log { found.iter().map(|&(x, y)| (x, math::log10(y))).collect() } else { found };
    let mut skipped = 0;
    let drawn = drawable(&shown, &mut skipped);
    note_skipped(path, skipped);
    let root = SVGBackend::new(path, (700, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
    let xs = range(drawn.iter().map(|p| p.0));
    let ys = range(drawn.iter().map(|p| p.1));
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(xs.0..xs.1, ys.0..ys.1)
        .map_err(|e| plot_error(path, e))?;
    let y_desc = if log { "log10 of the best value" } else { "best value" };
    chart.configure_mesh().x_desc("evaluations").y_desc(y_desc).draw().map_err(|e| plot_error(path, e))?;
    chart.draw_series(LineSeries::new(drawn, PALETTE[0].stroke_width(2))).map_err(|e| plot_error(path, e))?;
    root.present().map_err(|e| plot_error(path, e))
}

/// One histogram per named column, in a grid.
pub fn histograms(path: &Path, title: &str, columns: &[(String, Vec<f64>)]) -> CliResult<()> {
    let n = columns.len().max(1);
    let cols = (n as f64).sqrt().ceil() as usize;
    let rows = n.div_ceil(cols);
    let root = SVGBackend::new(path, (300 * cols as u32, 240 * rows as u32 + 40)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
    let root = root.titled(title, ("sans-serif", 20)).map_err(|e| plot_error(path, e))?;
    let mut skipped = 0;
    for ((name, values), area) in columns.iter().zip(root.split_evenly((rows, cols))) {
        let finite: Vec<f64> = values.iter().copied().filter(|&v| plottable(v)).collect();
        skipped += values.len() - finite.len();
        let (lo, hi) = range(finite.iter().copied());
        const BINS: usize = 30;
        let width = (hi - lo) / BINS as f64;
        let mut counts = [0u32; BINS];
        for v in &finite {
            counts[(((v - lo) / width) as usize).min(BINS - 1)] += 1;
        }
        let top = counts.iter().copied().max().unwrap_or(1).max(1);
        let mut chart = ChartBuilder::on(&area)
            .caption(name, ("sans-serif", 14))
            .margin(8)
            .x_label_area_size(24)
            .y_label_area_size(36)
            .build_cartesian_2d(lo..hi, 0u32..top + top / 10 + 1)
            .map_err(|e| plot_error(path, e))?;
        chart.configure_mesh().x_labels(4).y_labels(4).draw().map_err(|e| plot_error(path, e))?;
        chart
            .draw_series(counts.iter().enumerate().map(|(i, &c)| {
                let x0 = lo + i as f64 * width;
                Rectangle::new([(x0, 0), (x0 + width, c)], PALETTE[0].mix(0.7).filled())
            }))
            .map_err(|e| plot_error(path, e))?;
    }
    note_skipped(path, skipped);
    root.present().map_err(|e| plot_error(path, e))
}

/// A corner plot of a weighted posterior sample: each parameter's weighted histogram on the diagonal and
/// each pair's weighted 2-D histogram below it (darker cells hold more posterior weight).
pub fn corner_plot(path: &Path, title: &str, names: &[String], points: &[Vec<f64>], weights: &[f64]) -> CliResult<()> {
    const BINS: usize = 30;
    const CELL: u32 = 220;
    let d = names.len().max(1);
    let root = SVGBackend::new(path, (CELL * d as u32, CELL * d as u32 + 40)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
    let root = root.titled(title, ("sans-serif", 20)).map_err(|e| plot_error(path, e))?;
    let usable: Vec<usize> = (0..points.len())
        .filter(|&k| weights[k] > 0.0 && weights[k].is_finite() && points[k].iter().all(|&v| plottable(v)))
        .collect();
    note_skipped(path, (0..points.len()).filter(|&k| points[k].iter().any(|&v| !plottable(v))).count());
    let w: Vec<f64> = usable.iter().map(|&k| weights[k]).collect();
    // Each axis spans the central 99.8 % of the posterior weight, so stray low-weight points do not squash it.
    let ranges: Vec<(f64, f64)> = (0..names.len())
        .map(|j| {
            let values: Vec<f64> = usable.iter().map(|&k| points[k][j]).collect();
            if values.is_empty() {
                return (0.0, 1.0);
            }
            let q = parfit_core::sample::summary::weighted_quantiles(&values, &w, &[0.001, 0.999]);
            range(q.into_iter())
        })
        .collect();
    let bin = |j: usize, v: f64| -> Option<usize> {
        let (lo, hi) = ranges[j];
        let b = ((v - lo) / (hi - lo) * BINS as f64).floor();
        (b >= 0.0 && b < BINS as f64).then_some(b as usize)
    };
    let areas = root.split_evenly((d, d));
    for (cell, area) in areas.into_iter().enumerate() {
        let (row, col) = (cell / d, cell % d);
        if col > row || row >= names.len() {
            continue;
        }
        let (xlo, xhi) = ranges[col];
        let width = (xhi - xlo) / BINS as f64;
        let mut builder = ChartBuilder::on(&area);
        builder
            .margin(6)
            .x_label_area_size(if row + 1 == d { 30 } else { 0 })
            .y_label_area_size(if col == 0 && row > 0 { 50 } else { 0 });
        if row == col {
            let mut mass = [0.0f64; BINS];
            for (&k, &wk) in usable.iter().zip(&w) {
                if let Some(b) = bin(col, points[k][col]) {
                    mass[b] += wk;
                }
            }
            let top = mass.iter().copied().fold(0.0, f64::max).max(f64::MIN_POSITIVE);
            let mut chart = builder
                .caption(&names[col], ("sans-serif", 14))
                .build_cartesian_2d(xlo..xhi, 0.0..top * 1.1)
                .map_err(|e| plot_error(path, e))?;
            chart.configure_mesh().x_labels(3).y_labels(0).disable_y_mesh().draw().map_err(|e| plot_error(path, e))?;
            chart
                .draw_series(mass.iter().enumerate().map(|(i, &m)| {
                    let x0 = xlo + i as f64 * width;
                    Rectangle::new([(x0, 0.0), (x0 + width, m)], PALETTE[0].mix(0.7).filled())
                }))
                .map_err(|e| plot_error(path, e))?;
        } else {
            let (ylo, yhi) = ranges[row];
            let height = (yhi - ylo) / BINS as f64;
            let mut mass = vec![0.0f64; BINS * BINS];
            for (&k, &wk) in usable.iter().zip(&w) {
                if let (Some(bx), Some(by)) = (bin(col, points[k][col]), bin(row, points[k][row])) {
                    mass[by * BINS + bx] += wk;
                }
            }
            let top = mass.iter().copied().fold(0.0, f64::max).max(f64::MIN_POSITIVE);
            let mut chart = builder.build_cartesian_2d(xlo..xhi, ylo..yhi).map_err(|e| plot_error(path, e))?;
            chart.configure_mesh().x_labels(3).y_labels(3).disable_mesh().draw().map_err(|e| plot_error(path, e))?;
            chart
                .draw_series(mass.iter().enumerate().filter(|(_, m)| **m > 0.0).map(|(i, &m)| {
                    let (x0, y0) = (xlo + (i % BINS) as f64 * width, ylo + (i / BINS) as f64 * height);
                    let shade = (0.15 + 0.85 * (m / top).sqrt()).min(1.0);
                    Rectangle::new([(x0, y0), (x0 + width, y0 + height)], PALETTE[0].mix(shade).filled())
                }))
                .map_err(|e| plot_error(path, e))?;
        }
    }
    root.present().map_err(|e| plot_error(path, e))
}

/// Monthly net cash flow and policies in force of a portfolio, one panel each.
pub fn projection_plot(path: &Path, title: &str, net: &[(f64, f64)], pols: &[(f64, f64)]) -> CliResult<()> {
    let mut skipped = 0;
    let panels = [
        (drawable(net, &mut skipped), "net cash flow", PALETTE[0]),
        (drawable(pols, &mut skipped), "policies in force", PALETTE[1]),
    ];
    note_skipped(path, skipped);
    let root = SVGBackend::new(path, (900, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
    let root = root.titled(title, ("sans-serif", 20)).map_err(|e| plot_error(path, e))?;
    let (top, bottom) = root.split_vertically(300);
    for (area, (data, name, colour)) in [&top, &bottom].into_iter().zip(panels) {
        let xs = range(data.iter().map(|p| p.0).chain([0.0]));
        // The value axis includes zero, so the panels show levels, not only their wiggles.
        let ys = range(data.iter().map(|p| p.1).chain([0.0]));
        let mut chart = ChartBuilder::on(area)
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..xs.1, ys.0..ys.1)
            .map_err(|e| plot_error(path, e))?;
        chart.configure_mesh().x_desc("month").y_desc(name).draw().map_err(|e| plot_error(path, e))?;
        chart.draw_series(LineSeries::new(data, colour.stroke_width(2))).map_err(|e| plot_error(path, e))?;
    }
    root.present().map_err(|e| plot_error(path, e))
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    /// Run `draw` on a thread and fail if it has not returned within a minute (plotters looped on such values).
    fn finishes(draw: impl FnOnce() -> CliResult<()> + Send + 'static) {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(draw().map_err(|e| e.to_string()));
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(result) => result.unwrap(),
            Err(_) => panic!("the plot did not finish: a loop"),
        }
    }

    #[test]
    fn every_plot_finishes_on_infinite_nan_and_huge_values() {
        let dir = std::env::temp_dir().join(format!("parfit-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = [1.0, 1e308, -1e308, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 2.0];
        let points: Vec<(f64, f64)> = bad.iter().enumerate().map(|(i, &v)| (i as f64, v)).collect();
        let path = dir.join("fit.svg");
        let (data, fitted) = (points.clone(), points.clone());
        finishes(move || fit_plot(&path, "t", &[Series { name: "y", data, fitted }]));
        let (path, p) = (dir.join("convergence.svg"), points.clone());
        finishes(move || convergence_plot(&path, "t", &p));
        let path = dir.join("convergence-log.svg");
        finishes(move || convergence_plot(&path, "t", &[(0.0, 1e300), (1.0, 1e100), (2.0, 1e-300)]));
        let path = dir.join("histograms.svg");
        finishes(move || histograms(&path, "t", &[("k".into(), bad.to_vec())]));
        let path = dir.join("corner.svg");
        let rows: Vec<Vec<f64>> = bad.iter().map(|&v| vec![v, 1.0]).collect();
        finishes(move || corner_plot(&path, "t", &["a".into(), "b".into()], &rows, &[1.0; 7]));
        let (path, p) = (dir.join("projection.svg"), points);
        finishes(move || projection_plot(&path, "t", &p, &p));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_series_of_a_million_points_is_thinned() {
        let path = std::env::temp_dir().join(format!("parfit-plot-thin-{}.svg", std::process::id()));
        let points: Vec<(f64, f64)> = (0..1_000_000).map(|i| (i as f64, math::sin(i as f64 * 1e-3))).collect();
        fit_plot(&path, "t", &[Series { name: "y", data: points.clone(), fitted: points }]).unwrap();
        let bytes = std::fs::metadata(&path).unwrap().len();
        std::fs::remove_file(&path).unwrap();
        // Unthinned, the million circles alone took ~100 MB.
        assert!(bytes < 2_000_000, "fit.svg holds {bytes} bytes");
    }
}
