"""Generated code at the machine's limit: dtype kept, each value computed once, cheap calls.

Every operation's generated code (its value, its gradient, ``backward()``'s module) takes float32
in and gives float32 out, and computes what the independent reference evaluator
(tests/reference.py) and central differences of it compute; Jacobians, Hessians and
Hessian-vector products likewise. The generated source is read with ``ast`` to count what it
computes: no expression is evaluated twice, and ``backward()`` reuses what ``forward()`` kept
(attention's softmax, layer norm's standard deviation). Arguments come in declaration order and
are checked against their declared shapes.
"""

from __future__ import annotations

import ast
import inspect

import numpy as np
import pytest

import matcalc as mc
from matcalc import expr as E

import reference
from test_registry import EXAMPLE_IDS, EXAMPLES, SIZES, values_for

F32 = np.float32


def as_args(variables, values: dict, dtype) -> dict:
    """Arguments of generated code: vectors 1-D, scalars NumPy scalars, everything in dtype."""
    out = {}
    for v in variables:
        x = np.asarray(values[v.name], dtype=dtype)
        out[v.name] = x.reshape(-1) if v.kind == "vector" else \
            x.reshape(())[()] if v.kind == "scalar" else x
    return out


def call(f, args: dict):
    """Call generated code, filling in the dimensions it takes as arguments."""
    takes = inspect.signature(f).parameters
    return f(**args, **{d: size for d, size in SIZES.items() if d in takes})


def dtypes(result) -> set:
    results = result if isinstance(result, tuple) else (result,)
    return {np.asarray(r).dtype for r in results} | \
        {type(r) for r in results if not isinstance(r, np.ndarray)}


def assert_float32(result, source: str) -> None:
    assert dtypes(result) <= {np.dtype(F32), F32}, source


# ---------------------------------------------------------------------------------------------
# float32 in, float32 out: every operation
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("op,label,node", EXAMPLES, ids=EXAMPLE_IDS)
def test_every_operations_value_and_gradient_keep_float32(op, label, node):
    variables = E.variables([node])
    values = values_for(op, node, np.random.default_rng(5))
    args = as_args(variables, values, F32)
    res = mc.grad(node, variables)
    value = call(res.value_function(), args)
    assert_float32(value, label)
    want = reference.evaluate(node, values, SIZES)
    np.testing.assert_allclose(np.asarray(value, dtype=float).reshape(want.shape), want,
                               rtol=2e-4, atol=2e-4)
    upstream = {}
    weight = None
    if res.upstream is not None:
        weight = np.random.default_rng(6).standard_normal(want.shape)
        upstream = {res.upstream.name: weight.astype(F32).reshape(
            np.shape(value)) if np.ndim(value) else weight.astype(F32).reshape(())[()]}
    grads = call(res.numpy_function(), {**args, **upstream})
    assert_float32(grads, res.numpy_source())
    grads = grads if isinstance(grads, tuple) else (grads,)
    for v, g in zip(variables, grads):
        expected = reference.numeric_gradient(node, v, values, SIZES, weight)
        np.testing.assert_allclose(np.asarray(g, dtype=float).reshape(expected.shape), expected,
                                   rtol=2e-3, atol=2e-3, err_msg=f"d/d{v.name}")


@pytest.mark.parametrize("op,label,node", EXAMPLES, ids=EXAMPLE_IDS)
def test_every_operations_backward_module_keeps_float32(op, label, node):
    variables = E.variables([node])
    values = values_for(op, node, np.random.default_rng(7))
    args = as_args(variables, values, F32)
    code = mc.backward(node, variables)
    value, kept = call(code.forward, args)
    assert_float32(value, code.source)
    grads = code.backward(kept)
    assert_float32(tuple(grads) if isinstance(grads, (tuple, list)) else grads, code.source)
    want = reference.evaluate(node, values, SIZES)
    np.testing.assert_allclose(np.asarray(value, dtype=float).reshape(want.shape), want,
                               rtol=2e-4, atol=2e-4)


SECOND_ORDER = [
    ("jacobian", "tanh(S @ x) * exp(x)", "x"),
    ("jacobian", "softmax(S @ x + sqrt(n) * x)", "x"),
    ("hessian", "x.T @ S @ x / sqrt(n) + sum(exp(x) / sqrt(n))", "x"),
    ("hessian", "sum(softplus(A.T @ x)) / n", "x"),
    ("hvp", "sum(exp(S @ x) / sqrt(n))", "x"),
    ("hvp", "trace(X.T @ S @ X) / sqrt(n)", "X"),
    ("hessian", "trace(X.T @ S @ X) / sqrt(n)", "X"),        # a four-index tensor
    ("jacobian", "tanh(S @ X) / sqrt(n)", "X"),
]
SHAPES = {"S": ("n", "n"), "A": ("n", "p"), "x": ("n",), "X": ("n", "m")}


@pytest.mark.parametrize("kind,text,wrt", SECOND_ORDER,
                         ids=[f"{k}:{t}" for k, t, _ in SECOND_ORDER])
def test_jacobians_hessians_and_hvps_keep_float32(kind, text, wrt):
    shapes = {k: v for k, v in SHAPES.items() if k in text}
    res = getattr(mc, kind)(text, wrt, shapes=shapes)
    rng = np.random.default_rng(8)
    values = {v.name: rng.standard_normal([reference.size(d, SIZES) for d in v.shape]) * 0.5
              for v in res.variables}
    args = as_args(res.variables, values, F32)
    got32 = call(res.numpy_function(), args)
    assert_float32(got32, res.numpy_source())
    got64 = call(res.numpy_function(), as_args(res.variables, values, np.float64))
    assert np.asarray(got64).dtype == np.float64
    np.testing.assert_allclose(np.asarray(got32, dtype=float), got64, rtol=2e-3, atol=2e-3)
    assert res.check().ok                     # the float64 code against finite differences


