"""parfit's optimisers on a Python function: CMA-ES (and Nelder–Mead) minimising an objective written in numpy,
for a model that lives in Python rather than in a model file.

The objective is the least-squares cost of a damped oscillation x(t) = a·exp(-k·t)·cos(w·t) against noisy
samples of it (a = 2, k = 0.3, w = 1.7). Given scalar, parfit calls it once per candidate on the calling thread;
given vectorised (`vectorised=True`) it receives a whole generation as a 2-D array and returns one cost per row.

Run from the repository root:  python examples/python/minimise.py
"""

import numpy as np

import parfit

rng = np.random.default_rng(0)
t = np.linspace(0.0, 10.0, 200)
observed = 2.0 * np.exp(-0.3 * t) * np.cos(1.7 * t) + rng.normal(0.0, 0.05, t.size)


def sse(x):
    """One candidate (a, k, w) → the sum of squared errors."""
    a, k, w = x
    return float(np.sum((a * np.exp(-k * t) * np.cos(w * t) - observed) ** 2))


def sse_batch(xs):
    """A batch of candidates, one per row → their costs, computed together."""
    a, k, w = (xs[:, [i]] for i in range(3))
    return np.sum((a * np.exp(-k * t) * np.cos(w * t) - observed) ** 2, axis=1)


x0 = [1.0, 0.1, 1.5]
bounds = [(0.0, 5.0), (0.0, 2.0), (0.5, 3.0)]

result = parfit.minimise(sse, x0, bounds, algorithm="cmaes", seed=1)
print(f"CMA-ES:          x = {np.round(result.x, 6)}, SSE {result.value:.6f}, {result.evaluations} evaluations, "
      f"{result.iterations} generations ({result.termination})")

batched = parfit.minimise(sse_batch, x0, bounds, algorithm="cmaes", seed=1, vectorised=True)
print(f"CMA-ES, batched: x = {np.round(batched.x, 6)}, SSE {batched.value:.6f}, {batched.evaluations} evaluations")

simplex = parfit.minimise(sse, x0, bounds, algorithm="nelder_mead")
print(f"Nelder–Mead:     x = {np.round(simplex.x, 6)}, SSE {simplex.value:.6f}, {simplex.evaluations} evaluations")
