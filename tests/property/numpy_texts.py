"""Random texts in NumPy's idiom, each carrying NumPy's own value of the same text.

Contract: ``numpy_texts()`` draws a ``NumpyText``: declared shapes (matrices square and
non-square, vectors declared 1-D as ``("n",)``, scalars ``()``, now and then a row ``(1, "n")``
or a column ``("n", 1)``), a text over them such as ``sum(A * (A - mean(A, axis=0)))``, the
variable to differentiate by, and a seed for the inputs. Beside the text, from the same tree, it
builds a closure over NumPy functions that computes what NumPy computes for that text when each
vector is passed as a 1-D array (``NumpyText.numpy_value``). Nothing is evaluated from a string
and matcalc is never consulted: the closure is the ground truth.

The operations come from one table, ``OPERATIONS``: a row per operation with its spelling, its
arity, its keywords and their values, how NumPy computes it, what its operands must be (a domain)
and a bound on its values. A new operation is a new row (and, if it has a new shape rule, a
production in ``Builder``). Rows marked ``extended`` are the operations issue 13 adds (max, min,
var, std, norm along an axis, maximum, minimum, where, clip, tan ... elu); a case draws them only
when its palette includes them (one case in three), so that operations not implemented yet do
not crowd out the rest. The functions NumPy does not have (sigmoid, relu, softplus, step, gelu, silu,
leaky_relu, elu) are computed as their usual definitions; softmax and logsumexp as
``scipy.special`` defines them (over all entries without ``axis``).

What "NumPy's meaning" is here. NumPy's own semantics with vectors as 1-D arrays, with the
readings the project keeps from linear algebra because NumPy's 1-D arrays cannot say them (see
DESIGN.md, "Conventions"), computed as follows:

- ``u.T`` of a declared vector ``u`` is the 1×n row ``u.reshape(1, -1)``;
- a declared vector times a row (``u @ v.T``, ``u @ sum(A, axis=0, keepdims=True)``) is the
  outer product; ``u.T @ v`` is the scalar ``u @ v``;
- a declared vector meeting an r×c matrix elementwise where its length is r and not c is read as
  a column (``u.reshape(-1, 1)``: the seed notes' ``W @ X + b``). Where its length is c, NumPy
  reads it as a row; where both (a square matrix), the reference is NumPy's row and matcalc may
  refuse the text as ambiguous, but it must not give the column reading.

Where the project's rule does not say which reading holds, the builder does not go: it never
transposes a 1-D value other than a declared vector (nor transposes such a row back), never puts
a row made by ``u.T`` anywhere but against a matrix, in an outer product or in ``u.T @ v``, never
lets a 1-D value that is not a declared vector or a bare reduction meet a matrix whose row count
(and not column count) is its length, never lets a declared vector meet an n×1 column of its own
length, and never builds a value with a single entry that is not a scalar (a (1,) or a 1×1).

Every other text is NumPy's: a reduction along an axis without ``keepdims`` is 1-D and broadcasts
as a row; ``v @ W`` is the vector-matrix product; ``sum(u, axis=1)`` of a 1-D ``u`` is an error.
Dimensions have distinct sizes of at least 2, so what NumPy accepts is decided by the symbolic
shapes alone, and the builder knows it: some productions are meant to be refused by NumPy
(``A - mean(A, axis=1)`` with A non-square, mismatched ``@``, an axis out of range), and the
case records why (``NumpyText.numpy_refuses``); the closure is then run to confirm that NumPy
does refuse (a ``ValueError``), and a builder whose expectation is wrong raises
``BuilderError``, never a test failure blamed on matcalc.

Values stay finite and well scaled: inputs are uniform on [-2, 2] (on [0.5, 2] for positive
variables), every term carries an interval bound, terms past ``CAP`` are not built, log, sqrt,
division and fractional or negative powers see only terms bounded below by ``MIN_POSITIVE``
(a positive variable, exp, ``x ** 2 + 1``, ``abs(x) + 0.5``), exp-like functions only bounded
terms. Arguments of discontinuous operations (sign, step, comparisons) are recorded, so a test
can skip inputs on a jump, and the largest magnitude met on the way sets the tolerance.

Each case also lists what it exercises (``NumpyText.features``: "declared vector meets square
matrix, as a row (NumPy)", "reduction of 2-D along axis=-1, keepdims", "vector @ matrix (NumPy's
1-D product)", ...), for statistics and for tests that single out a family of texts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st

DIMS = ("n", "m", "k")
SIZES = (2, 3, 4, 5)
LARGEST = max(SIZES)
CAP = 1e4                  # no term may reach this magnitude
MIN_POSITIVE = 0.05        # what log, sqrt, / and negative powers need below them
CI_EXAMPLES = 60           # tests/conftest.py: the "ci" profile's max_examples

ATOM, POWER, UNARY, PRODUCT, SUM, COMPARE = 100, 90, 80, 70, 60, 50

Shape = tuple   # of dimension names and 1s: () a scalar, ("n",) 1-D, ("n", "m"), (1, "m")
Interval = tuple  # (lo, hi): every value of a term lies in it


class BuilderError(RuntimeError):
    """The builder's own expectation failed (a shape, or whether NumPy refuses): a bug here,
    not in matcalc (and not an AssertionError, which an expected failure would swallow)."""


def examples(ci_count: int) -> int:
    """``ci_count`` examples in the CI profile, proportionally more in larger profiles."""
    return max(1, round(ci_count * settings().max_examples / CI_EXAMPLES))


# ---------------------------------------------------------------------------------------------
# Shapes as NumPy sees them
# ---------------------------------------------------------------------------------------------

def concrete(shape: Shape, sizes: dict) -> tuple:
    return tuple(d if d == 1 else sizes[d] for d in shape)


# ---------------------------------------------------------------------------------------------
# How NumPy computes the operations NumPy does not name
# ---------------------------------------------------------------------------------------------

_erf = np.vectorize(math.erf, otypes=[float])


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def relu(x):
    return np.maximum(x, 0.0)


def softplus(x):
    return np.logaddexp(0.0, x)


def step(x):
    """1 where x > 0, else 0 (0 at 0, as matcalc's guide defines step)."""
    return np.where(x > 0, 1.0, 0.0)


def gelu(x):
    """The exact GELU, x Φ(x)."""
    return 0.5 * x * (1 + _erf(x / math.sqrt(2)))


def silu(x):
    return x * sigmoid(x)


def leaky_relu(x, alpha):
    return np.where(x > 0, x, alpha * x)


def elu(x, alpha):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def power(x, p):
    return np.power(x, p)


def clip(x, lo, hi):
    return np.clip(x, lo, hi)


def logsumexp(x, axis=None, keepdims=False):
    """scipy.special.logsumexp: log of the sum of exp over an axis (all entries without one)."""
    top = np.max(x, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - top), axis=axis, keepdims=True)) + top
    return out if keepdims else np.squeeze(out, axis=axis)


