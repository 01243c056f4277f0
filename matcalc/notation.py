"""Index notation's vocabulary: index symbols, entries, sums and opaque whole-matrix values.

Contract: the lowerings of the operations (``matcalc.ops``) and the engines that read them
(``index``, ``rules``, ``tensor``) write entries with these helpers, so an axis of size 1 is
always indexed by the literal 0 (``ZERO``), never by a symbol, and a sum over one value is no
sum at all. ``Fresh`` hands out summation indices and the opaque entries of whole-matrix
functions (inv(X)_ij) that have no finite index form.
"""

from __future__ import annotations

import sympy
from sympy import IndexedBase

from .dims import Dim, is_one

ZERO = sympy.Integer(0)


class Fresh:
    """A source of fresh summation index symbols (q0, q1, ...) and of opaque entries.

    An opaque entry stands for an entry of a whole-matrix function of the operands that has no
    finite index form or that the result should be written in (inv(X)_ij, norm(X)):
    ``opaque(label, builder)`` returns an ``IndexedBase`` and records how to
    build its node from the operands (``builder(operands)``), for turning terms back into nodes.
    """

    def __init__(self, prefix: str = "q"):
        self.prefix, self.count = prefix, 0
        self.opaque_bases: dict = {}

    def __call__(self) -> sympy.Symbol:
        s = sympy.Symbol(f"{self.prefix}{self.count}", integer=True)
        self.count += 1
        return s

    def opaque(self, label: str, builder, positive: bool = False) -> IndexedBase:
        for base in self.opaque_bases:
            if base.label.name == label:
                return base
        base = IndexedBase(label, positive=True) if positive else IndexedBase(label)
        self.opaque_bases[base] = builder
        return base


def index_for(d: Dim, symbol):
    """The index to use on an axis of size ``d``: the literal 0 when ``d`` is 1."""
    return ZERO if is_one(d) else symbol


def entry(base: IndexedBase, shape, i, j):
    """``base[i, j]``, with 0 on axes of size 1."""
    return base[index_for(shape[0], i), index_for(shape[1], j)]


def summation(body, index, size: Dim):
    """Sum of ``body`` over ``index`` in 0..size-1 (no sum at all when size is 1)."""
    if is_one(size):
        return body.xreplace({index: ZERO})
    return sympy.Sum(body, (index, 0, size - 1))
