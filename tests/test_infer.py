"""Shapes of undeclared variables, inferred from their use (issue 16): values checked against
NumPy written out by hand, ambiguities refused in the interface's spelling."""

from __future__ import annotations

import numpy as np
import pytest

import matcalc as mc
from matcalc import cli

RNG = np.random.default_rng(16)


def test_trace_of_a_product_needs_no_declaration():
    res = mc.derive("trace(A @ X @ B)", wrt="X")
    assert res.inferred_shapes == {"A": ("n1", "n2"), "X": ("n2", "n3"), "B": ("n3", "n1")}
    assert str(res.gradient) == "A.T @ B.T"
    A, X, B = RNG.standard_normal((2, 3)), RNG.standard_normal((3, 4)), RNG.standard_normal((4, 2))
    np.testing.assert_allclose(res.numpy_function()(A=A, X=X, B=B), A.T @ B.T)


def test_declared_dimensions_name_the_inferred_ones():
    res = mc.derive("trace(A @ X @ B)", wrt="X", shapes={"A": ("n", "n")})
    assert res.inferred_shapes == {"X": ("n", "n1"), "B": ("n1", "n")}


def test_generated_names_avoid_the_names_in_use():
    res = mc.derive("trace(A @ X @ B)", wrt="X", shapes={"A": ("n1", "n1")})
    assert res.inferred_shapes == {"X": ("n1", "n2"), "B": ("n2", "n1")}


def test_square_operands_and_products_tie_their_dimensions():
    res = mc.derive("logdet(X) + trace(inv(X) @ A)", wrt="X")
    assert res.inferred_shapes == {"X": ("n1", "n1"), "A": ("n1", "n1")}
    X = RNG.standard_normal((3, 3)) + 3 * np.eye(3)
    A = RNG.standard_normal((3, 3))
    Xi = np.linalg.inv(X)
    want = Xi.T - (Xi @ A @ Xi).T                 # d logdet X + d tr(X^-1 A), the Cookbook's
    np.testing.assert_allclose(res.numpy_function()(X=X, A=A), want, rtol=1e-10)


def test_einsum_letters_tie_dimensions():
    res = mc.derive('trace(einsum("ij,jk->ik", A, B))', wrt="A", shapes={"A": ("n", "m")})
    assert res.inferred_shapes == {"B": ("m", "n")}


@pytest.mark.parametrize("text,shapes,name,hint", [
    ("x.T @ A @ x", {}, "x", "shapes={'x': ('n',)} (a vector) or shapes={'x': ('n', 'm')}"),
    ("sum(A @ z)", {"A": ("n", "n")}, "z", "shapes={'z': ('n',)} (a vector)"),
    ("trace(X.T @ A @ X)", {"A": ("m", "m")}, "X",
     "shapes={'X': ('m',)} (a vector) or shapes={'X': ('m', 'k')} (a matrix)"),
])
def test_a_column_tied_to_nothing_leaves_vector_or_matrix_open(text, shapes, name, hint):
    with pytest.raises(mc.ParseError, match=f"the shape of '{name}' is not fixed by its use "
                       r"\(a vector or a matrix\?\)") as info:
        mc.derive(text, wrt=name, shapes=shapes)
    assert hint in str(info.value)


def test_elementwise_use_of_an_undeclared_name_is_ambiguous():
    with pytest.raises(mc.ParseError) as info:
        mc.derive("sum(A * X)", wrt="A", shapes={"A": ("n", "m")})
    message = str(info.value)
    assert message.splitlines()[0] == (
        "the shape of 'X' is not fixed by its use (a scalar, a vector or a matrix?): declare it, "
        "e.g. shapes={'X': ('n', 'm')} (the shape of what it meets), or read names by their "
        "letter with infer_kinds=True")
    assert (info.value.start, info.value.end) == (8, 9)


def test_a_name_only_reduced_is_ambiguous():
    with pytest.raises(mc.ParseError, match="the shape of 'X' is not fixed.*shapes=\\{'X': "
                       "\\('n',\\)\\}"):
        mc.derive("sum(exp(X))", wrt="X")


def test_matrixcalculus_convention_reads_names_by_their_letter():
    res = mc.derive("x.T @ A @ x + c * sum(x)", wrt=["x", "c"], infer_kinds=True)
    assert res.inferred_shapes == {"x": ("n1",), "A": ("n1", "n1"), "c": ()}
    x, A, c = RNG.standard_normal(3), RNG.standard_normal((3, 3)), 0.7
    dx, dc = res.numpy_function()(x=x, A=A, c=c)
    np.testing.assert_allclose(dx, (A + A.T) @ x + c)
    np.testing.assert_allclose(dc, x.sum())


def test_second_order_results_and_backward_code_report_what_was_inferred():
    H = mc.hessian("x.T @ A @ x", "x", shapes={"x": ("n",)})
    assert H.inferred_shapes == {"A": ("n", "n")} and str(H.matrix) == "A + A.T"
    J = mc.jacobian("tanh(W @ x)", "x", shapes={"x": ("n",)})
    assert J.inferred_shapes == {"W": ("n1", "n")}
    v = mc.hvp("trace(X.T @ A @ X @ B)", "X", shapes={"A": ("n", "n")})
    assert v.inferred_shapes == {"X": ("n", "n1"), "B": ("n1", "n1")}
    code = mc.backward("sum(tanh(W @ X))", wrt="W", shapes={"X": ("d", "m")})
    assert code.inferred_shapes == {"W": ("n1", "d")}


def test_a_domain_may_be_given_to_an_inferred_variable():
    res = mc.derive("trace(log(A @ X))", wrt="X", shapes={"A": ("n", "n")},
                    domains={"X": "positive", "A": "positive"})
    assert res.inferred_shapes == {"X": ("n", "n")}
    assert res.check().ok


def test_inference_is_iterative_on_deep_texts():
    text = " + ".join(["trace(A @ X)"] * 1200)     # 1,200 deep, 18,000 characters
    assert mc.derive(text, wrt="X").inferred_shapes == {"A": ("n1", "n2"), "X": ("n2", "n1")}


def test_declared_shapes_still_win_and_mismatches_are_the_builders_to_report():
    with pytest.raises(mc.ShapeError, match="shape mismatch"):
        mc.derive("A @ B + C", wrt="A", shapes={"A": ("n", "m"), "B": ("k", "n"),
                                               "C": ("n", "n")})


def test_the_command_line_infers_and_prints_the_shapes(capsys):
    assert cli.run(["grad", "trace(A @ X @ B)", "--wrt", "X"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ["inferred: --shape A=n1,n2 --shape X=n2,n3 --shape B=n3,n1",
                       "d/dX = A.T @ B.T"]


def test_the_command_line_convention_flag(capsys):
    assert cli.run(["grad", "sum((W @ x - y) ** 2)", "--wrt", "W", "--infer-kinds",
                    "--check"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "inferred: --shape W=n1,n2 --shape x=n2 --shape y=n1"
    assert "d/dW = 2 * (W @ x - y) @ x.T" in out and "numeric check PASSED" in out


def test_the_command_line_names_its_own_flags_when_shapes_stay_open(capsys):
    assert cli.run(["grad", "x * A", "--wrt", "A", "--shape", "A=n,n"]) == 2
    err = capsys.readouterr().err
    assert "--shape x=n,n" in err and "--infer-kinds" in err and "shapes=" not in err
