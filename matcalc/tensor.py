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
remain), printed as einsum text, as index-notation LaTeX, and as NumPy code building the array.

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
from .printing.latex import latex_name, to_latex
from .printing.numpy import Output, numpy_source
from .printing.text import POSTFIX, TextPrinter, to_text
from .simplify import simplify

#: The tensor's own indices: entry (i, j) of f, entry (k, l) of x.
I, J, K, L = sympy.symbols("i j k l", integer=True)
#: Letters for indices summed inside a term (and for axes of size 1, summed over one value).
SUM_LETTERS = "pqrstuvwabcdefghmnoxyz"
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

    # -- text ------------------------------------------------------------------------------------
    def _einsum_parts(self, term: TensorTerm) -> tuple[str, list]:
        """The einsum subscripts of a term and its operands, each ``(node, form)`` with form
        "matrix", "column" or "row" (an axis of size 1 has no subscript: a column is read as a
        1-D array), or "ones": a ones vector added for an output index no factor has, so the
        term is repeated along it. Scalar factors are not operands (they multiply the einsum)."""
        factors = [f for f in term.factors if f[1] != (ZERO, ZERO)]
        present = {x for _, idx in factors for x in idx}
        ones = []
        for x in self.axes:
            if x not in present:
                ones.append((E.ones(self.sizes[x], 1), (x, ZERO)))
        letters = {x: str(x) for x in self.axes}
        pool = iter(c for c in SUM_LETTERS if c not in letters.values())
        subscripts, operands = [], []
        for node, idx in factors + ones:
            sub = ""
            for x in idx:
                if x != ZERO:
                    if x not in letters:
                        letters[x] = next(pool)
                    sub += letters[x]
            form = {(False, False): "matrix", (False, True): "column", (True, False): "row",
                    (True, True): "scalar"}[(idx[0] == ZERO, idx[1] == ZERO)]
            subscripts.append(sub)
            operands.append((node, "ones" if (node, idx) in ones else form))
        output = "".join(letters[x] for x in self.axes)
        return f"{','.join(subscripts)}->{output}", operands

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        dims = "×".join(str(d) for d in self.shape)
        return f"<IndexTensor {self.to_text()} : {dims}>"

    def to_text(self) -> str:
        """The tensor as a sum of ``numpy.einsum`` calls over matcalc expressions."""
        parts = []
        for term in self.terms:
            spec, operands = self._einsum_parts(term)
            call = f'einsum("{spec}", {", ".join(_operand_text(n) for n, _ in operands)})'
            scalars = [_scalar_text(n) for n, idx in term.factors if idx == (ZERO, ZERO)]
            parts.append((term.coeff, " * ".join(scalars + [call])))
        return _join_signed(parts)

    def kronecker_text(self) -> str | None:
        """The Kronecker form as text (``kron(B.T, A)``), or None when there is none."""
        if self.kronecker is None:
            return None
        return _join_signed([(t.coeff, _kron_text(t)) for t in self.kronecker])

    # -- LaTeX -----------------------------------------------------------------------------------
    def lhs_latex(self) -> str:
        f, x = latex_name(self.f_label), latex_name(self.x_label)
        i, j, k, l = (_index_latex(v) for v in self.out)
        if self.hessian:
            return rf"\frac{{\partial^2 f}}{{\partial {x}_{{{i}{j}}}\,\partial {x}_{{{k}{l}}}}}"
        return rf"\frac{{\partial {f}_{{{i}{j}}}}}{{\partial {x}_{{{k}{l}}}}}"

    def index_latex(self) -> str:
        """The right-hand side in index notation: sums of products of entries and deltas."""
        parts = []
        for term in self.terms:
            names = {s: SUM_LETTERS[n] for n, s in enumerate(term.summed)}
            body = " ".join(_entry_latex(node, idx, names) for node, idx in term.factors) or "1"
            if term.summed:
                body = rf"\sum_{{{''.join(names[s] for s in term.summed)}}} " + body
            parts.append((term.coeff, body))
        return _join_signed(parts, latex=True)

    def kronecker_latex(self) -> str | None:
        if self.kronecker is None:
            return None
        return _join_signed([(t.coeff, _kron_latex(t)) for t in self.kronecker], latex=True)

    def vec_lhs_latex(self) -> str:
        f, x = latex_name(self.f_label), latex_name(self.x_label)
        if self.hessian:
            return (rf"\frac{{\partial^2 f}}{{\partial \operatorname{{vec}}({x})\,"
                    rf"\partial \operatorname{{vec}}({x})^{{\top}}}}")
        return (rf"\frac{{\partial \operatorname{{vec}}({f})}}"
                rf"{{\partial \operatorname{{vec}}({x})^{{\top}}}}")

    def equations(self) -> list[str]:
        """The index form, and the Kronecker form when there is one, as LaTeX equations."""
        out = [f"{self.lhs_latex()} = {self.index_latex()}"]
        if self.kronecker is not None:
            out.append(f"{self.vec_lhs_latex()} = {self.kronecker_latex()}")
        return out

    def to_latex(self) -> str:
        return r" \qquad ".join(self.equations())

    # -- code ------------------------------------------------------------------------------------
    def numpy_source(self, inputs: list[E.Var], name: str, doc: str, layout: str = "tensor") -> str:
        """A function of ``inputs`` returning the tensor (``layout="tensor"``: an array with
        ``axes``) or its Kronecker form (``layout="vec"``: the (p q) x (m n) matrix)."""
        if layout not in ("tensor", "vec"):
            raise UnsupportedError(f"layout must be 'tensor' or 'vec', not {layout!r}")
        if layout == "vec":
            if self.kronecker is None:
                raise UnsupportedError("this derivative has no Kronecker form (some term mixes "
                                       "the indices of the two factors); use layout='tensor'")
            nodes = [n for t in self.kronecker
                     for n in _coeff_nodes(t.coeff) + [t.left, t.right]]
            return numpy_source([Output(n, "operand") for n in nodes], inputs, name, doc,
                                finish=self._finish_vec)
        nodes = [n for term in self.terms for n in self._code_operands(term)]
        if not self.terms:            # a zero tensor: its dimensions still come from somewhere
            nodes = [E.ones(d, 1) for d in self.shape]
        return numpy_source([Output(n, "operand") for n in nodes], inputs, name, doc,
                            finish=self._finish_tensor)

    def _code_operands(self, term: TensorTerm, operands: list | None = None) -> list[E.Node]:
        """The nodes the code of one term computes: a coefficient in dimensions, its scalars,
        then the einsum operands (``operands`` when already made by ``_einsum_parts``)."""
        if operands is None:
            operands = self._einsum_parts(term)[1]
        scalars = [n for n, idx in term.factors if idx == (ZERO, ZERO)]
        return _coeff_nodes(term.coeff) + scalars + [n for n, _ in operands]

    def _finish_tensor(self, texts: list[str], printer) -> list[str]:
        """``T = einsum(...)``, ``T += ...``: one line per term. ``texts`` are the printed
        operands, in the order of ``_code_operands``."""
        np, names = printer.np, printer.names
        result = names.get("T")

        def paren(t: str) -> str:
            return t if t.isidentifier() else f"({t})"

        read = {"matrix": lambda t: t, "column": lambda t: f"{paren(t)}[:, 0]",
                "row": lambda t: f"{paren(t)}[0, :]", "scalar": lambda t: f"{np}.reshape({t}, ())"}
        lines, position = [], 0
        for n, term in enumerate(self.terms):
            spec, operands = self._einsum_parts(term)
            count = len(self._code_operands(term, operands))
            mine = iter(texts[position:position + count])
            position += count
            scale = read["scalar"](next(mine)) if _coeff_nodes(term.coeff) else \
                _coeff_code(term.coeff, printer)
            scalars = [read["scalar"](next(mine)) for _, idx in term.factors
                       if idx == (ZERO, ZERO)]
            given = [read["column" if form == "ones" else form](next(mine))
                     for _, form in operands]
            call = " * ".join(scalars + [f'{np}.einsum("{spec}", {", ".join(given)}, '
                                         f'optimize=True)'])
            value = call if scale is None else f"{scale} * {call}"
            lines.append(f"{result} {'=' if n == 0 else '+='} {value}")
        if not self.terms:
            shape = ", ".join(printer.dim(d) for d in self.shape)
            lines.append(f"{result} = {np}.zeros(({shape}{',' if len(self.shape) == 1 else ''}),"
                         f" {printer.typed()})")
        return lines + [f"return {result}"]

    def _finish_vec(self, texts: list[str], printer) -> list[str]:
        np, names = printer.np, printer.names
        result = names.get("T")
        lines, texts = [], iter(texts)
        for n, term in enumerate(self.kronecker):
            scale = f"{np}.reshape({next(texts)}, ())" if _coeff_nodes(term.coeff) else \
                _coeff_code(term.coeff, printer)
            left, right = next(texts), next(texts)
            left, right = (f"{np}.reshape({t}, (1, 1))" if node.is_scalar else t
                           for t, node in ((left, term.left), (right, term.right)))
            call = f"{np}.kron({left}, {right})"
            lines.append(f"{result} {'=' if n == 0 else '+='} "
                         f"{call if scale is None else f'{scale} * {call}'}")
        if not self.kronecker:
            rows = " * ".join(printer.dim(d) for d in self.f_shape[::-1] if not is_one(d)) or "1"
            cols = " * ".join(printer.dim(d) for d in self.x_shape[::-1] if not is_one(d)) or "1"
            lines.append(f"{result} = {np}.zeros(({rows}, {cols}), {printer.typed()})")
        return lines + [f"return {result}"]


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
    """A factor such as det(X) (X^-1)_lk (X^-1)_ji + ... mixes index pairs: multiplied out, each
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
        inner = node.args[0]                 # det(X) * ones(n, n) is the scalar det(X)
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


# ---------------------------------------------------------------------------------------------
# Printing helpers
# ---------------------------------------------------------------------------------------------

def _kron_text(t: KroneckerTerm) -> str:
    """kron(L, R); a 1 x 1 side (a vector of a vector) is a scalar factor."""
    if t.left.is_scalar or t.right.is_scalar:
        return " * ".join(to_text(n) for n in (t.left, t.right) if not _is_one(n)) or "1"
    return f"kron({to_text(t.left)}, {to_text(t.right)})"


def _kron_latex(t: KroneckerTerm) -> str:
    if t.left.is_scalar or t.right.is_scalar:
        kept = [n for n in (t.left, t.right) if not _is_one(n)]
        if len(kept) == 1:
            return to_latex(kept[0])
        return r" \, ".join(_wrapped_latex(n) for n in kept) or "1"
    return rf"{_wrapped_latex(t.left)} \otimes {_wrapped_latex(t.right)}"


def _is_one(node: E.Node) -> bool:
    return E.constant_value(node) == 1


def _scalar_text(node: E.Node) -> str:
    """A scalar factor beside ``*``: a name, a number or a call as it is, anything else in
    parentheses."""
    printed = TextPrinter().print_all([node])[0]
    return printed.text if printed.prec >= POSTFIX or isinstance(node, E.Const) \
        else f"({printed.text})"


def _operand_text(node: E.Node) -> str:
    if isinstance(node, E.Eye):
        return f"eye({node.params[0]})"
    return to_text(node)


def _join_signed(parts: list, latex: bool = False) -> str:
    """``c1 * t1 + c2 * t2 - ...`` with the coefficients' signs in the joins."""
    out = ""
    for coeff, text in parts:
        negative = coeff.could_extract_minus_sign()
        c = -coeff if negative else coeff
        scaled = text if c == 1 else (rf"{sympy.latex(c)} \, {text}" if latex
                                      else f"{_coeff_text(c)} * {text}")
        if not out:
            out = ("-" if negative else "") + scaled
        else:
            out += (" - " if negative else " + ") + scaled
    return out or "0"


