"""The expression layer: hash-consing, immutability, shape checks and their messages, depth."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import sympy

import matcalc as mc
from matcalc import constants as C
from matcalc import expr as E
from matcalc.ops import FUNCTIONS
from matcalc.ops.elementwise import apply


def test_equal_subexpressions_are_one_node():
    W = mc.Matrix("W", "n", "d"); x = mc.Vector("x", "d"); b = mc.Vector("b", "n")
    assert (W @ x + b) is (W @ x + b)
    assert mc.tanh(W @ x) is mc.tanh(W @ x)
    assert mc.Matrix("W", "n", "d") is W
    assert mc.Matrix("W", "n", "e") is not W


def test_nodes_are_immutable():
    W = mc.Matrix("W", "n", "d")
    with pytest.raises(AttributeError):
        W.shape = (1, 1)
    with pytest.raises(TypeError):
        E.MatMul(W, W)


def test_pickle_keeps_identity():
    W = mc.Matrix("W", "n", "d"); x = mc.Vector("x", "d")
    e = mc.tanh(W @ x)
    assert pickle.loads(pickle.dumps(e)) is e


@pytest.mark.parametrize("build,message", [
    (lambda W, X, x: W @ W, "shape mismatch in A @ B: W is n×d and W is n×d; the inner "
                            "dimensions d and n differ"),
    (lambda W, X, x: W + X, "shape mismatch in A + B: W is n×d and X is d×m"),
    (lambda W, X, x: W * x, "shape mismatch in A * B: W is n×d and x is d-vector (d×1)"),
    (lambda W, X, x: mc.trace(W), "trace needs a square matrix, but W is n×d"),
])
def test_shape_errors_name_operator_operands_and_shapes(build, message):
    W = mc.Matrix("W", "n", "d"); X = mc.Matrix("X", "d", "m"); x = mc.Vector("x", "d")
    with pytest.raises(mc.ShapeError) as err:
        build(W, X, x)
    assert message in str(err.value)


def test_shape_error_names_compound_operands_in_user_syntax():
    W = mc.Matrix("W", "n", "d"); X = mc.Matrix("X", "d", "m")
    with pytest.raises(mc.ShapeError, match="W @ X is n×m and W is n×d"):
        (W @ X) @ W


def test_broadcasting_rules():
    X = mc.Matrix("X", "n", "m"); b = mc.Vector("b", "n"); r = mc.Vector("r", "m"); a = mc.Scalar("a")
    assert isinstance((X + b).args[1], E.Broadcast)          # column across columns
    assert isinstance((X + r.T).args[1], E.Broadcast)        # row across rows
    assert isinstance((a * X).args[0], E.Broadcast)          # scalar everywhere
    with pytest.raises(mc.ShapeError):
        X + r                                                # an m-vector is not a column of X


def test_constants_fold_exactly():
    m = mc.dim("m")
    assert str(1 / m) == "1/m"
    assert (2 * (1 / m)) is E.Const.make(C.to_number(2) / E.dim("m"))
    assert E.as_node(0.1).value == sympy.Rational(1, 10)     # exactly, not the float's 0.1000...
    assert str(E.as_node(0.1)) == "0.1"                         # printed as typed
    assert str(E.as_node(0.25)) == "1/4"                        # a small fraction stays one


# a function of a number folds to SymPy's value (arctan(4) to atan(4)), printed in SymPy's name,
# which text did not read back
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_a_folded_function_of_a_number_prints_as_text_reads_it(name):
    A = mc.Matrix("A", "n", "n")
    node = mc.parse(f"{name}(0.25) * A", {"A": ("n", "n")})
    assert mc.parse(str(node), {"A": ("n", "n")}) is node
    assert "atan" not in str(mc.parse("arctan(4) * A", {"A": ("n", "n")}))


@pytest.mark.parametrize("bad", [True, "x", None, float("nan"), float("inf"), 1j])
def test_non_numbers_are_refused(bad):
    X = mc.Matrix("X", "n", "n")
    with pytest.raises(mc.MatcalcError):
        X * bad


@pytest.mark.parametrize("name", ["sum", "exp", "T", "lambda", "2x", "", "a-b"])
def test_reserved_or_invalid_names_are_refused(name):
    with pytest.raises(mc.MatcalcError):
        mc.Matrix(name, "n", "n")


def test_a_thousands_deep_expression_derives_and_runs():
    x = mc.Vector("x", "n")
    e = x
    for _ in range(3000):
        e = mc.tanh(e) + x
    res = mc.grad(mc.sum(e), x)
    # written out in full, the gradient would repeat every layer inside every later one; it
    # prints instead as definitions of the shared values, in size linear in the depth
    text = str(res.gradient)
    assert len(text) < 200 * 3000 and text.count("\n") >= 3000
    assert len(res.text()) < 200 * 3000 and res.text().count("\n") >= 3000
    f = res.numpy_function()          # generated code names shared values: linear in depth
    assert f(x=np.linspace(-1, 1, 4)).shape == (4,)
    assert res.check(n=3).ok


def test_a_deep_chain_without_sharing_prints():
    x = mc.Vector("x", "n")
    e = x
    for _ in range(2000):
        e = mc.exp(e)
    text = str(mc.tanh(e))
    assert text.startswith("tanh(exp(exp(") and text.count("exp(") == 2000
    assert mc.to_latex(e).count(r"\exp") == 2000


def test_a_product_of_hundreds_of_factors():
    A = [mc.Matrix(f"A{i}", "n", "n") for i in range(300)]
    e = A[0]
    for a in A[1:]:
        e = e @ a
    res = mc.grad(mc.trace(e), [A[0], A[150]])
    res.check(n=2)


def test_a_long_sum_of_terms():
    x = mc.Vector("x", "n")
    e = x
    for k in range(1, 2000):
        e = e + k * x
    res = mc.grad(mc.sum(e), x)
    assert str(res.gradient) == "1999001 * ones(n)"    # 1 + (1 + 2 + ... + 1999)
    res.check()


def test_constant_arithmetic_nested_a_hundred_deep_derives():
    # SymPy's arithmetic recurses on a constant's depth: past MAX_CONSTANT_DEPTH constants stay
    # operations on constants instead of one ever deeper number (once a RecursionError)
    x = mc.Vector("x", "n")
    c = mc.tanh(E.Const.make(1))
    for _ in range(120):
        c = c * c + 1
    assert not isinstance(c, E.Const)
    res = mc.grad(mc.sum(mc.tanh(c * 1e-300) * x ** 2), x)
    assert "too large to write out" in repr(res)
    source = res.numpy_source()
    assert "def gradient(x" in source
    with np.errstate(over="ignore"):
        assert res.check().ok


def test_a_constant_too_deep_to_combine_is_refused_clearly():
    value = sympy.tanh(1)
    for _ in range(C.MAX_CONSTANT_DEPTH):
        value = sympy.tanh(value)
    with pytest.raises(mc.UnsupportedError, match="nested more than"):
        E.Const.make(value)


def test_sqrt_of_a_constant_folds_as_its_half_power_does():
    n = E.dim("n")
    c = E.Const.make(n ** 2 - 6 * n + 10)        # positive, though SymPy cannot tell
    assert apply("sqrt", c) is E.power(c, sympy.Rational(1, 2))
    assert isinstance(apply("sqrt", c), E.Const)
    assert not isinstance(apply("sqrt", E.Const.make(-2)), E.Const)


def test_a_function_of_a_large_constant_is_left_to_the_generated_code():
    n = E.dim("n")
    big = E.Const.make(sum(sympy.tanh(k) * n ** k for k in range(1, 12)))
    folded = mc.tanh(big)
    assert isinstance(folded, E.Apply)
    X = mc.Matrix("X", "n", "n")
    node = folded * X
    assert mc.parse(str(node), {"X": ("n", "n")}) is node
    assert isinstance(mc.tanh(E.Const.make(sympy.tanh(1) + 1)), E.Const)


def test_arithmetic_on_constants_refuses_a_number_too_long_to_print():
    c = E.Const.make(2)
    with pytest.raises(mc.UnsupportedError, match="more than 1000 digits"):
        for _ in range(20):          # 2, 5, 26, 677, ...: 2**(2**k) digits soon
            c = c * c + 1
    assert len(str(c.value)) <= 1000
    with pytest.raises(mc.UnsupportedError, match="more than 1000 digits"):
        E.Const.make(10 ** 1000)


def test_constants_with_shared_parts_stay_small_to_work_on():
    # a = (1 + a) * (1 - a): few objects, but written out (as SymPy's walks go) it doubles each
    # time; past MAX_CONSTANT_NODES the products stay operations (once an exponential stall)
    a = mc.tanh(E.Const.make(1))
    for _ in range(40):
        a = (1 + a) * (1 - a)
    assert not isinstance(a, E.Const)
    x = mc.Vector("x", "n")
    res = mc.grad(mc.sum(a * x), x)
    assert res.check().ok


def test_generated_code_holds_long_integers_as_floats_or_refuses():
    x = mc.Vector("x", "n")
    res = mc.grad(mc.sum(x * (10 ** 400 / E.Const.make(10 ** 399))), x)   # exactly 10
    assert np.allclose(res.numpy_function()(x=np.ones(3)), 10)
    res = mc.grad(mc.sum(x * E.Const.make(2 ** 70 + 1) * x), x)
    assert "2.3611832414348226e+21 * x" in res.numpy_source()
    assert np.allclose(res.numpy_function()(x=np.ones(2)), 2 * (2.0 ** 70 + 1))
    with pytest.raises(mc.UnsupportedError, match="beyond the range of float64"):
        mc.grad(mc.sum(x * E.Const.make(10 ** 400)), x).numpy_source()


def test_numpy_scalars_are_numbers():
    x = mc.Vector("x", "n")
    assert x * np.float64(0.1) is x * 0.1            # NumPy 2 prints it np.float64(0.1)
    assert x * np.int64(3) is x * 3
    assert x * np.float32(0.5) is x * 0.5
    with pytest.raises(mc.MatcalcError, match="finite"):
        x * np.float64("nan")
    with pytest.raises(mc.MatcalcError, match="finite"):
        x * np.float32("inf")
