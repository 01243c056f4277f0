r"""A text means what NumPy computes, or matcalc refuses it (issue 13, the differential test).

Random texts in NumPy's idiom (tests/property/numpy_texts.py) are computed twice on the same
inputs, vectors passed as 1-D arrays: by NumPy, through closures the strategy builds beside each
text (never from matcalc, never by evaluating a string), and by matcalc, as
``mc.derive(text, wrt=..., shapes=..., domains=...).value_function()(**inputs)``. For each text
one of these holds, or the test fails:

- matcalc raised one of its own errors (``matcalc.MatcalcError``), at any step: it refused;
- NumPy computes a value, and matcalc's value has the same shape and agrees to rounding
  (relative 1e-8, absolute 1e-8 times the largest magnitude met while computing it).

So matcalc must refuse whatever NumPy refuses (a ``ValueError``: shapes that do not broadcast,
an axis out of range), must never give a value different from NumPy's, and any exception that is
not a ``MatcalcError`` is a failure too.

Comparing shapes. The shapes must be equal, exactly as ``numpy.shape`` gives them: a scalar is
``()`` (matcalc's float, NumPy's 0-d value), a vector result is 1-D, a reduction with
``keepdims=True`` is a 1×m row or an n×1 column, a matrix is 2-D. There is no reshaping: a 1-D
result returned as an n×1 column (or the reverse) is a different answer, because the next line
of the user's NumPy code would broadcast it differently. The strategy builds no value with a
single entry other than a scalar (a (1,) or a 1×1), where matcalc's "a 1×1 result is a scalar"
would differ from NumPy's shape by design; and it builds the readings the project keeps from
linear algebra (``u.T`` a row, ``u @ v.T`` an outer product, a declared vector as a column where
only its length matches the rows) into NumPy's side, as the strategy's docstring describes.

Inputs on a jump of sign, step or a comparison are skipped. The events count what happened to
each text, and what it exercised; the longer run, with the counts:

    HYPOTHESIS_PROFILE=large python -m pytest tests/property/test_numpy_meaning.py \
        --hypothesis-show-statistics

matcalc's reading is in ``matcalc/reading.py``; the examples below are the issue's own, the
minimal reproducers of the families that differed before it (kept so that they stay fixed), and
the natural NumPy spellings the issue says must be accepted.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from hypothesis import assume, event, given, note, settings

import matcalc as mc

from numpy_texts import NumpyOutcome, NumpyText, examples, numpy_texts

RTOL = 1e-8
JUMP_MARGIN = 1e-6     # skip inputs whose jump argument is this close to 0 (relative)


def matcalc_value(text: str, wrt: str, shapes: dict, domains: dict | None, inputs: dict,
                  sizes: dict | None = None):
    """matcalc's value of ``text`` on ``inputs``: (value, None), or (None, the MatcalcError)."""
    try:
        function = mc.derive(text, wrt=wrt, shapes=shapes, domains=domains or None) \
            .value_function()
        arguments = {}
        for name in inspect.signature(function).parameters:
            arguments[name] = inputs[name] if name in inputs else (sizes or {})[name]
        return function(**arguments), None
    except mc.MatcalcError as err:
        return None, err


def disagreement(text: str, numpy: NumpyOutcome, value, error) -> str | None:
    """Why matcalc's outcome is not allowed beside NumPy's, or None when it is."""
    if error is not None:
        return None                                     # refusing is always allowed
    if numpy.error is not None:
        return (f"NumPy refuses {text!r} ({type(numpy.error).__name__}: {numpy.error}), but "
                f"matcalc computes {value!r}")
    got, want = np.shape(value), np.shape(numpy.value)
    if got != want:
        return (f"{text!r}: matcalc's value has shape {got}, NumPy's {want}\n"
                f"  matcalc: {value!r}\n  NumPy:   {numpy.value!r}")
    got_value = np.asarray(value, dtype=float)
    if not np.allclose(got_value, numpy.value, rtol=RTOL, atol=RTOL * numpy.largest):
        return (f"{text!r}: matcalc's value differs from NumPy's\n"
                f"  matcalc: {value!r}\n  NumPy:   {numpy.value!r}")
    return None


