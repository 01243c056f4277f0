"""Hypothesis strategies: random shape-correct matcalc expressions, each with its own ground truth.

Contract: ``cases()`` draws a ``Case``: an expression built through matcalc's public builders
(``@``, ``.T``, ``+ - * / **``, unary minus, scalar multiples by numbers and by dimensions,
``exp log sin cos tanh sigmoid relu abs sign sqrt softplus step``, ``sum`` over all entries or an
axis, ``mean``, ``trace``, ``ones``, ``eye``) over a pool of variables with the symbolic dimensions
n, m, k (distinct sizes from 2..5), together with

- an independent NumPy evaluation built step by step beside the expression: a closure over
  NumPy arrays, one per step, that never looks at a matcalc node (so neither the code generator
  nor tests/reference.py can vouch for itself);
- the same expression built with the operands of every ``+`` and elementwise ``*`` swapped
  (``Case.swapped``), for confluence tests;
- a seed for the input values.

Each step takes its operands from the pool of everything built so far (the most recent first),
so one subexpression is used several times: the expressions are DAGs with shared nodes, as real
losses are. Values stay finite and well conditioned: log, sqrt, division and negative or
fractional powers only see things that are positive for every input (a positive variable,
exp, sigmoid, softplus, x ** 2 + 1, and sums, products and powers of these), bounded away from 0;
a running bound on each value's magnitude refuses steps that could overflow (exp only of values
bounded by 3, nothing above ``CAP``). Arguments of relu / abs / sign / step are recorded when a
case is evaluated, so tests can keep away from the kinks.

How many examples a test runs: ``examples(n)`` is ``n`` in the CI profile, scaled by the loaded
profile's ``max_examples`` (``HYPOTHESIS_PROFILE=large`` runs 50 times as many).
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable

import numpy as np
import sympy
from hypothesis import settings
from hypothesis import strategies as st

import matcalc as mc
from matcalc import expr as E
from matcalc.ops import FUNCTIONS
from matcalc.collapse import ZERO
from matcalc.expr import Broadcast, Var, postorder
from matcalc.ops.contractions import Sum

from reference import FUNCS as REFERENCE_FUNCS
from reference import evaluate

DIMS = ("n", "m", "k")
SIZES = (2, 3, 4, 5)
CAP = 1e4                 # largest magnitude a value may reach
MIN_POSITIVE = 0.05       # what log, sqrt, / and negative powers need below them
EXP_ARGUMENT = 3.0        # exp only of values bounded by this
#: Every elementwise function of the registry, with kinks or without.
KINK_FUNCTIONS = tuple(name for name, op in FUNCTIONS.items() if op.kinks)
SMOOTH_FUNCTIONS = tuple(name for name, op in FUNCTIONS.items() if not op.kinks)
#: Functions defined for positive arguments only: drawn on positive operands.
POSITIVE_FUNCTIONS = tuple(name for name, op in FUNCTIONS.items() if op.domain != "real")
EXPONENTS = (2, 3, -1, Fraction(1, 2), -2, Fraction(3, 2), Fraction(-1, 2))
CI_EXAMPLES = 60          # tests/conftest.py: the "ci" profile's max_examples


def examples(ci_count: int) -> int:
    """``ci_count`` examples in the CI profile, proportionally more in larger profiles."""
    scale = settings().max_examples / CI_EXAMPLES
    return max(1, round(ci_count * scale))


# ---------------------------------------------------------------------------------------------
# Variables
# ---------------------------------------------------------------------------------------------

_LETTERS = {
    ("n", "n"): "A", ("n", "m"): "B", ("n", "k"): "C", ("m", "n"): "D", ("m", "m"): "E",
    ("m", "k"): "F", ("k", "n"): "H", ("k", "m"): "J", ("k", "k"): "K",
    ("n", "1"): "u", ("m", "1"): "v", ("k", "1"): "w", ("1", "1"): "s",
}


@dataclass(frozen=True)
class VarSpec:
    """One variable of the pool: its name, shape (dimension names, "1" for a unit axis), domain."""

    name: str
    rows: str
    cols: str
    positive: bool

    @property
    def kind(self) -> str:
        if self.rows == "1" and self.cols == "1":
            return "scalar"
        return "vector" if self.cols == "1" else "matrix"

    @property
    def node(self) -> mc.Node:
        domain = "positive" if self.positive else "real"
        if self.kind == "scalar":
            return mc.Scalar(self.name, domain=domain)
        if self.kind == "vector":
            return mc.Vector(self.name, self.rows, domain=domain)
        return mc.Matrix(self.name, self.rows, self.cols, domain=domain)

    @property
    def declared(self) -> tuple:
        """The shape as ``mc.parse`` / ``mc.derive`` take it."""
        return {"scalar": (), "vector": (self.rows,), "matrix": (self.rows, self.cols)}[self.kind]

    def draw(self, sizes: dict, rng: np.random.Generator) -> np.ndarray:
        """A value (always 2-D here): uniform on [0.5, 2] if positive, else on [-2, 2]."""
        shape = (size_of(self.rows, sizes), size_of(self.cols, sizes))
        if self.positive:
            return rng.uniform(0.5, 2.0, size=shape)
        return rng.uniform(-2.0, 2.0, size=shape)


def _registry() -> dict[str, VarSpec]:
    out = {}
    for (rows, cols), letter in _LETTERS.items():
        for name, positive in ((letter, False), (letter + "2", False), (letter + "p", True)):
            out[name] = VarSpec(name, rows, cols, positive)
    return out


VARIABLES: dict[str, VarSpec] = _registry()
SHAPES = {name: spec.declared for name, spec in VARIABLES.items()}
DOMAINS = {name: "positive" for name, spec in VARIABLES.items() if spec.positive}


def size_of(d: str, sizes: dict) -> int:
    return 1 if d == "1" else sizes[d]


def shapes_with_upstream(node: mc.Node, upstream: str = "G") -> dict:
    """``SHAPES`` plus the upstream gradient ``G`` of ``node``'s shape (for non-scalars)."""
    if node.is_scalar:
        return dict(SHAPES)
    rows, cols = (str(d) for d in node.shape)
    # as the Python API declares it: an n x 1 upstream is a vector
    shape = (rows,) if cols == "1" else (rows if rows != "1" else 1, cols)
    return {**SHAPES, upstream: shape}


