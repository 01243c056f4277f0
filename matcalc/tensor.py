"""Derivatives with no matrix form: index (einsum) expressions and Kronecker products.

Contract: the Jacobian of a matrix-valued f (p x q) with respect to a matrix x (m x n) has four
indices, ``T[i, j, k, l] = d f_ij / d x_kl`` (axes of size 1 dropped, so a vector x gives
``T[i, j, k]``, and a vector f of a vector x the usual m x n Jacobian); the Hessian of a scalar
with respect to a matrix X is the Jacobian of its gradient, ``H[i, j, k, l] = d^2 f / dX_ij dX_kl``.
``jacobian_tensor(f, x)`` reads T off the engine's own vector-Jacobian product: the VJP with a
symbolic upstream G of f's shape is linear in G,

    V(G)_kl = sum_ij T[i, j, k, l] G_ij,

so V is lowered to index notation, differentiated with respect to G_ij by SymPy (Kronecker deltas
for each G entry), the deltas are summed away and each term's contractions are collapsed into
matrix products as far as they go (``collapse.contract``). What is left is an ``IndexTensor``: a
sum of terms ``c * prod_f F[a, b]`` over matrix-form factors (identities for the deltas that
remain), printed (by ``printing.tensor``) as einsum text, as index-notation LaTeX, and as NumPy
code building the array.

Where every term splits into a factor indexed by (i, k) and one indexed by (j, l), the tensor is
also a sum of Kronecker products in the column-major vec layout of the Matrix Cookbook
(vec(A X B) = (B^T kron A) vec(X)): ``d vec(f) / d vec(x)^T = sum c * L kron R`` with L_jl and R_ik
(``IndexTensor.kronecker``). Otherwise it is None: a Kronecker form is offered only where it is
unambiguous.

>>> from matcalc.expr import Var
>>> A = Var.make("A", ("p", "m")); X = Var.make("X", ("m", "n")); B = Var.make("B", ("n", "q"))
>>> T = jacobian_tensor(A @ X @ B, X)
>>> str(T)
'einsum("ik,lj->ijkl", A, B)'
>>> T.kronecker_text()
'kron(B.T, A)'
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy
from sympy import Indexed, IndexedBase

from . import expr as E
from .collapse import collapse, contract
from .dims import ONE, is_one
from .errors import UnsupportedError
from .index import (ZERO, Fresh, Term, entry, factor_indices, index_for, lower,
                    pointwise_node, sum_inner_deltas, to_terms)
from .pipeline import differentiate
from .printing.tensor import (kronecker_text, tensor_equations, tensor_latex,
                              tensor_numpy_source, tensor_text)
from .simplify import simplify

#: The tensor's own indices: entry (i, j) of f, entry (k, l) of x.
I, J, K, L = sympy.symbols("i j k l", integer=True)
#: Most terms a tensor may have before the read-off refuses (each is an einsum in the code).
MAX_TERMS = 64
#: Most operations lowered to index notation (a value shared by many uses is lowered at each).
MAX_LOWERINGS = 2_000


@dataclass(frozen=True)
class TensorTerm:
    """``coeff * prod(node[a, b] for node, (a, b) in factors)``, summed over ``summed``."""

    coeff: sympy.Expr
    factors: tuple          # (node, (a, b)); a or b may be 0 for an axis of size 1
    summed: tuple           # indices summed that no matrix product could absorb


@dataclass(frozen=True)
class KroneckerTerm:
    """``coeff * kron(left, right)``: left indexed by (j, l), right by (i, k)."""

    coeff: sympy.Expr
    left: E.Node
    right: E.Node


class IndexTensor:
    """``T[i, j, k, l] = d f_ij / d x_kl`` as a sum of ``TensorTerm`` s (see the module doc).

    ``axes`` are the indices the array has (those of size 1 dropped), ``shape`` their sizes;
    ``str()`` is einsum text, ``to_latex()`` index notation (with the Kronecker form when there
    is one), ``kronecker`` the Kronecker terms or None.
    """

    def __init__(self, terms: list[TensorTerm], f_shape: tuple, x_shape: tuple, sizes: dict,
                 f_label: str = "f", x_label: str = "x", hessian: bool = False):
        self.terms = tuple(terms)
        self.f_shape, self.x_shape, self.sizes = tuple(f_shape), tuple(x_shape), dict(sizes)
        self.f_label, self.x_label, self.hessian = f_label, x_label, hessian
        out = (index_for(f_shape[0], I), index_for(f_shape[1], J),
               index_for(x_shape[0], K), index_for(x_shape[1], L))
        self.out = out
        self.axes = tuple(x for x in out if x != ZERO)
        self.shape = tuple(sizes[x] for x in self.axes)
        self.kronecker = _kronecker(self.terms, out, sizes)

    # -- reading ---------------------------------------------------------------------------------
    def as_matrix(self) -> E.Node | None:
        """For a vector f of a vector x (at most two axes), the m x n Jacobian as one node."""
        i, j, k, l = self.out
        if j != ZERO or l != ZERO:
            return None
        result = None
        for t in self.terms:
            part = collapse(list(t.factors), (i, k), self.sizes, list(t.summed), t.coeff)
            result = part if result is None else E.add(result, part)
        if result is None:
            return E.zeros(self.f_shape[0], self.x_shape[0])
        return simplify(result)

    # -- printing (matcalc.printing.tensor) -----------------------------------------------------
    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        dims = "×".join(str(d) for d in self.shape)
        return f"<IndexTensor {self.to_text()} : {dims}>"

    def to_text(self) -> str:
        """The tensor as a sum of ``numpy.einsum`` calls over matcalc expressions."""
        return tensor_text(self)

    def kronecker_text(self) -> str | None:
        """The Kronecker form as text (``kron(B.T, A)``), or None when there is none."""
        return kronecker_text(self)

    def equations(self) -> list[str]:
        """The index form, and the Kronecker form when there is one, as LaTeX equations."""
        return tensor_equations(self)

    def to_latex(self) -> str:
        """The equations as one line of LaTeX."""
        return tensor_latex(self)

    def numpy_source(self, inputs: list[E.Var], name: str, doc: str, layout: str = "tensor") -> str:
        """A function of ``inputs`` returning the tensor (``layout="tensor"``: an array with
        ``axes``) or its Kronecker form (``layout="vec"``: the (p q) x (m n) matrix)."""
        return tensor_numpy_source(self, inputs, name, doc, layout)


# ---------------------------------------------------------------------------------------------
# Reading the tensor off a vector-Jacobian product
# ---------------------------------------------------------------------------------------------

def jacobian_tensor(f: E.Node, x: E.Node, f_label: str = "f", x_label: str | None = None,
                    hessian: bool = False) -> IndexTensor:
    """``T[i, j, k, l] = d f_ij / d x_kl`` read off the vector-Jacobian product of f."""
    taken = {v.name for v in E.postorder([f, x]) if isinstance(v, E.Var)}
    g = E.Var.make(E.fresh_name("G", taken), f.shape, check_name=False)
    vjp = differentiate(f, [x], g).gradients[0]       # sum_ij T_ijkl G_ij
    if x_label is None:
        x_label = x.name if isinstance(x, E.Var) else "x"
    return read_off(vjp, g, x, f_label, x_label, hessian)


def read_off(vjp: E.Node, g: E.Var, x: E.Node, f_label: str = "f", x_label: str = "x",
             hessian: bool = False) -> IndexTensor:
    """The tensor T with ``vjp_kl = sum_ij T[i, j, k, l] g_ij`` (vjp linear in g)."""
    fresh = Fresh()
    leaves: dict = {}
    gbase = IndexedBase("G")
    k, l = index_for(x.rows, K), index_for(x.cols, L)
    lowered = _lower_tree(vjp, k, l, g, gbase, leaves, fresh)
    if fresh.opaque_bases:
        raise UnsupportedError("the derivative's index form needs a whole-matrix function of "
                               "the upstream gradient; no tensor form")
    derivative = sum_inner_deltas(sympy.diff(lowered, entry(gbase, g.shape, I, J)))
    if derivative.has(gbase):
        raise UnsupportedError("the vector-Jacobian product is not linear in its upstream "
                               "gradient; no tensor form")
    sizes = {s: d for s, d in ((I, g.rows), (J, g.cols), (K, x.rows), (L, x.cols))
             if not is_one(d)}
    nodes = {base: node for node, base in leaves.items()}
    terms = []
    for term in (part for whole in to_terms(derivative) for part in _split_mixed(whole)):
        term.eliminate_deltas()
        if term.coeff == 0:
            continue
        sizes.update(term.summed)
        factors = []
        for fac in term.factors:
            idx = factor_indices(fac)
            shape = tuple(ONE if y == ZERO else sizes[y] for y in idx)
            factors.append((simplify(pointwise_node(fac, idx, nodes, shape)), idx))
        for a, b in term.deltas:
            factors.append((E.Eye.make(sizes[a]), (a, b)))
        facs, summed, coeff = contract(factors, list(term.summed), sizes, term.coeff)
        kept = []
        for node, idx in facs:
            node = simplify(node)
            value = E.constant_value(node)
            if value is not None:              # 2 * ones(n, n) at (k, l) is the number 2
                coeff = coeff * value
            else:
                kept.append(_oriented(node, idx, summed))
        terms.append(TensorTerm(coeff, tuple(kept), tuple(summed)))
        if len(terms) > MAX_TERMS:
            raise UnsupportedError(f"the derivative has more than {MAX_TERMS} index terms; "
                                   "use hvp() for a Hessian-vector product instead")
    return IndexTensor(_merge_terms(terms), g.shape, x.shape, sizes, f_label, x_label, hessian)


def _elementwise(f: sympy.Expr) -> bool:
    """Whether a factor's entries share one index pair (so it is one elementwise node)."""
    try:
        factor_indices(f)
    except UnsupportedError:
        return False
    return True