def softmax(x, axis=None):
    """scipy.special.softmax: exp normalised over an axis (over all entries without one)."""
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def norm(x, axis=None, keepdims=False):
    """numpy.linalg.norm: the 2-norm of a vector, the Frobenius norm of a matrix."""
    return np.linalg.norm(x, axis=axis, keepdims=keepdims)


# ---------------------------------------------------------------------------------------------
# Bounds
# ---------------------------------------------------------------------------------------------

def magnitude(iv: Interval) -> float:
    return max(abs(iv[0]), abs(iv[1]))


def increasing(f: Callable) -> Callable:
    def bound(iv, **_):
        return (f(iv[0]), f(iv[1]))
    return bound


def decreasing(f: Callable) -> Callable:
    def bound(iv, **_):
        return (f(iv[1]), f(iv[0]))
    return bound


def within(lo: float, hi: float) -> Callable:
    def bound(*_, **__):
        return (lo, hi)
    return bound


def same(iv, *_, **__):
    return iv


def abs_bound(iv, **_):
    lo = 0.0 if iv[0] <= 0 <= iv[1] else min(abs(iv[0]), abs(iv[1]))
    return (lo, magnitude(iv))


def square_bound(iv, **_):
    lo, hi = abs_bound(iv)
    return (lo * lo, hi * hi)


def cosh_bound(iv, **_):
    lo, hi = abs_bound(iv)
    return (math.cosh(lo), math.cosh(hi))


def relu_like(iv, **_):
    return (min(iv[0], 0.0) * 0.2, max(iv[1], 0.0))


def smooth_relu_like(iv, **_):       # gelu, silu: dip to about -0.28 below 0
    return (-0.3, max(iv[1], 0.0))


def elu_bound(iv, alpha=1.0, **_):
    return (-alpha, max(iv[1], 0.0))


def add_bound(a, b, **_):
    return (a[0] + b[0], a[1] + b[1])


def sub_bound(a, b, **_):
    return (a[0] - b[1], a[1] - b[0])


def mul_bound(a, b, **_):
    corners = [x * y for x in a for y in b]
    return (min(corners), max(corners))


def div_bound(a, b, **_):
    corners = [x / y for x in a for y in b]          # b is bounded away from 0
    return (min(corners), max(corners))


def maximum_bound(a, b, **_):
    return (max(a[0], b[0]), max(a[1], b[1]))


def minimum_bound(a, b, **_):
    return (min(a[0], b[0]), min(a[1], b[1]))


def matmul_bound(a, b, **_):
    m = LARGEST * magnitude(a) * magnitude(b)
    return (-m, m)


def power_bound(iv, p=2, **_):
    if p == int(p) and int(p) % 2 == 0:
        lo, hi = square_bound(iv)
        ends = (lo ** (p / 2), hi ** (p / 2))       # decreasing for p < 0
    else:
        ends = (iv[0] ** p, iv[1] ** p)             # odd, or a positive base
    return (min(ends), max(ends))


def sum_bound(iv, **_):
    count = LARGEST * LARGEST
    return (min(iv[0], count * iv[0]), max(iv[1], count * iv[1]))


def var_bound(iv, ddof=0, **_):
    spread = (iv[1] - iv[0]) ** 2
    return (0.0, 2 * spread)


def std_bound(iv, ddof=0, **_):
    return (0.0, math.sqrt(2) * (iv[1] - iv[0]))


def norm_bound(iv, **_):
    return (0.0, LARGEST * magnitude(iv))


def logsumexp_bound(iv, **_):
    return (iv[0], iv[1] + math.log(LARGEST * LARGEST))


def trace_bound(iv, **_):
    return (min(iv[0], LARGEST * iv[0]), max(iv[1], LARGEST * iv[1]))


def det_bound(iv, **_):
    m = math.factorial(LARGEST) * magnitude(iv) ** LARGEST
    return (-m, m)


def diag_bound(iv, **_):
    return (min(iv[0], 0.0), max(iv[1], 0.0))


def where_bound(cond, a, b, **_):
    return (min(a[0], b[0]), max(a[1], b[1]))


def clip_bound(iv, lo=-1.0, hi=1.0, **_):
    return (min(max(iv[0], lo), hi), max(min(iv[1], hi), lo))


# ---------------------------------------------------------------------------------------------
# The table of operations
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Operation:
    """One operation: how it is written, how NumPy computes it, what it needs and gives.

    ``rule`` says how the builder makes it and how its shape follows from its operands':

    - ``elementwise``: one operand, same shape (``params`` drawn per use: leaky_relu's alpha);
    - ``broadcast``: two operands, NumPy broadcasting (``+ - * /``, maximum, minimum);
    - ``compare``: like broadcast, a boolean only ``where`` takes;
    - ``where``: a comparison and two operands, broadcast together;
    - ``matmul``: ``@`` as NumPy does it (1-D operands included);
    - ``transpose``: ``.T`` of a 2-D value;
    - ``reduction``: along ``axis`` (all entries when omitted), with ``keepdims``;
    - ``along``: the same shape, normalised along ``axis`` (softmax);
    - ``square``: a square matrix to a scalar (trace, det); ``diag``: vector <-> square matrix.

    ``template`` spells it: operands are ``{0}``, ``{1}``, ...; ``{keywords}`` is where the drawn
    keyword arguments go (``, axis=0, keepdims=True``, nothing for defaults); other fields are
    ``params``. ``precedence`` is the binding strength of the result and ``operand_precedence``
    the least each operand needs without parentheses. ``domain`` is what an operand's values
    must be: ``real``, ``positive`` (>= MIN_POSITIVE), a number L (|x| <= L), or a tuple of
    these, one per operand (``/``: real over positive).
    """

    name: str
    rule: str
    template: str
    numpy: Callable
    bound: Callable
    arity: int = 1
    precedence: int = ATOM
    operand_precedence: tuple = (0,)
    keywords: tuple = ()              # names of keyword params, spelled as keywords
    params: tuple = ()                # ((name, choices), ...), the first choice the default
    domain: object = "real"
    discontinuous: bool = False       # records its argument: a test can avoid the jump
    extended: bool = False            # one of the operations issue 13 adds
    weight: int = 1

    def spell(self, operands: list[str], params: dict) -> str:
        keywords = "".join(f", {name}={params[name]!r}" for name in self.keywords
                           if params.get(name) != self.default(name))
        fields = {name: _number_text(value) for name, value in params.items()
                  if name not in self.keywords}
        return self.template.format(*operands, keywords=keywords, **fields)

    def default(self, name: str):
        return dict(self.params)[name][0]