# ---------------------------------------------------------------------------------------------
# Items: a node, its swapped twin, and the NumPy closure computing its value
# ---------------------------------------------------------------------------------------------

class Evaluation:
    """One evaluation of the closures: input values, overridden nodes, a cache, kink arguments."""

    def __init__(self, values: dict, sizes: dict, overrides: dict | None = None):
        self.values = values
        self.sizes = sizes
        self.overrides = overrides or {}
        self.cache: dict[int, np.ndarray] = {}
        self.kinks: list[tuple[int, np.ndarray]] = []

    def __call__(self, item: "Item") -> np.ndarray:
        if item.node in self.overrides:           # a subexpression treated as an input
            return self.overrides[item.node]
        if id(item) not in self.cache:
            with np.errstate(all="raise", under="ignore"):   # the bounds keep values finite
                value = np.asarray(item.compute(self), dtype=float)
            rows, cols = size_of(item.rows, self.sizes), size_of(item.cols, self.sizes)
            assert value.shape == (rows, cols), (item.label, value.shape, (rows, cols))
            self.cache[id(item)] = value
        return self.cache[id(item)]


@dataclass(eq=False)
class Item:
    """One built subexpression: matcalc node, swapped twin, NumPy closure and bookkeeping."""

    node: mc.Node
    swapped: mc.Node
    rows: str
    cols: str
    compute: Callable[[Evaluation], np.ndarray]
    hi: float                       # bound on |value| for inputs in the drawn ranges
    lo: float | None = None         # a positive lower bound, when the value is always positive
    variables: frozenset = frozenset()
    const_dims: frozenset = frozenset()     # dimensions used as numbers or by ones / eye
    label: str = "?"
    inside: frozenset = frozenset()         # ids of the items this one is built from

    def __repr__(self) -> str:
        return f"<Item {mc.to_text(self.node)!r} {self.rows}×{self.cols}>"

    def _repr_pretty_(self, printer, cycle) -> None:      # hypothesis prints with this
        printer.text(repr(self))

    @property
    def shape(self) -> tuple[str, str]:
        return (self.rows, self.cols)

    @property
    def positive(self) -> bool:
        return self.lo is not None and self.lo >= MIN_POSITIVE


def _combine(*items: Item, const_dims=()) -> dict:
    return {"variables": frozenset().union(*(i.variables for i in items)),
            "const_dims": frozenset(const_dims).union(*(i.const_dims for i in items)),
            "inside": frozenset(id(i) for i in items).union(*(i.inside for i in items))}


def _broadcasts(small: tuple, big: tuple) -> bool:
    """matcalc's (and NumPy's, on 2-D arrays) rule: a scalar, a column or a row repeats."""
    if small == ("1", "1"):
        return True
    return (small[0] == big[0] and small[1] == "1") or (small[0] == "1" and small[1] == big[1])


def elementwise_shape(a: Item, b: Item) -> tuple | None:
    """The shape of ``a op b`` for an elementwise op, or None when they do not fit."""
    if a.shape == b.shape:
        return a.shape
    if _broadcasts(a.shape, b.shape):
        return b.shape
    if _broadcasts(b.shape, a.shape):
        return a.shape
    return None


def _numpy_sigmoid(x):
    return 0.5 + 0.5 * np.tanh(0.5 * x)


