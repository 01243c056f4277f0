"""LaTeX, in the notation of the Matrix Cookbook and the seed notes; MathML via latex2mathml.

Matrix product is juxtaposition (A B), ⊙ the elementwise product, ⊘ elementwise division, X^{∘p}
an elementwise power, X^⊤ the transpose, 1 a vector of ones: sum(X) = 1ᵀ X 1, row sums X 1,
column sums Xᵀ 1, and a column b broadcast across columns is b 1ᵀ. Every construct used here is
one latex2mathml converts faithfully (the tests check the MathML).
"""

from __future__ import annotations

import re
from types import MappingProxyType

import sympy

from .. import expr as E
from ..dims import is_one
from ..ops import FUNCTIONS as FUNCTION_OPS
from ..ops import operation_of
from ..ops.base import ADD, ATOM, MUL, POSTFIX, POW, UNARY
from ..ops.linalg import Inv
from .base import MAX_EXPANDED, Printed, Printer, bare_broadcasts, expanded_size
from .names import Named
from .text import name_values


GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
         "lambda", "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi",
         "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi",
         "Psi", "Omega"}

#: The LaTeX name of each elementwise function written as a call (a view of the registry;
#: |x| and the square root have notation of their own).
FUNCTIONS = MappingProxyType({name: op.latex for name, op in FUNCTION_OPS.items()
                              if isinstance(op.latex, str)})

_SPLIT = re.compile(r"([A-Za-z]+?)_?(\d+|(?<=_)\w+)?\Z")


def latex_name(name: str) -> str:
    """A variable name in LaTeX: W1 -> W_{1}, x_hat -> x_{hat}, sigma -> \\sigma, loss -> \\mathit{loss}."""
    match = _SPLIT.match(name)
    base, sub = (match.group(1), match.group(2)) if match else (name, None)
    if base in GREEK:
        base = "\\" + base
    elif len(base) > 1:
        base = r"\mathit{" + base.replace("_", r"\_") + "}"
    return base if not sub else f"{base}_{{{sub.replace('_', ' ')}}}"


def latex_number(value: sympy.Expr) -> tuple[str, int]:
    text = sympy.latex(value)
    if value.is_Add:
        return text, ADD
    if text.startswith("-"):
        return text, UNARY
    if value.is_Integer or value.is_Symbol:
        return text, ATOM
    return text, MUL


def paren(text: str) -> str:
    return rf"\left({text}\right)"


