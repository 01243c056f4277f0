"""The printers: one golden line per node class and per precedence case (text, LaTeX), MathML
that is well formed and free of leaked LaTeX, and generated NumPy code checked against the
independent evaluator in ``reference.py`` on random inputs.

The text goldens double as round-trip tests: ``parse(to_text(e)) is e``.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import sympy

import matcalc as mc
from matcalc import expr as E
from matcalc.api import compile_source
from matcalc.dims import is_one
from matcalc.ops import FUNCTIONS as ELEMENTWISE
from matcalc.ops import OPERATIONS
from matcalc.printing.latex import latex_name, to_latex, to_mathml
from matcalc.printing.numpy import Output, numpy_source
from matcalc.printing.text import book_line, to_text
from matcalc.ops.contractions import Einsum, Sum, Trace
from matcalc.ops.linalg import Det, Diag, Inv, LogDet
from matcalc.ops.extremes import ArgmaxWeights, ArgminWeights, Max, Min
from matcalc.ops.reductions import LogSumExp, Norm, Norm1, Softmax
from matcalc.ops.elementwise import apply

from reference import evaluate

SIZES = {"n": 3, "d": 4, "m": 5}

A = E.Var.make("A", ("n", "n"))
B = E.Var.make("B", ("n", "n"))
C = E.Var.make("C", ("n", "n"))
P = E.Var.make("P", ("n", "n"), domain="positive")
Q = E.Var.make("Q", ("n", "n"), domain="positive")
W = E.Var.make("W", ("n", "d"))
X = E.Var.make("X", ("d", "m"))
Y = E.Var.make("Y", ("n", "m"))
b = E.Var.make("b", ("n", 1))
x = E.Var.make("x", ("n", 1))
y = E.Var.make("y", ("n", 1))
p = E.Var.make("p", ("n", 1), domain="positive")
v = E.Var.make("v", ("d", 1))
r = E.Var.make("r", ("m", 1))
a = E.Var.make("a", (1, 1))
W1 = E.Var.make("W1", ("n", "n"))
m = mc.dim("m")
HALF, MINUS_HALF = E.Const.make(sympy.Rational(1, 2)), E.Const.make(sympy.Rational(-1, 2))

SHAPES = {"A": ("n", "n"), "B": ("n", "n"), "C": ("n", "n"), "P": ("n", "n"), "Q": ("n", "n"),
          "W": ("n", "d"), "X": ("d", "m"), "Y": ("n", "m"), "b": ("n",), "x": ("n",),
          "y": ("n",), "p": ("n",), "v": ("d",), "r": ("m",), "a": ()}
DOMAINS = {"P": "positive", "Q": "positive", "p": "positive"}


def case(node, expected, id):
    return pytest.param(node, expected, id=id)


# ---------------------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------------------

TEXT = [
    # leaves
    case(A, "A", "Var"),
    case(E.Const.make(3), "3", "Const"),
    case(E.Const.make(-2), "-2", "Const negative"),
    case(HALF, "1/2", "Const rational"),
    case(MINUS_HALF, "-1/2", "Const negative rational"),
    case(m, "m", "Const dimension"),
    case(E.div(1, m), "1/m", "Const 1/m"),
    case(E.div(2, m), "2/m", "Const 2/m"),
    case(E.sub(m, 1), "m - 1", "Const m - 1"),
    case(E.Eye.make("n"), "eye(n)", "Eye"),
    # operations
    case(A @ B, "A @ B", "MatMul"),
    case(A.T, "A.T", "Transpose"),
    case(A + B, "A + B", "Add"),
    case(A - B, "A - B", "Sub"),
    case(A * B, "A * B", "Mul"),
    case(A / B, "A / B", "Div"),
    case(-A, "-A", "Neg"),
    case(A ** 2, "A ** 2", "Pow"),
    case(A ** 0.5, "A ** (1/2)", "Pow half"),
    case(A ** -1, "A ** -1", "Pow negative"),
    case(A ** -0.5, "A ** (-1/2)", "Pow negative half"),
    *[case(E.Apply.make(f, A + B), f"{f}(A + B)", f"Apply {f}") for f in ELEMENTWISE],
    # broadcasts standing alone, and inside elementwise operators
    case(E.ones("n", "m"), "ones(n, m)", "Broadcast ones"),
    case(E.ones("n"), "ones(n)", "Broadcast ones vector"),
    case(E.zeros("n"), "zeros(n)", "Broadcast zeros"),
    case(E.zeros("n", "m"), "zeros(n, m)", "Broadcast zeros matrix"),
    case(E.Broadcast.make(b, "n", "m"), "b * ones(n, m)", "Broadcast column"),
    case(E.Broadcast.make(r.T, "n", "m"), "r.T * ones(n, m)", "Broadcast row"),
    case(E.Broadcast.make(a, "n", "m"), "a * ones(n, m)", "Broadcast scalar"),
    case(W @ X + b, "W @ X + b", "Broadcast column in +"),
    case(W @ X + r.T, "W @ X + r.T", "Broadcast row in +"),
    case(A + a, "A + a", "Broadcast scalar in +"),
    case(2 * A, "2 * A", "Broadcast constant in *"),
    case(-2 * A, "-2 * A", "Broadcast negative constant in *"),
    case(E.mul(E.div(1, m), A), "(1/m) * A", "Broadcast 1/m in *"),
    case(A * HALF, "A * (1/2)", "Broadcast fraction on the right"),
    case(1 - A, "1 - A", "Broadcast constant in -"),
    # reductions
    case(Sum.make(A), "sum(A)", "Sum"),
    case(Sum.make(A, 0), "sum(A, axis=0)", "Sum axis 0"),
    case(Sum.make(A, 1), "sum(A, axis=1)", "Sum axis 1"),
    case(Trace.make(A), "trace(A)", "Trace"),
    case(Einsum.make(("ij", "jk"), "ik", [A, B]), 'einsum("ij,jk->ik", A, B)', "Einsum"),
    case(Einsum.make(("ij", "ij"), "i", [A, B]), 'einsum("ij,ij->i", A, B)', "Einsum vector"),
    case(Einsum.make(("ij", "ji"), "", [A, B]), 'einsum("ij,ji->", A, B)', "Einsum scalar"),
    # precedence
    case((A + B) @ C, "(A + B) @ C", "prec (A + B) @ C"),
    case(A @ (B + C), "A @ (B + C)", "prec A @ (B + C)"),
    case(A @ B @ C, "A @ B @ C", "prec A @ B @ C"),
    case(A @ (B @ C), "A @ (B @ C)", "prec A @ (B @ C)"),
    case(-(A @ B), "-(A @ B)", "prec -(A @ B)"),
    case((-x) ** 2, "(-x) ** 2", "prec (-x) ** 2"),
    case(-(x ** 2), "-x ** 2", "prec -x ** 2"),
    case((x ** 2) ** 3, "(x ** 2) ** 3", "prec (x ** 2) ** 3"),
    case(-(-x), "-(-x)", "prec -(-x)"),
    case((A * B) @ C, "(A * B) @ C", "prec (A * B) @ C"),
    case(A @ (B * C), "A @ (B * C)", "prec A @ (B * C)"),
    case((A @ B) * C, "(A @ B) * C", "prec (A @ B) * C"),
    case((x.T @ x) * A, "(x.T @ x) * A", "prec scalar product times matrix"),
    case(A - (B - C), "A - (B - C)", "prec A - (B - C)"),
    case(A - B - C, "A - B - C", "prec A - B - C"),
    case(A - (-B), "A - -B", "prec A - -B"),
    case((A - B) * C, "(A - B) * C", "prec (A - B) * C"),
    case(A * B / C, "A * B / C", "prec A * B / C"),
    case(A / (B * C), "A / (B * C)", "prec A / (B * C)"),
    case((A @ B).T, "(A @ B).T", "prec (A @ B).T"),
    case((A + B).T, "(A + B).T", "prec (A + B).T"),
    case((-A).T, "(-A).T", "prec (-A).T"),
    case(E.Transpose.make(E.Const.make(2)), "(2).T", "prec (2).T"),
]


@pytest.mark.parametrize("node,expected", TEXT)
def test_text_golden(node, expected):
    assert to_text(node) == expected


@pytest.mark.parametrize("node,expected", TEXT)
def test_text_parses_back_to_the_same_node(node, expected):
    assert mc.parse(expected, SHAPES, DOMAINS) is node


#: The book's text (``book_line``, what ``res.text()`` prints): a scalar factor 1/d as a
#: quotient, a right operand's leading minus joined to the sign before it. It may group a
#: product differently from the node, so it is checked by value, not by parsing back to it.
BOOK = [
    case(E.mul(HALF, A), "A / 2", "half"),
    case(E.mul(E.div(1, m), W @ X), "W @ X / m", "over m"),
    case(E.mul(E.div(-1, m), W @ X), "-W @ X / m", "minus over m"),
    case(E.mul(E.div(1, 2 * m), A - B), "(A - B) / (2*m)", "over 2m"),
    case(E.mul(E.div(-1, m), A * B), "-(A * B) / m", "minus a product over m"),
    case(A + E.mul(E.div(-1, m), A * B), "A - (A * B) / m", "the minus joins +"),
    case(E.Sub.make(A, E.mul(E.div(-1, m), B @ C)), "A + B @ C / m", "the minus joins -"),
    case(E.mul(E.Const.make(sympy.Rational(1, 10)), A), "0.1 * A", "a decimal stays"),
    case(E.mul(E.Const.make(sympy.Rational(2, 3)), A), "(2/3) * A", "not 1/d"),
]


@pytest.mark.parametrize("node,expected", BOOK)
def test_book_text_golden_and_its_value(node, expected):
    text = book_line(node)
    assert text == expected
    values = random_inputs(3)
    read = mc.parse(text, SHAPES, DOMAINS)
    np.testing.assert_allclose(evaluate(read, values, SIZES), evaluate(node, values, SIZES),
                               rtol=1e-12)



# ---------------------------------------------------------------------------------------------
# LaTeX
# ---------------------------------------------------------------------------------------------

LATEX_FUNCTIONS = {
    "exp": r"\exp\left(A + B\right)", "log": r"\log\left(A + B\right)",
    "sin": r"\sin\left(A + B\right)", "cos": r"\cos\left(A + B\right)",
    "tanh": r"\tanh\left(A + B\right)", "sigmoid": r"\sigma\left(A + B\right)",
    "relu": r"\operatorname{relu}\left(A + B\right)", "abs": r"\left|A + B\right|",
    "sign": r"\operatorname{sign}\left(A + B\right)", "sqrt": r"\sqrt{A + B}",
    "softplus": r"\operatorname{softplus}\left(A + B\right)",
    "step": r"\operatorname{step}\left(A + B\right)",
    "log1p": r"\operatorname{log1p}\left(A + B\right)",
    "expm1": r"\operatorname{expm1}\left(A + B\right)",
    "tan": r"\tan\left(A + B\right)", "arcsin": r"\arcsin\left(A + B\right)",
    "arccos": r"\arccos\left(A + B\right)", "arctan": r"\arctan\left(A + B\right)",
    "sinh": r"\sinh\left(A + B\right)", "cosh": r"\cosh\left(A + B\right)",
    "erf": r"\operatorname{erf}\left(A + B\right)",
    "square": r"\operatorname{square}\left(A + B\right)",
    "gelu": r"\operatorname{GELU}\left(A + B\right)",
    "gelu_tanh": r"\operatorname{GELU}_{\tanh}\left(A + B\right)",
    "silu": r"\operatorname{SiLU}\left(A + B\right)",
}

LATEX = [
    case(A, "A", "Var"),
    case(W1, "W_{1}", "Var with index"),
    case(E.Const.make(3), "3", "Const"),
    case(E.Const.make(-2), "-2", "Const negative"),
    case(HALF, r"\frac{1}{2}", "Const rational"),
    case(E.div(1, m), r"\frac{1}{m}", "Const 1/m"),
    case(E.Eye.make("n"), "I", "Eye"),
    case(A @ B, "A B", "MatMul"),
    case(A.T, r"A^{\top}", "Transpose"),
    case(A + B, "A + B", "Add"),
    case(A - B, "A - B", "Sub"),
    case(A * B, r"A \odot B", "Mul"),
    case(2 * A, "2 A", "Mul scalar multiple"),
    case(A / B, r"A \oslash B", "Div"),
    case(A / a, r"\frac{A}{a}", "Div by a scalar"),
    case(-A, "-A", "Neg"),
    case(A ** 2, r"A^{\circ 2}", "Pow"),
    case(A ** 0.5, r"A^{\circ \frac{1}{2}}", "Pow half"),
    case(A ** -1, r"A^{\circ -1}", "Pow negative"),
    *[case(E.Apply.make(f, A + B), LATEX_FUNCTIONS[f], f"Apply {f}") for f in ELEMENTWISE],
    case(E.ones("n", "m"), r"\mathbf{1}_{n \times m}", "Broadcast ones"),
    case(E.zeros("n"), r"\mathbf{0}_{n}", "Broadcast zeros"),
    case(E.Broadcast.make(b, "n", "m"), r"b \mathbf{1}^{\top}", "Broadcast column"),
    case(E.Broadcast.make(r.T, "n", "m"), r"\mathbf{1} r^{\top}", "Broadcast row"),
    case(E.Broadcast.make(a, "n", "m"), r"a \mathbf{1}_{n \times m}", "Broadcast scalar"),
    case(W @ X + b, r"W X + b \mathbf{1}^{\top}", "Broadcast column in +"),
    case(1 - A, "1 - A", "Broadcast constant in -"),
    case(Sum.make(A), r"\mathbf{1}^{\top} A \mathbf{1}", "Sum"),
    case(Sum.make(x), r"\mathbf{1}^{\top} x", "Sum of a vector"),
    case(Sum.make(A, 0), r"A^{\top} \mathbf{1}", "Sum axis 0"),
    case(Sum.make(A, 1), r"A \mathbf{1}", "Sum axis 1"),
    case(Trace.make(A), r"\operatorname{tr}\left(A\right)", "Trace"),
    case(Einsum.make(("ij", "jk"), "ik", [A, B]), r"\left[\sum_{j} A_{ij} B_{jk}\right]_{ik}",
         "Einsum"),
    case(Einsum.make(("ij", "ji"), "", [A, B]), r"\sum_{i,j} A_{ij} B_{ji}", "Einsum scalar"),
    case((A + B) @ C, r"\left(A + B\right) C", "prec (A + B) C"),
    case(-(A @ B), r"-\left(A B\right)", "prec -(A B)"),
    case((-x) ** 2, r"\left(-x\right)^{\circ 2}", "prec (-x) ** 2"),
    case(-(x ** 2), r"-x^{\circ 2}", "prec -x ** 2"),
    case((A * B) @ C, r"\left(A \odot B\right) C", "prec (A * B) @ C"),
    case(A - (B - C), r"A - \left(B - C\right)", "prec A - (B - C)"),
    case((A @ B).T, r"\left(A B\right)^{\top}", "prec (A B).T"),
]


@pytest.mark.parametrize("node,expected", LATEX)
def test_latex_golden(node, expected):
    assert to_latex(node) == expected


@pytest.mark.parametrize("name,expected", [
    ("W1", "W_{1}"), ("W_1", "W_{1}"), ("sigma", r"\sigma"), ("Sigma", r"\Sigma"),
    ("alpha2", r"\alpha_{2}"), ("loss", r"\mathit{loss}"), ("x_hat", "x_{hat}"), ("A", "A"),
])
def test_latex_name(name, expected):
    assert latex_name(name) == expected


# ---------------------------------------------------------------------------------------------
# MathML
# ---------------------------------------------------------------------------------------------

#: LaTeX command words that must never show up as text in the MathML (function names such as
#: tanh legitimately render as identifiers, so they are not listed).
COMMAND_WORDS = ("odot", "oslash", "top", "circ", "times", "mathbf", "mathit", "operatorname",
                 "left", "right", "frac", "sqrt", "sigma", "partial")
TOKEN_TAGS = ("mi", "mo", "mn", "mtext")


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def check_mathml(latex: str) -> None:
    mathml = to_mathml(latex)
    root = ET.fromstring(mathml)            # well-formed XML
    tokens = [(local(el.tag), el.text or "") for el in root.iter()]
    assert "merror" not in {tag for tag, _ in tokens}, mathml
    for tag, text in tokens:
        if tag in TOKEN_TAGS:
            assert "\\" not in text, (tag, text, mathml)
            assert "&" not in text, (tag, text, mathml)
    # a command spelled out letter by letter as identifiers (<mi>o</mi><mi>d</mi>...)
    letters = "".join(text for tag, text in tokens if tag == "mi" and len(text) == 1)
    words = [text for tag, text in tokens if tag in ("mi", "mtext")]
    for word in COMMAND_WORDS:
        assert word not in letters and word not in words, (word, mathml)


@pytest.mark.parametrize("node,expected", LATEX)
def test_mathml_of_every_golden_is_clean(node, expected):
    check_mathml(expected)
    assert to_mathml(node) == to_mathml(expected)


@pytest.mark.parametrize("name", ["W1", "sigma", "loss", "x_hat", "alpha2"])
def test_mathml_of_names_is_clean(name):
    check_mathml(to_latex(E.Var.make(name, ("n", "n")) @ A))


def test_mathml_of_a_derivation_is_clean():
    res = mc.grad(mc.sum((mc.tanh(W @ X + b) - Y) ** 2) / m, [W, b])
    check_mathml(res.latex())


# ---------------------------------------------------------------------------------------------
# NumPy: generated code against the reference evaluator
# ---------------------------------------------------------------------------------------------

def kind_of(node: E.Node) -> str:
    if node.is_scalar:
        return "scalar"
    return "vector" if is_one(node.cols) else "matrix"


def generate(node: E.Node):
    """(source, function) computing ``node``, its arguments the node's variables."""
    source = numpy_source([Output(node, kind_of(node))], E.variables([node]), "f")
    return source, compile_source(source, "f")


