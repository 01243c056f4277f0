"""Derivation notes: blocks of labelled equations, written as text, LaTeX, MathML, Markdown, HTML.

Contract: a ``Note`` is a title, ``Block`` s of ``Equation`` s and the ``Name`` s its formulas use.
A formula is index notation (``Ix``: a SymPy expression over ``IndexedBase`` entries, with
``Partial``, ``Via`` and ``Chain`` for what SymPy would otherwise evaluate or reorder) or matrix
form (``Mx``: a matcalc expression, printed by the text and LaTeX printers — so every node class
prints here as it prints everywhere else, new ones included). A name is looked up by the label of
its ``IndexedBase`` or the name of its ``Var``; everything else prints as itself. Every rendering
comes from the same blocks:

- ``text()``: plain Unicode; matrix forms in matcalc syntax (``G @ B.T``);
- ``latex()``: a fragment; ``latex_document()``: a standalone document (amsmath);
- ``mathml()``: one ``<math display="block">`` per block, converted by latex2mathml;
- ``markdown()``: one ``$$`` block per block (renders on GitHub and in Jupyter);
- ``html()``: a self-contained page with MathML: no script, no style sheet or font from elsewhere.

The LaTeX is restricted to what latex2mathml converts faithfully (the tests convert every
equation and inspect the MathML): a block is an ``array`` (latex2mathml turns the ``&`` of
``aligned`` into an identifier), never with an empty first cell (latex2mathml drops such a row:
empty cells are ``{}``), with no ``\\displaystyle`` inside cells (it becomes an empty ``mstyle``),
and ``\\text{}`` holds only characters that need no escape (an escaped ``\\&`` stays literal).
"""

from __future__ import annotations

import re
import textwrap
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Union

import sympy
from sympy import Indexed, IndexedBase, KroneckerDelta

from .. import expr as E
from ..errors import UnsupportedError
from ..ops import SYMPY_TO_NAME
from ..ops.elementwise import absolute
from .latex import FUNCTIONS, LatexPrinter, to_latex
from .latex import ATOM as LATEX_ATOM
from .text import ATOM as TEXT_ATOM
from .text import TextPrinter

MATHML_NS = "http://www.w3.org/1998/Math/MathML"
WIDTH = 100          # text lines of words wrap here; equations never do


# ---------------------------------------------------------------------------------------------
# What a note is made of
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Name:
    """How a quantity is written: in text and in LaTeX. ``adjoint`` marks an upstream gradient
    (written first in a product, as the notes write G Bᵀ)."""

    text: str
    latex: str
    adjoint: bool = False


class Partial(sympy.Function):
    """∂a/∂b, kept unevaluated: ``Partial(Z[i, j], A[k, l])`` is ∂Z_ij/∂A_kl."""

    nargs = 2


class Via(sympy.Function):
    """The part of a derivative that one step contributes: ``Via(Partial(f, x), 3)`` is the
    part of ∂f/∂x from step 3 (a value used twice gets a step per use)."""

    nargs = 2


class Chain(sympy.Function):
    """A product written in the given order (SymPy would sort the factors): Σ_j G_kj (Bᵀ)_jl."""


class Terms(sympy.Function):
    """A sum written in the given order (SymPy would sort the terms): the parts of a gradient
    in the order of the steps that made them."""


@dataclass(frozen=True)
class Ix:
    """A formula in index notation; ``rename`` names summation indices (symbol -> letter)."""

    expr: sympy.Basic
    rename: tuple = ()
    order: tuple = ()        # labels in the order products write them (the operands' order)


@dataclass(frozen=True)
class Mx:
    """A formula in matrix form; ``at`` (index letters) makes it an entry: (G Bᵀ)_kl."""

    node: E.Node
    at: tuple = ()


Formula = Union[Ix, Mx]


