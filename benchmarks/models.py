"""Model benchmark: matcalc's generated gradients against hand-written NumPy, JAX and PyTorch.

    python benchmarks/models.py                        # every model, float64 and float32, 1 thread
    python benchmarks/models.py --quick                # smaller sizes, fewer rounds (a minute)
    python benchmarks/models.py --only attention --only layernorm --dtype float32 --rounds 41
    python benchmarks/models.py --threads 1 --threads 2 --json models.json

For each model the contenders compute every requested gradient from the model's inputs:

- hand-written NumPy: the reference, written as a careful engineer would (each value computed
  once, scaling the smaller operand of a product, in-place updates of its own temporaries);
  for the tanh MLP also benchmarks/handwritten.py, the reference of benchmarks/run.py; for
  attention and the norms also "hand-written fwd+bwd", which computes the layer's output too,
  the work matcalc backward() does (its own table gives backward()'s ratio to it);
- matcalc derive: ``mc.derive(text, wrt=..., shapes=..., domains=...).numpy_function()``;
- matcalc backward(): ``mc.backward(...)``'s ``forward`` then ``backward`` (which also computes
  the loss, or the model's output);
- jax.jit(jax.grad): of the loss, or of sum(G * f) for a model with an upstream gradient G;
- torch autograd: ``torch.autograd.grad`` of the loss, or of f with ``grad_outputs=G``.

JAX and PyTorch are optional (``pip install "matcalc-symbolic[bench]"``; take PyTorch's CPU build):
a contender whose library is missing is skipped with a note. JAX and PyTorch run the model's one
forward definition (``Model.output``, written once against a small table of operations), the
same definition that the tests differentiate by finite differences.

Before timing, every contender's gradients are compared with the hand-written ones
(np.allclose, tolerances by dtype), and the dtype each contender returns is recorded. Timing:
BLAS, OpenMP, XLA and PyTorch threads pinned before the libraries load, and the process kept to
that many cores (each --threads value runs in its own process); the contenders interleaved in
an order shuffled each round (so that none always follows the same one), after two warm-up
rounds; per contender the median and quartiles over the rounds, and its ratio
to the hand-written time of the same round (the table gives the median of these per-round
ratios). For the two MLPs a "GEMM floor" contender does only the matrix products that forward
and backward must do, with the same shapes, in the same rounds.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gc
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

MODEL_NAMES = ["mlp_tanh", "mlp_relu", "logistic", "softmax", "attention", "layernorm",
               "batchnorm", "factorisation", "triplet", "gru"]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, action="append",
                   help="threads for every library (default 1); repeat to run several "
                        "settings, each in its own process")
    p.add_argument("--dtype", choices=["float64", "float32", "both"], default="both")
    p.add_argument("--only", choices=MODEL_NAMES, action="append",
                   help="run only this model (repeatable)")
    p.add_argument("--rounds", type=int, default=None,
                   help="timed rounds per model and dtype (default 31; --quick: 7)")
    p.add_argument("--quick", action="store_true", help="smaller sizes and fewer rounds")
    p.add_argument("--json", metavar="FILE", help="write the raw numbers to FILE")
    p.add_argument("--overhead", action="store_true",
                   help="instead: the fixed cost of a call, on each model's tiny inputs")
    args = p.parse_args(argv)
    args.threads = args.threads or [1]
    if any(t < 1 for t in args.threads):
        p.error("--threads must be at least 1")
    return args


def pin_threads(n: int) -> list:
    """Keep every library to n threads: BLAS and OpenMP by their variables, XLA by its switch
    and by the process's CPU affinity (XLA sizes its thread pool by the cores it may use and
    otherwise ran a second thread here despite the switch), so the process runs on n cores
    when the machine has more. Read when the libraries load: call before importing them.
    Returns the cores the process may run on."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                 "NUMEXPR_NUM_THREADS"):
        os.environ[name] = str(n)
    if n == 1:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   " --xla_cpu_multi_thread_eigen=false").strip()
    if not hasattr(os, "sched_setaffinity"):        # not on macOS or Windows
        return []
    cores = sorted(os.sched_getaffinity(0))
    if n < len(cores):
        os.sched_setaffinity(0, cores[:n])
    return sorted(os.sched_getaffinity(0))


ARGS = parse_args() if __name__ == "__main__" else None
CORES: list = []
if ARGS is not None and len(ARGS.threads) == 1:
    CORES = pin_threads(ARGS.threads[0])    # before numpy, jax or torch load

import numpy as np  # noqa: E402

sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
import matcalc as mc  # noqa: E402
import handwritten  # noqa: E402


# the hand-written gradient that also computes the layer's output, as backward() does
HAND_PASS = "hand-written fwd+bwd"


# ---------------------------------------------------------------------------------------------
# The operations the model definitions use, for each array library
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Ops:
    """An array namespace ``xp`` (tanh, exp, sqrt, sum and mean with axis/keepdims) plus the few
    functions whose spelling differs between NumPy, jax.numpy and torch."""

    xp: object
    sigmoid: Callable
    relu: Callable
    softplus: Callable
    softmax: Callable          # softmax(x, axis)
    logsumexp: Callable        # logsumexp(x, axis), keeping the axis


def numpy_ops() -> Ops:
    def softmax(x, axis):
        e = np.exp(x - np.max(x, axis=axis, keepdims=True))
        return e / np.sum(e, axis=axis, keepdims=True)

    def logsumexp(x, axis):
        top = np.max(x, axis=axis, keepdims=True)
        return top + np.log(np.sum(np.exp(x - top), axis=axis, keepdims=True))

    return Ops(np, sigmoid=lambda x: 0.5 + 0.5 * np.tanh(0.5 * x),
               relu=lambda x: np.maximum(x, 0), softplus=lambda x: np.logaddexp(0, x),
               softmax=softmax, logsumexp=logsumexp)


def jax_ops() -> Ops:
    import jax
    import jax.numpy as jnp
    return Ops(jnp, sigmoid=jax.nn.sigmoid, relu=jax.nn.relu, softplus=jax.nn.softplus,
               softmax=lambda x, axis: jax.nn.softmax(x, axis=axis),
               logsumexp=lambda x, axis: jax.nn.logsumexp(x, axis=axis, keepdims=True))


def torch_ops() -> Ops:
    import torch
    return Ops(torch, sigmoid=torch.sigmoid, relu=torch.relu,
               softplus=torch.nn.functional.softplus,
               softmax=lambda x, axis: torch.softmax(x, dim=axis),
               logsumexp=lambda x, axis: torch.logsumexp(x, dim=axis, keepdim=True))


