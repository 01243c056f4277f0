"""Every Matrix Cookbook identity through SymPy: written as a SymPy expression, handed to
matcalc as such, derived, and the result taken back as SymPy.

Each identity's SymPy form is checked against the independent NumPy evaluator
(tests/reference.py), and the SymPy result of the round trip against SymPy's own elementwise
derivative of the explicit matrix on 3x3 inputs (tests/sympy_explicit.py), exactly.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import sympy
from sympy.matrices.expressions import MatrixSymbol

import matcalc as mc
from matcalc import expr as E

import reference
from cookbook.identities import IDENTITIES
from sympy_explicit import assert_equal, explicit, gradient_at, random_matrix

SIZES = {"n": 3}
IDS = [f"eq{label}" for label, *_ in IDENTITIES]


def values_for(variables, seed: int):
    """Random integer matrices by domain for every variable, as SymPy and as NumPy arrays."""
    rng = random.Random(seed)
    values, numbers = {}, {}
    for v in variables:
        shape = tuple(reference.size(k, SIZES) for k in v.shape)
        values[v.name] = random_matrix(rng, shape, v.domain)
        numbers[v.name] = np.array(values[v.name].tolist(), dtype=float)
    return values, numbers


@pytest.mark.parametrize("label,expression,wrt,book", IDENTITIES, ids=IDS)
def test_cookbook_identity_round_trip_through_sympy(label, expression, wrt, book):
    f = expression.to_sympy()
    variables = E.variables([expression])
    domains = {v.name: v.domain for v in variables if v.domain != "real"}
    res = mc.derive(f, wrt=wrt.to_sympy(), domains=domains or None)
    got = res.to_sympy()

    upstream = [res.upstream] if res.upstream is not None else []
    values, numbers = values_for(variables + upstream, seed=len(label))
    # the SymPy form computes what the identity's expression computes
    sympy_value = explicit(f, SIZES, values)
    sympy_value = sympy_value if isinstance(sympy_value, sympy.MatrixBase) else \
        sympy.Matrix([[sympy_value]])
    np.testing.assert_allclose(np.array(sympy.N(sympy_value, 20).tolist(), dtype=float),
                               reference.evaluate(expression, numbers, SIZES), rtol=1e-10)
    # and matcalc's SymPy result is SymPy's own elementwise derivative
    weight = values[res.upstream.name] if res.upstream is not None else None
    want = gradient_at(f, SIZES, values, wrt.name, weight)
    assert_equal(explicit(got, SIZES, values), want, {}, f"({label}) {got}")


def test_every_identity_is_expressible_in_sympy():
    """No identity of the Cookbook list is left out of the round trip: each has a SymPy form
    made only of SymPy's matrix-expression classes and functions."""
    for label, expression, *_ in IDENTITIES:
        f = expression.to_sympy()
        assert isinstance(f, sympy.Basic), label
        assert f.atoms(MatrixSymbol), label
