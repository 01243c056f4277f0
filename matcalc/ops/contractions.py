"""Linear contractions: ``sum`` (of all entries or along an axis), ``mean``, ``trace``, ``einsum``.

Contract: one stanza per operation, each with its node class, shape rule, index form, rule
kind, spellings and rewrites. Their rules are derived: a sum's gradient repeats G along the
summed axis, a trace's is G times the identity, an einsum's is the einsum of G with the other
operands.
"""

from __future__ import annotations

from typing import Sequence

from ..dims import ONE, Dim, format_shape, is_one
from ..errors import ShapeError, UnsupportedError
from ..expr import (Add, Broadcast, Const, Div, Eye, MatMul, Mul, Neg, Node, Sub, Transpose, Var,
                    as_node, constant_value, describe, div, is_zero, ones, scalar_factor, zeros)
from ..expr import mul as scaled
from ..expr import unkept
from ..notation import entry, summation
from .base import AXIS, KEEPDIMS, POSTFIX, Operation, call

_GENERIC = "an intermediate like any other, named t where it is shared"

# ---------------------------------------------------------------------------------------------
# sum
# ---------------------------------------------------------------------------------------------


class Sum(Node):
    """Sum of all entries (axis None, a scalar), down the rows (axis 0) or along rows (axis 1).

    Following NumPy, both axis sums are vectors (columns): ``sum(X, axis=0)`` of an n x m matrix
    has m entries (one per column of X), ``sum(X, axis=1)`` has n (one per row).
    """

    __slots__ = ()

    @classmethod
    def make(cls, a: Node, axis: int | None = None) -> "Sum":
        a = unkept(as_node(a))       # x.T.T of a column x: x (text's way to keep x 2-D)
        if axis is None:
            shape = (ONE, ONE)
        elif axis == 0:
            shape = (a.cols, ONE)
        elif axis == 1:
            shape = (a.rows, ONE)
        else:
            raise UnsupportedError(f"sum over axis {axis!r}: the axis must be 0, 1 or None")
        return cls._intern((a,), (axis,), shape)

    @property
    def axis(self) -> int | None:
        return self.params[0]

    def remake(self, args, dim_map):
        return Sum.make(args[0], self.axis)


def _lower_sum(node, bases, i, j, fresh):
    """Z = sum_pq A_pq; Z_j = sum_p A_pj (axis 0); Z_i = sum_q A_iq (axis 1)."""
    a, A = node.args[0], bases[0]
    p, q = fresh(), fresh()
    if node.axis is None:
        return summation(summation(entry(A, a.shape, p, q), p, a.rows), q, a.cols)
    if node.axis == 0:
        return summation(entry(A, a.shape, p, i), p, a.rows)
    return summation(entry(A, a.shape, i, q), q, a.cols)


def _peel_sum(e: Sum, ctx):
    """The sum of a column linear in g is onesᵀ M g."""
    inner = e.args[0]
    if e.is_scalar and inner.cols == 1:
        return MatMul.make(Transpose.make(ones(inner.rows, 1)), ctx.lin(inner))
    return None


def sum_rules(node: Sum):
    """Scalars and signs out of sums; sums of zeros, ones and scalars; a probability vector
    (each column of a ``probability`` matrix, each row of a ``probability_rows`` one) sums to
    one; a matrix centred along the summed axis (times what is constant along it) sums to zero,
    and is dropped from a sum of terms. Decreases: nodes under sums."""
    a = node.args[0]
    if is_zero(a):
        return zeros(*node.shape)
    if a.is_scalar:                      # the sum of one entry, along any axis, is that entry
        return a
    if node.axis is None and isinstance(a, Sum):      # sum(sum(X, axis=k)) = sum(X)
        return Sum.make(a.args[0])
    if node.axis is None and isinstance(a, Broadcast) and a.args[0].is_scalar:
        return scaled(a.args[0], Const.make(a.params[0] * a.params[1]))
    if isinstance(a, Neg):
        return Neg.make(Sum.make(a.args[0], node.axis))
    sf = scalar_factor(a)
    if sf is not None:
        return scaled(sf[0], Sum.make(sf[1], node.axis))
    if isinstance(a, Var) and a.domain == "probability":
        # the entries of a probability vector (the columns of such a matrix) sum to one
        if node.axis is None and a.cols == 1:
            return Const.make(1)
        if node.axis == 0:
            return ones(*node.shape)
    if isinstance(a, Var) and a.domain == "probability_rows":
        # ... and so do the entries of each row of a matrix declared probability_rows
        if node.axis is None and a.rows == 1:
            return Const.make(1)
        if node.axis == 1:
            return ones(*node.shape)
    if isinstance(a, (Add, Sub, Mul, Div, Neg, Transpose)) and _sums_to_zero(a, node.axis):
        return zeros(*node.shape)        # sum(X - mean(X, axis=0), axis=0) = 0
    if isinstance(a, (Add, Sub)):
        # a centred part (X - mean(X, axis=k), times what is constant along k) sums to zero
        first, second = a.args
        if _sums_to_zero(second, node.axis):
            return Sum.make(first, node.axis)
        if _sums_to_zero(first, node.axis):
            total = Sum.make(second, node.axis)
            return total if isinstance(a, Add) else Neg.make(total)
    if node.axis is None and isinstance(a, (Add, Sub)) and \
            all(_sums_to_constant(t) for t in a.args):
        # sum(0.9 y + 0.1/n) = 0.9 + 0.1 = 1: split only where every part becomes a number
        return type(a).make(Sum.make(a.args[0]), Sum.make(a.args[1]))
    return None