NUMPY_FUNCTIONS = {
    "exp": np.exp, "log": np.log, "sin": np.sin, "cos": np.cos, "tanh": np.tanh,
    "sigmoid": _numpy_sigmoid, "sqrt": np.sqrt, "softplus": lambda x: np.logaddexp(0.0, x),
    "relu": lambda x: np.maximum(x, 0.0), "abs": np.abs, "sign": np.sign,
    "step": lambda x: (x > 0).astype(float), "log1p": np.log1p, "expm1": np.expm1,
    "silu": lambda x: x * _numpy_sigmoid(x),
    # the rest as the reference evaluator computes them
    **{name: REFERENCE_FUNCS[name] for name in ("tan", "arcsin", "arccos", "arctan", "sinh",
                                                 "cosh", "erf", "square", "gelu", "gelu_tanh")},
}
MC_FUNCTIONS = {name: getattr(mc, name) for name in NUMPY_FUNCTIONS}


def _exp_bounds(hi, lo):
    return (math.exp(hi), math.exp(-hi)) if hi <= EXP_ARGUMENT else None


def _log_bounds(hi, lo):
    return max(abs(math.log(lo)), abs(math.log(hi)), 1e-3), None


def _bounded_by_one(hi, lo):
    return 1.0, None


#: For each function, (hi, lo) of its value from those of its operand, or None when the step
#: would be ill conditioned (hi bounds the magnitude; lo, where given, bounds it away from 0).
FUNCTION_BOUNDS = {
    "exp": _exp_bounds,
    "log": _log_bounds,
    "sqrt": lambda hi, lo: (math.sqrt(hi), math.sqrt(lo)),
    "sin": _bounded_by_one, "cos": _bounded_by_one, "tanh": _bounded_by_one,
    "sign": _bounded_by_one, "step": _bounded_by_one,
    "sigmoid": lambda hi, lo: (1.0, 1.0 / (1.0 + math.exp(min(hi, 700.0)))),
    "softplus": lambda hi, lo: (hi + 1.0, math.log1p(math.exp(-min(hi, 700.0)))),
    "relu": lambda hi, lo: (hi, None),
    "abs": lambda hi, lo: (hi, None),
    "log1p": lambda hi, lo: (math.log1p(hi), math.log1p(lo)),      # of a positive operand
    "expm1": lambda hi, lo: (math.expm1(hi), None) if hi <= EXP_ARGUMENT else None,
    # inside their domains only, away from the poles and the ends
    "tan": lambda hi, lo: (math.tan(hi), None) if hi <= 1.2 else None,
    "arcsin": lambda hi, lo: (math.asin(hi), None) if hi <= 0.9 else None,
    "arccos": lambda hi, lo: (math.pi, None) if hi <= 0.9 else None,
    "arctan": lambda hi, lo: (min(hi, math.pi / 2), None),
    "sinh": lambda hi, lo: (math.sinh(hi), None) if hi <= EXP_ARGUMENT else None,
    "cosh": lambda hi, lo: (math.cosh(hi), 1.0) if hi <= EXP_ARGUMENT else None,
    "erf": lambda hi, lo: (1.0, None),
    "square": lambda hi, lo: (hi * hi, None if lo is None else lo * lo),
    "gelu": lambda hi, lo: (hi, None),
    "gelu_tanh": lambda hi, lo: (hi, None),
    "silu": lambda hi, lo: (hi, None),
}


def _function_bounds(name: str, a: Item) -> tuple[float, float | None] | None:
    """(hi, lo) of name(a), or None when the step would be ill conditioned. gelu_tanh is not
    nested: its constant 0.044715 raised through the chain rule makes integers past the 15
    digits text reads back (the round trip refuses them; it never reads a different number)."""
    if name == "gelu_tanh" and any(isinstance(n, E.Apply) and n.name == "gelu_tanh"
                                   for n in E.postorder([a.node])):
        return None
    return FUNCTION_BOUNDS[name](a.hi, a.lo)


# ---------------------------------------------------------------------------------------------
# The builder: one method per operation
# ---------------------------------------------------------------------------------------------

#: The operations of the registry these strategies draw, each with the method that draws it.
DRAWN = {
    "@": "op_matmul", "T": "op_transpose", "+": "op_add", "-": "op_sub", "neg": "op_neg",
    "*": "op_mul", "/": "op_div", "**": "op_power", "sum": "op_sum", "mean": "op_mean",
    "trace": "op_trace", "ones": "ones", "eye": "constant",
    "broadcast": "binary (a vector or scalar against a matrix)",
    **{name: "op_function" for name in FUNCTIONS},
}


