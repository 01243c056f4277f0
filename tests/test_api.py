"""The public API: derive / grad, the forms generated functions take and return, G, errors,
and an honest numeric check."""

from __future__ import annotations

import numpy as np
import pytest

import matcalc as mc


def test_derive_text_with_a_list_returns_tuples_in_order():
    res = mc.derive("sum((W @ x + b - y) ** 2)", wrt=["b", "W"],
                    shapes={"W": ("n", "d"), "x": ("d",), "b": ("n",), "y": ("n",)})
    assert isinstance(res.gradient, tuple) and len(res.gradient) == 2
    assert [str(g) for g in res.gradient] == ["2 * (W @ x + b - y)", "2 * ((W @ x + b - y) @ x.T)"]
    rng = np.random.default_rng(0)
    W, x, b, y = rng.standard_normal((3, 2)), rng.standard_normal(2), rng.standard_normal(3), \
        rng.standard_normal(3)
    db, dW = res.numpy_function()(W=W, x=x, b=b, y=y)
    r = W @ x + b - y
    np.testing.assert_allclose(db, 2 * r)
    np.testing.assert_allclose(dW, 2 * np.outer(r, x))
    assert db.shape == (3,) and dW.shape == (3, 2)       # a vector comes back 1-D


def test_grad_and_derive_agree():
    A = mc.Matrix("A", "n", "n"); x = mc.Vector("x", "n")
    assert mc.grad(x.T @ A @ x, x).gradient is mc.derive(x.T @ A @ x, x).gradient


def test_scalars_go_in_as_numbers_and_come_out_as_floats():
    res = mc.derive("a * sum(x ** 2)", wrt=["a", "x"], shapes={"a": (), "x": ("n",)})
    da, dx = res.numpy_function()(a=2.0, x=np.array([1.0, 2.0]))
    assert isinstance(da, float) and da == 5.0
    np.testing.assert_allclose(dx, [4.0, 8.0])


def test_float32_stays_float32_and_integers_become_float():
    res = mc.derive("sum(tanh(W @ x))", wrt="W", shapes={"W": ("n", "d"), "x": ("d",)})
    f = res.numpy_function()
    out32 = f(W=np.ones((2, 3), np.float32), x=np.ones(3, np.float32))
    assert out32.dtype == np.float32
    assert f(W=np.ones((2, 3), int), x=np.ones(3, int)).dtype == np.float64


def test_upstream_gradient_defaults_to_ones_and_can_be_given():
    res = mc.derive("A @ B", wrt="A", shapes={"A": ("m", "k"), "B": ("k", "n")})
    f = res.numpy_function()
    rng = np.random.default_rng(1)
    A, B, G = rng.standard_normal((2, 3)), rng.standard_normal((3, 4)), rng.standard_normal((2, 4))
    np.testing.assert_allclose(f(A=A, B=B), np.ones((2, 4)) @ B.T)
    np.testing.assert_allclose(f(A=A, B=B, G=G), G @ B.T)


def test_upstream_gradient_name_avoids_the_users_names():
    res = mc.derive("G @ B", wrt="G", shapes={"G": ("m", "k"), "B": ("k", "n")})
    assert str(res.gradient) == "G_1 @ B.T"
    assert res.upstream.name == "G_1"
    res.check()


def test_gradient_with_respect_to_a_subexpression_is_checked_too():
    W = mc.Matrix("W", "n", "d"); x = mc.Vector("x", "d"); b = mc.Vector("b", "n")
    z = W @ x + b
    res = mc.grad(mc.sum(mc.sigmoid(z) ** 2), [z, W])
    report = res.check()
    assert [r.name for r in report.results] == ["(W @ x + b)", "W"]


def test_a_variable_the_expression_does_not_use_has_a_zero_gradient():
    res = mc.derive("sum(x)", wrt=["x", "y"], shapes={"x": ("n",), "y": ("n",)})
    assert str(res.gradients[1]) == "zeros(n)"
    dx, dy = res.numpy_function()(x=np.ones(3), y=np.ones(3))
    np.testing.assert_allclose(dy, np.zeros(3))
    res.check()


