"""Jacobians of matrix-valued expressions and Hessians with respect to a matrix (issue 6).

Each case asserts the printed einsum form and, where there is one, the Kronecker form, then
checks the generated array against central finite differences (of the function for a Jacobian,
of its generated gradient for a Hessian). Forms are the Matrix Cookbook's where it has them:
d(A X B)_ij / dX_kl = A_ik B_lj and vec(A X B) = (B^T kron A) vec(X) (eq. 520);
d(X^-1)_ij / dX_kl = -(X^-1)_ik (X^-1)_lj (eq. 59).
"""

from __future__ import annotations

import xml.dom.minidom

import numpy as np
import pytest

import matcalc as mc
from matcalc.errors import UnsupportedError

A = mc.Matrix("A", "n", "n")
B = mc.Matrix("B", "n", "n")
X = mc.Matrix("X", "n", "n")
P = mc.Matrix("P", "n", "n", domain="positive")
W = mc.Matrix("W", "m", "n")
Z = mc.Matrix("Z", "m", "n")
x = mc.Vector("x", "n")

# (what, expression, variable, einsum text, Kronecker text or None)
CASES = [
    ("jacobian", A @ X @ B, X, 'einsum("ik,lj->ijkl", A, B)', "kron(B.T, A)"),
    ("jacobian", mc.inv(X), X, '-einsum("lj,ik->ijkl", inv(X), inv(X))',
     "-kron(inv(X).T, inv(X))"),
    ("jacobian", X.T, X, 'einsum("il,jk->ijkl", eye(n), eye(n))', None),
    ("jacobian", X * X, X, 'einsum("kl,ik,jl->ijkl", 2 * X, eye(n), eye(n))', None),
    ("jacobian", W @ x, W, 'einsum("l,ik->ikl", x, eye(m))', "kron(x.T, eye(m))"),
    ("jacobian", mc.tanh(W @ x), W, 'einsum("k,l,ik->ikl", 1 - tanh(W @ x) ** 2, x, eye(m))',
     "kron(x.T, diag(1 - tanh(W @ x) ** 2))"),
    ("jacobian", x @ x.T, x, 'einsum("j,ik->ijk", x, eye(n)) + einsum("i,jk->ijk", x, eye(n))',
     None),
    ("jacobian", mc.softmax(Z, axis=0), Z,
     'einsum("kl,ik,jl->ijkl", softmax(Z, axis=0), eye(m), eye(n)) - '
     'einsum("il,kl,jl->ijkl", softmax(Z, axis=0), softmax(Z, axis=0), eye(n))', None),
    ("jacobian", mc.sum(Z, axis=1), Z, 'einsum("ik,l->ikl", eye(m), ones(n))',
     "kron(ones(1, n), eye(m))"),
    ("jacobian", mc.sum(Z) * Z, Z,
     'sum(Z) * einsum("ik,jl->ijkl", eye(m), eye(n)) + einsum("ij,k,l->ijkl", Z, ones(m), ones(n))',
     None),
    ("hessian", mc.trace(X.T @ A @ X), X, 'einsum("ik,jl->ijkl", A + A.T, eye(n))',
     "kron(eye(n), A + A.T)"),
    ("hessian", mc.sum((A @ X - B) ** 2), X, '2 * einsum("ik,jl->ijkl", A.T @ A, eye(n))',
     "2 * kron(eye(n), A.T @ A)"),
    ("hessian", mc.trace(A @ X @ B @ X.T), X,
     'einsum("ki,jl->ijkl", A, B) + einsum("ik,lj->ijkl", A, B)', "kron(B, A.T) + kron(B.T, A)"),
    ("hessian", x.T @ X.T @ X @ x, X, '2 * einsum("j,l,ik->ijkl", x, x, eye(n))',
     "2 * kron(x @ x.T, eye(n))"),
    ("hessian", mc.logdet(X), X, '-einsum("li,jk->ijkl", inv(X), inv(X))', None),
    ("hessian", mc.det(X), X, 'det(X) * einsum("ji,lk->ijkl", inv(X), inv(X)) - '
     'det(X) * einsum("li,jk->ijkl", inv(X), inv(X))', None),
    ("hessian", mc.sum(mc.log(P)), P, '-einsum("kl,ik,jl->ijkl", 1 / P ** 2, eye(n), eye(n))',
     None),
    ("hessian", mc.trace(X @ X), X, '2 * einsum("il,jk->ijkl", eye(n), eye(n))', None),
    ("hessian", mc.sum(mc.softplus(Z @ x)), Z,
     'einsum("j,k,l,ik->ijkl", x, sigmoid(Z @ x) * (1 - sigmoid(Z @ x)), x, eye(m))',
     "kron(x @ x.T, diag(sigmoid(Z @ x) * (1 - sigmoid(Z @ x))))"),
    ("hessian", mc.logsumexp(Z), Z, '-einsum("ij,kl->ijkl", softmax(Z), softmax(Z)) + '
     'einsum("kl,ik,jl->ijkl", softmax(Z), eye(m), eye(n))', None),
    ("hessian", x.T @ X @ x, X, "0", "0"),
]