def pull_constant_factors(node: Sum) -> Node | None:
    """sum(A * r.T, axis=0) = sum(A, axis=0) * r, and sum(A / c, axis=1) = sum(A, axis=1) / c:
    the factors and divisors of a product that are the same down the summed axis (a row
    repeated down the rows for axis 0, a column across for axis 1) come out of the sum, as the
    vectors they repeat. None when there is none, or nothing would stay inside but divisors.
    (For generated code, where the sum inside is then shared: batch norm's sum(G * Xc) serves
    dgamma and dX; printed forms keep the factors where the book writes them.)"""
    axis = node.axis
    if axis is None or node.args[0].is_scalar:
        return None
    factors: list[tuple[Node, int]] = []

    def collect(n: Node, power: int) -> None:
        if isinstance(n, Mul) and scalar_factor(n) is None:
            collect(n.args[0], power)
            collect(n.args[1], power)
        elif isinstance(n, Div):
            collect(n.args[0], power)
            collect(n.args[1], -power)
        else:
            factors.append((n, power))
    collect(node.args[0], 1)

    def repeated(n: Node) -> bool:      # a row or column repeated (a repeated scalar stays)
        return isinstance(n, Broadcast) and not n.args[0].is_scalar and _constant_along(n, axis)
    out = [(f, p) for f, p in factors if repeated(f)]
    kept = [(f, p) for f, p in factors if not repeated(f)]
    if not out or not any(p > 0 for _, p in kept):
        return None

    def product(items) -> tuple[Node | None, Node | None]:
        top = bottom = None
        for f, p in items:
            if p > 0:
                top = f if top is None else Mul.make(top, f)
            else:
                bottom = f if bottom is None else Mul.make(bottom, f)
        return top, bottom
    top, bottom = product(kept)
    inside = top if bottom is None else Div.make(top, bottom)
    def column(row: Node) -> Node:      # (gamma for gamma.T: no gamma.T.T)
        return row.args[0] if isinstance(row, Transpose) else Transpose.make(row)
    vector = [(column(f.args[0]) if axis == 0 else f.args[0], p) for f, p in out]
    up, down = product(vector)
    total = Sum.make(inside, axis)
    if up is not None:
        total = Mul.make(total, up)
    return total if down is None else Div.make(total, down)


def _effective_axis(node: Node, axis: int | None) -> int | None:
    """None for an axis whose sum covers every entry (a column's axis 0,
    a row's axis 1), else ``axis``."""
    if axis == 0 and node.cols == 1 or axis == 1 and node.rows == 1:
        return None
    return axis


def _constant_along(node: Node, axis: int | None) -> bool:
    """Whether every line of ``node`` along ``axis`` holds one value (a row repeated down the
    rows for axis 0, a column repeated across for axis 1, a repeated scalar for None)."""
    if isinstance(node, Broadcast):
        inner = node.args[0]
        return inner.is_scalar or axis == 0 and is_one(inner.rows) or \
            axis == 1 and is_one(inner.cols)
    if isinstance(node, Neg):
        return _constant_along(node.args[0], axis)
    if isinstance(node, (Add, Sub, Mul, Div)):
        return all(_constant_along(t, axis) for t in node.args)
    return False