def random_inputs(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    values = {}
    for name, shape in SHAPES.items():
        dims = tuple(SIZES[d] for d in shape)
        if DOMAINS.get(name) == "positive":
            values[name] = rng.uniform(0.5, 2.0, size=dims)
        else:
            values[name] = rng.standard_normal(dims)
    return values


def call(f, values: dict):
    """Call a generated function: variables by name, unbound dimensions by their size."""
    params = inspect.signature(f).parameters
    return f(**{k: values[k] if k in values else SIZES[k] for k in params})


def check_against_reference(node: E.Node, seed: int = 0) -> None:
    source, f = generate(node)
    values = random_inputs(seed)
    got = call(f, values)
    want = evaluate(node, values, SIZES)
    kind = kind_of(node)
    if kind == "scalar":
        assert isinstance(got, np.floating) and got.dtype == np.float64, source   # the dtype kept
    elif kind == "vector":
        assert isinstance(got, np.ndarray) and got.ndim == 1, source
    else:
        assert isinstance(got, np.ndarray) and got.ndim == 2, source
    np.testing.assert_allclose(np.reshape(got, want.shape), want, rtol=1e-10, atol=1e-12,
                               err_msg=source)


fn = E.Apply.make
CORPUS = [
    pytest.param(fn("sigmoid", W @ v + b), id="sigmoid(W @ v + b)"),
    pytest.param(fn("sigmoid", x - y), id="sigmoid(x - y)"),
    pytest.param(fn("sigmoid", -x), id="sigmoid(-x)"),
    pytest.param(fn("sigmoid", x ** 2), id="sigmoid(x ** 2)"),
    pytest.param(fn("sigmoid", MINUS_HALF * x), id="sigmoid((-1/2) * x)"),
    pytest.param(fn("sigmoid", A) @ B + B * fn("sigmoid", C) - fn("sigmoid", A - B).T,
                 id="sigmoid beside operators"),
    pytest.param(fn("sigmoid", A) ** 2 - fn("sigmoid", -A), id="sigmoid under a power"),
    pytest.param(fn("softplus", -(A @ B)), id="softplus(-(A @ B))"),
    pytest.param(fn("softplus", W @ v + b), id="softplus(W @ v + b)"),
    pytest.param(p ** -1, id="p ** -1"),
    pytest.param(fn("relu", A - B), id="relu(A - B)"),
    pytest.param(fn("exp", -(x ** 2)), id="exp(-x ** 2)"),
    pytest.param(fn("log", P @ Q), id="log(P @ Q)"),
    pytest.param(fn("sin", A @ B + C), id="sin(A @ B + C)"),
    pytest.param(fn("cos", 2 * A - B.T), id="cos(2 * A - B.T)"),
    pytest.param(fn("tanh", W @ X + b), id="tanh(W @ X + b)"),
    pytest.param(fn("abs", A - B.T), id="abs(A - B.T)"),
    pytest.param(fn("sign", A @ x - y), id="sign(A @ x - y)"),
    pytest.param(fn("sqrt", P * Q + 1), id="sqrt(P * Q + 1)"),
    pytest.param(fn("step", x - y), id="step(x - y)"),
    pytest.param(fn("log1p", P * Q), id="log1p(P * Q)"),
    pytest.param(fn("expm1", -(x ** 2)), id="expm1(-x ** 2)"),
    pytest.param(fn("tan", fn("tanh", A - B)), id="tan(tanh(A - B))"),
    pytest.param(fn("arcsin", MINUS_HALF * fn("tanh", A @ B)), id="arcsin((-1/2) * tanh(A @ B))"),
    pytest.param(fn("arccos", MINUS_HALF * fn("tanh", x - y)), id="arccos((-1/2) * tanh(x - y))"),
    pytest.param(fn("arctan", W @ X + b), id="arctan(W @ X + b)"),
    pytest.param(fn("sinh", A - B.T), id="sinh(A - B.T)"),
    pytest.param(fn("cosh", x - y), id="cosh(x - y)"),
    pytest.param(fn("erf", A @ B + C), id="erf(A @ B + C)"),
    pytest.param(fn("square", A - B), id="square(A - B)"),
    pytest.param(fn("gelu", W @ X + b), id="gelu(W @ X + b)"),
    pytest.param(fn("gelu_tanh", W @ X + b), id="gelu_tanh(W @ X + b)"),
    pytest.param(fn("silu", A @ B - C), id="silu(A @ B - C)"),
    pytest.param(Sum.make(A @ B), id="sum(A @ B)"),
    pytest.param(Sum.make(A * B, 0), id="sum(A * B, axis=0)"),
    pytest.param(Sum.make(W @ X, 1), id="sum(W @ X, axis=1)"),
    pytest.param(Sum.make((W @ X - Y) ** 2) / m, id="sum((W @ X - Y) ** 2) / m"),
    pytest.param(mc.mean(A), id="mean(A)"),
    pytest.param(Trace.make(A @ B.T), id="trace(A @ B.T)"),
    pytest.param(Einsum.make(("ij", "jk"), "ik", [A + B, C]), id="einsum ij,jk->ik"),
    pytest.param(Einsum.make(("ij", "ij"), "i", [A, B - C]), id="einsum ij,ij->i"),
    pytest.param(Einsum.make(("ij", "ji"), "", [A @ B, C]), id="einsum ij,ji->"),
    pytest.param(E.Broadcast.make(b, "n", "m"), id="b * ones(n, m)"),
    pytest.param(E.ones("n", "m"), id="ones(n, m)"),
    pytest.param(E.zeros("n"), id="zeros(n)"),
    pytest.param(W @ X + r.T, id="W @ X + r.T"),
    pytest.param(A + a - a * B, id="A + a - a * B"),
    pytest.param(E.mul(E.div(1, m), W @ X), id="(1/m) * (W @ X)"),
    pytest.param(MINUS_HALF * A + A * MINUS_HALF, id="(-1/2) * A + A * (-1/2)"),
    pytest.param(A + E.Eye.make("n"), id="A + eye(n)"),
    pytest.param(E.Eye.make("n") @ x, id="eye(n) @ x"),
    pytest.param((A @ B).T @ x, id="(A @ B).T @ x"),
    pytest.param(A / P + x / (y * y + 1), id="A / P + x / (y * y + 1)"),
    pytest.param(-(A @ B) + C, id="-(A @ B) + C"),
    pytest.param((A @ B) ** 3 + P ** 0.5 - P ** -2, id="powers"),
    pytest.param((x - y) ** 2 + (P @ Q) @ p ** -0.5, id="powers of compounds"),
    pytest.param(x.T @ A @ x, id="x.T @ A @ x"),
    pytest.param((x.T @ y) * A, id="(x.T @ y) * A"),
    pytest.param(E.MatMul.make(E.Const.make(2), r.T), id="2 @ r.T"),
    pytest.param(Det.make(A @ B + C), id="det(A @ B + C)"),
    pytest.param(LogDet.make(A.T @ A + E.Eye.make("n")), id="logdet(A.T @ A + eye(n))"),
    pytest.param(Inv.make(A + 3 * E.Eye.make("n")) @ x, id="inv(A + 3 eye(n)) @ x"),
    pytest.param(Diag.make(A @ B) + Diag.make(x - y) @ y, id="diag both ways"),
    pytest.param(Norm.make(W @ X - Y) + Norm.make(x), id="norm of matrix and vector"),
    pytest.param(Norm1.make(A - B), id="norm1(A - B)"),
    pytest.param(Softmax.make(W @ X + b, 0) + Softmax.make(x * 3), id="softmax"),
    pytest.param(Softmax.make(W @ X, 1) * Softmax.make(W @ X), id="softmax rows, all"),
    pytest.param(LogSumExp.make(W @ X, 0) + LogSumExp.make(X, 0), id="logsumexp columns"),
    pytest.param(LogSumExp.make(W @ X, 1) - LogSumExp.make(x + 1), id="logsumexp rows, all"),
    pytest.param(Max.make(W @ X, 0) + Min.make(X.T @ W.T, 1), id="max columns, min rows"),
    pytest.param(Max.make(A - B) * ArgmaxWeights.make(A @ B, 1) - ArgminWeights.make(A.T, 0),
                 id="max, its weights"),
]


@pytest.mark.parametrize("node", CORPUS)
def test_generated_code_matches_the_reference(node):
    check_against_reference(node)


def test_corpus_covers_every_node_class_and_function_on_compound_arguments():
    nodes = E.postorder([c.values[0] for c in CORPUS])
    classes = {type(n) for n in nodes}
    concrete = {op.node for op in OPERATIONS if op.node is not None} | set(E.LEAVES)
    assert concrete <= classes
    compound = {n.name for n in nodes if isinstance(n, E.Apply) and n.args[0].args}
    assert set(ELEMENTWISE) <= compound


def free_names(source: str) -> set[str]:
    """Names the generated function reads that it neither takes, assigns nor imports."""
    tree = ast.parse(source)
    bound = set(dir(builtins))
    for node in ast.walk(tree):
        if isinstance(node, ast.alias):
            bound.add(node.asname or node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
        elif isinstance(node, ast.FunctionDef):
            bound.add(node.name)
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id not in bound}


@pytest.mark.parametrize("node", CORPUS)
def test_generated_code_imports_only_numpy(node):
    source, _f = generate(node)
    imports = [line for line in source.splitlines() if re.match(r"\s*(import|from)\b", line)]
    # NumPy has no erf: the helpers of erf and gelu use the standard library's, entry by entry
    helpers = {"    import math", "    import numpy"} if any(
        isinstance(n, E.Apply) and n.name in ("erf", "gelu") for n in E.postorder([node])) else set()
    assert imports[0] == "import numpy as np" and set(imports[1:]) <= helpers
    assert free_names(source) == set()


def test_a_derivation_imports_only_numpy():
    source = mc.grad(mc.sum((mc.tanh(W @ X + b) - Y) ** 2) / m, [W, b]).numpy_source()
    assert [ln for ln in source.splitlines() if "import" in ln] == ["import numpy as np"]
    assert free_names(source) == set()


def assignments(source: str) -> list[str]:
    """The intermediate values the function names (not its input conversions)."""
    return re.findall(r"^\s+(t(?:_\d+)?) = ", source, flags=re.M)


def test_a_value_used_twice_is_computed_once_and_named():
    h = fn("tanh", W @ v)
    source, _f = generate(h * (1 - h))
    assert source.count("np.tanh(") == 1
    assert len(assignments(source)) == 1
    check_against_reference(h * (1 - h))
    grad = mc.grad(mc.sum((mc.tanh(W @ X + b) - Y) ** 2) / m, [W, b]).numpy_source()
    assert grad.count("np.tanh(") == 1


def test_a_value_used_once_is_written_inline():
    source, _f = generate(fn("sigmoid", W @ v + b) * fn("tanh", x - y))
    assert assignments(source) == []


def test_generated_names_avoid_the_users_names():
    np_, t_, float_ = (E.Var.make(name, ("n", 1)) for name in ("np", "t", "float"))
    h = mc.tanh(np_ * t_)
    res = mc.grad(mc.sum(h * float_ + h * h), [np_, t_, float_])
    source = res.numpy_source()
    assert "import numpy as np_1" in source and "np_1.tanh(" in source
    # the only assignments to t take the user's own t in; intermediates are t_1, ...
    assert [ln.strip() for ln in source.splitlines() if ln.strip().startswith("t = ")] == \
        ["t = as_float('t', t)", "t = t.reshape(-1, 1)"]
    rng = np.random.default_rng(1)
    values = {name: rng.standard_normal(3) for name in ("np", "t", "float")}
    got = res.numpy_function()(**values)
    # d/du sum(h f + h h) with h = tanh(u w): (f + 2h)(1 - h^2) w, likewise for w; h for f
    hv = np.tanh(values["np"] * values["t"])
    inner = (values["float"] + 2 * hv) * (1 - hv ** 2)
    for g, want in zip(got, (inner * values["t"], inner * values["np"], hv)):
        assert g.shape == (3,)
        np.testing.assert_allclose(g, want, rtol=1e-10)


def test_results_take_the_form_of_their_variable():
    res = mc.grad(mc.sum((mc.tanh(W @ X + b) - Y) ** 2) * a, [W, b, a])
    values = random_inputs()
    args = {k: values[k] for k in ("W", "X", "b", "Y")}
    gW, gb, ga = res.numpy_function()(**args, a=2.0)
    # a scalar's gradient is a NumPy scalar of the inputs' floating type
    assert gW.shape == (3, 4) and gb.shape == (3,) and type(ga) is np.float64
    value = res.value_function()(**args, a=2.0)
    assert type(value) is np.float64
    assert mc.grad(mc.sum(W @ v), v).value_function()(W=values["W"], v=values["v"]) \
        == pytest.approx(float(np.sum(values["W"] @ values["v"])))


def float32_inputs() -> dict:
    return {k: val.astype(np.float32) for k, val in random_inputs().items()}


@pytest.mark.parametrize("node", [fn("tanh", W @ X + b), fn("sigmoid", W @ v + b),
                                  W @ X + r.T - Y, Sum.make(A * B, 1)],
                         ids=["tanh layer", "sigmoid layer", "row broadcast", "row sums"])
def test_float32_inputs_stay_float32(node):
    _source, f = generate(node)
    assert call(f, float32_inputs()).dtype == np.float32


def test_float32_gradients_stay_float32():
    res = mc.grad(mc.sum((mc.tanh(W @ X + b) - Y) ** 2) / m, [W, b])
    values = float32_inputs()
    for g in res.numpy_function()(**{k: values[k] for k in ("W", "X", "b", "Y")}):
        assert g.dtype == np.float32


def test_a_thousand_deep_expression_compiles_and_is_right():
    e = x
    for k in range(1000):
        e = mc.sin(e) + y if k % 2 else -mc.tanh(e)
    source, f = generate(e)
    assert len(assignments(source)) >= 1000 // 40      # deep inline expressions are split
    values = random_inputs()
    np.testing.assert_allclose(f(x=values["x"], y=values["y"]),
                               evaluate(e, values, SIZES).ravel(), rtol=1e-10)


# ---------------------------------------------------------------------------------------------
# Bugs these tests found (each fixed; kept as regression tests)
# ---------------------------------------------------------------------------------------------

def test_division_by_a_negative_fraction():
    check_against_reference(x / -0.5)


@pytest.mark.parametrize("node", [
    Sum.make(x) * E.Transpose.make(E.Const.make(2)),
    Sum.make(x) * Trace.make(E.Const.make(2)),
    Sum.make(x) * Einsum.make(("ij", "jk"), "ik", [E.Const.make(2), E.Const.make(3)]),
], ids=["(2).T", "trace(2)", "einsum of constants"])
def test_constant_operands_that_need_an_array(node):
    check_against_reference(node)


def test_an_irrational_dimension_constant():
    node = mc.sum(mc.tanh(W @ v / mc.dim("d") ** 0.5))
    check_against_reference(node)
    assert mc.parse(to_text(node), SHAPES) is node


def test_a_function_of_a_number_prints_without_parentheses():
    X = mc.Matrix("X", "n", "n")
    for name, number in (("tanh", 1), ("exp", 1), ("sin", 2)):
        node = apply(name, E.Const.make(number)) * X
        assert to_text(node) == f"{name}({number}) * X"
        assert mc.parse(to_text(node), {"X": ("n", "n")}) is node
    node = (1 - apply("tanh", E.Const.make(1))) * X
    assert to_text(node) == "(1 - tanh(1)) * X"


def test_a_scalar_result_with_a_variable_named_float():
    float_ = E.Var.make("float", ("n", 1))
    res = mc.grad(mc.sum(float_ * float_), float_)
    assert res.value_function()(float=np.ones(3)) == 3.0


def test_float32_stays_float32_with_eye_and_default_upstream():
    values = float32_inputs()
    _source, f = generate(A + E.Eye.make("n"))
    assert call(f, values).dtype == np.float32
    vjp = mc.grad(mc.tanh(W @ v + b), W).numpy_function()
    assert vjp(W=values["W"], v=values["v"], b=values["b"]).dtype == np.float32
