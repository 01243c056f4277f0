"""Reductions with a function around the sum: ``norm``, ``norm1``, ``softmax``, ``logsumexp``.

Contract: one stanza per operation. Each index form is finite but has a sum inside a function
(sqrt(sum A_pq^2), exp(A_ij) / sum exp), so its rule is derived like any other and then written
in terms of the operation's own value by its ``recognize`` step: the derivative of the softmax
normaliser comes out as softmax(A)_ij, not as exp(A_ij) / sum exp(A).
"""

from __future__ import annotations

import sympy
from sympy import Indexed

from ..dims import ONE, is_one
from ..errors import UnsupportedError
from ..expr import Apply, Node, Transpose, as_node, power, unkept
from ..notation import ZERO, entry, summation
from .base import AXIS, KEEPDIMS, POSTFIX, Operation, call, value_per_layer
from .contractions import Sum
from .elementwise import absolute, apply


def _check_axis(name: str, axis) -> None:
    if axis not in (None, 0, 1):
        raise UnsupportedError(f"{name} over axis {axis!r}: the axis must be 0, 1 or None")


class Norm(Node):
    """The Euclidean norm of a vector, the Frobenius norm of a matrix: sqrt(sum(X ** 2))."""

    __slots__ = ()

    @classmethod
    def make(cls, a: Node) -> "Norm":
        a = as_node(a)
        return cls._intern((a,), (), (ONE, ONE))

    def remake(self, args, dim_map):
        return Norm.make(args[0])


class Norm1(Node):
    """The entrywise 1-norm sum(abs(X)) (the l1 norm of a vector)."""

    __slots__ = ()

    @classmethod
    def make(cls, a: Node) -> "Norm1":
        a = as_node(a)
        return cls._intern((a,), (), (ONE, ONE))

    def remake(self, args, dim_map):
        return Norm1.make(args[0])


class Softmax(Node):
    """softmax(X): exp(X) / sum(exp(X)) over all entries (axis None: a vector's softmax), over
    each column (axis 0: a batch of logit columns) or over each row (axis 1)."""

    __slots__ = ()

    @classmethod
    def make(cls, a: Node, axis: int | None = None) -> "Softmax":
        a = as_node(a)
        _check_axis("softmax", axis)
        return cls._intern((a,), (axis,), a.shape)

    @property
    def axis(self):
        return self.params[0]

    def remake(self, args, dim_map):
        return Softmax.make(args[0], self.axis)


class LogSumExp(Node):
    """logsumexp(X) = log(sum(exp(X))), over all entries or along an axis (shapes as ``sum``)."""

    __slots__ = ()

    @classmethod
    def make(cls, a: Node, axis: int | None = None) -> "LogSumExp":
        a = unkept(as_node(a))       # x.T.T of a column x: x (text's way to keep x 2-D)
        _check_axis("logsumexp", axis)
        shape = {None: (ONE, ONE), 0: (a.cols, ONE), 1: (a.rows, ONE)}[axis]
        return cls._intern((a,), (axis,), shape)

    @property
    def axis(self):
        return self.params[0]

    def remake(self, args, dim_map):
        return LogSumExp.make(args[0], self.axis)


# ---------------------------------------------------------------------------------------------
# norm and norm1
# ---------------------------------------------------------------------------------------------

def _lower_norm(node, bases, i, j, fresh):
    """||A|| = sqrt(sum_pq A_pq^2)."""
    a, A = node.args[0], bases[0]
    p, q = fresh(), fresh()
    return sympy.sqrt(summation(summation(entry(A, a.shape, p, q) ** 2, p, a.rows), q, a.cols))


def _recognize_norm(node, bases, e, fresh):
    """Write sqrt(sum A_pq^2) as ||A||."""
    A = bases[0]
    norm = fresh.opaque("norm", lambda ops: Norm.make(ops[0]), positive=True)

    def is_square_sum(x):
        return isinstance(x, sympy.Sum) and isinstance(x.function, sympy.Pow) and \
            x.function.exp == 2 and isinstance(x.function.base, Indexed) and \
            x.function.base.base == A

    return e.replace(is_square_sum, lambda x: norm[0, 0] ** 2)


def _lower_norm1(node, bases, i, j, fresh):
    """||A||_1 = sum_pq |A_pq|."""
    a, A = node.args[0], bases[0]
    p, q = fresh(), fresh()
    return summation(summation(absolute(entry(A, a.shape, p, q)), p, a.rows), q, a.cols)


def _latex_norm(p, node, args):
    kind = "2" if is_one(node.args[0].cols) else "F"
    return rf"\left\|{args[0].text}\right\|_{{{kind}}}", p.ATOM


def _latex_norm1(p, node, args):
    return rf"\left\|{args[0].text}\right\|_{{1}}", p.ATOM


def _numpy_norm(p, node, args):
    return p.reshape(f"{p.np}.linalg.norm({p.array(args[0])})", "(1, 1)"), POSTFIX


def _numpy_norm1(p, node, args):
    return f"{p.np}.sum({p.np}.abs({p.array(args[0])}), {p.all_axes()}keepdims=True)", POSTFIX