class Builder:
    """Grows a pool of items, one random operation at a time."""

    OPERATIONS = ("matmul", "transpose", "add", "sub", "neg", "scale", "mul", "div", "power",
                  "function", "function", "sum", "mean", "trace", "leaf")

    def __init__(self, draw):
        self.draw = draw
        self.pool: list[Item] = []

    # -- picking operands ----------------------------------------------------------------------
    def pick(self, accept: Callable[[Item], bool] = lambda item: True) -> Item | None:
        """An item of the pool that ``accept``s, the most recent ones first (so shared)."""
        candidates = [item for item in reversed(self.pool) if accept(item)]
        if not candidates:
            return None
        return candidates[self.draw(st.integers(0, len(candidates) - 1))]

    def add(self, item: Item | None) -> Item | None:
        if item is not None and item.hi <= CAP:
            self.pool.append(item)
            return item
        return None

    # -- leaves ----------------------------------------------------------------------------------
    def variable(self, rows: str, cols: str, positive: bool = False) -> Item:
        """A variable of that shape (a row is a transposed vector); reuses pool items."""
        if rows == "1" and cols != "1":
            return self.add(self.transpose_of(self.variable(cols, "1", positive)))
        letter = _LETTERS[(rows, cols)]
        name = letter + "p" if positive else self.draw(st.sampled_from([letter, letter + "2"]))
        for item in self.pool:
            if item.label == name:
                return item
        spec = VARIABLES[name]

        def compute(ev, name=name):
            return ev.values[name]

        lo = 0.5 if positive else None
        return self.add(Item(spec.node, spec.node, rows, cols, compute, 2.0, lo,
                             frozenset([name]), frozenset(), name))

    def constant(self, rows: str, cols: str) -> Item:
        """ones(rows, cols), or eye(n) for a square shape."""
        if rows == cols and rows != "1" and self.draw(st.booleans()):
            node = mc.eye(rows)

            def compute(ev, rows=rows):
                return np.eye(ev.sizes[rows])

            return self.add(Item(node, node, rows, cols, compute, 1.0, None,
                                 const_dims=frozenset([rows]), label="eye"))
        return self.ones(rows, cols)

    def ones(self, rows: str, cols: str) -> Item:
        node = mc.ones(rows, cols)

        def compute(ev, rows=rows, cols=cols):
            return np.ones((size_of(rows, ev.sizes), size_of(cols, ev.sizes)))

        dims = frozenset(d for d in (rows, cols) if d != "1")
        return self.add(Item(node, node, rows, cols, compute, 1.0, 1.0, const_dims=dims,
                             label="ones"))

    def leaf(self) -> Item:
        kind = self.draw(st.sampled_from(["matrix", "matrix", "vector", "scalar", "constant"]))
        rows = self.draw(st.sampled_from(DIMS))
        cols = self.draw(st.sampled_from(DIMS))
        positive = self.draw(st.integers(0, 3)) == 0
        if kind == "vector":
            return self.variable(rows, "1", positive)
        if kind == "scalar":
            return self.variable("1", "1", positive)
        if kind == "constant":
            return self.constant(rows, cols)
        return self.variable(rows, cols, positive)

    # -- shape changing --------------------------------------------------------------------------
    def transpose_of(self, a: Item) -> Item:
        def compute(ev, a=a):
            return ev(a).T
        return Item(a.node.T, a.swapped.T, a.cols, a.rows, compute, a.hi, a.lo,
                    label="T", **_combine(a))

    def op_transpose(self) -> Item | None:
        return self.add(self.transpose_of(self.pick()))

    def op_matmul(self) -> Item | None:
        a = self.pick()
        b = self.pick(lambda item: item.rows == a.cols)
        if b is None or self.draw(st.integers(0, 3)) == 0:
            b = self.variable(a.cols, self.draw(st.sampled_from(DIMS + ("1",))))

        def compute(ev, a=a, b=b):
            return ev(a) @ ev(b)
        inner = 1 if a.cols == "1" else max(SIZES)
        return self.add(Item(a.node @ b.node, a.swapped @ b.swapped, a.rows, b.cols, compute,
                             a.hi * b.hi * inner, label="@", **_combine(a, b)))

    def trace_operand(self) -> Item:
        a = self.pick(lambda item: item.rows == item.cols)
        if a is not None:
            return a
        a = self.pick()
        # A @ A.T is square: a product of a shared node with its own transpose
        t = self.add(self.transpose_of(a))

        def compute(ev, a=a, t=t):
            return ev(a) @ ev(t)
        inner = 1 if a.cols == "1" else max(SIZES)
        product = self.add(Item(a.node @ t.node, a.swapped @ t.swapped, a.rows, a.rows, compute,
                                a.hi * a.hi * inner, label="@", **_combine(a)))
        return product if product is not None else self.variable(a.rows, a.rows)

    def op_trace(self) -> Item | None:
        a = self.trace_operand()

        def compute(ev, a=a):
            return np.trace(ev(a)).reshape(1, 1)
        return self.add(Item(mc.trace(a.node), mc.trace(a.swapped), "1", "1", compute,
                             a.hi * max(SIZES), label="trace", **_combine(a)))

    def op_sum(self) -> Item | None:
        a = self.pick()
        axis = self.draw(st.sampled_from([None, 0, 1]))
        rows = {None: "1", 0: a.cols, 1: a.rows}[axis]
        count = {None: max(SIZES) ** 2, 0: max(SIZES), 1: max(SIZES)}[axis]

        def compute(ev, a=a, axis=axis):
            value = ev(a)
            return np.sum(value).reshape(1, 1) if axis is None else \
                np.sum(value, axis=axis).reshape(-1, 1)
        lo = None if a.lo is None else a.lo
        return self.add(Item(mc.sum(a.node, axis=axis), mc.sum(a.swapped, axis=axis), rows, "1",
                             compute, a.hi * count, lo, label="sum", **_combine(a)))

    def op_mean(self) -> Item | None:
        a = self.pick()
        axis = self.draw(st.sampled_from([None, 0, 1]))
        rows = {None: "1", 0: a.cols, 1: a.rows}[axis]

        def compute(ev, a=a, axis=axis):
            value = ev(a)
            return np.mean(value).reshape(1, 1) if axis is None else \
                np.mean(value, axis=axis).reshape(-1, 1)
        return self.add(Item(mc.mean(a.node, axis=axis), mc.mean(a.swapped, axis=axis), rows,
                             "1", compute, a.hi, a.lo, label="mean", **_combine(a)))

    # -- elementwise -----------------------------------------------------------------------------
    def partner(self, a: Item, positive: bool = False) -> Item:
        """An item that fits ``a`` elementwise (equal shape, or a scalar / column / row)."""
        def fits(item):
            return elementwise_shape(a, item) is not None and (item.positive or not positive)
        b = self.pick(fits)
        if b is None or self.draw(st.integers(0, 3)) == 0:
            rows, cols = self.draw(st.sampled_from([a.shape, (a.rows, "1"), ("1", a.cols),
                                                    ("1", "1")]))
            b = self.variable(rows, cols, positive)
        return b

    def binary(self, symbol: str, a: Item, b: Item, hi: float, lo: float | None) -> Item | None:
        """a (symbol) b, with the swapped twin commuted for + and *."""
        shape = elementwise_shape(a, b)
        ops = {"+": (np.add, lambda x, y: x + y), "-": (np.subtract, lambda x, y: x - y),
               "*": (np.multiply, lambda x, y: x * y), "/": (np.divide, lambda x, y: x / y)}
        numpy_op, build = ops[symbol]

        def compute(ev, a=a, b=b, numpy_op=numpy_op):
            return numpy_op(ev(a), ev(b))
        swapped = build(b.swapped, a.swapped) if symbol in "+*" else build(a.swapped, b.swapped)
        return self.add(Item(build(a.node, b.node), swapped, shape[0], shape[1], compute, hi, lo,
                             label=symbol, **_combine(a, b)))

    def op_add(self) -> Item | None:
        a = self.pick()
        b = self.partner(a)
        if self.draw(st.booleans()):
            a, b = b, a
        lo = a.lo + b.lo if a.lo is not None and b.lo is not None else None
        return self.binary("+", a, b, a.hi + b.hi, lo)

    def op_sub(self) -> Item | None:
        a = self.pick()
        b = self.partner(a)
        if self.draw(st.booleans()):
            a, b = b, a
        return self.binary("-", a, b, a.hi + b.hi, None)

    def op_mul(self) -> Item | None:
        a = self.pick()
        b = self.partner(a)
        if self.draw(st.booleans()):
            a, b = b, a
        lo = a.lo * b.lo if a.lo is not None and b.lo is not None else None
        return self.binary("*", a, b, a.hi * b.hi, lo)

    def op_div(self) -> Item | None:
        a = self.pick()
        b = self.partner(a, positive=True)
        b = b if b.positive else self.positive_version(b)
        if self.draw(st.booleans()) and a.positive and elementwise_shape(b, a) is not None:
            a, b = b, a                                  # both positive: either way round
        lo = a.lo / b.hi if a.lo is not None else None
        return self.binary("/", a, b, a.hi / b.lo, lo)

    def op_neg(self) -> Item | None:
        a = self.pick()

        def compute(ev, a=a):
            return -ev(a)
        return self.add(Item(-a.node, -a.swapped, a.rows, a.cols, compute, a.hi, None,
                             label="neg", **_combine(a)))

    def op_scale(self) -> Item | None:
        """c * a, a * c or a / c for a number or a dimension constant c."""
        a = self.pick()
        kind = self.draw(st.sampled_from(["number", "dim", "inverse dim"]))
        if kind == "number":
            number = self.draw(st.sampled_from([2, -3, Fraction(1, 2), -1, Fraction(-2, 3), 0.25]))
            constant, dims = number, ()

            def value(sizes, number=number):
                return float(number)
        else:
            d = self.draw(st.sampled_from(DIMS))
            constant = mc.dim(d) if kind == "dim" else 1 / mc.dim(d)
            dims = (d,)

            def value(sizes, d=d, inverse=(kind != "dim")):
                return 1.0 / sizes[d] if inverse else float(sizes[d])
        form = self.draw(st.sampled_from(["c * a", "a * c", "a / c"]))
        if form == "c * a":
            node, swapped = constant * a.node, constant * a.swapped
        elif form == "a * c":
            node, swapped = a.node * constant, a.swapped * constant
        else:
            node, swapped = a.node / constant, a.swapped / constant

        def compute(ev, a=a, value=value, divide=(form == "a / c")):
            c = value(ev.sizes)
            return ev(a) / c if divide else c * ev(a)
        factor = max(SIZES)          # |c| and |1/c| are at most 5 for every constant above
        return self.add(Item(node, swapped, a.rows, a.cols, compute, a.hi * factor, None,
                             label="scale", **_combine(a, const_dims=dims)))

    def positive_version(self, a: Item) -> Item:
        """Something built from ``a`` that is positive for every input, bounded away from 0."""
        how = self.draw(st.sampled_from(["square plus one", "sigmoid", "exp", "softplus",
                                         "variable"]))
        made = None
        if how == "square plus one" and a.hi ** 2 + 1 <= CAP:
            square = self.add(self.power_of(a, 2, a.hi ** 2, None))
            if square is not None and a.shape != ("1", "1") and self.draw(st.booleans()):
                made = self.binary("+", square, self.ones(a.rows, a.cols), square.hi + 1, 1.0)
            elif square is not None:
                def compute(ev, square=square):
                    return ev(square) + 1.0
                made = self.add(Item(square.node + 1, square.swapped + 1, a.rows, a.cols,
                                     compute, square.hi + 1, 1.0, label="+1",
                                     **_combine(square)))
        elif how in ("sigmoid", "exp", "softplus"):
            bounds = _function_bounds(how, a)
            if bounds is not None and bounds[1] is not None and bounds[1] >= MIN_POSITIVE:
                made = self.apply(how, a, bounds)
        if made is None or not made.positive:
            made = self.variable(a.rows, a.cols, positive=True)
        return made

    def power_of(self, a: Item, p, hi: float, lo: float | None) -> Item:
        def compute(ev, a=a, p=float(p)):
            return ev(a) ** p
        return Item(a.node ** p, a.swapped ** p, a.rows, a.cols, compute, hi, lo,
                    label="**", **_combine(a))

    def op_power(self) -> Item | None:
        a = self.pick()
        p = self.draw(st.sampled_from(EXPONENTS))
        if p not in (2, 3) and not a.positive:
            a = self.positive_version(a)
        if a.positive:
            lo = a.lo ** p if p > 0 else a.hi ** p
            hi = a.hi ** p if p > 0 else a.lo ** p
        else:
            lo, hi = None, a.hi ** p
        if hi > CAP:
            return None
        return self.add(self.power_of(a, p, hi, lo))

    def apply(self, name: str, a: Item, bounds) -> Item | None:
        hi, lo = bounds
        numpy_function = NUMPY_FUNCTIONS[name]
        kink = name in KINK_FUNCTIONS and bool(a.variables)    # a constant cannot move

        def compute(ev, a=a, numpy_function=numpy_function, kink=kink):
            x = ev(a)
            if kink:
                ev.kinks.append((id(a), x))
            return numpy_function(x)
        builder = MC_FUNCTIONS[name]
        return self.add(Item(builder(a.node), builder(a.swapped), a.rows, a.cols, compute, hi,
                             lo, label=name, **_combine(a)))

    def op_function(self) -> Item | None:
        name = self.draw(st.sampled_from(SMOOTH_FUNCTIONS + KINK_FUNCTIONS))
        a = self.pick()
        if name in POSITIVE_FUNCTIONS and not a.positive:
            a = self.positive_version(a)
        bounds = _function_bounds(name, a)
        if bounds is None:
            return None
        return self.apply(name, a, bounds)

    def op_leaf(self) -> Item | None:
        return self.leaf()

    def step(self) -> None:
        operation = self.draw(st.sampled_from(self.OPERATIONS))
        getattr(self, "op_" + operation)()

    def absorb(self, top: Item, most: int = 3) -> Item:
        """``top`` combined with a scalar reduction of pool items it does not use yet (so one
        expression holds most of what was built): top + sum(R), top * trace(R), ..."""
        dangling = [item for item in reversed(self.pool)
                    if item is not top and item.variables and id(item) not in top.inside
                    and not any(id(item) in other.inside for other in self.pool)]
        for item in dangling[:most]:
            if item.shape != ("1", "1"):
                square = item.rows == item.cols and self.draw(st.booleans())

                def compute(ev, a=item, square=square):
                    value = ev(a)
                    return (np.trace(value) if square else np.sum(value)).reshape(1, 1)
                reduce = mc.trace if square else mc.sum
                item = self.add(Item(reduce(item.node), reduce(item.swapped), "1", "1", compute,
                                     item.hi * max(SIZES) ** 2, label="reduce",
                                     **_combine(item)))
                if item is None:
                    continue
            symbol = self.draw(st.sampled_from(["+", "-", "*"]))
            hi = top.hi * item.hi if symbol == "*" else top.hi + item.hi
            pair = (top, item) if self.draw(st.booleans()) else (item, top)
            top = self.binary(symbol, *pair, hi, None) or top
        return top


# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------

@dataclass(eq=False)
class Case:
    """A drawn expression, its ground truth, its swapped twin and the inputs to try it on."""

    item: Item
    sizes: dict
    seed: int
    pool: list = field(repr=False)

    @property
    def node(self) -> mc.Node:
        return self.item.node

    @property
    def swapped(self) -> mc.Node:
        return self.item.swapped

    @property
    def variables(self) -> list[VarSpec]:
        """The expression's variables, by name."""
        return [VARIABLES[name] for name in sorted(self.item.variables)]

    def values(self) -> dict:
        """Random inputs (2-D arrays, by variable name) inside every variable's range."""
        rng = np.random.default_rng(self.seed)
        return {v.name: v.draw(self.sizes, rng) for v in self.variables}

    def evaluate(self, values: dict, overrides: dict | None = None) -> tuple[np.ndarray, list]:
        """The ground-truth value (2-D) and the arguments of every kink function on the way."""
        ev = Evaluation(values, self.sizes, overrides)
        return ev(self.item), ev.kinks

    def subexpressions(self) -> list[Item]:
        """Pool items inside the expression that depend on a variable and are not leaves."""
        inside = {id(n) for n in postorder([self.node])}
        used = [other for other in self.pool if id(other) in self.item.inside] + [self.item]
        holds: dict[int, set] = {}
        seen, out = set(), []
        for item in self.pool:
            if item is self.item or not item.variables or id(item.node) in seen:
                continue
            if item.label in VARIABLES or id(item.node) not in inside:
                continue
            # an item built from this one whose node no longer holds it: a construction folded
            # it away ((u.T).T is u), so its closure computes through the item while matcalc's
            # node does not, and the two differentiate different things
            if any(id(item) in other.inside and id(item.node) not in holds.setdefault(
                    id(other), {id(n) for n in postorder([other.node])}) for other in used):
                continue
            # builders add Broadcast nodes (s + X) and the Sum inside mean(X) implicitly, where
            # no pool item stands: replacing such a node would reach places no closure knows
            if isinstance(item.node, (Broadcast, Sum)):
                continue
            seen.add(id(item.node))
            out.append(item)
        return out

    def __repr__(self) -> str:      # what hypothesis prints for a falsifying example
        sizes = ", ".join(f"{k}={v}" for k, v in self.sizes.items())
        return f"Case({mc.to_text(self.node)!r}; {sizes}; seed={self.seed})"

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(repr(self))


