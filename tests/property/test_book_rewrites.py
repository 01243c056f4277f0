"""The book's rewrites over random compositions: the value is kept (NumPy, on random inputs),
simplifying again changes nothing, and the printed text parses back to the same node.

An expression is a random template of the rewrites' patterns (spelled-out softmax, logsumexp,
softplus, sigmoid, log-sigmoid, binary cross-entropy, quotients of powers, sign and abs, the
trace as a sum, relu times step, transposes of symmetric matrices, powers and quotients of a
repeated scalar, the sums of the identity's rows and of a probability vector, decimal
coefficients, mirrored terms, centred sums, products of repeated numbers) applied to a random inner
expression of the variables; its value before and after is computed by the form table's own
NumPy interpreter, never by matcalc.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import matcalc as mc
from matcalc.simplify import rewrite_forward, simplify

from forms import harness as H
from strategies import examples

SHAPES = {"u": ("n",), "v": ("n",), "y": ("n",), "A": ("n", "n"), "S": ("n", "n"),
          "P": ("n", "n"), "q": ("n",)}
DOMAINS = {"S": "symmetric", "P": "positive", "y": "binary", "q": "probability"}
SIZES = {"n": 4}

INNER = ["u", "u + v", "2 * u - v", "A @ u", "u * v", "-u", "A.T @ v + u"]
TEMPLATES = [
    "exp({x}) / sum(exp({x}))",
    "log(sum(exp({x})))",
    "log(1 + exp({x}))",
    "exp({x}) / (1 + exp({x}))",
    "log(sigmoid({x}))",
    "log(1 - sigmoid({x}))",
    "y * log(sigmoid({x})) + (1 - y) * log(1 - sigmoid({x}))",
    "sum(softmax({x}))",
    "relu({x}) * step({x})",
    "({x}) ** 3 / ({x}) ** 2",
    "sign({x}) * ({x}) / abs({x})",
    "sum(eye(n) * (A + P))",
    "(S + inv(S)).T @ ({x})",
    "((P ** 2) ** 2) / P ** 3 @ ({x})",
    "y ** 2 * ({x})",
    "({x}) / (norm(v) * ones(n)) ** 2",
    "A @ (({x}) / norm(v)) / norm(v) ** 2",
    "(A / norm(v)).T @ ({x})",
    "norm(v) ** 2 * (A @ (({x}) / norm(v)))",
    "(({x}) / norm(v)) / sqrt(1 + u ** 2) / norm(v)",
    "sum(eye(n), axis=0) * ({x})",
    "(({x}).T @ A) * sum(eye(n), axis=1, keepdims=True)",
    "sum(0.9 * q + 0.1 / n) * ({x})",
    "(0.3 * u - 0.5 * v) * ({x})",
    "({x}).T @ S + (S @ ({x}) - 2 * ({x})).T",
    # centred sums: a matrix minus its mean along an axis sums to zero along it (and only it)
    "sum(({x}) - mean({x})) * u",
    "sum(A * ({x}).T + ({x}).T * (A - mean(A, axis=0, keepdims=True)), axis=0)",
    "sum((P - mean(P, axis=1, keepdims=True)) * sum(A, axis=1, keepdims=True) + A, axis=1) * ({x})",
    "sum(A - mean(A, axis=0, keepdims=True), axis=1) * ({x})",
    "sum(A - mean(A, axis=1, keepdims=True), axis=0) + ({x})",
    # repeated numbers multiply to one
    "(2 * ones(n)) * (norm(v) * ones(n)) * ({x})",
]


def _values(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((4, 4))
    return {"u": rng.standard_normal((4, 1)), "v": rng.standard_normal((4, 1)),
            "y": rng.integers(0, 2, (4, 1)).astype(float), "A": rng.standard_normal((4, 4)),
            "S": (m + m.T) / 2 + 3 * np.eye(4), "P": rng.uniform(0.5, 2, (4, 4)),
            "q": rng.dirichlet(np.ones(4))[:, None]}


texts = st.builds(lambda t, x: t.format(x=x), st.sampled_from(TEMPLATES),
                  st.sampled_from(INNER))


@settings(max_examples=examples(60), deadline=None)
@given(text=texts, seed=st.integers(0, 10 ** 6))
def test_a_rewrite_keeps_the_value_is_idempotent_and_prints_back(text, seed):
    node = mc.parse(text, SHAPES, DOMAINS)
    once = simplify(rewrite_forward(node))
    assert simplify(rewrite_forward(once)) is once           # idempotent
    assert mc.parse(str(once), SHAPES, DOMAINS) is once       # round trip through text
    values = _values(seed)
    with np.errstate(all="ignore"):
        before = H._as_2d(H.evaluate(text, values, SIZES))
        after = H._as_2d(H.evaluate(str(once), values, SIZES))
    after = after * np.ones_like(before)
    finite = np.isfinite(before)
    assert np.all(np.isfinite(after[finite]))                  # finite wherever the formula is
    np.testing.assert_allclose(after[finite], before[finite], rtol=1e-9, atol=1e-9)
