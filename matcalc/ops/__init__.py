"""The operation registry: one stanza per operation, and the views every engine reads.

Contract: ``OPERATIONS`` holds every operation matcalc knows, in declaration order (the order
docs/rules.md lists them), each an immutable ``base.Operation``, grouped by family in the
modules of this package:

- ``arithmetic``: what Python's operators build (``@ .T + - * / ** -x``);
- ``elementwise``: the table of elementwise functions (one row each);
- ``broadcasting``: repeats of a scalar, column or row; ``ones``, ``zeros``;
- ``contractions``: ``sum``, ``mean``, ``trace``, ``einsum``;
- ``linalg``: ``det``, ``logdet``, ``inv``, ``diag``, ``eye``;
- ``reductions``: ``norm``, ``norm1``, ``softmax``, ``logsumexp``.

The views below are built once, at import, and are read-only: the parser's function and
operator tables, the reserved names, the operation of a node (``operation_of``), the public API's
builders. Engines look operations up here and never keep tables of their own.
"""

from __future__ import annotations

import keyword
from types import MappingProxyType

from ..errors import MatcalcError
from ..expr import Apply, Node, check_variable_name
from . import arithmetic, broadcasting, contractions, elementwise, linalg, reductions
from .base import CONCERNS, RULE_KINDS, Function, Operation, Syntax

OPERATIONS: tuple[Operation, ...] = (arithmetic.OPERATIONS + elementwise.OPERATIONS +
                                     broadcasting.OPERATIONS + contractions.OPERATIONS +
                                     linalg.OPERATIONS + reductions.OPERATIONS)

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
#: Names a variable or dimension may not take, because the syntax gives them another meaning.
RESERVED_NAMES = frozenset(CALLS) | KEYWORDS | {"T"}
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
        return FUNCTIONS.get(node.name)
    return BY_NODE.get(type(node))


def check_name(name: str) -> None:
    """Raise unless ``name`` can name a variable: an identifier that is not a Python keyword
    and that the syntax does not reserve (``sum``, ``exp``, ``T``, ``axis``)."""
    check_variable_name(name)
    if name in RESERVED_NAMES or keyword.iskeyword(name):
        raise MatcalcError(f"{name!r} is reserved in matcalc syntax; choose another name")


__all__ = ["OPERATIONS", "BY_NAME", "BY_NODE", "FUNCTIONS", "CALLS", "OPERATORS", "KEYWORDS",
           "RESERVED_NAMES", "BUILDERS", "SYMPY_TO_NAME", "CONCERNS", "RULE_KINDS", "Function",
           "Operation", "Syntax", "operation_of", "check_name"]