def derive(what, f, v):
    return (mc.jacobian if what == "jacobian" else mc.hessian)(f, v)


@pytest.mark.parametrize("what,f,v,form,kron", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_form_and_finite_differences(what, f, v, form, kron):
    res = derive(what, f, v)
    assert isinstance(res, mc.TensorDerivative)
    assert str(res) == form
    assert res.tensor.kronecker_text() == kron
    report = res.check()
    assert report.ok and report.results[0].entries > 0


@pytest.mark.parametrize("what,f,v,form,kron", [c for c in CASES if c[4] is not None],
                         ids=[f"{c[0]}-{c[1]}" for c in CASES if c[4] is not None])
def test_the_kronecker_form_is_the_tensor_in_column_major_vec_layout(what, f, v, form, kron):
    res = derive(what, f, v)
    rng = np.random.default_rng(3)
    sizes = {"n": 3, "m": 4}
    inputs = {}
    for var in res.variables:
        shape = tuple(sizes[str(d)] for d in var.shape if str(d) in sizes)
        inputs[var.name] = rng.uniform(0.5, 1.5, shape)      # positive for P
    tensor = res.numpy_function()(**inputs)
    vec = res.numpy_function(layout="vec")(**inputs)
    t = res.tensor
    f_dims = [sizes.get(str(d), 1) for d in t.f_shape]
    x_dims = [sizes.get(str(d), 1) for d in t.x_shape]
    full = np.asarray(tensor).reshape(f_dims + x_dims)
    # vec is column-major: entry (j * p + i, l * m + k) is d f_ij / d x_kl
    expected = full.transpose(1, 0, 3, 2).reshape(f_dims[0] * f_dims[1], x_dims[0] * x_dims[1])
    np.testing.assert_allclose(vec, expected, rtol=1e-12, atol=1e-12)


def test_the_tensor_axes_follow_the_layout_of_the_issue():
    # d f_ij / d x_kl: f's indices first, then x's; axes of size 1 dropped
    res = mc.jacobian(A @ X @ B, X)
    a, b, xv = (np.random.default_rng(0).standard_normal((3, 3)) for _ in range(3))
    T = res.numpy_function()(A=a, X=xv, B=b)
    assert T.shape == (3, 3, 3, 3)
    np.testing.assert_allclose(T[0, 1, 2, 0], a[0, 2] * b[0, 1])
    assert res.numpy_function()(A=a, X=xv, B=b).dtype == np.float64
    T32 = res.numpy_function()(A=a.astype(np.float32), X=xv.astype(np.float32),
                               B=b.astype(np.float32))
    assert T32.dtype == np.float32
    J = mc.jacobian(W @ x, W).numpy_function()(W=np.ones((4, 3)), x=np.arange(3.0))
    assert J.shape == (4, 4, 3)                # d (W x)_i / d W_kl
    np.testing.assert_array_equal(J[1, 1], np.arange(3.0))
    np.testing.assert_array_equal(J[1, 0], np.zeros(3))


def test_a_hessian_with_respect_to_a_matrix_is_symmetric_and_agrees_with_hvp():
    f = mc.sum(mc.softplus(Z @ x)) + mc.trace(Z.T @ Z @ mc.Matrix("C", "n", "n"))
    H = mc.hessian(f, Z)
    hv = mc.hvp(f, Z)
    rng = np.random.default_rng(1)
    values = {"Z": rng.standard_normal((4, 3)), "x": rng.standard_normal(3),
              "C": rng.standard_normal((3, 3))}
    T = H.numpy_function()(**values)
    np.testing.assert_allclose(T, T.transpose(2, 3, 0, 1), atol=1e-12)
    V = rng.standard_normal((4, 3))
    np.testing.assert_allclose(np.einsum("ijkl,kl->ij", T, V), hv.numpy_function()(**values, v=V),
                               atol=1e-10)


def test_text_input_latex_and_mathml():
    res = mc.hessian("trace(X.T @ A @ X)", "X", shapes={"X": ("n", "n"), "A": ("n", "n")})
    assert str(res) == 'einsum("ik,jl->ijkl", A + A.T, eye(n))'
    latex = res.latex()
    assert r"\frac{\partial^2 f}{\partial X_{ij}\,\partial X_{kl}}" in latex
    assert r"\left(A + A^{\top}\right)_{ik} \delta_{jl}" in latex
    assert r"\otimes" in latex and r"\operatorname{vec}" in latex
    doc = xml.dom.minidom.parseString(res.mathml())
    assert doc.documentElement.tagName == "math"
    assert "\\" not in "".join(n.data for n in doc.getElementsByTagName("mi") if n.firstChild
                               for n in [n.firstChild])
    jac = mc.jacobian("inv(X)", "X", shapes={"X": ("n", "n")})
    assert r"\frac{\partial f_{ij}}{\partial X_{kl}}" in jac.latex()
    assert r"-\left(X^{-1}\right)^{\top} \otimes X^{-1}" in jac.latex() or \
        r"\otimes" in jac.latex()


def test_the_generated_code_reads_like_the_formula():
    src = mc.hessian(mc.trace(X.T @ A @ X), X).numpy_source()
    line = next(x for x in src.splitlines() if x.strip().startswith("T = "))
    assert line.strip().startswith('T = np.einsum("ik,jl->ijkl", ')
    assert line.strip().endswith(", np.eye(n, dtype=dtype), optimize=True)")
    vec = mc.hessian(mc.trace(X.T @ A @ X), X).numpy_source(layout="vec")
    assert "T = np.kron(np.eye(n, dtype=dtype), " in vec
    det = mc.hessian(mc.det(X), X).numpy_source()
    assert det.count("np.linalg.inv(X)") == 1          # the inverse is computed once


def test_no_kronecker_form_is_refused_clearly():
    res = mc.hessian(mc.logdet(X), X)
    assert res.tensor.kronecker is None
    with pytest.raises(UnsupportedError, match="no Kronecker form"):
        res.numpy_source(layout="vec")
    with pytest.raises(UnsupportedError, match="layout"):
        res.numpy_source(layout="rows")


def test_a_vector_of_a_vector_stays_in_matrix_form():
    res = mc.jacobian(mc.tanh(A @ x), x)
    assert not isinstance(res, mc.TensorDerivative)
    assert str(res.matrix) == "diag(1 - tanh(A @ x) ** 2) @ A"


def test_a_wrong_tensor_fails_the_check(monkeypatch):
    res = mc.jacobian(A @ X @ B, X)
    right = res.numpy_function()
    monkeypatch.setattr(res, "numpy_function",
                        lambda layout="tensor": lambda **kw: right(**kw).transpose(0, 1, 3, 2))
    with pytest.raises(mc.CheckError):
        res.check()


def test_a_huge_index_form_is_refused_not_hung():
    e = X
    for _ in range(12):                      # the VJP shares each tanh among many uses
        e = mc.tanh(e @ e)
    with pytest.raises(UnsupportedError, match="too large.*hvp"):
        mc.hessian(mc.sum(e), X)
    assert mc.hvp(mc.sum(e), X).matrix is not None


def test_with_respect_to_a_subexpression_no_rewrite_drops_a_path():
    # log(exp(A)) -> A would remove one of the two paths through exp(A)
    e = mc.exp(A)
    res = mc.jacobian(mc.log(e) * e, e)
    assert str(res) == ('einsum("ik,jl->ijkl", eye(n), eye(n)) + '
                        'einsum("kl,ik,jl->ijkl", log(exp(A)), eye(n), eye(n))')
    with pytest.raises(UnsupportedError, match="variable to vary"):
        res.check()
    w = mc.exp(x)
    assert str(mc.hessian(mc.sum(mc.log(w) * w), w).matrix) == "diag(1 / exp(x))"


@pytest.mark.parametrize("f", [
    mc.sum(mc.trace(x @ x.T) * (x @ x.T @ (x @ x.T)).T.T.T),    # large-profile finding
    mc.sum(mc.Vector("u", "n")) * mc.sum(x @ x.T @ (x @ x.T)),
    mc.sum(X) * mc.sum(X @ X.T @ (X @ X.T)),
])
def test_like_terms_with_a_repeated_factor_are_joined_once(f):
    # joining s (s_u) s δ_ik and sᵀ (s_u) s δ_ik must add one of the two equal factors s, not both
    v = X if X in mc.expr.variables([f]) else x
    assert mc.hessian(f, v).check().ok
