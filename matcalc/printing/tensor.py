"""Printing derivatives with no matrix form: index tensors as einsum text, LaTeX and NumPy code.

Contract: an ``IndexTensor`` (``matcalc.tensor``: ``T[i, j, k, l] = d f_ij / d x_kl`` as a sum
of terms ``coeff * prod F[a, b]`` over matrix-form factors, with its Kronecker terms where every
term splits) is printed here, by functions of the tensor: ``tensor_text`` (a sum of
``numpy.einsum`` calls over matcalc expressions), ``kronecker_text`` (``kron(B.T, A)``), the
LaTeX equations (index notation, and the Kronecker form in column-major vec layout), and
``tensor_numpy_source`` (one ``np.einsum`` per term, or ``np.kron`` with ``layout="vec"``). Each
factor prints through the text, LaTeX and NumPy printers, as everywhere else.
"""

from __future__ import annotations

import functools

import sympy

from .. import expr as E
from ..dims import is_one
from ..errors import UnsupportedError
from ..notation import ZERO
from .latex import latex_name, to_latex
from .numpy import Output, numpy_source
from .text import POSTFIX, TextPrinter, to_text

#: Letters for indices summed inside a term (and for axes of size 1, summed over one value).
SUM_LETTERS = "pqrstuvwabcdefghmnoxyz"


def einsum_parts(tensor, term) -> tuple[str, list]:
    """The einsum subscripts of a term and its operands, each ``(node, form)`` with form
    "matrix", "column" or "row" (an axis of size 1 has no subscript: a column is read as a
    1-D array), or "ones": a ones vector added for an output index no factor has, so the
    term is repeated along it. Scalar factors are not operands (they multiply the einsum)."""
    factors = [f for f in term.factors if f[1] != (ZERO, ZERO)]
    present = {x for _, idx in factors for x in idx}
    ones = []
    for x in tensor.axes:
        if x not in present:
            ones.append((E.ones(tensor.sizes[x], 1), (x, ZERO)))
    letters = {x: str(x) for x in tensor.axes}
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
    output = "".join(letters[x] for x in tensor.axes)
    return f"{','.join(subscripts)}->{output}", operands


def tensor_text(tensor) -> str:
    """The tensor as a sum of ``numpy.einsum`` calls over matcalc expressions."""
    parts = []
    for term in tensor.terms:
        spec, operands = einsum_parts(tensor, term)
        call = f'einsum("{spec}", {", ".join(_operand_text(n) for n, _ in operands)})'
        scalars = [_scalar_text(n) for n, idx in term.factors if idx == (ZERO, ZERO)]
        parts.append((term.coeff, " * ".join(scalars + [call])))
    return _join_signed(parts)


def kronecker_text(tensor) -> str | None:
    """The Kronecker form as text (``kron(B.T, A)``), or None when there is none."""
    if tensor.kronecker is None:
        return None
    return _join_signed([(t.coeff, _kron_text(t)) for t in tensor.kronecker])


# -- LaTeX -----------------------------------------------------------------------------------

def lhs_latex(tensor) -> str:
    f, x = latex_name(tensor.f_label), latex_name(tensor.x_label)
    i, j, k, l = (_index_latex(v) for v in tensor.out)
    if tensor.hessian:
        return rf"\frac{{\partial^2 f}}{{\partial {x}_{{{i}{j}}}\,\partial {x}_{{{k}{l}}}}}"
    return rf"\frac{{\partial {f}_{{{i}{j}}}}}{{\partial {x}_{{{k}{l}}}}}"


def index_latex(tensor) -> str:
    """The right-hand side in index notation: sums of products of entries and deltas."""
    parts = []
    for term in tensor.terms:
        names = {s: SUM_LETTERS[n] for n, s in enumerate(term.summed)}
        body = " ".join(_entry_latex(node, idx, names) for node, idx in term.factors) or "1"
        if term.summed:
            body = rf"\sum_{{{''.join(names[s] for s in term.summed)}}} " + body
        parts.append((term.coeff, body))
    return _join_signed(parts, latex=True)


def kronecker_latex(tensor) -> str | None:
    if tensor.kronecker is None:
        return None
    return _join_signed([(t.coeff, _kron_latex(t)) for t in tensor.kronecker], latex=True)


def vec_lhs_latex(tensor) -> str:
    f, x = latex_name(tensor.f_label), latex_name(tensor.x_label)
    if tensor.hessian:
        return (rf"\frac{{\partial^2 f}}{{\partial \operatorname{{vec}}({x})\,"
                rf"\partial \operatorname{{vec}}({x})^{{\top}}}}")
    return (rf"\frac{{\partial \operatorname{{vec}}({f})}}"
            rf"{{\partial \operatorname{{vec}}({x})^{{\top}}}}")


