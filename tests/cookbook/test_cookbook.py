"""The Matrix Cookbook's derivatives section: every identity derived by matcalc, its value
checked against central finite differences and its printed form against the book's."""

from __future__ import annotations

import pytest

import matcalc as mc

from cookbook.compare import normal_form
from cookbook.identities import IDENTITIES

IDS = [f"eq{label}" for label, *_ in IDENTITIES]


def shapes_of(res):
    variables = list(res.variables) + ([res.upstream] if res.upstream is not None else [])
    shapes = {v.name: (() if v.kind == "scalar" else (str(v.rows),) if v.kind == "vector"
                       else (str(v.rows), str(v.cols))) for v in variables}
    return shapes, {v.name: v.domain for v in variables}


@pytest.mark.parametrize("label,expression,wrt,book", IDENTITIES, ids=IDS)
def test_printed_form_is_the_books(label, expression, wrt, book):
    res = mc.grad(expression, wrt)
    expected = mc.parse(book, *shapes_of(res))
    assert normal_form(res.gradient) == normal_form(expected), \
        f"({label}) matcalc: {res.gradient}\n      book: {book}"


@pytest.mark.parametrize("label,expression,wrt,book", IDENTITIES, ids=IDS)
def test_value_against_finite_differences(label, expression, wrt, book):
    assert mc.grad(expression, wrt).check(n=4).ok


def test_at_least_sixty_identities():
    assert len({label for label, *_ in IDENTITIES}) >= 60