def run_case(case: NumpyText) -> None:
    inputs = case.inputs()
    numpy = case.numpy_value(inputs)
    if numpy.error is None and numpy.nearest_jump <= JUMP_MARGIN * numpy.largest:
        event("skipped: an input on a jump of sign, step or a comparison")
        assume(False)
    value, error = matcalc_value(case.text, case.wrt, case.shapes, case.domains, inputs,
                                 case.sizes)
    numpy_says = "NumPy refuses" if numpy.error is not None else "NumPy computes"
    matcalc_says = f"matcalc refuses ({type(error).__name__})" if error is not None \
        else "matcalc computes"
    event(f"outcome: {numpy_says}, {matcalc_says}")
    for feature in sorted(case.features):
        event(f"exercises: {feature}")
    if error is not None:
        note(f"matcalc refused: {error}")
    problem = disagreement(case.text, numpy, value, error)
    assert problem is None, problem


@settings(max_examples=examples(300), report_multiple_bugs=False)
@given(case=numpy_texts())
def test_a_text_means_what_numpy_computes(case: NumpyText) -> None:
    run_case(case)


# ---------------------------------------------------------------------------------------------
# Written out by hand: the issue's examples, the minimal reproducers, the natural spellings
# ---------------------------------------------------------------------------------------------

SIZES = {"n": 3, "m": 4, "d": 2}


