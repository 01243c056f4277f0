"""Collapse: an index contraction back into matrix notation.

Contract: ``collapse(factors, out, sizes, summed, coeff)`` takes factors — each a node with the
index pair that addresses it (``(A, (i, j))`` is A_ij, ``(v, (i, 0))`` is v_i, ``0`` standing for an
axis of size 1) — and returns one node whose (out) entry is ``coeff * sum_{summed} prod factors``.
The patterns, as executable examples (``i, j, k`` are index symbols):

>>> import sympy
>>> from matcalc.expr import Var
>>> i, j, k = sympy.symbols("i j k", integer=True)
>>> n = sympy.Symbol("n", integer=True, positive=True)
>>> A = Var.make("A", (n, n)); B = Var.make("B", (n, n)); v = Var.make("v", (n, 1))
>>> sizes = {i: n, j: n, k: n}
>>> str(collapse([(A, (i, j)), (B, (j, k))], (i, k), sizes, [j]))        # a chain: product
'A @ B'
>>> str(collapse([(A, (i, j)), (B, (j, k))], (k, i), sizes, [j]))        # reversed: transposes
'B.T @ A.T'
>>> str(collapse([(A, (i, j)), (B, (j, i))], (0, 0), sizes, [i, j]))     # closed chain: trace
'trace(A @ B)'
>>> str(collapse([(A, (i, j)), (B, (i, j))], (i, j), sizes, []))         # shared free: Hadamard
'A * B'
>>> str(collapse([(v, (i, 0)), (v, (j, 0))], (i, j), sizes, []))         # lone free pair: outer
'v @ v.T'
>>> str(collapse([(A, (i, j))], (i, 0), sizes, [j]))                     # sum against nothing
'sum(A, axis=1)'

Rules that do not fit these patterns (a factor summed against two others at once, a repeated
index that is not a trace) leave an explicit ``Einsum`` — correct, only not in matrix form.
Each step removes a factor or a summed index, so the loop ends; the steps taken are appended to
``log`` when one is given (the derivation printer shows them).
"""

from __future__ import annotations

from typing import Sequence

import sympy

from .dims import ONE
from .errors import UnsupportedError
from .expr import Broadcast, Const, Eye, MatMul, Mul, Neg, Node, Transpose, mul
from .notation import ZERO
from .ops.contractions import Einsum, Sum, Trace
from .ops.linalg import Diag


def _orient(node: Node, idx: tuple, first) -> tuple[Node, tuple]:
    """The factor with ``first`` as its row index (transposing if needed)."""
    if idx[0] == first:
        return node, idx
    return Transpose.make(node), (idx[1], idx[0])


def _symbols(idx: tuple) -> set:
    return {x for x in idx if x != ZERO}


def collapse(factors: Sequence[tuple[Node, tuple]], out: tuple, sizes: dict,
             summed: Sequence, coeff=1, log: list | None = None) -> Node:
    """The matrix-form node equal to ``coeff * sum over summed of prod factors`` at ``out``."""
    note = log.append if log is not None else (lambda s: None)
    facs, summed, coeff = contract(factors, summed, sizes, coeff, out, note)
    if summed:
        return _scale(_einsum(facs, out, sizes, summed, note), coeff)

    # No sums left: combine what remains into the output (outer products, broadcasts).
    scalars = [node for node, idx in facs if idx == (ZERO, ZERO)]
    rest = [(node, idx) for node, idx in facs if idx != (ZERO, ZERO)]
    while len(rest) > 1:
        combined = _combine_free(rest, out, note)
        if combined is None:
            return _scale(_einsum(facs, out, sizes, [], note), coeff)
        rest = combined
    result = _to_output(rest[0] if rest else None, out, sizes, scalars, note)
    return _scale(result, coeff)


