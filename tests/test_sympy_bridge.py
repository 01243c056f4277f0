"""SymPy in and out: SymPy matrix expressions derived directly, every result back as SymPy.

Every value is checked against SymPy's own explicit evaluation on small integer sizes
(tests/sympy_explicit.py): a gradient against SymPy's elementwise derivative of the explicit
matrix, an expression written to SymPy against the independent NumPy evaluator of
tests/reference.py. matcalc is never its own reference.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import sympy
from sympy import (Abs, Determinant, HadamardPower, HadamardProduct, Identity, Lambda,
                   MatrixSymbol, OneMatrix, Rational, Symbol, Trace, ZeroMatrix, exp, log, sqrt,
                   tanh)
from sympy.matrices.expressions.diagonal import DiagMatrix, DiagonalOf

import matcalc as mc
from matcalc import expr as E
from matcalc.ops import OPERATIONS
from matcalc.sympy_bridge import is_own

import reference
from sympy_explicit import (assert_equal, explicit, gradient, random_matrix, symbols_for, vec)

n, m, d = sympy.symbols("n m d", integer=True, positive=True)
SIZES = {"n": 3, "m": 2, "d": 4}
X, A, B = (MatrixSymbol(name, n, n) for name in "XAB")
W = MatrixSymbol("W", n, d)
S = MatrixSymbol("S", d, d)
P, Q = MatrixSymbol("P", 2, 3), MatrixSymbol("Q", 2, 3)
x, y = MatrixSymbol("x", d, 1), MatrixSymbol("y", n, 1)
a = Symbol("a")
t = Symbol("t")


def shape_of(symbol) -> tuple:
    if isinstance(symbol, MatrixSymbol):
        return tuple(int(explicit(k, SIZES, {})) for k in symbol.shape)
    return (1, 1)


def values_for(symbols, wrt_names, domains, seed):
    """Random integer values for every symbol, real symbols for the differentiated ones."""
    rng = random.Random(seed)
    values, at, wrt = {}, {}, {}
    for s in sorted(symbols, key=lambda s: s.name):
        shape = shape_of(s)
        number = random_matrix(rng, shape, domains.get(s.name, "real"))
        if s.name in wrt_names:
            syms = symbols_for(s.name, shape)
            wrt[s.name] = syms
            at.update(zip(syms, number))
            number = syms
        values[s.name] = number if isinstance(s, MatrixSymbol) else number[0, 0]
    return values, at, wrt


def free_symbols(*exprs):
    return {s for e in exprs for s in e.free_symbols if s.name not in SIZES}


def assert_gradient(f, wrt, domains=None, seed=0, reference=None):
    """mc.derive(f) as SymPy equals SymPy's elementwise derivative of f (or of ``reference``,
    equal to f and spelled in SymPy's own functions), explicitly."""
    domains = domains or {}
    res = mc.derive(f, wrt=wrt, domains=domains or None)
    got = res.to_sympy()
    targets = wrt if isinstance(wrt, list) else [wrt]
    got = got if isinstance(wrt, list) else (got,)
    names = [w if isinstance(w, str) else w.name for w in targets]
    upstream = [MatrixSymbol(res.upstream.name, *f.shape)] if res.upstream is not None else []
    values, at, wrt_symbols = values_for(free_symbols(f, *upstream), names, domains, seed)
    weight = values[res.upstream.name] if res.upstream is not None else None
    f_explicit = explicit(f if reference is None else reference, SIZES, values)
    for name, g in zip(names, got):
        want = gradient(f_explicit, wrt_symbols[name], weight)
        assert_equal(explicit(g, SIZES, values), want, at, f"d/d{name} of {f}")
    return res


# ---------------------------------------------------------------------------------------------
# SymPy in: every class of the list, derived, and the result back in SymPy
# ---------------------------------------------------------------------------------------------

