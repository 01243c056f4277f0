"""The printer dispatch shared by every target.

Contract: ``Printer.doprint(node)`` walks the DAG bottom-up (iteratively: deep expressions are
fine) and calls ``_print_<Class>(node, args)`` for each node, found along the class's MRO, where
``args`` are the already printed operands as ``Printed`` records. A node class with no method
raises ``UnsupportedError`` — a printer never guesses. Precedences are one table per target.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UnsupportedError
from ..expr import Node, postorder


@dataclass(frozen=True)
class Printed:
    """A printed operand: its node, its text, and the precedence of its outermost operator."""

    node: Node
    text: str
    prec: int


class Printer:
    """Base class: subclasses define ``_print_<NodeClass>(self, node, args) -> (text, prec)``."""

    name = "printer"

    def doprint(self, node: Node) -> str:
        return self.print_all([node])[0].text

    def print_all(self, roots) -> list[Printed]:
        done: dict[int, Printed] = {}
        self.done = done          # methods may look up any printed operand (by id)
        for n in postorder(roots):
            args = [done[id(a)] for a in n.args]
            text, prec = self._method(n)(n, args)
            done[id(n)] = Printed(n, text, prec)
        return [done[id(r)] for r in roots]

    def _method(self, node: Node):
        for cls in type(node).__mro__:
            method = getattr(self, f"_print_{cls.__name__}", None)
            if method is not None:
                return method
        raise UnsupportedError(f"the {self.name} printer has no method for {type(node).__name__}")
