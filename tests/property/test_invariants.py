"""Invariants over random expressions: text round trip, simplification, generated code, collapse,
confluence.

(a) ``parse(str(e)) is e`` for drawn expressions and their gradients (with the upstream G
    declared), and the text is stable; (b) ``simplify`` is idempotent and keeps the value (by the
    reference evaluator, tests/reference.py); (c) ``value_function()`` agrees with the strategy's
    independent closure, and so does the reference evaluator; (d) ``collapse`` of random
    contractions equals ``numpy.einsum`` of the same contraction and is idempotent; (e) swapping
    the operands of + and elementwise * does not change the gradients' values.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy
from hypothesis import assume, event, given, settings

import matcalc as mc
from matcalc.collapse import ZERO, collapse
from matcalc.expr import Var

from strategies import (DOMAINS, INDEX_SIZES, INDICES, SHAPES, Contraction, argument,
                        call_generated, cases, contractions, examples, kind_of, reference_value,
                        shapes_with_upstream)

KINK_MARGIN = 1e-3


def kinks_clear(kinks: list) -> bool:
    return all(np.min(np.abs(x)) >= KINK_MARGIN for _, x in kinks)


def derivation(case, node=None):
    """mc.grad of the case's expression (or ``node``) for all its variables; None if refused."""
    try:
        return mc.grad(case.node if node is None else node, [v.node for v in case.variables])
    except mc.UnsupportedError as err:
        event(f"refused: {type(err).__name__}")
        return None


def assert_close(got, want, what: str, rtol: float = 1e-9) -> None:
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    scale = max(1.0, float(np.max(np.abs(want))) if want.size else 1.0)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=what)


def upstream_value(case, res, shape):
    """A random G for a non-scalar expression (by its name in ``res``), else nothing."""
    if res is None or res.upstream is None:
        return {}
    rng = np.random.default_rng(case.seed + 1)
    return {res.upstream.name: rng.uniform(-1.0, 1.0, size=shape)}


# -- (a) text round trip ----------------------------------------------------------------------

def assert_round_trip(node, shapes) -> None:
    text = str(node)
    back = mc.parse(text, shapes, DOMAINS)
    assert back is node, f"{text!r} parses back as {str(back)!r}, a different expression"
    assert str(back) == text


@settings(max_examples=examples(150))
@given(case=cases())
def test_text_round_trip_of_expressions_and_their_gradients(case):
    assert_round_trip(case.node, SHAPES)
    assert_round_trip(case.swapped, SHAPES)
    res = derivation(case)
    if res is None:
        return
    shapes = shapes_with_upstream(case.node, res.upstream.name if res.upstream else "G")
    for g in res.gradients:
        assert_round_trip(g, shapes)


def test_a_gradient_with_constant_terms_parses_back_to_itself():
    a = mc.Scalar("a")
    g = mc.grad(a - a, a).gradient
    assert mc.parse(str(g), {"a": ()}) is g


def test_a_gradient_with_a_dimension_constant_parses_back_to_itself():
    x = mc.Vector("x", "n")
    g = mc.grad(mc.sum(x) + mc.sum(x) / mc.dim("n"), x).gradient
    assert mc.parse(str(g), {"x": ("n",)}) is g


def test_a_gradient_with_a_column_over_a_row_parses_back_to_itself():
    w, K = mc.Vector("w", "k"), mc.Matrix("K", "k", "k")
    g = mc.grad(mc.sum(-(K / w.T) * w), K).gradient
    assert mc.parse(str(g), {"w": ("k",), "K": ("k", "k")}) is g


# R12: the gradient prints (2/n**5) * sum(x) * ones(n); the parser refused powers beyond 4
def test_a_gradient_with_a_high_power_of_a_dimension_parses_back_to_itself():
    x, n = mc.Vector("x", "n"), mc.dim("n")
    g = mc.grad(mc.sum(x) / n ** 2 * (mc.sum(x) / n ** 3), x).gradient
    assert mc.parse(str(g), {"x": ("n",)}) is g


# R14: simplify left log(sum(ones(n, n))) as log applied to n**2, which parses back as 2*log(n)
def test_a_gradient_with_a_logarithm_of_a_dimension_parses_back_to_itself():
    A = mc.Matrix("A", "n", "n")
    g = mc.grad(mc.log(mc.sum(mc.ones("n", "n"))) * mc.sum(A), A).gradient
    assert mc.parse(str(g), {"A": ("n", "n")}) is g


# -- (b) simplification -----------------------------------------------------------------------

def simplification_roots(case):
    """The expression, its raw gradients from the sweep and its simplified gradients, with
    the values to evaluate them at (None when a kink is too close)."""
    values = case.values()
    value, kinks = case.evaluate(values)
    if not kinks_clear(kinks):
        return None, None
    res = derivation(case)
    roots = [case.node]
    if res is not None:
        roots += list(res.sweep.gradients) + list(res.gradients)   # raw, then simplified
    return roots, {**values, **upstream_value(case, res, value.shape)}


