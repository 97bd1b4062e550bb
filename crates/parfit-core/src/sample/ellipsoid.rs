//! Ellipsoidal bounds of a set of points in the unit cube, for constrained prior sampling.
//!
//! A single ellipsoid takes the shape of the points' covariance, scaled until it contains them all.
//! The multi-ellipsoid bound (in the manner of MultiNest, Feroz, Hobson & Bridges 2009, and dynesty)
//! splits the points in two by k-means, bounds each half, and keeps the split when it at least halves
//! the volume — recursively, so separate modes and curved degeneracies get their own ellipsoids.

use crate::math;
use crate::ziggurat::standard_normal;
use nalgebra::{DMatrix, SymmetricEigen};
use rand::Rng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// Largest eigenvalue ratio kept in a covariance: flatter point sets are thickened to this, so the
/// ellipsoid keeps a volume and its axes stay invertible.
const MIN_EIGEN_RATIO: f64 = 1e-12;
/// k-means assignment passes before giving up on convergence (it rarely needs more than ten).
const KMEANS_PASSES: usize = 100;

/// `{x : |diag(1/radii) · axesᵀ (x − center)| ≤ 1}`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ellipsoid {
    center: Vec<f64>,
    /// Orthonormal principal axes, as columns.
    axes: DMatrix<f64>,
    /// Semi-axis lengths along `axes`.
    radii: Vec<f64>,
    log_volume: f64,
}

/// ln of the volume of the unit ball in `d` dimensions, `π^(d/2) / Γ(d/2 + 1)`.
pub(crate) fn ln_unit_ball_volume(d: usize) -> f64 {
    // Γ(d/2 + 1) by its recurrence from Γ(1) = 1 or Γ(1/2) = √π.
    let mut ln_gamma = if d.is_multiple_of(2) { 0.0 } else { 0.5 * math::ln(std::f64::consts::PI) };
    let mut a = if d.is_multiple_of(2) { 1.0 } else { 0.5 };
    let target = d as f64 / 2.0 + 1.0;
    while a < target - 0.25 {
        ln_gamma += math::ln(a);
        a += 1.0;
    }
    0.5 * d as f64 * math::ln(std::f64::consts::PI) - ln_gamma
}

impl Ellipsoid {
    /// The ellipsoid with the shape of the points' covariance that just contains them all. `None`
    /// without points.
    pub fn bounding(points: &[&[f64]]) -> Option<Ellipsoid> {
        let n = points.len();
        let d = points.first()?.len();
        let mut center = vec![0.0; d];
        for p in points {
            for (c, x) in center.iter_mut().zip(p.iter()) {
                *c += x;
            }
        }
        center.iter_mut().for_each(|c| *c /= n as f64);
        let mut cov = DMatrix::<f64>::zeros(d, d);
        let mut delta = vec![0.0; d];
        for p in points {
            for ((dl, x), c) in delta.iter_mut().zip(p.iter()).zip(&center) {
                *dl = x - c;
            }
            for j in 0..d {
                for i in j..d {
                    cov[(i, j)] += delta[i] * delta[j];
                }
            }
        }
        for j in 0..d {
            for i in j..d {
                cov[(i, j)] /= n as f64;
                cov[(j, i)] = cov[(i, j)];
            }
        }
        let eigen = SymmetricEigen::new(cov);
        let largest = eigen.eigenvalues.iter().fold(0.0f64, |m, &v| m.max(v));
        let floor = (largest * MIN_EIGEN_RATIO).max(f64::MIN_POSITIVE.sqrt());
        let mut ell = Ellipsoid {
            center,
            axes: eigen.eigenvectors,
            radii: eigen.eigenvalues.iter().map(|&v| v.max(floor).sqrt()).collect(),
            log_volume: 0.0,
        };
        // Scale the one-sigma ellipsoid out to the farthest point.
        let mut y = vec![0.0; d];
        let r2 = points.iter().map(|p| ell.whiten(p, &mut y)).fold(0.0f64, f64::max);
        let r = r2.sqrt().max(1e-12);
        ell.radii.iter_mut().for_each(|x| *x *= r);
        ell.update_volume();
        Some(ell)
    }