def _number_text(value) -> str:
    if isinstance(value, float) and value == int(value) and abs(value) < 1e6:
        return str(int(value))
    return repr(value)


AXES = (None, 0, 1, -1, -2)
KEEPDIMS = (False, True)
EXP_LIMIT = 3.0        # exp, sinh, cosh, expm1 only of |x| <= this
SOFT_LIMIT = 20.0      # logsumexp, softmax


def _function(name, numpy, bound, **kw):
    return Operation(name, "elementwise", name + "({0})", numpy, bound, **kw)


def _reduction(name, numpy, bound, extra=(), **kw):
    return Operation(name, "reduction", name + "({0}{keywords})", numpy, bound,
                     keywords=("axis", "keepdims") + tuple(p for p, _ in extra),
                     params=(("axis", AXES), ("keepdims", KEEPDIMS)) + tuple(extra), **kw)


OPERATIONS: tuple[Operation, ...] = (
    # arithmetic
    Operation("add", "broadcast", "{0} + {1}", np.add, add_bound, arity=2, precedence=SUM,
         operand_precedence=(SUM, SUM + 1), weight=4),
    Operation("sub", "broadcast", "{0} - {1}", np.subtract, sub_bound, arity=2, precedence=SUM,
         operand_precedence=(SUM, SUM + 1), weight=4),
    Operation("mul", "broadcast", "{0} * {1}", np.multiply, mul_bound, arity=2, precedence=PRODUCT,
         operand_precedence=(PRODUCT, PRODUCT + 1), weight=4),
    Operation("div", "broadcast", "{0} / {1}", np.divide, div_bound, arity=2, precedence=PRODUCT,
         operand_precedence=(PRODUCT, PRODUCT + 1), domain=("real", "positive"), weight=2),
    Operation("matmul", "matmul", "{0} @ {1}", np.matmul, matmul_bound, arity=2,
         precedence=PRODUCT, operand_precedence=(PRODUCT, PRODUCT + 1), weight=4),
    Operation("power", "elementwise", "{0} ** {p}", power, power_bound, precedence=POWER,
         operand_precedence=(POWER + 1,), params=(("p", (2, 3)),), weight=2),
    Operation("power_of_positive", "elementwise", "{0} ** {p}", power, power_bound,
         precedence=POWER, operand_precedence=(POWER + 1,),
         params=(("p", (0.5, -1, 1.5, -0.5, -2)),), domain="positive"),
    Operation("neg", "elementwise", "-{0}", np.negative, decreasing(lambda x: -x), precedence=UNARY,
         operand_precedence=(UNARY + 1,), weight=2),
    Operation("T", "transpose", "{0}.T", np.transpose, same, operand_precedence=(ATOM,), weight=3),
    # elementwise functions matcalc has
    _function("exp", np.exp, increasing(math.exp), domain=EXP_LIMIT),
    _function("log", np.log, increasing(math.log), domain="positive"),
    _function("sin", np.sin, within(-1.0, 1.0)),
    _function("cos", np.cos, within(-1.0, 1.0)),
    _function("tanh", np.tanh, increasing(math.tanh), weight=2),
    _function("sigmoid", sigmoid, within(0.0, 1.0)),
    _function("relu", relu, relu_like),
    _function("abs", np.abs, abs_bound),
    _function("sign", np.sign, within(-1.0, 1.0), discontinuous=True),
    _function("sqrt", np.sqrt, increasing(math.sqrt), domain="positive"),
    _function("softplus", softplus, increasing(lambda x: math.log1p(math.exp(min(x, 50))) +
                                              max(x - 50, 0))),
    _function("step", step, within(0.0, 1.0), discontinuous=True),
    # reductions and the like
    _reduction("sum", np.sum, sum_bound, weight=4),
    _reduction("mean", np.mean, same, weight=4),
    Operation("softmax", "along", "softmax({0}{keywords})", softmax, within(0.0, 1.0),
         keywords=("axis",), params=(("axis", AXES),), domain=SOFT_LIMIT),
    _reduction("logsumexp", logsumexp, logsumexp_bound, domain=SOFT_LIMIT),
    Operation("trace", "square", "trace({0})", np.trace, trace_bound),
    Operation("det", "square", "det({0})", np.linalg.det, det_bound, domain=2.0),
    Operation("diag", "diag", "diag({0})", np.diag, diag_bound),
    # the operations issue 13 adds
    _reduction("max", np.max, same, extended=True),
    _reduction("min", np.min, same, extended=True),
    _reduction("var", np.var, var_bound, extra=(("ddof", (0, 1)),), extended=True),
    _reduction("std", np.std, std_bound, extra=(("ddof", (0, 1)),), extended=True),
    _reduction("norm", norm, norm_bound, extended=True),
    Operation("maximum", "broadcast", "maximum({0}, {1})", np.maximum, maximum_bound, arity=2,
         operand_precedence=(0, 0), extended=True),
    Operation("minimum", "broadcast", "minimum({0}, {1})", np.minimum, minimum_bound, arity=2,
         operand_precedence=(0, 0), extended=True),
    Operation("greater", "compare", "{0} > {1}", np.greater, within(0.0, 1.0), arity=2,
         precedence=COMPARE, operand_precedence=(COMPARE + 1, COMPARE + 1),
         discontinuous=True, extended=True),
    Operation("less", "compare", "{0} < {1}", np.less, within(0.0, 1.0), arity=2,
         precedence=COMPARE, operand_precedence=(COMPARE + 1, COMPARE + 1),
         discontinuous=True, extended=True),
    Operation("greater_equal", "compare", "{0} >= {1}", np.greater_equal, within(0.0, 1.0), arity=2,
         precedence=COMPARE, operand_precedence=(COMPARE + 1, COMPARE + 1),
         discontinuous=True, extended=True),
    Operation("less_equal", "compare", "{0} <= {1}", np.less_equal, within(0.0, 1.0), arity=2,
         precedence=COMPARE, operand_precedence=(COMPARE + 1, COMPARE + 1),
         discontinuous=True, extended=True),
    Operation("where", "where", "where({0}, {1}, {2})", np.where, where_bound, arity=3,
         operand_precedence=(0, 0, 0), extended=True),
    Operation("clip", "elementwise", "clip({0}, {lo}, {hi})", clip, clip_bound,
         params=(("lo", (-1.0, 0.0, -0.5)), ("hi", (1.0, 2.0, 0.5))), extended=True),
    _function("tan", np.tan, increasing(math.tan), domain=1.2, extended=True),
    _function("arcsin", np.arcsin, increasing(math.asin), domain=0.9, extended=True),
    _function("arccos", np.arccos, decreasing(math.acos), domain=0.9, extended=True),
    _function("arctan", np.arctan, increasing(math.atan), extended=True),
    _function("sinh", np.sinh, increasing(math.sinh), domain=EXP_LIMIT, extended=True),
    _function("cosh", np.cosh, cosh_bound, domain=EXP_LIMIT, extended=True),
    _function("erf", _erf, increasing(math.erf), extended=True),
    _function("log1p", np.log1p, increasing(math.log1p), domain="positive", extended=True),
    _function("expm1", np.expm1, increasing(math.expm1), domain=EXP_LIMIT, extended=True),
    _function("square", np.square, square_bound, extended=True),
    _function("gelu", gelu, smooth_relu_like, extended=True),
    _function("silu", silu, smooth_relu_like, extended=True),
    Operation("leaky_relu", "elementwise", "leaky_relu({0}, {alpha})", leaky_relu, relu_like,
         params=(("alpha", (0.01, 0.1, 0.2)),), extended=True),
    Operation("elu", "elementwise", "elu({0}, {alpha})", elu, elu_bound,
         params=(("alpha", (1.0, 0.5)),), extended=True),
)

