"""Every collapse pattern: the matrix form it finds, and its value against numpy.einsum of the
original contraction."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

from matcalc import expr as E
from matcalc.collapse import ZERO, collapse
from matcalc.printing.text import to_text
from matcalc.ops.contractions import Einsum

from reference import evaluate

i, j, k, l = sympy.symbols("i j k l", integer=True)
n, p, m = (sympy.Symbol(s, integer=True, positive=True) for s in "npm")
SIZES = {"n": 3, "p": 4, "m": 5}
DIM_OF = {i: n, j: p, k: m, l: n}
A = E.Var.make("A", (n, p)); B = E.Var.make("B", (p, m)); C = E.Var.make("C", (n, p))
S = E.Var.make("S", (n, n)); R = E.Var.make("R", (n, n))
u = E.Var.make("u", (n, 1)); v = E.Var.make("v", (p, 1)); w = E.Var.make("w", (n, 1))
rowv = E.Var.make("r", (1, p))
D = E.Var.make("D", (m, p))

# (factors, out, summed, expected matrix form)
PATTERNS = [
    ([(A, (i, j)), (B, (j, k))], (i, k), [j], "A @ B"),                       # chain
    ([(A, (i, j)), (B, (j, k))], (k, i), [j], "B.T @ A.T"),                   # reversed
    ([(A, (i, j)), (C, (i, k))], (j, k), [i], "A.T @ C"),                     # shared row index
    ([(D, (k, j)), (A, (i, j))], (k, i), [j], "D @ A.T"),                     # shared col index
    ([(S, (i, l)), (R, (l, i))], (ZERO, ZERO), [i, l], "trace(S @ R)"),       # closed chain
    ([(S, (i, i))], (ZERO, ZERO), [i], "trace(S)"),                           # trace
    ([(A, (i, j)), (C, (i, j))], (i, j), [], "A * C"),                        # Hadamard
    ([(S, (i, l)), (R, (l, i))], (i, l), [], "S * R.T"),                      # Hadamard, transposed
    ([(u, (i, ZERO)), (v, (j, ZERO))], (i, j), [], "u @ v.T"),                # outer product
    ([(u, (i, ZERO)), (v, (j, ZERO))], (j, i), [], "v @ u.T"),                # outer, reversed
    ([(A, (i, j))], (i, ZERO), [j], "sum(A, axis=1)"),                        # row sums
    ([(A, (i, j))], (j, ZERO), [i], "sum(A, axis=0)"),                        # column sums
    ([(A, (i, j))], (ZERO, ZERO), [i, j], "sum(A)"),                          # all entries
    ([(u, (i, ZERO)), (w, (i, ZERO))], (ZERO, ZERO), [i], "u.T @ w"),         # inner product
    ([(A, (i, j))], (i, j), [k], "m * A"),                                    # sum of nothing
    ([(A, (i, j)), (u, (i, ZERO))], (i, j), [], "A * u"),        # scale rows
    ([(A, (i, j)), (v, (j, ZERO))], (i, j), [], "A * v.T"),      # scale columns
    ([(A, (i, j)), (rowv, (ZERO, j))], (i, j), [], "A * r"),     # a row factor
    ([(u, (i, ZERO))], (i, j), [], "u * ones(n, p)"),                         # lone free: broadcast
    ([(S, (i, i))], (i, ZERO), [], "diag(S)"),                                # the diagonal
    ([(E.Eye.make(n), (i, l)), (u, (i, ZERO))], (i, l), [], "diag(u)"),       # vector on a diagonal
    ([(A, (i, j)), (C, (i, j))], (ZERO, ZERO), [i, j], "sum(A * C)"),         # Frobenius product
    ([(A, (i, j)), (B, (j, k)), (D, (k, l))], (i, l), [j, k], "A @ B @ D"),  # long chain
    ([(A, (i, j)), (C, (i, j)), (v, (j, ZERO))], (i, ZERO), [j], "(A * C) @ v"),  # Hadamard first
]


def einsum_value(factors, out, values):
    letters = {}
    pool = iter("abcdefgh")
    subs, arrays = [], []
    for node, idx in factors:
        s = ""
        for x in idx:
            if x == ZERO:
                s += next(pool)
            else:
                letters.setdefault(x, next(pool))
                s += letters[x]
        subs.append(s)
        arrays.append(np.eye(SIZES[str(node.rows)]) if isinstance(node, E.Eye)
                      else values[node.name])
    spec = ",".join(subs) + "->" + "".join(letters[x] for x in out if x in letters)
    result = np.einsum(spec, *arrays)
    if any(x != ZERO and x not in letters for x in out):      # a lone free index: broadcast
        shape = tuple(1 if x == ZERO else SIZES[str(DIM_OF[x])] for x in out)
        kept = [x for x in out if x in letters]
        result = np.broadcast_to(result.reshape([SIZES[str(DIM_OF[x])] if x in kept else 1
                                                 for x in out]), shape)
    return result


def values_for(factors, rng):
    return {node.name: rng.standard_normal(tuple(SIZES[str(d)] if d != 1 else 1
                                                 for d in node.shape))
            for node, _ in factors if isinstance(node, E.Var)}


@pytest.mark.parametrize("factors,out,summed,form", PATTERNS, ids=[f for *_, f in PATTERNS])
def test_pattern_form_and_value(factors, out, summed, form):
    log = []
    node = collapse(factors, out, DIM_OF, summed, 1, log)
    assert to_text(node) == form
    assert log or to_text(node) == to_text(factors[0][0]), "a collapse records its steps"
    rng = np.random.default_rng(1)
    values = values_for(factors, rng)
    want = einsum_value(factors, out, values)
    extra = [s for s in summed if not any(s in idx for _, idx in factors)]
    for s in extra:
        want = want * SIZES[str(DIM_OF[s])]
    got = evaluate(node, values, SIZES)
    np.testing.assert_allclose(got, np.asarray(want).reshape(got.shape), rtol=1e-12)


def test_coefficients_scale_the_result():
    node = collapse([(A, (i, j)), (B, (j, k))], (i, k), DIM_OF, [j], sympy.Rational(-2, 3))
    assert to_text(node) == "(-2/3) * (A @ B)"


def test_no_matrix_form_stays_an_explicit_einsum_with_the_right_value():
    # sum_i A_ij B_ik u_i: an index shared by three factors (A.T diag(u) B, with no diag yet)
    factors = [(A, (i, j)), (C, (i, k)), (u, (i, ZERO))]
    dims = {i: n, j: p, k: p}
    node = collapse(factors, (j, k), dims, [i])
    assert isinstance(node, Einsum)
    assert to_text(node).startswith('einsum("')
    rng = np.random.default_rng(2)
    values = values_for(factors, rng)
    got = evaluate(node, values, SIZES)
    want = np.einsum("ij,ik,i->jk", values["A"], values["C"], values["u"][:, 0])
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_a_diagonal_used_elsewhere_is_the_diagonal_vector():
    factors = [(S, (i, i)), (u, (i, ZERO))]           # sum_i S_ii u_i = diag(S) . u
    node = collapse(factors, (ZERO, ZERO), {i: n}, [i])
    assert to_text(node) == "diag(S).T @ u"
    rng = np.random.default_rng(3)
    values = values_for(factors, rng)
    got = evaluate(node, values, SIZES)
    want = np.einsum("ii,i->", values["S"], values["u"][:, 0])
    np.testing.assert_allclose(got.reshape(()), want, rtol=1e-12)