# ---------------------------------------------------------------------------------------------
# The models
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Model:
    """One benchmark model.

    ``inputs(size, dtype, rng)`` draws the values (named as in ``text``; G is the upstream
    gradient of a model whose output is not a scalar); ``output(ops, v)`` is the model's forward
    definition (the scalar loss, or the output f whose VJP with G is wanted);
    ``hand(v)`` the hand-written gradients in ``wrt`` order; ``gemms(v)``, for the MLPs, a
    function doing just the matrix products that forward and backward must do.
    """

    name: str
    title: str                 # what it is, with {size} fields filled from the size
    text: str                  # matcalc text
    shapes: dict
    wrt: list
    inputs: Callable
    output: Callable
    hand: Callable
    sizes: dict                # "default", "quick", "tiny": dimension sizes
    domains: dict = dataclasses.field(default_factory=dict)
    note: str = ""             # how it is written for matcalc, where not as NumPy would
    backward: bool = False     # also time mc.backward()'s forward + backward
    gemms: Callable | None = None
    extras: tuple = ()         # (name, function of v) of other hand-written versions to time

    @property
    def upstream(self) -> bool:
        return "G" in self.shapes


def normal(rng, shape, dtype, scale=1.0, mean=0.0):
    return (mean + scale * rng.standard_normal(shape)).astype(dtype)


def one_hot(rng, classes, count, dtype):
    Y = np.zeros((classes, count), dtype=dtype)
    Y[rng.integers(0, classes, count), np.arange(count)] = 1
    return Y


def sigmoid_inplace(z):
    """sigmoid(z) written over z (a temporary the caller owns): 0.5 + 0.5 tanh(z / 2)."""
    z *= 0.5
    np.tanh(z, out=z)
    z *= 0.5
    z += 0.5
    return z


# -- 4-layer tanh MLP (column convention, the network of benchmarks/handwritten.py) -----------

TANH_LAYERS = 4


def mlp_tanh_text():
    e = "X"
    for k in range(1, TANH_LAYERS + 1):
        e = f"tanh(W{k} @ {e} + b{k})"
    return f"sum(({e} - Y) ** 2) / m"


def mlp_tanh_inputs(s, dtype, rng):
    w, m = s["w"], s["m"]
    v = {}
    for k in range(1, TANH_LAYERS + 1):
        v[f"W{k}"] = normal(rng, (w, w), dtype, 1 / math.sqrt(w))
        v[f"b{k}"] = normal(rng, (w,), dtype, 0.1)
    v["X"] = normal(rng, (w, m), dtype)
    v["Y"] = rng.uniform(-1, 1, (w, m)).astype(dtype)
    return v


def mlp_tanh_output(o, v):
    A = v["X"]
    for k in range(1, TANH_LAYERS + 1):
        A = o.xp.tanh(v[f"W{k}"] @ A + v[f"b{k}"][:, None])
    return o.xp.sum((A - v["Y"]) ** 2) / v["X"].shape[1]


def mlp_tanh_hand(v):
    """Forward keeping the activations (tanh' = 1 - A ** 2 needs only them), 2/m applied once to
    the top delta (w x m) rather than to every dW (w x w), tanh and the bias added in place."""
    X = v["X"]
    weights = [v[f"W{k}"] for k in range(1, TANH_LAYERS + 1)]
    acts = [X]
    for k, W in enumerate(weights, 1):
        Z = W @ acts[-1]
        Z += v[f"b{k}"][:, None]
        acts.append(np.tanh(Z, out=Z))
    A = acts[-1]
    D = A - v["Y"]
    D *= 2 / X.shape[1]
    grads = []
    for k in range(TANH_LAYERS, 0, -1):
        slope = A * A                            # then 1 - A ** 2, in place
        np.subtract(1, slope, out=slope)
        D *= slope                               # d loss / d Z_k
        A = acts[k - 1]
        grads[:0] = [D @ A.T, D.sum(axis=1)]
        if k > 1:
            D = weights[k - 1].T @ D
    return grads


def mlp_tanh_run_py(v):
    """benchmarks/handwritten.py's forward and backward: benchmarks/run.py's reference."""
    weights = [v[f"W{k}"] for k in range(1, TANH_LAYERS + 1)]
    biases = [v[f"b{k}"][:, None] for k in range(1, TANH_LAYERS + 1)]
    _, cache = handwritten.forward(weights, biases, v["X"], v["Y"])
    return [g if i == 0 else g[:, 0]
            for dW, db in handwritten.backward(weights, cache) for i, g in enumerate((dW, db))]


def mlp_tanh_gemms(v):
    """The 11 products: W_k @ A_(k-1) forward, dZ_k @ A_(k-1).T and (below the top)
    W_k.T @ dZ_k backward, on stand-in arrays of the same shapes."""
    weights = [v[f"W{k}"] for k in range(1, TANH_LAYERS + 1)]
    acts = [v["X"]] + [np.tanh(W @ v["X"]) for W in weights[:-1]]   # any values of the shape
    deltas = [np.ones_like(v["Y"]) * 0.5 for _ in weights]

    def products():
        for W, A in zip(weights, acts):
            W @ A
        for k, (W, A, D) in enumerate(zip(weights, acts, deltas)):
            D @ A.T
            if k > 0:
                W.T @ D
    return products


MLP_TANH = Model(
    name="mlp_tanh", title="4-layer tanh MLP, width {w}, batch {m}, squared error",
    text=mlp_tanh_text(),
    shapes={**{f"W{k}": ("w", "w") for k in range(1, TANH_LAYERS + 1)},
            **{f"b{k}": ("w",) for k in range(1, TANH_LAYERS + 1)},
            "X": ("w", "m"), "Y": ("w", "m")},
    wrt=[n for k in range(1, TANH_LAYERS + 1) for n in (f"W{k}", f"b{k}")],
    inputs=mlp_tanh_inputs, output=mlp_tanh_output, hand=mlp_tanh_hand,
    sizes={"default": {"w": 512, "m": 256}, "quick": {"w": 256, "m": 128},
           "tiny": {"w": 4, "m": 3}},
    backward=True, gemms=mlp_tanh_gemms,
    extras=(("handwritten.py (run.py's)", mlp_tanh_run_py),))


# -- 2-layer ReLU MLP with a softmax cross-entropy (column convention) ------------------------

def mlp_relu_inputs(s, dtype, rng):
    n, h, c, m = s["n"], s["h"], s["c"], s["m"]
    return {"W1": normal(rng, (h, n), dtype, math.sqrt(2 / n)), "b1": normal(rng, (h,), dtype, 0.1),
            "W2": normal(rng, (c, h), dtype, math.sqrt(1 / h)), "b2": normal(rng, (c,), dtype, 0.1),
            "X": normal(rng, (n, m), dtype), "Y": one_hot(rng, c, m, dtype)}


def mlp_relu_output(o, v):
    Z2 = v["W2"] @ o.relu(v["W1"] @ v["X"] + v["b1"][:, None]) + v["b2"][:, None]
    return -o.xp.sum(v["Y"] * (Z2 - o.logsumexp(Z2, 0))) / v["X"].shape[1]


def softmax_columns_inplace(Z):
    """The softmax of each column of Z, written over Z."""
    Z -= Z.max(axis=0, keepdims=True)
    np.exp(Z, out=Z)
    Z /= Z.sum(axis=0, keepdims=True)
    return Z


