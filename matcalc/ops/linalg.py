"""Linear algebra of square matrices: ``det``, ``logdet``, ``inv``, ``diag``, ``eye``.

Contract: one stanza per operation. det, logdet and inv have no finite index form: each carries
its derivative in index form by hand (``hand``), written over opaque entries of the whole-matrix
values (det(X), inv(X)_ij), and the same collapse turns it into matrix form:

    d det(X) / d X_kl = det(X) (X^-1)_lk,    d log|det(X)| / d X_kl = (X^-1)_lk,
    d (X^-1)_ij / d X_kl = -(X^-1)_ik (X^-1)_lj.

``diag`` is linear (a vector to a diagonal matrix, a square matrix to its diagonal), and ``eye``
the identity, a leaf whose entries are Kronecker deltas.
"""

from __future__ import annotations

import sympy

from ..dims import ONE, format_shape, is_one
from ..errors import ShapeError
from ..expr import (Const, Eye, MatMul, Neg, Node, Transpose, as_node, constant_value, describe,
                    scalar_factor)
from ..expr import mul as scaled
from ..notation import entry
from .base import POSTFIX, Operation, call, value_named, value_per_operand


def _square(label: str, a: Node) -> None:
    if a.rows != a.cols:
        raise ShapeError(f"{label} needs a square matrix, but {describe(a)} is "
                         f"{format_shape(a.shape)}")


class _SquareToScalar(Node):
    """A scalar function of a square matrix."""

    __slots__ = ()
    label = "?"

    @classmethod
    def make(cls, a: Node):
        a = as_node(a)
        _square(cls.label, a)
        return cls._intern((a,), (), (ONE, ONE))

    def remake(self, args, dim_map):
        return type(self).make(args[0])


class Det(_SquareToScalar):
    """Determinant det(X) of a square matrix."""
    __slots__ = ()
    label = "det"


class LogDet(_SquareToScalar):
    """log |det(X)| of a square matrix (its gradient is X^-T whatever the sign of det X)."""
    __slots__ = ()
    label = "logdet"


class Inv(Node):
    """Inverse inv(X) of a square matrix."""

    __slots__ = ()

    @classmethod
    def make(cls, a: Node) -> "Inv":
        a = as_node(a)
        _square("inv", a)
        return cls._intern((a,), (), a.shape)

    def remake(self, args, dim_map):
        return Inv.make(args[0])


class Diag(Node):
    """diag(v) of a vector is the diagonal matrix with v on its diagonal; diag(X) of a square
    matrix is the vector of its diagonal entries (NumPy's np.diag, both ways)."""

    __slots__ = ()

    @classmethod
    def make(cls, a: Node) -> "Diag":
        a = as_node(a)
        if is_one(a.cols):
            shape = (a.rows, a.rows)          # vector -> diagonal matrix
        elif a.rows == a.cols:
            shape = (a.rows, ONE)             # square matrix -> its diagonal
        else:
            raise ShapeError(f"diag needs a vector or a square matrix, but {describe(a)} is "
                             f"{format_shape(a.shape)}")
        return cls._intern((a,), (), shape)

    @property
    def to_matrix(self) -> bool:
        return is_one(self.args[0].cols)

    def remake(self, args, dim_map):
        return Diag.make(args[0])


# ---------------------------------------------------------------------------------------------
# Index forms: opaque whole-matrix values, derivatives by hand
# ---------------------------------------------------------------------------------------------

def _det_entry(node, fresh):
    return fresh.opaque("det", lambda ops: Det.make(ops[0]))[0, 0]


def _inv_base(node, fresh):
    return fresh.opaque("inv", lambda ops: Inv.make(ops[0]))


def _lower_det(node, bases, i, j, fresh):
    """det(X): an opaque entry (no finite index form)."""
    return _det_entry(node, fresh)


def _lower_logdet(node, bases, i, j, fresh):
    """log |det(X)|, over the opaque det(X)."""
    return sympy.log(sympy.Abs(_det_entry(node, fresh)))


def _lower_inv(node, bases, i, j, fresh):
    """inv(X)_ij: an opaque entry."""
    return _inv_base(node, fresh)[i, j]


def _hand_det(node, bases, i, j, k, l, fresh):
    """d det(X) / d X_kl = det(X) (X^-1)_lk."""
    return _det_entry(node, fresh) * _inv_base(node, fresh)[l, k]


def _hand_logdet(node, bases, i, j, k, l, fresh):
    """d log|det(X)| / d X_kl = (X^-1)_lk."""
    return _inv_base(node, fresh)[l, k]


def _hand_inv(node, bases, i, j, k, l, fresh):
    """d (X^-1)_ij / d X_kl = -(X^-1)_ik (X^-1)_lj."""
    inv = _inv_base(node, fresh)
    return -inv[i, k] * inv[l, j]


# ---------------------------------------------------------------------------------------------
# Rewrites
# ---------------------------------------------------------------------------------------------

def det_rules(node: Node):
    """det(X.T) = det(X) (also logdet). Decreases: transposes."""
    a = node.args[0]
    if isinstance(a, Transpose):
        return type(node).make(a.args[0])
    return None


