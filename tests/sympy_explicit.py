"""SymPy's own explicit evaluation: the tests' independent reference for the SymPy bridge.

``explicit`` evaluates a SymPy matrix expression entry by entry on small integer sizes, with
every MatrixSymbol replaced by an explicit matrix (of numbers, or of real symbols to
differentiate by), using nothing of matcalc. ``gradient`` is SymPy's elementwise derivative of
that explicit value: d f / d X_ij for each entry, the definition a matrix gradient answers to.
"""

from __future__ import annotations

import random

import sympy
from sympy.matrices.expressions import MatrixExpr, MatrixSymbol
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.diagonal import DiagMatrix, DiagonalOf


def explicit(e, sizes: dict, values: dict):
    """The value of ``e`` with dimensions by name (``sizes``) and symbols by name (``values``:
    an explicit matrix for a MatrixSymbol, a number or symbol for a scalar); a matrix comes back
    as an ImmutableMatrix, a scalar as a SymPy number or expression."""
    if isinstance(e, MatrixSymbol):
        return values[e.name]
    if isinstance(e, sympy.Symbol):
        return sizes[e.name] if e.name in sizes else values[e.name]
    if isinstance(e, sympy.Lambda):            # its free symbols (not its variable) replaced
        return e.xreplace({s: values[s.name] for s in e.free_symbols if s.name in values})
    if not e.args:
        return e
    if isinstance(e, ElementwiseApplyFunction):
        function = explicit(e.function, sizes, values)
        return sympy.ImmutableMatrix(explicit(e.expr, sizes, values).applyfunc(function))
    args = [explicit(a, sizes, values) for a in e.args]
    if isinstance(e, DiagonalOf):        # (SymPy 1.14's DiagonalOf of an explicit matrix fails)
        return sympy.ImmutableMatrix([[args[0][i, i]] for i in range(args[0].rows)])
    if isinstance(e, DiagMatrix):
        return sympy.ImmutableMatrix(sympy.diag(*args[0]))
    out = e.func(*args)
    if hasattr(out, "doit"):
        out = out.doit()
    if isinstance(out, MatrixExpr):
        out = out.as_explicit()
    if isinstance(out, sympy.MatrixBase):
        out = sympy.ImmutableMatrix(out)
        if out.shape == (1, 1) and not isinstance(e, MatrixExpr):
            out = out[0, 0]
    return out


def symbols_for(name: str, shape: tuple) -> sympy.ImmutableMatrix:
    """An explicit matrix of real symbols X_i_j (a 1x1 one for a scalar)."""
    return sympy.ImmutableMatrix(*shape, lambda i, j: sympy.Symbol(f"{name}_{i}_{j}", real=True))


def random_matrix(rng: random.Random, shape: tuple, domain: str = "real") -> sympy.ImmutableMatrix:
    """Small random integers (non-zero), positive for a positive domain, symmetric for spd
    (plus a diagonal large enough to be positive definite), invertible for invertible."""
    while True:
        if domain == "positive":
            m = sympy.ImmutableMatrix(*shape, lambda i, j: rng.randint(1, 4))
        else:
            m = sympy.ImmutableMatrix(*shape, lambda i, j: rng.choice([-3, -2, -1, 1, 2, 3]))
        if domain == "spd":
            m = sympy.ImmutableMatrix(m * m.T + 3 * sympy.eye(shape[0]))
        if domain in ("spd", "invertible") and m.det() == 0:
            continue
        return m


def gradient(f, wrt_symbols: sympy.ImmutableMatrix, weight=None) -> sympy.ImmutableMatrix:
    """d f / d X_ij for every entry of X (its explicit matrix of symbols); a matrix-valued f is
    first weighted by ``weight`` and summed (the vector-Jacobian product)."""
    if isinstance(f, sympy.MatrixBase):
        f = sum((weight[i, j] * f[i, j] for i in range(f.rows) for j in range(f.cols)),
                sympy.Integer(0)) if weight is not None else f[0, 0]
    return sympy.ImmutableMatrix(*wrt_symbols.shape,
                                 lambda i, j: sympy.diff(f, wrt_symbols[i, j]))


def gradient_at(f, sizes: dict, values: dict, name: str, weight=None) -> sympy.ImmutableMatrix:
    """d f / d X_ij at the given (numeric) values, one entry at a time: X_ij alone a symbol,
    every other entry its number, so each derivative is of a small one-variable expression."""
    base = values[name]
    matrix = isinstance(base, sympy.MatrixBase)
    shape = base.shape if matrix else (1, 1)
    entry = sympy.Symbol("entry", real=True)
    out = sympy.zeros(*shape)
    for i in range(shape[0]):
        for j in range(shape[1]):
            if matrix:
                varied = sympy.Matrix(base)
                varied[i, j] = entry
                varied = sympy.ImmutableMatrix(varied)
            else:
                varied = entry
            value = gradient(explicit(f, sizes, {**values, name: varied}),
                             sympy.ImmutableMatrix([[entry]]), weight)[0, 0]
            out[i, j] = value.subs(entry, base[i, j] if matrix else base)
    return sympy.ImmutableMatrix(out)


def vec(m: sympy.MatrixBase) -> list:
    """The column-major vec of an explicit matrix (the Matrix Cookbook's)."""
    return [m[i, j] for j in range(m.cols) for i in range(m.rows)]


def assert_equal(got, want, at: dict, label: str = "") -> None:
    """Equal after substituting ``at`` (symbol -> number): exactly, or to 30 digits where
    transcendental numbers remain."""
    got = sympy.ImmutableMatrix(got) if isinstance(got, sympy.MatrixBase) else \
        sympy.ImmutableMatrix([[got]])
    want = sympy.ImmutableMatrix(want) if isinstance(want, sympy.MatrixBase) else \
        sympy.ImmutableMatrix([[want]])
    assert got.shape == want.shape, (label, got.shape, want.shape)
    for g, w in zip(got, want):
        difference = sympy.N((g - w).xreplace(at), 40)
        assert abs(difference) < 1e-25, f"{label}: {g.xreplace(at)} != {w.xreplace(at)}"
