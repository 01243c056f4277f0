"""The operation registry: one stanza per operation, and the views every engine reads.

Contract: ``OPERATIONS`` holds every operation matcalc knows, in declaration order (the order
docs/rules.md lists them), each an immutable ``base.Operation``, grouped by family in the
modules of this package:

- ``arithmetic``: what Python's operators build (``@ .T + - * / ** -x``);
- ``elementwise``: the table of elementwise functions (one row each);
- ``broadcasting``: repeats of a scalar, column or row; ``ones``, ``zeros``;
- ``contractions``: ``sum``, ``mean``, ``trace``, ``einsum``;
- ``linalg``: ``det``, ``logdet``, ``inv``, ``diag``, ``eye``;
- ``reductions``: ``norm``, ``norm1``, ``softmax``, ``logsumexp``;
- ``extremes``: ``max``, ``min`` and the weights their derivatives are;
- ``composites``: operations written with the others (``maximum``, ``where``, ``var``, ...).

The views below are built once, at import, and are read-only: the parser's function and
operator tables, the reserved names, the operation of a node (``operation_of``), the public API's
builders. Engines look operations up here and never keep tables of their own.
"""

from __future__ import annotations

import keyword
import weakref
from types import MappingProxyType

import sympy

from ..dims import is_one
from ..errors import MatcalcError
from ..expr import Apply, Node, Var, check_variable_name
from . import (arithmetic, broadcasting, composites, contractions, elementwise, extremes, linalg,
               reductions)
from .base import CONCERNS, RULE_KINDS, Function, Operation, Syntax

OPERATIONS: tuple[Operation, ...] = (arithmetic.OPERATIONS + elementwise.OPERATIONS +
                                     broadcasting.OPERATIONS + contractions.OPERATIONS +
                                     linalg.OPERATIONS + reductions.OPERATIONS +
                                     extremes.OPERATIONS + composites.OPERATIONS)

BY_NAME = MappingProxyType({op.name: op for op in OPERATIONS})
#: The elementwise functions by name (all on the ``Apply`` node).
FUNCTIONS = elementwise.FUNCTIONS
#: The operation of each node class (every class but ``Apply``, whose rows share it).
BY_NODE = MappingProxyType({op.node: op for op in OPERATIONS
                            if op.node is not None and op.node is not Apply})
#: What text may call, by name, in declaration order.
CALLS = MappingProxyType({op.name: op for op in OPERATIONS
                          if op.syntax is not None and op.syntax.form == "call"})
#: The binary operators of text, by symbol.
OPERATORS = MappingProxyType({op.syntax.spelling: op for op in OPERATIONS
                              if op.syntax is not None and op.syntax.form == "operator"})
#: The keyword arguments any call takes (``axis``).
KEYWORDS = frozenset(k.name for op in CALLS.values() for k in op.syntax.keywords)
#: The numbers text names: ``pi``.
NAMED_CONSTANTS = MappingProxyType({"pi": sympy.pi})
#: Names a variable or dimension may not take, because the syntax gives them another meaning.
RESERVED_NAMES = frozenset(CALLS) | KEYWORDS | {"T"} | frozenset(NAMED_CONSTANTS)
#: The builders the Python API exports (``mc.softmax``, ``mc.trace``, ...), by name.
BUILDERS = MappingProxyType({op.name: op.build for op in CALLS.values()})
#: SymPy function class -> matcalc name, for turning derived scalar derivatives back into nodes.
SYMPY_TO_NAME = elementwise.SYMPY_TO_NAME


def _check_registry() -> None:
    if len(BY_NAME) != len(OPERATIONS):
        raise AssertionError("two operations share a name")
    nodes = [op.node for op in OPERATIONS if op.node is not None and op.node is not Apply]
    if len(set(nodes)) != len(nodes):
        raise AssertionError("two operations share a node class")
    for op in OPERATIONS:
        if op.kind is not None and op.kind not in RULE_KINDS:
            raise AssertionError(f"{op.name}: unknown rule kind {op.kind!r}")
        unknown = set(op.excluded) - set(CONCERNS) - {"syntax", "build"}
        if unknown:
            raise AssertionError(f"{op.name}: exclusions of unknown concerns {sorted(unknown)}")


_check_registry()


def operation_of(node: Node) -> Operation | None:
    """The operation that built ``node``; None for a variable or a constant.

    >>> from matcalc.expr import Var
    >>> X = Var.make("X", ("n", "n"))
    >>> operation_of(linalg.Det.make(X)).name, operation_of(elementwise.apply("exp", X)).name
    ('det', 'exp')
    """
    if isinstance(node, Apply):
        return elementwise.function_op(node.name)
    return BY_NODE.get(type(node))