def mlp_relu_hand(v):
    W1, W2, X, Y = v["W1"], v["W2"], v["X"], v["Y"]
    Z1 = W1 @ X
    Z1 += v["b1"][:, None]
    A1 = np.maximum(Z1, 0)
    Z2 = W2 @ A1
    Z2 += v["b2"][:, None]
    D2 = softmax_columns_inplace(Z2)
    D2 -= Y
    D2 *= 1 / X.shape[1]                    # c x m, the small operand: scaled once
    D1 = W2.T @ D2
    D1 *= Z1 > 0
    return D1 @ X.T, D1.sum(axis=1), D2 @ A1.T, D2.sum(axis=1)


def mlp_relu_gemms(v):
    """The 5 products: W1 @ X, W2 @ A1; D2 @ A1.T, W2.T @ D2, D1 @ X.T."""
    W1, W2, X = v["W1"], v["W2"], v["X"]
    A1 = np.maximum(W1 @ X, 0)
    D2 = np.ones((W2.shape[0], X.shape[1]), dtype=X.dtype) * 0.5
    D1 = np.ones_like(A1) * 0.5

    def products():
        W1 @ X
        W2 @ A1
        D2 @ A1.T
        W2.T @ D2
        D1 @ X.T
    return products


MLP_RELU = Model(
    name="mlp_relu",
    title="2-layer ReLU MLP, {n} -> {h} -> {c}, batch {m}, softmax cross-entropy",
    text="-sum(Y * log(softmax(W2 @ relu(W1 @ X + b1) + b2, axis=0))) / m",
    shapes={"W1": ("h", "n"), "b1": ("h",), "W2": ("c", "h"), "b2": ("c",),
            "X": ("n", "m"), "Y": ("c", "m")},
    domains={"Y": "probability"},
    wrt=["W1", "b1", "W2", "b2"],
    inputs=mlp_relu_inputs, output=mlp_relu_output, hand=mlp_relu_hand,
    sizes={"default": {"n": 784, "h": 512, "c": 10, "m": 256},
           "quick": {"n": 256, "h": 256, "c": 10, "m": 128},
           "tiny": {"n": 5, "h": 4, "c": 3, "m": 6}},
    note="Y declared a probability (one-hot columns sum to 1); without it the gradient keeps "
         "sum(Y, axis=0) * softmax(...), as it must",
    backward=True, gemms=mlp_relu_gemms)


# -- logistic regression (row convention: one example per row) --------------------------------

def logistic_inputs(s, dtype, rng):
    m, d = s["m"], s["d"]
    X = normal(rng, (m, d), dtype)
    truth = rng.standard_normal(d) / math.sqrt(d)
    y = (rng.uniform(size=m) < 1 / (1 + np.exp(-X @ truth))).astype(dtype)
    return {"X": X, "w": normal(rng, (d,), dtype, 1 / math.sqrt(d)),
            "b": np.asarray(0.1, dtype=dtype), "y": y}


def logistic_output(o, v):
    z = v["X"] @ v["w"] + v["b"]
    return o.xp.mean(o.softplus(z) - v["y"] * z)


def logistic_hand(v):
    X = v["X"]
    r = X @ v["w"]
    r += v["b"]
    sigmoid_inplace(r)
    r -= v["y"]
    r *= 1 / X.shape[0]
    return X.T @ r, r.sum()


LOGISTIC = Model(
    name="logistic", title="logistic regression, {m} x {d}, mean log-loss",
    text="mean(softplus(X @ w + b) - y * (X @ w + b))",
    shapes={"X": ("m", "d"), "w": ("d",), "b": (), "y": ("m",)},
    wrt=["w", "b"],
    inputs=logistic_inputs, output=logistic_output, hand=logistic_hand,
    sizes={"default": {"m": 4096, "d": 1024}, "quick": {"m": 2048, "d": 256},
           "tiny": {"m": 7, "d": 3}},
    note="written with softplus; the textbook -mean(y * log(sigmoid(z)) + (1 - y) * "
         "log(1 - sigmoid(z))) derives to ((1 - y) / (1 - s) - y / s) * s * (1 - s), "
         "not s - y")


# -- softmax regression (column convention) ----------------------------------------------------

def softmax_inputs(s, dtype, rng):
    c, d, m = s["c"], s["d"], s["m"]
    return {"W": normal(rng, (c, d), dtype, 1 / math.sqrt(d)), "b": normal(rng, (c,), dtype, 0.1),
            "X": normal(rng, (d, m), dtype), "Y": one_hot(rng, c, m, dtype)}


def softmax_output(o, v):
    Z = v["W"] @ v["X"] + v["b"][:, None]
    return -o.xp.sum(v["Y"] * (Z - o.logsumexp(Z, 0))) / v["X"].shape[1]


def softmax_hand(v):
    X = v["X"]
    Z = v["W"] @ X
    Z += v["b"][:, None]
    D = softmax_columns_inplace(Z)
    D -= v["Y"]
    D *= 1 / X.shape[1]
    return D @ X.T, D.sum(axis=1)


SOFTMAX = Model(
    name="softmax", title="softmax regression, {d} features, {c} classes, batch {m}, "
                          "cross-entropy",
    text="-sum(Y * log(softmax(W @ X + b, axis=0))) / m",
    shapes={"W": ("c", "d"), "b": ("c",), "X": ("d", "m"), "Y": ("c", "m")},
    domains={"Y": "probability"},
    wrt=["W", "b"],
    inputs=softmax_inputs, output=softmax_output, hand=softmax_hand,
    sizes={"default": {"c": 100, "d": 512, "m": 1024}, "quick": {"c": 50, "d": 256, "m": 512},
           "tiny": {"c": 3, "d": 4, "m": 5}},
    note="Y declared a probability (one-hot columns)")


# -- scaled dot-product attention, one head (row convention), upstream gradient G -------------

def attention_inputs(s, dtype, rng):
    n, d, e = s["n"], s["d"], s["e"]
    return {"Q": normal(rng, (n, d), dtype), "K": normal(rng, (n, d), dtype),
            "V": normal(rng, (n, e), dtype), "G": normal(rng, (n, e), dtype)}


def attention_output(o, v):
    Q = v["Q"]
    return o.softmax(Q @ v["K"].T / math.sqrt(Q.shape[1]), 1) @ v["V"]


def attention_hand(v, output=False):
    """The gradients; with ``output``, also the layer's output P @ V, as a forward pass and a
    backward pass from what it keeps compute them (the output is dropped)."""
    Q, K, V, G = v["Q"], v["K"], v["V"], v["G"]
    scale = 1 / math.sqrt(Q.shape[1])
    P = (Q * scale) @ K.T                   # scale the n x d operand, not the n x n product
    P -= P.max(axis=1, keepdims=True)
    np.exp(P, out=P)
    P /= P.sum(axis=1, keepdims=True)
    out = P @ V if output else None
    dV = P.T @ G
    dS = G @ V.T                            # dP, then dS over it
    dS -= np.einsum("ij,ij->i", dS, P)[:, None]
    dS *= P
    dQ = dS @ K
    dQ *= scale
    dK = dS.T @ Q
    dK *= scale
    del out                                 # (the output lives as long as a pass keeps it)
    return dQ, dK, dV


