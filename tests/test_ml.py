"""Machine-learning gradients beyond the book: derived, printed in matrix form, and checked."""

from __future__ import annotations

import pytest

import matcalc as mc

m = mc.dim("m")
X = mc.Matrix("X", "m", "d"); w = mc.Vector("w", "d"); y = mc.Vector("y", "m")
lam = mc.Scalar("lam", domain="positive")
Xb = mc.Matrix("Xb", "d", "m")                                 # a batch: examples as columns
W = mc.Matrix("W", "c", "d"); b = mc.Vector("b", "c")
Yp = mc.Matrix("Yp", "c", "m", domain="probability")           # one-hot / soft labels
Yr = mc.Matrix("Yr", "c", "m")                                 # labels not declared to sum to 1
M = mc.Matrix("M", "m", "k"); U = mc.Matrix("U", "m", "r"); V = mc.Matrix("V", "k", "r")
W1 = mc.Matrix("W1", "h", "d"); b1 = mc.Vector("b1", "h")
W2 = mc.Matrix("W2", "c", "h"); b2 = mc.Vector("b2", "c"); Tg = mc.Matrix("Tg", "c", "m")
S = mc.Matrix("S", "n", "n", domain="spd"); x = mc.Vector("x", "n"); mu = mc.Vector("mu", "n")
Xs = mc.Matrix("Xs", "n", "m")
z = mc.Vector("z", "c"); t = mc.Vector("t", "c"); p = mc.Vector("p", "c", domain="probability")

H = mc.tanh(W1 @ Xb + b1)
CASES = [
    ("ridge regression", mc.sum((X @ w - y) ** 2) + lam * mc.sum(w ** 2), [w],
     ["2 * lam * w + 2 * (X.T @ (X @ w - y))"]),
    ("ridge regression with norms", mc.norm(X @ w - y) ** 2 + lam * mc.norm(w) ** 2, [w],
     ["2 * lam * w + 2 * (X.T @ (X @ w - y))"]),
    ("logistic regression (mean negative log-likelihood)",
     (mc.sum(mc.softplus(X @ w)) - y.T @ X @ w) / m, [w],
     ["(1/m) * (X.T @ (sigmoid(X @ w) - y))"]),
    ("cross-entropy of a softmax, labels not normalised", -mc.sum(t * mc.log(mc.softmax(z))),
     [z], ["sum(t) * softmax(z) - t"]),
    ("cross-entropy of a softmax, a probability vector", -mc.sum(p * mc.log(mc.softmax(z))),
     [z], ["softmax(z) - p"]),
    ("softmax cross-entropy over a batch",
     -mc.sum(Yp * mc.log(mc.softmax(W @ Xb + b, axis=0))) / m, [W, b],
     ["(1/m) * ((softmax(W @ Xb + b, axis=0) - Yp) @ Xb.T)",
      "(1/m) * sum(softmax(W @ Xb + b, axis=0) - Yp, axis=1)"]),
    ("softmax cross-entropy over a batch, labels not normalised",
     -mc.sum(Yr * mc.log(mc.softmax(W @ Xb + b, axis=0))) / m, [W],
     ["(1/m) * ((softmax(W @ Xb + b, axis=0) * sum(Yr, axis=0, keepdims=True) - Yr) @ Xb.T)"]),
    ("matrix factorisation ||M - U V^T||_F^2", mc.norm(M - U @ V.T) ** 2, [U, V],
     ["-2 * ((M - U @ V.T) @ V)", "-2 * ((M - U @ V.T).T @ U)"]),
    ("two-layer network with bias over a batch",
     mc.sum((W2 @ H + b2 - Tg) ** 2) / (2 * m), [W1, b1, W2, b2],
     ["(1/m) * (((W2.T @ (W2 @ tanh(W1 @ Xb + b1) + b2 - Tg)) * (1 - tanh(W1 @ Xb + b1) ** 2))"
      " @ Xb.T)",
      "(1/m) * sum((W2.T @ (W2 @ tanh(W1 @ Xb + b1) + b2 - Tg)) * "
      "(1 - tanh(W1 @ Xb + b1) ** 2), axis=1)",
      "(1/m) * ((W2 @ tanh(W1 @ Xb + b1) + b2 - Tg) @ tanh(W1 @ Xb + b1).T)",
      "(1/m) * sum(W2 @ tanh(W1 @ Xb + b1) + b2 - Tg, axis=1)"]),
    ("Gaussian negative log-likelihood in the covariance",
     mc.logdet(S) / 2 + (x - mu).T @ mc.inv(S) @ (x - mu) / 2, [S, mu],
     ["(1/2) * (inv(S) - inv(S) @ ((x - mu) @ (x - mu).T @ inv(S)))",
      "-(inv(S) @ (x - mu))"]),
    ("Gaussian negative log-likelihood of a sample of m",
     m * mc.logdet(S) / 2 + mc.trace((Xs - mu).T @ mc.inv(S) @ (Xs - mu)) / 2, [S],
     ["(1/2) * (m * inv(S) - inv(S) @ ((Xs - mu) @ (Xs - mu).T @ inv(S)))"]),
]


@pytest.mark.parametrize("name,expression,wrt,forms", CASES, ids=[c[0] for c in CASES])
def test_form(name, expression, wrt, forms):
    assert [str(g) for g in mc.grad(expression, wrt).gradients] == forms


@pytest.mark.parametrize("name,expression,wrt,forms", CASES, ids=[c[0] for c in CASES])
def test_value(name, expression, wrt, forms):
    assert mc.grad(expression, wrt).check().ok


def test_the_probability_domain_is_never_assumed():
    """sum(y) = 1 is used only when y is declared a probability vector."""
    plain = mc.grad(-mc.sum(t * mc.log(mc.softmax(z))), z)
    assert "sum(t)" in str(plain.gradient)
    plain.check()                 # t drawn unnormalised: the general form is the right one
