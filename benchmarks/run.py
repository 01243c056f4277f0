"""matcalc benchmarks: one command, every ratio measured in the same run.

    python benchmarks/run.py                 # everything (about 5 minutes on 2 cores)
    python benchmarks/run.py --quick         # fewer repeats, L up to 32 (about a minute)
    python benchmarks/run.py --only speed    # or: derivation, sympy, cookbook

1. speed: the generated backward pass of a 4-layer tanh network (width 512, batch 256, float64
   and float32) against the hand-written NumPy pass of benchmarks/handwritten.py, PyTorch
   autograd and jax.jit(jax.grad) where they are installed (optional: pip install
   "matcalc-symbolic[bench]"), and the generated code running on torch tensors (xp=torch).
   Contenders run interleaved, round after round, and each time is the median over the rounds.
2. derivation: parse -> gradient of every weight and bias -> generated module source, for an
   L-layer network, L = 1, 2, 4, ..., 128 (median of repeats; the rules are derived once per
   process and cached, and the first call in a fresh process is reported apart).
3. sympy: SymPy's MatrixSymbol.diff on the same networks, and on deep linear networks (which it
   can differentiate), each attempt in a subprocess with a time limit.
4. cookbook: median derivation time (gradient and generated source) over the Matrix Cookbook
   identities of tests/cookbook/identities.py.

Threads are pinned (--threads, default 1) for every contender: OMP/OpenBLAS/MKL variables,
torch.set_num_threads and XLA's flags are set before the libraries load.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats, L up to 32")
    p.add_argument("--threads", type=int, default=1, help="threads for every library (1)")
    p.add_argument("--rounds", type=int, default=None, help="timing rounds for speed")
    p.add_argument("--only", choices=["speed", "derivation", "sympy", "cookbook"],
                   action="append", help="run only these sections (repeatable)")
    p.add_argument("--sympy-limit", type=float, default=60.0,
                   help="seconds allowed for each SymPy attempt (60)")
    return p.parse_args(argv)


def pin_threads(n: int) -> dict:
    env = {name: str(n) for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                      "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")}
    env["XLA_FLAGS"] = (f"--xla_cpu_multi_thread_eigen={'true' if n > 1 else 'false'} "
                        f"intra_op_parallelism_threads={n}")
    os.environ.update(env)
    return env


ARGS = parse_args() if __name__ == "__main__" else None
THREAD_ENV: dict = {}
if ARGS is not None:
    THREAD_ENV = pin_threads(ARGS.threads)       # before numpy, torch or jax load

import numpy as np  # noqa: E402

sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
import matcalc as mc  # noqa: E402
import handwritten  # noqa: E402


def median_ms(times) -> float:
    return 1000 * statistics.median(times)


def table(header, rows) -> str:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] +
                     [line(r) for r in rows])


# ---------------------------------------------------------------------------------------------
# The model, as matcalc text
# ---------------------------------------------------------------------------------------------

def mlp_text(layers: int, activation: str = "tanh"):
    """(text, shapes, wrt) of sum((f(W_L @ ... f(W1 @ X + b1) ... + b_L) - Y) ** 2) / m."""
    dims = ["n"] + [f"h{k}" for k in range(1, layers)] + ["c"]
    shapes = {"X": ("n", "m"), "Y": ("c", "m")}
    wrt, e = [], "X"
    for k in range(1, layers + 1):
        shapes[f"W{k}"] = (dims[k], dims[k - 1])
        shapes[f"b{k}"] = (dims[k],)
        wrt += [f"W{k}", f"b{k}"]
        e = f"{activation}(W{k} @ {e} + b{k})" if activation else \
            f"W{k} @ ({e})" if k > 1 else f"W{k} @ {e}"          # W2 @ (W1 @ X), as SymPy's
    if not activation:
        wrt = [w for w in wrt if w.startswith("W")]
        shapes = {k: v for k, v in shapes.items() if not k.startswith("b")}
    return f"sum(({e} - Y) ** 2) / m", shapes, wrt


# ---------------------------------------------------------------------------------------------
# 1. Speed
# ---------------------------------------------------------------------------------------------

def speed(args) -> str:
    layers, width, batch = 4, 512, 256
    text, shapes, wrt = mlp_text(layers)
    code = mc.backward(text, wrt=wrt, shapes=shapes)
    rounds = args.rounds or (6 if args.quick else 25)
    out = [f"## Speed: {layers}-layer tanh network, width {width}, batch {batch}, "
           f"{args.threads} thread(s), median of {rounds} interleaved rounds\n"]
    try:
        import torch
        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
    try:
        import jax
        jax.config.update("jax_enable_x64", True)
    except ImportError:
        jax = None
    versions = [f"numpy {np.__version__}"] + ([f"torch {torch.__version__}"] if torch else []) \
        + ([f"jax {jax.__version__}"] if jax else [])
    out.append("Versions: " + ", ".join(versions) + "\n")
    for dtype in (np.float64, np.float32):
        rng = np.random.default_rng(0)
        weights = [(rng.standard_normal((width, width)) / np.sqrt(width)).astype(dtype)
                   for _ in range(layers)]
        biases = [(0.1 * rng.standard_normal((width, 1))).astype(dtype) for _ in range(layers)]
        X = rng.standard_normal((width, batch)).astype(dtype)
        Y = rng.uniform(-1, 1, (width, batch)).astype(dtype)
        values = {"X": X, "Y": Y}
        for k in range(layers):
            values[f"W{k + 1}"], values[f"b{k + 1}"] = weights[k], biases[k][:, 0]
        contenders = _contenders(code, values, weights, biases, X, Y, torch, jax)
        _check_agreement(contenders, dtype)
        times = {name: {"forward": [], "backward": [], "total": []} for name in contenders}
        names = list(contenders)
        for r in range(rounds + 2):                    # two warm-up rounds
            order = list(names)                        # shuffled (seeded): no contender always
            random.Random(r).shuffle(order)            # follows the same one (see models.py)
            for name in order:
                c = contenders[name]
                t0 = time.perf_counter()
                kept = c["forward"]()
                t1 = time.perf_counter()
                c["backward"](kept)
                t2 = time.perf_counter()
                if r >= 2:
                    times[name]["forward"].append(t1 - t0)
                    times[name]["backward"].append(t2 - t1)
                    times[name]["total"].append(t2 - t0)
        base = median_ms(times["hand-written NumPy"]["backward"])
        rows = []
        for name, c in contenders.items():
            f, b = median_ms(times[name]["forward"]), median_ms(times[name]["backward"])
            total = median_ms(times[name]["total"])
            if c.get("fused"):            # the backward is measured with its forward
                b = total - f
            rows.append([name, f"{f:.2f}", f"{b:.2f}", f"{total:.2f}", f"{b / base:.3f}",
                         f"{b / f:.2f}"])
        out.append(f"### {np.dtype(dtype).name}\n")
        out.append(table(["contender", "forward ms", "backward ms", "forward+backward ms",
                          "backward / hand-written", "backward / forward"], rows))
        out.append("")
    out.append("PyTorch and JAX rows: their backward runs with its forward (autograd records the "
               "graph, jax.grad traces both), so it is (forward+backward) - forward.\n")
    return "\n".join(out)


def _contenders(code, values, weights, biases, X, Y, torch, jax) -> dict:
    layers = len(weights)
    c = {
        "hand-written NumPy": {
            "forward": lambda: handwritten.forward(weights, biases, X, Y)[1],
            "backward": lambda kept: handwritten.backward(weights, kept),
            "grads": lambda: [g for pair in handwritten.backward(
                weights, handwritten.forward(weights, biases, X, Y)[1]) for g in pair],
        },
        "matcalc generated (NumPy)": {
            "forward": lambda: code.forward(**values)[1],
            "backward": lambda kept: code.backward(kept),
            "grads": lambda: list(code.backward(code.forward(**values)[1])),
        },
    }
    if torch is not None:
        tv = {k: torch.asarray(v) for k, v in values.items()}
        c["matcalc generated (xp=torch)"] = {
            "forward": lambda: code.forward(**tv, xp=torch)[1],
            "backward": lambda kept: code.backward(kept, xp=torch),
            "grads": lambda: [g.numpy() for g in code.backward(code.forward(**tv, xp=torch)[1],
                                                               xp=torch)],
        }
        params = []
        for k in range(layers):
            params += [torch.asarray(weights[k]).clone().requires_grad_(True),
                       torch.asarray(biases[k]).clone().requires_grad_(True)]
        tX, tY = torch.asarray(X), torch.asarray(Y)

        def torch_loss():
            A = tX
            for k in range(layers):
                A = torch.tanh(params[2 * k] @ A + params[2 * k + 1])
            return torch.sum((A - tY) ** 2) / tX.shape[1]

        def torch_grads(_kept=None):
            return torch.autograd.grad(torch_loss(), params)

        c["PyTorch autograd"] = {
            "forward": lambda: torch_loss().detach(),
            "backward": lambda kept: torch_grads(),
            "fused": True,
            "grads": lambda: [g.numpy() for g in torch_grads()],
        }
    if jax is not None:
        import jax.numpy as jnp
        jparams = [jnp.asarray(a) for k in range(layers) for a in (weights[k], biases[k])]
        jX, jY = jnp.asarray(X), jnp.asarray(Y)

        def jax_loss(ps, X, Y):
            A = X
            for k in range(layers):
                A = jnp.tanh(ps[2 * k] @ A + ps[2 * k + 1])
            return jnp.sum((A - Y) ** 2) / X.shape[1]

        fwd = jax.jit(jax_loss)
        grad = jax.jit(jax.grad(jax_loss))

        def jax_grads(_kept=None):
            return [g.block_until_ready() for g in grad(jparams, jX, jY)]

        c["jax.jit(jax.grad)"] = {
            "forward": lambda: fwd(jparams, jX, jY).block_until_ready(),
            "backward": jax_grads,
            "fused": True,
            "grads": lambda: [np.asarray(g) for g in jax_grads()],
        }
    return c


def _check_agreement(contenders, dtype) -> None:
    """Every contender computes the same gradients (else the timing means nothing)."""
    reference = [np.reshape(g, -1) for g in contenders["hand-written NumPy"]["grads"]()]
    tolerance = 1e-8 if dtype == np.float64 else 2e-3
    for name, c in contenders.items():
        got = [np.reshape(np.asarray(g, dtype=np.float64), -1) for g in c["grads"]()]
        for g, want in zip(got, reference):
            scale = np.max(np.abs(want)) + 1e-30
            err = np.max(np.abs(g - want)) / scale
            if not err < tolerance:
                raise SystemExit(f"{name} disagrees with the hand-written gradients: {err:.2e}")


# ---------------------------------------------------------------------------------------------
# 2. Derivation time
# ---------------------------------------------------------------------------------------------

LAYER_COUNTS = [1, 2, 4, 8, 16, 32, 64, 128]


def derive_time(layers: int, activation: str = "tanh", repeats: int = 3) -> tuple[float, int]:
    """Median CPU seconds (this process's: other processes on a busy machine do not count) to
    derive an L-layer network's backward module from its text, and the module's line count."""
    text, shapes, wrt = mlp_text(layers, activation)
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        source = mc.backward(text, wrt=wrt, shapes=shapes).source
        times.append(time.process_time() - t0)
    return statistics.median(times), len(source.splitlines())


def cold_time(layers: int) -> float:
    """The first derivation in a fresh process (rules derived with SymPy, then cached)."""
    script = ("import sys, time; sys.path[:0] = [%r, %r]; import run, matcalc; "
              "t = time.process_time(); run.derive_time(%d, repeats=1); "
              "print(time.process_time() - t)" % (str(ROOT), str(HERE), layers))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env={**os.environ, **THREAD_ENV}, timeout=600, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def derivation(args) -> str:
    counts = [L for L in LAYER_COUNTS if not args.quick or L <= 32]
    derive_time(2, repeats=1)                             # the rules, once
    rows, previous = [], None
    for L in counts:
        seconds, lines = derive_time(L, repeats=3 if args.quick else 7)
        growth = "" if previous is None else f"{seconds / previous:.2f}"
        rows.append([L, f"{1000 * seconds:.1f}", f"{1000 * seconds / L:.2f}", growth, lines])
        previous = seconds
    out = ["## Derivation time: parse -> every weight and bias gradient -> module source\n",
           "(median CPU time of this process over repeats; the rules are cached after the "
           "first call)\n",
           table(["layers L", "ms", "ms per layer", "x previous", "source lines"], rows), ""]
    out.append(f"First call in a fresh process (includes deriving the rules with SymPy): "
               f"L = 1: {cold_time(1):.2f} s, L = {counts[-1]}: {cold_time(counts[-1]):.2f} s\n")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# 3. SymPy
# ---------------------------------------------------------------------------------------------

def sympy_section(args) -> str:
    counts = [L for L in LAYER_COUNTS if not args.quick or L <= 32]
    out = [f"## SymPy MatrixSymbol.diff on the same models ({args.sympy_limit:.0f} s per "
           f"attempt, each in a subprocess; SymPy s: its time after import; matcalc ms: "
           f"CPU time for the same network, module source included)\n"]
    for model, label in (("tanh", "tanh network, squared error / m (the models above)"),
                         ("tanh-sum", "tanh network, loss sum(A_L) (no squared error)"),
                         ("linear", "deep linear network W_L @ (... @ (W1 @ X)), "
                                    "squared error / m")):
        rows = []
        for L in counts:
            status, seconds, ok, total = _sympy_attempt(model, L, args.sympy_limit)
            mine = ""
            if model == "linear":
                mine = f"{1000 * derive_time(L, activation='', repeats=3)[0]:.1f}"
            elif model == "tanh":
                mine = f"{1000 * derive_time(L, repeats=3)[0]:.1f}"
            rows.append([L, status, f"{ok}/{total}", f"{seconds:.2f}", mine])
            if status == "time limit":
                break
        out.append(f"### {label}\n")
        out.append(table(["layers L", "SymPy", "gradients derived", "SymPy s", "matcalc ms"],
                         rows))
        out.append("")
    return "\n".join(out)


def _sympy_attempt(model: str, layers: int, limit: float):
    cmd = [sys.executable, str(HERE / "sympy_attempt.py"), model, str(layers)]
    t0 = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=limit,
                              env={**os.environ, **THREAD_ENV})
    except subprocess.TimeoutExpired:
        return "time limit", limit, "?", "?"
    last = (done.stdout.strip().splitlines() or
            [f"error 0 ? {time.perf_counter() - t0} {done.stderr.strip()[-60:]}"])[-1].split()
    status, ok, total, seconds = last[0], last[1], last[2], float(last[3])
    return ("ok" if status == "ok" else "fails: " + " ".join(last[4:])), seconds, ok, total


# ---------------------------------------------------------------------------------------------
# 4. Cookbook
# ---------------------------------------------------------------------------------------------

def cookbook(args) -> str:
    sys.path.insert(0, str(ROOT / "tests"))
    from cookbook.identities import IDENTITIES
    for _label, expression, wrt, _book in IDENTITIES:    # the rules, once
        mc.grad(expression, wrt).numpy_source()
    per = []
    for _label, expression, wrt, _book in IDENTITIES:
        times = []
        for _ in range(3 if args.quick else 7):
            t0 = time.process_time()
            mc.grad(expression, wrt).numpy_source()
            times.append(time.process_time() - t0)
        per.append(statistics.median(times))
    return ("## Cookbook: derivation time per identity (gradient and generated source)\n\n" +
            table(["identities", "median ms", "max ms", "total ms"],
                  [[len(per), f"{median_ms(per):.2f}", f"{1000 * max(per):.2f}",
                    f"{1000 * sum(per):.1f}"]]) + "\n")


def main(args) -> None:
    sections = args.only or ["speed", "derivation", "sympy", "cookbook"]
    print(f"# matcalc benchmarks ({'quick' if args.quick else 'full'}; threads pinned to "
          f"{args.threads}; Python {sys.version.split()[0]}; {os.cpu_count()} cores)\n")
    for name in sections:
        print({"speed": speed, "derivation": derivation, "sympy": sympy_section,
               "cookbook": cookbook}[name](args), flush=True)


if __name__ == "__main__":
    main(ARGS)