@dataclass(frozen=True)
class Equation:
    """``lhs = rhs[0] = rhs[1] ...``, with what kind of step it is (``label``) and what produced
    it (``why``: words and formulas)."""

    lhs: Formula
    rhs: tuple
    label: str = ""
    why: tuple = ()


@dataclass(frozen=True)
class Block:
    """A heading (words and formulas), the rule it shows, its equations and remarks."""

    heading: tuple
    equations: tuple = ()
    rule: str = ""
    remarks: tuple = ()              # paragraphs, each a tuple of words and formulas
    source: object = None            # the record entry the block shows, if any


@dataclass
class Note:
    """A derivation note; render it with ``text()``, ``latex()``, ``latex_document()``,
    ``mathml()``, ``markdown()`` or ``html()`` (or ``render(format)``)."""

    title: str
    blocks: tuple
    names: dict = field(default_factory=dict)

    def text(self) -> str:
        """Plain text (Unicode), matrix forms in matcalc syntax."""
        return _TextNote(self).render()

    def latex(self) -> str:
        """A LaTeX fragment: one ``\\subsection*`` and one ``array`` per block (needs amsmath)."""
        return _LatexNote(self).fragment()

    def latex_document(self) -> str:
        """A standalone LaTeX document (article class, amsmath)."""
        return _LatexNote(self).document()

    def mathml(self) -> str:
        """One ``<math display="block">`` per block, each preceded by its heading as a comment."""
        return _mathml_note(self)

    def markdown(self) -> str:
        """Markdown with ``$$`` blocks (GitHub, Jupyter)."""
        return _LatexNote(self).markdown()

    def html(self) -> str:
        """A self-contained HTML page with MathML: no script, nothing loaded from elsewhere."""
        return _HtmlNote(self).page()

    def html_fragment(self) -> str:
        """The page's ``<article>`` alone, with its style, for embedding (Jupyter)."""
        return _HtmlNote(self).fragment()

    def render(self, fmt: str) -> str:
        """The note in ``fmt``: text, latex (a standalone document), mathml, markdown or html."""
        try:
            method = RENDERINGS[fmt]
        except KeyError:
            raise UnsupportedError(f"unknown format {fmt!r}; choose one of "
                                   f"{', '.join(RENDERINGS)}") from None
        return getattr(self, method)()

    def __str__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        return self.html_fragment()

    def _repr_latex_(self) -> str:
        return "\n".join(f"$${_LatexNote(self).array(b)}$$" for b in self.blocks if b.equations)


#: Output formats, and the ``Note`` method that writes each.
RENDERINGS = {"text": "text", "latex": "latex_document", "mathml": "mathml",
              "markdown": "markdown", "html": "html"}


# ---------------------------------------------------------------------------------------------
# Index notation as text and LaTeX
# ---------------------------------------------------------------------------------------------

ADD, SUM, MUL, NEG, POW, ATOM = 10, 15, 20, 30, 40, 60


def _rank(factor, names: dict, order: tuple) -> tuple:
    """Where a factor goes in a product: upstream gradient, deltas, entries (in the operands'
    order), functions, sums — SymPy's own order sorts by name."""
    if isinstance(factor, Indexed):
        label = str(factor.base.label)
        name = names.get(label)
        place = order.index(label) if label in order else len(order)
        return (0, 0) if name is not None and name.adjoint else (2, place)
    if isinstance(factor, KroneckerDelta):
        return (1, 0)
    if isinstance(factor, sympy.Add):
        return (4, 0)
    if isinstance(factor, (Partial, Via)):
        return (5, 0)
    if isinstance(factor, sympy.Sum):
        return (6, 0)
    return (3, 0)