def _coeff_text(c: sympy.Expr) -> str:
    text = str(c)
    return text if c.is_Atom else f"({text})"


def _coeff_nodes(coeff: sympy.Expr) -> list[E.Node]:
    """A coefficient with dimensions in it (2 n) is printed as a node, so the code binds them."""
    return [E.Const.make(coeff)] if coeff.free_symbols else []


def _coeff_code(coeff: sympy.Expr, printer) -> str | None:
    if coeff == 1:
        return None
    text, _ = printer.number(coeff)
    return f"({text})"


def _index_latex(x) -> str:
    return "" if x == ZERO else str(x)


def _entry_latex(node: E.Node, idx: tuple, names: dict) -> str:
    sub = "".join(names.get(x, str(x)) for x in idx if x != ZERO)
    if isinstance(node, E.Eye):
        return rf"\delta_{{{sub}}}"
    if idx == (ZERO, ZERO):
        return _wrapped_latex(node)
    if isinstance(node, E.Var):
        return f"{latex_name(node.name)}_{{{sub}}}"
    return rf"\left({to_latex(node)}\right)_{{{sub}}}"


def _wrapped_latex(node: E.Node) -> str:
    text = to_latex(node)
    if isinstance(node, (E.Var, E.Eye, E.Const, E.Transpose, E.Broadcast)):
        return text
    return rf"\left({text}\right)"
