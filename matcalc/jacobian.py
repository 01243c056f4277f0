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

from .errors import UnsupportedError
from .expr import (Broadcast, Const, Eye, MatMul, Mul, Node, Transpose, Var, as_node, contains,
                   fresh_name, postorder)
from .ops import operation_of
from .ops.contractions import Sum
from .ops.linalg import Diag
from .printing.text import to_text
from .pipeline import differentiate
from .simplify import simplify


class _Peeling:
    """What a stanza's ``peel`` may use: the recursion ``lin`` (memoised), whether a node depends
    on g, the simplifier, and the engine's helpers. ``fail`` makes the error to raise."""

    def __init__(self, g: Var):
        self.g = g
        self.memo: dict[int, Node] = {}

    def contains(self, e: Node) -> bool:
        return contains(e, self.g)

    def lin(self, e: Node) -> Node:
        key = id(e)
        if key not in self.memo:
            self.memo[key] = self._lin(e)
        return self.memo[key]

    def _lin(self, e: Node) -> Node:
        g = self.g
        if e is g:
            return Eye.make(g.rows)
        if not contains(e, g):
            raise UnsupportedError(f"{to_text(e)} does not depend linearly on {g.name}")
        op = operation_of(e)
        peeled = op.peel(e, self) if op is not None and op.peel is not None else None
        if peeled is None:
            raise UnsupportedError(f"no matrix form for the derivative through {to_text(e)} "
                                   f"(it is not a column linear in {g.name})")
        return peeled

    simplify = staticmethod(simplify)

    @staticmethod
    def describe(e: Node) -> str:
        return to_text(e)

    @staticmethod
    def fail(message: str) -> UnsupportedError:
        return UnsupportedError(message)

    @staticmethod
    def is_diagonal(e: Node) -> bool:
        return isinstance(e, Diag) and e.to_matrix

    @staticmethod
    def scale_rows(v: Node, m: Node) -> Node:
        """diag(v) @ m for a column v (a scalar v simply scales)."""
        if isinstance(v, Broadcast) and v.args[0].is_scalar:
            return Mul.make(Broadcast.make(v.args[0], *m.shape), m)
        if v.is_scalar:
            return Mul.make(Broadcast.make(v, *m.shape), m)
        if v.cols != 1:
            raise UnsupportedError("an elementwise product of matrices has no matrix-form "
                                   "Jacobian")
        return MatMul.make(Diag.make(v), m)


def linear_matrix(expr: Node, g: Var) -> Node:
    """The matrix M with ``expr = M @ g``, for ``expr`` a column (or scalar) linear in the
    column ``g``. Each operation's ``peel`` (in its stanza) takes one operation off ``expr``, so
    it ends.

    >>> from matcalc.expr import Var
    >>> A = Var.make("A", ("m", "n")); g = Var.make("g", ("m", 1))
    >>> str(linear_matrix(A.T @ g, g))
    'A.T'
    """
    return simplify(_Peeling(g).lin(as_node(expr)))


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
    vjp = differentiate(f, [x], g).gradients[0]      # J^T g
    return simplify(Transpose.make(linear_matrix(vjp, g)))


def gradient_of(f: Node, x: Node) -> Node:
    """The simplified gradient of a scalar f."""
    if not f.is_scalar:
        raise UnsupportedError(f"a Hessian needs a scalar function, not {to_text(f)}")
    return differentiate(f, [x], Const.make(1)).gradients[0]


def hessian_matrix(f: Node, x: Node) -> Node:
    """The Hessian of a scalar f with respect to a vector x: the Jacobian of its gradient."""
    _check_column(x, "the variable")
    return jacobian_matrix(gradient_of(f, x), x)


def hvp(f: Node, x: Node, v: Var) -> Node:
    """The Hessian of a scalar f applied to a direction v of x's shape, in matrix form."""
    g = gradient_of(f, x)
    return differentiate(Sum.make(Mul.make(g, v)), [x], Const.make(1)).gradients[0]
