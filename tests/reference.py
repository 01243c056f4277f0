"""An independent NumPy evaluator of matcalc expressions: the tests' ground truth.

It walks the expression itself (not matcalc's generated code), so a bug in the code generator
cannot hide a wrong gradient. Values are 2-D arrays; dims are looked up in ``sizes``.
"""

from __future__ import annotations

import math

import numpy as np
import sympy

from matcalc import expr as E
from matcalc.ops.contractions import Einsum, Sum, Trace
from matcalc.ops.linalg import Det, Diag, Inv, LogDet
from matcalc.ops.extremes import ArgmaxWeights, ArgminWeights, Max, Min
from matcalc.ops.reductions import LogSumExp, Norm, Norm1, Softmax

FUNCS = {
    "exp": np.exp, "log": np.log, "sin": np.sin, "cos": np.cos, "tanh": np.tanh,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)), "relu": lambda x: np.where(x > 0, x, 0.0),
    "abs": np.abs, "sign": np.sign, "sqrt": np.sqrt, "softplus": lambda x: np.log1p(np.exp(x)),
    "step": lambda x: (x > 0).astype(float), "log1p": np.log1p, "expm1": np.expm1,
    "tan": np.tan, "arcsin": np.arcsin, "arccos": np.arccos, "arctan": np.arctan,
    "sinh": np.sinh, "cosh": np.cosh, "erf": np.vectorize(math.erf, otypes=[float]),
    "square": np.square,
    "gelu": lambda x: 0.5 * x * (1 + np.vectorize(math.erf, otypes=[float])(x / math.sqrt(2))),
    "gelu_tanh": lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) *
                                                  (x + 0.044715 * x ** 3))),
    "silu": lambda x: x / (1 + np.exp(-x)),
}


def size(d, sizes) -> int:
    return int(sympy.sympify(d).subs({s: sizes[s.name] for s in sympy.sympify(d).free_symbols}))


def evaluate(node: E.Node, values: dict, sizes: dict) -> np.ndarray:
    """The value of ``node`` (2-D) for variable values (by name; any shape that reshapes)."""
    out: dict[int, np.ndarray] = {}
    for n in E.postorder([node]):
        a = [out[id(x)] for x in n.args]
        shape = tuple(size(d, sizes) for d in n.shape)
        if isinstance(n, E.Var):
            v = np.asarray(values[n.name], dtype=float).reshape(shape)
        elif isinstance(n, E.Const):
            v = np.full((1, 1), float(n.value.subs({s: sizes[s.name] for s in n.value.free_symbols})))
        elif isinstance(n, E.Eye):
            v = np.eye(shape[0])
        elif isinstance(n, E.MatMul):
            v = a[0] @ a[1]
        elif isinstance(n, E.Transpose):
            v = a[0].T
        elif isinstance(n, E.Add):
            v = a[0] + a[1]
        elif isinstance(n, E.Sub):
            v = a[0] - a[1]
        elif isinstance(n, E.Mul):
            v = a[0] * a[1]
        elif isinstance(n, E.Div):
            v = a[0] / a[1]
        elif isinstance(n, E.Neg):
            v = -a[0]
        elif isinstance(n, E.Pow):
            v = a[0] ** float(n.exponent)
        elif isinstance(n, E.Apply):
            v = FUNCS[n.name](a[0])
        elif isinstance(n, E.Broadcast):
            v = np.broadcast_to(a[0], shape).copy()
        elif isinstance(n, Sum):
            if n.axis is None:
                v = np.sum(a[0]).reshape(1, 1)
            elif n.axis == 0:
                v = np.sum(a[0], axis=0).reshape(-1, 1)
            else:
                v = np.sum(a[0], axis=1).reshape(-1, 1)
        elif isinstance(n, Trace):
            v = np.trace(a[0]).reshape(1, 1)
        elif isinstance(n, Einsum):
            subscripts, output = n.params
            v = np.einsum(",".join(subscripts) + "->" + output, *a).reshape(shape)
        elif isinstance(n, Det):
            v = np.array([[np.linalg.det(a[0])]])
        elif isinstance(n, LogDet):
            v = np.array([[np.log(abs(np.linalg.det(a[0])))]])
        elif isinstance(n, Inv):
            v = np.linalg.inv(a[0])
        elif isinstance(n, Diag):
            v = np.diag(a[0][:, 0]) if n.to_matrix else np.diag(a[0]).reshape(-1, 1).copy()
        elif isinstance(n, Norm):
            v = np.array([[np.sqrt(np.sum(a[0] ** 2))]])
        elif isinstance(n, Norm1):
            v = np.array([[np.sum(np.abs(a[0]))]])
        elif isinstance(n, Softmax):
            e = np.exp(a[0])
            v = e / np.sum(e, axis=n.axis, keepdims=True)
        elif isinstance(n, LogSumExp):
            v = np.log(np.sum(np.exp(a[0]), axis=n.axis, keepdims=True))
            v = v.reshape(shape)
        elif isinstance(n, (Max, Min)):
            f = np.max if isinstance(n, Max) else np.min
            v = f(a[0], axis=n.axis, keepdims=True)
            v = v.reshape(shape)
        elif isinstance(n, (ArgmaxWeights, ArgminWeights)):
            f = np.max if isinstance(n, ArgmaxWeights) else np.min
            hit = (a[0] == f(a[0], axis=n.axis, keepdims=True)).astype(float)
            v = hit / np.sum(hit, axis=n.axis, keepdims=True)
        else:
            raise TypeError(f"reference evaluator: no rule for {type(n).__name__}")
        assert v.shape == shape, (type(n).__name__, v.shape, shape)
        out[id(n)] = v
    return out[id(node)]