@st.composite
def cases(draw, max_steps: int = 12, scalar: bool | None = None) -> Case:
    """A random expression (a DAG with shared nodes) with its ground truth and input seed.

    ``scalar=True`` sums a non-scalar result; ``None`` draws whether to.
    """
    order = draw(st.permutations(SIZES))
    sizes = dict(zip(DIMS, order))
    builder = Builder(draw)
    builder.leaf()
    steps = draw(st.integers(3, max_steps))
    for _ in range(steps):
        builder.step()
    top = builder.absorb(builder.pool[-1])
    if not top.variables:                   # a constant: multiply it by a variable
        other = builder.variable(top.rows, top.cols)
        top = builder.binary("*", top, other, top.hi * other.hi, None) or other
    if scalar is None:
        scalar = draw(st.booleans())
    if scalar and (top.rows, top.cols) != ("1", "1"):
        def compute(ev, a=top):
            return np.sum(ev(a)).reshape(1, 1)
        top = Item(mc.sum(top.node), mc.sum(top.swapped), "1", "1", compute,
                   top.hi * max(SIZES) ** 2, label="sum", **_combine(top))
        builder.pool.append(top)         # past CAP too: the sum of bounded entries is fine
    seed = draw(st.integers(0, 2 ** 32 - 1))
    return Case(top, sizes, seed, builder.pool)


