"""Every worked derivation in the five seed notes (../shared/seeds), value and printed form."""

from __future__ import annotations

import numpy as np

import matcalc as mc
from matcalc.simplify import simplify


def by_name(res, name):
    return res.gradients[[w.name if hasattr(w, "name") else None for w in res.wrt].index(name)]


# -- 000: a linear layer, an activation, an absolute loss -------------------------------------

def test_seed_000_linear_layer_with_abs_loss():
    W = mc.Matrix("W", "n", "d"); x = mc.Vector("x", "d"); b = mc.Vector("b", "n")
    y = mc.Vector("y", "n")
    a = W @ x + b
    y_hat = mc.tanh(a)
    L = mc.sum(mc.abs(y - y_hat))
    res = mc.grad(L, [W, x, a, y_hat])
    dW, dx, da, dy_hat = res.gradients
    # dL/dW = dL/da @ x.T and dL/dx = W.T @ dL/da
    assert dW is simplify(da @ x.T)
    assert dx is simplify(W.T @ da)
    # the activation step is elementwise: dL/da = dL/dy_hat * f'(a), f' = 1 - tanh^2
    assert da is simplify(dy_hat * (1 - mc.tanh(a) ** 2))
    # abs with its sign derivative
    assert str(dy_hat) == "-sign(y - tanh(W @ x + b))"
    assert str(dW) == "-((sign(y - tanh(W @ x + b)) * (1 - tanh(W @ x + b) ** 2)) @ x.T)"
    assert str(dx) == "-(W.T @ (sign(y - tanh(W @ x + b)) * (1 - tanh(W @ x + b) ** 2)))"
    res.check(n=4, d=3)


# -- 001: D = W X with an upstream gradient dD -------------------------------------------------

def test_seed_001_matrix_product_with_upstream_gradient():
    res = mc.derive("W @ X", wrt=["W", "X"], shapes={"W": (5, 10), "X": (10, 3)})
    dW, dX = res.gradients
    assert str(dW) == "G @ X.T"
    assert str(dX) == "W.T @ G"
    # the notebook's own numbers: dW = dD.dot(X.T), dX = W.T.dot(dD)
    rng = np.random.default_rng(0)
    W = rng.standard_normal((5, 10)); X = rng.standard_normal((10, 3))
    dD = rng.standard_normal((5, 3))
    got_W, got_X = res.numpy_function()(W=W, X=X, G=dD)
    np.testing.assert_allclose(got_W, dD.dot(X.T))
    np.testing.assert_allclose(got_X, W.T.dot(dD))
    res.check()


# -- 002: an L-layer network, column convention, 1/m, bias over the batch ---------------------

def test_seed_002_l_layer_network_column_convention():
    m = mc.dim("m")
    X = mc.Matrix("X", "n", "m"); Y = mc.Matrix("Y", 1, "m")
    W1 = mc.Matrix("W1", "h1", "n"); b1 = mc.Vector("b1", "h1")
    W2 = mc.Matrix("W2", "h2", "h1"); b2 = mc.Vector("b2", "h2")
    W3 = mc.Matrix("W3", 1, "h2"); b3 = mc.Vector("b3", 1)
    Z1 = W1 @ X + b1; A1 = mc.tanh(Z1)
    Z2 = W2 @ A1 + b2; A2 = mc.tanh(Z2)
    Z3 = W3 @ A2 + b3; A3 = mc.sigmoid(Z3)
    J = mc.sum((A3 - Y) ** 2) / m
    res = mc.grad(J, [W1, b1, W2, b2, W3, b3, Z1, Z2, Z3])
    dW1, db1, dW2, db2, dW3, db3, dZ1, dZ2, dZ3 = res.gradients
    # dW[l] = dZ[l] @ A[l-1].T (the 1/m is inside dZ, as J carries it)
    assert dW3 is simplify(dZ3 @ A2.T)
    assert dW2 is simplify(dZ2 @ A1.T)
    assert dW1 is simplify(dZ1 @ X.T)
    # db[l] = the sum of dZ[l] over the examples (the columns)
    assert db2 is simplify(mc.sum(dZ2, axis=1))
    assert db1 is simplify(mc.sum(dZ1, axis=1))
    # the recursion uses W[l+1], not W[l] as the note's summary wrote
    assert dZ2 is simplify((W3.T @ dZ3) * (1 - A2 ** 2))
    assert dZ1 is simplify((W2.T @ dZ2) * (1 - A1 ** 2))
    assert "W3.T @" in str(dZ2) and "W2.T @" in str(dZ1)
    assert str(dZ3).startswith("(2/m) * ")
    res.check(n=3, m=5, h1=4, h2=2)


