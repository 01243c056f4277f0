"""Exact constants: numbers and expressions in dimensions, in one canonical form.

Contract: ``to_number`` turns a Python, NumPy or SymPy scalar into an exact SymPy number (a
rational, or an expression in dimension symbols and functions of numbers such as ``tanh(1)``),
refusing what is not finite, has too many digits or is too large to work on
(``ConstantTooLargeError``), and brings every non-rational constant to one form
(``canonical_number``) however it was reached. ``within`` measures a constant as SymPy's own
(recursive) walks see it; the builders in ``expr`` use it to decide when constants stop
combining. Nothing here knows about expression nodes.
"""

from __future__ import annotations

import functools
import math
import numbers
from fractions import Fraction

import sympy

from .errors import ConstantTooLargeError, MatcalcError

#: Most digits in the numerator or denominator of a number in a constant (the parser's limit,
#: too): ``c = c * c + 1`` over and over would soon be a number too long to print.
MAX_CONSTANT_DIGITS = 1_000
_MAX_CONSTANT_BITS = MAX_CONSTANT_DIGITS * math.log2(10)


def to_number(value) -> sympy.Expr:
    """An exact SymPy number (or expression in dimensions) for a Python or SymPy scalar."""
    if isinstance(value, bool):
        raise MatcalcError(f"{value!r} is not a number matcalc accepts")
    if isinstance(value, numbers.Real) and not isinstance(value, (sympy.Basic, Fraction)):
        # NumPy's scalars too (a float32 as the float64 it widens to)
        value = int(value) if isinstance(value, numbers.Integral) else float(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise MatcalcError(f"{value!r} is not a finite number")
    if isinstance(value, (int, float, Fraction)):
        # a float as the decimal it prints as (0.1 is 1/10); float.__repr__, as NumPy 2 writes
        # its own float64 as np.float64(0.1)
        exact = Fraction(float.__repr__(value)) if isinstance(value, float) else Fraction(value)
        value = sympy.Rational(*exact.as_integer_ratio())
    if not isinstance(value, sympy.Expr):
        raise MatcalcError(f"{value!r} ({type(value).__name__}) is not a number or a matcalc "
                           f"expression")
    _check_size(value)
    if value.is_Rational:
        return value
    if value.has(sympy.zoo, sympy.oo, sympy.nan, -sympy.oo):
        raise MatcalcError(f"{value} is not a finite number")
    if any(not (s.is_integer and s.is_positive) for s in value.free_symbols):
        raise MatcalcError(f"constant {value} may involve only numbers and dimensions")
    # one canonical form, whichever way a constant was reached: 1 + 1/n is (n + 1)/n
    return canonical_number(value)


def _check_size(value: sympy.Expr) -> None:
    """Refuse a constant too large for SymPy to work on (before SymPy's own walks, which recurse
    and repeat shared parts) or holding a number with too many digits."""
    if not within(value, MAX_CONSTANT_NODES, MAX_CONSTANT_DEPTH):
        raise ConstantTooLargeError(
            f"a constant of more than {MAX_CONSTANT_NODES} parts written out, or nested more than "
            f"{MAX_CONSTANT_DEPTH} levels deep, is more than matcalc keeps as one number")
    for number in value.atoms(sympy.Rational):
        if max(abs(number.p).bit_length(), number.q.bit_length()) > _MAX_CONSTANT_BITS:
            raise ConstantTooLargeError(f"a constant with more than {MAX_CONSTANT_DIGITS} "
                                        f"digits is too large")


#: Above this many terms (a bound, before expanding) a constant keeps the form it was built in,
#: and so does a constant of more parts and operations, or deeper, than these.
MAX_CANONICAL_TERMS = 512
MAX_CANONICAL_NODES = 400
MAX_CANONICAL_DEPTH = 48


@functools.lru_cache(maxsize=4096)
def canonical_number(value: sympy.Expr) -> sympy.Expr:
    """One form for a constant, however it was reached: the reduced quotient of polynomials.

    The polynomials' variables are the dimensions and every other part that is not a sum,
    product or integer power (``tanh(1)``, ``sqrt(2)``, with their own arguments made canonical
    first). Each part is swapped for a plain symbol before SymPy's ``cancel``, which then never
    evaluates a number numerically (on ``tanh(1)`` itself it may, for minutes), and swapped back:
    ``(4 - 4 tanh(1)**2) / (4 - 4 tanh(1)**2)`` is 1 and ``1 + 1/n`` is ``(n + 1)/n``.
    Exponentials of multiples of one base become integer powers of one root (``E`` and
    ``exp(1/2)`` are ``exp(1/2)**2`` and ``exp(1/2)``), fractional powers of one base integer
    powers of one root below its degree (``b**(3/2) = b sqrt(b)``, ``b**(-1/2) = sqrt(b) / b``).
    Swapping back may apply a relation between parts (``sqrt(2)**2 = 2``), so the form is
    reduced again until it no longer changes. A sum with roots in its denominator is not
    rationalised: such a number may keep more than one form. The polynomials are put together
    unevaluated (SymPy's evaluation asks questions of each sum that can take it long to answer).
    A constant larger than ``MAX_CANONICAL_NODES`` or deeper than ``MAX_CANONICAL_DEPTH``, or
    that might expand past ``MAX_CANONICAL_TERMS`` terms, keeps its form: still exact, only
    perhaps unequal in form to the same number reached another way.
    """
    for _ in range(4):
        small = within(value, MAX_CANONICAL_NODES, MAX_CANONICAL_DEPTH)
        reduced = _reduce(value) if small else value
        if reduced == value:
            break
        value = reduced
    return value


def within(value, nodes: float = math.inf, depth: float = math.inf) -> bool:
    """Has the SymPy expression ``value``, written out, at most ``nodes`` nodes, nested at most
    ``depth`` deep? A part used twice counts twice, as SymPy's own walks (which recurse) visit
    it twice: ``a = (a + 1) * (a + 2)`` ten times over is small as objects, huge written out.
    Each object is visited once here, and the walk stops as soon as an answer is known."""
    sizes: dict[int, tuple[int, int]] = {}        # id -> (nodes written out, depth)
    stack, visits = [(value, False)], 0
    while stack:
        node, ready = stack.pop()
        if id(node) in sizes:
            continue
        if not ready:
            visits += 1
            if visits > 4 * nodes:
                return False
            stack.append((node, True))
            stack.extend((arg, False) for arg in node.args if id(arg) not in sizes)
            continue
        parts = [sizes[id(arg)] for arg in node.args]
        size = 1 + sum(count for count, _ in parts)
        level = 1 + max((height for _, height in parts), default=0)
        if size > nodes or level > depth:
            return False
        sizes[id(node)] = size, level
    return True


def _reduce(value: sympy.Expr) -> sympy.Expr:
    parts: dict = {}                      # part -> its stand-in symbol
    powers: dict = {}                     # (exp or pow, base) -> {rational exponent: stand-in}
    polynomial = _as_polynomial(value, parts, powers, rebuild=True)
    roots = {}
    for (kind, base), exponents in powers.items():
        q = math.lcm(*(e.q for e in exponents))
        root = sympy.exp(base / q) if kind == "exp" else base ** sympy.Rational(1, q)
        if not (isinstance(root, sympy.exp) or root is sympy.E or root.is_Pow):
            q, root = 1, None                        # it folded (exp(log(2)/2)): no common root
        for e, stand_in in exponents.items():
            if root is None:
                part = sympy.exp(e * base) if kind == "exp" else base ** e
                roots[stand_in] = _as_polynomial(part, parts, None, rebuild=False)
            elif kind == "exp":
                roots[stand_in] = _power(parts.setdefault(root, sympy.Dummy()), int(e * q))
            else:             # root ** (k q + r) = base ** k * root ** r, with 0 <= r < q
                whole, rest = divmod(int(e * q), q)
                roots[stand_in] = sympy.Mul(
                    _power(_as_polynomial(base, parts, None, rebuild=False), whole),
                    _power(parts.setdefault(root, sympy.Dummy()), rest), evaluate=False)
    polynomial = _swap(polynomial, roots)
    if max(_term_bound(polynomial)) > MAX_CANONICAL_TERMS:
        return value
    # the parts' symbols are named in a fixed order of the parts (and before every dimension),
    # so that cancel, whose signs and order follow its symbols' names, gives one answer
    ordered = sorted(parts, key=sympy.default_sort_key)
    symbols = {parts[part]: sympy.Symbol(f"\x01{k:05d}") for k, part in enumerate(ordered)}
    reduced = sympy.cancel(sympy.together(_swap(polynomial, symbols)))
    return reduced.xreplace({symbols[parts[part]]: part for part in ordered})


def _power(base: sympy.Expr, exponent: int) -> sympy.Expr:
    return sympy.Pow(base, exponent, evaluate=False)


def _swap(polynomial: sympy.Expr, symbols: dict) -> sympy.Expr:
    """``polynomial`` (sums, products, integer powers) with its stand-ins swapped, unevaluated."""
    if polynomial in symbols:
        return symbols[polynomial]
    if polynomial.is_Add or polynomial.is_Mul or polynomial.is_Pow:
        return polynomial.func(*(_swap(arg, symbols) for arg in polynomial.args), evaluate=False)
    return polynomial


def _as_polynomial(value: sympy.Expr, parts: dict, powers: dict | None,
                   rebuild: bool) -> sympy.Expr:
    """``value`` with each part that is not a sum, product or integer power swapped for a symbol.

    With ``rebuild``, a part's own arguments are made canonical first, and should that fold it
    into a sum or product (``tanh(-x) = -tanh(x)``, ``sqrt(8) = 2 sqrt(2)``), the parts of that
    are taken as they are. An exponential stands for the product of its terms' exponentials
    (``exp(2 + x) = E**2 exp(x)``, which SymPy joins back into one), recorded in ``powers`` with
    a stand-in for each rational multiple of each base (without ``powers``, they are parts).
    """
    if value.is_Rational or value.is_Symbol:
        return value
    if value.is_Add or value.is_Mul:
        return value.func(*(_as_polynomial(arg, parts, powers, rebuild) for arg in value.args),
                          evaluate=False)
    if value.is_Pow and value.exp.is_Integer:
        return _power(_as_polynomial(value.base, parts, powers, rebuild), value.exp)
    if rebuild and value.args:
        args = tuple(canonical_number(arg) if isinstance(arg, sympy.Expr) else arg
                     for arg in value.args)
        if args != value.args:
            rebuilt = value.func(*args, evaluate=all(map(small_argument, args)))
            return _as_polynomial(rebuilt, parts, powers, rebuild=False)
    if powers is None:
        multiples = []
    elif value is sympy.E:
        multiples = [("exp", sympy.Integer(1), sympy.Integer(1))]
    elif isinstance(value, sympy.exp):
        multiples = [("exp", base, coeff) for coeff, base in
                     (term.as_coeff_Mul() for term in sympy.Add.make_args(value.args[0]))]
    elif value.is_Pow and value.exp.is_Rational:
        multiples = [("pow", value.base, value.exp)]
    else:
        multiples = []
    if not multiples or not all(coeff.is_Rational for _, _, coeff in multiples):
        return parts.setdefault(value, sympy.Dummy())
    return sympy.Mul(*(powers.setdefault((kind, base), {}).setdefault(coeff, sympy.Dummy())
                       for kind, base, coeff in multiples), evaluate=False)


def _term_bound(value: sympy.Expr) -> tuple[int, int]:
    """Bounds on the numbers of terms of ``value``'s numerator and denominator, over a common
    denominator and expanded (each capped just above ``MAX_CANONICAL_TERMS``)."""
    cap = MAX_CANONICAL_TERMS + 1
    if value.is_Add:
        bounds = [_term_bound(arg) for arg in value.args]
        denominator = math.prod(d for _, d in bounds)
        numerator = sum(n * denominator // d for n, d in bounds)
        return min(numerator, cap), min(denominator, cap)
    if value.is_Mul:
        bounds = [_term_bound(arg) for arg in value.args]
        return (min(math.prod(n for n, _ in bounds), cap),
                min(math.prod(d for _, d in bounds), cap))
    if value.is_Pow and value.exp.is_Integer:
        numerator, denominator = _term_bound(value.base)
        k = abs(int(value.exp))
        if value.exp < 0:
            numerator, denominator = denominator, numerator
        # a sum of t terms to the k-th power has at most C(t + k - 1, k) terms
        return (min(math.comb(numerator + k - 1, k), cap) if numerator > 1 else 1,
                min(math.comb(denominator + k - 1, k), cap) if denominator > 1 else 1)
    return 1, 1


#: Constants larger written out, or nested deeper, than this are not combined further (SymPy's
#: own walks recurse and repeat shared parts): ``c * c + 1`` a thousand times over stays a
#: thousand operations on constants.
MAX_CONSTANT_NODES = 2_000
MAX_CONSTANT_DEPTH = 64


def manageable(value: sympy.Expr) -> bool:
    return within(value, MAX_CONSTANT_NODES, MAX_CONSTANT_DEPTH)


#: A function of a constant with more parts than this is not folded: building it, SymPy asks
#: questions about the argument (is it negative? zero?) that can take it minutes to answer.
MAX_FOLDED_ARGUMENT = 32


def small_argument(value) -> bool:
    """Is ``value`` (a constant) small enough that SymPy may build a function of it freely?"""
    return not isinstance(value, sympy.Expr) or within(value, nodes=MAX_FOLDED_ARGUMENT)


def decimal_places(value: sympy.Rational) -> int | None:
    """The number of decimal places of a fraction typed as a decimal: its denominator is 10 or
    more and a product of 2s and 5s (9/10 -> 1, 8943/200000 -> 6); None for any other fraction
    (1/2, 1/4 and 2/3 are not read as decimals) or past 400 places.

    >>> decimal_places(sympy.Rational(9, 10)), decimal_places(sympy.Rational(1, 4))
    (1, None)
    """
    q = int(value.q)
    if q < 10:
        return None
    rest, counts = q, []
    for prime in (2, 5):
        count = 0
        while rest % prime == 0:
            rest, count = rest // prime, count + 1
        counts.append(count)
    places = max(counts)
    return places if rest == 1 and places <= 400 else None