def explicit_inputs(shapes: dict, seed: int = 0) -> dict:
    """Inputs for declared shapes: 1-D vectors, float scalars, entries uniform on [-2, 2]."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in shapes.items():
        size = tuple(d if isinstance(d, int) else SIZES[d] for d in shape)
        out[name] = float(rng.uniform(-2, 2)) if shape == () else rng.uniform(-2, 2, size)
    return out


def numpy_outcome(reference, inputs: dict) -> NumpyOutcome:
    """What the hand-written NumPy ``reference`` gives on ``inputs``, or the error it raises."""
    try:
        value = reference(**inputs)
    except ValueError as err:
        return NumpyOutcome(error=err)
    largest = max([1.0, float(np.max(np.abs(value)))] +
                  [float(np.max(np.abs(v))) for v in inputs.values()])
    return NumpyOutcome(value=value, largest=largest)


def check_never_a_different_value(text: str, shapes: dict, reference) -> None:
    inputs = explicit_inputs(shapes)
    numpy = numpy_outcome(reference, inputs)
    value, error = matcalc_value(text, next(iter(shapes)), shapes, None, inputs, SIZES)
    problem = disagreement(text, numpy, value, error)
    assert problem is None, problem


SQUARE = {"A": ("n", "n"), "u": ("n",)}

ISSUE_EXAMPLES = [
    pytest.param("sum(G * (X - mean(X, axis=0)))", {"X": ("n", "n"), "G": ("n", "n")},
                 lambda X, G: np.sum(G * (X - np.mean(X, axis=0))),
                 id="centred columns, square"),
    pytest.param("sum((X @ W + b - Y)**2)",
                 {"X": ("n", "d"), "W": ("d", "n"), "b": ("n",), "Y": ("n", "n")},
                 lambda X, W, b, Y: np.sum((X @ W + b - Y) ** 2),
                 id="row-major bias, square"),
]


@pytest.mark.parametrize("text, shapes, reference", ISSUE_EXAMPLES)
def test_the_issue_examples_mean_what_numpy_computes(text, shapes, reference) -> None:
    check_never_a_different_value(text, shapes, reference)


REPRODUCERS = [
    pytest.param("A - mean(A, axis=0)", {"A": ("n", "n")},
                 lambda A: A - np.mean(A, axis=0),
                 id="reduction axis=0 meets square"),
    pytest.param("A + sum(A, axis=1)", {"A": ("n", "n")},
                 lambda A: A + np.sum(A, axis=1),
                 id="reduction axis=1 meets square"),
    pytest.param("A + u", SQUARE, lambda A, u: A + u,
                 id="vector meets square"),
    pytest.param("A + -u", SQUARE, lambda A, u: A + -u,
                 id="1-D expression meets square"),
    pytest.param("u + P", {"u": ("n",), "P": (1, "n")}, lambda u, P: u + P,
                 id="vector meets 1×n row"),
    pytest.param("P + sum(A, axis=1)", {"P": (1, "n"), "A": ("n", "n")},
                 lambda P, A: P + np.sum(A, axis=1),
                 id="reduction meets 1×n row"),
    pytest.param("sum(u, axis=1)", {"u": ("n",)}, lambda u: np.sum(u, axis=1),
                 id="axis 1 of a vector"),
    pytest.param("B - mean(B, axis=1)", {"B": ("n", "m")}, lambda B: B - np.mean(B, axis=1),
                 id="reduction meets rows of non-square"),
    pytest.param("U", {"U": ("n", 1)}, lambda U: U,
                 id="declared column"),
    pytest.param("P.T", {"P": (1, "n")}, lambda P: P.T,
                 id="transposed row"),
    # what matcalc got right before the fix, beside them
    pytest.param("B - mean(B, axis=0)", {"B": ("n", "m")}, lambda B: B - np.mean(B, axis=0),
                 id="reduction meets columns of non-square"),
    pytest.param("B + u", {"B": ("n", "m"), "u": ("n",)}, lambda B, u: B + u[:, None],
                 id="vector as a column (the seed notes' W @ X + b)"),
    pytest.param("u + v", {"u": ("n",), "v": ("m",)}, lambda u, v: u + v,
                 id="vectors of different lengths"),
    pytest.param("sum(B, axis=1) * u", {"B": ("n", "m"), "u": ("n",)},
                 lambda B, u: np.sum(B, axis=1) * u, id="reduction meets vector"),
    pytest.param("where(U ** 2 > U, U, sum(A, axis=1, keepdims=True)).T",
                 {"A": ("n", "n"), "U": ("n", 1)},
                 lambda A, U: np.where(U ** 2 > U, U, np.sum(A, axis=1, keepdims=True)).T,
                 id="a kept column among three operands stays a column"),
    pytest.param("u @ v.T", {"u": ("n",), "v": ("m",)}, lambda u, v: np.outer(u, v),
                 id="outer product"),
    pytest.param("u.T @ u", {"u": ("n",)}, lambda u: u @ u, id="u.T @ u"),
]


@pytest.mark.parametrize("text, shapes, reference", REPRODUCERS)
def test_minimal_reproducers(text, shapes, reference) -> None:
    check_never_a_different_value(text, shapes, reference)


NATURAL_SPELLINGS = [
    pytest.param("X - mean(X, axis=0)", {"X": ("n", "m")}, lambda X: X - np.mean(X, axis=0),
                 id="centred columns, non-square"),
    pytest.param("sum((X @ W + b - Y)**2)",
                 {"X": ("m", "d"), "W": ("d", "n"), "b": ("n",), "Y": ("m", "n")},
                 lambda X, W, b, Y: np.sum((X @ W + b - Y) ** 2),
                 id="row-major bias, non-square"),
    pytest.param("sum(X, axis=-1)", {"X": ("n", "m")}, lambda X: np.sum(X, axis=-1),
                 id="axis=-1"),
    pytest.param("mean(X, axis=-2)", {"X": ("n", "m")}, lambda X: np.mean(X, axis=-2),
                 id="axis=-2"),
    pytest.param("sum(X, axis=0, keepdims=True)", {"X": ("n", "m")},
                 lambda X: np.sum(X, axis=0, keepdims=True), id="keepdims row"),
    pytest.param("X - mean(X, axis=1, keepdims=True)", {"X": ("n", "m")},
                 lambda X: X - np.mean(X, axis=1, keepdims=True), id="keepdims column"),
    pytest.param("v @ W", {"v": ("n",), "W": ("n", "m")}, lambda v, W: v @ W,
                 id="vector @ matrix"),
]


@pytest.mark.parametrize("text, shapes, reference", [
    pytest.param(*p.values, id=p.id) for p in NATURAL_SPELLINGS])
def test_natural_numpy_spellings_are_accepted(text, shapes, reference) -> None:
    inputs = explicit_inputs(shapes)
    value, error = matcalc_value(text, next(iter(shapes)), shapes, None, inputs, SIZES)
    assert error is None, f"matcalc refuses {text!r}: {error}"
    problem = disagreement(text, numpy_outcome(reference, inputs), value, error)
    assert problem is None, problem
