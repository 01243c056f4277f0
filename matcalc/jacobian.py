"""Jacobians and Hessians in matrix form, and Hessian-vector products.

Contract: a vector-Jacobian product with a symbolic upstream gradient G is linear in G. Written
as ``M @ G`` (``linear_matrix``), its matrix M is the transposed Jacobian, so
``jacobian_matrix(f, x)`` is J = M^T (m x n, numerator layout, for f an m-vector and x an
n-vector). The Hessian of a scalar f is the Jacobian of its gradient; ``hvp(f, x, V)`` is the
Hessian applied to a direction V of x's shape, the gradient of sum(grad f * V), a matrix-form
expression for any shape of x. Where no matrix form exists (a matrix variable's Hessian, a
matrix-valued f) ``linear_matrix`` raises ``UnsupportedError``: it never guesses.
"""

from __future__ import annotations

from .diff import reverse_sweep
from .errors import UnsupportedError
from .expr import (Add, Broadcast, Const, Diag, Div, Eye, MatMul, Mul, Neg, Node, Sub, Sum,
                   Transpose, Var, as_node, contains, fresh_name, ones, postorder)
from .printing.text import to_text
from .simplify import rewrite_forward, simplify, simplify_all


def linear_matrix(expr: Node, g: Var) -> Node:
    """The matrix M with ``expr = M @ g``, for ``expr`` a column (or scalar) linear in the
    column ``g``. Each rule peels one operation off ``expr`` (so it ends).

    >>> from matcalc.expr import Var
    >>> A = Var.make("A", ("m", "n")); g = Var.make("g", ("m", 1))
    >>> str(linear_matrix(A.T @ g, g))
    'A.T'
    """
    memo: dict[int, Node] = {}

    def lin(e: Node) -> Node:
        key = id(e)
        if key not in memo:
            memo[key] = _lin(e)
        return memo[key]

    def _lin(e: Node) -> Node:
        if e is g:
            return Eye.make(g.rows)
        if not contains(e, g):
            raise UnsupportedError(f"{to_text(e)} does not depend linearly on {g.name}")
        if isinstance(e, (Add, Sub)):
            a, b = e.args
            la = lin(a) if contains(a, g) else None
            lb = lin(b) if contains(b, g) else None
            if la is None or lb is None:
                raise UnsupportedError(f"{to_text(e)} is affine, not linear, in {g.name}")
            return Add.make(la, lb) if isinstance(e, Add) else Sub.make(la, lb)
        if isinstance(e, Neg):
            return Neg.make(lin(e.args[0]))
        if isinstance(e, MatMul):
            p, q = e.args
            if not contains(p, g):
                return MatMul.make(p, lin(q))              # P (M g)
            if not contains(q, g) and (p.rows == 1 or e.cols == 1 and q.cols == 1):
                # a row linear in g times a fixed column: p q = q^T p^T
                return MatMul.make(Transpose.make(q), lin(simplify(Transpose.make(p))))
            if isinstance(p, Diag) and p.to_matrix and not contains(q, g):
                return lin(Mul.make(p.args[0], q))         # diag(v) q = v * q
        if isinstance(e, Transpose) and e.is_scalar:
            return lin(e.args[0])                          # a scalar is its own transpose
        if isinstance(e, Transpose) and isinstance(e.args[0], MatMul):
            p, q = e.args[0].args                          # (p q)^T = q^T p^T
            return lin(MatMul.make(Transpose.make(q), Transpose.make(p)))
        if isinstance(e, (Mul, Div)):
            a, b = e.args
            if isinstance(e, Div):
                if contains(b, g):
                    raise UnsupportedError(f"{to_text(e)} is not linear in {g.name}")
                return _scale_rows(Div.make(ones(*b.shape), b), lin(a))
            if contains(a, g) and contains(b, g):
                raise UnsupportedError(f"{to_text(e)} is quadratic in {g.name}")
            fixed, varying = (a, b) if contains(b, g) else (b, a)
            return _scale_rows(fixed, lin(varying))
        if isinstance(e, Broadcast) and e.cols == 1 or isinstance(e, Broadcast) and e.is_scalar:
            inner = e.args[0]
            if inner.is_scalar:                            # a scalar repeated: ones @ it
                return MatMul.make(ones(e.rows, 1), lin(inner))
        if isinstance(e, Sum) and (e.is_scalar and e.args[0].cols == 1):
            inner = e.args[0]
            return MatMul.make(Transpose.make(ones(inner.rows, 1)), lin(inner))
        raise UnsupportedError(f"no matrix form for the derivative through {to_text(e)} "
                               f"(it is not a column linear in {g.name})")

    return simplify(lin(as_node(expr)))


def _scale_rows(v: Node, m: Node) -> Node:
    """diag(v) @ m for a column v (a scalar v simply scales)."""
    if isinstance(v, Broadcast) and v.args[0].is_scalar:
        return Mul.make(Broadcast.make(v.args[0], *m.shape), m)
    if v.is_scalar:
        return Mul.make(Broadcast.make(v, *m.shape), m)
    if v.cols != 1:
        raise UnsupportedError("an elementwise product of matrices has no matrix-form Jacobian")
    return MatMul.make(Diag.make(v), m)


def _fresh_var(name: str, shape, taken: set) -> Var:
    return Var.make(fresh_name(name, set(taken)), shape, check_name=False)


def _check_column(node: Node, what: str) -> None:
    if node.cols != 1:
        raise UnsupportedError(f"{what} {to_text(node)} is a matrix: a Jacobian in matrix form "
                               "needs vectors (use hvp() for a Hessian-vector product, which has "
                               "a matrix form for any shape)")


def jacobian_matrix(f: Node, x: Node) -> Node:
    """d f / d x for a vector f of a vector x: the m x n matrix of d f_i / d x_j."""
    _check_column(f, "the function")
    _check_column(x, "the variable")
    taken = {v.name for v in postorder([f]) if isinstance(v, Var)}
    g = _fresh_var("G", f.shape, taken)
    vjp = simplify(reverse_sweep(f, [x], g).gradients[0])      # J^T g
    return simplify(Transpose.make(linear_matrix(vjp, g)))


def gradient_of(f: Node, x: Node) -> Node:
    """The simplified gradient of a scalar f."""
    if not f.is_scalar:
        raise UnsupportedError(f"a Hessian needs a scalar function, not {to_text(f)}")
    stable = rewrite_forward(f) if isinstance(x, Var) else f   # a rewrite may drop paths via x
    return simplify(reverse_sweep(stable, [x], Const.make(1)).gradients[0])


def hessian_matrix(f: Node, x: Node) -> Node:
    """The Hessian of a scalar f with respect to a vector x: the Jacobian of its gradient."""
    _check_column(x, "the variable")
    return jacobian_matrix(gradient_of(f, x), x)


def hvp(f: Node, x: Node, v: Var) -> Node:
    """The Hessian of a scalar f applied to a direction v of x's shape, in matrix form."""
    g = gradient_of(f, x)
    return simplify_all(reverse_sweep(Sum.make(Mul.make(g, v)), [x], Const.make(1))
                        .gradients)[0]
