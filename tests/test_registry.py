"""The operation registry is complete: every operation covers every concern, or says why not.

One meta-test over ``matcalc.ops.OPERATIONS``. For each operation and each concern it checks the
concern for real, on the operation's own docs examples — it parses back from text, prints in
every printer (LaTeX that latex2mathml converts, NumPy code that computes what the independent
reference evaluator computes, in plain and portable form), its derived rule agrees with central
differences of the reference evaluator, its value name is an identifier, its docs example is on
docs/rules.md — or finds the concern excluded with a reason, and then not provided either.
Ground truth comes from tests/reference.py and tests/property/strategies.py (hand-written
NumPy and SymPy), never from matcalc: an operation added without an oracle fails here.
"""

from __future__ import annotations

import inspect
import keyword
import os

import numpy as np
import pytest
import sympy

import matcalc as mc
from matcalc import expr as E
from matcalc.check import FUNCTION_DOMAINS
from matcalc.index import lower
from matcalc.notation import Fresh
from matcalc.ops import (CALLS, CONCERNS, FUNCTIONS, OPERATIONS, OPERATORS, RESERVED_NAMES,
                         RULE_KINDS, operation_of)
from matcalc.rules import RULE_KINDS as KIND_OF
from matcalc.parse import FUNCTIONS as PARSER_FUNCTIONS
from matcalc.printing.latex import LatexPrinter, to_mathml
from matcalc.printing.numpy import NumpyPrinter, Output, compile_module, numpy_source
from matcalc.printing.text import TextPrinter, to_text
from matcalc.rules import apply_rule, vjp_rule
from matcalc.simplify import simplify

import reference
from property import strategies

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = {"n": 3, "p": 4, "m": 2}


class Variables:
    """The variables the registry's docs examples are written over (as docs/generate.py)."""

    A = E.Var.make("A", ("n", "p")); B = E.Var.make("B", ("p", "m"))
    C = E.Var.make("C", ("n", "p")); S = E.Var.make("S", ("n", "n"))
    x = E.Var.make("x", ("n", 1)); r = E.Var.make("r", (1, "p")); a = E.Var.make("a", (1, 1))


EXAMPLES = [(op, label, build(Variables)) for op in OPERATIONS for label, build in op.examples]
EXAMPLE_IDS = [f"{op.name}:{label}" for op, label, _ in EXAMPLES]
ALL = [(op, concern) for op in OPERATIONS for concern in CONCERNS + ("syntax", "build")]

#: Operations the property tests' random expressions do not draw, and why. Everything else is
#: drawn by tests/property/strategies.py (``strategies.DRAWN``).
NOT_DRAWN = {
    "einsum": "the collapse property test draws random contractions of its own "
              "(tests/property/test_invariants.py), and simplification never builds one",
    "det": "needs inputs far from singular: the Cookbook and tests/test_rules.py draw them",
    "logdet": "needs inputs far from singular: the Cookbook and tests/test_rules.py draw them",
    "inv": "needs inputs far from singular: the Cookbook and tests/test_rules.py draw them",
    "diag": "changes a vector into a square matrix: checked on the Cookbook and in rules",
    "norm": "not differentiable at 0, which random expressions reach: checked in rules and ML "
            "tests on inputs away from 0",
    "norm1": "kinks at every zero entry of its argument: checked in rules on inputs away from 0",
    "softmax": "checked against the reference in rules, the ML tests and the backward tests",
    "logsumexp": "checked against the reference in rules, the ML tests and the backward tests",
    "zeros": "a constant whose gradient is zero: ones and eye are the constants drawn",
}
_COMPOSITE = ("built from operations the property tests draw (relu, step, expm1, sums, "
              "powers); tests/property/test_numpy_meaning.py draws it against NumPy and "
              "tests/test_numpy_operations.py checks its gradients")
NOT_DRAWN.update({name: "not differentiable where entries tie, which random expressions of "
                  "shared nodes reach (max(A - A)): tests/test_numpy_operations.py checks it on "
                  "distinct entries and at ties, the NumPy-idiom test draws it against NumPy"
                  for name in ("max", "min", "argmax_weights", "argmin_weights")})
NOT_DRAWN.update({name: _COMPOSITE for name in ("maximum", "minimum", "clip", "where",
                                                "leaky_relu", "elu", "var", "std")})