# -- 003: Z = A B by index sums: G B^T, A^T G, and G = ones when there is none -----------------

def test_seed_003_matrix_product_by_index_sums():
    res = mc.derive("A @ B", wrt=["A", "B"], shapes={"A": ("m", "k"), "B": ("k", "n")})
    dA, dB = res.gradients
    assert str(dA) == "G @ B.T"
    assert str(dB) == "A.T @ G"
    assert res.latex() == r"\frac{\partial \left\langle G, f \right\rangle}{\partial A} = G B^{\top},\quad \frac{\partial \left\langle G, f \right\rangle}{\partial B} = A^{\top} G"
    # "gradients = None": G is a matrix of ones
    rng = np.random.default_rng(1)
    A = rng.standard_normal((2, 2)); B = rng.standard_normal((2, 2))
    got_A, got_B = res.numpy_function()(A=A, B=B)
    np.testing.assert_allclose(got_A, np.ones((2, 2)) @ B.T)
    np.testing.assert_allclose(got_B, A.T @ np.ones((2, 2)))
    # the note's 2x2 example: dZ/da11 = b11 + b12 (the sum of B's first row), and so on
    np.testing.assert_allclose(got_A[0, 0], B[0, 0] + B[0, 1])
    res.check()


# -- 004: the row convention, X W + b.T, ReLU layers, squared error ----------------------------

def test_seed_004_row_convention_relu_network():
    X = mc.Matrix("X", "m", "d"); T = mc.Matrix("Y", "m", "c")
    W1 = mc.Matrix("W1", "d", "h"); b1 = mc.Vector("b1", "h")
    W2 = mc.Matrix("W2", "h", "h"); b2 = mc.Vector("b2", "h")
    W3 = mc.Matrix("W3", "h", "c")
    H1 = X @ W1 + b1.T; A1 = mc.relu(H1)
    H2 = A1 @ W2 + b2.T; A2 = mc.relu(H2)
    H3 = A2 @ W3
    L = mc.sum((H3 - T) ** 2) / 2
    res = mc.grad(L, [W3, W2, W1, b2, H3, H2, H1])
    dW3, dW2, dW1, db2, dZ3, dZ2, dZ1 = res.gradients
    assert str(dZ3) == "relu(relu(X @ W1 + b1.T) @ W2 + b2.T) @ W3 - Y"
    # dW3 = A2.T @ dZ3; dZ2 = dZ3 @ W3.T * relu'(H2); dW2 = A1.T @ dZ2; dW1 = X.T @ dZ1
    assert dW3 is simplify(A2.T @ dZ3)
    assert dZ2 is simplify((dZ3 @ W3.T) * mc.step(H2))
    assert dW2 is simplify(A1.T @ dZ2)
    assert dZ1 is simplify((dZ2 @ W2.T) * mc.step(H1))
    assert dW1 is simplify(X.T @ dZ1)
    # the bias (a row broadcast over the examples) gets the sum over the examples
    assert db2 is simplify(mc.sum(dZ2, axis=0))
    res.check(m=5, d=3, h=4, c=2)


def test_seed_004_where_the_note_assumed_the_softmax_derivative_is_one():
    # The note sets d softmax / dh = 1, which gives dW3 = A2.T @ (y - y_label). With the true
    # output layer y = h (the identity, its own "fully connected layer with weights I") that
    # holds; matcalc's result for that model is exactly the note's dW3.
    X = mc.Matrix("A2", "m", "h"); W3 = mc.Matrix("W3", "h", "c"); Y = mc.Matrix("Y", "m", "c")
    res = mc.grad(mc.sum((X @ W3 - Y) ** 2) / 2, W3)
    assert str(res.gradient) == "A2.T @ (A2 @ W3 - Y)"
    res.check()