OPERATION = {op.name: op for op in OPERATIONS}
# rows the builder uses by name, to make an operand fit a domain
_ADD, _MUL, _POWER, _ABS, _EXP, _TANH, _T = (OPERATION[name] for name in
                                              ("add", "mul", "power", "abs", "exp", "tanh", "T"))


# ---------------------------------------------------------------------------------------------
# Terms and their evaluation
# ---------------------------------------------------------------------------------------------

class Evaluation:
    """One run of the closures: the inputs, the largest magnitude met, the jumps came close to."""

    def __init__(self, inputs: dict, sizes: dict):
        self.inputs = inputs
        self.sizes = sizes
        self.largest = 1.0                     # sets the tolerance: rounding scales with it
        self.nearest_jump = math.inf           # least |argument| / scale of a discontinuity

    def seen(self, term: "Term", value) -> np.ndarray:
        value = np.asarray(value)
        want = concrete(term.shape, self.sizes)
        if value.shape != want:
            raise BuilderError(f"{term.text}: NumPy gives shape {value.shape}, the builder "
                               f"expected {want}")
        if value.dtype != bool and value.size:
            self.largest = max(self.largest, float(np.max(np.abs(value))))
        return value

    def jump(self, argument) -> None:
        argument = np.asarray(argument, dtype=float)
        if argument.size:
            self.nearest_jump = min(self.nearest_jump, float(np.min(np.abs(argument))))


@dataclass(frozen=True, eq=False)
class Term:
    """A subexpression: its text, NumPy's shape of it, the closure computing it, a bound.

    ``role`` marks the values the readings above single out: ``vector`` (a declared vector, as
    written), ``reduction`` (a bare reduction along an axis, 1-D), ``row`` (``u.T`` of a
    declared vector), ``number``. ``refused`` is why NumPy refuses the term, if it does.
    """

    text: str
    precedence: int
    shape: Shape
    compute: Callable = field(repr=False)
    bound: Interval = (-1.0, 1.0)
    variables: frozenset = frozenset()
    operations: frozenset = frozenset()
    role: str = ""
    refused: str | None = None
    features: frozenset = frozenset()     # what it exercises: "declared vector meets ..."

    def spelled(self, needed: int) -> str:
        return self.text if self.precedence >= needed else f"({self.text})"


@dataclass(frozen=True)
class Variable:
    name: str
    shape: Shape          # as declared: () scalar, ("n",) vector, ("n", "m"), (1, "n"), ("n", 1)
    positive: bool

    def draw(self, sizes: dict, rng: np.random.Generator):
        lo, hi = (0.5, 2.0) if self.positive else (-2.0, 2.0)
        value = rng.uniform(lo, hi, size=concrete(self.shape, sizes))
        return float(value) if self.shape == () else value


_LETTERS = {("n", "n"): "A", ("n", "m"): "B", ("n", "k"): "C", ("m", "n"): "D",
            ("m", "m"): "E", ("m", "k"): "F", ("k", "n"): "H", ("k", "m"): "J",
            ("k", "k"): "K", ("n",): "u", ("m",): "v", ("k",): "w", (): "s",
            (1, "n"): "P", (1, "m"): "Q", (1, "k"): "R",
            ("n", 1): "U", ("m", 1): "V", ("k", 1): "W"}


def variable_name(shape: Shape, positive: bool, index: int) -> str:
    return _LETTERS[shape] + ("p" if positive else "") + (str(index + 1) if index else "")


# ---------------------------------------------------------------------------------------------
# The builder
# ---------------------------------------------------------------------------------------------

NUMBERS = (2.0, 0.5, 3.0, 1.0)
REFUSAL_WEIGHT = 3       # how often a production meant for NumPy to refuse is drawn (per node)