def random_values(variables, sizes, rng, positive=()) -> dict:
    values = {}
    for v in variables:
        shape = tuple(size(d, sizes) for d in v.shape)
        if v.domain == "positive" or v.name in positive:
            values[v.name] = rng.uniform(0.5, 2.0, size=shape)
        else:
            values[v.name] = rng.standard_normal(shape)
    return values


def numeric_gradient(expression: E.Node, var: E.Var, values: dict, sizes: dict,
                     weight: np.ndarray | None = None, h: float = 1e-6) -> np.ndarray:
    """Central differences of sum(weight * expression) with respect to ``var`` (2-D result)."""
    x = np.asarray(values[var.name], dtype=float)
    grad = np.zeros(x.shape)
    for idx in np.ndindex(*x.shape):
        plus, minus = dict(values), dict(values)
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        plus[var.name], minus[var.name] = xp, xm
        fp, fm = evaluate(expression, plus, sizes), evaluate(expression, minus, sizes)
        w = 1.0 if weight is None else weight
        grad[idx] = (np.sum(w * fp) - np.sum(w * fm)) / (2 * h)
    return grad


SYMPY_FUNCS = {
    "exp": sympy.exp, "log": sympy.log, "sin": sympy.sin, "cos": sympy.cos, "tanh": sympy.tanh,
    "sqrt": sympy.sqrt, "sigmoid": lambda x: 1 / (1 + sympy.exp(-x)),
    "softplus": lambda x: sympy.log(1 + sympy.exp(x)),
    "log1p": lambda x: sympy.log(1 + x), "expm1": lambda x: sympy.exp(x) - 1,
    "tan": sympy.tan, "arcsin": sympy.asin, "arccos": sympy.acos, "arctan": sympy.atan,
    "sinh": sympy.sinh, "cosh": sympy.cosh, "erf": sympy.erf, "square": lambda x: x ** 2,
    "gelu": lambda x: x * (1 + sympy.erf(x / sympy.sqrt(2))) / 2,
    "gelu_tanh": lambda x: x * (1 + sympy.tanh(sympy.sqrt(2 / sympy.pi) *
                                               (x + sympy.Rational(44715, 10 ** 6) * x ** 3))) / 2,
    "silu": lambda x: x / (1 + sympy.exp(-x)),
}