class IndexWriter:
    """Writes an index-notation SymPy expression as text (``latex=False``) or LaTeX.

    >>> i, k = sympy.symbols("i k", integer=True)
    >>> A = IndexedBase("A")
    >>> IndexWriter({}, {}, latex=False).write(sympy.Sum(A[i, k] * KroneckerDelta(i, k), (i, 0, 3)))
    'Σ_i δ_ik A_ik'
    """

    def __init__(self, names: dict, rename: dict, latex: bool, order: tuple = ()):
        self.names, self.rename, self.latex, self.order = names, rename, latex, order

    def write(self, e) -> str:
        return self._w(e)[0]

    # -- pieces ----------------------------------------------------------------------------
    def _name(self, label: str) -> Name:
        return self.names.get(label) or Name(label, label)

    def _index(self, x) -> str | None:
        if x == 0:
            return None
        if isinstance(x, sympy.Symbol):
            return self.rename.get(x, x.name)
        return self.write(x)

    def _indices(self, idx) -> str:
        letters = [t for t in (self._index(x) for x in idx) if t is not None]
        return ("" if all(len(t) == 1 for t in letters) else ",").join(letters)

    def entry(self, name: Name, idx: str) -> str:
        """``name`` with subscript ``idx``: A_kl, (Z_1)_kl, (Bᵀ)_jl."""
        if self.latex:
            if not idx:
                return name.latex
            if "_" in name.latex or "^" in name.latex:
                return f"({name.latex})_{{{idx}}}"        # plain brackets: not stretched
            return f"{name.latex}_{{{idx}}}"
        if not idx:
            return name.text
        if re.fullmatch(r"[A-Za-z][A-Za-z0-9]*|\\?[^\W\d_]", name.text):
            return f"{name.text}_{idx}"
        return f"({name.text})_{idx}"

    def _paren(self, text: str) -> str:
        return rf"\left({text}\right)" if self.latex else f"({text})"

    def _wrap(self, part: tuple, min_prec: int) -> str:
        return part[0] if part[1] >= min_prec else self._paren(part[0])

    # -- dispatch --------------------------------------------------------------------------
    def _w(self, e) -> tuple[str, int]:
        if isinstance(e, Indexed):
            return self.entry(self._name(str(e.base.label)), self._indices(e.indices)), ATOM
        if isinstance(e, IndexedBase):
            return self.entry(self._name(str(e.label)), ""), ATOM
        if isinstance(e, KroneckerDelta):
            idx = self._indices(e.args)
            return (rf"\delta_{{{idx}}}" if self.latex else f"δ_{idx}"), ATOM
        if isinstance(e, Partial):
            return self._partial(e), MUL
        if isinstance(e, Via):
            part, step = self.write(e.args[0]), self.write(e.args[1])
            if self.latex:
                return rf"\left.{part}\right|_{{\text{{step }}{step}}}", MUL
            return f"{part} [step {step}]", MUL
        if isinstance(e, Chain):
            return " ".join(self._wrap(self._w(a), MUL) for a in e.args), MUL
        if isinstance(e, Terms):
            return " + ".join(self._wrap(self._w(a), ADD + 1) for a in e.args), ADD
        if isinstance(e, sympy.Sum):
            return self._sum(e)
        if isinstance(e, sympy.Equality):
            return f"{self.write(e.lhs)} = {self.write(e.rhs)}", ADD - 1
        if isinstance(e, sympy.Add):
            return self._add(e)
        if isinstance(e, sympy.Mul):
            return self._mul(e)
        if isinstance(e, sympy.Pow):
            return self._pow(e)
        if isinstance(e, sympy.Number):
            return self._number(e)
        if isinstance(e, sympy.Symbol):
            if e in self.rename:
                return self.rename[e], ATOM
            if e.name in self.names:
                return self.entry(self.names[e.name], ""), ATOM
            return (sympy.latex(e) if self.latex else e.name), ATOM
        if isinstance(e, sympy.Function):
            return self._function(e)
        return (sympy.latex(e) if self.latex else sympy.sstr(e)), ATOM

    def _partial(self, e) -> str:
        num, den = (self._w(a) for a in e.args)
        if self.latex:
            return rf"\frac{{\partial {num[0]}}}{{\partial {den[0]}}}"
        return f"∂{self._wrap(num, ATOM)}/∂{self._wrap(den, ATOM)}"

    def _sum(self, e) -> tuple[str, int]:
        limits, body = [], e
        while isinstance(body, sympy.Sum):
            limits = [lim[0] for lim in body.limits] + limits
            body = body.function
        inner = self._wrap(self._w(body), MUL)
        if self.latex:
            return rf"\sum_{{{','.join(self._index(s) for s in limits)}}} {inner}", SUM
        names = [self._index(s) for s in limits]
        return f"Σ_{('' if all(len(n) == 1 for n in names) else ',').join(names)} {inner}", SUM

    def _add(self, e) -> tuple[str, int]:
        terms = e.as_ordered_terms()
        out = []
        for n, term in enumerate(terms):
            last = n == len(terms) - 1
            if isinstance(term, sympy.Sum) and term.function.could_extract_minus_sign():
                term = -sympy.Sum(-term.function, *term.limits)      # -Σ_j x_j, not Σ_j -x_j
            negative = n > 0 and term.could_extract_minus_sign()
            part = self._w(-term if negative else term)
            text = part[0] if part[1] > SUM or (part[1] == SUM and last) else self._paren(part[0])
            out.append(text if n == 0 else (" - " if negative else " + ") + text)
        return "".join(out), ADD

    def _mul(self, e) -> tuple[str, int]:
        num, den = sympy.fraction(e)
        coeff, rest = num.as_coeff_Mul()
        sign = ""
        if coeff.is_negative:
            sign, coeff = "-", -coeff
        factors = sorted(sympy.Mul.make_args(rest), key=lambda f: _rank(f, self.names, self.order))
        parts = [] if coeff == 1 else [self._number(coeff)[0]]
        for n, f in enumerate(factors):
            part = self._w(f)
            last = n == len(factors) - 1
            ok = part[1] >= MUL or (part[1] == SUM and last)
            parts.append(part[0] if ok and part[1] != NEG else self._paren(part[0]))
        top = " ".join(p for p in parts if p != "1") or "1"
        if den != 1:
            if self.latex:
                return sign + rf"\frac{{{top}}}{{{self.write(den)}}}", (NEG if sign else ATOM)
            below = self._w(den)
            return sign + f"{top} / {below[0] if below[1] >= POW else self._paren(below[0])}", MUL
        return sign + top, (NEG if sign else MUL)

    def _pow(self, e) -> tuple[str, int]:
        base, exp = e.args
        if exp == sympy.Rational(1, 2):
            inner = self.write(base)
            return (rf"\sqrt{{{inner}}}" if self.latex else f"sqrt({inner})"), ATOM
        if exp.is_number and exp.is_negative:
            below = self._w(base ** -exp)
            if self.latex:
                return rf"\frac{{1}}{{{below[0]}}}", ATOM
            return f"1 / {below[0] if below[1] >= POW else self._paren(below[0])}", MUL
        b = self._wrap(self._w(base), ATOM)
        if self.latex:
            return f"{b}^{{{sympy.latex(exp)}}}", POW
        power = str(exp) if exp.is_Integer else f"({sympy.sstr(exp)})"
        return f"{b}^{power}", POW

    def _number(self, e) -> tuple[str, int]:
        if self.latex:
            text = sympy.latex(e)
            return text, (NEG if e.is_negative else (MUL if "frac" in text else ATOM))
        if e.is_Rational and not e.is_Integer:
            return f"{e.p}/{e.q}", MUL
        return sympy.sstr(e), (NEG if e.is_negative else ATOM)

    def _function(self, e) -> tuple[str, int]:
        name = SYMPY_TO_NAME.get(e.func) or e.func.__name__
        args = ", ".join(self.write(a) for a in e.args)
        if isinstance(e, (absolute, sympy.Abs)):
            return (rf"\left|{args}\right|" if self.latex else f"|{args}|"), ATOM
        if not self.latex:
            return f"{name}({args})", ATOM
        command = FUNCTIONS.get(name) or rf"\operatorname{{{_latex_word(name)}}}"
        return rf"{command}\left({args}\right)", ATOM