def _norm(x, axis: int | None = None) -> Node:
    """Euclidean norm of a vector, Frobenius norm of a matrix, or the 2-norms along an axis."""
    x = as_node(x)
    if axis is None:
        return Norm.make(x)
    _check_axis("norm", axis)
    return apply("sqrt", Sum.make(power(x, 2), axis))


def _norm1(x) -> Node:
    """Entrywise 1-norm: the sum of absolute values."""
    return Norm1.make(as_node(x))


_SCALAR_VALUE = "a scalar, named t where it is shared"

NORM = Operation(
    "norm", "reductions", "the Euclidean (Frobenius) norm", node=Norm, syntax=call("norm", (1, 1), (AXIS, KEEPDIMS)),
    build=_norm, lower=_lower_norm, recognize=_recognize_norm, kind="custom",
    latex=_latex_norm, numpy=_numpy_norm, examples=(("norm", lambda v: Norm.make(v.A)),),
    excluded={"value name": _SCALAR_VALUE})

NORM1 = Operation(
    "norm1", "reductions", "the entrywise 1-norm", node=Norm1, syntax=call("norm1"),
    build=_norm1, lower=_lower_norm1, kind="custom", latex=_latex_norm1, numpy=_numpy_norm1,
    examples=(("1-norm", lambda v: Norm1.make(v.A)),), excluded={"value name": _SCALAR_VALUE})


# ---------------------------------------------------------------------------------------------
# softmax and logsumexp
# ---------------------------------------------------------------------------------------------

def _exp_sum(a, A, i, j, axis, fresh):
    """The softmax normaliser at (i, j): sum of exp over all entries, a column, or a row."""
    p, q = fresh(), fresh()
    if axis is None:
        return summation(summation(sympy.exp(entry(A, a.shape, p, q)), p, a.rows), q, a.cols)
    if axis == 0:
        return summation(sympy.exp(entry(A, a.shape, p, j)), p, a.rows)
    return summation(sympy.exp(entry(A, a.shape, i, q)), q, a.cols)


def _lower_softmax(node, bases, i, j, fresh):
    """Z_ij = exp(A_ij) / sum exp(A) (over all entries, A's column j or A's row i)."""
    a, A = node.args[0], bases[0]
    return sympy.exp(entry(A, a.shape, i, j)) / _exp_sum(a, A, i, j, node.axis, fresh)


def _lower_logsumexp(node, bases, i, j, fresh):
    """Z = log sum exp(A); Z_j = log sum_p exp(A_pj) (axis 0: the entry index is a column)."""
    a, A = node.args[0], bases[0]
    if node.axis == 0:
        return sympy.log(_exp_sum(a, A, 0, i, 0, fresh))
    return sympy.log(_exp_sum(a, A, i, 0, node.axis, fresh))


def _exp_sum_node(a: Node, axis):
    if axis is None:
        return Sum.make(Apply.make("exp", a))
    if axis == 0:
        return Transpose.make(Sum.make(Apply.make("exp", a), 0))
    return Sum.make(Apply.make("exp", a), 1)


def _recognize_softmax(node, bases, e, fresh):
    """Write exp(A_ij) / (sum of exp) as softmax(A)_ij: exp(A_ij) = s_ij * S."""
    A = bases[0]
    axis = node.axis
    sums = fresh.opaque("sumexp", lambda ops: _exp_sum_node(ops[0], axis))
    soft = fresh.opaque("softmax", lambda ops: Softmax.make(ops[0], axis))

    def normaliser_index(idx):
        if axis is None:
            return (ZERO, ZERO)
        return (ZERO, idx[1]) if axis == 0 else (idx[0], ZERO)

    def is_normaliser(x):
        if not isinstance(x, sympy.Sum):
            return False
        body = x.function
        return isinstance(body, sympy.exp) and isinstance(body.args[0], Indexed) and \
            body.args[0].base == A

    def to_sums(x):
        idx = tuple(x.function.args[0].indices)
        bound = {lim[0] for lim in x.limits}
        free = tuple(ZERO if t in bound else t for t in idx)
        return sums[normaliser_index(free)]

    e = e.replace(is_normaliser, to_sums)

    def is_entry_exp(x):
        return isinstance(x, sympy.exp) and isinstance(x.args[0], Indexed) and \
            x.args[0].base == A

    def to_softmax(x):
        idx = tuple(x.args[0].indices)
        return soft[idx] * sums[normaliser_index(idx)]

    return e.replace(is_entry_exp, to_softmax)


def _latex_with_axis(command: str):
    def spell(p, node, args):
        axis = "" if node.axis is None else f"_{{{node.axis}}}"
        return rf"\operatorname{{{command}}}{axis}" + p.paren(args[0].text), p.ATOM
    return spell