def contract(factors: Sequence[tuple[Node, tuple]], summed: Sequence, sizes: dict, coeff=1,
             out: tuple = (ZERO, ZERO), note=lambda s: None) -> tuple[list, list, sympy.Expr]:
    """Sum away what can be summed in matrix form: traces, diagonals, Hadamard products, row and
    column sums, matrix products (oriented towards the index pair ``out``). Returns the factors
    left, the indices still summed (an einsum's work) and the coefficient."""
    coeff = sympy.sympify(coeff)
    facs = [(node, tuple(idx)) for node, idx in factors]
    summed = list(summed)

    changed = True
    while changed:
        changed = False
        # A repeated index in one factor: summed and used nowhere else, a trace; otherwise the
        # diagonal, a vector (sum_i A_ii v_i = diag(A).T @ v; A_kk = diag(A)_k).
        for n, (node, idx) in enumerate(facs):
            if idx[0] != idx[1] or idx[0] == ZERO:
                continue
            if idx[0] in summed and _count(facs, idx[0]) == 1:
                summed.remove(idx[0])
                facs[n] = (Trace.make(node), (ZERO, ZERO))
                note(f"closed chain over {idx[0]}: trace")
            else:
                facs[n] = (Diag.make(node), (idx[0], ZERO))
                note(f"a repeated index {idx[0]}: the diagonal")
            changed = True
        # Factors with the same index pair (up to order): a Hadamard product.
        merged = _merge_hadamard(facs, summed, note)
        changed = changed or merged
        # Summed indices, one at a time.
        for s in list(summed):
            users = [n for n, (_, idx) in enumerate(facs) if s in idx]
            if not users:
                coeff = coeff * sizes[s]
                summed.remove(s)
                note(f"sum over {s} of nothing: times {sizes[s]}")
                changed = True
            elif len(users) == 1:
                n = users[0]
                node, idx = facs[n]
                if idx[0] == idx[1]:
                    continue   # a diagonal that is used elsewhere: no matrix form here
                other = idx[1] if idx[0] == s else idx[0]
                if other in summed and _count(facs, other) == 1:
                    facs[n] = (Sum.make(node), (ZERO, ZERO))     # both indices summed: sum(A)
                    summed.remove(s)
                    summed.remove(other)
                    note(f"sum over {s} and {other} of one factor: the sum of all its entries")
                    changed = True
                    break
                facs[n] = _sum_out(node, idx, s)
                summed.remove(s)
                note(f"sum over {s} against nothing: a row/column sum")
                changed = True
            if changed:
                break
        if changed:
            continue
        # Indices shared by two factors: the matrix product that needs the fewest transposes.
        best = _best_product(facs, summed, out)
        if best is not None:
            s, a, b, product = best
            facs[a] = product
            del facs[b]
            summed.remove(s)
            note(f"sum over {s} shared by two factors: a matrix product")
            changed = True

    return facs, summed, coeff


def _count(facs, s) -> int:
    return sum(1 for _, idx in facs if s in idx)


def _merge_hadamard(facs: list, summed: list, note) -> bool:
    """Merge factors with equal index pairs into Hadamard products. Decreases: factor count.

    Only where an index stays free: with every index summed, a pair is a product (u.T @ w) or
    a closed chain (trace(A @ B)), as books write it.
    """
    for a in range(len(facs)):
        na, ia = facs[a]
        if ia == (ZERO, ZERO):
            continue
        all_summed = _symbols(ia) <= set(summed)
        for b in range(a + 1, len(facs)):
            nb, ib = facs[b]
            if all_summed and (ZERO in ia or ib != ia):
                # u_i w_i summed is u.T @ w, A_ij B_ji summed is trace(A @ B); but A_ij B_ij
                # summed is sum(A * B), the Frobenius product (n^2 work, not the n^3 of a trace)
                continue
            if ib == ia:
                facs[a] = (Mul.make(na, nb), ia)
            elif ib == ia[::-1] and ia[0] != ia[1]:
                facs[a] = (Mul.make(na, Transpose.make(nb)), ia)
            else:
                continue
            del facs[b]
            note(f"same indices {ia}: an elementwise (Hadamard) product")
            return True
    return False


def _sum_out(node: Node, idx: tuple, s) -> tuple[Node, tuple]:
    """Sum one factor over its index ``s``: a row or column sum (or a full sum of a vector)."""
    other = idx[1] if idx[0] == s else idx[0]
    if other == ZERO:
        return Sum.make(node), (ZERO, ZERO)
    if idx[0] == s:                      # sum_s A_sx: one entry per column x
        return Sum.make(node, axis=0), (other, ZERO)
    return Sum.make(node, axis=1), (other, ZERO)   # sum_s A_xs: one entry per row x


def _best_product(facs, summed, out):
    """Among indices summed over exactly two factors, and both orders of those factors, the
    product sum_s a_xs b_sy = (A @ B)_xy that lands in output order with the fewest transposes.
    Returns (index, position kept, position removed, (product, indices)) or None."""
    best, best_score = None, None
    for s in summed:
        users = [n for n, (_, idx) in enumerate(facs) if s in idx]
        if len(users) != 2:
            continue
        for a, b in (users, users[::-1]):
            (na, ia), (nb, ib) = facs[a], facs[b]
            if ia[0] == ia[1] or ib[0] == ib[1]:
                continue
            x = ia[1 - ia.index(s)]
            y = ib[1 - ib.index(s)]
            misplaced = (y != ZERO and y == out[0]) or (x != ZERO and x == out[1])
            transposes = (ia[0] != x) + (ib[0] != s)
            score = (misplaced, transposes, a > b)   # ties keep the factors in order
            if best_score is None or score < best_score:
                left, _ = _orient(na, ia, x)
                right, _ = _orient(nb, ib, s)
                best_score = score
                best = (s, min(a, b), max(a, b), (MatMul.make(left, right), (x, y)))
    return best


