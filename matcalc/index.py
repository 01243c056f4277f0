"""Index notation: each operation as a SymPy formula for one entry, and contraction terms.

Contract:
- ``lower(node, bases, i, j, fresh)`` gives entry (i, j) of ``node`` as a SymPy expression over
  ``IndexedBase`` operands (``bases``) and ``Sum`` s, e.g. ``Z[i,j] = Sum(A[i,q]*B[q,j], q)``,
  from the operation's stanza in ``matcalc.ops``. An axis of size 1 is indexed by the literal 0,
  never by a symbol (``matcalc.notation``).
- ``to_terms`` turns a SymPy sum of products (what ``sympy.diff`` returns for such formulas) into a
  list of ``Term`` s: a coefficient, factors each with its index pair, Kronecker deltas, and the
  summed indices with their ranges. ``Term.eliminate_deltas`` sums the deltas away.
- ``pointwise_node`` turns a scalar function of same-index entries (``1 - tanh(A[i,j])**2``) back
  into an elementwise node (``1 - tanh(A) ** 2``).
Nothing here decides matrix form; that is ``collapse``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy
from sympy import Indexed, KroneckerDelta

from .errors import UnsupportedError
from .expr import Apply, Broadcast, Const, Neg, Node, Pow, Transpose, add, div, mul, sub
from .notation import ZERO, Fresh, entry, index_for, summation
from .ops import SYMPY_TO_NAME, operation_of

__all__ = ["ZERO", "Fresh", "entry", "index_for", "summation", "lower", "sum_inner_deltas",
           "Term", "to_terms", "factor_indices", "pointwise_node"]


# ---------------------------------------------------------------------------------------------
# Kronecker deltas inside sums
# ---------------------------------------------------------------------------------------------

def sum_inner_deltas(e: sympy.Expr) -> sympy.Expr:
    """Sum away Kronecker deltas inside every Sum: Sum(f(p) d(p,k), p) -> f(k).

    Decreases: the number of summation limits.
    """
    def reduce(s: sympy.Sum):
        body, limits = s.function, list(s.limits)
        changed = True
        while changed:
            changed = False
            for n, (var, lo, hi) in enumerate(limits):
                for factor in sympy.Mul.make_args(body):
                    if isinstance(factor, KroneckerDelta) and var in factor.args:
                        other = factor.args[1] if factor.args[0] == var else factor.args[0]
                        if other == var:
                            continue
                        body = (body / factor).xreplace({var: other})
                        del limits[n]
                        changed = True
                        break
                if changed:
                    break
        return sympy.Sum(body, *limits) if limits else body
    return e.replace(lambda x: isinstance(x, sympy.Sum), reduce)


def lower(node: Node, bases: list, i, j, fresh: Fresh) -> sympy.Expr:
    """Entry (i, j) of ``node`` in index notation over the operand ``bases`` (the operation's
    own ``lower`` in the registry)."""
    op = operation_of(node)
    if op is None or op.lower is None:
        raise UnsupportedError(f"no index form for {type(node).__name__}")
    return op.lower(node, bases, i, j, fresh)


# ---------------------------------------------------------------------------------------------
# Terms: sums of products with Kronecker deltas
# ---------------------------------------------------------------------------------------------

@dataclass
class Term:
    """coeff * prod(factors) * prod(deltas), summed over ``summed`` (index -> range size)."""

    coeff: sympy.Expr = sympy.Integer(1)
    factors: list = field(default_factory=list)      # SymPy expressions holding Indexed entries
    deltas: list = field(default_factory=list)       # (a, b) pairs
    summed: dict = field(default_factory=dict)

    def times(self, other: "Term") -> "Term":
        return Term(self.coeff * other.coeff, self.factors + other.factors,
                    self.deltas + other.deltas, {**self.summed, **other.summed})

    def eliminate_deltas(self) -> "Term":
        """Sum the Kronecker deltas away: sum_i d(i,k) f(i) = f(k).

        Decreases: the number of deltas. A delta between two free indices is kept (it is an
        identity matrix); d(i,i) is 1 (a summed i then counts its range when collapsed).
        """
        kept, pending = [], list(self.deltas)
        while pending:
            a, b = pending.pop(0)
            if a == b:
                continue
            if a in self.summed or b in self.summed:
                old, new = (a, b) if a in self.summed else (b, a)
                del self.summed[old]
                mapping = {old: new}
                self.factors = [f.xreplace(mapping) for f in self.factors]
                pending = [(mapping.get(x, x), mapping.get(y, y)) for x, y in pending]
                continue
            if a == ZERO or b == ZERO:
                raise UnsupportedError("a Kronecker delta between a fixed and a free index")
            kept.append((a, b))
        self.deltas = kept
        return self

    def to_sympy(self) -> sympy.Expr:
        body = self.coeff
        for f in self.factors:
            body = body * f
        for a, b in self.deltas:
            body = body * KroneckerDelta(a, b)
        for s, size in self.summed.items():
            body = sympy.Sum(body, (s, 0, size - 1))
        return body


def to_terms(e: sympy.Expr) -> list[Term]:
    """Expand a SymPy index expression into a list of ``Term`` s (their sum equals ``e``)."""
    if isinstance(e, sympy.Sum):
        terms = to_terms(e.function)
        for s, lo, hi in e.limits:
            if lo != 0:
                raise UnsupportedError(f"a sum from {lo} is not an index contraction")
            for t in terms:
                t.summed[s] = hi + 1
        return terms
    if isinstance(e, sympy.Add):
        if e.has(Indexed) and not e.has(sympy.Sum, KroneckerDelta):
            return [Term(factors=[e])]       # an elementwise factor such as 1 - tanh(A_ij)**2
        return [t for arg in e.args for t in to_terms(arg)]
    if isinstance(e, sympy.Mul):
        terms = [Term()]
        for arg in e.args:
            terms = [t.times(u) for t in terms for u in to_terms(arg)]
        return terms
    if isinstance(e, KroneckerDelta):
        return [Term(deltas=[(e.args[0], e.args[1])])]
    if not e.has(Indexed):
        if e.has(sympy.Sum, KroneckerDelta):
            raise UnsupportedError(f"cannot expand {e}")
        return [Term(coeff=e)]
    if e.has(sympy.Sum, KroneckerDelta, sympy.Derivative):
        raise UnsupportedError(f"cannot expand {e} into index contractions")
    return [Term(factors=[e])]


def factor_indices(f: sympy.Expr) -> tuple:
    """The index pair of a factor: that of its Indexed entries (they must agree up to order)."""
    entries = sorted(f.atoms(Indexed), key=sympy.default_sort_key)
    ref = entries[0].indices
    for x in entries[1:]:
        idx = x.indices
        if idx != ref and idx != ref[::-1] and not _broadcasts(idx, ref):
            raise UnsupportedError(f"an elementwise factor mixes entries {entries[0]} and {x}")
    return tuple(ref)


def _broadcasts(idx, ref) -> bool:
    return all(a == b or a == ZERO for a, b in zip(idx, ref))


# ---------------------------------------------------------------------------------------------
# From a scalar function of entries back to an elementwise node
# ---------------------------------------------------------------------------------------------

def pointwise_node(f: sympy.Expr, ref: tuple, nodes: dict, shape) -> Node:
    """The elementwise node whose (ref) entry is ``f``; ``nodes`` maps IndexedBase -> Node."""
    if isinstance(f, Indexed):
        node = nodes[f.base]
        idx = tuple(f.indices)
        if idx == tuple(ref):
            return node
        if idx == tuple(ref)[::-1] and idx != tuple(ref):
            return Transpose.make(node)
        if _broadcasts(idx, ref):
            return Broadcast.make(node, *shape)
        raise UnsupportedError(f"entry {f} does not line up with index pair {ref}")
    if not f.has(Indexed):
        return Broadcast.make(Const.make(f), *shape)
    if isinstance(f, sympy.Add):
        positive, negative = [], []
        for arg in f.args:
            c, rest = arg.as_coeff_Mul()
            (negative if c.is_negative else positive).append(-arg if c.is_negative else arg)
        result = None
        for arg in positive:
            n = pointwise_node(arg, ref, nodes, shape)
            result = n if result is None else add(result, n)
        for arg in negative:
            n = pointwise_node(arg, ref, nodes, shape)
            result = Neg.make(n) if result is None else sub(result, n)
        return result
    if isinstance(f, sympy.Mul):
        coeff, rest = f.as_coeff_Mul()
        num, den = [], []
        for arg in sympy.Mul.make_args(rest):
            base, exp = arg.as_base_exp()
            if exp.is_number and exp.is_negative:
                den.append(base if exp == -1 else base ** (-exp))
            else:
                num.append(arg)
        num.sort(key=lambda arg: isinstance(arg, sympy.Add))   # s * (1 - s), as books write it
        result = None
        for arg in num:
            n = pointwise_node(arg, ref, nodes, shape)
            result = n if result is None else mul(result, n)
        if result is None:
            result = Broadcast.make(Const.make(abs(coeff) if den else coeff), *shape)
            coeff = sympy.sign(coeff) if den else sympy.Integer(1)
        for arg in den:
            result = div(result, pointwise_node(arg, ref, nodes, shape))
        if coeff == -1:
            return Neg.make(result)
        if coeff != 1:
            return mul(Const.make(coeff), result)
        return result
    if isinstance(f, sympy.Pow):
        base, exp = f.args
        if exp == sympy.Rational(1, 2):
            return Apply.make("sqrt", pointwise_node(base, ref, nodes, shape))
        if exp.is_number and exp.is_negative:
            return div(Broadcast.make(Const.make(1), *shape),
                       pointwise_node(base ** (-exp), ref, nodes, shape))
        return Pow.make(pointwise_node(base, ref, nodes, shape), exp)
    name = SYMPY_TO_NAME.get(f.func)
    if name is not None and len(f.args) == 1:
        return Apply.make(name, pointwise_node(f.args[0], ref, nodes, shape))
    raise UnsupportedError(f"no matcalc function for {f.func} in the derivative {f}")