def tensor_equations(tensor) -> list[str]:
    """The index form, and the Kronecker form when there is one, as LaTeX equations."""
    out = [f"{lhs_latex(tensor)} = {index_latex(tensor)}"]
    if tensor.kronecker is not None:
        out.append(f"{vec_lhs_latex(tensor)} = {kronecker_latex(tensor)}")
    return out


def tensor_latex(tensor) -> str:
    return r" \qquad ".join(tensor_equations(tensor))


# -- code ------------------------------------------------------------------------------------

def tensor_numpy_source(tensor, inputs: list[E.Var], name: str, doc: str, layout: str = "tensor") -> str:
    """A function of ``inputs`` returning the tensor (``layout="tensor"``: an array with
    ``axes``) or its Kronecker form (``layout="vec"``: the (p q) x (m n) matrix)."""
    if layout not in ("tensor", "vec"):
        raise UnsupportedError(f"layout must be 'tensor' or 'vec', not {layout!r}")
    if layout == "vec":
        if tensor.kronecker is None:
            raise UnsupportedError("this derivative has no Kronecker form (some term mixes "
                                   "the indices of the two factors); use layout='tensor'")
        nodes = [n for t in tensor.kronecker
                 for n in _coeff_nodes(t.coeff) + [t.left, t.right]]
        return numpy_source([Output(n, "operand") for n in nodes], inputs, name, doc,
                            finish=functools.partial(_finish_vec, tensor))
    nodes = [n for term in tensor.terms for n in _code_operands(tensor, term)]
    if not tensor.terms:            # a zero tensor: its dimensions still come from somewhere
        nodes = [E.ones(d, 1) for d in tensor.shape]
    return numpy_source([Output(n, "operand") for n in nodes], inputs, name, doc,
                        finish=functools.partial(_finish_tensor, tensor))


def _code_operands(tensor, term, operands: list | None = None) -> list[E.Node]:
    """The nodes the code of one term computes: a coefficient in dimensions, its scalars,
    then the einsum operands (``operands`` when already made by ``_einsum_parts``)."""
    if operands is None:
        operands = einsum_parts(tensor, term)[1]
    scalars = [n for n, idx in term.factors if idx == (ZERO, ZERO)]
    return _coeff_nodes(term.coeff) + scalars + [n for n, _ in operands]


def _finish_tensor(tensor, texts: list[str], printer) -> list[str]:
    """``T = einsum(...)``, ``T += ...``: one line per term. ``texts`` are the printed
    operands, in the order of ``_code_operands``."""
    np, names = printer.np, printer.names
    result = names.get("T")

    def paren(t: str) -> str:
        return t if t.isidentifier() else f"({t})"

    read = {"matrix": lambda t: t, "column": lambda t: f"{paren(t)}[:, 0]",
            "row": lambda t: f"{paren(t)}[0, :]", "scalar": lambda t: f"{np}.reshape({t}, ())"}
    lines, position = [], 0
    for n, term in enumerate(tensor.terms):
        spec, operands = einsum_parts(tensor, term)
        count = len(_code_operands(tensor, term, operands))
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
    if not tensor.terms:
        shape = ", ".join(printer.dim(d) for d in tensor.shape)
        lines.append(f"{result} = {np}.zeros(({shape}{',' if len(tensor.shape) == 1 else ''}),"
                     f" {printer.typed()})")
    return lines + [f"return {result}"]


def _finish_vec(tensor, texts: list[str], printer) -> list[str]:
    np, names = printer.np, printer.names
    result = names.get("T")
    lines, texts = [], iter(texts)
    for n, term in enumerate(tensor.kronecker):
        scale = f"{np}.reshape({next(texts)}, ())" if _coeff_nodes(term.coeff) else \
            _coeff_code(term.coeff, printer)
        left, right = next(texts), next(texts)
        left, right = (f"{np}.reshape({t}, (1, 1))" if node.is_scalar else t
                       for t, node in ((left, term.left), (right, term.right)))
        call = f"{np}.kron({left}, {right})"
        lines.append(f"{result} {'=' if n == 0 else '+='} "
                     f"{call if scale is None else f'{scale} * {call}'}")
    if not tensor.kronecker:
        rows = " * ".join(printer.dim(d) for d in tensor.f_shape[::-1] if not is_one(d)) or "1"
        cols = " * ".join(printer.dim(d) for d in tensor.x_shape[::-1] if not is_one(d)) or "1"
        lines.append(f"{result} = {np}.zeros(({rows}, {cols}), {printer.typed()})")
    return lines + [f"return {result}"]


# ---------------------------------------------------------------------------------------------
# Printing helpers
# ---------------------------------------------------------------------------------------------

def _kron_text(t) -> str:
    """kron(L, R); a 1 x 1 side (a vector of a vector) is a scalar factor."""
    if t.left.is_scalar or t.right.is_scalar:
        return " * ".join(to_text(n) for n in (t.left, t.right) if not _is_one(n)) or "1"
    return f"kron({to_text(t.left)}, {to_text(t.right)})"


def _kron_latex(t) -> str:
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