def _mean_of(node: Node):
    """(Y, axis) when ``node`` is Y's mean along ``axis`` (None: of all entries) repeated to
    Y's shape, in any of the ways the parser and the rules write it; else None."""
    coefficient, parts = 1, [node]
    total, transposed = None, False
    while parts:
        part = parts.pop()
        sf = scalar_factor(part)
        if sf is not None and isinstance(sf[0], Const):
            coefficient *= sf[0].value
            parts.append(sf[1])
        elif isinstance(part, Div) and constant_value(part.args[1]) is not None:
            coefficient /= constant_value(part.args[1])
            parts.append(part.args[0])
        elif isinstance(part, Broadcast) and total is None:
            parts.append(part.args[0])
            total = part
        elif isinstance(part, Transpose) and isinstance(part.args[0], Sum):
            parts.append(part.args[0])
            transposed = True
        elif isinstance(part, Sum) and total is not None:
            y, axis = part.args[0], _effective_axis(part.args[0], part.axis)
            size = {None: y.rows * y.cols, 0: y.rows, 1: y.cols}[axis]
            # a column sum is repeated down the rows as a row, a row sum across as a column
            oriented = axis is None or transposed == (axis == 0)
            if oriented and total.shape == y.shape and coefficient * size == 1:
                return y, axis
            return None
        else:
            return None
    return None


def _sums_to_zero(node: Node, axis: int | None) -> bool:
    """Whether ``node``'s sum along ``axis`` (None: of all entries) is known to be zero: a
    centred matrix (Y minus Y's mean along that axis, or along any for the sum of all), times
    or divided by what is constant along the axis, negations, transposes and sums of those."""
    axis = _effective_axis(node, axis)
    while True:
        if isinstance(node, Neg):
            node = node.args[0]
        elif isinstance(node, Mul) and _constant_along(node.args[0], axis):
            node = node.args[1]
        elif isinstance(node, (Mul, Div)) and _constant_along(node.args[1], axis):
            node = node.args[0]
        elif isinstance(node, Transpose):
            node = node.args[0]
            axis = None if axis is None else 1 - axis
        else:
            break
    if is_zero(node):
        return True
    if isinstance(node, Sub):
        mean = _mean_of(node.args[1])
        if mean is not None and mean[0] is node.args[0] and (axis is None or mean[1] == axis):
            return True
    if isinstance(node, (Add, Sub)):
        return all(_sums_to_zero(t, axis) for t in node.args)
    return False


def _sums_to_constant(node: Node) -> bool:
    """Whether the sum of all of ``node``'s entries is known to be a constant: a repeated scalar
    constant, a probability vector, scalar multiples, negations and sums of those."""
    while True:
        sf = scalar_factor(node)
        if sf is not None and isinstance(sf[0], Const):
            node = sf[1]
        elif isinstance(node, Neg):
            node = node.args[0]
        else:
            break
    if isinstance(node, (Add, Sub)):
        return all(_sums_to_constant(t) for t in node.args)
    if isinstance(node, Broadcast):
        return isinstance(node.args[0], Const)
    return isinstance(node, Var) and (node.domain == "probability" and node.cols == 1 or
                                      node.domain == "probability_rows" and node.rows == 1)


def _latex_sum(p, node, args):
    """sum(X) = 1ᵀ X 1, row sums X 1, column sums Xᵀ 1."""
    a = args[0]
    inner = a.node
    # an elementwise product or quotient is bracketed: (A ⊙ B) 1, not A ⊙ B 1 (A ⊙ (B 1))
    elementwise = isinstance(inner, (Mul, Div)) and scalar_factor(inner) is None
    body = p.wrap(a, p.MUL + (1 if elementwise else 0)) if not isinstance(inner, MatMul) \
        else a.text
    if node.axis is None:
        if inner.cols == 1:
            return rf"\mathbf{{1}}^{{\top}} {body}", p.MUL
        if inner.rows == 1:
            return rf"{body} \mathbf{{1}}", p.MUL
        return rf"\mathbf{{1}}^{{\top}} {body} \mathbf{{1}}", p.MUL
    if node.axis == 1:
        return rf"{body} \mathbf{{1}}", p.MUL
    return rf"{p.wrap(a, p.ATOM)}^{{\top}} \mathbf{{1}}", p.MUL