    fn update_volume(&mut self) {
        self.log_volume = ln_unit_ball_volume(self.dim()) + self.radii.iter().map(|&r| math::ln(r)).sum::<f64>();
    }

    pub fn dim(&self) -> usize {
        self.center.len()
    }

    pub fn log_volume(&self) -> f64 {
        self.log_volume
    }

    /// Grow or shrink about the centre to the given log-volume.
    pub fn scale_to_log_volume(&mut self, log_volume: f64) {
        let factor = math::exp((log_volume - self.log_volume) / self.dim() as f64);
        self.radii.iter_mut().for_each(|r| *r *= factor);
        self.update_volume();
    }

    /// Write the point's coordinates in the unit-ball frame into `y`; returns `|y|²` (≤ 1 inside).
    fn whiten(&self, x: &[f64], y: &mut [f64]) -> f64 {
        let mut r2 = 0.0;
        for (k, yk) in y.iter_mut().enumerate() {
            let axis = self.axes.column(k);
            let proj: f64 = axis.iter().zip(x).zip(&self.center).map(|((a, xi), c)| a * (xi - c)).sum();
            *yk = proj / self.radii[k];
            r2 += *yk * *yk;
        }
        r2
    }

    /// `|y|²` of the point in the unit-ball frame.
    pub fn distance2(&self, x: &[f64]) -> f64 {
        let mut r2 = 0.0;
        for k in 0..self.dim() {
            let axis = self.axes.column(k);
            let proj: f64 = axis.iter().zip(x).zip(&self.center).map(|((a, xi), c)| a * (xi - c)).sum();
            r2 += math::powi(proj / self.radii[k], 2);
        }
        r2
    }

    pub fn contains(&self, x: &[f64]) -> bool {
        self.distance2(x) <= 1.0
    }

    /// `out += A v`, with `A` the map from the unit-ball frame to space (axes scaled by radii).
    fn add_mapped(&self, v: &[f64], out: &mut [f64]) {
        for (k, (&vk, &rk)) in v.iter().zip(&self.radii).enumerate() {
            let s = vk * rk;
            for (o, a) in out.iter_mut().zip(self.axes.column(k).iter()) {
                *o += a * s;
            }
        }
    }

    /// A uniform draw from the ellipsoid.
    pub fn sample(&self, rng: &mut Xoshiro256PlusPlus, v: &mut [f64], out: &mut [f64]) {
        unit_ball(rng, v);
        out.copy_from_slice(&self.center);
        self.add_mapped(v, out);
    }

    /// A uniform draw from the ellipsoid's shape scaled by `scale` and centred on `from`: the
    /// random-walk proposal.
    pub fn step(&self, rng: &mut Xoshiro256PlusPlus, from: &[f64], scale: f64, v: &mut [f64], out: &mut [f64]) {
        unit_ball(rng, v);
        v.iter_mut().for_each(|x| *x *= scale);
        out.copy_from_slice(from);
        self.add_mapped(v, out);
    }
}

/// A uniform draw from the unit ball: a normal direction, radius `U^(1/d)`.
fn unit_ball(rng: &mut Xoshiro256PlusPlus, v: &mut [f64]) {
    loop {
        let mut norm2 = 0.0;
        for x in v.iter_mut() {
            *x = standard_normal(rng);
            norm2 += *x * *x;
        }
        if norm2 > 0.0 {
            let u: f64 = rng.random();
            let scale = math::powf(u, 1.0 / v.len() as f64) / norm2.sqrt();
            v.iter_mut().for_each(|x| *x *= scale);
            return;
        }
    }
}

/// A union of ellipsoids covering a point set.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bound {
    ellipsoids: Vec<Ellipsoid>,
    /// Cumulative volume fractions, for choosing an ellipsoid in proportion to its volume.
    cumulative: Vec<f64>,
    log_volume_sum: f64,
}

