"""Never a wrong Jacobian or Hessian: random expressions, every entry against finite differences.

For a drawn expression and one of its variables, ``mc.jacobian`` (a non-scalar expression) either
refuses with ``UnsupportedError`` or gives generated code whose array — a matrix form, or the
index tensor T[i, j, k, l] = d f_ij / d x_kl — matches central differences of the strategy's
independent NumPy closure, entry by entry. ``mc.hessian`` (a scalar expression) is compared with
central differences of the generated gradient (itself checked against the closure by
test_gradients.py), and where it has a Kronecker form, that form must be the same array in the
column-major vec layout.
"""

from __future__ import annotations

import numpy as np
from hypothesis import assume, event, given, reject, settings
from hypothesis import strategies as st

import matcalc as mc

from strategies import VARIABLES, call_generated, cases, examples

KINK_MARGIN = 1e-3
RTOL = 1e-5
STEPS = (1e-5, 1e-4, 1e-3)


def _target(case, data):
    """A variable of the expression that is not a scalar, or None."""
    names = [v.name for v in case.variables if VARIABLES[v.name].kind != "scalar"]
    if not names:
        return None
    return data.draw(st.sampled_from(names))


def _agree(got: np.ndarray, estimates: list[np.ndarray]) -> bool:
    """Every entry matches the differences at one of the step sizes."""
    scale = max(1.0, max(float(np.max(np.abs(e))) for e in estimates))
    close = np.zeros(got.shape, dtype=bool)
    for e in estimates:
        close |= np.abs(got - e) <= RTOL * scale + 1e-7 * np.abs(e)
    return bool(close.all())


def _differences(function, x0: np.ndarray, out_size: int) -> list[np.ndarray]:
    """d function / d x entry by entry, as (out_size, x0.size), at each step size."""
    estimates = []
    for h in STEPS:
        columns = []
        for j in range(x0.size):
            step = np.zeros(x0.size)
            step[j] = h
            step = step.reshape(x0.shape)
            columns.append((function(x0 + step) - function(x0 - step)) / (2 * h))
        estimates.append(np.stack(columns, axis=1).reshape(out_size, x0.size))
    return estimates


def _stay_on_side(center: list, kinks: list) -> None:
    """Reject the draw when a step of the stencil crosses a kink: differences mean nothing
    there."""
    if any(not np.array_equal(a, np.sign(k)) for a, (_, k) in zip(center, kinks)):
        reject()


def _kink_signs(case, values):
    _, kinks = case.evaluate(values)
    if any(np.min(np.abs(x)) < KINK_MARGIN for _, x in kinks):
        return None
    return [np.sign(x) for _, x in kinks]


@settings(max_examples=examples(25), deadline=None)
@given(case=cases(max_steps=8, scalar=False), data=st.data())
def test_a_jacobian_matches_finite_differences_of_the_ground_truth(case, data):
    name = _target(case, data)
    assume(name is not None and not case.node.is_scalar)
    variable = next(v for v in mc.expr.variables([case.node]) if v.name == name)
    try:
        res = mc.jacobian(case.node, variable)
    except mc.UnsupportedError:
        event("jacobian refused (UnsupportedError)")
        return
    event(f"jacobian as {'a tensor' if isinstance(res, mc.TensorDerivative) else 'a matrix'}")
    values = case.values()
    center = _kink_signs(case, values)
    assume(center is not None)

    def f(x):
        value, kinks = case.evaluate({**values, name: x})
        _stay_on_side(center, kinks)
        return value.reshape(-1)

    got = np.asarray(call_generated(res.numpy_function(), values, case.sizes), dtype=float)
    out_size = int(np.prod(case.evaluate(values)[0].shape))
    estimates = _differences(f, values[name], out_size)
    assert got.size == estimates[0].size, f"{res!r}: {got.shape}"
    assert _agree(got.reshape(estimates[0].shape), estimates), f"wrong Jacobian {res}"


@settings(max_examples=examples(25), deadline=None)
@given(case=cases(max_steps=8, scalar=True), data=st.data())
def test_a_hessian_matches_finite_differences_of_the_gradient(case, data):
    name = _target(case, data)
    assume(name is not None)
    variable = next(v for v in mc.expr.variables([case.node]) if v.name == name)
    try:
        res = mc.hessian(case.node, variable)
        gradient = mc.grad(case.node, variable).numpy_function()
    except mc.UnsupportedError:
        event("hessian refused (UnsupportedError)")
        return
    tensor = isinstance(res, mc.TensorDerivative)
    event(f"hessian as {'a tensor' if tensor else 'a matrix'}")
    values = case.values()
    center = _kink_signs(case, values)
    assume(center is not None)

    def g(x):
        _, kinks = case.evaluate({**values, name: x})
        _stay_on_side(center, kinks)
        shaped = {**values, name: x}
        return np.asarray(call_generated(gradient, shaped, case.sizes), dtype=float).reshape(-1)

    got = np.asarray(call_generated(res.numpy_function(), values, case.sizes), dtype=float)
    x0 = values[name]
    estimates = _differences(g, x0, x0.size)
    assert got.size == estimates[0].size
    assert _agree(got.reshape(estimates[0].shape), estimates), f"wrong Hessian {res}"
    if tensor and res.tensor.kronecker is not None:
        event("hessian with a Kronecker form")
        vec = np.asarray(call_generated(res.numpy_function(layout="vec"), values, case.sizes))
        rows, cols = x0.shape
        full = got.reshape(rows, cols, rows, cols)
        expected = full.transpose(1, 0, 3, 2).reshape(rows * cols, rows * cols)
        np.testing.assert_allclose(vec, expected, rtol=1e-9, atol=1e-9)