def _numpy_sum(p, node, args):
    """Kept 2-D (keepdims): a column sum is the row NumPy gives, transposed to a column."""
    a = p.array(args[0])
    if node.axis is None:
        return f"{p.np}.sum({a}, {p.all_axes()}keepdims=True)", POSTFIX
    if node.axis == 0:
        row = f"{p.np}.sum({a}, axis=0, keepdims=True)"
        p.untransposed[id(node)] = (row, POSTFIX)
        return f"{row}.T", POSTFIX
    return f"{p.np}.sum({a}, axis=1, keepdims=True)", POSTFIX


def _sum(x, axis: int | None = None) -> Node:
    """Sum of all entries (a scalar), or along an axis (axis=0: one entry per column)."""
    return Sum.make(as_node(x), axis)


SUM = Operation(
    "sum", "contractions", "the sum of all entries, or along an axis", node=Sum, vector="always",
    syntax=call("sum", (1, 1), (AXIS, KEEPDIMS)), build=_sum, lower=_lower_sum, kind="linear",
    peel=_peel_sum, latex=_latex_sum, numpy=_numpy_sum, rewrites=(sum_rules,),
    examples=(("sum of all entries", lambda v: Sum.make(v.A)),
              ("column sums", lambda v: Sum.make(v.A, 0)),
              ("row sums", lambda v: Sum.make(v.A, 1))),
    excluded={"value name": _GENERIC})


def _mean(x, axis: int | None = None) -> Node:
    """Mean of all entries, or along an axis: the sum divided by the number of terms."""
    x = as_node(x)
    if axis not in (None, 0, 1):
        raise UnsupportedError(f"mean over axis {axis!r}: the axis must be 0, 1 or None")
    count = {None: x.rows * x.cols, 0: x.rows, 1: x.cols}[axis]
    total = Sum.make(x, axis)
    return total if count == 1 else div(total, Const.make(count))


_BUILT_FROM_SUM = "built from sum and a division, which carry every other concern"
MEAN = Operation(
    "mean", "contractions", "the mean of all entries, or along an axis",
    syntax=call("mean", (1, 1), (AXIS, KEEPDIMS)), build=_mean,
    excluded={concern: _BUILT_FROM_SUM for concern in
              ("node", "index form", "rule kind", "text", "latex", "numpy", "value name",
               "docs example")})


# ---------------------------------------------------------------------------------------------
# trace
# ---------------------------------------------------------------------------------------------

class Trace(Node):
    """Trace of a square matrix: the sum of its diagonal."""

    __slots__ = ()

    @classmethod
    def make(cls, a: Node) -> "Trace":
        a = as_node(a)
        if a.rows != a.cols:
            raise ShapeError(f"trace needs a square matrix, but {describe(a)} is "
                             f"{format_shape(a.shape)}")
        return cls._intern((a,), (), (ONE, ONE))

    def remake(self, args, dim_map):
        return Trace.make(args[0])


def _lower_trace(node, bases, i, j, fresh):
    """tr(A) = sum_p A_pp."""
    a, A = node.args[0], bases[0]
    p = fresh()
    return summation(entry(A, a.shape, p, p), p, a.rows)


def trace_rules(node: Trace):
    """Traces of scalars, identities, transposes; scalars and signs out. Decreases: nodes."""
    a = node.args[0]
    if a.is_scalar:
        return a
    if isinstance(a, Eye):
        return Const.make(a.params[0])
    if is_zero(a):
        return Const.make(0)
    if isinstance(a, Transpose):
        return Trace.make(a.args[0])
    if isinstance(a, Neg):
        return Neg.make(Trace.make(a.args[0]))
    sf = scalar_factor(a)
    if sf is not None:
        return scaled(sf[0], Trace.make(sf[1]))
    return None


def _trace(x) -> Node:
    """Trace of a square matrix."""
    return Trace.make(as_node(x))


TRACE = Operation(
    "trace", "contractions", "the trace of a square matrix", node=Trace,
    syntax=call("trace"), build=_trace, lower=_lower_trace, kind="linear",
    latex=r"\operatorname{tr}", rewrites=(trace_rules,),
    examples=(("trace", lambda v: Trace.make(v.S)),),
    excluded={"numpy": "trace(A @ B) is written sum(A * B.T): the printer's own fusion with "
                       "the product (printing.numpy._print_Trace)",
              "value name": _GENERIC})


# ---------------------------------------------------------------------------------------------
# einsum
# ---------------------------------------------------------------------------------------------

