"""The printer dispatch shared by every target.

Contract: ``Printer.doprint(node)`` walks the DAG bottom-up (iteratively: deep expressions are
fine) and calls ``_print_<Class>(node, args)`` for each node, found along the class's MRO, where
``args`` are the already printed operands as ``Printed`` records. A printer defines such methods
for the core algebra it lays out itself (products, sums, broadcasts, leaves); every other
operation is printed from its spelling in the registry (``matcalc.ops``), through the printer's
``spell(op)``. A node with neither raises ``UnsupportedError`` — a printer never guesses.
Precedences are one scale for every target (``ops.base``: ADD < MUL < UNARY < POW < POSTFIX <
ATOM), available on every printer as attributes.

A stanza's spelling function is called as ``spelling(printer, node, args)`` and returns
``(text, precedence)``; it may use ``printer.wrap(arg, min_prec)`` and the precedence attributes,
and each printer's own helpers named in its module docstring.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..dims import is_one
from ..errors import UnsupportedError
from ..expr import Broadcast, Node, postorder
from ..ops import Operation, operation_of
from ..ops import base as precedence


@dataclass(frozen=True)
class Printed:
    """A printed operand: its node, its text, and the precedence of its outermost operator."""

    node: Node
    text: str
    prec: int


#: The longest formula a printer writes out in full. A DAG that shares subexpressions can expand
#: into a text far longer than itself (a 3000-layer gradient: billions of characters); past this
#: the printer refuses rather than exhaust memory. Generated NumPy code names shared values and
#: has no such limit.
MAX_EXPANDED = 2_000_000


def expanded_size(roots) -> int:
    """An upper estimate of the printed length of ``roots`` written out in full (no sharing)."""
    size: dict[int, int] = {}
    for n in postorder(roots):
        size[id(n)] = 12 + len(str(n.params)) + builtin_sum(size[id(a)] for a in n.args)
    return builtin_sum(size[id(r)] for r in roots)


builtin_sum = sum


def bare_broadcasts(node: Node) -> tuple[bool, ...]:
    """For an elementwise node, which operands may be written without their broadcast.

    ``W @ X + b`` may drop b's broadcast because W @ X has the full shape; NumPy broadcasting
    restores it. When both operands are broadcasts, both may drop it only if a column meets a
    row (n x 1 with 1 x m); otherwise the shape would be lost (1 + 2 is not ones(n) * 3).
    """
    from_bc = [isinstance(a, Broadcast) for a in node.args]
    if not all(from_bc):
        return tuple(from_bc)
    scalar = [a.args[0].is_scalar for a in node.args]
    if any(scalar) and not all(scalar):
        return tuple(scalar)      # 2 * (v * ones(n, m)): the scalar bare, the other keeps shape
    inner = [a.args[0].shape for a in node.args]
    rows = builtin_max(1 if is_one(s[0]) else 2 for s in inner)
    cols = builtin_max(1 if is_one(s[1]) else 2 for s in inner)
    full = (rows == 2 or is_one(node.shape[0])) and (cols == 2 or is_one(node.shape[1]))
    return (full,) * len(node.args)


builtin_max = max


class Printer:
    """Base class: subclasses define ``_print_<NodeClass>(self, node, args) -> (text, prec)``."""

    name = "printer"
    expands = True        # writes shared subexpressions out in full (the text and LaTeX printers)
    ADD, MUL, UNARY, POW, POSTFIX, ATOM = (precedence.ADD, precedence.MUL, precedence.UNARY,
                                           precedence.POW, precedence.POSTFIX, precedence.ATOM)

    def doprint(self, node: Node) -> str:
        return self.print_all([node])[0].text

    def print_all(self, roots) -> list[Printed]:
        if self.expands:
            size = expanded_size(roots)
            if size > MAX_EXPANDED:
                about = f"about {size:,}" if size < 10 ** 12 else "more than 10^12"
                raise UnsupportedError(
                    f"the formula is too large to write out in full ({about} characters "
                    f"when shared subexpressions are repeated); generate code with "
                    f"numpy_source(), which names shared values")
        done: dict[int, Printed] = {}
        self.done = done          # methods may look up any printed operand (by id)
        for n in postorder(roots):
            args = [done[id(a)] for a in n.args]
            self.current = n       # the node being printed, for methods that need its shape
            text, prec = self._method(n)(n, args)
            done[id(n)] = Printed(n, text, prec)
        return [done[id(r)] for r in roots]

    def _method(self, node: Node):
        for cls in type(node).__mro__:
            method = getattr(self, f"_print_{cls.__name__}", None)
            if method is not None:
                return method
        op = operation_of(node)
        method = self.spell(op) if op is not None else None
        if method is None:
            raise UnsupportedError(f"the {self.name} printer has no method for "
                                   f"{type(node).__name__}")
        return method

    def spell(self, op: Operation):
        """A method ``(node, args) -> (text, precedence)`` printing ``op`` from its spelling in
        the registry; None when the stanza gives none for this printer."""
        return None

    def bound(self, spelling):
        """A stanza's spelling function, called with this printer first."""
        def method(node, args):
            return spelling(self, node, args)
        return method