def _latex_word(word: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", word) or "f"


# ---------------------------------------------------------------------------------------------
# Matrix forms: the printers, with the note's names
# ---------------------------------------------------------------------------------------------

class NamedTextPrinter(TextPrinter):
    """The text printer, writing a variable whose name the note knows under that name."""

    def __init__(self, names: dict):
        self.names = names

    def _print_Var(self, node, args):
        name = self.names.get(node.name)
        return (name.text, TEXT_ATOM) if name is not None else super()._print_Var(node, args)


class NamedLatexPrinter(LatexPrinter):
    """The LaTeX printer, writing a variable whose name the note knows under that name."""

    def __init__(self, names: dict):
        self.names = names

    def _print_Var(self, node, args):
        name = self.names.get(node.name)
        return (name.latex, LATEX_ATOM) if name is not None else super()._print_Var(node, args)


def formula_text(f: Formula, names: dict) -> str:
    """A formula as plain text.

    >>> Z, A = IndexedBase("Z"), IndexedBase("A")
    >>> i, k = sympy.symbols("i k", integer=True)
    >>> formula_text(Ix(Partial(Z[i, 0], A[k, 0])), {"A": Name("W1", "W_{1}")})
    '∂Z_i/∂W1_k'
    """
    if isinstance(f, Ix):
        return IndexWriter(names, dict(f.rename), False, f.order).write(f.expr)
    printed = NamedTextPrinter(names).print_all([f.node])[0]
    if not f.at:
        return printed.text
    return IndexWriter(names, {}, latex=False).entry(Name(printed.text, ""), "".join(f.at))


def formula_latex(f: Formula, names: dict) -> str:
    r"""A formula as LaTeX (math mode, no delimiters).

    >>> Z, A = IndexedBase("Z"), IndexedBase("A")
    >>> i, k = sympy.symbols("i k", integer=True)
    >>> formula_latex(Ix(Partial(Z[i, 0], A[k, 0])), {"A": Name("W1", "W_{1}")})
    '\\frac{\\partial Z_{i}}{\\partial (W_{1})_{k}}'
    """
    if isinstance(f, Ix):
        return IndexWriter(names, dict(f.rename), True, f.order).write(f.expr)
    printed = NamedLatexPrinter(names).print_all([f.node])[0]
    if not f.at:
        return printed.text
    if printed.prec >= LATEX_ATOM and "_" not in printed.text and "^" not in printed.text:
        return f"{printed.text}_{{{''.join(f.at)}}}"
    return rf"\left({printed.text}\right)_{{{''.join(f.at)}}}"


def _equation_text(eq: Equation, names: dict) -> str:
    return " = ".join(formula_text(f, names) for f in (eq.lhs, *eq.rhs))


def _equation_latex(eq: Equation, names: dict) -> str:
    return " = ".join(formula_latex(f, names) for f in (eq.lhs, *eq.rhs))


def _parts_text(parts, names: dict) -> str:
    return "".join(p if isinstance(p, str) else (_equation_text(p, names) if isinstance(p, Equation)
                                                 else formula_text(p, names)) for p in parts)


def _part_latex(p, names: dict) -> str:
    return _equation_latex(p, names) if isinstance(p, Equation) else formula_latex(p, names)


# ---------------------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------------------

class _TextNote:
    def __init__(self, note: Note):
        self.note, self.names = note, note.names
        labels = [len(eq.label) for b in note.blocks for eq in b.equations]
        self.width = min(max(labels, default=0), 22) + 2

    def render(self) -> str:
        title = self.note.title
        lines = [title, "=" * len(title)]
        for block in self.note.blocks:
            lines += ["", _parts_text(block.heading, self.names)]
            if block.rule:
                lines.append(f"  rule: {block.rule}")
            for eq in block.equations:
                lines.append(f"  {eq.label:<{self.width}}{_equation_text(eq, self.names)}")
                if eq.why:
                    indent = " " * (2 + self.width)
                    lines.append(textwrap.fill(f"({_parts_text(eq.why, self.names)})", WIDTH,
                                               initial_indent=indent, subsequent_indent=indent,
                                               break_on_hyphens=False))
            for remark in block.remarks:
                lines.append(textwrap.fill(_parts_text(remark, self.names), WIDTH,
                                           initial_indent="  ", subsequent_indent="  ",
                                           break_on_hyphens=False))
        return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# LaTeX and Markdown
# ---------------------------------------------------------------------------------------------

_TEXT_SAFE = {"&": "and", "%": " percent", "$": "", "#": "no. ", "_": " ", "{": "(", "}": ")",
              "~": " ", "^": "", "\\": "/", "—": "-", "–": "-", "×": " by ", "→": "->", "…": "...",
              "δ": "delta", "Σ": "sum", "∂": "d", "ᵀ": "T", "∘": "o"}


def latex_text(words: str) -> str:
    """Words safe inside ``\\text{}`` and text mode: nothing latex2mathml would keep escaped.

    >>> latex_text("50% of x_1 & y")
    '50 percent of x 1 and y'
    """
    return "".join(_TEXT_SAFE.get(c, c) for c in words)


def _merge_words(parts) -> list:
    """Adjacent words joined: one ``\\text{}`` each, not one per piece."""
    merged: list = []
    for p in parts:
        if isinstance(p, str) and merged and isinstance(merged[-1], str):
            merged[-1] += p
        else:
            merged.append(p)
    return merged


def _markdown_text(words: str) -> str:
    return re.sub(r"([\\`*_{}\[\]<>#|])", r"\\\1", words)


class _LatexNote:
    def __init__(self, note: Note):
        self.note, self.names = note, note.names

    def parts(self, parts, math: str = "$") -> str:
        """Words (escaped) and formulas (in ``$...$``) for text mode."""
        out = []
        for p in parts:
            if isinstance(p, str):
                out.append(latex_text(p))
            else:
                out.append(f"{math}{_part_latex(p, self.names)}{math}")
        return "".join(out)

    def _cell_parts(self, parts) -> str:
        """Words and formulas inside a math cell: ``\\text{words} formula``."""
        out = []
        for p in _merge_words(parts):
            if isinstance(p, str):
                if p.strip():
                    out.append(rf"\text{{{latex_text(p)}}}")
            else:
                out.append(_part_latex(p, self.names))
        return " ".join(out) or "{}"

    def rows(self, block: Block) -> list[list[str]]:
        rows = []
        for eq in block.equations:
            first, *more = eq.rhs
            label = rf"\text{{{latex_text(eq.label)}}}" if eq.label else "{}"
            rows.append([formula_latex(eq.lhs, self.names), "=",
                         formula_latex(first, self.names), label])
            for f in more:
                rows.append(["{}", "=", formula_latex(f, self.names), "{}"])
            if eq.why:
                rows.append(["{}", "{}", "{}", self._cell_parts(("(", *eq.why, ")"))])
        return rows

    def array(self, block: Block) -> str:
        body = r" \\ ".join(" & ".join(cells) for cells in self.rows(block))
        return rf"\begin{{array}}{{rcll}} {body} \end{{array}}"

    def fragment(self) -> str:
        out = []
        for block in self.note.blocks:
            out.append(rf"\subsection*{{{self.parts(block.heading)}}}")
            if block.rule:
                out.append(rf"\noindent Rule: {latex_text(block.rule)}.")
            if block.equations:
                out.append("\\[\n" + self.array(block).replace(r" \\ ", " \\\\\n") + "\n\\]")
            for remark in block.remarks:
                out.append(self.parts(remark) + "\n")
        return "\n".join(out) + "\n"

    def document(self) -> str:
        return (
            "\\documentclass{article}\n"
            "\\usepackage{amsmath}\n"
            "\\usepackage{amssymb}\n"
            "\\usepackage[margin=2cm]{geometry}\n"
            "\\renewcommand{\\arraystretch}{1.8}\n"
            "\\begin{document}\n"
            f"\\section*{{{latex_text(self.note.title)}}}\n"
            f"{self.fragment()}"
            "\\end{document}\n")

    def markdown(self) -> str:
        out = [f"# {_markdown_text(self.note.title)}", ""]
        for block in self.note.blocks:
            out += [f"## {self.markdown_parts(block.heading)}", ""]
            if block.rule:
                out += [f"*Rule: {_markdown_text(block.rule)}*", ""]
            if block.equations:
                out += ["$$", self.array(block).replace(r" \\ ", " \\\\\n"), "$$", ""]
            for remark in block.remarks:
                out += [self.markdown_parts(remark), ""]
        return "\n".join(out)

    def markdown_parts(self, parts) -> str:
        return "".join(_markdown_text(p) if isinstance(p, str)
                       else f"${_part_latex(p, self.names)}$" for p in parts)


# ---------------------------------------------------------------------------------------------
# MathML and HTML (trees, not string joins)
# ---------------------------------------------------------------------------------------------

def mathml_element(latex: str, display: str = "inline", displaystyle: bool = False) -> ET.Element:
    """latex2mathml's MathML for ``latex`` as an element tree, without namespace prefixes.

    ``displaystyle`` keeps the math inline (in a table cell) but sets it as a display: sums
    with their indices below, full-size fractions.

    >>> ET.tostring(mathml_element("x^{2}"), encoding="unicode")[-66:]
    '<mrow><msup><mi>x</mi><mrow><mn>2</mn></mrow></msup></mrow></math>'
    """
    from latex2mathml.converter import convert as latex_to_mathml   # when used: see to_mathml
    root = ET.fromstring(latex_to_mathml(latex, display="block" if displaystyle else display))
    for el in root.iter():
        if el.tag.startswith("{"):
            el.tag = el.tag.split("}", 1)[1]
    root.attrib.clear()
    root.set("display", display)
    root.set("xmlns", MATHML_NS)
    if displaystyle:
        root.set("displaystyle", "true")
    return root


def _mathml_note(note: Note) -> str:
    writer = _LatexNote(note)
    out = []
    for block in note.blocks:
        heading = _parts_text(block.heading, note.names) + (f"; rule: {block.rule}" if block.rule
                                                             else "")
        comment = ET.Comment(" " + heading.replace("--", "- -") + " ")
        out.append(ET.tostring(comment, encoding="unicode"))
        if block.equations:
            out.append(ET.tostring(mathml_element(writer.array(block), "block"),
                                   encoding="unicode"))
    return "\n".join(out) + "\n"


STYLE = """
body { font-family: "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; color: #1b1b1b;
       max-width: 64rem; margin: 2rem auto; padding: 0 1.2rem; line-height: 1.45; }
article.matcalc-note h1 { font-size: 1.45rem; margin-bottom: 0.4rem; }
article.matcalc-note h2 { font-size: 1.1rem; margin: 1.6rem 0 0.3rem; padding-top: 0.8rem;
                          border-top: 1px solid #d8d8d8; font-weight: 600; }
article.matcalc-note p.rule { color: #555; font-size: 0.9rem; margin: 0 0 0.5rem; }
article.matcalc-note table.equations { border-collapse: collapse; }
article.matcalc-note td { padding: 0.3rem 0.35rem; vertical-align: middle; }
article.matcalc-note td.label { color: #555; font-size: 0.85rem; width: 14rem;
                                vertical-align: top; padding-top: 0.55rem; }
article.matcalc-note td.lhs { text-align: right; }
article.matcalc-note td.rhs { text-align: left; }
article.matcalc-note div.why { color: #777; font-size: 0.8rem; font-style: italic; }
article.matcalc-note math { font-size: 1.12em;
                            font-family: "Latin Modern Math", "STIX Two Math", "DejaVu Math TeX Gyre",
                                         math; }
"""


class _HtmlNote:
    def __init__(self, note: Note):
        self.note, self.names = note, note.names

    def _inline(self, parent: ET.Element, parts) -> None:
        """Append words and inline math to ``parent``."""
        last = None
        for p in parts:
            if isinstance(p, str):
                if last is None:
                    parent.text = (parent.text or "") + p
                else:
                    last.tail = (last.tail or "") + p
            else:
                last = mathml_element(_part_latex(p, self.names))
                parent.append(last)

    def _cell(self, row: ET.Element, cls: str, formula=None) -> ET.Element:
        td = ET.SubElement(row, "td", {"class": cls})
        if formula is not None:
            td.append(mathml_element(formula_latex(formula, self.names), displaystyle=True))
        return td

    def article(self) -> ET.Element:
        article = ET.Element("article", {"class": "matcalc-note"})
        ET.SubElement(article, "h1").text = self.note.title
        for block in self.note.blocks:
            section = ET.SubElement(article, "section")
            self._inline(ET.SubElement(section, "h2"), block.heading)
            if block.rule:
                ET.SubElement(section, "p", {"class": "rule"}).text = f"rule: {block.rule}"
            if block.equations:
                table = ET.SubElement(section, "table", {"class": "equations"})
                for eq in block.equations:
                    for n, f in enumerate(eq.rhs):
                        row = ET.SubElement(table, "tr")
                        label = self._cell(row, "label")
                        if n == 0:
                            ET.SubElement(label, "div").text = eq.label
                            if eq.why:
                                self._inline(ET.SubElement(label, "div", {"class": "why"}),
                                             eq.why)
                        self._cell(row, "lhs", eq.lhs if n == 0 else None)
                        self._cell(row, "rel").append(mathml_element("="))
                        self._cell(row, "rhs", f)
            for remark in block.remarks:
                self._inline(ET.SubElement(section, "p"), remark)
        return article

    def fragment(self) -> str:
        holder = ET.Element("div")
        ET.SubElement(holder, "style").text = STYLE.replace("body {", "article.matcalc-note {")
        holder.append(self.article())
        return ET.tostring(holder, encoding="unicode", method="html")

    def page(self) -> str:
        html = ET.Element("html", {"lang": "en"})
        head = ET.SubElement(html, "head")
        ET.SubElement(head, "meta", {"charset": "utf-8"})
        ET.SubElement(head, "title").text = self.note.title
        ET.SubElement(head, "style").text = STYLE
        ET.SubElement(html, "body").append(self.article())
        return "<!DOCTYPE html>\n" + ET.tostring(html, encoding="unicode", method="html") + "\n"


# ---------------------------------------------------------------------------------------------
# Notebook display of a single expression, installed on the expression layer
# ---------------------------------------------------------------------------------------------

def math_html(latex_equations) -> str:
    """Display-style MathML for LaTeX equations, one per line, as an HTML fragment.

    >>> math_html(["x = 1"]).startswith('<div class="matcalc-math"><math')
    True
    """
    holder = ET.Element("div", {"class": "matcalc-math"})
    for latex in latex_equations:
        holder.append(mathml_element(latex, display="block"))
    return ET.tostring(holder, encoding="unicode", method="html")


def _node_latex(node: E.Node) -> str | None:
    try:
        return "$" + to_latex(node) + "$"
    except UnsupportedError:          # too large to write out: the plain repr stands
        return None


def _node_html(node: E.Node) -> str | None:
    try:
        return math_html([to_latex(node)])
    except UnsupportedError:
        return None


E.set_display("text/latex", _node_latex)
E.set_display("text/html", _node_html)