class Einsum(Node):
    """A contraction with no matrix form, kept explicit: einsum("ij,jk->ik", A, B).

    Each operand has two subscript letters (its rows and columns); the output has two letters, or
    fewer for a vector (one letter, its rows) or a scalar (none).
    """

    __slots__ = ()

    @classmethod
    def make(cls, subscripts: Sequence[str], output: str, operands: Sequence[Node]) -> "Einsum":
        operands = tuple(as_node(o) for o in operands)
        subscripts = tuple(subscripts)
        if len(subscripts) != len(operands) or any(len(x) != 2 for x in subscripts):
            raise UnsupportedError("einsum needs two subscripts for each operand")
        sizes: dict[str, Dim] = {}
        for sub_, op in zip(subscripts, operands):
            for letter, d in zip(sub_, op.shape):
                if sizes.setdefault(letter, d) != d:
                    raise ShapeError(f"einsum subscript {letter!r} has sizes {sizes[letter]} and {d}")
        if len(output) > 2 or any(c not in sizes for c in output):
            raise UnsupportedError(f"bad einsum output {output!r}")
        shape = tuple(sizes[c] for c in output) + (ONE,) * (2 - len(output))
        return cls._intern(operands, (subscripts, output), shape)

    def remake(self, args, dim_map):
        return Einsum.make(self.params[0], self.params[1], args)

    @property
    def spec(self) -> str:
        return ",".join(self.params[0]) + "->" + self.params[1]


def _lower_einsum(node, bases, i, j, fresh):
    """Z_[out] = sum over the letters not in the output of the product of the operands."""
    subscripts, output = node.params
    letters: dict[str, object] = {}
    out_idx = [i, j]
    for pos, c in enumerate(output):
        letters[c] = out_idx[pos]
    sizes: dict[str, Dim] = {}
    body = 1
    for sub_, op, base in zip(subscripts, node.args, bases):
        for c, d in zip(sub_, op.shape):
            sizes[c] = d
            if c not in letters:
                letters[c] = fresh()
        body = body * entry(base, op.shape, letters[sub_[0]], letters[sub_[1]])
    for c, s in letters.items():
        if c not in output:
            body = summation(body, s, sizes[c])
    return body


def _text_einsum(p, node, args):
    return f'einsum("{node.spec}", {", ".join(a.text for a in args)})', POSTFIX


def _latex_einsum(p, node, args):
    """[sum_letters A_ij B_jk]_ik."""
    subscripts, output = node.params
    summed = sorted({c for s in subscripts for c in s} - set(output))
    factors = " ".join(f"{p.wrap(a, p.ATOM)}_{{{s}}}" for a, s in zip(args, subscripts))
    total = rf"\sum_{{{','.join(summed)}}} {factors}" if summed else factors
    return (rf"\left[{total}\right]_{{{output}}}" if output else total), p.ATOM


_PORTABLE_EINSUM = """def {name}(xp, subscripts, *operands):
    \"\"\"einsum, in the cheapest order (NumPy's optimize=True; torch orders by itself).\"\"\"
    if xp is {numpy}:
        return {numpy}.einsum(subscripts, *operands, optimize=True)
    return xp.einsum(subscripts, *operands)
"""


def _numpy_einsum(p, node, args):
    operands = ", ".join(p.array(a) for a in args)
    if p.portable:
        text = p.call("einsum", _PORTABLE_EINSUM, f'"{node.spec}"', operands)
    else:
        text = f'{p.np}.einsum("{node.spec}", {operands}, optimize=True)'
    if len(node.params[1]) < 2:
        text = p.reshape(text, "(-1, 1)" if node.params[1] else "(1, 1)")
    return text, POSTFIX


def _einsum(subscripts: str, *operands) -> Node:
    """An explicit contraction: ``einsum("ij,jk->ik", A, B)`` (two letters per operand)."""
    inputs, output = subscripts.split("->")
    return Einsum.make(tuple(inputs.split(",")), output, operands)


EINSUM = Operation(
    "einsum", "contractions", "an explicit contraction, two subscript letters per operand",
    vector="always", node=Einsum, syntax=call("einsum", (1, 64), arguments="einsum"), build=_einsum,
    lower=_lower_einsum, kind="multilinear", text=_text_einsum, latex=_latex_einsum,
    numpy=_numpy_einsum,
    examples=(("einsum", lambda v: Einsum.make(("ij", "ik"), "jk", [v.A, v.C])),),
    excluded={"value name": _GENERIC})

OPERATIONS: tuple[Operation, ...] = (SUM, MEAN, TRACE, EINSUM)