def _split_mixed(term: Term) -> list[Term]:
    """A factor such as c(X) (X^-1)_lk (X^-1)_ji + ... mixes index pairs: multiplied out, each
    product is a term of its own."""
    mixed = [f for f in term.factors if not _elementwise(f)]
    if not mixed:
        return [term]
    kept = [f for f in term.factors if _elementwise(f)]
    out = []
    product = sympy.expand(sympy.Mul(*mixed))
    for part in (t for arg in sympy.Add.make_args(product) for t in to_terms(arg)):
        if not all(_elementwise(f) for f in part.factors):
            raise UnsupportedError("the derivative has a factor that is a function of entries "
                                   "with different indices; no tensor form")
        out.append(Term(term.coeff * part.coeff, kept + part.factors,
                        list(term.deltas) + part.deltas, {**term.summed, **part.summed}))
    return out


def _lower_tree(node: E.Node, r, c, g: E.Var, gbase, leaves: dict, fresh: Fresh):
    """Entry (r, c) of ``node`` in index notation, down to g and to leaves without g."""
    if node is g:
        return entry(gbase, g.shape, r, c)
    if isinstance(node, E.Broadcast) and not (isinstance(node.args[0], E.Const)):
        inner = node.args[0]                 # c * ones(n, n) is the scalar c
        return _lower_tree(inner, r if not is_one(inner.rows) else ZERO,
                           c if not is_one(inner.cols) else ZERO, g, gbase, leaves, fresh)
    if not E.contains(node, g):
        base = leaves.get(node)
        if base is None:
            base = leaves[node] = IndexedBase(f"T{len(leaves)}")
        return entry(base, node.shape, r, c)
    placeholders = [IndexedBase(f"_P{fresh.count}_{p}") for p in range(len(node.args))]
    fresh.count += 1
    if fresh.count > MAX_LOWERINGS:
        raise UnsupportedError(f"the derivative's index form is too large (more than "
                               f"{MAX_LOWERINGS} operations); use hvp() for a Hessian-vector "
                               "product, which has a matrix form")
    form = lower(node, placeholders, r, c, fresh)
    where = {base: arg for base, arg in zip(placeholders, node.args)}
    return form.replace(
        lambda e: isinstance(e, Indexed) and e.base in where,
        lambda e: _lower_tree(where[e.base], e.indices[0], e.indices[1], g, gbase, leaves,
                              fresh))


