"""The algebra Python's operators build: ``@``, ``.T``, ``+``, ``-``, ``*``, ``/``, ``**``, ``-x``.

Contract: one stanza per operator. The node classes live in ``matcalc.expr`` (Python's operators
on nodes build them); here are their text syntax, index forms, rule kinds and Jacobian peels.
Their printing is each printer's own core (precedence and operand handling), and their
rewrites are the simplifier's core: they span operations (transposes through products, like
terms, signs), so they stay there.
"""

from __future__ import annotations

from ..expr import (Add, Div, MatMul, Mul, Neg, Node, Pow, Sub, Transpose, add, div, mul, neg,
                    ones, power, sub)
from ..notation import entry, summation
from .base import Operation, Syntax

_CORE = "the printer's own core: precedence and operands (printing.*._print_{cls})"
_NO_VALUE_NAME = "named by its place in the expression (z for an affine map, resid), not by kind"


def _examples(label: str, build) -> tuple:
    return ((label, build),)


# -- A @ B --------------------------------------------------------------------------------------

def _lower_matmul(node, bases, i, j, fresh):
    """Z_ij = sum_q A_iq B_qj."""
    (a, b), (A, B) = node.args, bases
    q = fresh()
    return summation(entry(A, a.shape, i, q) * entry(B, b.shape, q, j), q, a.cols)


def _peel_matmul(e: MatMul, ctx):
    """P (M g); a row p linear in g times a fixed column q is qᵀ pᵀ; diag(v) q = v * q."""
    p, q = e.args
    if not ctx.contains(p):
        return MatMul.make(p, ctx.lin(q))
    if not ctx.contains(q) and (p.rows == 1 or e.cols == 1 and q.cols == 1):
        return MatMul.make(Transpose.make(q), ctx.lin(ctx.simplify(Transpose.make(p))))
    if ctx.is_diagonal(p) and not ctx.contains(q):
        return ctx.lin(Mul.make(p.args[0], q))
    return None


MATMUL = Operation(
    "@", "arithmetic", "the matrix product", node=MatMul, syntax=Syntax("operator", "@"), vector="right",
    build=MatMul.make, lower=_lower_matmul, kind="bilinear", peel=_peel_matmul,
    examples=_examples("matrix product", lambda v: v.A @ v.B),
    excluded={"text": _CORE, "latex": _CORE, "numpy": _CORE, "value name": _NO_VALUE_NAME})


# -- A.T ----------------------------------------------------------------------------------------

def _lower_transpose(node, bases, i, j, fresh):
    """Z_ij = A_ji."""
    return entry(bases[0], node.args[0].shape, j, i)


def _peel_transpose(e: Transpose, ctx):
    """A scalar is its own transpose; (p q)ᵀ = qᵀ pᵀ."""
    inner = e.args[0]
    if e.is_scalar:
        return ctx.lin(inner)
    if isinstance(inner, MatMul):
        p, q = inner.args
        return ctx.lin(MatMul.make(Transpose.make(q), Transpose.make(p)))
    return None


TRANSPOSE = Operation(
    "T", "arithmetic", "the transpose", node=Transpose, syntax=Syntax("attribute", "T"),
    build=Transpose.make, lower=_lower_transpose, kind="linear", peel=_peel_transpose,
    examples=_examples("transpose", lambda v: v.A.T),
    excluded={"text": _CORE, "latex": _CORE, "numpy": _CORE, "value name": _NO_VALUE_NAME})


# -- A + B, A - B ---------------------------------------------------------------------------------

def _lower_add(node, bases, i, j, fresh):
    """Z_ij = A_ij + B_ij."""
    (a, b), (A, B) = node.args, bases
    return entry(A, a.shape, i, j) + entry(B, b.shape, i, j)


def _lower_sub(node, bases, i, j, fresh):
    """Z_ij = A_ij - B_ij."""
    (a, b), (A, B) = node.args, bases
    return entry(A, a.shape, i, j) - entry(B, b.shape, i, j)


def _peel_sum(e: Node, ctx):
    """M g + N g = (M + N) g; a term without g makes the map affine, not linear."""
    a, b = e.args
    if not (ctx.contains(a) and ctx.contains(b)):
        raise ctx.fail(f"{ctx.describe(e)} is affine, not linear, in {ctx.g.name}")
    return type(e).make(ctx.lin(a), ctx.lin(b))