/// How to build a [`Bound`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct BoundSettings {
    /// Split into several ellipsoids where that at least halves the volume.
    pub multi: bool,
    /// Volume enlargement factor applied to every ellipsoid (≥ 1).
    pub enlarge: f64,
    /// ln of the prior volume the points are expected to fill; an ellipsoid holding a fraction `f` of
    /// the points is first grown to at least `f` times this volume, since point sets understate the
    /// region they were drawn from.
    pub log_volume_floor: f64,
}

impl Bound {
    /// `None` without points.
    pub fn new(points: &[&[f64]], settings: BoundSettings) -> Option<Bound> {
        let root = Ellipsoid::bounding(points)?;
        let d = root.dim();
        let min_points = (2 * d).max(d + 2);
        let parts = if settings.multi { split(points.to_vec(), root, min_points) } else { vec![(root, points.len())] };
        let total = points.len() as f64;
        let ellipsoids: Vec<Ellipsoid> = parts
            .into_iter()
            .map(|(mut e, count)| {
                let floor = settings.log_volume_floor + math::ln(count as f64 / total);
                let target = e.log_volume().max(floor) + math::ln(settings.enlarge.max(1.0));
                e.scale_to_log_volume(target);
                e
            })
            .collect();
        let max = ellipsoids.iter().map(Ellipsoid::log_volume).fold(f64::NEG_INFINITY, f64::max);
        let mut cumulative = Vec::with_capacity(ellipsoids.len());
        let mut sum = 0.0;
        for e in &ellipsoids {
            sum += math::exp(e.log_volume() - max);
            cumulative.push(sum);
        }
        cumulative.iter_mut().for_each(|c| *c /= sum);
        Some(Bound { ellipsoids, cumulative, log_volume_sum: max + math::ln(sum) })
    }

    pub fn len(&self) -> usize {
        self.ellipsoids.len()
    }

    /// ln of the summed volumes (overlaps counted more than once).
    pub fn log_volume_sum(&self) -> f64 {
        self.log_volume_sum
    }

    fn count_containing(&self, x: &[f64]) -> usize {
        self.ellipsoids.iter().filter(|e| e.contains(x)).count()
    }

    /// A uniform draw from the union: an ellipsoid chosen by volume, a point in it, kept with
    /// probability 1/(number of ellipsoids containing it) so overlaps are not oversampled.
    pub fn sample(&self, rng: &mut Xoshiro256PlusPlus, v: &mut [f64], out: &mut [f64]) {
        loop {
            let u: f64 = rng.random();
            let k = self.cumulative.partition_point(|&c| c < u).min(self.ellipsoids.len() - 1);
            self.ellipsoids[k].sample(rng, v, out);
            let q = self.count_containing(out);
            if q <= 1 || rng.random::<f64>() * (q as f64) < 1.0 {
                return;
            }
        }
    }

    /// The ellipsoid whose shape guides a random-walk step from `x`: the first containing it, else the
    /// nearest in its own metric.
    pub fn ellipsoid_for(&self, x: &[f64]) -> &Ellipsoid {
        let mut best = (f64::INFINITY, 0);
        for (k, e) in self.ellipsoids.iter().enumerate() {
            let r2 = e.distance2(x);
            if r2 <= 1.0 {
                return e;
            }
            if r2 < best.0 {
                best = (r2, k);
            }
        }
        &self.ellipsoids[best.1]
    }
}

