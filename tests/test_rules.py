"""Every derived vector-Jacobian rule: its value (central differences, and exactly with SymPy on
small explicit matrices) and its printed matrix form."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

from matcalc import expr as E
from matcalc.rules import RULE_KINDS, apply_rule, vjp_rule
from matcalc.simplify import simplify
from matcalc.printing.text import to_text
from matcalc.ops.contractions import Einsum, Sum, Trace
from matcalc.ops.linalg import Det, Diag, Inv, LogDet
from matcalc.ops.reductions import LogSumExp, Norm, Norm1, Softmax

from reference import (evaluate, evaluate_sympy, numeric_gradient, random_values, size,
                       symbol_matrix)

SIZES = {"n": 3, "p": 4, "m": 2}
A = E.Var.make("A", ("n", "p"))
B = E.Var.make("B", ("p", "m"))
C = E.Var.make("C", ("n", "p"))
P = E.Var.make("P", ("n", "p"), domain="positive")
Q = E.Var.make("Q", ("n", "p"), domain="positive")
S = E.Var.make("S", ("n", "n"))
x = E.Var.make("x", ("n", 1))
r = E.Var.make("r", (1, "p"))
a = E.Var.make("a", (1, 1))
HALF = E.Const.make(sympy.Rational(1, 2))

# (node, expected simplified rule per operand position, with the upstream gradient named G)
CASES = [
    (A @ B, ["G @ B.T", "A.T @ G"]),
    (A.T, ["G.T"]),
    (E.Add.make(A, C), ["G", "G"]),
    (E.Sub.make(A, C), ["G", "-G"]),
    (E.Mul.make(A, C), ["G * C", "G * A"]),
    (E.Div.make(A, Q), ["G / Q", "-(G * A / Q ** 2)"]),
    (E.Neg.make(A), ["-G"]),
    (A ** 2, ["2 * (G * A)"]),
    (A ** 3, ["3 * (G * A ** 2)"]),
    (P ** -1, ["-(G / P ** 2)"]),
    (E.Pow.make(P, HALF), ["(1/2) * (G / sqrt(P))"]),
    (Sum.make(A), ["G * ones(n, p)"]),
    (Sum.make(A, 0), ["G.T * ones(n, p)"]),
    (Sum.make(A, 1), ["G * ones(n, p)"]),
    (Sum.make(x), ["G * ones(n)"]),
    (Trace.make(S), ["G * eye(n)"]),
    (E.Broadcast.make(x, "n", "p"), ["sum(G, axis=1)"]),
    (E.Broadcast.make(r, "n", "p"), ["sum(G, axis=0, keepdims=True)"]),
    (E.Broadcast.make(a, "n", "p"), ["sum(G)"]),
    (x.T @ x, ["G * x.T", "G * x"]),
    (x @ x.T, ["G @ x", "x.T @ G"]),
    (Einsum.make(("ij", "jk"), "ik", [A, B]), ["G @ B.T", "A.T @ G"]),
    (Einsum.make(("ij", "ik"), "jk", [A, C]), ["C @ G.T", "A @ G"]),
    (Einsum.make(("ij", "ij"), "i", [A, C]), ["C * G", "A * G"]),
    (E.Apply.make("exp", A), ["G * exp(A)"]),
    (E.Apply.make("log", P), ["G / P"]),
    (E.Apply.make("sin", A), ["G * cos(A)"]),
    (E.Apply.make("cos", A), ["-(G * sin(A))"]),
    (E.Apply.make("tanh", A), ["G * (1 - tanh(A) ** 2)"]),
    (E.Apply.make("sigmoid", A), ["G * sigmoid(A) * (1 - sigmoid(A))"]),
    (E.Apply.make("relu", A), ["G * step(A)"]),
    (E.Apply.make("abs", A), ["G * sign(A)"]),
    (E.Apply.make("sign", A), ["zeros(n, p)"]),
    (E.Apply.make("step", A), ["zeros(n, p)"]),
    (E.Apply.make("sqrt", P), ["(1/2) * (G / sqrt(P))"]),
    (E.Apply.make("softplus", A), ["G * sigmoid(A)"]),
    # index form by hand (no finite index form), collapsed by the same machinery
    (Det.make(S), ["G * det(S) * inv(S).T"]),
    (LogDet.make(S), ["G * inv(S).T"]),
    (Inv.make(S), ["-(inv(S).T @ (G @ inv(S).T))"]),
    # finite index forms with sums inside functions, written back in terms of the operation
    (Diag.make(x), ["diag(G)"]),
    (Diag.make(S), ["diag(G)"]),
    (Norm.make(A), ["G / norm(A) * A"]),
    (Norm.make(x), ["G / norm(x) * x"]),
    (Norm1.make(A), ["G * sign(A)"]),
    (Softmax.make(x), ["softmax(x) * (G - G.T @ softmax(x))"]),
    (Softmax.make(A), ["softmax(A) * (G - sum(G * softmax(A)))"]),
    (Softmax.make(A, 0), ["softmax(A, axis=0) * (G - sum(G * softmax(A, axis=0), axis=0, keepdims=True))"]),
    (Softmax.make(A, 1), ["softmax(A, axis=1) * (G - sum(G * softmax(A, axis=1), axis=1, keepdims=True))"]),
    (LogSumExp.make(x), ["G * softmax(x)"]),
    (LogSumExp.make(A), ["G * softmax(A)"]),
    (LogSumExp.make(A, 0), ["softmax(A, axis=0) * G.T"]),
    (LogSumExp.make(A, 1), ["softmax(A, axis=1) * G"]),
]
IDS = [to_text(node) for node, _ in CASES]
POSITIONS = [(node, p, forms[p]) for node, forms in CASES for p in range(len(node.args))]
POSITION_IDS = [f"{to_text(node)}|d{p}" for node, p, _ in POSITIONS]


def contribution(node, position):
    g = E.Var.make("G", node.shape)
    rule, dims = vjp_rule(node, position)
    return g, simplify(apply_rule(rule, node, g, dims))


def isolate(node, position):
    """The node with operand ``position`` replaced by a fresh variable X: the rule is dZ/dX."""
    original = node.args[position]
    domain = original.domain if isinstance(original, E.Var) else "real"
    slot = E.Var.make("X", original.shape, domain=domain)
    args = tuple(slot if q == position else arg for q, arg in enumerate(node.args))
    return node.remake(args, {}), slot


@pytest.mark.parametrize("node,position,form", POSITIONS, ids=POSITION_IDS)
def test_rule_form(node, position, form):
    _, c = contribution(node, position)
    assert to_text(c) == form


@pytest.mark.parametrize("node,position,form", POSITIONS, ids=POSITION_IDS)
def test_rule_value_against_finite_differences(node, position, form):
    rng = np.random.default_rng(position + 7)
    node, slot = isolate(node, position)
    _, c = contribution(node, position)
    values = random_values(E.variables([node]), SIZES, rng)
    # keep inputs of kinked functions away from 0, where finite differences are meaningless
    for name in values:
        values[name] = np.where(np.abs(values[name]) < 0.1, 0.5, values[name])
    weight = rng.standard_normal(tuple(size(d, SIZES) for d in node.shape))
    values["G"] = weight
    got = evaluate(c, values, SIZES)
    want = numeric_gradient(node, slot, values, SIZES, weight)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


SMOOTH = [(node, p) for node, p, _ in POSITIONS
          if not any(isinstance(n, E.Apply) and n.name in ("relu", "abs", "sign", "step")
                     for n in E.postorder([node]))
          and not isinstance(node, (Einsum, Norm1, LogDet))]


@pytest.mark.parametrize("node,position", SMOOTH, ids=[f"{to_text(n)}|d{p}" for n, p in SMOOTH])
def test_rule_exactly_with_sympy(node, position):
    """d sum(G * Z) / dX_kl entry by entry, on explicit 3x4 (etc.) symbolic matrices."""
    node, slot = isolate(node, position)
    _, c = contribution(node, position)
    values = {v.name: symbol_matrix(v.name, tuple(size(d, SIZES) for d in v.shape))
              for v in E.variables([node])}
    values["G"] = symbol_matrix("G", tuple(size(d, SIZES) for d in node.shape))
    z = evaluate_sympy(node, values, SIZES)
    objective = sum(values["G"][i, j] * z[i, j] for i in range(z.rows) for j in range(z.cols))
    got = evaluate_sympy(c, values, SIZES)
    operand = values["X"]
    for i in range(operand.rows):
        for j in range(operand.cols):
            want = sympy.diff(objective, operand[i, j])
            assert sympy.simplify(got[i, j] - want) == 0, (i, j, got[i, j], want)


def test_every_operation_has_a_rule_kind_and_a_case():
    tested = {type(node) for node, _ in CASES}
    assert set(RULE_KINDS) == tested


def test_rules_are_cached_per_shape_pattern():
    W1 = E.Var.make("W1", ("h1", "d")); W2 = E.Var.make("W2", ("h2", "h1"))
    X = E.Var.make("X", ("d", "m")); H = E.Var.make("H", ("h1", "m"))
    r1, _ = vjp_rule(W1 @ X, 0)
    r2, _ = vjp_rule(W2 @ H, 0)
    assert r1 is r2       # same operation and shape pattern: derived once


def test_rule_record_shows_the_index_derivation():
    rule, _ = vjp_rule(A @ B, 0)
    assert "KroneckerDelta" in str(rule.derivative)
    assert str(rule.reduced[0]) == "Sum(G[k, j]*X1[l, j], (j, 0, D2 - 1))"
    assert rule.log == ("sum over j shared by two factors: a matrix product",)
