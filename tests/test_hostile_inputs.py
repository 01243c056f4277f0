"""Hostile text: every input gives a node or a MatcalcError of the exact class, and nothing runs."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matcalc.errors import MatcalcError, ParseError, ShapeError
from matcalc.expr import Node
from matcalc.parse import MAX_DEPTH, MAX_LENGTH, parse
from matcalc.printing.text import to_text

SHAPES = {"X": ("n", "n"), "Y": ("n", "n"), "x": ("n",), "y": ("n",), "z": ("n",), "a": ()}


def P(text):
    return parse(text, SHAPES)


def short_id(value) -> str:
    """A readable test id for a long hostile text."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}...({len(text)} chars)"


HOSTILE = [
    # code execution and introspection
    "().__class__.__bases__[0].__subclasses__()",
    "X.__class__",
    "X.__dict__",
    "x.T.__class__.__init__.__globals__",
    "open('f')",
    "exec('1')",
    "eval('1')",
    "compile('1', 'f', 'eval')",
    "getattr(X, 'T')",
    "globals()",
    "__builtins__",
    "breakpoint()",
    "sum.__call__(X)",
    "exp(X).real",
    # constructs outside the whitelist
    "lambda: 1",
    "(lambda q: q)(X)",
    "[x for x in y]",
    "{x for x in y}",
    "{x: 1 for x in y}",
    "(x for x in y)",
    "x if y else z",
    "X[0]",
    "X[0:2]",
    "X < Y",
    "X == Y",
    "X and Y",
    "not X",
    "~X",
    "X % 2",
    "X // 2",
    "X ^ 2",
    "X | Y",
    "X << 1",
    'f"{X}"',
    "'a' + 'b'",
    "'a'",
    "b'x'",
    "1j",
    "True",
    "X * False",
    "None",
    "...",
    "(yield)",
    "(yield from X)",
    "await x",
    "(X, Y)",
    "[X]",
    "{X: Y}",
    "{X}",
    "exp(*X)",
    "exp(**X)",
    "sum(X, axis=2)",
    "sum(X, axis=-3)",
    "sum(X, keepdims=1)",
    "sum(X, 1, True)",
    "exp()",
    "exp(X, Y)",
    "exp(x=X)",
    "2 ** 10**20",
    "2 ** 10 ** 10",
    "10 ** 10 ** 3",
    "10 ** 999 * 10 ** 999 * X",
    "(1/10) ** 999 / 10 ** 999 * X",
    "1e999 * X",
    "123456789012345678 * X",
    "(" * 100,
    "X +",
    "",
    "x\0",
    "import os",
    "x = 1",
    "del x",
    "x; y",
    "x\ny",
    "#",
    "sum(eye(__import__))",
]

HOSTILE_OTHER = [
    ("sum(X) + det(x)", ShapeError),
    ("inv(x) @ x", ShapeError),
    ("softmax(X, axis=3)", ParseError),
    ("x @ X @ x @ X", ShapeError),
    ("sum(X, keepdims=True)", ShapeError),
    ("sum(x, axis=1)", ShapeError),
    ("trace(x)", ShapeError),
    ("0 ** -1", MatcalcError),
    ("x * (1 / 0)", MatcalcError),
]


@pytest.mark.parametrize("text", HOSTILE, ids=short_id)
def test_hostile_text_is_a_parse_error(text):
    with pytest.raises(MatcalcError) as info:
        P(text)
    assert type(info.value) is ParseError, info.value


@pytest.mark.parametrize("text, error", HOSTILE_OTHER)
def test_hostile_text_other_errors(text, error):
    with pytest.raises(MatcalcError) as info:
        P(text)
    assert type(info.value) is error, info.value


def test_import_never_runs(tmp_path):
    target = tmp_path / "pwned"
    for text in [f"__import__('os').system('touch {target}')",
                 f"open('{target}', 'w')",
                 f"exec(\"open('{target}', 'w')\")",
                 f"eval(\"open('{target}', 'w')\")",
                 f"exp(x) + __import__('os').system('touch {target}')",
                 f"[__import__('os').system('touch {target}') for q in x]"]:
        with pytest.raises(MatcalcError) as info:
            P(text)
        assert type(info.value) is ParseError
        assert not target.exists()


def test_call_of_an_attribute_is_named():
    with pytest.raises(ParseError, match="attribute or method") as info:
        P("__import__('os').system('ls')")
    assert info.value.start == 0


@pytest.mark.parametrize("text, words", [
    ("lambda: 1", "a lambda"),
    ("[x for x in y]", "a list comprehension"),
    ("x if y else z", "a conditional expression"),
    ("X < Y", "a comparison"),
    ("X and Y", "a boolean operator"),
    ('f"{X}"', "an f-string"),
    ("(yield)", "yield"),
    ("await x", "await"),
    ("X[0]", "indexing"),
    ("(X, Y)", "a tuple"),
    ("X.__dict__", r"attribute \.__dict__"),
    ("X ^ 2", r"for a power write \*\*"),
    ("1j", "complex"),
    ("True", "not a number"),
    ("'a' + 'b'", "string"),
])
def test_constructs_are_named_in_plain_words(text, words):
    with pytest.raises(ParseError, match=words):
        P(text)


