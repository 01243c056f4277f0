"""Hessians: matcalc's generated code against JAX, PyTorch and the hand-written closed form.

Run:  python benchmarks/hessians.py [--repeats R] [--threads T]
      (JAX and PyTorch are optional: pip install jax, pip install torch==2.13.0 — the CPU build)

Cases (issue 6): the Hessian of x^T A x at n = 2048, and of the logistic-regression loss
sum(softplus(X w)) - y^T X w at 2048 x 256, in float64 and float32. Every contender computes the
full Hessian; results are compared for agreement before timing. Times are medians of R runs
(21 by default, after a warm-up, which includes JAX's compilation), the contenders interleaved in
a shuffled order each round so that load from elsewhere falls on all of them alike; ratios are
against matcalc's time in the same rounds. Threads are the libraries' defaults unless --threads
pins BLAS and PyTorch to T threads (and XLA to one when T = 1); NumPy's elementwise code is
single-threaded either way. The machine is noisy: read the medians and ratios, not single runs.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time

ARGS = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ARGS.add_argument("--repeats", type=int, default=21, help="timed rounds (default 21)")
ARGS.add_argument("--threads", type=int, default=None,
                  help="pin BLAS and PyTorch (XLA too, for 1) to this many threads")
OPTIONS = ARGS.parse_args() if __name__ == "__main__" else ARGS.parse_args([])
if OPTIONS.threads is not None:      # read by the libraries when they load: set before importing
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(OPTIONS.threads)
    if OPTIONS.threads == 1:         # XLA's CPU client has no thread count, only this switch
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   " --xla_cpu_multi_thread_eigen=false").strip()

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import matcalc as mc  # noqa: E402


def median_times(contenders: dict, repeats: int) -> dict:
    """Median time of each contender over ``repeats`` rounds, each round running every contender
    once in a shuffled (seeded) order, after one warm-up call each (and JIT compilation)."""
    for f in contenders.values():
        f()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    order, shuffle = list(contenders), random.Random(0).shuffle
    for _ in range(repeats):
        shuffle(order)
        for name in order:
            start = time.perf_counter()
            contenders[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def optional(name):
    try:
        module = __import__(name)
    except ImportError:
        return None
    if name == "jax":
        module.config.update("jax_enable_x64", True)    # float64 stays float64 (float32 too)
    if name == "torch" and OPTIONS.threads is not None:
        module.set_num_threads(OPTIONS.threads)
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
    times = median_times(contenders, OPTIONS.repeats)
    base = times["matcalc (generated)"]
    print(f"\n{title}")
    print(f"  {'contender':28s} {'median':>12s} {'÷ matcalc':>10s}")
    for name, t in times.items():
        print(f"  {name:28s} {t * 1e3:10.3f} ms {t / base:10.2f}")


def main() -> None:
    threads = "library-default threads" if OPTIONS.threads is None else \
        f"{OPTIONS.threads} thread(s) for BLAS, XLA and PyTorch"
    print(f"Hessian benchmark (medians of {OPTIONS.repeats} interleaved rounds; {threads};",
          f"numpy {np.__version__})")
    for dtype in (np.float64, np.float32):
        name = np.dtype(dtype).name
        run_case(f"x^T A x, n = 2048, {name}", contenders_quadratic(2048, dtype), dtype)
        run_case(f"logistic regression, 2048 x 256, {name}", contenders_logistic(2048, 256, dtype),
                 dtype)


if __name__ == "__main__":
    main()