ATTENTION = Model(
    name="attention", title="attention softmax(Q K^T / sqrt(d)) V, n = {n}, d = {d}, "
                            "e = {e}, upstream G",
    text="softmax(Q @ K.T / sqrt(d), axis=1) @ V",
    shapes={"Q": ("n", "d"), "K": ("n", "d"), "V": ("n", "e"), "G": ("n", "e")},
    wrt=["Q", "K", "V"],
    inputs=attention_inputs, output=attention_output, hand=attention_hand,
    extras=((HAND_PASS, functools.partial(attention_hand, output=True)),),
    sizes={"default": {"n": 1024, "d": 64, "e": 64}, "quick": {"n": 512, "d": 64, "e": 64},
           "tiny": {"n": 5, "d": 3, "e": 4}},
    backward=True)


# -- layer norm (row convention: normalise each example over its features) --------------------

EPS = 1e-5


def norm_inputs(s, dtype, rng):
    m, d = s["m"], s["d"]
    return {"X": normal(rng, (m, d), dtype, 2.0, 1.0), "gamma": normal(rng, (d,), dtype, 0.1, 1.0),
            "beta": normal(rng, (d,), dtype, 0.1), "G": normal(rng, (m, d), dtype)}


def layernorm_output(o, v):
    X, xp = v["X"], o.xp
    Xc = X - xp.mean(X, axis=1, keepdims=True)
    return v["gamma"] * Xc / xp.sqrt(xp.mean(Xc ** 2, axis=1, keepdims=True) + EPS) + v["beta"]


def layernorm_hand(v, output=False):
    """The gradients (with ``output``, also the layer's output: see attention_hand)."""
    X, G, gamma = v["X"], v["G"], v["gamma"]
    d = X.shape[1]
    Xh = X - X.mean(axis=1, keepdims=True)
    rstd = 1 / np.sqrt(np.einsum("ij,ij->i", Xh, Xh) / d + EPS)[:, None]
    Xh *= rstd                                          # the normalised X
    if output:
        out = gamma * Xh
        out += v["beta"]
    dgamma = np.einsum("ij,ij->j", G, Xh)
    dbeta = G.sum(axis=0)
    dX = G * gamma                                      # d loss / d Xh
    inner = np.einsum("ij,ij->i", dX, Xh)[:, None] / d
    dX -= dX.mean(axis=1, keepdims=True)
    Xh *= inner
    dX -= Xh
    dX *= rstd
    return dX, dgamma, dbeta


# Written as NumPy code writes it: 1-D gamma and beta broadcast along the rows.
LAYERNORM = Model(
    name="layernorm", title="layer norm over {d} features, batch {m}, upstream G",
    text="gamma * ((X - mean(X, axis=1, keepdims=True)) / sqrt(mean((X - mean(X, axis=1, "
         "keepdims=True)) ** 2, axis=1, keepdims=True) + 1e-5)) + beta",
    shapes={"X": ("m", "d"), "gamma": ("d",), "beta": ("d",), "G": ("m", "d")},
    wrt=["X", "gamma", "beta"],
    inputs=norm_inputs, output=layernorm_output, hand=layernorm_hand,
    extras=((HAND_PASS, functools.partial(layernorm_hand, output=True)),),
    sizes={"default": {"m": 2048, "d": 1024}, "quick": {"m": 1024, "d": 256},
           "tiny": {"m": 4, "d": 5}},
    note="the NumPy spelling, with the variance as mean((X - mean(...)) ** 2, ...)",
    backward=True)


# -- batch norm (row convention: normalise each feature over the batch) ------------------------

def batchnorm_output(o, v):
    X, xp = v["X"], o.xp
    Xc = X - xp.mean(X, axis=0, keepdims=True)
    return v["gamma"] * Xc / xp.sqrt(xp.mean(Xc ** 2, axis=0, keepdims=True) + EPS) + v["beta"]


def batchnorm_hand(v, output=False):
    """The gradients (with ``output``, also the layer's output: see attention_hand)."""
    X, G = v["X"], v["G"]
    m = X.shape[0]
    Xh = X - X.mean(axis=0)
    rstd = 1 / np.sqrt(np.einsum("ij,ij->j", Xh, Xh) / m + EPS)
    Xh *= rstd                                          # the normalised X
    if output:
        out = v["gamma"] * Xh
        out += v["beta"]
    dgamma = np.einsum("ij,ij->j", G, Xh)
    dbeta = G.sum(axis=0)
    Xh *= dgamma / m
    dX = G - dbeta / m
    dX -= Xh
    dX *= v["gamma"] * rstd
    return dX, dgamma, dbeta


# Written as NumPy code writes it: X - mean(X, axis=0) centres each feature.
BATCHNORM = Model(
    name="batchnorm", title="batch norm of {d} features over batch {m}, upstream G",
    text="gamma * ((X - mean(X, axis=0)) / sqrt(mean((X - mean(X, axis=0)) ** 2, axis=0) + "
         "1e-5)) + beta",
    shapes={"X": ("m", "d"), "gamma": ("d",), "beta": ("d",), "G": ("m", "d")},
    wrt=["X", "gamma", "beta"],
    inputs=norm_inputs, output=batchnorm_output, hand=batchnorm_hand,
    extras=((HAND_PASS, functools.partial(batchnorm_hand, output=True)),),
    sizes={"default": {"m": 2048, "d": 1024}, "quick": {"m": 1024, "d": 256},
           "tiny": {"m": 5, "d": 4}},
    note="the NumPy spelling, with the variance spelt out as for layer norm",
    backward=True)


# -- masked matrix factorisation ----------------------------------------------------------------

LAMBDA = 0.01


def factorisation_inputs(s, dtype, rng):
    n, p, k = s["n"], s["p"], s["k"]
    return {"M": (rng.uniform(size=(n, p)) < 0.2).astype(dtype), "Y": normal(rng, (n, p), dtype),
            "U": normal(rng, (n, k), dtype, 1 / math.sqrt(k)),
            "V": normal(rng, (p, k), dtype, 1 / math.sqrt(k))}


def factorisation_output(o, v):
    xp, U, V = o.xp, v["U"], v["V"]
    return (xp.sum(v["M"] * (U @ V.T - v["Y"]) ** 2)
            + LAMBDA * (xp.sum(U ** 2) + xp.sum(V ** 2)))


def factorisation_hand(v):
    U, V = v["U"], v["V"]
    R = U @ V.T
    R -= v["Y"]
    R *= v["M"]                             # the masked residual: the one n x p temporary
    dU = R @ V
    dU *= 2
    dU += (2 * LAMBDA) * U
    dV = R.T @ U
    dV *= 2
    dV += (2 * LAMBDA) * V
    return dU, dV


