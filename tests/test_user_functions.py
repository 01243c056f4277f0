"""Elementwise functions the user names but does not define: the seed notes' activation g.

Seeds 000 and 002 write a = g(z) "where g is an element wise function" and derive with g'. The
printed results below are the notes' own formulas; the generated code is checked against NumPy
written independently here, with g = tanh and its derivatives passed in.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import matcalc as mc

SEED_002 = {"W1": ("h", "n"), "x": ("n",), "b1": ("h",), "W2": ("k", "h"), "b2": ("k",),
            "y": ("k",)}


def tanh_prime(z):
    return 1 - np.tanh(z) ** 2


def tanh_prime2(z):
    return -2 * np.tanh(z) * tanh_prime(z)


def test_the_issue_example_prints_g_prime():
    res = mc.derive("sum((g(W @ X + b) - Y)**2)", wrt="W", functions=["g"],
                    shapes={"W": ("n", "d"), "X": ("d", "m"), "b": ("n",), "Y": ("n", "m")})
    assert str(res.gradient) == "2 * (((g(W @ X + b) - Y) * g'(W @ X + b)) @ X.T)"
    assert r"g'\left(" in res.latex()
    assert "<msup><mi>g</mi><mi>&#x02032;</mi></msup>" in res.mathml()       # g with a prime


def test_seed_002_general_case():
    """dL/dW[1] = ((W[2]ᵀ δ[2]) ⊙ g'(z[1])) a[0]ᵀ, dL/db[1] = (W[2]ᵀ δ[2]) ⊙ g'(z[1])."""
    res = mc.derive("sum((W2 @ g(W1 @ x + b1) + b2 - y) ** 2) / 2", wrt=["W1", "b1", "W2"],
                    shapes=SEED_002, functions=["g"])
    dW1, db1, dW2 = (str(g) for g in res.gradients)
    assert dW1 == "((W2.T @ (W2 @ g(W1 @ x + b1) + b2 - y)) * g'(W1 @ x + b1)) @ x.T"
    assert db1 == "(W2.T @ (W2 @ g(W1 @ x + b1) + b2 - y)) * g'(W1 @ x + b1)"
    assert dW2 == "(W2 @ g(W1 @ x + b1) + b2 - y) @ g(W1 @ x + b1).T"

    rng = np.random.default_rng(0)
    sizes = {"h": 4, "n": 3, "k": 2}
    v = {name: rng.standard_normal(tuple(sizes[d] for d in shape))
         for name, shape in SEED_002.items()}
    got = res.numpy_function()(**v, g=np.tanh, g_prime=tanh_prime)
    z1 = v["W1"] @ v["x"] + v["b1"]
    delta2 = v["W2"] @ np.tanh(z1) + v["b2"] - v["y"]
    delta1 = (v["W2"].T @ delta2) * tanh_prime(z1)
    np.testing.assert_allclose(got[0], np.outer(delta1, v["x"]), rtol=1e-12)
    np.testing.assert_allclose(got[1], delta1, rtol=1e-12)
    np.testing.assert_allclose(got[2], np.outer(delta2, np.tanh(z1)), rtol=1e-12)


def test_generated_code_takes_the_functions_after_the_variables():
    res = mc.derive("sum(g(A) * B)", wrt="A", shapes={"A": ("n", "m"), "B": ("n", "m")},
                    functions=["g"])
    assert "def gradient(A, B, g_prime):" in res.numpy_source()
    assert list(inspect.signature(res.value_function()).parameters) == ["A", "B", "g"]


def test_check_uses_sine_by_default_and_the_functions_given():
    res = mc.derive("sum(g(W @ x) ** 2)", wrt="W", shapes={"W": ("n", "n"), "x": ("n",)},
                    functions=["g"])
    assert res.check().ok
    assert res.check(functions={"g": np.tanh, "g_prime": tanh_prime}).ok
    with pytest.raises(mc.MatcalcError, match="needs g_prime"):
        res.check(functions={"g": np.tanh})
    # a wrong derivative is caught, as any wrong gradient is
    with pytest.raises(mc.CheckError):
        res.check(functions={"g": np.tanh, "g_prime": np.cos})


def test_second_derivatives_are_g_double_prime():
    x = mc.parse("x", {"x": ("n",)})
    hess = mc.hessian(mc.parse("sum(g(x))", {"x": ("n",)}, functions=["g"]), x)
    assert str(hess.gradient) == "diag(g''(x))"
    assert hess.check().ok
    z = np.linspace(-1, 1, 3)
    np.testing.assert_allclose(hess.numpy_function()(x=z, g_prime2=tanh_prime2),
                               np.diag(tanh_prime2(z)))


@pytest.mark.parametrize("functions, words", [
    ("g", "a list of names"),
    (["W"], "both a variable and a function"),
    (["exp"], "reserved"),
    (["g_prime"], "may not contain"),
])
def test_bad_function_names(functions, words):
    with pytest.raises(mc.MatcalcError, match=words):
        mc.derive("sum(W)", wrt="W", shapes={"W": ("n", "n")}, functions=functions)


def test_an_unnamed_function_says_how_to_name_it():
    with pytest.raises(mc.MatcalcError, match=r"functions=\['g'\]"):
        mc.derive("sum(g(W))", wrt="W", shapes={"W": ("n", "n")})
    with pytest.raises(mc.MatcalcError, match="exactly one argument"):
        mc.derive("sum(g(W, W))", wrt="W", shapes={"W": ("n", "n")}, functions=["g"])


def test_jacobians_and_backward_modules():
    jac = mc.jacobian("g(x) * x", "x", shapes={"x": ("n",)}, functions=["g"])
    assert str(jac.gradient) == "diag(g(x) + x * g'(x))"
    assert jac.check().ok
    with pytest.raises(mc.UnsupportedError, match="derive"):
        mc.backward("sum(g(W @ x))", ["W"], shapes={"W": ("n", "n"), "x": ("n",)},
                    functions=["g"])