@pytest.mark.parametrize("value", [b"X + Y", None, 3, ["X"], ("X",)])
def test_non_string_input(value):
    with pytest.raises(MatcalcError) as info:
        P(value)
    assert type(info.value) is ParseError


def test_str_subclass_is_read_as_plain_text():
    class Sneaky(str):
        def strip(self, *args):
            raise RuntimeError("called")

    assert P(Sneaky("X @ x")) is P("X @ x")


def test_length_limit():
    with pytest.raises(ParseError, match="limit is 20000") as info:
        P("x" * 10**6)
    assert len(str(info.value)) < 200                  # the message does not repeat the text
    with pytest.raises(ParseError, match="characters long"):
        P("x + " * (MAX_LENGTH // 4) + "x")


def test_nested_parentheses():
    with pytest.raises(ParseError, match="parentheses"):
        P("(" * 9_000 + "x" + ")" * 9_000)


@pytest.mark.parametrize("text", ids=short_id, argvalues=[
    "-" * 10_000 + "x",
    "+" * 10_000 + "x",
    "x" + " ** x" * 3000,
    "x" + ".T" * 9000,
    "+".join(["x"] * 9000),
])
def test_deep_nesting_fails_cleanly(text):
    with pytest.raises(ParseError, match="nested too deeply"):
        P(text)


def test_3000_term_sum_parses_quickly():
    start = time.perf_counter()
    node = P(" + ".join(["x"] * 3000))
    assert isinstance(node, Node) and node.shape == P("x").shape
    assert time.perf_counter() - start < 2.0


def test_deep_but_allowed_chains():
    assert isinstance(P("-" * 1000 + "x"), Node)
    assert isinstance(P("x" + ".T" * 1000), Node)
    assert isinstance(P("+".join(["x"] * (MAX_DEPTH - 10))), Node)


@pytest.mark.parametrize("text", ids=short_id, argvalues=[
    " + ".join(["n"] * 3000),              # each step would run SymPy's simplify
    " * ".join(["n"] * 40) + " * n ** 40",    # n ** 80: beyond the power a constant may have
    " * ".join(f"(n + {k}) ** 4" for k in range(1, 9)) + " + 1",    # a degree-32 polynomial
    "(" + " + ".join(f"exp({k})" for k in range(1, 12)) + ") ** 4",  # a sum too large to expand
    " * ".join(f"(1 + exp({k}))" for k in range(1, 60)),            # each product is expanded
    "n ** 1000",
    "2 ** 100000",
    "(1/3) ** 5000",
    " * ".join(["1e300"] * 2000),
    "(2 ** 3000) ** 2",
])
def test_constant_arithmetic_is_capped(text):
    start = time.perf_counter()
    with pytest.raises(ParseError):
        P(text)
    assert time.perf_counter() - start < 3.0


# ---------------------------------------------------------------------------------------------
# Random text
# ---------------------------------------------------------------------------------------------

TOKENS = ["X", "Y", "x", "y", "z", "a", "n", "q", "0", "1", "2", "0.5", "1e308", "99999", "+", "-",
          "*", "/", "@", "**", "(", ")", "(", ")", ",", ".T", ".", "T", "sum", "mean", "trace",
          "exp", "log", "relu", "ones", "zeros", "eye", "einsum", "det", "axis=", "axis=0",
          "axis=1", "'ij,jk->ik'", '"ii->"', "[", "]", "lambda", ":", "if", "else", "not", "and",
          "<", "%", "'", '"', "#", "\n", " ", "\\", "__class__", "__import__", "=", ":=", "*", "~"]


def _check_outcome(text):
    try:
        result = P(text)
    except MatcalcError:
        return
    assert isinstance(result, Node)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_random_text_gives_a_node_or_a_matcalc_error(text):
    _check_outcome(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=25))
def test_random_tokens_give_a_node_or_a_matcalc_error(tokens):
    _check_outcome(" ".join(tokens))
    _check_outcome("".join(tokens))


EXPR = st.recursive(
    st.sampled_from(["X", "Y", "x", "a", "n", "2", "0.5", "eye(n)", "ones(n)"]),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "@"]), inner).map(" ".join),
        st.tuples(inner, st.sampled_from(["2", "-1", "(1/2)", "0.5"])).map("({0[0]}) ** {0[1]}".format),
        st.tuples(st.sampled_from(["exp", "tanh", "sum", "trace", "-", "mean"]), inner)
        .map("{0[0]}({0[1]})".format),
        inner.map("({}).T".format),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(EXPR)
def test_random_well_formed_text_reads_back_or_fails_cleanly(text):
    try:
        node = P(text)
    except MatcalcError:
        return
    printed = to_text(node)
    assert P(printed) is node, printed