def _transposes(node: E.Node) -> int:
    return sum(isinstance(n, E.Transpose) for n in E.postorder([node]))


def _oriented(node: E.Node, idx: tuple, summed: list) -> tuple[E.Node, tuple]:
    """The factor read the way with fewer transposes (A_ik rather than (A^T)_ki); on a tie,
    with its indices in the order i, j, k, l, then summed ones."""
    if idx[0] == idx[1] or isinstance(node, E.Eye) and ZERO not in idx:
        return node, idx
    order = [I, J, K, L] + list(summed)
    flipped = simplify(E.Transpose.make(node)), idx[::-1]

    def score(option):
        n, (a, b) = option
        rank = [order.index(x) if x in order else len(order) for x in (a, b)]
        return (_transposes(n), a == ZERO, rank[0] > rank[1])

    return min([(node, idx), flipped], key=score)


def _merge_terms(terms: list[TensorTerm]) -> list[TensorTerm]:
    """Like terms combined: the same factors add their coefficients (A_ik + A_ik = 2 A_ik), and
    terms that differ in one factor at the same indices add that factor
    (a_kl d_ik d_jl + b_kl d_ik d_jl = (a + b)_kl d_ik d_jl). Decreases: the number of terms."""
    merged: dict = {}
    for t in terms:
        key = (t.factors, t.summed)
        merged[key] = merged.get(key, 0) + t.coeff
    out = [TensorTerm(c, f, s) for (f, s), c in merged.items() if c != 0]
    changed = True
    while changed:
        changed = False
        for a in range(len(out)):
            for b in range(a + 1, len(out)):
                joined = _join(out[a], out[b])
                if joined is not None:
                    out[a] = joined
                    del out[b]
                    changed = True
                    break
            if changed:
                break
    return out


