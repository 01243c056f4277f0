"""Plain text in matcalc syntax: what it prints, ``matcalc.parse`` reads back to the same node.

Precedence follows Python's: ``+ -`` < ``* / @`` < unary ``-`` < ``**`` < ``.T`` and calls. A
broadcast operand of an elementwise operator prints as itself (NumPy broadcasting, ``W @ X + b``);
a broadcast standing alone prints as ``b * ones(n, m)``. ``*`` and ``@`` are never mixed without
parentheses, for the reader's sake.
"""

from __future__ import annotations

import math
from fractions import Fraction

import sympy

from .. import expr as E
from ..constants import decimal_places
from ..dims import is_one
from ..ops import SYMPY_TO_NAME, is_vector, operation_of, reading_of
from ..ops.base import ADD, ATOM, MUL, POSTFIX, POW, UNARY
from .base import MAX_EXPANDED, Printed, Printer, bare_broadcasts, expanded_size
from .names import Named, choose_names


class _ConstantPrinter(sympy.printing.str.StrPrinter):
    """SymPy's text, in matcalc's names: Euler's number is exp(1) (E could be a variable),
    SymPy's Abs is abs, atan arctan (every elementwise function by its name in the table)."""

    def _print_Exp1(self, expr):
        return "exp(1)"

    def _print_Abs(self, expr):
        return f"abs({self._print(expr.args[0])})"

    def _print_Function(self, expr):
        # arctan(4) folded to SymPy's atan(4) prints as arctan(4), which text reads back
        name = SYMPY_TO_NAME.get(expr.func)
        if name is not None and name != expr.func.__name__:
            return f"{name}({self.stringify(expr.args, ', ')})"
        return super()._print_Function(expr)


_CONSTANTS = _ConstantPrinter()


