"""``max`` and ``min``, of all entries or along an axis, and the weights their derivatives are.

Contract: the largest (smallest) entry has no finite index form, so, as for det, the value is an
opaque entry and its derivative is written by hand over opaque entries:

    d max(X) / d X_kl = W_kl,   W = argmax_weights(X): 1/t at each of the t entries where X
                                    attains its maximum, 0 elsewhere;
    d max(X, axis=0)_j / d X_kl = δ_jl W_kl, W = argmax_weights(X, axis=0) (per column);
    d max(X, axis=1)_i / d X_kl = δ_ik W_kl, W = argmax_weights(X, axis=1) (per row).

Where several entries tie for the maximum the gradient is split equally among them, as JAX
does; elsewhere it is the one-hot of the maximum. The weights are piecewise constant: their
derivative is 0 wherever it exists, so Hessians through max are those of the chosen entries.
"""

from __future__ import annotations

import sympy

from ..dims import ONE
from ..errors import UnsupportedError
from ..expr import Node, as_node, unkept
from .base import AXIS, KEEPDIMS, POSTFIX, Operation, call, value_named


class _AlongAxis(Node):
    """A node of one operand with an axis (None, 0 or 1) among its parameters."""

    __slots__ = ()
    word = "?"

    @property
    def axis(self) -> int | None:
        return self.params[0]

    def remake(self, args, dim_map):
        return type(self).make(args[0], self.axis)


class _Extreme(_AlongAxis):
    """The largest or smallest entry: of all entries (a scalar) or along an axis (a vector)."""

    __slots__ = ()

    @classmethod
    def make(cls, a: Node, axis: int | None = None):
        a = unkept(as_node(a))
        if axis not in (None, 0, 1):
            raise UnsupportedError(f"{cls.word} over axis {axis!r}: the axis must be 0, 1 or None")
        shape = {None: (ONE, ONE), 0: (a.cols, ONE), 1: (a.rows, ONE)}[axis]
        return cls._intern((a,), (axis,), shape)


class Max(_Extreme):
    """max(X): the largest entry, or the largest of each column (axis 0) or row (axis 1)."""
    __slots__ = ()
    word = "max"


class Min(_Extreme):
    """min(X): the smallest entry, or the smallest of each column (axis 0) or row (axis 1)."""
    __slots__ = ()
    word = "min"


class _Weights(_AlongAxis):
    """1/t at each of the t entries attaining the extreme (of all, or per column or row), else 0."""

    __slots__ = ()

    @classmethod
    def make(cls, a: Node, axis: int | None = None):
        a = as_node(a)
        return cls._intern((a,), (axis,), a.shape)


class ArgmaxWeights(_Weights):
    """argmax_weights(X): where X attains its maximum, split equally among ties."""
    __slots__ = ()
    word = "max"


class ArgminWeights(_Weights):
    """argmin_weights(X): where X attains its minimum, split equally among ties."""
    __slots__ = ()
    word = "min"


# ---------------------------------------------------------------------------------------------
# Index forms
# ---------------------------------------------------------------------------------------------

def _lower_extreme(node, bases, i, j, fresh):
    """max(X) (or along an axis): an opaque entry (no finite index form)."""
    cls, axis = type(node), node.axis
    base = fresh.opaque(cls.word, lambda ops: cls.make(ops[0], axis))
    return base[0, 0] if axis is None else base[i, 0]


def _weights_class(node):
    return ArgmaxWeights if isinstance(node, Max) else ArgminWeights


def _hand_extreme(node, bases, i, j, k, l, fresh):
    """d max(X) / d X_kl = W_kl; along an axis, the entry of its own column or row only."""
    weights, axis = _weights_class(node), node.axis
    w = fresh.opaque(f"arg{weights.word}", lambda ops: weights.make(ops[0], axis))[k, l]
    if axis is None:
        return w
    return sympy.KroneckerDelta(i, l if axis == 0 else k) * w


def _lower_weights(node, bases, i, j, fresh):
    """The weights: opaque entries."""
    cls, axis = type(node), node.axis
    return fresh.opaque(f"arg{cls.word}", lambda ops: cls.make(ops[0], axis))[i, j]


def _hand_weights(node, bases, i, j, k, l, fresh):
    """Piecewise constant: 0 wherever the derivative exists."""
    return sympy.S.Zero


# ---------------------------------------------------------------------------------------------
# Spellings
# ---------------------------------------------------------------------------------------------

_AXIS_WORDS = {None: "", 0: r"_{\mathrm{col}}", 1: r"_{\mathrm{row}}"}


def _latex_extreme(p, node, args):
    return rf"\{node.word}{_AXIS_WORDS[node.axis]}{p.paren(args[0].text)}", p.POSTFIX


def _latex_weights(p, node, args):
    return (rf"\operatorname{{arg{node.word}\,w}}{_AXIS_WORDS[node.axis]}"
            rf"{p.paren(args[0].text)}", p.POSTFIX)