_VECTOR: "weakref.WeakKeyDictionary[Node, bool]" = weakref.WeakKeyDictionary()
_FITS: "weakref.WeakKeyDictionary[Node, bool]" = weakref.WeakKeyDictionary()


def is_vector(node: Node) -> bool:
    """Whether text's reading holds ``node`` as NumPy's 1-D array (an n x 1 value that is not
    a 2-D column): a declared vector, a reduction along an axis, ``A @ v`` and ``v @ A`` of a
    1-D ``v``, an elementwise operation of 1-D values, ``diag(A)``. A declared ("n", 1) column,
    a reduction with ``keepdims=True`` and the transpose of a row are 2-D. Each stanza's
    ``vector`` field says which of its values are 1-D.

    >>> from matcalc.expr import Var
    >>> from matcalc.expr import Transpose
    >>> from matcalc.ops.contractions import Sum
    >>> b, X = Var.make("b", ("n", 1), "vector"), Var.make("X", ("n", "m"))
    >>> is_vector(b + b), is_vector(Sum.make(X, 1)), is_vector(X.T @ b), is_vector(Transpose.make(Sum.make(X, 1).T))
    (True, True, True, False)
    """
    return _reading(node, _VECTOR, _vector_rule)


def fits(node: Node) -> bool:
    """Whether ``node`` is a declared vector, or elementwise arithmetic of declared vectors and
    scalars: what text reads along the one axis it fits against a matrix (the seed notes'
    ``W @ X + b``), where any other 1-D value broadcasts as NumPy's, along the last axis."""
    return _reading(node, _FITS, _fits_rule)


def reading_of(v: Node, shape) -> str:
    """How text reads the 1-D ``v`` (``is_vector``) beside a 2-D operand of ``shape``:
    "row" (NumPy's: along the last axis), "column" (a declared vector where only the row count
    fits, the seed notes' ``W @ X + b``), "ambiguous" (a declared vector that fits both ways)
    or "none" (it fits neither way). ``matcalc.reading`` builds by it; the text printer
    writes by it."""
    n, (r, c) = v.rows, shape
    as_row = c == n or is_one(c)
    as_column = r == n and not is_one(r) and fits(v)
    if as_row and as_column:
        return "ambiguous"
    return "row" if as_row else "column" if as_column else "none"


def _reading(node: Node, memo, rule) -> bool:
    """``rule`` of ``node``, its operands' first: each node's once (``memo``), so building text
    left to right costs one step per node."""
    if node in memo:
        return memo[node]
    stack = [(node, False)]
    while stack:
        n, ready = stack.pop()
        if n in memo:
            continue
        if ready:
            memo[n] = rule(n, memo)
            continue
        stack.append((n, True))
        stack.extend((a, False) for a in n.args if a not in memo)
    return memo[node]


def _vector_rule(node: Node, memo) -> bool:
    kind = _column_kind(node)
    if kind is not None:
        return kind
    op = operation_of(node)
    how = op.vector if op is not None else None
    if how == "always":
        return True
    if how == "operands":
        return all(memo[a] for a in node.args if not a.is_scalar)
    if how == "right":
        left, right = node.args
        return memo[right] or (right.is_scalar and memo[left])
    return False


def _fits_rule(node: Node, memo) -> bool:
    kind = _column_kind(node)
    if kind is not None:
        return kind
    op = operation_of(node)
    if op is None or op.vector != "operands" or op.node is None:
        return False
    operands = [a for a in node.args if not a.is_scalar]
    return bool(operands) and all(memo[a] for a in operands)


def _column_kind(node: Node) -> bool | None:
    """What both readings say before looking at the operation: False for anything not n x 1,
    a variable's declared kind; None where the operation decides."""
    if not (node.cols == 1 and not node.is_scalar):
        return False
    if isinstance(node, Var):
        return node.kind == "vector"
    return None


def check_name(name: str) -> None:
    """Raise unless ``name`` can name a variable: an identifier that is not a Python keyword
    and that the syntax does not reserve (``sum``, ``exp``, ``T``, ``axis``)."""
    check_variable_name(name)
    if name in RESERVED_NAMES or keyword.iskeyword(name):
        raise MatcalcError(f"{name!r} is reserved in matcalc syntax; choose another name")


__all__ = ["OPERATIONS", "BY_NAME", "BY_NODE", "FUNCTIONS", "CALLS", "OPERATORS", "KEYWORDS",
           "RESERVED_NAMES", "BUILDERS", "SYMPY_TO_NAME", "CONCERNS", "RULE_KINDS", "Function",
           "Operation", "Syntax", "operation_of", "check_name", "is_vector", "fits",
           "reading_of"]
