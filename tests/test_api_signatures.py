"""One signature style: derive, grad, jacobian, hessian, hvp and backward all take
``(expression, wrt, shapes=, domains=, functions=)``; the positional forms keep working; a
keyword none of them takes is refused in Python's own spelling with the one to use.

Values are checked against NumPy written out by hand, never against matcalc."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import matcalc as mc

ENTRY_POINTS = [mc.derive, mc.grad, mc.jacobian, mc.hessian, mc.hvp, mc.backward]
QUADRATIC = "x.T @ A @ x"
SHAPES = {"A": ("n", "n"), "x": ("n",)}
rng = np.random.default_rng(0)
Av, xv, vv = rng.standard_normal((3, 3)), rng.standard_normal(3), rng.standard_normal(3)


@pytest.mark.parametrize("func", ENTRY_POINTS, ids=lambda f: f.__name__)
def test_every_entry_point_takes_the_same_leading_parameters(func):
    params = inspect.signature(func).parameters
    assert list(params)[:4] == ["expression", "wrt", "shapes", "domains"]
    assert params["functions"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["functions"].default is None


def test_hessian_jacobian_hvp_take_wrt_and_shapes_as_keywords():
    H = mc.hessian(QUADRATIC, wrt="x", shapes=SHAPES).numpy_function()(A=Av, x=xv)
    np.testing.assert_allclose(H, Av + Av.T)
    J = mc.jacobian("tanh(A @ x)", wrt="x", shapes=SHAPES).numpy_function()(A=Av, x=xv)
    np.testing.assert_allclose(J, np.diag(1 - np.tanh(Av @ xv) ** 2) @ Av)
    res = mc.hvp(QUADRATIC, wrt="x", shapes=SHAPES)
    got = res.numpy_function()(A=Av, x=xv, **{res.direction.name: vv})
    np.testing.assert_allclose(got, (Av + Av.T) @ vv)


def test_grad_takes_text_with_shapes_and_domains():
    res = mc.grad("sum(log(x) * (A @ x))", "x", shapes=SHAPES, domains={"x": "positive"})
    x = np.abs(xv) + 0.5
    want = (Av @ x) / x + Av.T @ np.log(x)
    np.testing.assert_allclose(res.numpy_function()(A=Av, x=x), want)
    assert res.check().ok                     # the domain reached the check: log of positives


def test_backward_takes_the_same_keywords():
    code = mc.backward(expression="sum(tanh(A @ x))", wrt=["x"], shapes=SHAPES)
    loss, kept = code.forward(A=Av, x=xv)
    (dx,) = code.backward(kept)
    np.testing.assert_allclose(loss, np.sum(np.tanh(Av @ xv)))
    np.testing.assert_allclose(dx, Av.T @ (1 - np.tanh(Av @ xv) ** 2))


def test_positional_forms_keep_working():
    A, x = mc.Matrix("A", "n", "n"), mc.Vector("x", "n")
    symmetric = Av + Av.T
    for res in (mc.hessian(x.T @ A @ x, x), mc.hessian(QUADRATIC, "x", SHAPES),
                mc.hessian(QUADRATIC, "x", SHAPES, None)):
        np.testing.assert_allclose(res.numpy_function()(A=Av, x=xv), symmetric)
    np.testing.assert_allclose(mc.jacobian(A @ x, x).numpy_function()(A=Av, x=xv), Av)
    res = mc.hvp(QUADRATIC, "x", SHAPES, None, "u")
    assert res.direction.name == "u"
    np.testing.assert_allclose(res.numpy_function()(A=Av, x=xv, u=vv), symmetric @ vv)
    for res in (mc.derive(QUADRATIC, "x", SHAPES), mc.grad(x.T @ A @ x, x),
                mc.grad(QUADRATIC, "x", SHAPES)):
        np.testing.assert_allclose(res.numpy_function()(A=Av, x=xv), symmetric @ xv)
    code = mc.backward(QUADRATIC, ["x"], SHAPES, None, {"xA": "x.T @ A"})
    (dx,) = code.backward(code.forward(A=Av, x=xv)[1])
    np.testing.assert_allclose(dx, symmetric @ xv)


@pytest.mark.parametrize("call,fragment", [
    (lambda: mc.hessian(QUADRATIC, wrt="x", shape=SHAPES),
     "hessian() got an unexpected keyword argument 'shape'; did you mean shapes=?"),
    (lambda: mc.derive(QUADRATIC, wrt="x", shapes=SHAPES, domain={"x": "positive"}),
     "derive() got an unexpected keyword argument 'domain'; did you mean domains=?"),
    (lambda: mc.jacobian(QUADRATIC, x="x", shapes=SHAPES),
     "jacobian() got an unexpected keyword argument 'x'; did you mean wrt=?"),
    (lambda: mc.backward(loss="sum(x)", wrt="x", shapes=SHAPES),
     "backward() got an unexpected keyword argument 'loss'; did you mean expression=?"),
    (lambda: mc.hvp(QUADRATIC, wrt="x", shapes=SHAPES, directoin="u"),
     "hvp() got an unexpected keyword argument 'directoin'; did you mean direction=?"),
    (lambda: mc.grad(QUADRATIC, wrt="x", shapes=SHAPES, colour="red"),
     "grad() got an unexpected keyword argument 'colour'. It takes expression=, wrt=, "
     "shapes=, domains=, infer_kinds=, functions=."),
])
def test_a_wrong_keyword_is_named_in_pythons_spelling(call, fragment):
    with pytest.raises(mc.ArgumentError) as err:
        call()
    assert fragment in str(err.value)
    assert isinstance(err.value, TypeError) and isinstance(err.value, mc.MatcalcError)
    assert "--" not in str(err.value)                   # not the command line's spelling


def test_second_order_entry_points_take_one_variable():
    with pytest.raises(mc.MatcalcError, match="with respect to one variable"):
        mc.hessian(QUADRATIC, wrt=["x", "A"], shapes=SHAPES)


def test_an_unknown_wrt_name_lists_the_variables_everywhere():
    for func in (mc.derive, mc.jacobian, mc.hessian, mc.hvp):
        with pytest.raises(mc.MatcalcError, match="'y' is not a variable of the expression; "
                                                  "its variables are: A, x"):
            func(QUADRATIC, wrt="y", shapes=SHAPES)


def test_functions_keyword_reaches_the_parser_from_every_entry_point():
    """functions= passes through the one reading every entry point shares (api._read)."""
    g = {"g_prime": np.cos, "g_prime2": lambda z: -np.sin(z)}

    def run(res, **extra):
        f = res.numpy_function()
        params = inspect.signature(f).parameters
        return f(x=xv, **extra, **{k: v for k, v in g.items() if k in params})

    kw = {"wrt": "x", "shapes": {"x": ("n",)}, "functions": ["g"]}
    np.testing.assert_allclose(run(mc.derive("sum(g(x))", **kw)), np.cos(xv))
    np.testing.assert_allclose(run(mc.grad("sum(g(x))", **kw)), np.cos(xv))
    np.testing.assert_allclose(run(mc.jacobian("g(x)", **kw)), np.diag(np.cos(xv)))
    np.testing.assert_allclose(run(mc.hessian("sum(g(x))", **kw)), np.diag(-np.sin(xv)))
    res = mc.hvp("sum(g(x))", **kw)
    np.testing.assert_allclose(run(res, **{res.direction.name: vv}), -np.sin(xv) * vv)
    with pytest.raises(mc.UnsupportedError, match="backward"):     # its module would call g
        mc.backward("sum(g(x))", **kw)


def test_functions_and_infer_kinds_are_for_text():
    x = mc.Vector("x", "n")
    with pytest.raises(mc.MatcalcError, match="functions= are for text"):
        mc.hessian(x.T @ x, wrt=x, functions=["g"])
    with pytest.raises(mc.MatcalcError, match="infer_kinds= is for text"):
        mc.jacobian(x, wrt=x, infer_kinds=True)


def test_infer_kinds_and_inferred_shapes_from_every_entry_point():
    for func in (mc.derive, mc.grad, mc.hessian, mc.hvp, mc.backward):
        inferred = func("x.T @ A @ x", wrt="x", infer_kinds=True).inferred_shapes
        (d,) = inferred["x"]
        assert inferred == {"x": (d,), "A": (d, d)}
    H = mc.hessian("x.T @ A @ x", wrt="x", infer_kinds=True).numpy_function()(A=Av, x=xv)
    np.testing.assert_allclose(H, Av + Av.T)