def provided(op, concern: str) -> bool:
    """Whether the stanza declares something for ``concern`` (or a printer prints it itself)."""
    if concern == "node":
        return op.node is not None
    if concern == "syntax":
        return op.syntax is not None
    if concern == "build":
        return op.build is not None
    if concern == "index form":
        return op.lower is not None
    if concern == "rule kind":
        return op.kind is not None
    if concern in ("text", "latex", "numpy"):
        printer = {"text": TextPrinter, "latex": LatexPrinter, "numpy": NumpyPrinter}[concern]
        own = op.node is not None and any(
            hasattr(printer, f"_print_{cls.__name__}") for cls in op.node.__mro__[:-1]
            if cls is not E.Node)
        spelling = getattr(op, concern)
        generic = concern == "text" and op.syntax is not None and op.syntax.form == "call"
        return own or spelling is not None or generic
    if concern == "value name":
        return op.value_name is not None
    if concern == "docs example":
        return bool(op.examples)
    raise AssertionError(concern)


@pytest.mark.parametrize("op,concern", ALL, ids=[f"{o.name}:{c}" for o, c in ALL])
def test_every_concern_is_covered_or_excluded_with_a_reason(op, concern):
    reason = op.excluded.get(concern)
    if reason is None:
        assert provided(op, concern), f"{op.name} declares nothing for {concern!r}"
    else:
        assert len(reason.split()) >= 3, f"{op.name}: give a reason, not {reason!r}"


def test_the_registry_is_in_declaration_order_and_names_are_unique():
    names = [op.name for op in OPERATIONS]
    assert len(set(names)) == len(names)
    assert list(FUNCTIONS) == [op.name for op in OPERATIONS if op.function is not None]


# ---------------------------------------------------------------------------------------------
# Syntax, reserved names, the public API
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("op", list(CALLS.values()), ids=lambda op: op.name)
def test_every_call_parses_is_reserved_and_exported(op):
    assert op.name in PARSER_FUNCTIONS
    assert op.name in RESERVED_NAMES and not keyword.iskeyword(op.name)
    exported = getattr(mc, op.name)
    assert exported is op.build and op.name in mc.__all__
    summary = (exported.__doc__ or "").strip().splitlines()
    assert summary and summary[0].endswith("."), f"mc.{op.name} needs a one-line summary"
    with pytest.raises(mc.MatcalcError, match="reserved"):
        mc.Matrix(op.name, "n", "n")


def test_operators_are_the_parsers():
    assert set(OPERATORS) == {"@", "+", "-", "*", "/", "**"}


@pytest.mark.parametrize("op,label,node", EXAMPLES, ids=EXAMPLE_IDS)
def test_example_is_built_by_its_operation(op, label, node):
    assert operation_of(node) is op
    assert isinstance(node, op.node)


@pytest.mark.parametrize("op,label,node", [e for e in EXAMPLES if e[0].syntax is not None],
                         ids=[i for e, i in zip(EXAMPLES, EXAMPLE_IDS) if e[0].syntax])
def test_example_prints_as_text_that_parses_back(op, label, node):
    assert mc.parse(to_text(node), declared(node)) is node


def declared(node) -> dict:
    """The shapes dict of the node's variables, as text takes it."""
    forms = {"scalar": lambda v: (), "vector": lambda v: (str(v.rows),),
             "matrix": lambda v: (str(v.rows), str(v.cols))}
    return {v.name: forms[v.kind](v) for v in E.variables([node])}


# ---------------------------------------------------------------------------------------------
# Printing, against the independent reference evaluator
# ---------------------------------------------------------------------------------------------

def values_for(op, node, rng) -> dict:
    """Inputs in the operation's domain: inside a function's domain, away from its kinks;
    square matrices far from singular."""
    values = reference.random_values(E.variables([node]), SIZES, rng)
    for v in E.variables([node]):
        value = values[v.name]
        if op.function is not None and op.domain != "real":
            value = rng.uniform(*FUNCTION_DOMAINS[op.domain], size=value.shape)
        for kink in op.kinks:
            value = np.where(np.abs(value - kink) < 0.1, kink + 0.5, value)
        if v.rows == v.cols and v.rows != 1:
            value = value + 3 * np.eye(value.shape[0])
        values[v.name] = value
    return values


@pytest.mark.parametrize("op,label,node", EXAMPLES, ids=EXAMPLE_IDS)
def test_example_prints_in_latex_that_converts_to_mathml(op, label, node):
    latex = LatexPrinter().doprint(node)
    assert latex and "<math" in to_mathml(latex)


@pytest.mark.parametrize("portable", [False, True], ids=["numpy", "portable"])
@pytest.mark.parametrize("op,label,node", EXAMPLES, ids=EXAMPLE_IDS)
def test_example_code_computes_what_the_reference_computes(op, label, node, portable):
    variables = E.variables([node])
    source = numpy_source([Output(node)], variables, "value", portable=portable)
    value = getattr(compile_module(source, "value"), "value")
    values = values_for(op, node, np.random.default_rng(3))
    args = {v.name: values[v.name].reshape(-1) if v.kind == "vector" else values[v.name]
            for v in variables}
    takes = inspect.signature(value).parameters
    args.update({d: size for d, size in SIZES.items() if d in takes})
    got = np.asarray(value(**args), dtype=float).reshape(
        [reference.size(d, SIZES) for d in node.shape])
    want = reference.evaluate(node, values, SIZES)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# Index form and the derived rule, against finite differences of the reference
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("op,label,node", [e for e in EXAMPLES if e[0].lower],
                         ids=[i for e, i in zip(EXAMPLES, EXAMPLE_IDS) if e[0].lower])