FACTORISATION = Model(
    name="factorisation",
    title="masked factorisation sum(M * (U V^T - Y)^2) + 0.01 (|U|^2 + |V|^2), "
          "{n} x {p}, rank {k}, 20% observed",
    text="sum(M * (U @ V.T - Y) ** 2) + 0.01 * (sum(U ** 2) + sum(V ** 2))",
    shapes={"M": ("n", "p"), "Y": ("n", "p"), "U": ("n", "k"), "V": ("p", "k")},
    wrt=["U", "V"],
    inputs=factorisation_inputs, output=factorisation_output, hand=factorisation_hand,
    sizes={"default": {"n": 1024, "p": 1024, "k": 64}, "quick": {"n": 512, "p": 512, "k": 32},
           "tiny": {"n": 5, "p": 4, "k": 2}})


# -- triplet loss -------------------------------------------------------------------------------

MARGIN = 0.2


def triplet_inputs(s, dtype, rng):
    m, d = s["m"], s["d"]
    A = rng.standard_normal((m, d))
    return {"A": A.astype(dtype), "P": normal(rng, (m, d), dtype, 0.6) + A.astype(dtype),
            "N": normal(rng, (m, d), dtype, 0.6) + A.astype(dtype)}


def triplet_output(o, v):
    xp, A = o.xp, v["A"]
    return xp.sum(o.relu(xp.sum((A - v["P"]) ** 2, axis=1) - xp.sum((A - v["N"]) ** 2, axis=1)
                         + MARGIN))


def triplet_hand(v):
    A, P, N = v["A"], v["P"], v["N"]
    dP = A - P
    dN = A - N
    active = (np.einsum("ij,ij->i", dP, dP) - np.einsum("ij,ij->i", dN, dN) + MARGIN) > 0
    s = (2 * active).astype(A.dtype)[:, None]           # 2 where the hinge is active
    dA = N - P
    dA *= s
    dP *= -s
    dN *= s
    return dA, dP, dN


TRIPLET = Model(
    name="triplet", title="triplet loss sum(relu(|a - p|^2 - |a - n|^2 + 0.2)), "
                          "{m} triplets of dimension {d}",
    text="sum(relu(sum((A - P) ** 2, axis=1) - sum((A - N) ** 2, axis=1) + 0.2))",
    shapes={"A": ("m", "d"), "P": ("m", "d"), "N": ("m", "d")},
    wrt=["A", "P", "N"],
    inputs=triplet_inputs, output=triplet_output, hand=triplet_hand,
    sizes={"default": {"m": 8192, "d": 256}, "quick": {"m": 4096, "d": 128},
           "tiny": {"m": 6, "d": 3}})


# -- GRU cell (column convention, PyTorch's GRUCell equations), upstream gradient G -------------

def gru_text():
    z = "sigmoid(Wz @ X + Uz @ H + bz)"
    r = "sigmoid(Wr @ X + Ur @ H + br)"
    n = f"tanh(Wn @ X + bn + {r} * (Un @ H + bu))"
    return f"(1 - {z}) * {n} + {z} * H"


def gru_inputs(s, dtype, rng):
    i, h, m = s["i"], s["h"], s["m"]
    v = {"X": normal(rng, (i, m), dtype), "H": np.tanh(normal(rng, (h, m), dtype)),
         "G": normal(rng, (h, m), dtype)}
    for gate in "zrn":
        v["W" + gate] = normal(rng, (h, i), dtype, 1 / math.sqrt(i))
        v["U" + gate] = normal(rng, (h, h), dtype, 1 / math.sqrt(h))
    for bias in ("bz", "br", "bn", "bu"):
        v[bias] = normal(rng, (h,), dtype, 0.1)
    return v


def gru_output(o, v):
    X, H = v["X"], v["H"]
    z = o.sigmoid(v["Wz"] @ X + v["Uz"] @ H + v["bz"][:, None])
    r = o.sigmoid(v["Wr"] @ X + v["Ur"] @ H + v["br"][:, None])
    n = o.xp.tanh(v["Wn"] @ X + v["bn"][:, None] + r * (v["Un"] @ H + v["bu"][:, None]))
    return (1 - z) * n + z * H


def gru_hand(v):
    X, H, G = v["X"], v["H"], v["G"]
    z = v["Wz"] @ X
    z += v["Uz"] @ H
    z += v["bz"][:, None]
    sigmoid_inplace(z)
    r = v["Wr"] @ X
    r += v["Ur"] @ H
    r += v["br"][:, None]
    sigmoid_inplace(r)
    hn = v["Un"] @ H
    hn += v["bu"][:, None]
    n = v["Wn"] @ X
    n += v["bn"][:, None]
    n += r * hn
    np.tanh(n, out=n)
    dz = H - n                                  # d/d(z's pre-activation)
    dz *= G
    dz *= z * (1 - z)
    dn = 1 - z                                  # d/d(n's pre-activation)
    dn *= G
    dn *= 1 - n * n
    dhn = dn * r                                # d/d(Un @ H + bu)
    dr = dn * hn                                # d/d(r's pre-activation)
    dr *= r * (1 - r)
    dX = v["Wz"].T @ dz
    dX += v["Wr"].T @ dr
    dX += v["Wn"].T @ dn
    dH = G * z
    dH += v["Uz"].T @ dz
    dH += v["Ur"].T @ dr
    dH += v["Un"].T @ dhn
    return (dz @ X.T, dz @ H.T, dz.sum(axis=1), dr @ X.T, dr @ H.T, dr.sum(axis=1),
            dn @ X.T, dhn @ H.T, dn.sum(axis=1), dhn.sum(axis=1), dX, dH)


GRU = Model(
    name="gru", title="GRU cell, input {i}, hidden {h}, batch {m}, upstream G, "
                      "all 12 gradients",
    text=gru_text(),
    shapes={"X": ("i", "m"), "H": ("h", "m"), "G": ("h", "m"),
            **{"W" + g: ("h", "i") for g in "zrn"}, **{"U" + g: ("h", "h") for g in "zrn"},
            **{b: ("h",) for b in ("bz", "br", "bn", "bu")}},
    wrt=["Wz", "Uz", "bz", "Wr", "Ur", "br", "Wn", "Un", "bn", "bu", "X", "H"],
    inputs=gru_inputs, output=gru_output, hand=gru_hand,
    sizes={"default": {"i": 256, "h": 256, "m": 256}, "quick": {"i": 128, "h": 128, "m": 128},
           "tiny": {"i": 3, "h": 4, "m": 2}},
    note="the gates written out in full (matcalc text has no assignments; equal "
         "subexpressions are one node)")


MODELS = {model.name: model for model in (MLP_TANH, MLP_RELU, LOGISTIC, SOFTMAX, ATTENTION,
                                          LAYERNORM, BATCHNORM, FACTORISATION, TRIPLET, GRU)}
assert list(MODELS) == MODEL_NAMES


def matcalc_shapes(model: Model) -> dict:
    """The shapes for matcalc: G is its own upstream gradient, not a variable."""
    return {k: v for k, v in model.shapes.items() if k != "G"}


def loss_numpy(model: Model, v: dict) -> float:
    """The scalar whose gradient every contender computes: the loss, or sum(G * f)."""
    out = model.output(numpy_ops(), v)
    return float(np.sum(v["G"] * out)) if model.upstream else float(out)