def inv_rules(node: Inv):
    """inv(inv(X)) = X, inv(X.T) = inv(X).T, inv(eye) = eye, inv(P @ Q) = inv(Q) @ inv(P) for
    square P and Q (both invertible when P @ Q is), inv(c X) = inv(X) / c, inv(-X) = -inv(X).

    Decreases: the size of the expressions under Inv nodes.
    """
    a = node.args[0]
    if isinstance(a, Inv):
        return a.args[0]
    if isinstance(a, Transpose):
        return Transpose.make(Inv.make(a.args[0]))
    if isinstance(a, Eye):
        return a
    if isinstance(a, MatMul) and all(f.rows == f.cols for f in a.args):
        return MatMul.make(Inv.make(a.args[1]), Inv.make(a.args[0]))
    if isinstance(a, Neg):
        return Neg.make(Inv.make(a.args[0]))
    sf = scalar_factor(a)
    if sf is not None and constant_value(sf[0]) is not None:
        return scaled(Const.make(1 / constant_value(sf[0])), Inv.make(sf[1]))
    return None


# ---------------------------------------------------------------------------------------------
# Spellings
# ---------------------------------------------------------------------------------------------

def _latex_logdet(p, node, args):
    return r"\log\left|\det" + p.paren(args[0].text) + r"\right|", p.ATOM


def _latex_inv(p, node, args):
    return f"{p.wrap(args[0], p.ATOM)}^{{-1}}", p.POSTFIX


def _numpy_det(p, node, args):
    return p.reshape(f"{p.np}.linalg.det({p.array(args[0])})", "(1, 1)"), POSTFIX


def _numpy_logdet(p, node, args):
    """log |det X| without forming det X (which over- or underflows for large n)."""
    return p.reshape(f"{p.np}.linalg.slogdet({p.array(args[0])})[1]", "(1, 1)"), POSTFIX


def _numpy_inv(p, node, args):
    return f"{p.np}.linalg.inv({p.array(args[0])})", POSTFIX


def _unary(cls, doc: str):
    def build(x) -> Node:
        return cls.make(as_node(x))
    build.__doc__ = doc
    return build


DET = Operation(
    "det", "linear algebra", "the determinant of a square matrix", node=Det,
    syntax=call("det"), build=_unary(Det, "Determinant of a square matrix."),
    lower=_lower_det, hand=_hand_det, kind="custom", latex=r"\det", numpy=_numpy_det,
    value_name=value_named("det"), rewrites=(det_rules,),
    examples=(("determinant", lambda v: Det.make(v.S)),))

LOGDET = Operation(
    "logdet", "linear algebra", "log |det X| of a square matrix", node=LogDet,
    syntax=call("logdet"),
    build=_unary(LogDet, "log |det(X)| of a square matrix (log det X for a positive definite X)."),
    lower=_lower_logdet, hand=_hand_logdet, kind="custom", latex=_latex_logdet,
    numpy=_numpy_logdet, value_name=value_named("logdet"), rewrites=(det_rules,),
    examples=(("log-determinant", lambda v: LogDet.make(v.S)),))

INV = Operation(
    "inv", "linear algebra", "the inverse of a square matrix", node=Inv, syntax=call("inv"),
    build=_unary(Inv, "Inverse of a square matrix."), lower=_lower_inv, hand=_hand_inv,
    kind="custom", latex=_latex_inv, numpy=_numpy_inv, value_name=value_per_operand("inv"),
    rewrites=(inv_rules,), examples=(("inverse", lambda v: Inv.make(v.S)),))


def _lower_diag(node, bases, i, j, fresh):
    """diag(v)_ij = v_i delta_ij; diag(A)_i = A_ii."""
    a, A = node.args[0], bases[0]
    if node.to_matrix:
        return entry(A, a.shape, i, 0) * sympy.KroneckerDelta(i, j)
    return entry(A, a.shape, i, i)


DIAG = Operation(
    "diag", "linear algebra", "a vector's diagonal matrix, or a square matrix's diagonal",
    vector="always", node=Diag, syntax=call("diag"),
    build=_unary(Diag, "diag(vector) is a diagonal matrix; diag(square matrix) is its diagonal, "
                       "a vector."),
    lower=_lower_diag, kind="linear", latex=r"\operatorname{diag}",
    examples=(("diag of a vector", lambda v: Diag.make(v.x)),
              ("diag of a matrix", lambda v: Diag.make(v.S))),
    excluded={"numpy": "diag(v) @ B is a broadcast v * B and diag(A @ B) a row sum: the "
                       "printer's own fusion with products (printing.numpy._print_Diag)",
              "value name": "a diagonal matrix is never named: products with it are "
                            "broadcasts"})


def _eye(n) -> Node:
    """The n x n identity."""
    return Eye.make(n)


EYE = Operation(
    "eye", "linear algebra", "the identity matrix", node=Eye,
    syntax=call("eye", (1, 1), arguments="sizes"), build=_eye,
    excluded={"index form": "a leaf: its entries are Kronecker deltas",
              "rule kind": "a constant: it has no operand to differentiate",
              "text": "a leaf: the printer's own (eye(n))", "latex": "a leaf: the printer's own (I)",
              "numpy": "a leaf: the printer's own (np.eye)", "value name": "a constant, never named",
              "docs example": "a constant: no derivative rule to show"})

OPERATIONS: tuple[Operation, ...] = (DET, LOGDET, INV, DIAG, EYE)
