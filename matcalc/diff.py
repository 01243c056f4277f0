"""Differentiation: one reverse sweep over the expression DAG.

Contract: ``reverse_sweep(root, wrt, seed)`` visits the nodes of ``root`` in reverse topological
order (iteratively: no recursion limit), gives each node on a path to a ``wrt`` node its adjoint —
the sum of the contributions of its users, each from that user's derived rule (``rules``) — and
returns the adjoints of ``wrt`` (a zero matrix for a node the root does not depend on), with the
record of every rule applied, in order. ``wrt`` may hold variables or any subexpression of root.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .expr import Node, add, postorder, zeros
from .rules import Rule, apply_rule, vjp_rule


@dataclass(frozen=True)
class Step:
    """One rule applied on the sweep: ``node``'s adjoint pushed to its operand ``position``."""

    node: Node
    position: int
    adjoint: Node          # the upstream gradient of node
    contribution: Node     # what it adds to the operand's adjoint
    rule: Rule


@dataclass
class Sweep:
    """The result of a reverse sweep: gradients in ``wrt`` order, and the steps taken."""

    gradients: list
    steps: list = field(default_factory=list)
    adjoints: dict = field(default_factory=dict)


def reverse_sweep(root: Node, wrt: list[Node], seed: Node) -> Sweep:
    """Adjoints of every ``wrt`` node for the upstream gradient ``seed`` of ``root``."""
    order = postorder([root])
    targets = {id(w) for w in wrt}
    # Nodes through which some target reaches the root: only these get adjoints.
    needed: set[int] = set()
    for node in order:
        if id(node) in targets or any(id(a) in needed for a in node.args):
            needed.add(id(node))
    adjoint: dict[int, Node] = {id(root): seed}
    steps: list[Step] = []
    for node in reversed(order):
        g = adjoint.get(id(node))
        if g is None or id(node) not in needed:
            continue
        for position, operand in enumerate(node.args):
            if id(operand) not in needed:
                continue
            rule, dims = vjp_rule(node, position)
            contribution = apply_rule(rule, node, g, dims)
            steps.append(Step(node, position, g, contribution, rule))
            previous = adjoint.get(id(operand))
            adjoint[id(operand)] = contribution if previous is None else add(previous, contribution)
    gradients = [adjoint.get(id(w)) or zeros(*w.shape) for w in wrt]
    return Sweep(gradients, steps, {id(n): adjoint[id(n)] for n in order if id(n) in adjoint})
