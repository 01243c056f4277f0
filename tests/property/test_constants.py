"""Constants have one form, however they were reached (``expr.canonical_number``).

Random exact constants over numbers, the dimensions n and m, and functions of numbers (tanh(1),
E, sqrt(2), sin(2), and tanh / exp / square roots of what was drawn). Properties: the canonical
form keeps the value (compared at 30 digits, dimensions substituted), is its own canonical form,
equals the canonical form of the same number reached another way (expanded, over a common
denominator; drawn without square roots, whose sums in a denominator are not rationalised), and
a constant built with matcalc's builders and printed as text parses back to the same node.
"""

from __future__ import annotations

import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

import matcalc as mc
from matcalc import constants as C
from matcalc import expr as E
from matcalc.constants import MAX_CANONICAL_TERMS, canonical_number
from matcalc.expr import Const
from matcalc.ops.elementwise import apply

from strategies import examples

N, M = sympy.Symbol("n", integer=True, positive=True), sympy.Symbol("m", integer=True, positive=True)
SIZES = {N: sympy.Rational(37, 10), M: sympy.Rational(53, 7)}   # off every small root
LEAVES = (sympy.Integer(2), sympy.Integer(-3), sympy.Rational(1, 3), N, M, sympy.tanh(1),
          sympy.E, sympy.sqrt(2), sympy.sin(2), sympy.exp(sympy.Rational(1, 2)))


def _combine(children, radicals=True):
    def build(draw_op):
        op, a, b, power = draw_op
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            return a / b if b != 0 else a
        if op == "**":
            return a ** power if a != 0 else a
        if op == "tanh":
            return sympy.tanh(a)
        if op == "exp":                 # kept small: exp of a bounded argument
            return sympy.exp(sympy.tanh(a))
        return sympy.sqrt(a ** 2 + 1)
    ops = st.sampled_from(("+", "-", "*", "/", "**", "tanh", "exp") + (("sqrt",) if radicals else ()))
    return st.tuples(ops, children, children, st.sampled_from((2, 3, -1, -2))).map(build)


constants = st.recursive(st.sampled_from(LEAVES), _combine, max_leaves=8)
#: without square roots: numbers whose parts have no algebraic relation SymPy knows, for which
#: the canonical form is unique (a sum of roots in a denominator is not rationalised)
rational_functions = st.recursive(
    st.sampled_from([leaf for leaf in LEAVES if not leaf.has(sympy.sqrt(2))]),
    lambda children: _combine(children, radicals=False), max_leaves=8)


def _value(x: sympy.Expr) -> sympy.Expr:
    return sympy.N(x.xreplace(SIZES), 30)


def _same_value(a: sympy.Expr, b: sympy.Expr) -> bool:
    va, vb = _value(a), _value(b)
    if not va.is_finite:
        return True
    return abs(va - vb) <= sympy.Float("1e-20", 30) * max(1, abs(va))


@settings(max_examples=examples(200))
@given(x=constants)
def test_the_canonical_form_keeps_the_value_and_is_its_own(x):
    c = canonical_number(x)
    assert _same_value(c, x), f"{x} became {c}"
    assert canonical_number(c) == c, f"{x} -> {c} -> {canonical_number(c)}"


def _expands_within_limit(x: sympy.Expr) -> bool:
    return canonical_number(x) != x or max(C._term_bound(x)) <= MAX_CANONICAL_TERMS


@settings(max_examples=examples(200))
@given(a=rational_functions, b=rational_functions, c=rational_functions)
def test_the_same_number_reached_two_ways_has_one_form(a, b, c):
    if _value(c) != 0:
        together, apart = (a + b) / c, a / c + b / c
        if _expands_within_limit(together) and _expands_within_limit(apart):
            assert canonical_number(together) == canonical_number(apart), f"({a} + {b}) / {c}"
    product, squares = (a + b) * (a - b), a ** 2 - b ** 2
    if _expands_within_limit(product) and _expands_within_limit(squares):
        assert canonical_number(product) == canonical_number(squares), f"({a} + {b})({a} - {b})"


def _node(x: sympy.Expr) -> E.Node:
    """``x`` built with matcalc's builders, as the engine and the parser build constants."""
    if x.is_Add:
        return sum((_node(arg) for arg in x.args[1:]), _node(x.args[0]))
    if x.is_Mul:
        node = _node(x.args[0])
        for arg in x.args[1:]:
            node = node * _node(arg)
        return node
    if x.is_Pow:
        return E.power(_node(x.base), x.exp)
    if x is sympy.E:
        return apply("exp", E.Const.make(1))
    if isinstance(x, (sympy.tanh, sympy.exp, sympy.sin)):
        return apply(type(x).__name__, _node(x.args[0]))
    return E.Const.make(x)


@settings(max_examples=examples(100))
@given(x=constants)
def test_a_constant_printed_as_text_parses_back_to_itself(x):
    X = mc.Matrix("X", "n", "m")
    node = _node(x) * X
    try:
        back = mc.parse(str(node), {"X": ("n", "m")})
    except mc.ParseError as error:      # the parser's limits on constants' size may refuse it
        assert "constant" in str(error) or "power" in str(error), str(error)
        return
    assert back is node, f"{node} parsed back as {back}"


def test_the_quotient_of_r15_is_one():
    t = sympy.tanh(1)
    numerator = sympy.Mul(-1, sympy.Add(-4, 4 * t ** 2), evaluate=False)
    quotient = sympy.Mul(numerator, sympy.Pow(4 - 4 * t ** 2, -1), evaluate=False)
    assert Const.make(quotient) is Const.make(1)


def test_relations_between_parts_settle():
    root = sympy.sqrt(2)
    assert canonical_number(1 / (1 - root) ** 2) == canonical_number(1 / (3 - 2 * root))
    e = sympy.exp(sympy.tanh(1))
    assert canonical_number(e * e) == canonical_number(sympy.exp(2 * sympy.tanh(1)))
    assert canonical_number((1 + 1 / N) * N) == N + 1


def test_a_constant_too_large_to_expand_keeps_its_form():
    parts = (sympy.tanh(1), sympy.E, sympy.sqrt(2), sympy.sin(2), N, M)
    x = sympy.Integer(1)
    for k in range(12):
        x *= parts[k % 6] + k + 1
    x = 1 / x + 1
    assert MAX_CANONICAL_TERMS < 2 ** 12
    assert canonical_number(x) == x