class Builder:
    """Draws terms of a requested NumPy shape, top down, from the rows of the palette.

    Draws are ordered so hypothesis shrinks towards leaves, shallow trees and the first choices.
    """

    def __init__(self, draw, palette: tuple[Operation, ...], refusals: bool = True):
        self.draw = draw
        self.palette = palette
        self.refusals = refusals
        self.variables: dict[str, Variable] = {}

    # -- choices ---------------------------------------------------------------------------------
    def choose(self, options: list):
        """One of ``options`` (pairs weight, value), the first the one shrinking goes to."""
        flat = [value for weight, value in options for _ in range(weight)]
        return self.draw(st.sampled_from(flat))

    def dim(self, other_than: tuple = ()) -> str:
        return self.draw(st.sampled_from([d for d in DIMS if d not in other_than]))

    def flip(self, chance: int = 2) -> bool:
        """True one time in ``chance`` (False when shrunk)."""
        return self.draw(st.integers(0, chance - 1)) == chance - 1

    # -- leaves ----------------------------------------------------------------------------------
    def leaf(self, shape: Shape, positive: bool | None = None) -> Term:
        """A variable of this declared shape: one already used, or a new one."""
        if positive is None:
            positive = self.flip(5)
        same_kind = [v for v in self.variables.values()
                     if v.shape == shape and v.positive == positive]
        index = self.draw(st.integers(0, len(same_kind)))
        if index < len(same_kind):
            var = same_kind[index]
        else:
            var = Variable(variable_name(shape, positive, len(same_kind)), shape, positive)
            self.variables[var.name] = var
        role = "vector" if len(shape) == 1 else ""
        bound = (0.5, 2.0) if positive else (-2.0, 2.0)
        features = frozenset(["declared row" if shape[0] == 1 else "declared column"]
                             if len(shape) == 2 and 1 in shape else [])

        def compute(ev, var=var):
            return ev.inputs[var.name]
        term = Term(var.name, ATOM, shape, compute, bound, frozenset([var.name]), role=role,
                    features=features)
        return _with_check(term)

    def number(self) -> Term:
        return constant(self.draw(st.sampled_from(NUMBERS)))

    def scalar_operand(self, depth: int, positive: bool = False) -> Term:
        """A scalar to broadcast: a number or a scalar term."""
        if self.flip(2):
            return self.number()
        return self.term((), depth, positive=positive)

    # -- building from rows ----------------------------------------------------------------------
    def apply(self, op: Operation, operands: list[Term], params: dict | None = None,
              shape: Shape | None = None, refused: str | None = None, role: str = "",
              readings: tuple = (), after: Callable | None = None) -> Term | None:
        """``op`` of ``operands``; ``readings`` transform operand values first (the
        linear-algebra readings), ``after`` the result (u.T @ v to a scalar)."""
        params = params or {}
        texts = [t.spelled(need) for t, need in zip(operands, op.operand_precedence)]
        text = op.spell(texts, params)
        refused = refused or next((t.refused for t in operands if t.refused), None)
        numeric = dict(params)
        if refused is None:
            bound_params = {k: v for k, v in params.items() if k not in ("axis", "keepdims")}
            try:
                bound = op.bound(*[t.bound for t in operands], **bound_params)
            except OverflowError:
                return None
            if not bound[0] <= bound[1]:
                raise BuilderError(f"{op.name}: bound {bound} of {[t.bound for t in operands]}")
            if magnitude(bound) > CAP:
                return None
        else:           # NumPy stops at the refusal: the values past it are never computed
            bound = (-1.0, 1.0)
        readings = readings or (None,) * len(operands)
        discontinuous = op.discontinuous

        def compute(ev, operands=tuple(operands), readings=readings, numeric=numeric):
            values = [t.compute(ev) for t in operands]
            values = [v if r is None else r(v) for v, r in zip(values, readings)]
            if discontinuous:
                ev.jump(values[0] - values[1] if len(values) == 2 else values[0])
            out = op.numpy(*values, **numeric)
            return out if after is None else after(out)
        features = frozenset(features_of(op, operands, params, readings)).union(
            *(t.features for t in operands))
        return _with_check(Term(text, op.precedence, shape, compute, bound,
                                frozenset().union(*(t.variables for t in operands)),
                                frozenset([op.name]).union(*(t.operations for t in operands)),
                                role=role, refused=refused, features=features))

    # -- making an operand fit a domain ----------------------------------------------------------
    def fit(self, term: Term, domain, depth: int) -> Term:
        if domain == "real":
            return term
        if domain == "positive":
            return term if term.bound[0] >= MIN_POSITIVE else self.positive_version(term)
        limit = float(domain)
        if magnitude(term.bound) <= limit:
            return term
        squashed = self.apply(_TANH, [term], shape=term.shape)
        if limit >= 1:
            return squashed
        return self.apply(_MUL, [squashed, constant(0.5)], shape=term.shape)

    def positive_version(self, term: Term) -> Term:
        """``term`` made positive: exp(tanh(t)), t ** 2 + 1, abs(t) + 0.5, or a positive
        variable in its place."""
        how = self.draw(st.sampled_from(["abs", "square", "exp", "variable"]))
        if how == "variable":
            return self.leaf(term.shape, positive=True)
        if how == "exp":
            return self.apply(_EXP, [self.fit(term, 1.0, 0)], shape=term.shape)
        if how == "square":
            base = self.apply(_POWER, [term], {"p": 2}, shape=term.shape)
            offset = constant(1.0)
        else:
            base = self.apply(_ABS, [term], shape=term.shape)
            offset = constant(0.5)
        made = None if base is None else self.apply(_ADD, [base, offset], shape=term.shape)
        return made if made is not None else self.leaf(term.shape, positive=True)

    # -- terms -----------------------------------------------------------------------------------
    def term(self, shape: Shape, depth: int, positive: bool = False, leaf: bool = True) -> Term:
        """A term NumPy computes with this shape (or, drawn now and then, one it refuses); a
        variable only at depth 0 or if ``leaf``."""
        if depth <= 0:
            if shape == () and not positive and self.flip(3):
                return self.number()
            return self.leaf(shape, True if positive else None)
        options = [(3, ("leaf", None))] if leaf else []
        for op in self.palette:
            if self.applicable(op, shape):
                options.append((op.weight, ("row", op)))
        if self.refusals and self.refusable(shape):
            options.append((REFUSAL_WEIGHT, ("refusal", None)))
        kind, op = self.choose(options)
        made = None
        if kind == "row":
            made = getattr(self, "make_" + op.rule)(op, shape, depth - 1)
        elif kind == "refusal":
            made = self.refusal(shape, depth - 1)
        if made is None:
            made = self.leaf(shape, True if positive else None) if shape else self.number()
        if positive:
            made = self.fit(made, "positive", depth)
        return made

    def applicable(self, op: Operation, shape: Shape) -> bool:
        rule = op.rule
        if rule in ("elementwise", "broadcast", "matmul", "where"):
            return True
        if rule == "transpose":
            return len(shape) == 2
        if rule == "reduction":
            return len(shape) < 2 or 1 in shape
        if rule == "along":
            return len(shape) >= 1 and not (len(shape) == 2 and 1 in shape)
        if rule == "square":
            return shape == ()
        if rule == "diag":
            return len(shape) == 1 or (len(shape) == 2 and shape[0] == shape[1] != 1)
        return False

    def params(self, op: Operation, **fixed) -> dict:
        out = {}
        for name, choices in op.params:
            out[name] = fixed[name] if name in fixed else self.draw(st.sampled_from(choices))
        return out

    # -- productions, one per rule ---------------------------------------------------------------
    def make_elementwise(self, op: Operation, shape: Shape, depth: int) -> Term | None:
        operand = self.fit(self.term(shape, depth), op.domain, depth)
        return self.apply(op, [operand], self.params(op), shape=shape)

    def make_broadcast(self, op: Operation, shape: Shape, depth: int) -> Term | None:
        left_positive, right_positive = (d == "positive" for d in _domains(op))
        left, right, readings = self.broadcast_pair(shape, depth, right_positive)
        if not right_positive and self.flip(2):
            left, right, readings = right, left, readings[::-1]
        if left_positive:
            left = self.fit(left, "positive", depth)
        return self.apply(op, [left, right], shape=shape, readings=readings)

    def broadcast_pair(self, shape: Shape, depth: int, positive: bool):
        """Two operands NumPy broadcasts to ``shape``, the second ``positive`` if asked, and
        how each is read."""
        both = (None, None)
        if len(shape) == 2 and 1 not in shape:
            r, c = shape
            options = [(3, "same"), (1, "scalar"), (3, "row-1d"), (1, "row-2d"),
                       (1, "column-2d"), (1, "outer")]
            if r != c:
                options += [(3, "column-vector"), (1, "column-with-1d")]
            how = self.choose(options)
            full = self.term(shape, depth)
            if how == "same":
                return full, self.term(shape, depth, positive), both
            if how == "scalar":
                return full, self.scalar_operand(depth, positive), both
            if how == "row-1d":
                return full, self.vector_operand(c, depth, positive), both
            if how == "row-2d":
                return full, self.row(c, depth, positive), both
            if how == "column-2d":
                return full, self.term((r, 1), depth, positive), both
            if how == "column-vector":          # the seed notes' W @ X + b: a column
                return full, self.leaf((r,), True if positive else None), (None, as_column)
            if how == "outer":
                return self.term((r, 1), depth), self.row(c, depth, positive), both
            return self.term((r, 1), depth), self.vector_operand(c, depth, positive), both
        if len(shape) == 2 and shape[0] == 1:
            how = self.choose([(3, "same"), (1, "scalar"), (2, "row-1d")])
            full = self.term(shape, depth)
            if how == "same":
                return full, self.term(shape, depth, positive), both
            if how == "scalar":
                return full, self.scalar_operand(depth, positive), both
            return full, self.vector_operand(shape[1], depth, positive), both
        full = self.term(shape, depth)
        if shape and self.flip(3):
            return full, self.scalar_operand(depth, positive), both
        if shape == () and self.flip(3):
            return full, self.number() if not positive else self.leaf((), True), both
        return full, self.term(shape, depth, positive), both

    def vector_operand(self, c: str, depth: int, positive: bool = False) -> Term:
        """A 1-D operand of length c to meet a matrix: mostly a declared vector or a bare
        reduction (the two the issue is about), else any 1-D term."""
        how = self.draw(st.sampled_from(["vector", "reduction", "term"]))
        if how == "vector":
            return self.leaf((c,), True if positive else None)
        if how == "reduction":
            made = self.bare_reduction(c, depth)
            return self.fit(made, "positive", depth) if positive else made
        return self.term((c,), depth, positive)

    def row(self, c: str, depth: int, positive: bool = False) -> Term:
        """A 1×c row to broadcast or to multiply by a column: a term, or u.T of a vector."""
        if self.flip(3):
            return self.transposed_vector(c, positive)
        return self.term((1, c), depth, positive)

    def transposed_vector(self, c: str, positive: bool = False) -> Term:
        vector = self.leaf((c,), True if positive else None)
        return self.apply(_T, [vector], shape=(1, c), role="row", readings=(as_column,))

    def make_where(self, op: Operation, shape: Shape, depth: int) -> Term | None:
        compares = [o for o in self.palette if o.rule == "compare"]
        if not compares:
            return None
        compare = self.draw(st.sampled_from(compares))
        a = self.term(shape, depth)
        b = self.number() if self.flip(2) else self.term(shape, depth)
        condition = self.apply(compare, [a, b], shape=shape)
        if condition is None:
            return None
        yes = self.term(shape, depth)
        no = self.scalar_operand(depth) if shape and self.flip(3) else self.term(shape, depth)
        return self.apply(op, [condition, yes, no], shape=shape)

    def make_matmul(self, op: Operation, shape: Shape, depth: int) -> Term | None:
        if len(shape) == 2 and 1 not in shape:
            r, c = shape
            if self.flip(5):                               # u @ v.T: an outer product
                return self.apply(op, [self.leaf((r,)), self.row(c, depth)], shape=shape,
                                  readings=(as_column, None))
            j = self.dim()
            return self.apply(op, [self.term((r, j), depth), self.term((j, c), depth)],
                              shape=shape)
        if len(shape) == 2 and shape[0] == 1:
            j = self.dim()
            return self.apply(op, [self.term((1, j), depth), self.term((j, shape[1]), depth)],
                              shape=shape)
        if len(shape) == 2:
            j = self.dim()
            return self.apply(op, [self.term((shape[0], j), depth), self.term((j, 1), depth)],
                              shape=shape)
        j = self.dim()
        if len(shape) == 1:
            if self.flip(2):
                return self.apply(op, [self.term((shape[0], j), depth), self.term((j,), depth)],
                                  shape=shape)
            return self.apply(op, [self.term((j,), depth), self.term((j, shape[0]), depth)],
                              shape=shape)
        if self.flip(4):                                   # u.T @ v: a scalar
            return self.apply(op, [self.transposed_vector(j), self.term((j,), depth)],
                              shape=(), after=as_scalar)
        return self.apply(op, [self.term((j,), depth), self.term((j,), depth)], shape=())

    def make_transpose(self, op: Operation, shape: Shape, depth: int) -> Term | None:
        inner = self.term(shape[::-1], depth)
        if inner.role == "row":             # u.T.T: which reading holds is not settled
            return None
        return self.apply(op, [inner], shape=shape)

    def make_reduction(self, op: Operation, shape: Shape, depth: int) -> Term | None:
        """``shape`` () from everything or from a 1-D term along axis 0 / -1; (c,) along an
        axis of a matrix; (1, c) and (r, 1) with keepdims."""
        if shape == ():
            if self.flip(3):
                axis = self.draw(st.sampled_from([0, -1]))
                source = self.term((self.dim(),), depth)
            else:
                axis = None
                source = self.term(self.any_shape(), depth)
            params = self.params(op, axis=axis, keepdims=False)
        elif len(shape) == 1:
            (c,) = shape
            j = self.dim()
            if self.flip(2):
                axis, source_shape = self.draw(st.sampled_from([0, -2])), (j, c)
            else:
                axis, source_shape = self.draw(st.sampled_from([1, -1])), (c, j)
            source = self.term(source_shape, depth)
            params = self.params(op, axis=axis, keepdims=False)
        else:
            j = self.dim()
            if shape[0] == 1:
                axis, source_shape = self.draw(st.sampled_from([0, -2])), (j, shape[1])
            else:
                axis, source_shape = self.draw(st.sampled_from([1, -1])), (shape[0], j)
            source = self.term(source_shape, depth)
            params = self.params(op, axis=axis, keepdims=True)
        source = self.fit(source, op.domain, depth)
        role = "reduction" if len(shape) == 1 else ""
        return self.apply(op, [source], params, shape=shape, role=role)

    def any_shape(self) -> Shape:
        kind = self.draw(st.sampled_from(["matrix", "vector", "row", "column"]))
        if kind == "matrix":
            return (self.dim(), self.dim())
        if kind == "vector":
            return (self.dim(),)
        return (1, self.dim()) if kind == "row" else (self.dim(), 1)

    def make_along(self, op: Operation, shape: Shape, depth: int) -> Term | None:
        axes = [None, 0, -1] if len(shape) == 1 else list(AXES)
        source = self.fit(self.term(shape, depth), op.domain, depth)
        return self.apply(op, [source], self.params(op, axis=self.draw(st.sampled_from(axes))),
                          shape=shape)

    def make_square(self, op: Operation, shape: Shape, depth: int) -> Term | None:
        d = self.dim()
        source = self.fit(self.term((d, d), depth), op.domain, depth)
        return self.apply(op, [source], shape=())

    def make_diag(self, op: Operation, shape: Shape, depth: int) -> Term | None:
        if len(shape) == 2:
            return self.apply(op, [self.term(shape[:1], depth)], shape=shape)
        return self.apply(op, [self.term(shape * 2, depth)], shape=shape)

    # -- productions NumPy refuses ---------------------------------------------------------------
    def refusable(self, shape: Shape) -> bool:
        return len(shape) == 1 or (len(shape) == 2 and 1 not in shape) or shape == ()

    def refusal(self, shape: Shape, depth: int) -> Term | None:
        """A term NumPy refuses, standing where one of ``shape`` was asked for."""
        ops = {op.rule: op for op in self.palette}
        kinds = []
        if "broadcast" in ops and len(shape) >= 1:
            kinds.append("broadcast")
        if "matmul" in ops:
            kinds.append("matmul")
        if "reduction" in ops and len(shape) <= 1:
            kinds.append("axis")
        if not kinds:
            return None
        kind = self.draw(st.sampled_from(kinds))
        if kind == "broadcast":
            op = self.draw(st.sampled_from([o for o in self.palette if o.rule == "broadcast"
                                            and o.domain == "real"]))
            if len(shape) == 2 and shape[0] != shape[1]:
                r, c = shape
                how = self.draw(st.sampled_from(["reduction", "transposed", "foreign"]))
                if how == "reduction":          # A - mean(A, axis=1), A not square
                    other = self.bare_reduction(r, depth)
                elif how == "transposed":
                    other = self.term((c, r), depth)
                else:
                    other = self.leaf((self.dim(other_than=(r, c)),))
            elif len(shape) == 2:
                other = self.term((self.dim(other_than=shape[:1]), shape[1]), depth)
            else:
                other = self.term((self.dim(other_than=shape),), depth)
            pair = [self.term(shape, depth), other]
            if self.flip(2):
                pair.reverse()
            reason = f"{op.name} of shapes {pair[0].shape} and {pair[1].shape}"
            return self.apply(op, pair, shape=shape, refused=reason)
        if kind == "matmul":
            op = next(o for o in self.palette if o.rule == "matmul")
            j = self.dim()
            i = self.dim(other_than=(j,))
            if len(shape) == 2:
                pair = [self.term((shape[0], j), depth), self.term((i, shape[1]), depth)]
            elif len(shape) == 1:
                pair = [self.term((shape[0], j), depth), self.term((i,), depth)]
            else:
                pair = [self.term((j,), depth), self.term((i,), depth)]
            reason = f"{pair[0].shape} @ {pair[1].shape}"
            return self.apply(op, pair, shape=shape, refused=reason)
        op = self.draw(st.sampled_from([o for o in self.palette if o.rule == "reduction"]))
        # sum(u, axis=1) of a vector. (Not sum(s, axis=0) of a scalar: NumPy takes it of a
        # float and refuses it of a 0-d array.)
        source = self.term((shape[0] if shape else self.dim(),), depth)
        axis = self.draw(st.sampled_from([1, -2]))
        source = self.fit(source, op.domain, depth)
        params = self.params(op, axis=axis)
        reason = f"{op.name} along axis {axis} of shape {source.shape}"
        return self.apply(op, [source], params, shape=shape, refused=reason)

    def bare_reduction(self, length: str, depth: int) -> Term:
        ops = [o for o in self.palette if o.rule == "reduction"]
        op = self.draw(st.sampled_from(ops))
        return self.make_reduction(op, (length,), depth) or self.leaf((length,))


