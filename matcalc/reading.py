"""NumPy's meaning of text: how the parser combines vectors, reductions and matrices.

Contract: a text means what NumPy computes with each declared vector passed as a 1-D array, or
it is refused with an error that spells out the fix (DESIGN.md, "Conventions"). Every value is
2-D inside matcalc (a vector is an n x 1 column); ``matcalc.ops.is_vector`` tells which n x 1
values NumPy holds 1-D. The parser calls the functions below, which make NumPy's reading
explicit (a row broadcast, a transpose, a vector-matrix product) before the core builders of
``matcalc.expr`` see the operands, so the core keeps its linear-algebra meaning and the Python
API its own.

Kept from linear algebra, because NumPy's 1-D arrays cannot say them: ``v.T`` of a 1-D value
is the 1 x n row, a 1-D value times a row (``u @ v.T``) is the outer product, and a *declared*
vector (or elementwise arithmetic of declared vectors, ``matcalc.ops.fits``) meeting a matrix
whose row count is its length, and not its column count, is a column repeated across the
columns (the seed notes' ``W @ X + b``). Where a declared vector fits both ways the text is
ambiguous and refused. Any other 1-D value (a reduction along an axis, ``W @ x``) broadcasts
as NumPy's does, along the last axis, and is refused where that does not fit.
"""

from __future__ import annotations

from . import expr as E
from .dims import is_one
from .errors import ShapeError
from .ops import is_vector, reading_of
from .ops.base import Operation
from .ops.contractions import Sum
from .ops.reductions import LogSumExp


def _vector(node: E.Node) -> bool:
    return not node.is_scalar and is_vector(node)


def _length(node: E.Node) -> str:
    return str(node.rows)


def _is_reduction(node: E.Node) -> bool:
    """A reduction along an axis, or a scaled one (``mean`` is a sum over a count)."""
    while isinstance(node, (E.Mul, E.Div, E.Neg)):
        parts = [a for a in node.args if not (a.is_scalar or isinstance(a, E.Broadcast)
                                                and a.args[0].is_scalar)]
        if len(parts) != 1:
            return False
        node = parts[0]
    return isinstance(node, (Sum, LogSumExp)) and node.axis is not None


def _shape_text(node: E.Node) -> str:
    return f"{node.rows}×{node.cols}"


def _vector_meets_matrix(symbol: str, v: E.Node, m: E.Node) -> tuple[E.Node, E.Node]:
    """The 1-D ``v`` and the 2-D ``m`` (``v`` first), broadcast to one shape."""
    n, (r, c) = v.rows, m.shape
    how = reading_of(v, m.shape)
    name, length = E.describe(v), _length(v)
    if how == "ambiguous":
        if is_one(c):
            raise ShapeError(
                f"ambiguous {symbol}: the {length}-vector {name} meets the {_shape_text(m)} "
                f"column {E.describe(m)}: NumPy would repeat both into an {n}×{n} matrix; write "
                f"{name}.T for that, or declare {name} as ('{n}', 1) to combine the two columns "
                f"entry by entry")
        raise ShapeError(
            f"ambiguous {symbol}: the {length}-vector {name} fits {E.describe(m)} "
            f"({_shape_text(m)}) both as a row and as a column; write {name}.T (or declare "
            f"{name} as (1, '{n}')) to repeat it down the rows, as NumPy does, or "
            f"{name} @ ones(1, {c}) (or declare it as ('{n}', 1)) to repeat it across the "
            f"columns")
    if how == "column":
        return v, m                           # the core builders repeat a column
    if how == "row":
        return E.Transpose.make(v), m         # ... and a row (against a column: both repeat)
    if r == n and not is_one(r):
        fix = ("write keepdims=True in the reduction to keep it a column" if _is_reduction(v)
               else f"write ({name}) @ ones(1, {c}) to repeat it across the columns")
        raise ShapeError(
            f"{symbol}: the 1-D {name} (length {length}) broadcasts along the last axis of "
            f"{E.describe(m)} ({_shape_text(m)}), which has {c} entries, as NumPy does (NumPy "
            f"refuses it too); {fix}")
    raise ShapeError(
        f"{symbol}: {name} (a vector of length {length}) does not broadcast against "
        f"{E.describe(m)} ({_shape_text(m)}): its length is neither the column count {c} nor "
        f"the row count {r}")


def _kept_vector(node: E.Node) -> bool:
    inner = E.unkept(node)
    return inner is not node and _vector(inner)