/// Recursively split `points` (bounded by `ell`) in two while that pays. Each extra ellipsoid has
/// `p = d(d+3)/2` parameters fitted to the same `N` points, so a split must shrink the log-volume by at
/// least `p ln N / N` per extra ellipsoid (an information-criterion penalty, the threshold dynesty
/// uses). The penalty grows fast with the dimension: there small clusters have noisy covariances, and
/// splitting a unimodal region into their ellipsoids leaves parts of it uncovered (a flat ln 2 let
/// nested sampling overestimate ln Z by ~2σ in 10-D). A split is kept when the two halves'
/// ellipsoids pass, or when their best further subdivision does. Clusters never shrink below
/// `min_points` (fewer cannot pin down a covariance).
fn split(points: Vec<&[f64]>, ell: Ellipsoid, min_points: usize) -> Vec<(Ellipsoid, usize)> {
    let n = points.len();
    if n < 2 * min_points {
        return vec![(ell, n)];
    }
    let Some([first, second]) = two_means(&points, &ell) else {
        return vec![(ell, n)];
    };
    if first.len() < min_points || second.len() < min_points {
        return vec![(ell, n)];
    }
    let (Some(e1), Some(e2)) = (Ellipsoid::bounding(&first), Ellipsoid::bounding(&second)) else {
        return vec![(ell, n)];
    };
    let d = ell.dim() as f64;
    let nf = n as f64;
    let penalty = 0.5 * d * (d + 3.0) * math::ln(nf) / nf;
    let pair_gain = ell.log_volume() - log_add(e1.log_volume(), e2.log_volume());
    let mut parts = split(first, e1, min_points);
    parts.extend(split(second, e2, min_points));
    let parts_volume = parts.iter().map(|(e, _)| e.log_volume()).fold(f64::NEG_INFINITY, log_add);
    let parts_gain = ell.log_volume() - parts_volume;
    if pair_gain >= penalty || parts_gain >= penalty * (parts.len() - 1) as f64 { parts } else { vec![(ell, n)] }
}

fn log_add(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    if m == f64::NEG_INFINITY { m } else { m + math::ln(math::exp(a - m) + math::exp(b - m)) }
}