# torch's max along an axis returns (values, indices) and takes no tuple of axes: portable
# code reduces one axis at a time and keeps the values
_EXTREME_PORTABLE = """def {name}(xp, x, axis):
    \"\"\"x's {word} along axis (None: of all entries), kept 2-D, in any array namespace.\"\"\"
    for one in ((0, 1) if axis is None else (axis,)):
        x = xp.{word}(x, axis=one, keepdims=True)
        x = x[0] if isinstance(x, tuple) else x
    return x
"""


def _numpy_extreme(p, node, args):
    """Kept 2-D, as sum's: a column's extremes are NumPy's row, transposed to a column."""
    a, f = p.array(args[0]), f"{p.np}.{node.word}"
    if p.portable:
        call = p.call(f"{node.word}_along", _EXTREME_PORTABLE.replace("{word}", node.word), a,
                      repr(node.axis))
        return (f"{call}.T" if node.axis == 0 else call), POSTFIX
    if node.axis is None:
        return f"{f}({a}, {p.all_axes()}keepdims=True)", POSTFIX
    if node.axis == 0:
        return f"{f}({a}, axis=0, keepdims=True).T", POSTFIX
    return f"{f}({a}, axis=1, keepdims=True)", POSTFIX


_WEIGHTS = """def {name}(x, axis):
    \"\"\"1/t at each of the t entries of x attaining its {word} (along axis), else 0.\"\"\"
    hit = (x == x.{word}(axis=axis, keepdims=True)).astype(x.dtype)
    return hit / hit.sum(axis=axis, keepdims=True)
"""
_WEIGHTS_PORTABLE = """def {name}(xp, x, axis):
    \"\"\"1/t at each of the t entries of x attaining its {word} (along axis), else 0.\"\"\"
    top = x
    for one in ((0, 1) if axis is None else (axis,)):     # torch: one axis, (values, indices)
        top = xp.{word}(top, axis=one, keepdims=True)
        top = top[0] if isinstance(top, tuple) else top
    hit = xp.where(x == top, xp.ones_like(x), xp.zeros_like(x))
    return hit / xp.sum(hit, axis=(0, 1) if axis is None else axis, keepdims=True)
"""


def _numpy_weights(p, node, args):
    template = (_WEIGHTS_PORTABLE if p.portable else _WEIGHTS).replace("{word}", node.word)
    return p.call(f"arg{node.word}_weights", template, p.array(args[0]), repr(node.axis)), POSTFIX


# ---------------------------------------------------------------------------------------------
# Stanzas
# ---------------------------------------------------------------------------------------------

def _builder(cls, doc: str):
    def build(x, axis: int | None = None) -> Node:
        return cls.make(as_node(x), axis)
    build.__doc__ = doc
    return build


_EXAMPLES = {
    "max": (("largest entry", lambda v: Max.make(v.A)),
            ("column maxima", lambda v: Max.make(v.A, 0)),
            ("row maxima", lambda v: Max.make(v.A, 1))),
    "min": (("smallest entry", lambda v: Min.make(v.A)),
            ("row minima", lambda v: Min.make(v.A, 1))),
}


def _extreme(cls, summary: str) -> Operation:
    return Operation(
        cls.word, "reductions", summary, node=cls, vector="always",
        syntax=call(cls.word, (1, 1), (AXIS, KEEPDIMS)),
        build=_builder(cls, f"The {summary}: the gradient is split equally among ties."),
        lower=_lower_extreme, hand=_hand_extreme, kind="custom", latex=_latex_extreme,
        numpy=_numpy_extreme, value_name=value_named(cls.word), examples=_EXAMPLES[cls.word])


def _weights(cls) -> Operation:
    name = f"arg{cls.word}_weights"
    summary = (f"1/t at each of the t entries attaining the {cls.word}imum (of all, or per "
               f"column or row), else 0: the derivative of {cls.word}")
    return Operation(
        name, "reductions", summary, node=cls, vector="operands",
        syntax=call(name, (1, 1), (AXIS,)),
        build=_builder(cls, f"Where X attains its {cls.word}imum: 1/t at each of t ties, else 0."),
        lower=_lower_weights, hand=_hand_weights, kind="custom", latex=_latex_weights,
        numpy=_numpy_weights, value_name=value_named(f"arg{cls.word}_w"),
        examples=((f"where the {cls.word}imum is", lambda v: cls.make(v.A)),))


MAX = _extreme(Max, "largest entry, of all or along an axis")
MIN = _extreme(Min, "smallest entry, of all or along an axis")
ARGMAX_WEIGHTS = _weights(ArgmaxWeights)
ARGMIN_WEIGHTS = _weights(ArgminWeights)

OPERATIONS: tuple[Operation, ...] = (MAX, MIN, ARGMAX_WEIGHTS, ARGMIN_WEIGHTS)