class LatexPrinter(Printer):
    """Print an expression as LaTeX math (no surrounding $)."""

    name = "LaTeX"

    def wrap(self, arg: Printed, min_prec: int) -> str:
        return arg.text if arg.prec >= min_prec else paren(arg.text)

    def _operands(self, args: list[Printed]) -> list[Printed]:
        """Elementwise operands: a broadcast scalar prints as the scalar itself (1 - X), where
        the other operand keeps the shape."""
        bare = bare_broadcasts(self.current)
        return [self.done[id(a.node.args[0])] if drop and a.node.args[0].is_scalar else a
                for a, drop in zip(args, bare)]

    def _print_Var(self, node, args):
        return latex_name(node.name), ATOM

    def _print_Const(self, node, args):
        return latex_number(node.value)

    def _print_Eye(self, node, args):
        return "I", ATOM

    def _print_MatMul(self, node, args):
        a, b = args
        left = a.text if a.prec > MUL or isinstance(a.node, E.MatMul) else paren(a.text)
        right = b.text if b.prec > MUL or isinstance(b.node, E.MatMul) else paren(b.text)
        return f"{left} {right}", MUL

    def _print_Transpose(self, node, args):
        inner = node.args[0]
        if isinstance(inner, Inv):               # (X^-1)^T is written X^-T
            base = self.done[id(inner.args[0])]
            return f"{self.wrap(base, ATOM)}^{{-\\top}}", POSTFIX
        return f"{self.wrap(args[0], ATOM)}^{{\\top}}", POSTFIX

    def _print_Add(self, node, args):
        a, b = self._operands(args)
        return f"{a.text} + {self.wrap(b, ADD + 1)}", ADD

    def _print_Sub(self, node, args):
        a, b = self._operands(args)
        return f"{a.text} - {self.wrap(b, ADD + 1)}", ADD

    def _print_Mul(self, node, args):
        a, b = self._operands(args)
        if a.node.is_scalar and not node.is_scalar or (a.node.is_scalar and b.node.is_scalar):
            # a scalar multiple: c X
            left = a.text if a.prec >= MUL else paren(a.text)
            right = b.text if b.prec > MUL or isinstance(b.node, E.MatMul) else paren(b.text)
            return f"{left} {right}", MUL
        left = a.text if a.prec > MUL else paren(a.text)
        right = b.text if b.prec > MUL else paren(b.text)
        return rf"{left} \odot {right}", MUL

    def _print_Div(self, node, args):
        a, b = self._operands(args)
        if node.is_scalar or b.node.is_scalar:
            return rf"\frac{{{a.text}}}{{{b.text}}}", ATOM
        return rf"{self.wrap(a, MUL + 1)} \oslash {self.wrap(b, MUL + 1)}", MUL

    def _print_Neg(self, node, args):
        return f"-{self.wrap(args[0], UNARY + 1)}", UNARY

    def _print_Pow(self, node, args):
        p = sympy.latex(node.exponent)
        power = p if node.is_scalar else rf"\circ {p}"
        return f"{self.wrap(args[0], ATOM)}^{{{power}}}", POW

    def _print_Apply(self, node, args):
        op = operation_of(node)
        if op is not None and callable(op.latex):
            return op.latex(self, node, args)
        command = FUNCTIONS.get(node.name) or (op.latex if op is not None and op.latex else
                                                rf"\operatorname{{{node.name}}}")
        return command + paren(args[0].text), ATOM

    def _print_Broadcast(self, node, args):
        inner = node.args[0]
        rows, cols = node.params
        value = E.constant_value(node)
        if value in (0, 1):
            size = sympy.latex(rows) if is_one(cols) else rf"{sympy.latex(rows)} \times {sympy.latex(cols)}"
            return rf"\mathbf{{{value}}}_{{{size}}}", ATOM
        a = args[0]
        if inner.is_scalar:
            size = rf"{sympy.latex(rows)} \times {sympy.latex(cols)}"
            return rf"{self.wrap(a, MUL)} \mathbf{{1}}_{{{size}}}", MUL
        if is_one(inner.cols):       # a column across columns: b 1^T
            return rf"{self.wrap(a, MUL)} \mathbf{{1}}^{{\top}}", MUL
        return rf"\mathbf{{1}} {self.wrap(a, MUL)}", MUL   # a row across rows: 1 r

    def paren(self, text: str) -> str:
        """``text`` in growing parentheses."""
        return paren(text)

    def spell(self, op):
        """A stanza's LaTeX: its spelling function, or a command applied as a call
        (``\\operatorname{tr}\\left(X\\right)``)."""
        if callable(op.latex):
            return self.bound(op.latex)
        if isinstance(op.latex, str):
            command = op.latex

            def method(node, args):
                return command + paren(args[0].text), ATOM
            return method
        return None


def to_latex(node: E.Node) -> str:
    """``node`` as LaTeX.

    >>> from matcalc.expr import Var
    >>> A = Var.make("A", ("n", "n")); x = Var.make("x", ("n", 1))
    >>> to_latex((A + A.T) @ x)
    '\\\\left(A + A^{\\\\top}\\\\right) x'
    """
    if expanded_size([node]) > MAX_EXPANDED:      # written in terms of its shared values
        named = name_values([node])
        return r",\quad ".join(named_equations(named, [])[:len(named.definitions)] +
                                [named_equations(Named((), named.roots), [""])[0][3:]])
    return LatexPrinter().doprint(node)


def named_equations(named: Named, lhs: list[str]) -> list[str]:
    """LaTeX equations for a printed form with named intermediates: ``s = \\sigma(X w)`` for
    each definition, then ``lhs = result`` for each result."""
    printer = LatexPrinter()
    printer.expands = False           # the named form is written in linear size
    out = [f"{latex_name(var.name)} = {printer.doprint(d)}" for var, d in named.definitions]
    out += [f"{left} = {printer.doprint(r)}" for left, r in zip(lhs, named.roots)]
    return out


def to_mathml(node_or_latex, display: str = "block") -> str:
    """MathML for a node (or a LaTeX string), converted by latex2mathml."""
    # imported here, not above: latex2mathml loads email, http and xml (~50 ms) that a
    # command printing text and LaTeX never needs (see cli.py on start-up)
    from latex2mathml.converter import convert as latex_to_mathml
    latex = node_or_latex if isinstance(node_or_latex, str) else to_latex(node_or_latex)
    return latex_to_mathml(latex, display=display)
