"""The derivation pipeline, written out once: forward rewrite -> reverse sweep -> simplify.

Contract: ``differentiate(expression, wrt, seed)`` is the one place the three engines are put
together; gradients, Jacobians, Hessians, Hessian-vector products, index tensors and the
step-by-step notes all call it, and the notes render its record (``sweep.steps``) without
deriving anything themselves.

1. The stable form of the expression is differentiated (``simplify.rewrite_forward``:
   log of a normaliser as a difference, log(exp(x)) as x) when every target is a variable: the
   rewrite keeps the function of the variables, but it can remove some of the paths through a
   subexpression (log(exp(A)) -> A drops one use of exp(A)), which would change the gradient
   with respect to that subexpression; so with a subexpression among the targets the expression
   is differentiated as written.
2. One reverse sweep (``diff.reverse_sweep``) gives every target's adjoint for the upstream
   gradient ``seed``, with the record of each rule applied.
3. The gradients are simplified together (``simplify.simplify_all``), so they share their
   intermediates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .diff import Sweep, reverse_sweep
from .expr import Node, Var
from .simplify import rewrite_forward, simplify_all


@dataclass(frozen=True)
class Differentiated:
    """What the pipeline produced: the expression as given, the form the sweep ran on, the
    sweep (with its record) and the simplified gradients, in ``wrt`` order."""

    expression: Node
    differentiated: Node
    wrt: tuple
    seed: Node
    sweep: Sweep
    gradients: tuple


def differentiate(expression: Node, wrt: Sequence[Node], seed: Node) -> Differentiated:
    """The gradients of sum(seed * expression) with respect to each of ``wrt``.

    >>> from matcalc.expr import Const, Var
    >>> A = Var.make("A", ("n", "n")); x = Var.make("x", ("n", 1))
    >>> [str(g) for g in differentiate(x.T @ A @ x, [x], Const.make(1)).gradients]
    ['(A + A.T) @ x']
    """
    wrt = tuple(wrt)
    stable = rewrite_forward(expression) if all(isinstance(w, Var) for w in wrt) else expression
    sweep = reverse_sweep(stable, list(wrt), seed)
    return Differentiated(expression, stable, wrt, seed, sweep,
                          tuple(simplify_all(sweep.gradients)))