@pytest.mark.parametrize("call,error,fragment", [
    (lambda: mc.derive("sum(X)", wrt="X"), mc.ParseError,
     r"the shape of 'X' is not fixed by its use .*shapes=\{'X': \('n', 'm'\)\}"),
    (lambda: mc.derive("sum(X)", wrt="Y", shapes={"X": ("n", "n")}),
     mc.MatcalcError, "'Y' is not a variable of the expression; its variables are: X"),
    (lambda: mc.derive("sum(X)", wrt=[], shapes={"X": ("n", "n")}), mc.MatcalcError, "empty"),
    (lambda: mc.derive(mc.Matrix("X", "n", "n"), wrt="X", shapes={"X": ("n", "n")}),
     mc.MatcalcError, "for text"),
    (lambda: mc.derive(42, wrt="X"), mc.MatcalcError, "pass text or an expression"),
    (lambda: mc.grad(mc.sum(mc.Matrix("X", "n", "n")) + mc.sum(mc.Matrix("X", "n", "m")),
                     mc.Matrix("X", "n", "n")), mc.MatcalcError, "two different shapes"),
    (lambda: mc.grad(mc.sum(mc.Matrix("X", "n", "n")), mc.Matrix("Y", "n", "n") @ mc.ones("n")),
     mc.MatcalcError, "not a subexpression"),
    (lambda: mc.derive("sum(X)", wrt="X", shapes={"X": ("n", "n")}).check(q=3),
     mc.DomainError, "no dimension named q"),
    (lambda: mc.derive("sum(log(X))", wrt="X", shapes={"X": ("n", "n")}).check(),
     mc.DomainError, "declare such variables positive"),
    (lambda: mc.derive("sum(X)", wrt="X", shapes={"X": ("n", "n")},
                       domains={"X": "complex"}), mc.MatcalcError, "domain"),
])
def test_errors_are_matcalc_errors_with_clear_messages(call, error, fragment):
    with pytest.raises(error, match=fragment):
        call()


def test_the_check_fails_loudly_on_a_wrong_gradient(monkeypatch):
    res = mc.derive("trace(A @ X)", wrt="X", shapes={"A": ("n", "n"), "X": ("n", "n")})
    real = res.numpy_source
    monkeypatch.setattr(res, "numpy_source", lambda name="gradient": real(name).replace(
        "return A.T", "return A"))                       # the classic missing transpose
    with pytest.raises(mc.CheckError) as err:
        res.check()
    assert err.value.report.ok is False
    assert "WRONG" in str(err.value)
    report = res.check(raise_on_failure=False)
    assert not report.ok and report.worst > 0.1


def test_the_check_uses_distinct_sizes_so_a_transpose_cannot_hide():
    report = mc.derive("sum(A @ X)", wrt="X", shapes={"A": ("n", "k"), "X": ("k", "m")}).check()
    assert len(set(report.sizes.values())) == 3


def test_the_check_warns_when_an_input_cannot_leave_a_kink():
    report = mc.derive("sum(relu(x - x)) + sum(x)", wrt="x", shapes={"x": ("n",)}).check()
    assert report.ok
    assert any("kink" in w for w in report.warnings)


def test_jupyter_display():
    res = mc.derive("x.T @ A @ x", wrt="x", shapes={"A": ("n", "n"), "x": ("n",)})
    assert res._repr_latex_() == r"$\frac{\partial f}{\partial x} = \left(A + A^{\top}\right) x$"


def test_gradients_of_several_variables_share_intermediates():
    res = mc.derive("sum(tanh(W @ X + b))", wrt=["W", "b", "X"],
                    shapes={"W": ("n", "d"), "X": ("d", "m"), "b": ("n",)})
    source = res.numpy_source()
    assert source.count("np.tanh(") == 1         # computed once, used by all three