GRADIENTS = [
    # SymPy 1.14's own diff returns 0 for these (docs/sympy.md)
    ("sum of traces", Trace(A * X) + Trace(B * X), X, None),
    ("trace plus a quadratic trace", Trace(X) + Trace(X.T * X), X, None),
    ("log det", log(Determinant(X)), X, None),
    ("log det of X.T X", log(Determinant(X.T * X)), X, None),
    ("trace plus log det", Trace(A * X) + log(Determinant(X)), X, None),
    # SymPy 1.14 leaves this one unevaluated
    ("det", Determinant(X), X, None),
    ("MatMul and Trace", Trace(A * X * B), X, None),
    ("vector quadratic form", x.T * S * x, x, None),
    ("least squares", (W * x - y).T * (W * x - y), W, None),
    ("MatPow", Trace(X ** 3), X, None),
    ("negative MatPow", Trace(A * X ** -2), X, None),
    ("Inverse", y.T * X.I * y, X, None),
    ("Transpose", Trace(A * X.T * B), X, None),
    ("HadamardProduct", Trace(HadamardProduct(X, A) * B), X, None),
    ("HadamardPower", OneMatrix(1, n) * HadamardPower(W * x - y, 2), W, None),
    ("HadamardPower -1", Trace(HadamardPower(X, -1) * A), X, None),
    ("Identity and OneMatrix", Trace((X + 2 * Identity(n)) * A) + Trace(OneMatrix(n, n) * X),
     X, None),
    ("ZeroMatrix", Trace((X + ZeroMatrix(n, n)) * A), X, None),
    ("scalar symbol and numbers", a * Trace(X) ** 2 / 3 + a ** 2, [X, a], None),
    ("a dimension as a number", Trace(A * X) / n, X, None),
    ("integer dimensions", Trace(P.T * Q) + Trace(P * Q.T * P * Q.T), P, None),
    ("DiagMatrix", Trace(DiagMatrix(y) * X), [X, y], None),
    ("DiagonalOf", OneMatrix(1, n) * DiagonalOf(X * A), X, None),
    ("non-scalar (VJP with G)", X * A * X, X, None),
    ("scalar function of a trace", exp(Trace(A * X)) + tanh(Trace(X)), X, None),
    ("Lambda body", OneMatrix(1, n) * (W * x).applyfunc(Lambda(t, 1 / (1 + exp(-t)))), W, None),
    ("Lambda with a scalar symbol", Trace(X.applyfunc(Lambda(t, t ** 2 + a * t)) * A), X, None),
]


@pytest.mark.parametrize("label,f,wrt,domains", GRADIENTS, ids=[g[0] for g in GRADIENTS])
def test_a_sympy_expression_derives_to_sympys_explicit_derivative(label, f, wrt, domains):
    assert_gradient(f, wrt, domains)


ROWS = [op.function for op in OPERATIONS if op.function is not None]
#: Each function of matcalc's own, spelled by hand in SymPy's own functions: the reference
#: differentiates these, never the class's own derivative. A new row of matcalc's own needs
#: its spelling here.
SPELLED = {
    "sigmoid": lambda u: 1 / (1 + exp(-u)),
    "softplus": lambda u: log(1 + exp(u)),
    "relu": lambda u: sympy.Max(u, 0),
    "step": lambda u: sympy.Heaviside(u, 0),
    "abs": Abs,
    "sign": sympy.sign,
    "square": lambda u: u ** 2,
    "gelu": lambda u: u * (1 + sympy.erf(u / sqrt(2))) / 2,
    "gelu_tanh": lambda u: u * (1 + tanh(sqrt(2 / sympy.pi) * (u + Rational(44715, 10 ** 6)
                                                                * u ** 3))) / 2,
    "silu": lambda u: u / (1 + exp(-u)),
}


def row_domains(row):
    """Positive W and x where the function needs it or has a kink (W x then never 0)."""
    positive = row.domain != "real" or row.kinks
    return {"W": "positive", "x": "positive"} if positive else None


SYMPY_ROWS = [row for row in ROWS if not is_own(row.sympy)
              and row.domain != "open unit interval"]     # (W x of integers leaves (-1, 1))
OWN_ROWS = [row for row in ROWS if is_own(row.sympy)]


