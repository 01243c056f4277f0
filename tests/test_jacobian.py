"""Jacobians, Hessians and Hessian-vector products: matrix forms asserted, values checked against
finite differences (of the function for a Jacobian, of the generated gradient for a Hessian)."""

from __future__ import annotations

import numpy as np
import pytest

import matcalc as mc

A = mc.Matrix("A", "m", "n"); W = mc.Matrix("W", "m", "n"); S = mc.Matrix("S", "n", "n")
x = mc.Vector("x", "n"); b = mc.Vector("b", "m"); y = mc.Vector("y", "m")
p = mc.Vector("p", "n", domain="positive")
X = mc.Matrix("X", "k", "n"); w = mc.Vector("w", "n"); t = mc.Vector("t", "k")
Xm = mc.Matrix("Xm", "n", "n"); B = mc.Matrix("B", "n", "n")

JACOBIANS = [
    (A @ x, x, "A"),
    (mc.tanh(A @ x), x, "diag(1 - tanh(A @ x) ** 2) @ A"),
    (mc.sigmoid(x), x, "diag(sigmoid(x) * (1 - sigmoid(x)))"),
    (x * x, x, "2 * diag(x)"),
    (mc.exp(x), x, "diag(exp(x))"),
    (mc.softmax(x), x, "diag(softmax(x)) - softmax(x) @ softmax(x).T"),
    (W @ x + b, b, "eye(m)"),
    (A.T @ y, y, "A.T"),
    (mc.relu(A @ x), x, "diag(step(A @ x)) @ A"),
]
HESSIANS = [
    (x.T @ S @ x, x, "S + S.T"),
    (mc.sum(mc.softplus(X @ w)) - t.T @ X @ w, w,
     "X.T @ diag(sigmoid(X @ w) * (1 - sigmoid(X @ w))) @ X"),
    (mc.logsumexp(x), x, "diag(softmax(x)) - softmax(x) @ softmax(x).T"),
    (mc.norm(x) ** 2, x, "2 * eye(n)"),
    (mc.sum(mc.exp(x)), x, "diag(exp(x))"),
    (mc.sum((A @ x - y) ** 2), x, "2 * (A.T @ A)"),
    (mc.sum(mc.log(p)), p, "-diag(1 / p ** 2)"),
    (mc.sum(mc.tanh(x)), x, "-2 * diag(tanh(x) * (1 - tanh(x) ** 2))"),
]
HVPS = [   # Hessian-vector products: a matrix form for any shape of the variable
    (mc.trace(Xm.T @ Xm @ B), Xm, "v @ (B.T + B)"),
    (mc.sum((Xm @ w) ** 2), Xm, "2 * (v @ w @ w.T)"),
    (mc.logdet(Xm), Xm, "-(inv(Xm).T @ (v.T @ inv(Xm).T))"),
]


@pytest.mark.parametrize("f,v,form", JACOBIANS, ids=[str(f) for f, *_ in JACOBIANS])
def test_jacobian(f, v, form):
    res = mc.jacobian(f, v)
    assert str(res.matrix) == form and res.gradient is res.matrix
    assert res.check().ok


@pytest.mark.parametrize("f,v,form", HESSIANS, ids=[str(f) for f, *_ in HESSIANS])
def test_hessian(f, v, form):
    res = mc.hessian(f, v)
    assert str(res.matrix) == form
    assert res.check().ok


@pytest.mark.parametrize("f,v,form", HVPS, ids=[str(f) for f, *_ in HVPS])
def test_hessian_vector_product(f, v, form):
    res = mc.hvp(f, v)
    assert str(res.matrix) == form
    assert res.check().ok


def test_at_least_fifteen_jacobians_and_hessians():
    assert len(JACOBIANS) + len(HESSIANS) + len(HVPS) >= 15


def test_jacobian_layout_is_m_by_n_and_the_code_computes_it():
    res = mc.jacobian(mc.tanh(A @ x), x)
    assert res.matrix.shape == A.shape
    rng = np.random.default_rng(0)
    a, xv = rng.standard_normal((3, 2)), rng.standard_normal(2)
    got = res.numpy_function()(A=a, x=xv)
    want = np.diag(1 - np.tanh(a @ xv) ** 2) @ a
    np.testing.assert_allclose(got, want)


def test_text_input_and_outputs():
    res = mc.hessian("x.T @ A @ x", "x", shapes={"A": ("n", "n"), "x": ("n",)})
    assert str(res.matrix) == "A + A.T"
    assert res.latex() == r"A + A^{\top}"
    assert res.equations()[0].startswith(r"\frac{\partial^2 f}")
    assert res.mathml().startswith("<math")
    assert "def gradient(A, x):" in res.numpy_source()      # the order of shapes=


def test_a_wrong_hessian_fails_the_check(monkeypatch):
    res = mc.hessian(x.T @ S @ x, x)
    real = res.numpy_source
    assert "return symmetric_sum(S)" in real()          # S + S.T, read by cache-friendly bands
    monkeypatch.setattr(res, "numpy_source", lambda name="gradient": real(name).replace(
        "return symmetric_sum(S)", "return S + S"))
    assert not res.check(raise_on_failure=False).ok


@pytest.mark.parametrize("call,fragment", [
    (lambda: mc.hessian(A @ x, x), "scalar"),
    (lambda: mc.hessian(Xm @ Xm, Xm), "scalar"),
])
def test_a_hessian_of_a_non_scalar_is_a_clear_error(call, fragment):
    with pytest.raises(mc.UnsupportedError, match=fragment):
        call()


def test_derivatives_without_a_matrix_form_are_index_tensors():
    # a Jacobian w.r.t. a matrix and a Hessian w.r.t. a matrix: see tests/test_tensor.py
    assert str(mc.jacobian(A @ x, A)) == 'einsum("l,ik->ikl", x, eye(m))'
    assert str(mc.hessian(mc.trace(Xm @ Xm), Xm)) == '2 * einsum("il,jk->ijkl", eye(n), eye(n))'