# ---------------------------------------------------------------------------------------------
# Contenders
# ---------------------------------------------------------------------------------------------

HAND = "hand-written NumPy"
DERIVE = "matcalc derive"
BACKWARD = "matcalc backward() fwd+bwd"
JAX = "jax.jit(jax.grad)"
TORCH = "torch autograd"
FLOOR = "GEMM floor"


@dataclasses.dataclass
class Contender:
    name: str
    run: Callable             # () -> the gradients, in the library's own arrays
    grads: Callable | None    # () -> the gradients as NumPy arrays or numbers, wrt order;
                              # None for the GEMM floor, which computes none


def optional_library(name: str):
    try:
        return __import__(name)
    except ImportError:
        return None


def contenders(model: Model, v: dict, derived, code, jax, torch) -> tuple[list, list]:
    """The contenders for one model and dtype (and notes on those skipped)."""
    inputs = {k: x for k, x in v.items() if k != "G"}
    G = {"G": v["G"]} if model.upstream else {}
    out = []
    for name, hand in [(HAND, model.hand), *model.extras]:
        run = functools.partial(hand, v)
        out.append(Contender(name, run, run))
    notes = []
    run_derive = functools.partial(derived.numpy_function(), **v)
    out.append(Contender(DERIVE, run_derive, run_derive))
    if code is not None:
        def run_backward():
            return code.backward(code.forward(**inputs)[1], **G)
        out.append(Contender(BACKWARD, run_backward, run_backward))
    if jax is not None:
        out.append(jax_contender(model, v, jax))
    else:
        notes.append(f"{JAX}: skipped, JAX is not installed")
    if torch is not None:
        out.append(torch_contender(model, v, torch))
    else:
        notes.append(f"{TORCH}: skipped, PyTorch is not installed")
    if model.gemms is not None:
        products = model.gemms(v)
        out.append(Contender(FLOOR, products, None))
    return out, notes


def jax_contender(model: Model, v: dict, jax) -> Contender:
    import jax.numpy as jnp
    ops = jax_ops()
    params = {k: jnp.asarray(v[k]) for k in model.wrt}
    rest = {k: jnp.asarray(x) for k, x in v.items() if k not in model.wrt}

    def loss(params, rest):
        out = model.output(ops, {**params, **rest})
        return jnp.sum(rest["G"] * out) if model.upstream else out

    grad = jax.jit(jax.grad(loss))

    def run():
        return jax.block_until_ready(grad(params, rest))

    def grads():
        g = run()
        return [np.asarray(g[k]) for k in model.wrt]
    return Contender(JAX, run, grads)


def torch_contender(model: Model, v: dict, torch) -> Contender:
    ops = torch_ops()
    tensors = {k: torch.from_numpy(x) for k, x in v.items()}        # shared, not copied
    leaves = [tensors[k].requires_grad_(True) for k in model.wrt]

    def run():
        out = model.output(ops, tensors)
        if model.upstream:
            return torch.autograd.grad(out, leaves, grad_outputs=tensors["G"])
        return torch.autograd.grad(out, leaves)

    def grads():
        return [g.numpy() for g in run()]
    return Contender(TORCH, run, grads)


# ---------------------------------------------------------------------------------------------
# Checks before timing
# ---------------------------------------------------------------------------------------------

TOLERANCE = {"float64": 1e-7, "float32": 2e-3}


def as_list(grads, count: int) -> list:
    return list(grads) if count > 1 else [grads]


def disagreement(got, want) -> float:
    """Largest |got - want| over max |want|, for one gradient."""
    got = np.asarray(got, dtype=np.float64).reshape(-1)
    want = np.asarray(want, dtype=np.float64).reshape(-1)
    if got.shape != want.shape:
        return math.inf
    return float(np.max(np.abs(got - want), initial=0.0) / (np.max(np.abs(want)) + 1e-30))


