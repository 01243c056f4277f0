"""Broadcasting: a scalar, a column or a row repeated to a matrix; ``ones`` and ``zeros``.

Contract: the ``Broadcast`` node (in ``matcalc.expr``: the elementwise operators insert it)
repeats a scalar, an n x 1 column across columns or a 1 x m row across rows. Its gradient is the
sum over the repeats, derived like every other rule. ``ones(n, m)`` and ``zeros(n, m)`` are the
constants 1 and 0 broadcast, so they print, simplify and generate code as broadcasts do.
"""

from __future__ import annotations

from ..expr import Broadcast, MatMul, ones, zeros
from ..notation import entry
from .base import Operation, call

_CORE = "the printer's own core: a bare operand of an elementwise operator, or x * ones(n, m)"


def _lower_broadcast(node, bases, i, j, fresh):
    """Z_ij = a_i (column), a_j (row) or a (scalar): ``entry`` puts 0 on a's axes of size 1."""
    return entry(bases[0], node.args[0].shape, i, j)


def _peel_broadcast(e: Broadcast, ctx):
    """A scalar repeated down a column is ones @ it."""
    inner = e.args[0]
    if (e.cols == 1 or e.is_scalar) and inner.is_scalar:
        return MatMul.make(ones(e.rows, 1), ctx.lin(inner))
    return None


BROADCAST = Operation(
    "broadcast", "broadcasting", "a scalar, column or row repeated to a matrix",
    vector="operands", node=Broadcast, lower=_lower_broadcast, kind="linear", peel=_peel_broadcast,
    examples=(("column broadcast", lambda v: Broadcast.make(v.x, "n", "p")),
              ("row broadcast", lambda v: Broadcast.make(v.r, "n", "p")),
              ("scalar broadcast", lambda v: Broadcast.make(v.a, "n", "p"))),
    excluded={"syntax": "written by NumPy's broadcasting of + - * /, never by name",
              "build": "the elementwise operators insert it",
              "text": _CORE, "latex": _CORE, "numpy": _CORE,
              "value name": "a view of its operand, never named"})


def _ones(rows, cols=1):
    """All-ones matrix (vector when cols is 1)."""
    return ones(rows, cols)


def _zeros(rows, cols=1):
    """All-zeros matrix (vector when cols is 1)."""
    return zeros(rows, cols)


_CONSTANT = {"node": "the constant broadcast (a Broadcast node)",
             "index form": "a constant: it has no operand to differentiate",
             "rule kind": "a constant: it has no operand to differentiate",
             "text": "prints as the broadcast it is", "latex": "prints as the broadcast it is",
             "numpy": "prints as the broadcast it is", "value name": "a constant, never named",
             "docs example": "a constant: no derivative rule to show"}

ONES = Operation(
    "ones", "broadcasting", "the all-ones matrix (a vector with one size)",
    syntax=call("ones", (1, 2), arguments="sizes"), build=_ones, excluded=_CONSTANT)

ZEROS = Operation(
    "zeros", "broadcasting", "the zero matrix (a vector with one size)",
    syntax=call("zeros", (1, 2), arguments="sizes"), build=_zeros, excluded=_CONSTANT)

OPERATIONS: tuple[Operation, ...] = (BROADCAST, ONES, ZEROS)