def broadcast(symbol: str, a: E.Node, b: E.Node, canonical: bool = True
              ) -> tuple[E.Node, E.Node]:
    """``a`` and ``b`` as an elementwise operator ``symbol`` combines them in NumPy: a 1-D value
    read as a row is transposed to one; the core builders then broadcast 2-D operands and
    scalars as NumPy does."""
    va, vb = _vector(a), _vector(b)
    if a.is_scalar or b.is_scalar or not (va or vb):
        if canonical and not (va or vb) and is_one(a.cols) and a.shape == b.shape \
                and not a.is_scalar:
            # a 1-D value kept a column (v.T.T, keepdims=True) beside another 2-D column is v
            ka, kb = _kept_vector(a), _kept_vector(b)
            if ka != kb:
                return (E.unkept(a), b) if ka else (a, E.unkept(b))
        return a, b
    if va and vb:
        if a.rows != b.rows:
            raise ShapeError(f"{symbol}: {E.describe(a)} and {E.describe(b)} are vectors of "
                             f"different lengths ({a.rows} and {b.rows})")
        return a, b
    if va:
        return _vector_meets_matrix(symbol, a, b)
    m, v = _vector_meets_matrix(symbol, b, a)[::-1]
    return m, v


def broadcast_all(symbol: str, operands: list[E.Node]) -> list[E.Node]:
    """Several operands (``where``, ``maximum``) broadcast together, pair by pair. A column
    kept 2-D (``keepdims=True``) stays so here: unkept, it would be read again as 1-D against
    the next operand."""
    out = list(operands)
    for i in range(1, len(out)):
        for j in range(i):
            out[j], out[i] = broadcast(symbol, out[j], out[i], canonical=False)
    return out


def matmul(a: E.Node, b: E.Node) -> E.Node:
    """``a @ b`` as NumPy's matmul reads 1-D operands: ``v @ w`` the dot product, ``A @ v`` and
    ``v @ A`` vectors; a 1-D value times a row is the outer product, and a scalar is a 1 x 1
    matrix (linear algebra, as the Python API builds them)."""
    va, vb = _vector(a), _vector(b)
    if va and vb:
        if a.rows != b.rows:
            raise ShapeError(f"{E.describe(a)} @ {E.describe(b)}: vectors of different lengths "
                             f"({a.rows} and {b.rows}) have no dot product")
        return E.MatMul.make(E.Transpose.make(a), b)
    if va and not is_one(b.rows) and not b.is_scalar:
        if b.rows != a.rows:
            raise ShapeError(f"{E.describe(a)} @ {E.describe(b)}: the vector's length {a.rows} "
                             f"is not the row count {b.rows} of the {_shape_text(b)} matrix")
        return E.MatMul.make(E.Transpose.make(b), a)
    return E.MatMul.make(a, b)


def axis_of(op: Operation, x: E.Node, axis, keepdims: bool):
    """The axis (None, 0 or 1) to build ``op`` over ``x`` with, and what keepdims makes of the
    result (None: nothing; "row": its transpose; "column": kept a 2-D column)."""
    name = op.name
    if x.is_scalar:           # a 1 x 1 matrix along either axis is itself, as the API builds it
        if keepdims:
            raise ShapeError(f"{name}(): keepdims=True on a scalar makes a 1×1 array, which "
                             f"matcalc keeps as a number: leave keepdims out")
        return (axis + 2 if axis is not None and axis < 0 else axis), None
    if _vector(x):
        if axis in (1, -2):
            raise ShapeError(f"{name}(): axis {axis} is out of range for the 1-D "
                             f"{E.describe(x)} (NumPy refuses it too); a vector has axis 0 "
                             f"only")
        if keepdims:
            raise ShapeError(f"{name}(): keepdims=True on the 1-D {E.describe(x)} makes a "
                             f"one-entry array, which matcalc keeps as a number: leave "
                             f"keepdims out")
        return (None if axis is None else 0), None
    if axis is not None and axis < 0:
        axis += 2
    if keepdims:
        if axis is None:
            raise ShapeError(f"{name}(): keepdims=True without an axis makes a 1×1 array, "
                             f"which matcalc keeps as a number: leave keepdims out, or give "
                             f"axis=0 or axis=1")
        return axis, ("row" if axis == 0 else "column")
    return axis, None


def keep(node: E.Node, kept) -> E.Node:
    """A reduction's result with keepdims applied: 1 x m for axis 0, a 2-D n x 1 for axis 1."""
    if kept == "row":
        return E.Transpose.make(node)
    if kept == "column" and not node.is_scalar:
        return E.Transpose.make(E.Transpose.make(node))      # n x 1, no longer 1-D
    return node