def agree(got, want, dtype: str) -> bool:
    """np.allclose, with the absolute tolerance relative to the reference's largest entry."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    tol = TOLERANCE[dtype]
    return got.shape == want.shape and np.allclose(
        got, want, rtol=tol, atol=tol * (np.max(np.abs(want)) + 1e-30))


def returned_dtype(g) -> str:
    """The dtype of an array or NumPy scalar; "Python float" for a plain number."""
    dtype = getattr(g, "dtype", None)
    if dtype is not None:
        return str(dtype).replace("torch.", "")
    return "Python float" if isinstance(g, float) else type(g).__name__


def check(model: Model, cs: list, dtype: str) -> dict:
    """Each contender's gradients against the hand-written ones; raise SystemExit if one
    disagrees. Returns {contender: (worst disagreement, {gradient: returned dtype})}."""
    count = len(model.wrt)
    reference = as_list(cs[0].grads(), count)
    found = {}
    for c in cs:
        if c.grads is None:
            continue
        got = as_list(c.grads(), count)
        if len(got) != count:
            raise SystemExit(f"{model.name}: {c.name} returned {len(got)} gradients, not {count}")
        worst = max(disagreement(g, r) for g, r in zip(got, reference))
        bad = [w for w, g, r in zip(model.wrt, got, reference) if not agree(g, r, dtype)]
        if bad:
            raise SystemExit(f"{model.name} ({dtype}): {c.name} disagrees with the hand-written "
                             f"gradients of {', '.join(bad)} (worst {worst:.2e})")
        found[c.name] = (worst, {"d" + w: returned_dtype(g) for w, g in zip(model.wrt, got)})
    return found


def dtype_summary(dtypes: dict, expected: str) -> str:
    """'float32' when every gradient is ``expected``, else the exceptions named:
    'float32; float64 (dQ, dV)', or 'float64 (dQ, dK, dV)' when none is."""
    other = {}
    for grad, dt in dtypes.items():
        if dt != expected:
            other.setdefault(dt, []).append(grad)
    parts = [expected] if len(other) == 0 or sum(map(len, other.values())) < len(dtypes) else []
    return "; ".join(parts + [f"{dt} ({', '.join(gs)})" for dt, gs in other.items()])


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------

def quartiles(xs) -> tuple[float, float, float]:
    if len(xs) == 1:
        return xs[0], xs[0], xs[0]
    q1, q2, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return q1, q2, q3


def summarise(times: dict, base: str) -> dict:
    """Per contender: median, quartiles, min and max of its times, and the median and quartiles
    of its per-round ratio to ``base`` (times[name][r] / times[base][r])."""
    out = {}
    for name, ts in times.items():
        ratios = [t / b for t, b in zip(ts, times[base])]
        q1, med, q3 = quartiles(ts)
        r1, rmed, r3 = quartiles(ratios)
        out[name] = {"median": med, "q1": q1, "q3": q3, "min": min(ts), "max": max(ts),
                     "ratio": rmed, "ratio_q1": r1, "ratio_q3": r3}
    return out


def interleaved(cs: list, rounds: int, calls: int, warmup: int = 2) -> tuple[dict, dict]:
    """Seconds per call of each contender in each of ``rounds`` rounds, wall-clock and CPU
    (of every thread of this process). Each round runs the contenders in an order drawn at
    random (seeded by the round, so runs repeat it): no contender always follows the same one.
    What the previous contender leaves behind (the allocator's free memory, which its arrays'
    page faults depend on, and the caches) moves a time by several percent: two copies of
    layer norm's backward(), in one run with the round's order rotated (so each always
    followed the same neighbour), differed by 6% (float32) and 8% (float64); shuffled, by
    under 1%. Each sample is ``calls`` calls in a row. The garbage
    collector runs between rounds, not inside them."""
    wall = {c.name: [] for c in cs}
    cpu = {c.name: [] for c in cs}
    enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(warmup + rounds):
            gc.collect()
            order = list(cs)
            random.Random(r).shuffle(order)
            for c in order:
                run = c.run
                c0 = time.process_time()
                t0 = time.perf_counter()
                for _ in range(calls):
                    run()
                t1 = time.perf_counter()
                c1 = time.process_time()
                if r >= warmup:
                    wall[c.name].append((t1 - t0) / calls)
                    cpu[c.name].append((c1 - c0) / calls)
    finally:
        if enabled:
            gc.enable()
    return wall, cpu


def calls_per_sample(run: Callable, target: float) -> int:
    """Enough calls in a row for a sample of about ``target`` seconds (small problems)."""
    run()
    t0 = time.perf_counter()
    run()
    return max(1, min(50, round(target / max(time.perf_counter() - t0, 1e-6))))


# ---------------------------------------------------------------------------------------------
# One model, one dtype
# ---------------------------------------------------------------------------------------------

def derive(model: Model):
    """(derivation, backward code or None, seconds to derive both)."""
    t0 = time.process_time()
    derived = mc.derive(model.text, wrt=model.wrt, shapes=matcalc_shapes(model),
                        domains=model.domains or None)
    code = None
    if model.backward:
        code = mc.backward(model.text, wrt=model.wrt, shapes=matcalc_shapes(model),
                           domains=model.domains or None)
    return derived, code, time.process_time() - t0


def run_model(model: Model, size: dict, dtype: str, rounds: int, derived, code, jax, torch,
              target: float = 0.02) -> dict:
    """Check, then time, every contender of ``model`` at ``size`` in ``dtype``."""
    v = model.inputs(size, np.dtype(dtype), np.random.default_rng(0))
    cs, notes = contenders(model, v, derived, code, jax, torch)
    found = check(model, cs, dtype)
    calls = calls_per_sample(cs[0].run, target)
    times, cpu = interleaved(cs, rounds, calls)
    summary = summarise(times, HAND)
    for name, s in summary.items():     # about 1 on one thread; above 1: more threads ran
        s["cpu_per_wall"] = statistics.median(c / w for c, w in zip(cpu[name], times[name]))
    if HAND_PASS in times and BACKWARD in times:      # backward() against the same work
        s = summarise(times, HAND_PASS)[BACKWARD]
        summary[BACKWARD].update(pass_ratio=s["ratio"], pass_q1=s["ratio_q1"],
                                 pass_q3=s["ratio_q3"])
    if FLOOR in times:
        for name, s in summarise(times, FLOOR).items():
            summary[name].update(floor_ratio=s["ratio"], floor_q1=s["ratio_q1"],
                                 floor_q3=s["ratio_q3"])
    for name, (worst, dtypes) in found.items():
        summary[name].update(disagreement=worst, dtypes=dtypes,
                             returns=dtype_summary(dtypes, dtype))
    return {"model": model.name, "title": model.title.format(**size), "size": size,
            "dtype": dtype, "rounds": rounds, "calls_per_sample": calls, "notes": notes,
            "times": times, "cpu_times": cpu, "summary": summary}


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------

def table(header, rows) -> str:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]

    def line(r):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] +
                     [line(r) for r in rows])


def ms(seconds: float) -> str:
    x = 1000 * seconds
    return f"{x:.3f}" if x < 1 else f"{x:.2f}" if x < 100 else f"{x:.1f}"


def model_table(results: list) -> str:
    """One row per model and contender: median ms, quartiles, min-max, ratio to hand-written
    (median of per-round ratios, with its quartiles), the dtype returned."""
    rows = []
    for res in results:
        marker = " *" if MODELS[res["model"]].note else ""
        for i, (name, s) in enumerate(res["summary"].items()):
            if name == FLOOR:
                continue
            rows.append([res["model"] + marker if i == 0 else "", name, ms(s["median"]),
                         f"{ms(s['q1'])}-{ms(s['q3'])}", f"{ms(s['min'])}-{ms(s['max'])}",
                         f"{s['ratio']:.2f}", f"{s['ratio_q1']:.2f}-{s['ratio_q3']:.2f}",
                         f"{s['cpu_per_wall']:.2f}", s.get("returns", "")])
    return table(["model", "contender", "median ms", "quartiles ms", "min-max ms",
                  "x hand-written", "ratio quartiles", "CPU / wall", "returns"], rows)


def ratio_table(results: list) -> str:
    """One row per model: the hand-written time, then each contender's ratio to it (median of
    per-round ratios, quartiles in brackets), and the dtypes matcalc's gradients come in."""
    names = [n for n in (DERIVE, BACKWARD, JAX, TORCH)
             if any(n in res["summary"] for res in results)]
    rows = []
    for res in results:
        summary = res["summary"]
        hand = summary[HAND]
        row = [res["model"] + (" *" if MODELS[res["model"]].note else ""),
               f"{ms(hand['median'])} ({ms(hand['q1'])}-{ms(hand['q3'])})"]
        for name in names:
            s = summary.get(name)
            row.append(f"{s['ratio']:.2f} ({s['ratio_q1']:.2f}-{s['ratio_q3']:.2f})" if s
                       else "-")
        derive = summary[DERIVE]["returns"]
        backward = summary[BACKWARD]["returns"] if BACKWARD in summary else derive
        row.append(derive if backward == derive else
                   f"derive: {derive}; backward(): {backward}")
        rows.append(row)
    short = {DERIVE: "matcalc derive", BACKWARD: "matcalc backward()"}
    return table(["model", "hand-written ms"] + [f"{short.get(n, n)} x" for n in names] +
                 ["matcalc returns"], rows)


def floor_table(results: list) -> str:
    rows = []
    for res in results:
        if FLOOR not in res["summary"]:
            continue
        for name, s in res["summary"].items():
            rows.append([res["model"], name, ms(s["median"]),
                         f"{ms(s['q1'])}-{ms(s['q3'])}",
                         f"{s['floor_ratio']:.2f}", f"{s['floor_q1']:.2f}-{s['floor_q3']:.2f}"])
    return table(["model", "contender (forward + backward)", "median ms", "quartiles ms",
                  "x GEMM floor", "ratio quartiles"], rows) if rows else ""


def pass_table(results: list) -> str:
    """backward() (forward, which also makes the output, then backward) against a hand-written
    gradient that also computes the output: the same work."""
    rows = [[res["model"], f"{s['pass_ratio']:.2f} ({s['pass_q1']:.2f}-{s['pass_q3']:.2f})"]
            for res in results for s in [res["summary"].get(BACKWARD, {})] if "pass_ratio" in s]
    return table(["model", f"matcalc backward() x {HAND_PASS}"], rows) if rows else ""


