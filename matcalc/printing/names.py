"""Named intermediates: a result printed as a few definitions, then the result in their terms.

Contract: ``choose_names(roots, forward=..., taken=...)`` returns a ``Named``: the definitions
``(name, node)`` in the order they read (each in terms of the names before it) and the roots in
terms of the names, all as ordinary nodes (a name is a ``Var`` of the value's shape), so every
printer writes them with its own methods. It never changes a value: substituting each
definition back gives the roots again.

What gets a name, as the seed notes write it (z, a, δ):

- a subexpression written more than once, when naming it makes the text shorter by ``SAVING``
  tokens (its definition costs its name, ``=`` and itself once; it counts the
  times each node would be written, top-down: a node inside a named one is written once, in the
  definition);
- then, while a line is longer than ``LINE``, the largest subexpression on it (the terms of a
  long sum become the definitions a book gives them: δ_z, δ_i, ...).

Small results stay one line: nothing is named when the whole result is at most ``SMALL`` tokens.
The name says what the value is, where the expression tells: the letter of the function's table
row (``s`` for a sigmoid), ``p`` for a softmax, ``z`` for a pre-activation ``W @ x + b``, ``a``
for an activation of one, ``mu`` for a mean, ``xhat`` for a standardised ``x``, ``delta`` for a
value of the backward pass (not in the forward expression); a fresh one otherwise. Names never
collide with the user's variables and dimensions.

Decreases: each loop names one more node of a finite DAG, and a named node is never chosen again.
Cost is linear in the DAG (the counts are one pass each way) plus one printing per round of
splitting (at most ``MAX_SPLITS``, and only for a DAG of at most ``SPLIT_NODES`` nodes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from .. import expr as E
from ..ops import FUNCTIONS, RESERVED_NAMES
from ..ops.contractions import Sum
from ..ops.linalg import Det, Inv, LogDet
from ..ops.reductions import LogSumExp, Norm, Softmax

#: A result of at most this many tokens (written out) prints on one line, as it is.
SMALL = 24
#: A value written more than once is named when that saves at least this many tokens.
SAVING = 4
#: A line longer than this many characters has its largest subexpression named.
LINE = 100
#: The room a line's name or label takes ("delta_1 = ", "d/dW1 = ").
LABEL = 10
#: At most this many rounds of naming to shorten lines, and only for results of at most
#: ``SPLIT_NODES`` nodes (each round prints every line once; a result that large reads by its
#: shared values, and a line that is a sum of thousands of them stays long).
MAX_SPLITS = 20
SPLIT_NODES = 3000
_CAP = 10 ** 12


@dataclass(frozen=True)
class Named:
    """Definitions in reading order, then the roots in their terms."""

    definitions: tuple[tuple[E.Var, E.Node], ...]
    roots: tuple[E.Node, ...]


def tokens_written_out(roots: Iterable[E.Node]) -> dict[int, int]:
    """For each node, about how many tokens it takes written out in full (capped)."""
    size: dict[int, int] = {}
    for n in E.postorder(roots):
        if not n.args:
            extra = 1
        elif isinstance(n, E.Broadcast):
            extra = 0
        elif isinstance(n, (E.Transpose, E.Pow)):
            extra = 2                                   # .T, ** 2
        elif isinstance(n, (E.MatMul, E.Add, E.Sub, E.Mul, E.Div, E.Neg)):
            extra = 1
        else:
            extra = 3                                   # a call: name ( )
        size[id(n)] = min(_CAP, extra + sum(size[id(a)] for a in n.args))
    return size


def _trivial(n: E.Node) -> bool:
    """Short enough to write every time: a leaf, a constant, a transpose or negation of one,
    a broadcast (its operand is named instead), inv or det of a leaf."""
    while isinstance(n, (E.Transpose, E.Neg, E.Broadcast)):
        n = n.args[0]
    if not n.args or E.constant_value(n) is not None:
        return True
    if isinstance(n, (Inv, Det, LogDet)) or (isinstance(n, E.Apply) and n.name == "sqrt"):
        return not n.args[0].args
    return False


def _nameable(n: E.Node) -> bool:
    return not isinstance(n, (E.Transpose, E.Broadcast, E.Neg)) and not _trivial(n)


def choose_names(roots, forward: Iterable[E.Node] | None = None, taken: Iterable[str] = (),
                 line_length: Callable | None = None) -> Named:
    """The definitions and the roots in their terms (see the module docstring).

    ``forward`` are the expressions differentiated (their nodes are values of the forward pass;
    others are named ``delta``; None: not known, nothing is named ``delta``); ``taken`` names in use besides the roots' variables;
    ``line_length(lines, names)`` the printed length of each node of ``lines`` with the nodes
    under it in ``names`` (node id -> Var) written as names, for splitting long lines (without
    it, no line is split).
    """
    roots = list(roots)
    order = E.postorder(roots)
    size = tokens_written_out(roots)
    if sum(size[id(r)] for r in roots) <= SMALL:
        return Named((), tuple(roots))
    forward_ids = None if forward is None else {id(n) for n in E.postorder(list(forward))}
    used = set(taken) | set(RESERVED_NAMES)
    for n in order:
        if isinstance(n, E.Var):
            used.add(n.name)
    for d in E.dimensions(roots):
        used.add(str(d))

    # how many times each node is written, parents first; a named parent is written once
    named: dict[int, E.Node] = {}
    root_ids = {id(r) for r in roots}
    parents: dict[int, list] = {}
    for n in order:
        for a in n.args:
            parents.setdefault(id(a), []).append(n)
    written: dict[int, int] = {}
    for n in reversed(order):
        count = sum(1 if id(p) in named else written[id(p)] for p in parents.get(id(n), ()))
        if id(n) in root_ids:
            count += 1
        written[id(n)] = min(count, _CAP)
        t = size[id(n)]
        if count >= 2 and _nameable(n) and id(n) not in root_ids and \
                (count - 1) * t >= count + 2 + SAVING:
            named[id(n)] = n

    # long lines: name the largest subexpression on the line
    if line_length is not None and len(order) <= SPLIT_NODES:
        for _ in range(MAX_SPLITS):
            names = _vars(named, forward_ids, set(used), order)
            lines = [n for n in order if id(n) in named] + roots
            # a line is its label or name and " = " (LABEL characters), then the value
            long = [n for n, k in zip(lines, line_length(lines, names)) if k + LABEL > LINE]
            if not long:
                break
            picks = [p for p in (_largest_inside(line, named, size) for line in long)
                     if p is not None]
            if not picks:
                break
            for pick in picks:            # one name per long line each round
                named[id(pick)] = pick
    names = _vars(named, forward_ids, used, order)
    return _assemble(order, roots, names)


def _largest_inside(line: E.Node, named: dict, size: dict) -> E.Node | None:
    """The largest nameable node written on ``line`` (not inside a name), other than the line."""
    best, stack, seen = None, list(line.args), set()
    while stack:
        n = stack.pop()
        if id(n) in seen or id(n) in named:
            continue
        seen.add(id(n))
        if _nameable(n) and (best is None or size[id(n)] > size[id(best)]):
            best = n
        stack.extend(n.args)
    return best


def _vars(named: dict, forward_ids: set | None, used: set, order: list) -> dict[int, E.Var]:
    """A ``Var`` for each named node, named by what it is, in reading order."""
    out: dict[int, E.Var] = {}
    counters: dict[str, int] = {}
    for n in order:
        if id(n) in named:
            wanted = _wanted_name(n, forward_ids is None or id(n) in forward_ids)
            out[id(n)] = E.Var.make(_fresh(wanted, used, counters), n.shape, check_name=False)
    return out


def _fresh(wanted: str, used: set, counters: dict) -> str:
    """``wanted``, else ``wanted1``, ``wanted2``, ... (``wanted_1`` after a digit); ``counters``
    remembers where each stem's numbering stands, so naming n values costs n steps."""
    joint = "_" if wanted[-1].isdigit() else ""
    k = counters.get(wanted, 0)
    name = wanted if k == 0 else f"{wanted}{joint}{k}"
    while name in used:
        k += 1
        name = f"{wanted}{joint}{k}"
    counters[wanted] = k + 1
    used.add(name)
    return name