_ROLE_NAMES = {"vector": "declared vector", "reduction": "reduction", "number": "number"}


def _two_d_name(shape: Shape) -> str:
    if shape[0] == 1:
        return "1×m row"
    if shape[1] == 1:
        return "n×1 column"
    return "square matrix" if shape[0] == shape[1] else "non-square matrix"


def features_of(op: Operation, operands: list[Term], params: dict, readings: tuple) -> list:
    """What an application exercises, in words: the pairings of shapes the issue is about."""
    out = []
    if op.rule in ("broadcast", "compare", "where"):
        for a, reading in zip(operands, readings):
            for b in operands:
                if len(a.shape) == 1 and len(b.shape) == 2:
                    kind = _ROLE_NAMES.get(a.role, "1-D expression")
                    if reading is as_column:
                        how = "as a column (declared vector)"
                    elif a.shape[0] == b.shape[1]:
                        how = "as a row (NumPy)"
                    elif b.shape[1] == 1:
                        how = "NumPy broadcasts both"
                    else:
                        how = "NumPy refuses"
                    out.append(f"{kind} meets {_two_d_name(b.shape)}, {how}")
                elif len(a.shape) == 2 and 1 in a.shape and len(b.shape) == 2 \
                        and a.shape != b.shape:
                    out.append(f"{_two_d_name(a.shape)} meets {_two_d_name(b.shape)}")
    elif op.rule == "matmul":
        a, b = operands
        if a.role == "row":
            out.append("u.T @ v")
        elif readings and readings[0] is as_column:
            out.append("vector @ row: outer product")
        elif len(a.shape) == 1 or len(b.shape) == 1:
            kinds = {1: "vector", 2: "matrix"}
            out.append(f"{kinds[len(a.shape)]} @ {kinds[len(b.shape)]} (NumPy's 1-D product)")
    elif op.rule in ("reduction", "along"):
        axis = params.get("axis")
        if axis is not None:
            ndim = len(operands[0].shape)
            out.append(f"{'reduction' if op.rule == 'reduction' else op.name} of "
                       f"{ {0: 'a scalar', 1: '1-D', 2: '2-D'}[ndim]} along axis={axis}"
                       + (", keepdims" if params.get("keepdims") else ""))
    elif op.rule == "transpose" and operands[0].role == "vector":
        out.append("u.T of a declared vector")
    return out