def test_a_python_float_scalar_does_not_promote_float32_arrays():
    res = mc.derive("sum(softplus(X @ w + b) - y * (X @ w + b)) / m", wrt=["w", "b"],
                    shapes={"X": ("m", "d"), "w": ("d",), "b": (), "y": ("m",)})
    rng = np.random.default_rng(0)
    X, w, y = (rng.standard_normal(s).astype(F32) for s in ((5, 3), 3, 5))
    y = (y > 0).astype(F32)
    dw, db = res.numpy_function()(X, w, 0.25, y)
    assert dw.dtype == F32 and type(db) is F32
    value = res.value_function()(X, w, 0.25, y)
    assert type(value) is F32
    # against NumPy written by hand, in float64
    z = X.astype(float) @ w + 0.25
    r = (1 / (1 + np.exp(-z)) - y) / 5
    np.testing.assert_allclose(dw, X.T.astype(float) @ r, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(db, r.sum(), rtol=1e-5, atol=1e-6)
    # float64 in: float64 out, the scalar gradient a NumPy float64
    dw64, db64 = res.numpy_function()(X.astype(float), w.astype(float), 0.25, y.astype(float))
    assert dw64.dtype == np.float64 and type(db64) is np.float64


def test_attention_keeps_float32_without_a_float64_constant():
    res = mc.derive("softmax(Q @ K.T / sqrt(d), axis=1) @ V", wrt=["Q", "K", "V"],
                    shapes={"Q": ("n", "d"), "K": ("n", "d"), "V": ("n", "e")})
    source = res.numpy_source()
    assert "np.sqrt(d)" not in source and "math.sqrt(d)" in source
    rng = np.random.default_rng(1)
    Q, K, V, G = (rng.standard_normal(s).astype(F32) for s in ((6, 4), (6, 4), (6, 3), (6, 3)))
    for g in res.numpy_function()(Q, K, V, G):
        assert g.dtype == F32
    code = mc.backward("softmax(Q @ K.T / sqrt(d), axis=1) @ V", wrt=["Q", "K", "V"],
                       shapes={"Q": ("n", "d"), "K": ("n", "d"), "V": ("n", "e")})
    out, kept = code.forward(Q, K, V)
    assert out.dtype == F32 and all(g.dtype == F32 for g in code.backward(kept, G))


# ---------------------------------------------------------------------------------------------
# Each value computed once
# ---------------------------------------------------------------------------------------------

def computations(source: str, functions=("gradient", "forward", "backward")) -> list[str]:
    """Every call and arithmetic expression the named functions compute after taking their
    arguments in (assignments to new names and return values; not the argument checks), as
    text, one entry per occurrence."""
    tree = ast.parse(source)
    found: list[str] = []
    for fn in tree.body:
        if not isinstance(fn, ast.FunctionDef) or fn.name not in functions:
            continue
        arguments = {a.arg for a in fn.args.args}
        for statement in fn.body:
            if isinstance(statement, ast.Assign):
                targets = [t.id for t in statement.targets if isinstance(t, ast.Name)]
                if targets and set(targets) <= arguments:
                    continue                       # an argument taken in
                value = statement.value
            elif isinstance(statement, ast.Return):
                value = statement.value
            else:
                continue
            for node in ast.walk(value):
                if isinstance(node, (ast.Call, ast.BinOp, ast.UnaryOp)):
                    found.append(ast.unparse(node))
    return found


def repeated(source: str, functions=("gradient", "forward", "backward")) -> list[str]:
    """Expressions computed more than once, beyond arithmetic on numbers (1 / math.sqrt(d)):
    an expression counts when it reads an array, a name of more than one letter or not a
    dimension's (dimensions here are one lower-case letter)."""
    seen = computations(source, functions)

    def reads_an_array(text: str) -> bool:
        names = {n.id for n in ast.walk(ast.parse(text, mode="eval")) if isinstance(n, ast.Name)}
        return any(n != "math" and not (len(n) == 1 and n.islower()) for n in names)
    return sorted({c for c in seen if seen.count(c) > 1 and reads_an_array(c)})


def calls_of(source: str, name: str, functions=("gradient", "forward", "backward")) -> int:
    """How many calls of the function ``name`` (np.name, xp.name or a helper) are computed."""
    count = 0
    for text in computations(source, functions):
        node = ast.parse(text, mode="eval").body
        if isinstance(node, ast.Call):
            f = node.func
            count += (f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")) == name
    return count


MODELS = {
    "triplet": ("sum(relu(sum((A - P) ** 2, axis=1) - sum((A - N) ** 2, axis=1) + 0.2))",
                {"A": ("m", "d"), "P": ("m", "d"), "N": ("m", "d")}, ["A", "P", "N"]),
    "attention": ("softmax(Q @ K.T / sqrt(d), axis=1) @ V",
                  {"Q": ("n", "d"), "K": ("n", "d"), "V": ("n", "e")}, ["Q", "K", "V"]),
    "layer norm": ("gamma * ((X - mean(X, axis=1, keepdims=True)) / sqrt(mean((X - mean(X, "
                   "axis=1, keepdims=True)) ** 2, axis=1, keepdims=True) + 1e-5)) + beta",
                   {"X": ("m", "d"), "gamma": ("d",), "beta": ("d",)}, ["X", "gamma", "beta"]),
    "mlp": ("sum((tanh(W2 @ tanh(W1 @ X + b1) + b2) - Y) ** 2) / m",
            {"W1": ("h", "n"), "b1": ("h",), "W2": ("k", "h"), "b2": ("k",), "X": ("n", "m"),
             "Y": ("k", "m")}, ["W1", "b1", "W2", "b2"]),
    "gru": ("(1 - sigmoid(Wz @ X + Uz @ H)) * tanh(Wn @ X + sigmoid(Wr @ X + Ur @ H) * (Un @ H))"
            " + sigmoid(Wz @ X + Uz @ H) * H",
            {"X": ("i", "m"), "H": ("h", "m"), **{w: ("h", "i") for w in ("Wz", "Wr", "Wn")},
             **{u: ("h", "h") for u in ("Uz", "Ur", "Un")}},
            ["Wz", "Uz", "Wr", "Ur", "Wn", "Un", "X", "H"]),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_no_value_is_computed_twice_in_a_multi_gradient(name):
    text, shapes, wrt = MODELS[name]
    source = mc.derive(text, wrt=wrt, shapes=shapes).numpy_source()
    assert repeated(source) == [], source


@pytest.mark.parametrize("name", list(MODELS))
def test_no_value_is_computed_twice_across_forward_and_backward(name):
    text, shapes, wrt = MODELS[name]
    source = mc.backward(text, wrt=wrt, shapes=shapes).source
    assert repeated(source) == [], source


def test_the_triplet_losss_step_and_row_sums_are_computed_once():
    text, shapes, wrt = MODELS["triplet"]
    source = mc.derive(text, wrt=wrt, shapes=shapes).numpy_source()
    row_sums = calls_of(source, "sum") + calls_of(source, "einsum")
    assert calls_of(source, "heaviside") == 1 and row_sums == 2, source
    assert "t ** 2" not in source                  # summed without a squared array


def test_backward_keeps_attentions_softmax_and_layer_norms_statistics():
    text, shapes, wrt = MODELS["attention"]
    source = mc.backward(text, wrt=wrt, shapes=shapes).source
    assert calls_of(source, "softmax") == 1, source                # forward's P, kept
    text, shapes, wrt = MODELS["layer norm"]
    source = mc.backward(text, wrt=wrt, shapes=shapes).source
    assert calls_of(source, "sqrt") == 1, source
    assert calls_of(source, "sqrt", ("backward",)) == 0, source
    assert "broadcast_to" not in source, source                   # no m x d mean or std
    # the normalised X, computed by forward, is kept for dgamma = sum(G * Xhat, axis=0)
    code = mc.backward(text, wrt=wrt, shapes=shapes)
    assert any(f"xp.sum(G * {k}, axis=0, keepdims=True)" in computations(source, ("backward",))
               or f"sum_of_product(xp, G, {k}, 0)" in computations(source, ("backward",))
               for k in code.kept), source


@pytest.mark.parametrize("kind,text,wrt", [
    ("hessian", "sum(exp(S @ x)) + sum(tanh(S @ x)) ** 2", "x"),
    ("jacobian", "softmax(S @ x) * tanh(S @ x)", "x"),
    ("hvp", "sum(exp(S @ x)) + sum(tanh(S @ x)) ** 2", "x"),
])
def test_no_value_is_computed_twice_in_second_order_code(kind, text, wrt):
    res = getattr(mc, kind)(text, wrt, shapes={"S": ("n", "n"), "x": ("n",)})
    source = res.numpy_source()
    assert repeated(source) == [], source
    assert res.check().ok


def test_the_counter_sees_a_repeated_value():
    source = "def gradient(A):\n    t = np.exp(A @ A)\n    return t + np.exp(A @ A)\n"
    assert repeated(source) == ["A @ A", "np.exp(A @ A)"]


# ---------------------------------------------------------------------------------------------
# Arguments: declaration order, checked shapes, conversion only where needed
# ---------------------------------------------------------------------------------------------

def test_arguments_come_in_declaration_order():
    shapes = {"W1": ("h", "n"), "b1": ("h",), "W2": ("k", "h"), "b2": ("k",), "X": ("n", "m"),
              "Y": ("k", "m")}
    text = "sum((tanh(W2 @ tanh(W1 @ X + b1) + b2) - Y) ** 2) / m"
    res = mc.derive(text, wrt=["W1", "W2"], shapes=shapes)
    assert list(inspect.signature(res.numpy_function()).parameters) == list(shapes)
    assert list(inspect.signature(res.value_function()).parameters) == list(shapes)
    code = mc.backward(text, wrt=["W1", "W2"], shapes=shapes)
    assert list(inspect.signature(code.forward).parameters) == list(shapes) + ["xp"]
    # positionally, in the declared order: the gradient of the declared W1
    rng = np.random.default_rng(2)
    W1, W2, X, Y = (rng.standard_normal(s) for s in ((4, 3), (2, 4), (3, 5), (2, 5)))
    b1, b2 = rng.standard_normal(4), rng.standard_normal(2)
    dW1, dW2 = res.numpy_function()(W1, b1, W2, b2, X, Y)
    A1 = np.tanh(W1 @ X + b1[:, None])
    A2 = np.tanh(W2 @ A1 + b2[:, None])
    D2 = 2 / 5 * (A2 - Y) * (1 - A2 ** 2)
    np.testing.assert_allclose(dW2, D2 @ A1.T, rtol=1e-12)
    np.testing.assert_allclose(dW1, ((W2.T @ D2) * (1 - A1 ** 2)) @ X.T, rtol=1e-12)
    h = mc.hvp("sum(exp(A @ x))", "x", shapes={"A": ("n", "n"), "x": ("n",)})
    assert list(inspect.signature(h.numpy_function()).parameters) == ["A", "x", "v"]


def test_a_wrongly_shaped_argument_is_named_with_its_expected_shape():
    res = mc.derive("sum(W @ X + b)", wrt="W", shapes={"W": ("n", "d"), "X": ("d", "m"),
                                                        "b": ("n",)})
    f = res.numpy_function()
    W, X, b = np.ones((3, 4)), np.ones((4, 5)), np.ones(3)
    assert f(W, X, b).shape == (3, 4)
    with pytest.raises(ValueError, match=r"^X: expected shape \(d, m\), got \(3, 5\)$"):
        f(W, np.ones((3, 5)), b)
    with pytest.raises(ValueError, match=r"^b: expected shape \(n,\) = \(3,\), got \(4,\)$"):
        f(W, X, np.ones(4))
    with pytest.raises(ValueError, match=r"^W: expected shape \(n, d\), got \(3,\)$"):
        f(np.ones(3), X, b)
    with pytest.raises(ValueError, match=r"^X: expected shape \(d, m\), got \(4, 5, 1\)$"):
        f(W, np.ones((4, 5, 1)), b)
    with pytest.raises(TypeError, match=r"^W: expected an array of numbers, got <U1$"):
        f(np.full((3, 4), "a"), X, b)
    code = mc.backward("sum(W @ X + b)", wrt="W", shapes={"W": ("n", "d"), "X": ("d", "m"),
                                                          "b": ("n",)})
    with pytest.raises(ValueError, match=r"^b: expected shape \(n,\) = \(3,\), got \(4,\)$"):
        code.forward(W, X, np.ones(4))


def test_the_upstream_gradient_is_checked_too():
    res = mc.derive("tanh(W @ X)", wrt="W", shapes={"W": ("n", "d"), "X": ("d", "m")})
    f = res.numpy_function()
    with pytest.raises(ValueError, match=r"^G: expected shape \(n, m\) = \(3, 5\), got \(5, 3\)"):
        f(np.ones((3, 4)), np.ones((4, 5)), np.ones((5, 3)))


def test_arguments_are_converted_only_when_they_need_it():
    res = mc.derive("sum(W @ x)", wrt="W", shapes={"W": ("n", "d"), "x": ("d",)})
    f = res.numpy_function()
    # integers and lists become float64; float32 and float64 arrays pass as they are
    g = f([[1, 2], [3, 4], [5, 6]], [1, 2])
    assert g.dtype == np.float64
    np.testing.assert_array_equal(g, np.ones((3, 1)) @ np.array([[1.0, 2.0]]))
    assert f(np.ones((3, 2), F32), np.ones(2, F32)).dtype == F32
    source = res.numpy_source()
    assert 'if type(W) is not np.ndarray or W.dtype.kind != "f":' in source
    body = source.split("def gradient")[1]
    assert "np.result_type" not in body            # no dtype needed: none computed
    # (two arrays of one floating type: one comparison, no conversion)
    assert "if W.dtype != x.dtype:\n        W, x = same_dtype(W, x)" in body


# ---------------------------------------------------------------------------------------------
# The same code with xp=: jax.numpy under jax.jit, array-api-strict (torch: tests/test_backward)
# ---------------------------------------------------------------------------------------------

def model_values(name: str, dtype, seed: int = 4) -> dict:
    text, shapes, wrt = MODELS[name]
    sizes = {"m": 5, "d": 4, "n": 6, "e": 3, "h": 4, "k": 2, "i": 3}
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal([sizes[d] for d in s]).astype(dtype) for k, s in shapes.items()}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["attention", "layer norm", "mlp", "triplet"])
def test_backward_module_runs_under_jax_jit(name, dtype):
    jax = pytest.importorskip("jax")
    jnp = pytest.importorskip("jax.numpy")
    text, shapes, wrt = MODELS[name]
    code = mc.backward(text, wrt=wrt, shapes=shapes)
    values = model_values(name, dtype)
    want_value, kept = code.forward(**values)
    want = code.backward(kept)

    def both(*args):
        value, kept = code.forward(*args, xp=jnp)
        return value, code.backward(kept, xp=jnp)
    with jax.enable_x64(dtype == "float64"):
        value, grads = jax.jit(both)(*(jnp.asarray(values[k]) for k in shapes))
        assert value.dtype == np.dtype(dtype)
        tol = 1e-10 if dtype == "float64" else 2e-4
        np.testing.assert_allclose(np.asarray(value), want_value, rtol=tol, atol=tol)
        for got, w in zip(grads, want):
            assert got.dtype == np.dtype(dtype)
            np.testing.assert_allclose(np.asarray(got), w, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", ["attention", "layer norm"])
def test_backward_module_runs_on_array_api_strict(name):
    xps = pytest.importorskip("array_api_strict")
    text, shapes, wrt = MODELS[name]
    code = mc.backward(text, wrt=wrt, shapes=shapes)
    values = model_values(name, "float32")
    want = code.backward(code.forward(**values)[1])
    value, kept = code.forward(**{k: xps.asarray(v) for k, v in values.items()}, xp=xps)
    for got, w in zip(code.backward(kept, xp=xps), want):
        assert got.dtype == xps.float32
        np.testing.assert_allclose(np.asarray(got), w, rtol=2e-4, atol=2e-4)


# ---------------------------------------------------------------------------------------------
# Fewer passes over memory
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shapes", [((2, 30), (30, 3)), ((30, 2), (2, 3)), ((3, 2), (2, 30)),
                                    ((1, 5), (5, 1))])