@pytest.mark.parametrize("row", SYMPY_ROWS, ids=[row.name for row in SYMPY_ROWS])
def test_elementwise_functions_applied_with_applyfunc(row):
    f = OneMatrix(1, n) * (W * x).applyfunc(row.sympy)
    assert_gradient(f, W, row_domains(row))
    assert_gradient(f, x, row_domains(row), seed=1)


@pytest.mark.parametrize("row", OWN_ROWS, ids=[row.name for row in OWN_ROWS])
def test_matcalcs_own_sympy_functions_are_read_and_written_in_sympys(row):
    f = OneMatrix(1, n) * (W * x).applyfunc(row.sympy)
    spelled = OneMatrix(1, n) * (W * x).applyfunc(SPELLED[row.name])
    assert_gradient(f, W, row_domains(row), reference=spelled)
    assert_gradient(spelled, W, row_domains(row), seed=1)   # read from SymPy's own spelling
    written = mc.from_sympy(f).to_sympy()
    assert not any(is_own(type(g)) for g in sympy.preorder_traversal(written)
                   if isinstance(g, sympy.Function))


def test_wrt_may_be_a_name_a_matrix_symbol_or_a_list_of_both():
    f = Trace(A * X * B) + Trace(y * y.T * X)
    by_name = mc.derive(f, wrt="X").gradient
    assert mc.derive(f, wrt=X).gradient is by_name
    assert mc.derive(f, wrt=["X", y]).gradients[0] is by_name
    assert_gradient(f, [X, "y"])


def test_a_symbol_not_in_the_expression_has_a_zero_gradient():
    res = mc.derive(Trace(X), wrt=[X, MatrixSymbol("Y", n, n)])
    assert res.to_sympy()[1] == ZeroMatrix(n, n)


def test_shapes_come_from_the_matrix_symbols_and_results_use_the_users_symbols():
    k = Symbol("k")                      # no assumptions: the user's own symbol comes back
    Y = MatrixSymbol("Y", k, k)
    got = mc.derive(Trace(Y * Y), wrt=Y).to_sympy()
    assert got.shape == (k, k) and got.has(Y)
    assert_equal(explicit(got, {"k": 2}, {"Y": sympy.ImmutableMatrix([[1, 2], [3, 4]])}),
                 sympy.ImmutableMatrix([[2, 6], [4, 8]]), {})


def test_domains_reach_the_numeric_check():
    res = mc.derive(log(Determinant(X)), wrt=X, domains={"X": "spd"})
    assert res.expression.args[0].args[0].domain == "spd"
    assert res.check().ok


def test_a_positive_symbol_is_a_positive_scalar():
    b = Symbol("b", positive=True)
    node = mc.from_sympy(log(b) * Trace(X))
    assert [v.domain for v in E.variables([node]) if v.name == "b"] == ["positive"]


def test_the_generated_code_of_a_sympy_expression_computes_the_gradient():
    res = mc.derive(Trace(A * X * B), wrt=X)
    rng = np.random.default_rng(0)
    Av, Xv, Bv = (rng.standard_normal((3, 3)) for _ in range(3))
    np.testing.assert_allclose(res.numpy_function()(A=Av, X=Xv, B=Bv), Av.T @ Bv.T)


def test_backward_code_from_a_sympy_loss():
    loss = (W * x - y).T * (W * x - y)
    code = mc.backward(loss, wrt=[W, "x"], names={"r": W * x - y})
    rng = np.random.default_rng(1)
    Wv, xv, yv = rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal(3)
    value, kept = code.forward(W=Wv, x=xv, y=yv)
    dW, dx = code.backward(kept)
    r = Wv @ xv - yv
    np.testing.assert_allclose(value, r @ r)
    np.testing.assert_allclose(dW, 2 * np.outer(r, xv))
    np.testing.assert_allclose(dx, 2 * Wv.T @ r)
    assert "r = " in code.source


def test_domains_must_name_symbols_of_the_expression():
    with pytest.raises(mc.MatcalcError, match="domains= names Y, not a symbol"):
        mc.derive(Trace(X), wrt=X, domains={"Y": "spd"})


