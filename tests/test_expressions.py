"""Forty derivations of our own choosing: linear and quadratic forms, traces, least squares,
logistic loss, MLP layers in both conventions, elementwise functions, vector-Jacobian products.
Each asserts the printed matrix form (reviewed by hand against the Matrix Cookbook and the seed
notes) and the value (the generated code against central finite differences)."""

from __future__ import annotations

import pytest

import matcalc as mc

n = mc.dim("n")
A = mc.Matrix("A", "n", "n"); B = mc.Matrix("B", "n", "n"); X = mc.Matrix("X", "n", "n")
P = mc.Matrix("P", "n", "n", domain="positive")
x = mc.Vector("x", "n"); y = mc.Vector("y", "n"); a = mc.Vector("a", "n"); b = mc.Vector("b", "n")
W = mc.Matrix("W", "m", "n"); z = mc.Vector("z", "m"); c = mc.Scalar("c")
D = mc.Matrix("D", "n", "k"); Y = mc.Matrix("Y", "m", "k"); M = mc.Matrix("M", "m", "k")
U = mc.Matrix("U", "m", "r"); V = mc.Matrix("V", "k", "r"); F = mc.Matrix("F", "k", "n")
t = mc.Vector("t", "m"); w = mc.Vector("w", "n"); R = mc.Matrix("R", "k", "m")
W1 = mc.Matrix("W1", "h", "n"); b1 = mc.Vector("b1", "h"); W2 = mc.Matrix("W2", "k", "h")
b2 = mc.Vector("b2", "k"); X0 = mc.Matrix("X0", "n", "m"); T0 = mc.Matrix("T0", "k", "m")
CASES = [
    ("linear form a.x", mc.sum(a * x), [x], ['a']),
    ("linear form x.T a", x.T @ a, [x], ['a']),
    ("quadratic form", x.T @ A @ x, [x], ['(A + A.T) @ x']),
    ("squared norm", x.T @ x, [x], ['2 * x']),
    ("shifted quadratic", (x - a).T @ A @ (x - a), [x], ['(A + A.T) @ (x - a)']),
    ("bilinear form in A", x.T @ A @ y, [A], ['x @ y.T']),
    ("trace", mc.trace(X), [X], ['eye(n)']),
    ("trace(A X)", mc.trace(A @ X), [X], ['A.T']),
    ("trace(A X B)", mc.trace(A @ X @ B), [X], ['A.T @ B.T']),
    ("trace(X.T A)", mc.trace(X.T @ A), [X], ['A']),
    ("trace(X X)", mc.trace(X @ X), [X], ['2 * X.T']),
    ("trace(X.T X)", mc.trace(X.T @ X), [X], ['2 * X']),
    ("trace(X A X.T)", mc.trace(X @ A @ X.T), [X], ['X @ (A + A.T)']),
    ("trace(A X.T B X)", mc.trace(A @ X.T @ B @ X), [X], ['B.T @ (X @ A.T) + B @ X @ A']),
    ("a.T X b", a.T @ X @ b, [X], ['a @ b.T']),
    ("a.T X.T b", a.T @ X.T @ b, [X], ['b @ a.T']),
    ("least squares in x", mc.sum((W @ x - z) ** 2), [x, W], ['2 * (W.T @ (W @ x - z))', '2 * ((W @ x - z) @ x.T)']),
    ("Frobenius least squares", mc.sum((W @ D - Y) ** 2), [D], ['2 * (W.T @ (W @ D - Y))']),
    ("ridge", mc.sum((W @ x - z) ** 2) + c * (x.T @ x), [x, c], ['2 * (c * x + W.T @ (W @ x - z))', 'x.T @ x']),
    ("logistic loss", mc.sum(mc.softplus(-t * (W @ w))), [w], ['-(W.T @ (sigmoid(-(t * (W @ w))) * t))']),
    ("tanh layer", mc.sum(mc.tanh(W @ x + z)), [W, z, x], ['(1 - tanh(W @ x + z) ** 2) @ x.T', '1 - tanh(W @ x + z) ** 2', 'W.T @ (1 - tanh(W @ x + z) ** 2)']),
    ("relu layer over a batch", mc.sum(mc.relu(W @ D + z)), [W, z], ['step(W @ D + z) @ D.T', 'sum(step(W @ D + z), axis=1)']),
    ("sigmoid layer, row convention", mc.sum(mc.sigmoid(R @ W + w.T)), [W, w], ['R.T @ (sigmoid(R @ W + w.T) * (1 - sigmoid(R @ W + w.T)))', 'sum(sigmoid(R @ W + w.T) * (1 - sigmoid(R @ W + w.T)), axis=0)']),
    ("two-layer net with bias, batch", mc.sum((W2 @ mc.tanh(W1 @ X0 + b1) + b2 - T0) ** 2) / mc.dim("m"), [W1, b1, W2, b2], ['(2/m) * (((W2.T @ (W2 @ tanh(W1 @ X0 + b1) + b2 - T0)) * (1 - tanh(W1 @ X0 + b1) ** 2)) @ X0.T)', '(2/m) * sum((W2.T @ (W2 @ tanh(W1 @ X0 + b1) + b2 - T0)) * (1 - tanh(W1 @ X0 + b1) ** 2), axis=1)', '(2/m) * ((W2 @ tanh(W1 @ X0 + b1) + b2 - T0) @ tanh(W1 @ X0 + b1).T)', '(2/m) * sum(W2 @ tanh(W1 @ X0 + b1) + b2 - T0, axis=1)']),
    ("matrix factorisation", mc.sum((M - U @ V.T) ** 2), [U, V], ['-2 * ((M - U @ V.T) @ V)', '-2 * ((M - U @ V.T).T @ U)']),
    ("exp", mc.sum(mc.exp(X)), [X], ['exp(X)']),
    ("log", mc.sum(mc.log(P)), [P], ['1 / P']),
    ("sqrt", mc.sum(mc.sqrt(P)), [P], ['(1/2) / sqrt(P)']),
    ("cube", mc.sum(X ** 3), [X], ['3 * X ** 2']),
    ("sin cos", mc.sum(mc.sin(X) * mc.cos(X)), [X], ['cos(X) ** 2 - sin(X) ** 2']),
    ("quotient", mc.sum(X / P), [X, P], ['1 / P', '-(X / P ** 2)']),
    ("mean squared error", mc.mean((W @ D - Y) ** 2), [W], ['(2/(k*m)) * ((W @ D - Y) @ D.T)']),
    ("scalar times trace", c * mc.trace(X), [c, X], ['trace(X)', 'c * eye(n)']),
    ("column sums squared", mc.sum(mc.sum(X, axis=0) ** 2), [X], ['2 * (sum(X, axis=0, keepdims=True) * ones(n, n))']),
    ("row sums squared", mc.sum(mc.sum(X, axis=1) ** 2), [X], ['2 * (sum(X, axis=1, keepdims=True) * ones(n, n))']),
    ("absolute deviation", mc.sum(mc.abs(x - y)), [x], ['sign(x - y)']),
    ("Gram quadratic", x.T @ A.T @ A @ x, [x], ['2 * (A.T @ (A @ x))']),
    ("outer product (VJP)", x @ x.T, [x], ['(G + G.T) @ x']),
    ("matrix product (VJP)", A @ X, [X], ['A.T @ G']),
    ("elementwise square (VJP)", X * X, [X], ['2 * (G * X)']),
]