def test_a_scaled_product_scales_its_smallest_part_and_equals_the_plain_one(shapes):
    from matcalc.printing.numpy import SCALED_PRODUCT, compile_module
    f = compile_module(SCALED_PRODUCT.format(name="scaled_product", np="np"),
                       "h").scaled_product
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal(s) for s in shapes)
    np.testing.assert_allclose(f(0.3, a, b), 0.3 * (a @ b), rtol=1e-13)
    assert f(np.float32(0.5), a.astype(F32), b.astype(F32)).dtype == F32


def test_attention_scales_q_not_the_n_by_n_product():
    text, shapes, wrt = MODELS["attention"]
    source = mc.derive(text, wrt=wrt, shapes=shapes).numpy_source()
    assert "scaled_product(1/math.sqrt(d), Q, K.T)" in source, source
    rng = np.random.default_rng(3)
    Q, K, V, G = (rng.standard_normal(s) for s in ((7, 3), (7, 3), (7, 2), (7, 2)))
    dQ, dK, dV = mc.derive(text, wrt=wrt, shapes=shapes).numpy_function()(Q, K, V, G)
    # by hand: P = softmax(Q K^T / sqrt(d)), dS = P * (G V^T - rowsum(G V^T * P))
    S = Q @ K.T / np.sqrt(3)
    P = np.exp(S - S.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    dP = G @ V.T
    dS = P * (dP - (dP * P).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(dQ, dS @ K / np.sqrt(3), rtol=1e-12)
    np.testing.assert_allclose(dK, dS.T @ Q / np.sqrt(3), rtol=1e-12)
    np.testing.assert_allclose(dV, P.T @ G, rtol=1e-12)


@pytest.mark.parametrize("name", list(MODELS))
def test_generated_code_never_writes_into_the_callers_arrays(name):
    text, shapes, wrt = MODELS[name]
    values = model_values(name, "float64")
    before = {k: v.copy() for k, v in values.items()}
    res = mc.derive(text, wrt=wrt, shapes=shapes)
    res.numpy_function()(**values)
    code = mc.backward(text, wrt=wrt, shapes=shapes)
    code.backward(code.forward(**values)[1])
    for k, v in values.items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


def test_one_minus_a_square_is_one_array_and_right():
    res = mc.derive("sum(tanh(W @ x) * y)", wrt="W", shapes={"W": ("n", "d"), "x": ("d",),
                                                              "y": ("n",)})
    source = res.numpy_source()
    assert "number_minus(1, " in source, source
    rng = np.random.default_rng(9)
    W, x, y = rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal(3)
    t = np.tanh(W @ x)
    np.testing.assert_allclose(res.numpy_function()(W, x, y), np.outer(y * (1 - t ** 2), x),
                               rtol=1e-12)


def test_results_update_the_codes_own_temporaries_in_place_and_stay_distinct():
    text, shapes, wrt = MODELS["triplet"]
    res = mc.derive(text, wrt=wrt, shapes=shapes)
    source = res.numpy_source()
    assert " *= -2" in source and " *= 2" in source, source
    rng = np.random.default_rng(11)
    A, P, N = (rng.standard_normal((6, 3)) for _ in range(3))
    dA, dP, dN = res.numpy_function()(A, P, N)
    assert not np.shares_memory(dA, dP) and not np.shares_memory(dP, dN)
    active = (((A - P) ** 2).sum(axis=1) - ((A - N) ** 2).sum(axis=1) + 0.2 > 0)[:, None]
    np.testing.assert_allclose(dA, 2 * active * (N - P), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dP, -2 * active * (A - P), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dN, 2 * active * (A - N), rtol=1e-12, atol=1e-15)
    text, shapes, wrt = MODELS["layer norm"]
    assert " += " in mc.derive(text, wrt=wrt, shapes=shapes).numpy_source()


# ---------------------------------------------------------------------------------------------
# Temporaries nothing reads afterwards: updated in place, never the caller's or forward's arrays
# ---------------------------------------------------------------------------------------------

BATCH_NORM = ("gamma * ((X - mean(X, axis=0)) / sqrt(mean((X - mean(X, axis=0)) ** 2, axis=0)"
              " + 1e-5)) + beta", {"X": ("m", "d"), "gamma": ("d",), "beta": ("d",)},
              ["X", "gamma", "beta"])


def norm_gradients(X, gamma, G, axis):
    """d sum(G * norm(X)) / dX, dgamma, dbeta by hand, for a norm over ``axis`` (1: layer
    norm, 0: batch norm), in float64."""
    X, gamma, G = (np.asarray(a, dtype=float) for a in (X, gamma, G))
    n = X.shape[axis]
    Xc = X - X.mean(axis=axis, keepdims=True)
    std = np.sqrt((Xc ** 2).mean(axis=axis, keepdims=True) + 1e-5)
    Xh = Xc / std
    dXh = G * gamma
    dX = (dXh - dXh.mean(axis=axis, keepdims=True)
          - Xh * (dXh * Xh).sum(axis=axis, keepdims=True) / n) / std
    return dX, (G * Xh).sum(axis=0), G.sum(axis=0)


def peak_arrays(f, unit: int) -> float:
    """The most memory ``f()`` holds at once beyond what it started with, in arrays of
    ``unit`` bytes (NumPy reports its allocations to tracemalloc)."""
    import tracemalloc
    f()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        f()
        return (tracemalloc.get_traced_memory()[1] - start) / unit
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("dtype", [np.float64, F32])
@pytest.mark.parametrize("name,axis", [("layer norm", 1), ("batch norm", 0)])
def test_norm_gradients_update_their_own_temporaries_and_stay_right(name, axis, dtype):
    text, shapes, wrt = BATCH_NORM if name == "batch norm" else MODELS[name]
    rng = np.random.default_rng(12)
    X = (1 + 2 * rng.standard_normal((7, 5))).astype(dtype)
    gamma, beta = (rng.standard_normal(5).astype(dtype) for _ in range(2))
    G = rng.standard_normal((7, 5)).astype(dtype)
    want = norm_gradients(X, gamma, G, axis)
    res = mc.derive(text, wrt=wrt, shapes=shapes)
    code = mc.backward(text, wrt=wrt, shapes=shapes)
    assert " /= " in res.numpy_source() and " += " in res.numpy_source(), res.numpy_source()
    if axis == 1:                    # dgamma: the column 1 / std a third operand, no X / std
        assert "weighted_sum(G, " in res.numpy_source(), res.numpy_source()
    assert " += " in code.source and "own(xp, " in code.source, code.source
    tol = 1e-10 if dtype == np.float64 else 2e-4
    # the returned gradients take their own names (batch norm's column sum of G, which dX
    # also reads, is another name; not dbeta_1)
    assert "    return dX, dgamma, dbeta\n" in code.source
    # forward's value made in the array of its product with gamma: one array, not two
    assert "value = own(xp, gamma.T * t_2)\n    value += beta.T\n" in code.source
    value, kept = code.forward(X, gamma, beta)
    X64 = X.astype(np.float64)
    Xc = X64 - X64.mean(axis=axis, keepdims=True)
    want_value = gamma * Xc / np.sqrt((Xc ** 2).mean(axis=axis, keepdims=True) + 1e-5) + beta
    assert value.dtype == dtype
    np.testing.assert_allclose(value, want_value, rtol=tol, atol=tol)
    for got in (res.numpy_function()(X, gamma, beta, G), code.backward(kept, G),
                code.backward(kept, G)):            # twice: forward's arrays are left alone
        assert all(g.dtype == dtype for g in got)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=tol, atol=tol)


def test_fewer_arrays_are_alive_at_once():
    # the triplet loss as the hand-written code holds it (A - P, A - N and dA), layer norm's
    # gradient as its hand-written one does (they held five and four arrays)
    text, shapes, wrt = MODELS["triplet"]
    rng = np.random.default_rng(13)
    A, P, N = (rng.standard_normal((400, 300)) for _ in range(3))
    f = mc.derive(text, wrt=wrt, shapes=shapes).numpy_function()
    assert peak_arrays(lambda: f(A, P, N), A.nbytes) < 3.2
    text, shapes, wrt = MODELS["layer norm"]
    gamma, beta = rng.standard_normal(300), rng.standard_normal(300)
    f = mc.derive(text, wrt=wrt, shapes=shapes).numpy_function()
    # (and dgamma's weighted_sum a block of G * Xc's rows, of at most 131072 entries: the
    # whole of a 400 x 300 array, an eighth of a 1600 x 600 one)
    assert peak_arrays(lambda: f(A, gamma, beta, P), A.nbytes) < 3.2
    X, G = rng.standard_normal((1600, 600)), rng.standard_normal((1600, 600))
    gamma, beta = rng.standard_normal(600), rng.standard_normal(600)
    block = (131072 // 600) * 600 * 8
    assert peak_arrays(lambda: f(X, gamma, beta, G), X.nbytes) < 2.2 + block / X.nbytes
    gamma, beta = rng.standard_normal(300), rng.standard_normal(300)
    code = mc.backward(text, wrt=wrt, shapes=shapes)
    assert peak_arrays(lambda: code.backward(code.forward(A, gamma, beta)[1], P),
                       A.nbytes) < 4.2
    # batch norm's likewise: the centred X takes the scaled centred X (its column sums against
    # G taken first), the product with gamma takes dX
    text, shapes, wrt = BATCH_NORM
    f = mc.derive(text, wrt=wrt, shapes=shapes).numpy_function()
    assert peak_arrays(lambda: f(A, gamma, beta, P), A.nbytes) < 2.2


def test_own_is_the_array_under_numpy_and_a_copy_elsewhere():
    from matcalc.printing.numpy import OWN, compile_module
    own = compile_module("import numpy\n" + OWN.format(name="own", numpy="numpy"), "h").own
    a = np.arange(6.0).reshape(2, 3)
    assert own(np, a) is a

    class Namespace:                     # another array namespace, NumPy underneath
        asarray = staticmethod(np.asarray)
    b = own(Namespace, a)
    assert not np.shares_memory(a, b) and np.array_equal(a, b)


def test_a_product_zeroed_where_a_relu_is_off_is_written_in_place_and_right():
    shapes = {"W1": ("h", "n"), "W2": ("k", "h"), "X": ("n", "m"), "Y": ("k", "m")}
    res = mc.derive("sum(Y * (W2 @ relu(W1 @ X)))", wrt="W1", shapes=shapes)
    source = res.numpy_source()
    assert "keep_positive(" in source and "np.where" not in source, source
    rng = np.random.default_rng(14)
    W1, W2, X, Y = (rng.standard_normal(s) for s in ((4, 3), (2, 4), (3, 5), (2, 5)))
    for dtype in (np.float64, F32):
        got = res.numpy_function()(*(a.astype(dtype) for a in (W1, W2, X, Y)))
        assert got.dtype == dtype
        want = (W2.T @ Y * (W1 @ X > 0)) @ X.T
        np.testing.assert_allclose(got, want, rtol=2e-5)
    from matcalc.printing.numpy import KEEP_POSITIVE, compile_module
    keep = compile_module("import numpy as np\n" + KEEP_POSITIVE.format(name="keep", np="np"),
                          "h").keep
    h = np.array([[1.0, -1.0, 0.0, np.nan, 2.0, -3.0]])
    for x in ([[np.inf, np.inf, np.nan, 2.0, np.nan, -1.0]], [[1.0, -np.inf, 3.0, 2.0, 5.0, -1.0]],
              [[1.0, -2.0, 3.0, 4.0, 5.0, -1.0]]):
        x = np.array(x)
        np.testing.assert_array_equal(keep(h, x.copy()), np.where(h > 0, x, 0.0))


@pytest.mark.parametrize("shapes", [((2, 30), (30, 3)), ((30, 2), (2, 3)), ((3, 2), (2, 30)),
                                    ((1, 5), (5, 1))])
def test_a_scaled_product_of_an_own_temporary_equals_the_plain_one(shapes):
    from matcalc.printing.numpy import (PORTABLE_SCALED_OWN_PRODUCT, SCALED_OWN_PRODUCT,
                                        compile_module)
    module = compile_module("import numpy\n" + SCALED_OWN_PRODUCT.format(name="f") +
                            PORTABLE_SCALED_OWN_PRODUCT.format(name="g", numpy="numpy"), "h")
    rng = np.random.default_rng(1)
    a, b = (rng.standard_normal(s) for s in shapes)
    for got in (module.f(0.3, a.copy(), b), module.g(np, 0.3, a.copy(), b)):
        np.testing.assert_allclose(got, 0.3 * (a @ b), rtol=1e-13)
    assert module.f(0.5, a.astype(F32), b.astype(F32)).dtype == F32


def test_the_relu_mlps_deltas_are_scaled_in_place_once_their_sums_are_taken():
    text, shapes, wrt = ("-sum(Y * log(softmax(W2 @ relu(W1 @ X + b1) + b2, axis=0))) / m",
                         {"W1": ("h", "n"), "b1": ("h",), "W2": ("c", "h"), "b2": ("c",),
                          "X": ("n", "m"), "Y": ("c", "m")}, ["W1", "b1", "W2", "b2"])
    res = mc.derive(text, wrt=wrt, shapes=shapes, domains={"Y": "probability"})
    code = mc.backward(text, wrt=wrt, shapes=shapes, domains={"Y": "probability"})
    assert res.numpy_source().count("scaled_own_product(1/m, ") == 2, res.numpy_source()
    assert code.source.count("scaled_own_product(xp, 1/m, ") == 2, code.source
    rng = np.random.default_rng(15)
    n, h, c, m = 7, 6, 3, 5
    W1, W2, X = (rng.standard_normal(s) for s in ((h, n), (c, h), (n, m)))
    b1, b2 = rng.standard_normal(h), rng.standard_normal(c)
    Y = np.eye(c)[:, rng.integers(0, c, m)]
    Z1 = W1 @ X + b1[:, None]
    A1 = np.maximum(Z1, 0)
    Z2 = W2 @ A1 + b2[:, None]
    P = np.exp(Z2 - Z2.max(axis=0))
    P /= P.sum(axis=0)
    D2 = (P - Y) / m
    D1 = (W2.T @ D2) * (Z1 > 0)
    want = (D1 @ X.T, D1.sum(axis=1), D2 @ A1.T, D2.sum(axis=1))
    args = (W1, b1, W2, b2, X, Y)
    for dtype in (np.float64, F32):
        given = [a.astype(dtype) for a in args]
        before = [a.copy() for a in given]
        kept = code.forward(*given)[1]
        for got in (res.numpy_function()(*given), code.backward(kept), code.backward(kept)):
            for g, w in zip(got, want):
                assert g.dtype == dtype
                np.testing.assert_allclose(g, w, rtol=1e-10 if dtype == np.float64 else 1e-4,
                                           atol=1e-12 if dtype == np.float64 else 1e-5)
        for a, b in zip(given, before):
            np.testing.assert_array_equal(a, b)


# trace(trace(P)) is trace(P): printed t_1 = t, the same array under two names; the result was
# then made in t_1's array (result = t_1; result += t_1; result += t) while t was still read,
# so t was added to itself first: sum(B) + 4 |B|^2 for sum(B) + 3 |B|^2
def test_no_update_in_place_of_an_array_another_name_still_reads():
    B = mc.Matrix("B", "m", "k")
    P = B @ B.T
    e = mc.sum(B) + (mc.trace(mc.trace(P)) + mc.trace(mc.trace(P)) + mc.trace(P).T)
    b = np.random.default_rng(0).uniform(0.5, 2, (3, 4))
    want = b.sum() + 3 * (b * b).sum()
    assert mc.grad(e, B).value_function()(B=b) == pytest.approx(want, rel=1e-12)
    # and a view: u = t.T updated while t is read after it
    A = mc.Matrix("A", "n", "n")
    S = mc.exp(A)
    f = (S.T + S) * S
    got = mc.grad(mc.sum(f), A).value_function()(A=b[:, :3])
    s = np.exp(b[:, :3])
    assert got == pytest.approx(((s.T + s) * s).sum(), rel=1e-12)


def test_batch_norm_sums_g_against_the_centred_x_once():
    """sum(G * gamma * Xc / sigma ** 2, axis=0) in dX and sum(G * Xc / sigma, axis=0) in dgamma
    differ only in factors that repeat down the rows: the code takes sum(G * Xc) once and sum(G)
    once (shared with dbeta), as the hand-written gradient does, and makes G * gamma / sigma as
    G * (gamma / sigma), one full-size array."""
    text, shapes, wrt = BATCH_NORM
    source = mc.derive(text, wrt=wrt, shapes=shapes).numpy_source()
    body = source[source.index("def gradient"):]
    assert body.count("einsum(") == 2, body                 # sum(Xc ** 2) and sum(G * Xc)
    assert body.count("np.sum(G") == 1, body
    assert "G * (gamma.T / " in body, body
    rng = np.random.default_rng(5)
    X, G = 1 + 2 * rng.standard_normal((9, 4)), rng.standard_normal((9, 4))
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    got = mc.derive(text, wrt=wrt, shapes=shapes).numpy_function()(X, gamma, beta, G)
    for g, w in zip(got, norm_gradients(X, gamma, G, 0)):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("text, want", [
    # a column sum of a product with a row repeated down the rows: the row comes out
    ("sum(A * r * B, axis=0)", lambda v: (v["A"] * v["r"] * v["B"]).sum(axis=0)),
    ("sum(A / r, axis=0) + sum(A * B / r, axis=0)",
     lambda v: (v["A"] / v["r"]).sum(axis=0) + (v["A"] * v["B"] / v["r"]).sum(axis=0)),
    # a row sum with a column repeated across: the column comes out; the row stays inside
    ("sum(A * (c @ ones(1, d)) / r, axis=1)",
     lambda v: (v["A"] * v["c"][:, None] / v["r"]).sum(axis=1)),
    ("sum(r / A, axis=0)", lambda v: (v["r"] / v["A"]).sum(axis=0)),
    # (X * r) / s with r and s rows: X * (r / s)
    ("A * r / (r + 2)", lambda v: v["A"] * v["r"] / (v["r"] + 2)),
])
def test_factors_taken_out_of_sums_and_regrouped_keep_the_value(text, want):
    shapes = {"A": ("m", "d"), "B": ("m", "d"), "r": ("d",), "c": ("m",)}
    rng = np.random.default_rng(8)
    values = {"A": rng.standard_normal((6, 4)), "B": rng.standard_normal((6, 4)),
              "r": rng.uniform(0.5, 2, 4), "c": rng.standard_normal(6)}
    f = mc.derive(text, wrt=["A"], shapes=shapes).value_function()
    taken = inspect.signature(f).parameters
    got = f(**{k: v for k, v in values.items() if k in taken})
    np.testing.assert_allclose(np.reshape(got, np.shape(want(values))), want(values),
                               rtol=1e-12, err_msg=text)


# an update of t = log(B) whose later operand read t twice, once inside a sum inside an einsum:
# both calls were hoisted, the inner one replaced first, so the outer one's text no longer
# matched and the einsum read t after t had been updated (found by the large property run)
def test_an_update_never_leaves_a_read_of_the_temporary_behind():
    text = ("(sum(2 * log(B)) - ((-(log(B) + log(B)) / B).T + sum((-(log(B) + log(B))).T))) * "
            "sum(log(B) + log(B) + (log(B) + log(B)))")
    res = mc.derive(text, wrt=["B"], shapes={"B": ("n", "m")}, domains={"B": "positive"})
    rng = np.random.default_rng(0)
    b, G = rng.uniform(0.5, 2, (2, 3)), rng.standard_normal((3, 2))
    # f = (2 s + 2 L.T / B.T + 2 s) * 4 s with L = log(B), s = sum(L): by hand
    L, s = np.log(b), np.log(b).sum()
    inner = 4 * s + (2 * L / b).T
    d_s = (G * 4 * s).sum() * 4 + (G * inner).sum() * 4             # through s = sum(L)
    want = d_s / b + (G.T * 4 * s) * (2 / b ** 2 - 2 * L / b ** 2)
    np.testing.assert_allclose(res.numpy_function()(b, G), want, rtol=1e-10)


# a scalar made of constants only, raised to a power, prints as a Python float: as the first
# factor of a product of three it went into multi_dot, which takes arrays only (found by the
# large property run)
def test_a_constant_scalar_power_in_a_product_of_several_factors():
    u, A = mc.Vector("u", "n"), mc.Matrix("A", "n", "n")
    e = (mc.sum(mc.ones("n", "m")) / (mc.dim("m") * mc.dim("n"))) ** 2 @ u.T @ A
    rng = np.random.default_rng(0)
    uu, AA = rng.standard_normal(3), rng.standard_normal((3, 3))
    f = mc.grad(mc.sum(e @ u), u).value_function()
    assert f(u=uu, A=AA, m=4) == pytest.approx(uu @ AA @ uu, rel=1e-12)


# G * step(h) masks a fresh product in place only when the product has the mask's shape: a
# column A @ U broadcast across step(A) was masked in place and NumPy refused the (n, 1) output
# (found by the large run of the NumPy-meaning property test)
def test_a_product_that_broadcasts_against_the_mask_is_not_masked_in_place():
    text, shapes = "step(A) * (A @ U)", {"A": ("n", "n"), "U": ("n", 1)}
    rng = np.random.default_rng(0)
    A, U = rng.standard_normal((3, 3)), rng.standard_normal((3, 1))
    f = mc.derive(text, wrt=["A"], shapes=shapes).value_function()
    np.testing.assert_allclose(f(A=A, U=U), np.heaviside(A, 0) * (A @ U), rtol=1e-12)
    code = mc.backward(f"sum({text})", wrt=["A"], shapes=shapes)
    value, _ = code.forward(A=A, U=U)
    assert float(value) == pytest.approx((np.heaviside(A, 0) * (A @ U)).sum(), rel=1e-12)


WEIGHTED_SUMS = [
    ("sum(A * B / c, axis=0, keepdims=True)", {"c": ("m", 1)},
     lambda A, B, w: (A * B / w).sum(axis=0, keepdims=True)),
    ("sum(A * B * r, axis=1, keepdims=True)", {"r": (1, "n")},
     lambda A, B, w: (A * B * w).sum(axis=1, keepdims=True)),
    ("sum(A / c, axis=0, keepdims=True)", {"c": ("m", 1)},
     lambda A, B, w: (A / w).sum(axis=0, keepdims=True)),
    ("sum(A * r, axis=1, keepdims=True)", {"r": (1, "n")},
     lambda A, B, w: (A * w).sum(axis=1, keepdims=True)),
]


@pytest.mark.parametrize("dtype", [np.float64, F32])
@pytest.mark.parametrize("m,n", [(700, 450), (3, 5), (1, 200000), (0, 4)])
@pytest.mark.parametrize("text,weight,reference", WEIGHTED_SUMS,
                         ids=[t for t, _, _ in WEIGHTED_SUMS])
def test_a_weighted_sum_taken_in_blocks_of_rows_is_the_sum(text, weight, reference, m, n, dtype):
    """sum(A * B * w) along an axis with w a vector along it: BLAS meets w a block of rows
    at a time (700 x 450: 291 rows a block, the last one short; one row longer than a block;
    no rows at all), and the value is NumPy's, in the inputs' dtype."""
    shapes = {"A": ("m", "n"), "B": ("m", "n"), **weight}
    res = mc.derive(text, wrt="A", shapes=shapes)
    f = res.value_function()
    assert "weighted_sum" in f.__globals__, res.numpy_source()
    rng = np.random.default_rng(5)
    (w_name, w_shape), = weight.items()
    A, B = (rng.standard_normal((m, n)).astype(dtype) for _ in range(2))
    w = (1 + rng.random((m, 1) if w_shape[1] == 1 else (1, n))).astype(dtype)
    args = {"A": A, w_name: w, **({"B": B} if "B" in text else {})}
    got = f(**args)
    want = reference(A.astype(np.float64), B.astype(np.float64), w.astype(np.float64))
    assert got.dtype == dtype and got.shape == want.shape
    tol = 1e-9 if dtype == np.float64 else 1e-3
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(1, m))


def numpy_softmax(S, axis):
    E = np.exp(S - S.max(axis=axis, keepdims=True))
    return E / E.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("text,own,reference", [
    ("sum(softmax(X, axis=1) * Y)", False, lambda v: numpy_softmax(v["X"], 1)),
    ("sum(softmax(A @ B, axis=0) * Y)", True, lambda v: numpy_softmax(v["A"] @ v["B"], 0)),
    ("sum(softmax(X / 2 + A @ B, axis=1) * Y)", True,
     lambda v: numpy_softmax(v["X"] / 2 + v["A"] @ v["B"], 1)),
])
def test_softmax_works_in_an_array_only_it_reads(text, own, reference):
    """softmax exponentiates and normalises in one array: the product or sum the expression
    has just made (own=True), else a shifted copy; the caller's X is never written."""
    shapes = {"X": ("n", "m"), "A": ("n", "k"), "B": ("k", "m"), "Y": ("n", "m")}
    used = {k: s for k, s in shapes.items() if k in text}
    res = mc.derive(text, wrt=["Y"], shapes=used)
    code = mc.backward(text, wrt=["Y"], shapes=used)
    for source in (res.numpy_source(), code.source):
        assert ("own=True" in source) == own, source
    rng = np.random.default_rng(21)
    sizes = {"n": 6, "m": 5, "k": 3}
    values = {k: 3 * rng.standard_normal([sizes[d] for d in s]) for k, s in used.items()}
    before = {k: v.copy() for k, v in values.items()}
    want = reference(values)                                 # d sum(P * Y) / dY = P
    np.testing.assert_allclose(res.numpy_function()(**values), want, rtol=1e-12)
    value, kept = code.forward(**values)
    np.testing.assert_allclose(value, (want * values["Y"]).sum(), rtol=1e-12)
    np.testing.assert_allclose(code.backward(kept)[0], want, rtol=1e-12)
    for k, v in values.items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


@pytest.mark.parametrize("name", list(MODELS) + ["batch norm"])
@pytest.mark.parametrize("inputs,upstream", [("mixed", "float32"), ("float32", "float64")])
def test_mixed_floating_types_give_the_common_type_everywhere(name, inputs, upstream):
    """float32 and float64 arguments together: every gradient float64, as if each had been
    float64 (a float32 temporary updated in place must not keep its type); a float64 upstream
    gradient of float32 arguments: float32, the arguments' type, as torch and JAX require."""
    text, shapes, wrt = BATCH_NORM if name == "batch norm" else MODELS[name]
    values = model_values("layer norm" if name == "batch norm" else name, "float64")
    if inputs == "mixed":                     # the first argument float64, the others float32
        given = {k: v if i == 0 else v.astype(np.float32)
                 for i, (k, v) in enumerate(values.items())}
        want_dtype = np.float64
    else:
        given = {k: v.astype(np.float32) for k, v in values.items()}
        want_dtype = np.float32
    as_given = {k: v.astype(np.float64) for k, v in given.items()}   # the same values
    res = mc.derive(text, wrt=wrt, shapes=shapes)
    code = mc.backward(text, wrt=wrt, shapes=shapes)
    value = code.forward(**as_given)[0]
    upstream_arg, weight = {}, None
    if np.ndim(value):                        # an upstream gradient G of the value's shape
        G = np.random.default_rng(8).standard_normal(np.shape(value)).astype(upstream)
        upstream_arg, weight = {"G": G}, G.astype(np.float64)
        assert G.dtype != want_dtype or inputs == "mixed"
    # the ground truth: central differences of the independent evaluator, in float64
    columns = {k: v.reshape(-1, 1) if v.ndim == 1 else v for k, v in as_given.items()}
    sizes = {"m": 5, "d": 4, "n": 6, "e": 3, "h": 4, "k": 2, "i": 3}
    variables = {v.name: v for v in res.variables}
    want = [reference.numeric_gradient(res.expression, variables[name], columns, sizes, weight)
            for name in wrt]
    kept = code.forward(**given)[1]
    # (mixed: computed in float64 throughout, so only the differences' error; else float32's)
    tol = 1e-6 if want_dtype == np.float64 else 2e-3
    for got in (res.numpy_function()(**given, **upstream_arg),
                code.backward(kept, *upstream_arg.values())):
        got = got if isinstance(got, tuple) else (got,)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert np.asarray(g).dtype == want_dtype
            np.testing.assert_allclose(np.reshape(g, w.shape), w, rtol=tol, atol=tol)