# ---------------------------------------------------------------------------------------------
# Jacobians, Hessians and Hessian-vector products
# ---------------------------------------------------------------------------------------------

def test_jacobian_of_a_sympy_vector():
    f = (W * x).applyfunc(tanh)
    got = mc.jacobian(f, wrt=x).to_sympy()
    values, at, wrt = values_for({W, x}, {"x"}, {}, 0)
    want = explicit(f, SIZES, values).jacobian(vec(wrt["x"]))
    assert_equal(explicit(got, SIZES, values), want, at)


def test_hessian_of_a_sympy_scalar_in_a_vector():
    f = x.T * S * x + OneMatrix(1, d) * x.applyfunc(exp)
    got = mc.hessian(f, wrt="x").to_sympy()
    values, at, wrt = values_for({S, x}, {"x"}, {}, 0)
    want = sympy.hessian(explicit(f, SIZES, values)[0, 0], vec(wrt["x"]))
    assert_equal(explicit(got, SIZES, values), want, at)


def test_hessian_in_a_matrix_comes_back_as_its_kronecker_form():
    f = Trace(X.T * A * X)
    got = mc.hessian(f, wrt=X).to_sympy()
    assert got.has(sympy.KroneckerProduct)
    values, at, wrt = values_for({X, A}, {"X"}, {}, 0)
    want = sympy.hessian(explicit(f, SIZES, values), vec(wrt["X"]))     # column-major vec
    assert_equal(explicit(got, SIZES, values), want, at)


def test_jacobian_of_a_matrix_in_a_matrix_comes_back_as_its_kronecker_form():
    f = A.T * X * B
    got = mc.jacobian(f, wrt=X).to_sympy()
    values, at, wrt = values_for({X, A, B}, {"X"}, {}, 0)
    want = sympy.Matrix(vec(explicit(f, SIZES, values))).jacobian(vec(wrt["X"]))
    assert_equal(explicit(got, SIZES, values), want, at)


def test_hvp_of_a_sympy_expression():
    f = Trace(X.T * A * X * B)
    res = mc.hvp(f, wrt=X)
    v = MatrixSymbol(res.direction.name, n, n)
    values, at, wrt = values_for({X, A, B, v}, {"X"}, {}, 0)
    g = gradient(explicit(f, SIZES, values), wrt["X"])
    want = gradient(sum(g[i] * values[v.name][i] for i in range(9)), wrt["X"])
    assert_equal(explicit(res.to_sympy(), SIZES, values), want, at)


def test_a_hessian_with_no_kronecker_form_is_refused_in_words():
    Xm = mc.Matrix("X", "n", "n")
    res = mc.hessian(mc.sum(mc.tanh(Xm) ** 2), Xm)
    assert res.tensor.kronecker is None
    with pytest.raises(mc.UnsupportedError, match="no Kronecker form"):
        res.to_sympy()


# ---------------------------------------------------------------------------------------------
# matcalc out: every operation of the registry, written as SymPy, equals the reference
# ---------------------------------------------------------------------------------------------

class Variables:
    """The variables the registry's docs examples are written over (as tests/test_registry)."""

    A = E.Var.make("A", ("n", "p")); B = E.Var.make("B", ("p", "m"))
    C = E.Var.make("C", ("n", "p")); S = E.Var.make("S", ("n", "n"))
    x = E.Var.make("x", ("n", 1)); r = E.Var.make("r", (1, "p")); a = E.Var.make("a", (1, 1))


REGISTRY_SIZES = {"n": 3, "p": 4, "m": 2}
EXAMPLES = [(op, label, build(Variables)) for op in OPERATIONS for label, build in op.examples]
REFUSED = {"einsum": "no SymPy matrix expression"}
#: The operations SymPy has a spelling for: every one the registry had when the bridge was
#: written, and every elementwise function (written through its ``sympy`` field).
WRITTEN = {"@", "T", "+", "-", "neg", "*", "/", "**", "broadcast", "sum", "trace", "det",
           "logdet", "inv", "diag", "norm", "norm1", "softmax", "logsumexp"} | {
               row.name for row in ROWS}