@pytest.mark.parametrize("name,expression,wrt,forms", CASES, ids=[c[0] for c in CASES])
def test_form(name, expression, wrt, forms):
    res = mc.grad(expression, wrt)
    assert [str(g) for g in res.gradients] == forms


@pytest.mark.parametrize("name,expression,wrt,forms", CASES, ids=[c[0] for c in CASES])
def test_value_against_finite_differences(name, expression, wrt, forms):
    report = mc.grad(expression, wrt).check()
    assert report.ok and report.worst < 1e-6


@pytest.mark.parametrize("name,expression,wrt,forms", CASES, ids=[c[0] for c in CASES])
def test_text_form_parses_back_to_the_same_gradient(name, expression, wrt, forms):
    """The printed text is valid matcalc syntax for the very same expression."""
    res = mc.grad(expression, wrt)
    variables = list(res.variables) + ([res.upstream] if res.upstream is not None else [])
    shapes = {v.name: shape_of(v) for v in variables}
    domains = {v.name: v.domain for v in variables}
    for g in res.gradients:
        assert mc.parse(str(g), shapes, domains) is g


def shape_of(v):
    if v.kind == "scalar":
        return ()
    if v.kind == "vector":
        return (str(v.rows),)
    return (str(v.rows), str(v.cols))


def test_there_are_at_least_thirty_distinct_expressions():
    assert len({c[0] for c in CASES}) >= 30