def evaluate_sympy(node: E.Node, values: dict, sizes: dict) -> sympy.Matrix:
    """The exact value of ``node`` over explicit SymPy matrices (smooth functions only)."""
    out: dict[int, sympy.Matrix] = {}
    for n in E.postorder([node]):
        a = [out[id(x)] for x in n.args]
        shape = tuple(size(d, sizes) for d in n.shape)
        if isinstance(n, E.Var):
            v = values[n.name]
        elif isinstance(n, E.Const):
            v = sympy.Matrix([[n.value.subs({s: sizes[s.name] for s in n.value.free_symbols})]])
        elif isinstance(n, E.Eye):
            v = sympy.eye(shape[0])
        elif isinstance(n, E.MatMul):
            v = a[0] * a[1]
        elif isinstance(n, E.Transpose):
            v = a[0].T
        elif isinstance(n, (E.Add, E.Sub, E.Mul, E.Div)):
            op = {E.Add: lambda x, y: x + y, E.Sub: lambda x, y: x - y,
                  E.Mul: lambda x, y: x * y, E.Div: lambda x, y: x / y}[type(n)]
            v = sympy.Matrix(shape[0], shape[1], lambda i, j: op(a[0][i, j], a[1][i, j]))
        elif isinstance(n, E.Neg):
            v = -a[0]
        elif isinstance(n, E.Pow):
            v = a[0].applyfunc(lambda t: t ** n.exponent)
        elif isinstance(n, E.Apply):
            v = a[0].applyfunc(SYMPY_FUNCS[n.name])
        elif isinstance(n, E.Broadcast):
            src = a[0]
            v = sympy.Matrix(shape[0], shape[1],
                             lambda i, j: src[i if src.rows > 1 else 0, j if src.cols > 1 else 0])
        elif isinstance(n, Sum):
            if n.axis is None:
                v = sympy.Matrix([[sum(a[0])]])
            elif n.axis == 0:
                v = sympy.Matrix([sum(a[0][:, j]) for j in range(a[0].cols)])
            else:
                v = sympy.Matrix([sum(a[0][i, :]) for i in range(a[0].rows)])
        elif isinstance(n, Trace):
            v = sympy.Matrix([[a[0].trace()]])
        elif isinstance(n, Det):
            v = sympy.Matrix([[a[0].det()]])
        elif isinstance(n, Inv):
            v = a[0].inv()
        elif isinstance(n, Diag):
            v = sympy.diag(*a[0]) if n.to_matrix else sympy.Matrix([a[0][i, i]
                                                                     for i in range(a[0].rows)])
        elif isinstance(n, Norm):
            v = sympy.Matrix([[sympy.sqrt(sum(t ** 2 for t in a[0]))]])
        elif isinstance(n, Softmax):
            e = a[0].applyfunc(sympy.exp)
            if n.axis is None:
                v = e / sum(e)
            elif n.axis == 0:
                v = sympy.Matrix(e.rows, e.cols, lambda i, j: e[i, j] / sum(e[:, j]))
            else:
                v = sympy.Matrix(e.rows, e.cols, lambda i, j: e[i, j] / sum(e[i, :]))
        elif isinstance(n, LogSumExp):
            e = a[0].applyfunc(sympy.exp)
            if n.axis is None:
                v = sympy.Matrix([[sympy.log(sum(e))]])
            elif n.axis == 0:
                v = sympy.Matrix([sympy.log(sum(e[:, j])) for j in range(e.cols)])
            else:
                v = sympy.Matrix([sympy.log(sum(e[i, :])) for i in range(e.rows)])
        else:
            raise TypeError(f"exact evaluator: no rule for {type(n).__name__}")
        assert v.shape == shape, (type(n).__name__, v.shape, shape)
        out[id(n)] = v
    return out[id(node)]


def symbol_matrix(name: str, shape: tuple) -> sympy.Matrix:
    return sympy.Matrix(shape[0], shape[1],
                        lambda i, j: sympy.Symbol(f"{name}_{i}{j}", real=True))


def deep_tanh_network(n: int, depth: int, seed: int = 0):
    """sum(tanh(W_depth @ ... tanh(W1 @ x))) with its gradient with respect to W1 by NumPy's own
    backpropagation: (res, values, dW1) for random weights (scaled by 1/2) and x."""
    import matcalc as mc

    W = [mc.Matrix(f"W{k}", "n", "n") for k in range(1, depth + 1)]
    e = mc.Vector("x", "n")
    for w in W:
        e = mc.tanh(w @ e)
    res = mc.grad(mc.sum(e), W[0])
    rng = np.random.default_rng(seed)
    values = {f"W{k}": rng.standard_normal((n, n)) / 2 for k in range(1, depth + 1)}
    values["x"] = rng.standard_normal((n, 1))
    acts = [values["x"]]
    for k in range(1, depth + 1):
        acts.append(np.tanh(values[f"W{k}"] @ acts[-1]))
    delta = np.ones((n, 1))
    for k in range(depth, 0, -1):
        delta = delta * (1 - acts[k] ** 2)
        want = delta @ acts[k - 1].T
        delta = values[f"W{k}"].T @ delta
    return res, values, want