def numbers_for(op, node, rng):
    """Random values for a node's variables inside the operation's domain: positive, and away
    from 0 for the functions with a kink there; inside (0, 1) for arcsin and arccos."""
    low, high = (0.1, 0.9) if op.domain == "open unit interval" else (0.5, 2.0)
    return {v.name: rng.uniform(low, high, size=tuple(reference.size(k, REGISTRY_SIZES)
                                                      for k in v.shape))
            for v in E.variables([node])}


def sympy_value(value, node, numbers):
    symbols = {v.name: (sympy.ImmutableMatrix(numbers[v.name]) if v.kind != "scalar"
                        else sympy.Float(numbers[v.name].item(), 30))
               for v in E.variables([node])}
    out = explicit(value, REGISTRY_SIZES, symbols)
    out = sympy.ImmutableMatrix(out) if isinstance(out, sympy.MatrixBase) else \
        sympy.ImmutableMatrix([[out]])
    return np.array(out.evalf(20).tolist(), dtype=float)


@pytest.mark.parametrize("op,label,node", EXAMPLES,
                         ids=[f"{op.name}:{label}" for op, label, _ in EXAMPLES])
def test_every_operation_is_written_as_sympy_that_computes_its_value(op, label, node):
    """Written, and equal to the reference's value; or refused in words, never written wrong.
    (An operation added later without a SymPy spelling is refused by name until it has one.)"""
    if op.name in REFUSED:
        with pytest.raises(mc.UnsupportedError, match=REFUSED[op.name].replace("(", r"\(")
                           .replace(")", r"\)")):
            node.to_sympy()
        return
    if op.name not in WRITTEN:
        with pytest.raises(mc.UnsupportedError, match=f"{op.name} has no SymPy counterpart"):
            node.to_sympy()
        return
    numbers = numbers_for(op, node, np.random.default_rng(0))
    want = reference.evaluate(node, numbers, REGISTRY_SIZES)
    np.testing.assert_allclose(sympy_value(node.to_sympy(), node, numbers), want, rtol=1e-12)
    back = mc.from_sympy(node.to_sympy())             # and read back, the same value
    np.testing.assert_allclose(reference.evaluate(back, numbers, REGISTRY_SIZES), want,
                               rtol=1e-12)


def test_the_written_operations_are_the_registrys_and_each_has_an_example():
    examples = {op.name for op, _, _ in EXAMPLES}
    assert WRITTEN | set(REFUSED) <= {op.name for op in OPERATIONS}
    assert WRITTEN - examples == set()


def test_softmax_spelled_out_goes_to_sympy_and_its_derivative_too():
    xv, yv = mc.Vector("x", "n"), mc.Vector("y", "n")
    spelled = mc.sum(yv * (mc.exp(xv) / mc.sum(mc.exp(xv))))
    f = spelled.to_sympy()
    got = mc.grad(spelled, xv).to_sympy()
    xs, ys = MatrixSymbol("x", n, 1), MatrixSymbol("y", n, 1)
    values, at, wrt = values_for({xs, ys}, {"x"}, {}, 0)
    want = gradient(explicit(f, SIZES, values), wrt["x"])
    assert_equal(explicit(got, SIZES, values), want, at)


def test_results_are_written_in_sympys_own_vocabulary():
    Xm, Am = mc.Matrix("X", "n", "n"), mc.Matrix("A", "n", "n")
    xm = mc.Vector("x", "n")
    n_ = mc.dim("n").value
    assert (Xm @ Am.T).to_sympy() == MatrixSymbol("X", n_, n_) * MatrixSymbol("A", n_, n_).T
    assert (2 * Xm).to_sympy() == 2 * MatrixSymbol("X", n_, n_)     # not a HadamardProduct
    assert mc.sum(xm).to_sympy() == OneMatrix(1, n_) * MatrixSymbol("x", n_, 1)
    assert mc.trace(mc.inv(Xm)).to_sympy() == Trace(MatrixSymbol("X", n_, n_).I)
    assert mc.abs(Xm).to_sympy().function(t) == Abs(t)