def constant(value: float) -> Term:
    """A number in the text."""
    def compute(ev, value=value):
        return np.float64(value)
    return Term(_number_text(value), ATOM, (), compute, (value, value), role="number")


def _domains(op: Operation) -> tuple:
    return op.domain if isinstance(op.domain, tuple) else (op.domain,) * op.arity


def as_column(value: np.ndarray) -> np.ndarray:
    """A declared vector in the linear-algebra reading: an n×1 column."""
    return np.reshape(value, (-1, 1))


def as_scalar(value: np.ndarray) -> np.ndarray:
    """``u.T @ v``: 1×1, a scalar."""
    return np.reshape(value, ())


def _with_check(term: Term) -> Term:
    """``term`` whose closure checks each value against the shape the builder expected."""
    inner = term.compute

    def compute(ev, inner=inner, term=term):
        return ev.seen(term, inner(ev))
    return Term(term.text, term.precedence, term.shape, compute, term.bound, term.variables,
                term.operations, term.role, term.refused, term.features)


# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class NumpyOutcome:
    """What NumPy does with a case: its value, or the error it raises; and how to compare."""

    value: object = None
    error: Exception | None = None
    largest: float = 1.0
    nearest_jump: float = math.inf


@dataclass(frozen=True)
class NumpyText:
    """A drawn text, the declared shapes and domains of its variables, the sizes of the
    dimensions, the variable to differentiate by, a seed for the inputs, and the tree."""

    text: str
    shapes: dict
    domains: dict
    sizes: dict
    wrt: str
    seed: int
    term: Term = field(repr=False)
    variables: tuple = field(repr=False, default=())

    @property
    def numpy_refuses(self) -> str | None:
        """Why NumPy refuses this text, as the builder meant it (None: NumPy computes it)."""
        return self.term.refused

    @property
    def operations(self) -> frozenset:
        return self.term.operations

    @property
    def features(self) -> frozenset:
        return self.term.features

    def inputs(self) -> dict:
        """Inputs in the form NumPy and generated code take: 1-D vectors, float scalars."""
        rng = np.random.default_rng(self.seed)
        return {v.name: v.draw(self.sizes, rng) for v in self.variables}

    def numpy_value(self, inputs: dict) -> NumpyOutcome:
        """NumPy's value of the text on ``inputs``, or the ValueError NumPy raises."""
        ev = Evaluation(inputs, self.sizes)
        try:
            with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
                value = self.term.compute(ev)
        except ValueError as err:
            if self.numpy_refuses is None:
                raise BuilderError(f"NumPy refuses {self.text!r}, unexpectedly: {err}") from err
            return NumpyOutcome(error=err, largest=ev.largest)
        if self.numpy_refuses is not None:
            raise BuilderError(f"NumPy computes {self.text!r}, though the builder expected it "
                               f"to refuse ({self.numpy_refuses})")
        value = value[()] if value.shape == () else value
        return NumpyOutcome(value=value, largest=ev.largest, nearest_jump=ev.nearest_jump)

    def __repr__(self) -> str:        # what hypothesis prints for a falsifying example
        sizes = ", ".join(f"{k}={v}" for k, v in self.sizes.items())
        domains = f", domains={self.domains}" if self.domains else ""
        return (f"NumpyText({self.text!r}, shapes={self.shapes}{domains}, wrt={self.wrt!r}; "
                f"{sizes}; seed={self.seed})")

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(repr(self))


