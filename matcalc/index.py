"""Index notation: each operation as a SymPy formula for one entry, and contraction terms.

Contract:
- ``LOWERINGS[cls](node, bases, i, j, fresh)`` gives entry (i, j) of ``node`` as a SymPy expression
  over ``IndexedBase`` operands (``bases``) and ``Sum`` s, e.g. ``Z[i,j] = Sum(A[i,q]*B[q,j], q)``.
  An axis of size 1 is indexed by the literal 0, never by a symbol.
- ``to_terms`` turns a SymPy sum of products (what ``sympy.diff`` returns for such formulas) into a
  list of ``Term`` s: a coefficient, factors each with its index pair, Kronecker deltas, and the
  summed indices with their ranges. ``Term.eliminate_deltas`` sums the deltas away.
- ``pointwise_node`` turns a scalar function of same-index entries (``1 - tanh(A[i,j])**2``) back
  into an elementwise node (``1 - tanh(A) ** 2``).
Nothing here decides matrix form; that is ``collapse``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import sympy
from sympy import Indexed, IndexedBase, KroneckerDelta

from .dims import Dim, is_one
from .errors import UnsupportedError
from .expr import (Add, Apply, Broadcast, Const, Det, Diag, Div, Einsum, Inv, LogDet, LogSumExp,
                   MatMul, Mul, Neg, Node, Norm, Norm1, Pow, Softmax, Sub, Sum, Trace, Transpose,
                   add, div, mul, sub)
from .functions import ELEMENTWISE, SYMPY_TO_NAME, absolute

ZERO = sympy.Integer(0)


class Fresh:
    """A source of fresh summation index symbols (q0, q1, ...) and of opaque entries.

    An opaque entry stands for an entry of a whole-matrix function of the operands that has no
    finite index form or that the result should be written in (det(X), inv(X)_ij,
    softmax(X)_ij): ``opaque(label, builder)`` returns an ``IndexedBase`` and records how to
    build its node from the operands (``builder(operands)``), for turning terms back into nodes.
    """

    def __init__(self, prefix: str = "q"):
        self.prefix, self.count = prefix, 0
        self.opaque_bases: dict = {}

    def __call__(self) -> sympy.Symbol:
        s = sympy.Symbol(f"{self.prefix}{self.count}", integer=True)
        self.count += 1
        return s

    def opaque(self, label: str, builder, positive: bool = False) -> IndexedBase:
        for base in self.opaque_bases:
            if base.label.name == label:
                return base
        base = IndexedBase(label, positive=True) if positive else IndexedBase(label)
        self.opaque_bases[base] = builder
        return base


def index_for(d: Dim, symbol):
    """The index to use on an axis of size ``d``: the literal 0 when ``d`` is 1."""
    return ZERO if is_one(d) else symbol


def entry(base: IndexedBase, shape, i, j):
    """``base[i, j]``, with 0 on axes of size 1."""
    return base[index_for(shape[0], i), index_for(shape[1], j)]


def summation(body, index, size: Dim):
    """Sum of ``body`` over ``index`` in 0..size-1 (no sum at all when size is 1)."""
    if is_one(size):
        return body.xreplace({index: ZERO})
    return sympy.Sum(body, (index, 0, size - 1))


Lowering = Callable[[Node, list, object, object, Fresh], sympy.Expr]


def _lower_matmul(node, bases, i, j, fresh):
    (a, b), (A, B) = node.args, bases
    q = fresh()
    return summation(entry(A, a.shape, i, q) * entry(B, b.shape, q, j), q, a.cols)


def _lower_transpose(node, bases, i, j, fresh):
    return entry(bases[0], node.args[0].shape, j, i)


def _elementwise2(op):
    def lower(node, bases, i, j, fresh):
        (a, b), (A, B) = node.args, bases
        return op(entry(A, a.shape, i, j), entry(B, b.shape, i, j))
    return lower


def _lower_neg(node, bases, i, j, fresh):
    return -entry(bases[0], node.args[0].shape, i, j)


def _lower_pow(node, bases, i, j, fresh):
    return entry(bases[0], node.args[0].shape, i, j) ** node.exponent


def _lower_apply(node, bases, i, j, fresh):
    return ELEMENTWISE[node.name].sympy_function(entry(bases[0], node.args[0].shape, i, j))


def _lower_broadcast(node, bases, i, j, fresh):
    # Z_ij = a_i (column), a_j (row) or a (scalar): entry() puts 0 on the size-1 axes of a.
    return entry(bases[0], node.args[0].shape, i, j)


def _lower_sum(node, bases, i, j, fresh):
    a, A = node.args[0], bases[0]
    p, q = fresh(), fresh()
    if node.axis is None:        # Z = sum_pq A_pq
        return summation(summation(entry(A, a.shape, p, q), p, a.rows), q, a.cols)
    if node.axis == 0:           # Z_j = sum_p A_pj
        return summation(entry(A, a.shape, p, i), p, a.rows)
    return summation(entry(A, a.shape, i, q), q, a.cols)   # Z_i = sum_q A_iq


def _lower_trace(node, bases, i, j, fresh):
    a, A = node.args[0], bases[0]
    p = fresh()
    return summation(entry(A, a.shape, p, p), p, a.rows)


def _lower_diag(node, bases, i, j, fresh):
    a, A = node.args[0], bases[0]
    if node.to_matrix:                      # Z_ij = v_i delta_ij
        return entry(A, a.shape, i, 0) * KroneckerDelta(i, j)
    return entry(A, a.shape, i, i)          # Z_i = A_ii


def _lower_norm(node, bases, i, j, fresh):
    a, A = node.args[0], bases[0]
    p, q = fresh(), fresh()                 # ||A|| = sqrt(sum_pq A_pq^2)
    return sympy.sqrt(summation(summation(entry(A, a.shape, p, q) ** 2, p, a.rows), q, a.cols))


def _lower_norm1(node, bases, i, j, fresh):
    a, A = node.args[0], bases[0]
    p, q = fresh(), fresh()                 # ||A||_1 = sum_pq |A_pq|
    return summation(summation(absolute(entry(A, a.shape, p, q)), p, a.rows), q, a.cols)


def _exp_sum(a, A, i, j, axis, fresh):
    """The softmax normaliser at (i, j): sum of exp over all entries, a column, or a row."""
    p, q = fresh(), fresh()
    if axis is None:
        return summation(summation(sympy.exp(entry(A, a.shape, p, q)), p, a.rows), q, a.cols)
    if axis == 0:
        return summation(sympy.exp(entry(A, a.shape, p, j)), p, a.rows)
    return summation(sympy.exp(entry(A, a.shape, i, q)), q, a.cols)


def _lower_softmax(node, bases, i, j, fresh):
    a, A = node.args[0], bases[0]           # Z_ij = exp(A_ij) / sum exp(A)
    return sympy.exp(entry(A, a.shape, i, j)) / _exp_sum(a, A, i, j, node.axis, fresh)


def _lower_logsumexp(node, bases, i, j, fresh):
    a, A = node.args[0], bases[0]
    if node.axis == 0:                      # Z_j = log sum_p exp(A_pj): the entry index is a column
        return sympy.log(_exp_sum(a, A, 0, i, 0, fresh))
    return sympy.log(_exp_sum(a, A, i, 0, node.axis, fresh))


def _lower_det(node, bases, i, j, fresh):
    return _det_entry(node, fresh)


def _lower_logdet(node, bases, i, j, fresh):
    return sympy.log(sympy.Abs(_det_entry(node, fresh)))


def _lower_inv(node, bases, i, j, fresh):
    return _inv_base(node, fresh)[i, j]


def _det_entry(node, fresh):
    return fresh.opaque("det", lambda ops: Det.make(ops[0]))[0, 0]


def _inv_base(node, fresh):
    return fresh.opaque("inv", lambda ops: Inv.make(ops[0]))


def _lower_einsum(node, bases, i, j, fresh):
    subscripts, output = node.params
    letters: dict[str, object] = {}
    out_idx = [i, j]
    for pos, c in enumerate(output):
        letters[c] = out_idx[pos]
    sizes: dict[str, Dim] = {}
    body = sympy.Integer(1)
    for sub_, op, base in zip(subscripts, node.args, bases):
        for c, d in zip(sub_, op.shape):
            sizes[c] = d
            if c not in letters:
                letters[c] = fresh()
        body = body * entry(base, op.shape, letters[sub_[0]], letters[sub_[1]])
    for c, s in letters.items():
        if c not in output:
            body = summation(body, s, sizes[c])
    return body


LOWERINGS: dict[type, Lowering] = {
    MatMul: _lower_matmul,
    Transpose: _lower_transpose,
    Add: _elementwise2(lambda x, y: x + y),
    Sub: _elementwise2(lambda x, y: x - y),
    Mul: _elementwise2(lambda x, y: x * y),
    Div: _elementwise2(lambda x, y: x / y),
    Neg: _lower_neg,
    Pow: _lower_pow,
    Apply: _lower_apply,
    Broadcast: _lower_broadcast,
    Sum: _lower_sum,
    Trace: _lower_trace,
    Einsum: _lower_einsum,
    Diag: _lower_diag,
    Norm: _lower_norm,
    Norm1: _lower_norm1,
    Softmax: _lower_softmax,
    LogSumExp: _lower_logsumexp,
    Det: _lower_det,
    LogDet: _lower_logdet,
    Inv: _lower_inv,
}


# ---------------------------------------------------------------------------------------------
# Operations with no finite index form: d Z_ij / d X_kl written in index form by hand
# ---------------------------------------------------------------------------------------------

def _hand_det(node, bases, i, j, k, l, fresh):
    """d det(X) / d X_kl = det(X) (X^-1)_lk."""
    return _det_entry(node, fresh) * _inv_base(node, fresh)[l, k]


def _hand_logdet(node, bases, i, j, k, l, fresh):
    """d log|det(X)| / d X_kl = (X^-1)_lk."""
    return _inv_base(node, fresh)[l, k]


def _hand_inv(node, bases, i, j, k, l, fresh):
    """d (X^-1)_ij / d X_kl = -(X^-1)_ik (X^-1)_lj."""
    inv = _inv_base(node, fresh)
    return -inv[i, k] * inv[l, j]


HAND_DERIVATIVES: dict[type, Callable] = {Det: _hand_det, LogDet: _hand_logdet, Inv: _hand_inv}


# ---------------------------------------------------------------------------------------------
# Writing derivatives in terms of the operation's own value
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


def _recognize_softmax(node, bases, e, fresh):
    """Write exp(A_ij) / (sum of exp) as softmax(A)_ij: exp(A_ij) = s_ij * S."""
    A = bases[0]
    axis = node.axis
    sums = fresh.opaque("sumexp", lambda ops: _exp_sum_node(ops[0], axis))
    soft = fresh.opaque("softmax", lambda ops: Softmax.make(ops[0], axis))

    def normaliser_index(idx):
        if axis is None:
            return (ZERO, ZERO)
        return (ZERO, idx[1]) if axis == 0 else (idx[0], ZERO)

    def is_normaliser(x):
        if not isinstance(x, sympy.Sum):
            return False
        body = x.function
        return isinstance(body, sympy.exp) and isinstance(body.args[0], Indexed) and \
            body.args[0].base == A

    def to_sums(x):
        idx = tuple(x.function.args[0].indices)
        bound = {lim[0] for lim in x.limits}
        free = tuple(ZERO if t in bound else t for t in idx)
        return sums[normaliser_index(free)]

    e = e.replace(is_normaliser, to_sums)

    def is_entry_exp(x):
        return isinstance(x, sympy.exp) and isinstance(x.args[0], Indexed) and \
            x.args[0].base == A

    def to_softmax(x):
        idx = tuple(x.args[0].indices)
        return soft[idx] * sums[normaliser_index(idx)]

    return e.replace(is_entry_exp, to_softmax)


def _exp_sum_node(a: Node, axis):
    if axis is None:
        return Sum.make(Apply.make("exp", a))
    if axis == 0:
        return Transpose.make(Sum.make(Apply.make("exp", a), 0))
    return Sum.make(Apply.make("exp", a), 1)


def _recognize_norm(node, bases, e, fresh):
    """Write sqrt(sum A_pq^2) as ||A||."""
    A = bases[0]
    norm = fresh.opaque("norm", lambda ops: Norm.make(ops[0]), positive=True)

    def is_square_sum(x):
        return isinstance(x, sympy.Sum) and isinstance(x.function, sympy.Pow) and \
            x.function.exp == 2 and isinstance(x.function.base, Indexed) and \
            x.function.base.base == A

    return e.replace(is_square_sum, lambda x: norm[0, 0] ** 2)


RECOGNIZERS: dict[type, Callable] = {
    Softmax: _recognize_softmax,
    LogSumExp: _recognize_softmax,
    Norm: _recognize_norm,
}


def lower(node: Node, bases: list, i, j, fresh: Fresh) -> sympy.Expr:
    """Entry (i, j) of ``node`` in index notation over the operand ``bases``."""
    try:
        rule = LOWERINGS[type(node)]
    except KeyError:
        raise UnsupportedError(f"no index form for {type(node).__name__}") from None
    return rule(node, bases, i, j, fresh)


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
