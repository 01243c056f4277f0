"""Hessians: matcalc's generated code against JAX, PyTorch and the hand-written closed form.

Run:  python benchmarks/hessians.py            (JAX and PyTorch are optional: pip install jax,
                                                 pip install torch==2.13.0 — the CPU build)

Cases (issue 6): the Hessian of x^T A x at n = 2048, and of the logistic-regression loss
sum(softplus(X w)) - y^T X w at 2048 x 256, in float64 and float32. Every contender computes the
full Hessian; results are compared for agreement before timing. Times are medians of repeated
runs (after a warm-up, which includes JAX's compilation); ratios are against matcalc's time in
the same run. The machine is noisy: read the medians and ratios, not single runs.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import matcalc as mc  # noqa: E402

REPEATS = 7


def median_time(f, repeats: int = REPEATS) -> float:
    f()                                   # warm-up (and JIT compilation)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def optional(name):
    try:
        module = __import__(name)
    except ImportError:
        return None
    if name == "jax":
        module.config.update("jax_enable_x64", True)    # float64 stays float64 (float32 too)
    return module


def contenders_quadratic(n: int, dtype):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((n, n)).astype(dtype)
    x = rng.standard_normal(n).astype(dtype)
    Av, xv = mc.Matrix("A", "n", "n"), mc.Vector("x", "n")
    generated = mc.hessian(xv.T @ Av @ xv, xv).numpy_function()
    out = {"matcalc (generated)": lambda: generated(x=x, A=A),
           "closed form A + A.T": lambda: A + A.T}
    jax = optional("jax")
    if jax is not None:
        jnp = jax.numpy
        Aj, xj = jnp.asarray(A), jnp.asarray(x)
        h = jax.jit(jax.hessian(lambda v: v @ Aj @ v))
        out["jax.jit(jax.hessian)"] = lambda: h(xj).block_until_ready()
    torch = optional("torch")
    if torch is not None:
        At, xt = torch.from_numpy(A), torch.from_numpy(x)
        out["torch.func.hessian"] = lambda: torch.func.hessian(lambda v: v @ At @ v)(xt)
    return out


def contenders_logistic(m: int, d: int, dtype):
    rng = np.random.default_rng(1)
    X = (rng.standard_normal((m, d)) / np.sqrt(d)).astype(dtype)
    w = rng.standard_normal(d).astype(dtype)
    y = (rng.uniform(size=m) < 0.5).astype(dtype)
    Xv, wv, yv = mc.Matrix("X", "m", "d"), mc.Vector("w", "d"), mc.Vector("y", "m")
    generated = mc.hessian(mc.sum(mc.softplus(Xv @ wv)) - yv.T @ Xv @ wv, wv).numpy_function()

    def closed():
        p = 0.5 + 0.5 * np.tanh(0.5 * (X @ w))
        return X.T @ ((p * (1 - p))[:, None] * X)

    out = {"matcalc (generated)": lambda: generated(X=X, w=w, y=y),
           "closed form X.T (d * X)": closed}
    jax = optional("jax")
    if jax is not None:
        jnp = jax.numpy
        Xj, yj, wj = jnp.asarray(X), jnp.asarray(y), jnp.asarray(w)
        h = jax.jit(jax.hessian(lambda v: jnp.sum(jax.nn.softplus(Xj @ v)) - yj @ Xj @ v))
        out["jax.jit(jax.hessian)"] = lambda: h(wj).block_until_ready()
    torch = optional("torch")
    if torch is not None:
        Xt, yt, wt = torch.from_numpy(X), torch.from_numpy(y), torch.from_numpy(w)
        f = lambda v: torch.nn.functional.softplus(Xt @ v).sum() - yt @ Xt @ v   # noqa: E731
        out["torch.func.hessian"] = lambda: torch.func.hessian(f)(wt)
    return out


def agree(results: dict, dtype) -> None:
    reference = np.asarray(results["matcalc (generated)"], dtype=np.float64)
    tol = 1e-8 if dtype == np.float64 else 2e-3
    for name, value in results.items():
        value = np.asarray(value, dtype=np.float64)
        err = np.max(np.abs(value - reference)) / max(1.0, np.max(np.abs(reference)))
        if err > tol:
            raise SystemExit(f"{name} disagrees with matcalc: relative error {err:.1e}")


def run_case(title: str, contenders: dict, dtype) -> None:
    agree({name: f() for name, f in contenders.items()}, dtype)
    times = {name: median_time(f) for name, f in contenders.items()}
    base = times["matcalc (generated)"]
    print(f"\n{title}")
    print(f"  {'contender':28s} {'median':>12s} {'÷ matcalc':>10s}")
    for name, t in times.items():
        print(f"  {name:28s} {t * 1e3:10.3f} ms {t / base:10.2f}")


def main() -> None:
    print("Hessian benchmark (medians of", REPEATS, "runs; threads as the libraries default;",
          f"numpy {np.__version__})")
    for dtype in (np.float64, np.float32):
        name = np.dtype(dtype).name
        run_case(f"x^T A x, n = 2048, {name}", contenders_quadratic(2048, dtype), dtype)
        run_case(f"logistic regression, 2048 x 256, {name}", contenders_logistic(2048, 256, dtype),
                 dtype)


if __name__ == "__main__":
    main()