def _combine_free(rest: list, out: tuple, note) -> list | None:
    """Combine two factors with no index summed between them. Decreases: factor count."""
    for a in range(len(rest)):
        for b in range(len(rest)):
            if a == b:
                continue
            (na, ia), (nb, ib) = rest[a], rest[b]
            sa, sb = _symbols(ia), _symbols(ib)
            if isinstance(na, Eye) and len(sb) == 1 and sb <= sa and len(sa) == 2:
                # delta_kl v_k: the vector on the diagonal of a matrix
                column, _ = _orient(nb, ib, next(iter(sb)))
                note("a vector times the identity: a diagonal matrix")
                return _replace(rest, a, b, (Diag.make(column), ia))
            if sb <= sa and sb:
                # b's index also addresses a: broadcast b across a (diag(v) A or A diag(v)).
                node = Mul.make(na, _align(nb, ib, ia, na.shape))
                note("a vector scaling the rows or columns of a matrix: broadcast product")
                return _replace(rest, a, b, (node, ia))
            if not (sa & sb) and len(sa) == 1 and len(sb) == 1:
                x, y = next(iter(sa)), next(iter(sb))
                if y == out[0] or x == out[1]:
                    continue   # the other order of this pair is tried too
                left, il = _orient(na, ia, x)
                right, ir = _orient(nb, ib, ZERO)
                note("two vectors on different free indices: an outer product")
                return _replace(rest, a, b, (MatMul.make(left, right), (x, y)))
    return None


def _replace(rest, a, b, new):
    out = [f for n, f in enumerate(rest) if n not in (a, b)]
    out.insert(min(a, b), new)
    return out


def _align(node: Node, idx: tuple, target: tuple, shape) -> Node:
    """A factor indexed by a subset of ``target`` , broadcast to the target's shape."""
    if idx == target:
        return node
    if idx[::-1] == target:
        return Transpose.make(node)
    s = next(iter(_symbols(idx)))
    pos = target.index(s)
    oriented, oidx = _orient(node, idx, s) if pos == 0 else _orient(node, idx, ZERO)
    return Broadcast.make(oriented, *shape)


def _to_output(factor, out: tuple, sizes: dict, scalars: list, note) -> Node:
    shape = tuple(ONE if x == ZERO else sizes[x] for x in out)
    scalar = None
    for s in scalars:
        scalar = s if scalar is None else Mul.make(scalar, s)
    if factor is None:
        note("only scalars remain: the result is a scalar (broadcast to its shape)")
        if scalar is None:
            scalar = Const.make(1)
        return scalar if shape == (ONE, ONE) else Broadcast.make(scalar, *shape)
    node, idx = factor
    if not _symbols(idx) <= _symbols(out):
        raise UnsupportedError(f"index {idx} is neither summed nor in the result {out}")
    if idx != out:
        note(f"indices {idx} arranged as the result's {out}")
    node = _align(node, idx, out, shape)
    if scalar is not None:
        node = mul(scalar, node)
    return node


def _scale(node: Node, coeff) -> Node:
    if coeff == 1:
        return node
    if coeff == -1:
        return Neg.make(node)
    return mul(Const.make(coeff), node)


def _einsum(facs, out, sizes, summed, note) -> Node:
    """The remaining factors as an explicit einsum (no matrix form found)."""
    letters: dict = {}
    pool = iter("ijklmnopqrstuvwxyzabcdefgh")
    subscripts = []
    for node, idx in facs:
        sub = ""
        for x in idx:
            if x == ZERO:
                sub += next(pool)      # a size-1 axis: its own letter, summed over one value
            else:
                if x not in letters:
                    letters[x] = next(pool)
                sub += letters[x]
        subscripts.append(sub)
    present = tuple(x if x in letters else ZERO for x in out)     # indices some factor has
    output = "".join(letters[x] for x in present if x != ZERO)
    note("no matrix form: an explicit einsum")
    node = Einsum.make(subscripts, output, [n for n, _ in facs])
    if present[0] == ZERO and present[1] != ZERO:
        node = Transpose.make(node)
    if present != tuple(out):          # an output index no factor has: repeat along it
        node = Broadcast.make(node, *(ONE if x == ZERO else sizes[x] for x in out))
    return node
