"""The operations ML code is written in, as NumPy code writes them (issue 13).

Every gradient here is compared with central finite differences of an independent NumPy
implementation of the same loss, written out below (never matcalc's own value function), and
every value with that implementation. Layers are written the NumPy way: 1-D gamma, beta and
biases, reductions along the last axis with keepdims where they meet a matrix.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import matcalc as mc

SIZES = {"n": 4, "m": 5, "d": 3, "k": 6}
_erf = np.vectorize(math.erf, otypes=[float])


def concrete(shape):
    return tuple(SIZES[d] if isinstance(d, str) else d for d in shape)


def inputs_for(shapes: dict, seed: int = 0, positive=()) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in shapes.items():
        if shape == ():
            out[name] = float(rng.uniform(0.5, 1.5))
        elif name in positive:
            out[name] = rng.uniform(0.5, 2.0, concrete(shape))
        else:
            out[name] = rng.standard_normal(concrete(shape))
    return out


def finite_difference(f, inputs: dict, name: str, h: float = 1e-6) -> np.ndarray:
    """d f / d inputs[name] by central differences, entry by entry."""
    x = np.array(inputs[name], dtype=float)
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[index] += h
        down[index] -= h
        grad[index] = (f(**{**inputs, name: up}) - f(**{**inputs, name: down})) / (2 * h)
    return grad


def assert_gradients(text: str, shapes: dict, wrt: list, reference, seed: int = 0,
                     domains: dict | None = None, rtol: float = 1e-5) -> None:
    """matcalc's value equals ``reference``'s and each gradient its finite differences."""
    res = mc.derive(text, wrt=wrt, shapes=shapes, domains=domains)
    inputs = inputs_for(shapes, seed, positive=[k for k, v in (domains or {}).items()
                                                  if v == "positive"])
    value = res.value_function()(**inputs)
    np.testing.assert_allclose(value, reference(**inputs), rtol=1e-10, atol=1e-12)
    grads = res.numpy_function()(**inputs)
    grads = grads if isinstance(grads, tuple) else (grads,)
    for name, got in zip(wrt, grads):
        want = finite_difference(reference, inputs, name)
        assert np.shape(got) == np.shape(inputs[name]), name
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * max(1.0, np.abs(want).max()),
                                   err_msg=f"d/d{name} of {text}")


# ---------------------------------------------------------------------------------------------
# Elementwise functions
# ---------------------------------------------------------------------------------------------

FUNCTIONS = {
    "tan": np.tan, "arcsin": np.arcsin, "arccos": np.arccos, "arctan": np.arctan,
    "sinh": np.sinh, "cosh": np.cosh, "erf": _erf, "square": np.square,
    "log1p": np.log1p, "expm1": np.expm1,
    "gelu": lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))),
    "gelu_tanh": lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) *
                                                  (x + 0.044715 * x ** 3))),
    "silu": lambda x: x / (1 + np.exp(-x)),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_function_against_numpy_and_finite_differences(name):
    f = FUNCTIONS[name]
    # arguments inside every domain: |0.3 tanh| < 1 (arcsin, arccos, tan), > -1 (log1p)
    text = f"sum(Y * {name}(0.3 * tanh(W @ X)))"
    shapes = {"W": ("n", "d"), "X": ("d", "m"), "Y": ("n", "m")}
    assert_gradients(text, shapes, ["W", "X"],
                     lambda W, X, Y: np.sum(Y * f(0.3 * np.tanh(W @ X))))


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_function_keeps_float32(name):
    res = mc.derive(f"sum({name}(0.3 * tanh(X)))", wrt="X", shapes={"X": ("n", "m")})
    X = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    assert res.value_function()(X=X) == pytest.approx(
        float(np.sum(FUNCTIONS[name](0.3 * np.tanh(X.astype(float))))), rel=1e-5)
    assert res.numpy_function()(X=X).dtype == np.float32


def test_pi_and_constants_stay_exact():
    res = mc.derive("sum(sin(pi * x))", wrt="x", shapes={"x": ("n",)})
    assert str(res.gradients[0]) == "pi * cos(pi * x)"
    x = np.linspace(-1, 1, 4)
    np.testing.assert_allclose(res.numpy_function()(x=x), np.pi * np.cos(np.pi * x))


# ---------------------------------------------------------------------------------------------
# maximum, minimum, clip, where, activations with a parameter
# ---------------------------------------------------------------------------------------------

MATRICES = {"A": ("n", "m"), "B": ("n", "m"), "G": ("n", "m")}


@pytest.mark.parametrize("text, reference", [
    ("sum(G * maximum(A, B))", lambda A, B, G: np.sum(G * np.maximum(A, B))),
    ("sum(G * minimum(A, B))", lambda A, B, G: np.sum(G * np.minimum(A, B))),
    ("sum(G * maximum(A, 0.2))", lambda A, B, G: np.sum(G * np.maximum(A, 0.2))),
    ("sum(G * clip(A, -0.5, 0.5))", lambda A, B, G: np.sum(G * np.clip(A, -0.5, 0.5))),
    ("sum(G * where(A > B, A * B, exp(A)))",
     lambda A, B, G: np.sum(G * np.where(A > B, A * B, np.exp(A)))),
    ("sum(G * where(A <= 0, 0.1 * A, A))",
     lambda A, B, G: np.sum(G * np.where(A <= 0, 0.1 * A, A))),
    ("sum(G * leaky_relu(A, 0.01))", lambda A, B, G: np.sum(G * np.where(A > 0, A, 0.01 * A))),
    ("sum(G * elu(A, 0.5))",
     lambda A, B, G: np.sum(G * np.where(A > 0, A, 0.5 * np.expm1(np.minimum(A, 0))))),
    ("sum(G * elu(A))", lambda A, B, G: np.sum(G * np.where(A > 0, A, np.expm1(np.minimum(A, 0))))),
])
def test_piecewise_operations_against_numpy(text, reference):
    assert_gradients(text, MATRICES, ["A", "B"], reference, seed=3)


def test_maximum_at_a_tie_gives_the_gradient_to_its_first_operand():
    """One-sided, as documented: where a == b all of the gradient goes to a."""
    res = mc.derive("sum(maximum(a, b))", wrt=["a", "b"], shapes={"a": ("n",), "b": ("n",)})
    a = np.array([1.0, 2.0, 3.0, 4.0])
    b = np.array([0.0, 2.0, 5.0, 4.0])
    da, db = res.numpy_function()(a=a, b=b)
    np.testing.assert_array_equal(da, [1.0, 1.0, 0.0, 1.0])
    np.testing.assert_array_equal(db, [0.0, 0.0, 1.0, 0.0])


def test_the_check_redraws_off_the_ties_of_maximum():
    res = mc.derive("sum(maximum(A, B) ** 2)", wrt="A", shapes=MATRICES)
    assert res.check().ok


def test_maximum_broadcasts_a_reduction_as_numpy_does():
    shapes = {"A": ("n", "m")}
    assert_gradients("sum(maximum(A, mean(A, axis=0)) ** 2)", shapes, ["A"],
                     lambda A: np.sum(np.maximum(A, A.mean(axis=0)) ** 2), seed=5)


# ---------------------------------------------------------------------------------------------
# max and min
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, reference", [
    ("max(A) * min(A)", lambda A: np.max(A) * np.min(A)),
    ("sum(max(A, axis=0) ** 2)", lambda A: np.sum(np.max(A, axis=0) ** 2)),
    ("sum(exp(min(A, axis=-1)))", lambda A: np.sum(np.exp(np.min(A, axis=-1)))),
    ("sum(exp(A - max(A, axis=1, keepdims=True)) ** 2)",
     lambda A: np.sum(np.exp(A - A.max(axis=1, keepdims=True)) ** 2)),
    ("sum(A * (A - max(A, axis=0)))", lambda A: np.sum(A * (A - A.max(axis=0)))),
])
def test_max_and_min_against_numpy(text, reference):
    assert_gradients(text, {"A": ("n", "m")}, ["A"], reference, seed=4)


def test_max_splits_the_gradient_equally_among_ties():
    res = mc.derive("max(A, axis=1) @ w", wrt="A", shapes={"A": ("n", "m"), "w": ("n",)})
    A = np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0], [5.0, 5.0, 5.0]])
    w = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(res.numpy_function()(A=A, w=w),
                               [[0, 0.5, 0.5], [2, 0, 0], [1, 1, 1]])


def test_global_max_pooling_over_time():
    """A 1-D convolution's features, max-pooled over the time axis, then a linear read-out."""
    shapes = {"X": ("d", "m"), "W": ("k", "d"), "v": ("k",)}
    assert_gradients("v @ max(relu(W @ X), axis=1)", shapes, ["W", "v"],
                     lambda X, W, v: v @ np.max(np.maximum(W @ X, 0), axis=1), seed=9)