# ---------------------------------------------------------------------------------------------
# Evaluating nodes, calling generated code
# ---------------------------------------------------------------------------------------------

def reference_value(node: mc.Node, values: dict, sizes: dict) -> np.ndarray:
    """tests/reference.py's ``evaluate``: an evaluator of nodes that shares nothing with the
    code generator."""
    return evaluate(node, values, sizes)


def argument(value: np.ndarray, kind: str):
    """A 2-D value in the form generated functions take: 2-D matrix, 1-D vector, float scalar."""
    if kind == "scalar":
        return float(value.reshape(()))
    if kind == "vector":
        return value.reshape(-1)
    return value


def kind_of(node: mc.Node) -> str:
    if node.is_scalar:
        return "scalar"
    return "vector" if node.cols == 1 else "matrix"


def call_generated(function: Callable, values: dict, sizes: dict, extra: dict | None = None):
    """Call a generated function with the variables it takes (in their forms) and, for the
    dimensions it takes as arguments (those no input has), their sizes."""
    kwargs = {}
    for name in inspect.signature(function).parameters:
        if name in (extra or {}):
            kwargs[name] = extra[name]
        elif name in values:
            kwargs[name] = argument(values[name], VARIABLES[name].kind)
        elif name in sizes:
            kwargs[name] = sizes[name]
    return function(**kwargs)