ADD = Operation(
    "+", "arithmetic", "the sum", vector="operands", node=Add, syntax=Syntax("operator", "+"), build=add,
    lower=_lower_add, kind="linear", peel=_peel_sum,
    examples=_examples("sum", lambda v: Add.make(v.A, v.C)),
    excluded={"text": _CORE, "latex": _CORE, "numpy": _CORE, "value name": _NO_VALUE_NAME})

SUB = Operation(
    "-", "arithmetic", "the difference", vector="operands", node=Sub, syntax=Syntax("operator", "-"), build=sub,
    lower=_lower_sub, kind="linear", peel=_peel_sum,
    examples=_examples("difference", lambda v: Sub.make(v.A, v.C)),
    excluded={"text": _CORE, "latex": _CORE, "numpy": _CORE, "value name": _NO_VALUE_NAME})


# -- -A -------------------------------------------------------------------------------------------

def _lower_neg(node, bases, i, j, fresh):
    """Z_ij = -A_ij."""
    return -entry(bases[0], node.args[0].shape, i, j)


def _peel_neg(e: Neg, ctx):
    return Neg.make(ctx.lin(e.args[0]))


NEG = Operation(
    "neg", "arithmetic", "the negation", vector="operands", node=Neg, syntax=Syntax("prefix", "-"), build=neg,
    lower=_lower_neg, kind="linear", peel=_peel_neg,
    examples=_examples("negation", lambda v: Neg.make(v.A)),
    excluded={"text": _CORE, "latex": _CORE, "numpy": _CORE, "value name": _NO_VALUE_NAME})


# -- A * B, A / B ---------------------------------------------------------------------------------

def _lower_mul(node, bases, i, j, fresh):
    """Z_ij = A_ij B_ij."""
    (a, b), (A, B) = node.args, bases
    return entry(A, a.shape, i, j) * entry(B, b.shape, i, j)


def _lower_div(node, bases, i, j, fresh):
    """Z_ij = A_ij / B_ij."""
    (a, b), (A, B) = node.args, bases
    return entry(A, a.shape, i, j) / entry(B, b.shape, i, j)


def _peel_mul(e: Mul, ctx):
    """v * (M g) = diag(v) M g for a fixed column v."""
    a, b = e.args
    if ctx.contains(a) and ctx.contains(b):
        raise ctx.fail(f"{ctx.describe(e)} is quadratic in {ctx.g.name}")
    fixed, varying = (a, b) if ctx.contains(b) else (b, a)
    return ctx.scale_rows(fixed, ctx.lin(varying))


def _peel_div(e: Div, ctx):
    """(M g) / v = diag(1 / v) M g for a fixed column v."""
    a, b = e.args
    if ctx.contains(b):
        raise ctx.fail(f"{ctx.describe(e)} is not linear in {ctx.g.name}")
    return ctx.scale_rows(Div.make(ones(*b.shape), b), ctx.lin(a))


MUL = Operation(
    "*", "arithmetic", "the elementwise (Hadamard) product", vector="operands", node=Mul,
    syntax=Syntax("operator", "*"), build=mul, lower=_lower_mul, kind="bilinear",
    peel=_peel_mul, examples=_examples("elementwise product", lambda v: Mul.make(v.A, v.C)),
    excluded={"text": _CORE, "latex": _CORE, "numpy": _CORE, "value name": _NO_VALUE_NAME})

DIV = Operation(
    "/", "arithmetic", "the elementwise quotient", vector="operands", node=Div, syntax=Syntax("operator", "/"),
    build=div, lower=_lower_div, kind="elementwise", peel=_peel_div,
    examples=_examples("elementwise quotient", lambda v: Div.make(v.A, v.C)),
    excluded={"text": _CORE, "latex": _CORE, "numpy": _CORE, "value name": _NO_VALUE_NAME})


# -- A ** p ---------------------------------------------------------------------------------------

def _lower_pow(node, bases, i, j, fresh):
    """Z_ij = A_ij ** p."""
    return entry(bases[0], node.args[0].shape, i, j) ** node.exponent


POW = Operation(
    "**", "arithmetic", "the elementwise power with a numeric exponent", vector="operands", node=Pow,
    syntax=Syntax("operator", "**"), build=power, lower=_lower_pow, kind="elementwise",
    examples=_examples("elementwise power", lambda v: v.A ** 3),
    excluded={"text": _CORE, "latex": _CORE, "numpy": _CORE, "value name": _NO_VALUE_NAME})

OPERATIONS: tuple[Operation, ...] = (MATMUL, TRANSPOSE, ADD, SUB, NEG, MUL, DIV, POW)
