"""Operations written with others: maximum, minimum, clip, where, leaky_relu, elu, var, std.

Contract: each stanza here has a builder and no node of its own. Its value is an exact identity
in operations matcalc already differentiates (``maximum(a, b) = a + relu(b - a)``,
``var = mean((x - mean(x)) ** 2)``), so its derivative, printing and code come from theirs and
no rule is typed in. The parser broadcasts the operands of ``maximum``, ``minimum``, ``clip``
and ``where`` together first, as NumPy does (``matcalc.reading``).

Where a function has a kink, its derivative there is one-sided, as relu's and step's are:
``maximum(a, b)`` passes the whole gradient to ``a`` where ``a == b`` (NumPy's ``maximum``
has no derivative there; JAX splits it equally). The numeric check redraws its inputs off the
kink. A comparison inside ``where`` is a step of the difference and carries no gradient.
"""

from __future__ import annotations

from ..errors import ShapeError
from ..expr import Const, Node, add, as_node, div, mul, neg, power, sub
from .base import AXIS, KEEPDIMS, Keyword, Operation, call
from .contractions import Sum
from .elementwise import apply

_COMPOSED = ("node", "index form", "rule kind", "text", "latex", "numpy", "value name",
             "docs example")


def _composed(what: str) -> dict:
    return {concern: f"built from {what}, which carry every other concern" for concern in
            _COMPOSED}


def _scalar(x: Node, name: str, what: str) -> Node:
    x = as_node(x)
    if not x.is_scalar:
        raise ShapeError(f"{name}(): {what} must be a number")
    return x


# -- maximum, minimum, clip --------------------------------------------------------------------

def maximum(a, b) -> Node:
    """Elementwise max(a, b) = a + relu(b - a); where a == b the gradient goes to a."""
    a, b = as_node(a), as_node(b)
    return add(a, apply("relu", sub(b, a)))


def minimum(a, b) -> Node:
    """Elementwise min(a, b) = a - relu(a - b); where a == b the gradient goes to a."""
    a, b = as_node(a), as_node(b)
    return sub(a, apply("relu", sub(a, b)))


def clip(x, low, high) -> Node:
    """NumPy's clip: min(max(x, low), high), entry by entry."""
    return minimum(maximum(x, low), high)


MAXIMUM = Operation(
    "maximum", "composites", "the larger of two values, entry by entry", vector="operands",
    syntax=call("maximum", (2, 2)), build=maximum, excluded=_composed("relu and a sum"))
MINIMUM = Operation(
    "minimum", "composites", "the smaller of two values, entry by entry", vector="operands",
    syntax=call("minimum", (2, 2)), build=minimum, excluded=_composed("relu and a difference"))
CLIP = Operation(
    "clip", "composites", "x limited to [low, high], entry by entry", vector="operands",
    syntax=call("clip", (3, 3)), build=clip, excluded=_composed("maximum and minimum"))


# -- where and comparisons ---------------------------------------------------------------------

#: A comparison in ``where``: the indicator (1 where it holds, 0 elsewhere) of ``left op right``
#: as a step of their difference (step(0) = 0, so >= and <= are one minus the strict opposite).
COMPARISONS = {
    ">": lambda l, r: apply("step", sub(l, r)),
    "<": lambda l, r: apply("step", sub(r, l)),
    ">=": lambda l, r: sub(Const.make(1), apply("step", sub(r, l))),
    "<=": lambda l, r: sub(Const.make(1), apply("step", sub(l, r))),
}


def where(condition, a, b) -> Node:
    """NumPy's where(condition, a, b): b + condition * (a - b), condition an indicator.

    In text the condition is a comparison (``where(x > 0, x, 0.1 * x)``); in Python, any
    indicator (1 where it holds, 0 elsewhere). No gradient flows through the condition.
    """
    condition, a, b = as_node(condition), as_node(a), as_node(b)
    return add(b, mul(condition, sub(a, b)))


WHERE = Operation(
    "where", "composites", "a where a comparison holds, else b", vector="operands",
    syntax=call("where", (3, 3)), build=where,
    excluded=_composed("step of the compared difference"))


# -- activations with a parameter --------------------------------------------------------------

def leaky_relu(x, alpha) -> Node:
    """x where x > 0, alpha x elsewhere: relu(x) - alpha relu(-x)."""
    x, alpha = as_node(x), _scalar(alpha, "leaky_relu", "alpha (the slope below 0)")
    return sub(apply("relu", x), mul(alpha, apply("relu", neg(x))))


def elu(x, alpha=None) -> Node:
    """x where x > 0, alpha (exp(x) - 1) elsewhere: relu(x) + alpha expm1(-relu(-x))."""
    x = as_node(x)
    alpha = Const.make(1) if alpha is None else _scalar(alpha, "elu", "alpha")
    return add(apply("relu", x), mul(alpha, apply("expm1", neg(apply("relu", neg(x))))))


LEAKY_RELU = Operation(
    "leaky_relu", "composites", "x for x > 0, alpha x below (alpha a number)",
    vector="operands", syntax=call("leaky_relu", (2, 2)), build=leaky_relu,
    excluded=_composed("relu"))
ELU = Operation(
    "elu", "composites", "x for x > 0, alpha (exp(x) - 1) below (alpha a number, default 1)",
    vector="operands", syntax=call("elu", (1, 2)), build=elu,
    excluded=_composed("relu and expm1"))


# -- variance and standard deviation -------------------------------------------------------------

DDOF = Keyword("ddof", "", values=(0, 1), default=0, positional=False)


def var(x, axis: int | None = None, ddof: int = 0) -> Node:
    """NumPy's var: the squared deviation from the mean, summed and divided by count - ddof.

    Over all entries, or along ``axis`` (0: one per column, 1: one per row).
    """
    x = as_node(x)
    count = {None: x.rows * x.cols, 0: x.rows, 1: x.cols}[axis]
    if count - ddof == 0:
        raise ShapeError(f"var() with ddof={ddof} of one entry divides by zero")
    mean = div(Sum.make(x, axis), Const.make(count))
    if axis == 0:
        mean = mean.T                      # a row, repeated down the rows
    deviation = sub(x, mean)
    return div(Sum.make(power(deviation, 2), axis), Const.make(count - ddof))


def std(x, axis: int | None = None, ddof: int = 0) -> Node:
    """NumPy's std: the square root of ``var``."""
    return apply("sqrt", var(x, axis, ddof))


VAR = Operation(
    "var", "composites", "the variance, over all entries or along an axis",
    syntax=call("var", (1, 1), (AXIS, KEEPDIMS, DDOF)), build=var,
    excluded=_composed("sums, differences and squares"))
STD = Operation(
    "std", "composites", "the standard deviation, over all entries or along an axis",
    syntax=call("std", (1, 1), (AXIS, KEEPDIMS, DDOF)), build=std,
    excluded=_composed("sqrt of var"))

OPERATIONS: tuple[Operation, ...] = (MAXIMUM, MINIMUM, CLIP, WHERE, LEAKY_RELU, ELU, VAR, STD)