/// k-means with two clusters in the parent ellipsoid's unit-ball frame (so distances are Mahalanobis
/// distances), started from the ends of the longest axis. `None` if a cluster ends up empty.
fn two_means<'a>(points: &[&'a [f64]], ell: &Ellipsoid) -> Option<[Vec<&'a [f64]>; 2]> {
    let d = ell.dim();
    let mut y = vec![0.0; d];
    let white: Vec<Vec<f64>> = points
        .iter()
        .map(|p| {
            ell.whiten(p, &mut y);
            y.clone()
        })
        .collect();
    let major = (0..d).fold(0, |best, k| if ell.radii[k] > ell.radii[best] { k } else { best });
    let mut centers = [vec![0.0; d], vec![0.0; d]];
    centers[0][major] = 0.5;
    centers[1][major] = -0.5;
    let mut labels = vec![2u8; white.len()];
    for _ in 0..KMEANS_PASSES {
        let mut changed = false;
        for (label, w) in labels.iter_mut().zip(&white) {
            let d0: f64 = w.iter().zip(&centers[0]).map(|(a, b)| (a - b) * (a - b)).sum();
            let d1: f64 = w.iter().zip(&centers[1]).map(|(a, b)| (a - b) * (a - b)).sum();
            let new = u8::from(d1 < d0);
            changed |= *label != new;
            *label = new;
        }
        if !changed {
            break;
        }
        let mut counts = [0usize; 2];
        centers.iter_mut().for_each(|c| c.fill(0.0));
        for (&label, w) in labels.iter().zip(&white) {
            let l = label as usize;
            counts[l] += 1;
            for (c, x) in centers[l].iter_mut().zip(w) {
                *c += x;
            }
        }
        if counts.contains(&0) {
            return None;
        }
        for (c, &count) in centers.iter_mut().zip(&counts) {
            c.iter_mut().for_each(|x| *x /= count as f64);
        }
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for (&label, &p) in labels.iter().zip(points) {
        if label == 0 { a.push(p) } else { b.push(p) }
    }
    (!a.is_empty() && !b.is_empty()).then_some([a, b])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn unit_ball_volumes() {
        let expected =
            [2.0, std::f64::consts::PI, 4.0 / 3.0 * std::f64::consts::PI, 0.5 * math::powi(std::f64::consts::PI, 2)];
        for (d, v) in expected.iter().enumerate() {
            assert!((ln_unit_ball_volume(d + 1) - math::ln(*v)).abs() < 1e-14, "d = {}", d + 1);
        }
        // V_10 = π⁵/120.
        assert!((ln_unit_ball_volume(10) - math::ln(math::powi(std::f64::consts::PI, 5) / 120.0)).abs() < 1e-13);
    }

    fn cloud(rng: &mut Xoshiro256PlusPlus, n: usize, center: &[f64], scale: &[f64]) -> Vec<Vec<f64>> {
        (0..n).map(|_| center.iter().zip(scale).map(|(c, s)| c + s * standard_normal(rng)).collect()).collect()
    }

    #[test]
    fn bounding_ellipsoid_contains_its_points_and_samples_uniformly() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let points = cloud(&mut rng, 300, &[0.5, 0.5, 0.5], &[0.1, 0.02, 0.05]);
        let refs: Vec<&[f64]> = points.iter().map(Vec::as_slice).collect();
        let e = Ellipsoid::bounding(&refs).unwrap();
        assert!(points.iter().all(|p| e.distance2(p) <= 1.0 + 1e-12));
        assert!(points.iter().any(|p| e.distance2(p) > 1.0 - 1e-9));
        // Uniform draws: the fraction inside the half-size copy is 2⁻³.
        let mut inner = e.clone();
        inner.scale_to_log_volume(e.log_volume() - 3.0 * std::f64::consts::LN_2);
        let (mut v, mut x) = (vec![0.0; 3], vec![0.0; 3]);
        let n = 20_000;
        let inside = (0..n)
            .filter(|_| {
                e.sample(&mut rng, &mut v, &mut x);
                assert!(e.contains(&x));
                inner.contains(&x)
            })
            .count();
        let fraction = inside as f64 / n as f64;
        assert!((fraction - 0.125).abs() < 0.01, "{fraction}");
    }

    #[test]
    fn separated_clusters_get_their_own_ellipsoids() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(6);
        let mut points = cloud(&mut rng, 200, &[0.2, 0.2], &[0.02, 0.02]);
        points.extend(cloud(&mut rng, 200, &[0.8, 0.7], &[0.02, 0.03]));
        let refs: Vec<&[f64]> = points.iter().map(Vec::as_slice).collect();
        let settings = BoundSettings { multi: true, enlarge: 1.0, log_volume_floor: f64::NEG_INFINITY };
        let bound = Bound::new(&refs, settings).unwrap();
        assert!(bound.len() >= 2);
        let single = Bound::new(&refs, BoundSettings { multi: false, ..settings }).unwrap();
        assert_eq!(single.len(), 1);
        assert!(bound.log_volume_sum() < single.log_volume_sum() - 2.0);
        assert!(points.iter().all(|p| bound.count_containing(p) >= 1));
        // Draws land near both clusters.
        let (mut v, mut x) = (vec![0.0; 2], vec![0.0; 2]);
        let mut left = 0;
        for _ in 0..2000 {
            bound.sample(&mut rng, &mut v, &mut x);
            left += usize::from(x[0] < 0.5);
        }
        assert!((700..1300).contains(&left), "{left}");
    }

    #[test]
    fn volume_floor_and_enlargement() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let points = cloud(&mut rng, 100, &[0.5, 0.5], &[0.01, 0.01]);
        let refs: Vec<&[f64]> = points.iter().map(Vec::as_slice).collect();
        let tight =
            Bound::new(&refs, BoundSettings { multi: false, enlarge: 1.0, log_volume_floor: f64::NEG_INFINITY })
                .unwrap();
        let enlarged =
            Bound::new(&refs, BoundSettings { multi: false, enlarge: 2.0, log_volume_floor: f64::NEG_INFINITY })
                .unwrap();
        assert!((enlarged.log_volume_sum() - tight.log_volume_sum() - math::ln(2f64)).abs() < 1e-12);
        let floored =
            Bound::new(&refs, BoundSettings { multi: false, enlarge: 1.0, log_volume_floor: math::ln(0.1f64) })
                .unwrap();
        assert!((floored.log_volume_sum() - math::ln(0.1f64)).abs() < 1e-12);
    }
}