# Numerically stable softmax and logsumexp: shift by the maximum before exponentiating.
# The shifted copy (or x itself, when the caller made it and reads it no more: own) is
# exponentiated and normalised in place: one array, where exp(x - top) / sum makes three.
# (The tail both softmax helpers share, written for NumPy's name {np}; AXES filled in.)
_IN_PLACE = """    if own:
        x -= top
        e = x
    else:
        e = x - top
    {np}.exp(e, out=e)
    e /= {np}.sum(e, axis=AXES, keepdims=True)
    return e
"""
_SOFTMAX = """def {name}(x, axis, own=False):
    \"\"\"exp(x) / sum(exp(x)) along axis (all entries when None), shifted by the maximum;
    own: x is an array the caller made and reads no more, worked in in place.\"\"\"
    top = {np}.max(x, axis=axis, keepdims=True)
    if {np}.ndim(x) == 0:                   # a number
        e = {np}.exp(x - top)
        return e / {np}.sum(e, axis=axis, keepdims=True)
""" + _IN_PLACE.replace("AXES", "axis")
_LOGSUMEXP = """def {name}(x, axis):
    top = {np}.max(x, axis=axis, keepdims=True)
    e = x - top
    if {np}.ndim(e):
        {np}.exp(e, out=e)                  # (in the shifted copy's own array)
    else:
        e = {np}.exp(e)
    return top + {np}.log({np}.sum(e, axis=axis, keepdims=True))
"""
# (torch's max returns indices too; the array-API standard has no amax)
_PORTABLE_SOFTMAX = """def {name}(xp, x, axis, own=False):
    \"\"\"exp(x) / sum(exp(x)) along axis (all entries when None), shifted by the maximum;
    own: x is an array the caller made and reads no more, under NumPy worked in in place.\"\"\"
    axes = (0, 1) if axis is None else axis
    top = getattr(xp, "amax", xp.max)(x, axis=axes, keepdims=True)   # torch's max has indices
    if xp is not {numpy} or {numpy}.ndim(x) == 0:
        e = xp.exp(x - top)
        return e / xp.sum(e, axis=axes, keepdims=True)
""" + _IN_PLACE.replace("AXES", "axes").replace("{np}", "{numpy}")
_PORTABLE_LOGSUMEXP = """def {name}(xp, x, axis):
    \"\"\"log(sum(exp(x))) along axis (all entries when None), shifted by the maximum.\"\"\"
    axes = (0, 1) if axis is None else axis
    top = getattr(xp, "amax", xp.max)(x, axis=axes, keepdims=True)   # torch's max has indices
    return top + xp.log(xp.sum(xp.exp(x - top), axis=axes, keepdims=True))
"""


def _numpy_softmax(p, node, args):
    given = [p.array(args[0]), str(node.axis)] + (["own=True"] if p.made_here(args[0]) else [])
    if p.portable:
        return p.call("softmax", _PORTABLE_SOFTMAX, *given), POSTFIX
    return f"{p.helper('softmax', _SOFTMAX)}({', '.join(given)})", POSTFIX


def _numpy_logsumexp(p, node, args):
    if p.portable:
        text = p.call("logsumexp", _PORTABLE_LOGSUMEXP, p.array(args[0]), str(node.axis))
    else:
        name = p.helper("logsumexp", _LOGSUMEXP)
        text = f"{name}({p.array(args[0])}, {node.axis})"
    if node.axis == 0:
        p.untransposed[id(node)] = (text, POSTFIX)
        return text + ".T", POSTFIX
    return text, POSTFIX


def _softmax(x, axis: int | None = None) -> Node:
    """Softmax exp(x) / sum(exp(x)) of a vector, or of a matrix along an axis.

    Over all entries (axis None), each column (axis=0: a batch of logit columns) or each row
    (axis=1).
    """
    return Softmax.make(as_node(x), axis)


def _logsumexp(x, axis: int | None = None) -> Node:
    """log(sum(exp(x))), over all entries or along an axis (shapes as ``sum``)."""
    return LogSumExp.make(as_node(x), axis)


SOFTMAX = Operation(
    "softmax", "reductions", "exp(x) / sum(exp(x)), over all entries or along an axis",
    vector="operands", node=Softmax, syntax=call("softmax", (1, 1), (AXIS,)), build=_softmax,
    lower=_lower_softmax, recognize=_recognize_softmax, kind="custom",
    latex=_latex_with_axis("softmax"), numpy=_numpy_softmax,
    value_name=value_per_layer("p", "softmax"),
    examples=(("softmax", lambda v: Softmax.make(v.x)),
              ("softmax over columns", lambda v: Softmax.make(v.A, 0))))

LOGSUMEXP = Operation(
    "logsumexp", "reductions", "log(sum(exp(x))), over all entries or along an axis",
    vector="always", node=LogSumExp, syntax=call("logsumexp", (1, 1), (AXIS, KEEPDIMS)), build=_logsumexp,
    lower=_lower_logsumexp, recognize=_recognize_softmax, kind="custom",
    latex=_latex_with_axis("logsumexp"), numpy=_numpy_logsumexp,
    value_name=value_per_layer("lse", "lse"),
    examples=(("logsumexp", lambda v: LogSumExp.make(v.x)),
              ("logsumexp over columns", lambda v: LogSumExp.make(v.A, 0))))

OPERATIONS: tuple[Operation, ...] = (NORM, NORM1, SOFTMAX, LOGSUMEXP)