def _join(s: TensorTerm, t: TensorTerm) -> TensorTerm | None:
    """One term for s + t when they differ in exactly one non-identity factor, at the same
    indices; None otherwise."""
    if s.summed != t.summed or len(s.factors) != len(t.factors) or s.summed:
        return None
    rest_t = list(t.factors)
    odd_s = []
    for fac in s.factors:
        if fac in rest_t:
            rest_t.remove(fac)
        else:
            odd_s.append(fac)
    if len(odd_s) != 1 or len(rest_t) != 1 or odd_s[0][1] != rest_t[0][1]:
        return None
    (u, idx), (v, _) = odd_s[0], rest_t[0]
    if isinstance(u, E.Eye) or isinstance(v, E.Eye):
        return None
    combined = simplify(E.add(E.mul(E.Const.make(s.coeff), u), E.mul(E.Const.make(t.coeff), v)))
    factors = list(s.factors)
    factors[factors.index(odd_s[0])] = (combined, idx)    # one occurrence: u may repeat (u u)
    return TensorTerm(sympy.Integer(1), tuple(factors), s.summed)


def _kronecker(terms, out: tuple, sizes: dict) -> list[KroneckerTerm] | None:
    """Each term as coeff * kron(L, R), L indexed by (j, l), R by (i, k); None if one mixes."""
    i, j, k, l = out
    rows, cols = {i, k} - {ZERO}, {j, l} - {ZERO}
    result = []
    for t in terms:
        if t.summed:
            return None
        left, right = [], []
        for node, idx in t.factors:
            used = set(idx) - {ZERO}
            if used and used <= rows:
                right.append((node, idx))
            elif used <= cols:
                left.append((node, idx))
            else:
                return None
        result.append(KroneckerTerm(t.coeff, simplify(collapse(left, (j, l), sizes, [])),
                                    simplify(collapse(right, (i, k), sizes, []))))
    return result