def _affine(n: E.Node) -> bool:
    """W @ x, W @ x + b, W @ x + R @ h + b: a pre-activation."""
    while isinstance(n, (E.Add, E.Sub)):
        if isinstance(n.args[1], E.MatMul) or isinstance(n.args[1], E.Broadcast):
            n = n.args[0]
        else:
            return False
    return isinstance(n, E.MatMul)


def _mean_of(n: E.Node) -> E.Node | None:
    """x for (1/k) * sum(x) (a mean, maybe along an axis, maybe transposed/broadcast)."""
    while isinstance(n, (E.Transpose, E.Broadcast)):
        n = n.args[0]
    sf = E.scalar_factor(n)
    if sf is None:
        return None
    n = sf[1]
    while isinstance(n, (E.Transpose, E.Broadcast)):
        n = n.args[0]
    return n.args[0] if isinstance(n, Sum) else None


def _wanted_name(n: E.Node, forward: bool) -> str:
    if not forward:
        return "delta"
    if isinstance(n, Softmax):
        return "p"
    if isinstance(n, LogSumExp):
        return "lse"
    if isinstance(n, Norm):
        return "r"
    if isinstance(n, E.Apply):
        row = FUNCTIONS[n.name].function if n.name in FUNCTIONS else None
        if row is not None and row.value:
            return row.value
        if n.name == "exp":
            return "e"
        if n.name == "sqrt":
            return "sigma"
        return "a" if _affine(n.args[0]) else "h"
    if _affine(n):
        return "z"
    x = _mean_of(n)
    if x is not None:
        return "mu"
    if isinstance(n, E.Sub) and isinstance(n.args[0], E.Var) and \
            _mean_of(n.args[1]) is n.args[0]:
        return n.args[0].name + "c"                    # x centred
    if isinstance(n, E.Div) and isinstance(n.args[0], E.Sub) and \
            isinstance(n.args[0].args[0], E.Var):
        return n.args[0].args[0].name + "hat"          # x standardised
    return "u"


def _assemble(order: list, roots: list, names: dict[int, E.Var]) -> Named:
    """Each named node over its operands' names, and the roots over the names."""
    done: dict[int, E.Node] = {}
    definitions = []
    for n in order:
        args = tuple(done[id(a)] for a in n.args)
        m = E.with_args(n, args)
        if id(n) in names:
            definitions.append((names[id(n)], m))
            done[id(n)] = names[id(n)]
        else:
            done[id(n)] = m
    out = []
    for r in roots:
        if id(r) in names:        # a root that is also written inside another: its definition
            out.append(next(d for v, d in definitions if v is names[id(r)]))
        else:
            out.append(done[id(r)])
    return Named(tuple(definitions), tuple(out))


def expand(named: Named) -> list[E.Node]:
    """The roots with every name replaced by its definition (the values ``named`` stands for)."""
    mapping: dict = {}
    for var, definition in named.definitions:
        mapping[var] = E.substitute([definition], mapping)[0]
    return E.substitute(list(named.roots), mapping)