def test_example_lowers_to_index_notation(op, label, node):
    bases = [sympy.IndexedBase(f"X{k}") for k in range(len(node.args))]
    i, j = sympy.symbols("i j", integer=True)
    assert isinstance(lower(node, bases, i, j, Fresh()), sympy.Expr)


RULE_CASES = [(op, label, node, position) for op, label, node in EXAMPLES if op.kind
              for position in range(len(node.args))]


@pytest.mark.parametrize("op,label,node,position", RULE_CASES,
                         ids=[f"{o.name}:{lab}|d{p}" for o, lab, _, p in RULE_CASES])
def test_derived_rule_agrees_with_finite_differences_of_the_reference(op, label, node,
                                                                      position):
    assert op.kind in RULE_KINDS and KIND_OF[type(node)] == op.kind
    rng = np.random.default_rng(position + 11)
    operand = node.args[position]
    slot = E.Var.make("X", operand.shape)
    node = node.remake(tuple(slot if q == position else arg
                             for q, arg in enumerate(node.args)), {})
    g = E.Var.make("G", node.shape)
    rule, dims = vjp_rule(node, position)
    contribution = simplify(apply_rule(rule, node, g, dims))
    values = values_for(op, node, rng)
    weight = rng.standard_normal(tuple(reference.size(d, SIZES) for d in node.shape))
    values["G"] = weight
    got = reference.evaluate(contribution, values, SIZES)
    want = reference.numeric_gradient(node, slot, values, SIZES, weight)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------------------------------------
# Functions: domains, kinks, oracles
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_every_function_has_its_oracles_and_a_domain_the_check_can_draw(name):
    op = FUNCTIONS[name]
    assert name in reference.FUNCS, "add its NumPy oracle to tests/reference.py"
    assert name in strategies.NUMPY_FUNCTIONS, "add it to tests/property/strategies.py"
    assert name in strategies.FUNCTION_BOUNDS, "add its bounds to tests/property/strategies.py"
    assert op.domain == "real" or op.domain in FUNCTION_DOMAINS
    if not op.kinks:
        assert name in reference.SYMPY_FUNCS, "add its SymPy oracle to tests/reference.py"


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_declared_kinks_are_kinks_and_smooth_functions_are_smooth(name):
    """At a declared kink the oracle jumps or its one-sided slopes differ; elsewhere in its
    domain a function's slopes agree (so a kink was not forgotten)."""
    op, f = FUNCTIONS[name], reference.FUNCS[name]
    h = 1e-6

    def slopes(x):
        y = np.array([x - 2 * h, x - h, x, x + h, x + 2 * h])
        v = f(y)
        return (v[2] - v[0]) / (2 * h), (v[4] - v[2]) / (2 * h), abs(v[3] - v[1])

    for kink in op.kinks:
        left, right, jump = slopes(float(kink))
        assert jump > 1e-3 or abs(left - right) > 1e-3, f"{name} is smooth at {kink}"
    low, high = FUNCTION_DOMAINS.get(op.domain, (-2.0, 2.0))
    for x in np.linspace(low, high, 7):
        if any(abs(x - k) < 0.05 for k in op.kinks):
            continue
        left, right, _ = slopes(float(x))
        assert abs(left - right) < 1e-3 * max(1.0, abs(left)), f"{name} has a kink at {x}"


# ---------------------------------------------------------------------------------------------
# Docs and property tests
# ---------------------------------------------------------------------------------------------

def test_every_docs_example_is_on_the_rules_page():
    with open(os.path.join(ROOT, "docs", "rules.md"), encoding="utf-8") as f:
        page = f.read()
    missing = [label for op, label, _ in EXAMPLES if f"| {label} |" not in page]
    assert missing == [], "run python docs/generate.py"


def test_every_operation_is_drawn_by_the_property_tests_or_says_why_not():
    names = {op.name for op in OPERATIONS}
    assert set(strategies.DRAWN) <= names and set(NOT_DRAWN) <= names
    assert names - set(strategies.DRAWN) - set(NOT_DRAWN) == set()
    assert set(strategies.DRAWN) & set(NOT_DRAWN) == set()


def test_the_value_names_are_identifiers():
    for op, label, node in EXAMPLES:
        if op.value_name is not None:
            for layer in (None, "1"):
                name = op.value_name(node, layer)
                assert name is None or name.isidentifier(), (op.name, name)