def report(run: dict) -> str:
    """The tables of one run (one --threads setting) as Markdown."""
    results, derivation = run["results"], run["derivation_seconds"]
    before, after = run["load_average"]
    out = [f"# Model gradients: {run['threads']} thread(s), {run['rounds']} interleaved rounds "
           f"per model\n",
           f"Versions: {run['versions']}; {run['cores']} cores, the process on "
           f"{', '.join(map(str, run['pinned_to'])) or 'any'}; load average (1 min) "
           f"{before:.2f} at the start, {after:.2f} at the end\n"]
    for dtype in ("float64", "float32"):
        mine = [r for r in results if r["dtype"] == dtype]
        if not mine:
            continue
        out.append(f"## {dtype}\n")
        out.append("Each contender's time over the hand-written one (median of per-round "
                   "ratios, quartiles in brackets):\n")
        out.append(ratio_table(mine) + "\n")
        out.append("Every contender:\n")
        out.append(model_table(mine) + "\n")
        passes = pass_table(mine)
        if passes:
            out.append("backward() against a hand-written gradient that also computes the "
                       "layer's output, as backward()'s forward does (median of per-round "
                       "ratios):\n")
            out.append(passes + "\n")
        floor = floor_table(mine)
        if floor:
            out.append(f"MLP forward + backward against the time of its matrix products alone "
                       f"({dtype}):\n")
            out.append(floor + "\n")
    out.append("Models (sizes as run):")
    seen = set()
    for r in results:
        if r["model"] not in seen:
            seen.add(r["model"])
            model = MODELS[r["model"]]
            out.append(f"- {model.name}: {r['title']}; matcalc text: {model.text} "
                       f"(derived in {1000 * derivation[model.name]:.0f} ms)")
            if model.note:
                out.append(f"  * written for matcalc: {model.note}")
    notes = sorted({n for r in results for n in r["notes"]})
    out.extend([""] + [f"Note: {n}" for n in notes] + ([""] if notes else []))
    out.append("Times are per call (the gradients from the inputs), medians over rounds; "
               "x hand-written is the median of per-round ratios; CPU / wall is the median "
               "ratio of this process's CPU time (all threads) to wall time, about 1 when one "
               "thread computes (above 1: more threads ran; below: the process waited for a "
               "core); 'returns' is the dtype of the gradients each contender returns.")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------

def versions(jax, torch) -> str:
    parts = [f"Python {sys.version.split()[0]}", f"NumPy {np.__version__}"]
    parts += [f"JAX {jax.__version__}"] if jax else []
    parts += [f"PyTorch {torch.__version__}"] if torch else []
    return ", ".join(parts)


def run_all(args) -> dict:
    threads = args.threads[0]
    jax = optional_library("jax")
    if jax is not None:
        jax.config.update("jax_enable_x64", True)    # float64 stays float64
    torch = optional_library("torch")
    if torch is not None:
        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass
    dtypes = ["float64", "float32"] if args.dtype == "both" else [args.dtype]
    rounds = args.rounds or (7 if args.quick else 31)
    size_name = "quick" if args.quick else "default"
    results, derivation = [], {}
    load_before = os.getloadavg()
    for name in args.only or MODEL_NAMES:
        model = MODELS[name]
        derived, code, seconds = derive(model)
        derivation[name] = seconds
        for dtype in dtypes:
            print(f"  {name} {dtype} ...", file=sys.stderr, flush=True)
            results.append(run_model(model, model.sizes[size_name], dtype, rounds, derived,
                                     code, jax, torch, target=0.01 if args.quick else 0.02))
    return {"threads": threads, "versions": versions(jax, torch), "rounds": rounds,
            "quick": args.quick, "cores": os.cpu_count(), "pinned_to": CORES,
            "derivation_seconds": derivation,
            "load_average": [load_before[0], os.getloadavg()[0]], "results": results}


def forward_args(args, threads: int, json_path: str) -> list:
    """The command line for one --threads setting in its own process."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--threads", str(threads),
            "--dtype", args.dtype, "--json", json_path]
    for name in args.only or []:
        argv += ["--only", name]
    if args.rounds:
        argv += ["--rounds", str(args.rounds)]
    if args.quick:
        argv.append("--quick")
    return argv


def overhead_table(rounds: int = 41, calls: int = 200) -> str:
    """The fixed cost of a generated call: each model on its tiny inputs (a few entries, where
    the arithmetic costs almost nothing), the generated gradient against the hand-written one,
    interleaved, and the same for a function that only takes its arguments in and returns
    (``mc.derive("sum(x)", wrt="x", ...)``: its gradient is ones). Microseconds per call,
    median over the rounds (quartiles)."""
    rows = []
    x = np.arange(3.0)
    empty = mc.derive("sum(x)", wrt="x", shapes={"x": ("n",)}).numpy_function()
    for name, model in MODELS.items():
        v = model.inputs(model.sizes["tiny"], np.dtype("float64"), np.random.default_rng(0))
        derived, _, _ = derive(model)
        cs = [Contender(HAND, functools.partial(model.hand, v), None),
              Contender(DERIVE, functools.partial(derived.numpy_function(), **v), None)]
        times, _ = interleaved(cs, rounds, calls)
        hand, gen = (quartiles([1e6 * t for t in times[c.name]]) for c in cs)
        extra = quartiles([1e6 * (g - h) for g, h in zip(times[DERIVE], times[HAND])])
        rows.append([name, f"{hand[1]:.1f} ({hand[0]:.1f}-{hand[2]:.1f})",
                     f"{gen[1]:.1f} ({gen[0]:.1f}-{gen[2]:.1f})",
                     f"{extra[1]:.1f} ({extra[0]:.1f}-{extra[2]:.1f})"])
    times, _ = interleaved([Contender("empty", functools.partial(empty, x), None)], rounds, calls)
    q = quartiles([1e6 * t for t in times["empty"]])
    return table(["model (tiny inputs)", "hand-written µs", "matcalc derive µs",
                  "difference µs (per round)"], rows) + \
        f"\n\nA generated function that only takes its argument in (gradient of sum(x), x a " \
        f"3-vector): {q[1]:.2f} µs ({q[0]:.2f}-{q[2]:.2f})."


def main(args) -> None:
    if args.overhead:
        print(overhead_table(), flush=True)
        return
    if len(args.threads) > 1:           # each setting in its own process, pinned before import
        runs = []
        with tempfile.TemporaryDirectory() as tmp:
            for threads in args.threads:
                path = os.path.join(tmp, f"threads-{threads}.json")
                subprocess.run(forward_args(args, threads, path), check=True)
                print(flush=True)
                with open(path) as f:
                    runs += json.load(f)["runs"]
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"runs": runs}, f, indent=1)
        return
    run = run_all(args)
    print(report(run), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": [run]}, f, indent=1)


if __name__ == "__main__":
    main(ARGS)