def test_jacobian_and_hessian_through_the_new_operations():
    x = np.random.default_rng(6).standard_normal(4)
    jac = mc.jacobian(mc.parse("maximum(x, 0.1 * x) * tanh(x)", {"x": ("n",)}),
                      mc.parse("x", {"x": ("n",)}))
    assert jac.check().ok
    hess = mc.hessian(mc.parse("var(x) + sum(gelu(x))", {"x": ("n",)}),
                      mc.parse("x", {"x": ("n",)}))
    assert hess.check().ok
    n = x.size
    want = 2 / n * (np.eye(n) - np.ones((n, n)) / n) + np.diag(
        np.exp(-x ** 2 / 2) / math.sqrt(2 * math.pi) * (2 - x ** 2))
    np.testing.assert_allclose(hess.numpy_function()(x=x), want, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# var and std
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("axis", [None, 0, 1, -1])
@pytest.mark.parametrize("ddof", [0, 1])
def test_var_and_std_against_numpy(axis, ddof):
    # var along axis 0 has one entry per column (m), along axis 1 one per row (n)
    shapes = {"A": ("n", "m"), "w": ("n",) if axis in (1, -1) else ("m",) if axis == 0 else ()}
    keywords = "".join([f", axis={axis}" if axis is not None else "",
                        f", ddof={ddof}" if ddof else ""])
    for name, f in (("var", np.var), ("std", np.std)):
        if axis is None:
            text = f"{name}(A{keywords}) * w"
            reference = lambda A, w, f=f: f(A, ddof=ddof) * w
        else:
            text = f"sum({name}(A{keywords}) * w)"
            reference = lambda A, w, f=f: np.sum(f(A, axis=axis, ddof=ddof) * w)
        assert_gradients(text, {k: v for k, v in shapes.items()}, ["A"], reference, seed=7)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_norm_along_an_axis_against_numpy(axis):
    w = ("m",) if axis == 0 else ("n",)
    assert_gradients(f"sum(norm(A, axis={axis}) * w)", {"A": ("n", "m"), "w": w}, ["A"],
                     lambda A, w: np.sum(np.linalg.norm(A, axis=axis) * w), seed=2)
    assert_gradients(f"sum(A / norm(A, axis={axis}, keepdims=True))", {"A": ("n", "m")}, ["A"],
                     lambda A: np.sum(A / np.linalg.norm(A, axis=axis, keepdims=True)), seed=2)


def test_var_with_keepdims_meets_the_matrix_as_a_column():
    assert_gradients("sum((A - mean(A, axis=1, keepdims=True)) / sqrt(var(A, axis=1, "
                     "keepdims=True) + 1e-5) * G)", {"A": ("n", "m"), "G": ("n", "m")}, ["A"],
                     lambda A, G: np.sum((A - A.mean(axis=1, keepdims=True)) /
                                            np.sqrt(A.var(axis=1, keepdims=True) + 1e-5) * G))


# ---------------------------------------------------------------------------------------------
# Layers and losses written the NumPy way
# ---------------------------------------------------------------------------------------------

EPS = 1e-5


def layer_norm(X, gamma, beta, G):
    mu = X.mean(axis=-1, keepdims=True)
    return np.sum(G * (gamma * (X - mu) / np.sqrt(X.var(axis=-1, keepdims=True) + EPS) + beta))


def batch_norm(X, gamma, beta, G):
    return np.sum(G * (gamma * (X - X.mean(axis=0)) / np.sqrt(X.var(axis=0) + EPS) + beta))


def rms_norm(X, gamma, G):
    return np.sum(G * (gamma * X / np.sqrt(np.mean(X ** 2, axis=-1, keepdims=True) + EPS)))


def row_major_mlp(X, W1, b1, W2, b2, Y):
    H = np.maximum(X @ W1 + b1, 0.0)
    return np.sum((H @ W2 + b2 - Y) ** 2) / X.shape[0]


def gelu_layer(X, W, b, Y):
    Z = X @ W + b
    return np.sum((0.5 * Z * (1 + _erf(Z / math.sqrt(2))) - Y) ** 2)


def log_cosh(X, w, y):
    return np.sum(np.log(np.cosh(X @ w - y)))


LAYERS = [
    pytest.param("sum(G * (gamma * (X - mean(X, axis=-1, keepdims=True)) / "
                 "sqrt(var(X, axis=-1, keepdims=True) + 1e-5) + beta))",
                 {"X": ("m", "d"), "gamma": ("d",), "beta": ("d",), "G": ("m", "d")},
                 ["X", "gamma", "beta"], layer_norm, id="layer norm"),
    pytest.param("sum(G * (gamma * (X - mean(X, axis=0)) / sqrt(var(X, axis=0) + 1e-5) + beta))",
                 {"X": ("m", "d"), "gamma": ("d",), "beta": ("d",), "G": ("m", "d")},
                 ["X", "gamma", "beta"], batch_norm, id="batch norm"),
    pytest.param("sum(G * (gamma * X / sqrt(mean(X ** 2, axis=-1, keepdims=True) + 1e-5)))",
                 {"X": ("m", "d"), "gamma": ("d",), "G": ("m", "d")}, ["X", "gamma"],
                 rms_norm, id="RMSNorm"),
    pytest.param("sum((maximum(X @ W1 + b1, 0) @ W2 + b2 - Y) ** 2) / m",
                 {"X": ("m", "d"), "W1": ("d", "k"), "b1": ("k",), "W2": ("k", "n"),
                  "b2": ("n",), "Y": ("m", "n")}, ["W1", "b1", "W2", "b2"], row_major_mlp,
                 id="row-major MLP"),
    pytest.param("sum((gelu(X @ W + b) - Y) ** 2)",
                 {"X": ("m", "d"), "W": ("d", "n"), "b": ("n",), "Y": ("m", "n")},
                 ["W", "b"], gelu_layer, id="GELU layer"),
    pytest.param("sum(log(cosh(X @ w - y)))", {"X": ("m", "d"), "w": ("d",), "y": ("m",)},
                 ["w"], log_cosh, id="log-cosh loss"),
]


@pytest.mark.parametrize("text, shapes, wrt, reference", LAYERS)
def test_layers_written_the_numpy_way(text, shapes, wrt, reference):
    assert_gradients(text, shapes, wrt, reference, seed=11)


def test_leaky_relu_and_elu_layers():
    shapes = {"X": ("m", "d"), "W": ("d", "n"), "b": ("n",), "Y": ("m", "n")}
    assert_gradients("sum((leaky_relu(X @ W + b, 0.1) - Y) ** 2)", shapes, ["W", "b"],
                     lambda X, W, b, Y: np.sum((np.where(X @ W + b > 0, X @ W + b,
                                                         0.1 * (X @ W + b)) - Y) ** 2))
    assert_gradients("sum((elu(X @ W + b, 1.0) - Y) ** 2)", shapes, ["W", "b"],
                     lambda X, W, b, Y: np.sum((np.where(X @ W + b > 0, X @ W + b,
                                                         np.expm1(np.minimum(X @ W + b, 0)))
                                                - Y) ** 2))


# ---------------------------------------------------------------------------------------------
# Errors: one line, the caret under the text, the fix
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, shapes, words", [
    ("sum(A, keepdim=True)", MATRICES, "unknown keyword argument 'keepdim'"),
    ("var(A, axis=2)", MATRICES, "axis must be"),
    ("sum(u, axis=1)", {"u": ("n",)}, "out of range for the 1-D u"),
    ("maximum(A)", MATRICES, "takes exactly 2 arguments"),
    ("where(A, A, B)", MATRICES, "must be one comparison"),
    ("where(A > B > 0, A, B)", MATRICES, "must be one comparison"),
    ("sum(A > B)", MATRICES, "only as the condition of where()"),
    ("leaky_relu(A, B)", MATRICES, "alpha (the slope below 0) must be a number"),
    ("A - mean(A, axis=1)", MATRICES, "write keepdims=True"),
    ("S + u", {"S": ("n", "n"), "u": ("n",)}, "ambiguous"),
])
def test_errors_name_the_fix(text, shapes, words):
    with pytest.raises(mc.MatcalcError) as err:
        mc.derive(text, wrt=next(iter(shapes)), shapes=shapes)
    message = str(err.value)
    assert words in message
    assert "^" in message.splitlines()[-1]