@settings(max_examples=examples(150))
@given(case=cases())
def test_simplify_is_idempotent_and_keeps_the_value(case):
    roots, values = simplification_roots(case)
    assume(roots is not None)
    for node in roots:
        simple = mc.simplify(node)
        again = mc.simplify(simple)
        assert again is simple, \
            f"simplify is not idempotent on {str(node)!r}: {str(simple)!r}, then {str(again)!r}"
        with np.errstate(all="ignore"):
            before = reference_value(node, values, case.sizes)
            after = reference_value(simple, values, case.sizes)
        assert_close(after, before, f"simplify changed the value of {str(node)!r} to "
                                    f"{str(simple)!r}")


def test_simplify_is_idempotent_on_repeated_like_terms():
    x = mc.Scalar("x")
    simple = mc.simplify(x / x * x + x / x * x + x * (x + x))
    assert mc.simplify(simple) is simple


# -- (c) generated code -----------------------------------------------------------------------

@settings(max_examples=examples(200))
@given(case=cases())
def test_generated_code_computes_the_expression(case):
    values = case.values()
    value, kinks = case.evaluate(values)
    assume(kinks_clear(kinks))
    # the reference evaluator walks the nodes: it agrees with the strategy's own closure
    assert_close(reference_value(case.node, values, case.sizes), value, "reference evaluator")
    assert_close(reference_value(case.swapped, values, case.sizes), value, "reference, swapped")
    res = derivation(case)
    if res is None:
        return
    got = call_generated(res.value_function(), values, case.sizes)
    kind = kind_of(case.node)
    if kind == "scalar":
        assert isinstance(got, float), f"a scalar value should be a float, not {type(got)}"
    else:
        want = value.shape if kind == "matrix" else (value.size,)
        assert np.shape(got) == want, f"value has shape {np.shape(got)}, not {want}"
    assert_close(np.reshape(got, value.shape), value, f"value_function of {str(case.node)!r}")


# -- (d) collapse -----------------------------------------------------------------------------

@settings(max_examples=examples(400))
@given(spec=contractions())
def test_collapse_equals_einsum_and_is_idempotent(spec):
    log: list = []
    node = collapse(spec.factors, spec.out, INDEX_SIZES, spec.summed, spec.coeff, log)
    values = spec.values()
    want = spec.einsum(values)
    got = reference_value(node, values, spec.sizes)
    assert got.shape == want.shape, f"{str(node)!r} is {got.shape}, the contraction {want.shape}"
    assert_close(got, want, f"collapse gave {str(node)!r}", rtol=1e-10)
    again = collapse([(node, spec.out)], spec.out, INDEX_SIZES, [])
    assert again is node, f"collapsing {str(node)!r} again gives {str(again)!r}"
    event("einsum left" if "einsum" in str(node) else "matrix form")


def test_collapse_broadcasts_an_einsum_over_a_lone_output_index():
    i, j = INDICES["i"], INDICES["j"]
    u = Var.make("u", (INDEX_SIZES[i], 1))
    spec = Contraction([(u, (i, ZERO))] * 3, (ZERO, j), [i], sympy.Integer(1),
                       {"n": 3, "p": 4, "m": 5}, 0)
    node = collapse(spec.factors, spec.out, INDEX_SIZES, spec.summed)
    values = spec.values()
    assert_close(reference_value(node, values, spec.sizes), spec.einsum(values), str(node))


# -- (e) confluence ---------------------------------------------------------------------------

@settings(max_examples=examples(100))
@given(case=cases())
def test_swapped_operands_give_gradients_of_equal_value(case):
    assume(case.swapped is not case.node)
    values = case.values()
    value, kinks = case.evaluate(values)
    assume(kinks_clear(kinks))
    res = derivation(case)
    other = derivation(case, case.swapped)
    if res is None or other is None:
        assert res is None and other is None, "only one of two equal expressions was refused"
        return
    upstream = upstream_value(case, res, value.shape)
    extra = {k: argument(v, kind_of(case.node)) for k, v in upstream.items()}
    first = call_generated(res.numpy_function(), values, case.sizes, extra)
    second = call_generated(other.numpy_function(), values, case.sizes, extra)
    if len(case.variables) == 1:
        first, second = (first,), (second,)
    for var, a, b in zip(case.variables, first, second):
        assert_close(b, a, f"d/d{var.name} of {str(case.node)!r} and {str(case.swapped)!r}",
                     rtol=1e-8)
    same = all(g is h for g, h in zip(res.gradients, other.gradients))
    event("swapped: the same gradient nodes" if same else "swapped: equal values, other forms")


def test_a_gradient_with_an_uncancelled_number_parses_back_to_itself():
    sp, u = mc.Scalar("sp"), mc.Vector("u", "n")
    one = (sp / sp).T.T
    e = mc.tanh((one @ one @ (one @ one)).T) @ u.T
    for g in mc.grad(e, [sp, u]).gradients:
        assert mc.parse(str(g), {"sp": (), "u": ("n",), "G": (1, "n")}) is g