TOP_SHAPES = ("scalar",) * 3 + ("matrix",) * 3 + ("vector",) * 2 + ("row", "column")


@st.composite
def numpy_texts(draw, max_depth: int = 4, extended: bool | None = None,
                refusals: bool = True) -> NumpyText:
    """A random text in NumPy's idiom with NumPy's value of it (see the module docstring).

    ``extended`` includes the operations issue 13 adds (drawn one time in three when None);
    ``refusals=False`` leaves out the productions meant for NumPy to refuse.
    """
    order = draw(st.permutations(SIZES))
    sizes = dict(zip(DIMS, order))
    if extended is None:
        extended = draw(st.integers(0, 2)) == 0
    palette = tuple(op for op in OPERATIONS if extended or not op.extended)
    builder = Builder(draw, palette, refusals)
    kind = draw(st.sampled_from(TOP_SHAPES))
    shape = {"scalar": lambda: (), "vector": lambda: (builder.dim(),),
             "matrix": lambda: (builder.dim(), builder.dim()),
             "row": lambda: (1, builder.dim()), "column": lambda: (builder.dim(), 1)}[kind]()
    depth = draw(st.integers(min(2, max_depth), max_depth))
    top = builder.term(shape, depth, leaf=False)
    if not top.variables:                 # numbers only: give it a variable
        top = builder.apply(_MUL, [top, builder.leaf(shape)], shape=shape) or \
            builder.leaf(shape)
    names = sorted(top.variables)
    variables = tuple(builder.variables[name] for name in names)
    shapes = {v.name: v.shape for v in variables}
    domains = {v.name: "positive" for v in variables if v.positive}
    wrt = draw(st.sampled_from(names))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    return NumpyText(top.text, shapes, domains, sizes, wrt, seed, top, variables)