# ---------------------------------------------------------------------------------------------
# Contractions for collapse
# ---------------------------------------------------------------------------------------------

INDEX_NAMES = ("i", "j", "k", "l")
INDEX_DIM = {"i": "n", "j": "p", "k": "m", "l": "n"}     # i and l share a size: traces, squares
INDICES = {name: sympy.Symbol(name, integer=True) for name in INDEX_NAMES}
CONTRACTION_DIMS = {name: sympy.Symbol(name, integer=True, positive=True) for name in "npm"}
INDEX_SIZES = {INDICES[i]: CONTRACTION_DIMS[d] for i, d in INDEX_DIM.items()}


@dataclass(eq=False)
class Contraction:
    """coeff * sum over ``summed`` of the product of ``factors``, at the index pair ``out``."""

    factors: list
    out: tuple
    summed: list
    coeff: sympy.Expr
    sizes: dict
    seed: int

    def values(self) -> dict:
        rng = np.random.default_rng(self.seed)
        out = {}
        for var, _ in self.factors:
            if var.name not in out:
                shape = tuple(self.size(d) for d in var.shape)
                out[var.name] = rng.uniform(-2.0, 2.0, size=shape)
        return out

    def size(self, d) -> int:
        return int(sympy.sympify(d).subs({s: self.sizes[s.name] for s in d.free_symbols}))

    def einsum(self, values: dict) -> np.ndarray:
        """The contraction by numpy.einsum (a size-1 axis gets a letter of its own), broadcast
        over output indices no factor has, times the size of each index summed over nothing."""
        letters: dict = {}
        spare = iter("abcdefghopqrstuvwxyz")
        subscripts = []
        for _, idx in self.factors:
            sub = ""
            for x in idx:
                if x == ZERO:
                    sub += next(spare)
                else:
                    if x not in letters:
                        letters[x] = next(spare)
                    sub += letters[x]
            subscripts.append(sub)
        kept = [x for x in self.out if x != ZERO and x in letters]
        spec = ",".join(subscripts) + "->" + "".join(letters[x] for x in kept)
        result = np.einsum(spec, *(values[var.name] for var, _ in self.factors))
        shape = tuple(1 if x == ZERO else self.size(INDEX_SIZES[x]) for x in self.out)
        partial = tuple(s if x in letters else 1 for x, s in zip(self.out, shape))
        result = np.broadcast_to(np.reshape(result, partial), shape)
        for s in self.summed:
            if s not in letters:
                result = result * self.size(INDEX_SIZES[s])
        return float(self.coeff.subs({d: self.sizes[d.name] for d in self.coeff.free_symbols})) \
            * result

    def __repr__(self) -> str:
        factors = ", ".join(f"({v.name}, {idx})" for v, idx in self.factors)
        return (f"Contraction([{factors}], out={self.out}, summed={self.summed}, "
                f"coeff={self.coeff}, sizes={self.sizes})")

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(repr(self))


def _factor_variable(letter: str, idx: tuple) -> Var:
    dims = [sympy.Integer(1) if x == ZERO else INDEX_SIZES[x] for x in idx]
    name = letter + "_" + "".join("1" if x == ZERO else str(d) for x, d in zip(idx, dims))
    return Var.make(name, tuple(dims))


@st.composite
def contractions(draw) -> Contraction:
    """1-3 factors addressed by index pairs over i, j, k, l and 0 (a unit axis: vectors,
    rows, scalars), an output pair, every other index they use summed, and perhaps a summed
    index no factor has."""
    positions = [ZERO] + [INDICES[i] for i in INDEX_NAMES]
    factors = []
    for _ in range(draw(st.integers(1, 3))):
        idx = (draw(st.sampled_from(positions)), draw(st.sampled_from(positions)))
        factors.append((_factor_variable(draw(st.sampled_from("AB")), idx), idx))
    out = (draw(st.sampled_from(positions)), draw(st.sampled_from(positions)))
    if out[0] == out[1]:
        out = (out[0], ZERO)
    used = {x for _, idx in factors for x in idx if x != ZERO}
    idle = [INDICES[i] for i in INDEX_NAMES if INDICES[i] not in used and INDICES[i] not in out]
    extra = draw(st.lists(st.sampled_from(idle), unique=True, max_size=1)) if idle else []
    summed = [INDICES[i] for i in INDEX_NAMES
              if (INDICES[i] in used and INDICES[i] not in out) or INDICES[i] in extra]
    coeff = draw(st.sampled_from([sympy.Integer(1), sympy.Integer(-1), sympy.Integer(2),
                                  sympy.Rational(-2, 3), CONTRACTION_DIMS["n"],
                                  1 / CONTRACTION_DIMS["p"]]))
    sizes = dict(zip("npm", draw(st.permutations(SIZES))))
    return Contraction(factors, out, summed, coeff, sizes, draw(st.integers(0, 2 ** 32 - 1)))