def decimal_text(value: sympy.Rational) -> str | None:
    """A fraction whose denominator is 10 or more and a product of 2s and 5s, as the decimal it
    was most likely typed as (0.9, 0.044715, 0.00001, 1.5625e-20; text reads it back to the same
    fraction); None for any other (1/2, 1/4 and 2/3 stay fractions).

    >>> decimal_text(sympy.Rational(8943, 200000)), decimal_text(sympy.Rational(-1, 100000))
    ('0.044715', '-0.00001')
    >>> decimal_text(sympy.Rational(1, 2)), decimal_text(sympy.Rational(1, 64 * 10 ** 18))
    (None, '1.5625e-20')
    """
    places = decimal_places(value)
    if places is None:
        return None
    q = int(value.q)
    sign = "-" if value.is_negative else ""
    significant = str(abs(int(value.p)) * (10 ** places // q))
    if places - len(significant) >= 6:     # many leading zeros: 1.5625e-20, read back exactly
        mantissa = significant[0] + ("." + significant[1:] if len(significant) > 1 else "")
        return f"{sign}{mantissa}e-{places - len(significant) + 1}"
    digits = significant.rjust(places + 1, "0")
    return f"{sign}{digits[:-places]}.{digits[-places:]}"


def _large_integer_text(value: int) -> str:
    """An integer past the 15 digits text accepts, in scientific form (16000000000000000 is
    1.6e16): ``number_text`` uses it where text reads it back as the same integer.

    >>> _large_integer_text(16 * 10 ** 15), _large_integer_text(-25 * 10 ** 19)
    ('1.6e16', '-2.5e20')
    """
    digits = str(abs(value)).rstrip("0")
    exponent = len(str(abs(value))) - 1
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{'-' if value < 0 else ''}{mantissa}e{exponent}"


def number_text(value: sympy.Expr) -> tuple[str, int]:
    """A constant (number or expression in dimensions) as text, with its precedence."""
    if value.is_Integer and len(str(abs(value))) > 15:
        text = _large_integer_text(int(value))
        read = float(text)
        if math.isfinite(read) and Fraction(repr(read)) == int(value):   # what text reads
            return text, (UNARY if value.is_negative else ATOM)
    if value.is_Integer or value.is_Symbol or value is sympy.pi:
        return str(value), (UNARY if value.is_negative else ATOM)
    if value.is_Rational:
        decimal = decimal_text(value)
        if decimal is not None:
            return decimal, (UNARY if value.is_negative else ATOM)
        return f"{value.p}/{value.q}", MUL        # -1/2 is (-1)/2: its outermost operator is /
    coefficient, rest = value.as_coeff_Mul()
    decimal = decimal_text(coefficient) if coefficient.is_Rational and coefficient != 1 else None
    if decimal is not None and rest.is_Pow and rest.exp == -1 and rest.base.is_Symbol:
        return f"{decimal}/{rest.base}", MUL       # 0.1/c, as typed (not 1/(10*c))
    text = _CONSTANTS.doprint(value)
    if value.is_Function or value is sympy.E:        # a call: tanh(1), exp(1), sqrt(2) is a Pow
        return text, POSTFIX
    if value.is_Add:
        return text, ADD
    if value.is_Pow and not value.exp.is_negative:
        return text, POW
    if text.startswith("-") and "/" not in text and "*" not in text:
        return text, UNARY
    return text, MUL


def _read_as_row(node: E.Node, shape, partner: E.Node | None = None) -> bool:
    """Whether text would read the n x 1 ``node``, written bare beside an operand of ``shape``
    (``partner``), as something other than the column it is (``matcalc.reading``)."""
    if not is_one(node.cols) or node.is_scalar or (is_one(shape[0]) and is_one(shape[1])):
        return False
    if partner is not None and not partner.is_scalar and is_vector(partner):
        return False              # two 1-D values of one length: entry by entry
    return is_vector(node) and reading_of(node, shape) != "column"


def _with_keepdims(call: str) -> str:
    """``sum(X, axis=1)`` -> ``sum(X, axis=1, keepdims=True)``."""
    return call[:-1] + ", keepdims=True)"


def _keepdims_spelling(node: E.Node, axis: int) -> bool:
    """A reduction along ``axis`` that prints as a call: ``keepdims=True`` can follow it."""
    op = operation_of(node)
    if not node.args or node.is_scalar or node.args[0].is_scalar or is_vector(node.args[0]):
        return False                  # keepdims of a 1-D value or a number is not a row or column
    return (op is not None and op.syntax is not None and getattr(node, "axis", None) == axis
            and any(k.name == "keepdims" for k in op.syntax.keywords) and op.text is None)


class TextPrinter(Printer):
    """Print an expression as matcalc syntax."""

    name = "text"

    @staticmethod
    def wrap(arg: Printed, min_prec: int) -> str:
        return arg.text if arg.prec >= min_prec else f"({arg.text})"

    # leaves
    def _print_Var(self, node, args):
        return node.name, ATOM

    def _print_Const(self, node, args):
        return number_text(node.value)

    def _print_Eye(self, node, args):
        return f"eye({node.params[0]})", POSTFIX

    # operations
    def _print_MatMul(self, node, args):
        a, b = args
        left = a.text if a.prec > MUL or (a.prec == MUL and isinstance(a.node, E.MatMul)) \
            else f"({a.text})"
        return f"{left} @ {self.wrap(b, MUL + 1)}", MUL

    def _print_Transpose(self, node, args):
        a = args[0]
        inner = a.node.args[0] if isinstance(a.node, E.Transpose) else None
        if _keepdims_spelling(a.node, 0) or (inner is not None and is_one(node.cols)
                                             and _keepdims_spelling(inner, 1)):
            text = self.done[id(inner if inner is not None else a.node)].text
            return _with_keepdims(text), POSTFIX
        inner = a.text if a.prec >= POSTFIX and not isinstance(a.node, E.Const) else f"({a.text})"
        return f"{inner}.T", POSTFIX         # (2).T: 2.T would read as the number 2. then T

    def _binary(self, args, symbol, prec, same_left_ok):
        a, b = self._operands(args)
        left_ok = a.prec > prec or (a.prec == prec and isinstance(a.node, same_left_ok))
        left = a.text if left_ok else f"({a.text})"
        return f"{left} {symbol} {self.wrap(b, prec + 1)}", prec

    def _operands(self, args: list[Printed]) -> list[Printed]:
        """Elementwise operands, broadcasts left to NumPy semantics where that keeps the shape;
        a 1-D value that text would read as a row beside the other operand is written as the
        column it is (``keepdims=True``, or ``.T.T``)."""
        node = self.current
        bare = bare_broadcasts(node)
        out = [self.done[id(a.node.args[0])] if drop else a for a, drop in zip(args, bare)]
        if len(out) == 2:
            for i in (0, 1):
                if _read_as_row(out[i].node, out[1 - i].node.shape, out[1 - i].node):
                    out[i] = self._as_column(out[i])
        return out

    def _as_column(self, p: Printed) -> Printed:
        """The n x 1 ``p``, which text reads as 1-D, written as a 2-D column."""
        node = p.node
        if _keepdims_spelling(node, 1) and p.text.endswith(")"):
            return Printed(node, _with_keepdims(p.text), POSTFIX)
        return Printed(node, f"{self.wrap(p, POSTFIX)}.T.T", POSTFIX)

    def _print_Add(self, node, args):
        return self._binary(args, "+", ADD, (E.Add, E.Sub))

    def _print_Sub(self, node, args):
        return self._binary(args, "-", ADD, (E.Add, E.Sub))

    def _print_Mul(self, node, args):
        return self._binary(args, "*", MUL, (E.Mul, E.Div))

    def _print_Div(self, node, args):
        return self._binary(args, "/", MUL, (E.Mul, E.Div))

    def _print_Neg(self, node, args):
        a = args[0]
        return f"-{a.text if a.prec > UNARY else '(' + a.text + ')'}", UNARY

    def _print_Pow(self, node, args):
        p = node.exponent
        exponent = str(p) if p.is_Integer else f"({p.p}/{p.q})"
        return f"{self.wrap(args[0], POW + 1)} ** {exponent}", POW

    def _print_Apply(self, node, args):
        op = operation_of(node)
        name = op.latex if op is not None and op.family == "user" else node.name   # g', g''
        return f"{name}({args[0].text})", POSTFIX

    def _print_Broadcast(self, node, args):
        r, c = node.params
        ones = f"ones({r})" if is_one(c) else f"ones({r}, {c})"
        value = E.constant_value(node)
        if value == 1:
            return ones, POSTFIX
        if value == 0:
            return "zeros" + ones[4:], POSTFIX
        a = args[0]
        if _read_as_row(a.node, node.shape):
            a = self._as_column(a)
        left_assoc = a.prec == MUL and isinstance(a.node, (E.Mul, E.Div))
        return f"{a.text if left_assoc else self.wrap(a, MUL + 1)} * {ones}", MUL

    def spell(self, op):
        """A stanza's own text spelling, or its call as the syntax writes it:
        ``sum(X, axis=0)``, with each keyword printed where it is not its default."""
        if callable(op.text):
            return self.bound(op.text)
        if op.syntax is None or op.syntax.form != "call" or op.syntax.arguments != "expressions":
            return None
        syntax = op.syntax

        def method(node, args):
            words = [a.text for a in args]
            if (getattr(node, "axis", None) == 1 and not args[0].node.is_scalar
                    and is_vector(args[0].node)):
                words[0] = f"{self.wrap(args[0], POSTFIX)}.T.T"    # axis 1 of a column
            for k in syntax.keywords:
                if not k.attribute:
                    continue
                value = getattr(node, k.attribute, k.default)
                if value != k.default:
                    words.append(f"{k.name}={value}")
            return f"{syntax.spelling}({', '.join(words)})", POSTFIX
        return method


class BookTextPrinter(TextPrinter):
    """Text as a book prints a result: a product chain without its grouping (``A @ B @ C``
    for ``A @ (B @ C)``), a scalar multiple or a negation of a product without brackets
    (``2 * X.T @ X``, ``-inv(X).T @ G``). Each reads as the same value in matcalc syntax (and
    NumPy's), though it may parse to a differently grouped product; ``TextPrinter`` keeps the
    grouping, so its text parses back to the very node.
    """

    expands = False

    def _print_MatMul(self, node, args):
        a, b = args
        left = a.text if a.prec > MUL or (a.prec == MUL and isinstance(a.node, E.MatMul)) or \
            a.prec == _SCALED else f"({a.text})"
        right = b.text if b.prec > MUL or (b.prec == MUL and isinstance(b.node, E.MatMul)) \
            else f"({b.text})"
        return f"{left} @ {right}", MUL

    def _print_Mul(self, node, args):
        sf = E.scalar_factor(node)
        a, b = self._operands(args)
        divisor = _divisor(sf[0]) if sf is not None else None
        if divisor is not None:                  # D @ X.T / m, (A - B) / 2, not (1/m) * ...
            sign, divisor = ("-", divisor[1:]) if divisor.startswith("-") else ("", divisor)
            left = b.text if b.prec >= MUL and isinstance(b.node, (E.MatMul, E.Mul, E.Div)) \
                else self.wrap(b, MUL + 1)
            if sign and not (b.prec > UNARY or left[:1] == "(" or isinstance(b.node, E.MatMul)):
                left = f"({left})"
            return f"{sign}{left} / {divisor}", MUL
        if sf is not None and isinstance(node.args[1], E.MatMul):
            left = a.text if a.prec > MUL else f"({a.text})"
            return f"{left} * {b.text}", _SCALED          # 2 * X.T @ X, (1/m) * D @ X.T
        return super()._print_Mul(node, args)

    def _print_Add(self, node, args):
        return self._signed(super()._print_Add(node, args), args, "+", "-")

    def _print_Sub(self, node, args):
        return self._signed(super()._print_Sub(node, args), args, "-", "+")

    def _signed(self, printed, args, op, flipped):
        """``a + -b / m`` is ``a - b / m``: a right operand that starts with a minus (at the
        precedence of a product or tighter, so the minus belongs to the whole operand) gives
        its sign to the operator."""
        text, prec = printed
        right = self.wrap(self._operands(args)[1], ADD + 1)
        tail = f" {op} {right}"
        if right[:1] == "-" and text.endswith(tail):
            return f"{text[:-len(tail)]} {flipped} {right[1:]}", prec
        return printed

    def _print_Neg(self, node, args):
        a = args[0]
        if isinstance(a.node, E.MatMul) and a.text[:1] != "(":
            return f"-{a.text}", _SCALED                    # -inv(X).T @ G
        return super()._print_Neg(node, args)


def _divisor(scalar: E.Node) -> str | None:
    """For a constant scalar factor ±1/d (d a whole number or a product of numbers and
    dimensions: 1/2, -1/m, 1/(2*m)), the text of d, with a leading - for -1/d; else None. A
    decimal (0.1) stays as typed."""
    value = E.constant_value(scalar)
    if value is None or value in (1, -1) or not (value.is_positive or value.is_negative):
        return None
    sign = "-" if value.is_negative else ""
    d = abs(1 / value)
    if value.is_Rational and decimal_text(value) is not None:
        return None
    if not (d.is_Integer or d.is_Symbol or (d.is_Mul and all(
            f.is_Integer or f.is_Symbol for f in d.args))):
        return None
    text, prec = number_text(d)
    return sign + (text if prec >= POSTFIX or d.is_Integer or d.is_Symbol else f"({text})")


#: The precedence of ``2 * A @ B`` and ``-A @ B``: below a product's, so no other product
#: takes it as an operand without brackets, above a sum's.
_SCALED = MUL - 1


def to_text(node: E.Node) -> str:
    """``node`` in matcalc syntax (with named shared values when it is very large).

    Past ``MAX_EXPANDED`` characters written out in full, it is written as definitions of its
    shared values, then the result in their terms (``named_text``): linear in its size.

    >>> from matcalc.expr import Var
    >>> A = Var.make("A", ("n", "n")); x = Var.make("x", ("n", 1))
    >>> to_text((A + A.T) @ x)
    '(A + A.T) @ x'
    """
    if expanded_size([node]) > MAX_EXPANDED:
        return named_text([node])
    return TextPrinter().doprint(node)


def text_lengths(lines, names: dict) -> list[int]:
    """The length of each node of ``lines`` printed as a book prints it, with the nodes under
    it in ``names`` (node id -> Var) written as names (one pass over the DAG)."""
    operands = [a for line in lines for a in line.args]
    mapping = {n: names[id(n)] for n in E.postorder(operands) if id(n) in names}
    replaced = iter(E.substitute(operands, mapping))
    remade = []
    for line in lines:
        args = tuple(next(replaced) for _ in line.args)
        remade.append(line.remake(args, {}) if args else line)
    return [len(p.text) for p in BookTextPrinter().print_all(remade)]


def name_values(roots, forward=None, taken=()) -> Named:
    """The definitions and results a printed form shows (``printing.names``)."""
    return choose_names(roots, forward, taken, text_lengths)


def named_text(roots, labels=None, forward=None, taken=(), named: Named | None = None) -> str:
    """``roots`` as a book prints them: a line ``name = value`` per definition, then a line per
    root (``label = value`` when ``labels`` are given).

    >>> from matcalc.expr import Var
    >>> X = Var.make("X", ("n", "n"))
    >>> named_text([2 * (X.T @ X)])
    '2 * X.T @ X'
    """
    named = named or name_values(roots, forward, taken)
    lines = [f"{var.name} = {book_line(d)}" for var, d in named.definitions]
    texts = [book_line(r) for r in named.roots]
    if labels is None:
        lines += texts
    else:
        lines += [f"{label} = {t}" for label, t in zip(labels, texts)]
    return "\n".join(lines)


E.set_describer(to_text)


def book_line(node: E.Node) -> str:
    """One line of a printed form: ``node`` as a book prints it, or, when it is shorter, a sum
    of transposed products as the transpose of a sum (``(A @ X + X @ A).T`` for
    ``X.T @ A.T + A.T @ X.T``): the form chosen by its printed size."""
    printer = BookTextPrinter()
    text = printer.doprint(node)
    if isinstance(node, (E.Add, E.Sub)) and text.count(".T") > 1:
        flipped = _transposed_sum(node, 64)
        if flipped is not None:
            other = f"({BookTextPrinter().doprint(flipped)}).T"
            if _size(other) < _size(text):
                return other
    return text


def _size(text: str) -> int:
    """A printed form's size for choosing between forms: its length without spaces."""
    return len(text.replace(" ", ""))


def _transposed_sum(node: E.Node, budget: int):
    """The transpose of a sum of products, each product reversed with its factors transposed
    (transposes of transposes cancel); None when a term is not a product or the sum is long."""
    if budget <= 0:
        return None
    if isinstance(node, (E.Add, E.Sub)):
        parts = [_transposed_sum(a, budget // 2) for a in node.args]
        if any(p is None for p in parts):
            return None
        return type(node).make(*parts)
    if isinstance(node, E.Neg):
        inner = _transposed_sum(node.args[0], budget - 1)
        return None if inner is None else E.Neg.make(inner)
    sf = E.scalar_factor(node)
    if sf is not None:
        inner = _transposed_sum(sf[1], budget - 1)
        return None if inner is None else E.mul(sf[0], inner)
    if not isinstance(node, E.MatMul):
        return None
    factors, stack = [], [node]
    while stack:
        n = stack.pop()
        if isinstance(n, E.MatMul):
            stack.extend((n.args[0], n.args[1]))    # popped right first: reversed order
        else:
            factors.append(n.args[0] if isinstance(n, E.Transpose) else E.Transpose.make(n))
    result = factors[0]
    for f in factors[1:]:
        result = E.MatMul.make(result, f)
    return result