def test_to_sympy_on_a_matcalc_derivation_and_as_a_function():
    res = mc.derive("trace(A @ X @ B)", wrt="X",
                    shapes={"A": ("n", "n"), "X": ("n", "n"), "B": ("n", "n")})
    n_ = mc.dim("n").value
    want = MatrixSymbol("A", n_, n_).T * MatrixSymbol("B", n_, n_).T
    assert res.to_sympy() == want
    assert mc.to_sympy(res) == want and mc.to_sympy(res.gradient) == want
    with pytest.raises(mc.MatcalcError, match="to_sympy takes"):
        mc.to_sympy("A @ B")


def test_round_trip_keeps_the_value():
    for label, f, wrt, domains in GRADIENTS:
        symbols = free_symbols(f)
        values, _, _ = values_for(symbols, set(), {}, 3)
        assert_equal(explicit(mc.to_sympy(mc.from_sympy(f)), SIZES, values),
                     explicit(f, SIZES, values), {}, label)


# ---------------------------------------------------------------------------------------------
# What is refused, in one line naming the SymPy class
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make,fragment", [
    (lambda: sympy.KroneckerProduct(A, X), "cannot read SymPy's KroneckerProduct"),
    (lambda: X[0, 1] * Trace(X), "cannot read SymPy's MatrixElement"),
    (lambda: Trace(X ** Rational(1, 2)), "cannot read SymPy's MatPow with the exponent 1/2"),
    (lambda: sympy.Matrix([[1, 2], [3, 4]]), "explicit matrix"),
    (lambda: OneMatrix(1, n) * X.applyfunc(sympy.asinh) * OneMatrix(n, 1), "asinh"),
    (lambda: Trace(MatrixSymbol("Z", n + 1, n + 1)), "dimension n \\+ 1"),
    (lambda: Trace(X) * Trace(MatrixSymbol("X", m, m)), "two different SymPy symbols are named X"),
    (lambda: Trace(X) + Trace(MatrixSymbol("Y", Symbol("n"), Symbol("n"))),
     "two different SymPy symbols are named n"),
    (lambda: Trace(MatrixSymbol("sum", n, n)), "'sum' is reserved"),
    (lambda: 42, "from_sympy takes a SymPy expression, not int"),
    (lambda: Trace(X.applyfunc(sympy.Heaviside)), r"H\(0\) = 1/2 \(matcalc's step is "
                                                  r"Heaviside\(x, 0\)\)"),
])
def test_what_cannot_be_read_is_refused_in_one_line(make, fragment):
    with pytest.raises(mc.MatcalcError, match=fragment) as err:
        mc.from_sympy(make())
    assert "\n" not in str(err.value)


def test_a_wrong_shape_for_wrt_is_named():
    with pytest.raises(mc.MatcalcError, match=r"two different SymPy symbols are named X: X "
                                              r"\(n×n\) and X \(m×m\)"):
        mc.derive(Trace(X), wrt=MatrixSymbol("X", m, m))
    with pytest.raises(mc.MatcalcError, match="is not the variable X of the expression"):
        mc.derive("trace(X)", wrt=MatrixSymbol("X", m, m), shapes={"X": ("n", "n")})


def test_softmax_is_written_out_for_sympy():
    """SymPy has no softmax: a result with one is written with exp and a sum, equal in value."""
    xv, yv = mc.Vector("x", "n"), mc.Vector("y", "n")
    f = mc.sum(yv * mc.log(mc.softmax(xv)))
    got = mc.grad(f, xv).to_sympy()
    xs, ys = MatrixSymbol("x", n, 1), MatrixSymbol("y", n, 1)
    values, at, wrt = values_for({xs, ys}, {"x"}, {}, 0)
    want = gradient(explicit(f.to_sympy(), SIZES, values), wrt["x"])
    assert_equal(explicit(got, SIZES, values), want, at)
