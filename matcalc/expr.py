"""The expression layer: immutable, hash-consed, shape-checked nodes.

Contract:
- Every node is built through its class's ``make`` (or the operators / functions below), which
  checks shapes and returns the one existing node for equal arguments (hash-consing), so equal
  subexpressions are the same object and ``is`` is structural equality.
- Every value is two-dimensional: a vector is n x 1, a scalar is 1 x 1. Elementwise operators
  broadcast a scalar, an n x 1 column (across columns) or a 1 x m row (across rows) explicitly,
  through a ``Broadcast`` node, so every other node sees operands of equal shape.
- Numbers are exact SymPy rationals; a dimension may stand as a scalar (``Const(m)``).
- Traversals (``postorder``, ``substitute``) are iterative: depth is limited by memory only.
"""

from __future__ import annotations

import functools
import keyword
import math
import numbers
import re
import weakref
from fractions import Fraction
from typing import Callable, Iterable, Sequence

import sympy

from .dims import ONE, Dim, Shape, dim, format_shape, is_one
from .errors import ConstantTooLargeError, MatcalcError, ShapeError, UnsupportedError
from .functions import ELEMENTWISE

_TABLE: "weakref.WeakValueDictionary" = weakref.WeakValueDictionary()

#: Names a variable may not take, because the text syntax gives them another meaning.
RESERVED_NAMES = frozenset(ELEMENTWISE) | {
    "sum", "mean", "trace", "ones", "eye", "zeros", "einsum", "T", "axis",
    "det", "logdet", "inv", "norm", "norm1", "diag", "softmax", "logsumexp",
}
#: What a variable's values are: any real numbers; positive entries; a symmetric positive
#: definite matrix; an invertible matrix; a probability vector (or a matrix whose columns are).
#: A domain never changes what a gradient means (it is over unconstrained entries); it tells the
#: simplifier what it may assume (X.T = X for spd, sum(p) = 1) and the check what to draw.
DOMAINS = ("real", "positive", "spd", "invertible", "probability")
_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


def _describe_default(node: "Node") -> str:
    return node.params[0] if isinstance(node, Var) else type(node).__name__


_describer: list[Callable[["Node"], str]] = [_describe_default]


def set_describer(func: Callable[["Node"], str]) -> None:
    """Install the function that names a node in error messages (the text printer does this)."""
    _describer[0] = func


def describe(node: "Node", limit: int = 60) -> str:
    """A short text for ``node`` in the user's own names, for error messages."""
    text = _describer[0](node)
    return text if len(text) <= limit else text[: limit - 1] + "…"


_displays: dict[str, Callable[["Node"], str | None]] = {}


def set_display(mime: str, func: Callable[["Node"], str | None]) -> None:
    """Install how a node shows in a notebook as ``mime`` (the notes printer installs LaTeX and
    MathML), as ``set_describer`` does for error messages."""
    _displays[mime] = func


class Node:
    """Base class of all expression nodes. Immutable; build nodes with ``make`` or operators."""

    __slots__ = ("args", "params", "shape", "__weakref__")
    args: tuple
    params: tuple
    shape: Shape

    def __init__(self, *args, **kwargs):
        raise TypeError(f"build {type(self).__name__} nodes with {type(self).__name__}.make()")

    def __setattr__(self, name, value):
        raise AttributeError("matcalc expressions are immutable")

    def __reduce__(self):
        return (_remake, (type(self), self.args, self.params, self.shape))

    @classmethod
    def _intern(cls, args: tuple, params: tuple, shape: Shape) -> "Node":
        key = (cls, args, params)
        node = _TABLE.get(key)
        if node is None:
            node = object.__new__(cls)
            object.__setattr__(node, "args", args)
            object.__setattr__(node, "params", params)
            object.__setattr__(node, "shape", (sympy.sympify(shape[0]), sympy.sympify(shape[1])))
            _TABLE[key] = node
        return node

    def remake(self, args: tuple, dim_map: dict) -> "Node":
        """This node with new operands and dimensions substituted (shapes re-checked)."""
        raise NotImplementedError

    # -- shape helpers --------------------------------------------------------------------
    @property
    def rows(self) -> Dim:
        return self.shape[0]

    @property
    def cols(self) -> Dim:
        return self.shape[1]

    @property
    def is_scalar(self) -> bool:
        return is_one(self.shape[0]) and is_one(self.shape[1])

    # -- operators ------------------------------------------------------------------------
    def __matmul__(self, other):
        return MatMul.make(self, as_node(other))

    def __rmatmul__(self, other):
        return MatMul.make(as_node(other), self)

    def __add__(self, other):
        return add(self, other)

    def __radd__(self, other):
        return add(other, self)

    def __sub__(self, other):
        return sub(self, other)

    def __rsub__(self, other):
        return sub(other, self)

    def __mul__(self, other):
        return mul(self, other)

    def __rmul__(self, other):
        return mul(other, self)

    def __truediv__(self, other):
        return div(self, other)

    def __rtruediv__(self, other):
        return div(other, self)

    def __neg__(self):
        return neg(self)

    def __pos__(self):
        return self

    def __pow__(self, exponent):
        return power(self, exponent)

    def __bool__(self):
        return True

    @property
    def T(self) -> "Node":
        return Transpose.make(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {describe(self)} : {format_shape(self.shape)}>"

    def __str__(self) -> str:
        return describe(self, limit=10**9)

    def _repr_latex_(self) -> str | None:
        show = _displays.get("text/latex")
        return show(self) if show is not None else None

    def _repr_html_(self) -> str | None:
        show = _displays.get("text/html")
        return show(self) if show is not None else None


def _remake(cls, args, params, shape):
    return cls._intern(args, params, shape)


# ---------------------------------------------------------------------------------------------
# Leaves
# ---------------------------------------------------------------------------------------------

class Var(Node):
    """A named input: matrix, vector (a column) or scalar, with a domain ("real", "positive")."""

    __slots__ = ()

    @classmethod
    def make(cls, name: str, shape: Shape, kind: str | None = None, domain: str = "real",
             check_name: bool = True) -> "Var":
        if check_name:
            check_variable_name(name)
        rows, cols = dim(shape[0]), dim(shape[1])
        if kind is None:
            kind = "scalar" if is_one(rows) and is_one(cols) else (
                "vector" if is_one(cols) else "matrix")
        if kind not in ("matrix", "vector", "scalar"):
            raise MatcalcError(f"unknown kind {kind!r} for variable {name!r}")
        if kind == "vector" and not is_one(cols):
            raise ShapeError(f"vector {name!r} must have one column")
        if kind == "scalar" and not (is_one(rows) and is_one(cols)):
            raise ShapeError(f"scalar {name!r} must be 1×1")
        if domain not in DOMAINS:
            raise MatcalcError(
                f"unknown domain {domain!r} for {name!r}; choose one of {', '.join(DOMAINS)}")
        if domain in ("spd", "invertible") and rows != cols:
            raise ShapeError(f"{name!r} is declared {domain} but is {format_shape((rows, cols))}, "
                             "not square")
        return cls._intern((), (name, rows, cols, kind, domain), (rows, cols))

    @property
    def name(self) -> str:
        return self.params[0]

    @property
    def kind(self) -> str:
        return self.params[3]

    @property
    def domain(self) -> str:
        return self.params[4]

    def remake(self, args, dim_map):
        name, rows, cols, kind, domain = self.params
        return Var.make(name, (rows.xreplace(dim_map), cols.xreplace(dim_map)), kind, domain,
                        check_name=False)


def fresh_name(wanted: str, taken: set) -> str:
    """``wanted``, or ``wanted_1``, ``wanted_2``, ... : the first not in ``taken`` (which gains it).

    The one allocator for names the engine adds beside the user's (G, v, Z).
    """
    name, k = wanted, 1
    while name in taken:
        name, k = f"{wanted}_{k}", k + 1
    taken.add(name)
    return name


def check_variable_name(name: str) -> None:
    """Raise unless ``name`` can name a variable (an identifier the syntax does not reserve)."""
    if not isinstance(name, str) or not _IDENT.match(name):
        raise MatcalcError(
            f"{name!r} is not a valid variable name (a letter, then letters, digits or _)")
    if name in RESERVED_NAMES or keyword.iskeyword(name):
        raise MatcalcError(f"{name!r} is reserved in matcalc syntax; choose another name")


class Const(Node):
    """A scalar constant: an exact number, or an expression in dimensions such as ``1/m``."""

    __slots__ = ()

    @classmethod
    def make(cls, value) -> "Const":
        value = to_number(value)
        return cls._intern((), (value,), (ONE, ONE))

    @property
    def value(self) -> sympy.Expr:
        return self.params[0]

    def remake(self, args, dim_map):
        return Const.make(self.value.xreplace(dim_map))


class Eye(Node):
    """The n x n identity matrix."""

    __slots__ = ()

    @classmethod
    def make(cls, n) -> "Eye":
        n = dim(n)
        return cls._intern((), (n,), (n, n))

    def remake(self, args, dim_map):
        return Eye.make(self.params[0].xreplace(dim_map))


LEAVES = (Var, Const, Eye)


# ---------------------------------------------------------------------------------------------
# Operations
# ---------------------------------------------------------------------------------------------

def _shape_error(op: str, a: Node, b: Node, why: str) -> ShapeError:
    return ShapeError(
        f"shape mismatch in {op}: {describe(a)} is {format_shape(a.shape)} and "
        f"{describe(b)} is {format_shape(b.shape)}; {why}")


class MatMul(Node):
    """Matrix product A @ B: (n x p) @ (p x m) -> n x m."""

    __slots__ = ()

    @classmethod
    def make(cls, a: Node, b: Node) -> "MatMul":
        a, b = as_node(a), as_node(b)
        if a.cols != b.rows:
            raise _shape_error("A @ B", a, b, f"the inner dimensions {a.cols} and {b.rows} differ")
        return cls._intern((a, b), (), (a.rows, b.cols))

    def remake(self, args, dim_map):
        return MatMul.make(*args)


class Transpose(Node):
    """Transpose A.T."""

    __slots__ = ()

    @classmethod
    def make(cls, a: Node) -> "Transpose":
        a = as_node(a)
        return cls._intern((a,), (), (a.cols, a.rows))

    def remake(self, args, dim_map):
        return Transpose.make(*args)


class _SameShapeBinary(Node):
    """An elementwise binary operation on operands of equal shape (broadcasts already explicit)."""

    __slots__ = ()
    symbol = "?"

    @classmethod
    def make(cls, a: Node, b: Node):
        a, b = as_node(a), as_node(b)
        if a.shape != b.shape:
            raise _shape_error(f"A {cls.symbol} B", a, b, "elementwise operands must have equal "
                               "shapes (or one must broadcast: a scalar, a column or a row)")
        return cls._intern((a, b), (), a.shape)

    def remake(self, args, dim_map):
        return type(self).make(*args)


class Add(_SameShapeBinary):
    """Sum A + B."""
    __slots__ = ()
    symbol = "+"


class Sub(_SameShapeBinary):
    """Difference A - B."""
    __slots__ = ()
    symbol = "-"


class Mul(_SameShapeBinary):
    """Elementwise (Hadamard) product A * B."""
    __slots__ = ()
    symbol = "*"


class Div(_SameShapeBinary):
    """Elementwise quotient A / B."""
    __slots__ = ()
    symbol = "/"


class Neg(Node):
    """Negation -A."""

    __slots__ = ()

    @classmethod
    def make(cls, a: Node) -> "Neg":
        a = as_node(a)
        return cls._intern((a,), (), a.shape)

    def remake(self, args, dim_map):
        return Neg.make(*args)


class Pow(Node):
    """Elementwise power A ** p with a numeric exponent p."""

    __slots__ = ()

    @classmethod
    def make(cls, a: Node, exponent) -> "Pow":
        a = as_node(a)
        if isinstance(exponent, Const):
            exponent = exponent.value
        if isinstance(exponent, Node):
            raise UnsupportedError(
                f"the exponent in {describe(a)} ** {describe(exponent)} must be a number")
        p = to_number(exponent)
        if p.free_symbols:
            raise UnsupportedError(f"the exponent of {describe(a)} must be a number, not {p}")
        return cls._intern((a,), (p,), a.shape)

    @property
    def exponent(self) -> sympy.Rational:
        return self.params[0]

    def remake(self, args, dim_map):
        return Pow.make(args[0], self.exponent)


class Apply(Node):
    """An elementwise function f(A): exp, log, tanh, relu, ..."""

    __slots__ = ()

    @classmethod
    def make(cls, name: str, a: Node) -> "Apply":
        if name not in ELEMENTWISE:
            raise UnsupportedError(f"unknown elementwise function {name!r}")
        a = as_node(a)
        return cls._intern((a,), (name,), a.shape)

    @property
    def name(self) -> str:
        return self.params[0]

    def remake(self, args, dim_map):
        return Apply.make(self.name, args[0])


class Broadcast(Node):
    """Repeat a scalar, a column (n x 1, across columns) or a row (1 x m, across rows)."""

    __slots__ = ()

    @classmethod
    def make(cls, a: Node, rows, cols) -> "Broadcast":
        a = as_node(a)
        rows, cols = dim(rows), dim(cols)
        ok_rows = a.rows == rows or is_one(a.rows)
        ok_cols = a.cols == cols or is_one(a.cols)
        if not (ok_rows and ok_cols):
            raise ShapeError(f"cannot broadcast {describe(a)} ({format_shape(a.shape)}) to "
                             f"{format_shape((rows, cols))}")
        return cls._intern((a,), (rows, cols), (rows, cols))

    def remake(self, args, dim_map):
        return Broadcast.make(args[0], self.params[0].xreplace(dim_map),
                              self.params[1].xreplace(dim_map))


class Sum(Node):
    """Sum of all entries (axis None, a scalar), down the rows (axis 0) or along rows (axis 1).

    Following NumPy, both axis sums are vectors (columns): ``sum(X, axis=0)`` of an n x m matrix
    has m entries (one per column of X), ``sum(X, axis=1)`` has n (one per row).
    """

    __slots__ = ()

    @classmethod
    def make(cls, a: Node, axis: int | None = None) -> "Sum":
        a = as_node(a)
        if axis is None:
            shape = (ONE, ONE)
        elif axis == 0:
            shape = (a.cols, ONE)
        elif axis == 1:
            shape = (a.rows, ONE)
        else:
            raise UnsupportedError(f"sum over axis {axis!r}: the axis must be 0, 1 or None")
        return cls._intern((a,), (axis,), shape)

    @property
    def axis(self) -> int | None:
        return self.params[0]

    def remake(self, args, dim_map):
        return Sum.make(args[0], self.axis)


class Trace(Node):
    """Trace of a square matrix: the sum of its diagonal."""

    __slots__ = ()

    @classmethod
    def make(cls, a: Node) -> "Trace":
        a = as_node(a)
        if a.rows != a.cols:
            raise ShapeError(f"trace needs a square matrix, but {describe(a)} is "
                             f"{format_shape(a.shape)}")
        return cls._intern((a,), (), (ONE, ONE))

    def remake(self, args, dim_map):
        return Trace.make(args[0])


class _SquareToScalar(Node):
    """A scalar function of a square matrix."""

    __slots__ = ()
    label = "?"

    @classmethod
    def make(cls, a: Node):
        a = as_node(a)
        if a.rows != a.cols:
            raise ShapeError(f"{cls.label} needs a square matrix, but {describe(a)} is "
                             f"{format_shape(a.shape)}")
        return cls._intern((a,), (), (ONE, ONE))

    def remake(self, args, dim_map):
        return type(self).make(args[0])


class Det(_SquareToScalar):
    """Determinant det(X) of a square matrix."""
    __slots__ = ()
    label = "det"


class LogDet(_SquareToScalar):
    """log |det(X)| of a square matrix (its gradient is X^-T whatever the sign of det X)."""
    __slots__ = ()
    label = "logdet"


class Inv(Node):
    """Inverse inv(X) of a square matrix."""

    __slots__ = ()

    @classmethod
    def make(cls, a: Node) -> "Inv":
        a = as_node(a)
        if a.rows != a.cols:
            raise ShapeError(f"inv needs a square matrix, but {describe(a)} is "
                             f"{format_shape(a.shape)}")
        return cls._intern((a,), (), a.shape)

    def remake(self, args, dim_map):
        return Inv.make(args[0])


class Diag(Node):
    """diag(v) of a vector is the diagonal matrix with v on its diagonal; diag(X) of a square
    matrix is the vector of its diagonal entries (NumPy's np.diag, both ways)."""

    __slots__ = ()

    @classmethod
    def make(cls, a: Node) -> "Diag":
        a = as_node(a)
        if is_one(a.cols):
            shape = (a.rows, a.rows)          # vector -> diagonal matrix
        elif a.rows == a.cols:
            shape = (a.rows, ONE)             # square matrix -> its diagonal
        else:
            raise ShapeError(f"diag needs a vector or a square matrix, but {describe(a)} is "
                             f"{format_shape(a.shape)}")
        return cls._intern((a,), (), shape)

    @property
    def to_matrix(self) -> bool:
        return is_one(self.args[0].cols)

    def remake(self, args, dim_map):
        return Diag.make(args[0])


class Norm(Node):
    """The Euclidean norm of a vector, the Frobenius norm of a matrix: sqrt(sum(X ** 2))."""

    __slots__ = ()

    @classmethod
    def make(cls, a: Node) -> "Norm":
        a = as_node(a)
        return cls._intern((a,), (), (ONE, ONE))

    def remake(self, args, dim_map):
        return Norm.make(args[0])


class Norm1(Node):
    """The entrywise 1-norm sum(abs(X)) (the l1 norm of a vector)."""

    __slots__ = ()

    @classmethod
    def make(cls, a: Node) -> "Norm1":
        a = as_node(a)
        return cls._intern((a,), (), (ONE, ONE))

    def remake(self, args, dim_map):
        return Norm1.make(args[0])


def _check_axis(name: str, a: Node, axis) -> None:
    if axis not in (None, 0, 1):
        raise UnsupportedError(f"{name} over axis {axis!r}: the axis must be 0, 1 or None")


class Softmax(Node):
    """softmax(X): exp(X) / sum(exp(X)) over all entries (axis None: a vector's softmax), over
    each column (axis 0: a batch of logit columns) or over each row (axis 1)."""

    __slots__ = ()

    @classmethod
    def make(cls, a: Node, axis: int | None = None) -> "Softmax":
        a = as_node(a)
        _check_axis("softmax", a, axis)
        return cls._intern((a,), (axis,), a.shape)

    @property
    def axis(self):
        return self.params[0]

    def remake(self, args, dim_map):
        return Softmax.make(args[0], self.axis)


class LogSumExp(Node):
    """logsumexp(X) = log(sum(exp(X))), over all entries or along an axis (shapes as ``sum``)."""

    __slots__ = ()

    @classmethod
    def make(cls, a: Node, axis: int | None = None) -> "LogSumExp":
        a = as_node(a)
        _check_axis("logsumexp", a, axis)
        shape = {None: (ONE, ONE), 0: (a.cols, ONE), 1: (a.rows, ONE)}[axis]
        return cls._intern((a,), (axis,), shape)

    @property
    def axis(self):
        return self.params[0]

    def remake(self, args, dim_map):
        return LogSumExp.make(args[0], self.axis)


class Einsum(Node):
    """A contraction with no matrix form, kept explicit: einsum("ij,jk->ik", A, B).

    Each operand has two subscript letters (its rows and columns); the output has two letters, or
    fewer for a vector (one letter, its rows) or a scalar (none).
    """

    __slots__ = ()

    @classmethod
    def make(cls, subscripts: Sequence[str], output: str, operands: Sequence[Node]) -> "Einsum":
        operands = tuple(as_node(o) for o in operands)
        subscripts = tuple(subscripts)
        if len(subscripts) != len(operands) or any(len(x) != 2 for x in subscripts):
            raise UnsupportedError("einsum needs two subscripts for each operand")
        sizes: dict[str, Dim] = {}
        for sub_, op in zip(subscripts, operands):
            for letter, d in zip(sub_, op.shape):
                if sizes.setdefault(letter, d) != d:
                    raise ShapeError(f"einsum subscript {letter!r} has sizes {sizes[letter]} and {d}")
        if len(output) > 2 or any(c not in sizes for c in output):
            raise UnsupportedError(f"bad einsum output {output!r}")
        shape = tuple(sizes[c] for c in output) + (ONE,) * (2 - len(output))
        return cls._intern(operands, (subscripts, output), shape)

    def remake(self, args, dim_map):
        return Einsum.make(self.params[0], self.params[1], args)

    @property
    def spec(self) -> str:
        return ",".join(self.params[0]) + "->" + self.params[1]


# ---------------------------------------------------------------------------------------------
# Conversions and builders with broadcasting
# ---------------------------------------------------------------------------------------------

#: Most digits in the numerator or denominator of a number in a constant (the parser's limit,
#: too): ``c = c * c + 1`` over and over would soon be a number too long to print.
MAX_CONSTANT_DIGITS = 1_000
_MAX_CONSTANT_BITS = MAX_CONSTANT_DIGITS * math.log2(10)


def to_number(value) -> sympy.Expr:
    """An exact SymPy number (or expression in dimensions) for a Python or SymPy scalar."""
    if isinstance(value, bool):
        raise MatcalcError(f"{value!r} is not a number matcalc accepts")
    if isinstance(value, numbers.Real) and not isinstance(value, (sympy.Basic, Fraction)):
        # NumPy's scalars too (a float32 as the float64 it widens to)
        value = int(value) if isinstance(value, numbers.Integral) else float(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise MatcalcError(f"{value!r} is not a finite number")
    if isinstance(value, (int, float, Fraction)):
        # a float as the decimal it prints as (0.1 is 1/10); float.__repr__, as NumPy 2 writes
        # its own float64 as np.float64(0.1)
        exact = Fraction(float.__repr__(value)) if isinstance(value, float) else Fraction(value)
        value = sympy.Rational(*exact.as_integer_ratio())
    if not isinstance(value, sympy.Expr):
        raise MatcalcError(f"{value!r} ({type(value).__name__}) is not a number or a matcalc "
                           f"expression")
    _check_size(value)
    if value.is_Rational:
        return value
    if value.has(sympy.zoo, sympy.oo, sympy.nan, -sympy.oo):
        raise MatcalcError(f"{value} is not a finite number")
    if any(not (s.is_integer and s.is_positive) for s in value.free_symbols):
        raise MatcalcError(f"constant {value} may involve only numbers and dimensions")
    # one canonical form, whichever way a constant was reached: 1 + 1/n is (n + 1)/n
    return canonical_number(value)


def _check_size(value: sympy.Expr) -> None:
    """Refuse a constant too large for SymPy to work on (before SymPy's own walks, which recurse
    and repeat shared parts) or holding a number with too many digits."""
    if not _within(value, MAX_CONSTANT_NODES, MAX_CONSTANT_DEPTH):
        raise ConstantTooLargeError(
            f"a constant of more than {MAX_CONSTANT_NODES} parts written out, or nested more than "
            f"{MAX_CONSTANT_DEPTH} levels deep, is more than matcalc keeps as one number")
    for number in value.atoms(sympy.Rational):
        if max(abs(number.p).bit_length(), number.q.bit_length()) > _MAX_CONSTANT_BITS:
            raise ConstantTooLargeError(f"a constant with more than {MAX_CONSTANT_DIGITS} "
                                        f"digits is too large")


#: Above this many terms (a bound, before expanding) a constant keeps the form it was built in,
#: and so does a constant of more parts and operations, or deeper, than these.
MAX_CANONICAL_TERMS = 512
MAX_CANONICAL_NODES = 400
MAX_CANONICAL_DEPTH = 48


@functools.lru_cache(maxsize=4096)
def canonical_number(value: sympy.Expr) -> sympy.Expr:
    """One form for a constant, however it was reached: the reduced quotient of polynomials.

    The polynomials' variables are the dimensions and every other part that is not a sum,
    product or integer power (``tanh(1)``, ``sqrt(2)``, with their own arguments made canonical
    first). Each part is swapped for a plain symbol before SymPy's ``cancel``, which then never
    evaluates a number numerically (on ``tanh(1)`` itself it may, for minutes), and swapped back:
    ``(4 - 4 tanh(1)**2) / (4 - 4 tanh(1)**2)`` is 1 and ``1 + 1/n`` is ``(n + 1)/n``.
    Exponentials of multiples of one base become integer powers of one root (``E`` and
    ``exp(1/2)`` are ``exp(1/2)**2`` and ``exp(1/2)``), fractional powers of one base integer
    powers of one root below its degree (``b**(3/2) = b sqrt(b)``, ``b**(-1/2) = sqrt(b) / b``).
    Swapping back may apply a relation between parts (``sqrt(2)**2 = 2``), so the form is
    reduced again until it no longer changes. A sum with roots in its denominator is not
    rationalised: such a number may keep more than one form. The polynomials are put together
    unevaluated (SymPy's evaluation asks questions of each sum that can take it long to answer).
    A constant larger than ``MAX_CANONICAL_NODES`` or deeper than ``MAX_CANONICAL_DEPTH``, or
    that might expand past ``MAX_CANONICAL_TERMS`` terms, keeps its form: still exact, only
    perhaps unequal in form to the same number reached another way.
    """
    for _ in range(4):
        small = _within(value, MAX_CANONICAL_NODES, MAX_CANONICAL_DEPTH)
        reduced = _reduce(value) if small else value
        if reduced == value:
            break
        value = reduced
    return value


def _within(value, nodes: float = math.inf, depth: float = math.inf) -> bool:
    """Has the SymPy expression ``value``, written out, at most ``nodes`` nodes, nested at most
    ``depth`` deep? A part used twice counts twice, as SymPy's own walks (which recurse) visit
    it twice: ``a = (a + 1) * (a + 2)`` ten times over is small as objects, huge written out.
    Each object is visited once here, and the walk stops as soon as an answer is known."""
    sizes: dict[int, tuple[int, int]] = {}        # id -> (nodes written out, depth)
    stack, visits = [(value, False)], 0
    while stack:
        node, ready = stack.pop()
        if id(node) in sizes:
            continue
        if not ready:
            visits += 1
            if visits > 4 * nodes:
                return False
            stack.append((node, True))
            stack.extend((arg, False) for arg in node.args if id(arg) not in sizes)
            continue
        parts = [sizes[id(arg)] for arg in node.args]
        size = 1 + sum(count for count, _ in parts)
        level = 1 + max((height for _, height in parts), default=0)
        if size > nodes or level > depth:
            return False
        sizes[id(node)] = size, level
    return True


def _reduce(value: sympy.Expr) -> sympy.Expr:
    parts: dict = {}                      # part -> its stand-in symbol
    powers: dict = {}                     # (exp or pow, base) -> {rational exponent: stand-in}
    polynomial = _as_polynomial(value, parts, powers, rebuild=True)
    roots = {}
    for (kind, base), exponents in powers.items():
        q = math.lcm(*(e.q for e in exponents))
        root = sympy.exp(base / q) if kind == "exp" else base ** sympy.Rational(1, q)
        if not (isinstance(root, sympy.exp) or root is sympy.E or root.is_Pow):
            q, root = 1, None                        # it folded (exp(log(2)/2)): no common root
        for e, stand_in in exponents.items():
            if root is None:
                part = sympy.exp(e * base) if kind == "exp" else base ** e
                roots[stand_in] = _as_polynomial(part, parts, None, rebuild=False)
            elif kind == "exp":
                roots[stand_in] = _power(parts.setdefault(root, sympy.Dummy()), int(e * q))
            else:             # root ** (k q + r) = base ** k * root ** r, with 0 <= r < q
                whole, rest = divmod(int(e * q), q)
                roots[stand_in] = sympy.Mul(
                    _power(_as_polynomial(base, parts, None, rebuild=False), whole),
                    _power(parts.setdefault(root, sympy.Dummy()), rest), evaluate=False)
    polynomial = _swap(polynomial, roots)
    if max(_term_bound(polynomial)) > MAX_CANONICAL_TERMS:
        return value
    # the parts' symbols are named in a fixed order of the parts (and before every dimension),
    # so that cancel, whose signs and order follow its symbols' names, gives one answer
    ordered = sorted(parts, key=sympy.default_sort_key)
    symbols = {parts[part]: sympy.Symbol(f"\x01{k:05d}") for k, part in enumerate(ordered)}
    reduced = sympy.cancel(sympy.together(_swap(polynomial, symbols)))
    return reduced.xreplace({symbols[parts[part]]: part for part in ordered})


def _power(base: sympy.Expr, exponent: int) -> sympy.Expr:
    return sympy.Pow(base, exponent, evaluate=False)


def _swap(polynomial: sympy.Expr, symbols: dict) -> sympy.Expr:
    """``polynomial`` (sums, products, integer powers) with its stand-ins swapped, unevaluated."""
    if polynomial in symbols:
        return symbols[polynomial]
    if polynomial.is_Add or polynomial.is_Mul or polynomial.is_Pow:
        return polynomial.func(*(_swap(arg, symbols) for arg in polynomial.args), evaluate=False)
    return polynomial


def _as_polynomial(value: sympy.Expr, parts: dict, powers: dict | None,
                   rebuild: bool) -> sympy.Expr:
    """``value`` with each part that is not a sum, product or integer power swapped for a symbol.

    With ``rebuild``, a part's own arguments are made canonical first, and should that fold it
    into a sum or product (``tanh(-x) = -tanh(x)``, ``sqrt(8) = 2 sqrt(2)``), the parts of that
    are taken as they are. An exponential stands for the product of its terms' exponentials
    (``exp(2 + x) = E**2 exp(x)``, which SymPy joins back into one), recorded in ``powers`` with
    a stand-in for each rational multiple of each base (without ``powers``, they are parts).
    """
    if value.is_Rational or value.is_Symbol:
        return value
    if value.is_Add or value.is_Mul:
        return value.func(*(_as_polynomial(arg, parts, powers, rebuild) for arg in value.args),
                          evaluate=False)
    if value.is_Pow and value.exp.is_Integer:
        return _power(_as_polynomial(value.base, parts, powers, rebuild), value.exp)
    if rebuild and value.args:
        args = tuple(canonical_number(arg) if isinstance(arg, sympy.Expr) else arg
                     for arg in value.args)
        if args != value.args:
            rebuilt = value.func(*args, evaluate=all(map(_small_argument, args)))
            return _as_polynomial(rebuilt, parts, powers, rebuild=False)
    if powers is None:
        multiples = []
    elif value is sympy.E:
        multiples = [("exp", sympy.Integer(1), sympy.Integer(1))]
    elif isinstance(value, sympy.exp):
        multiples = [("exp", base, coeff) for coeff, base in
                     (term.as_coeff_Mul() for term in sympy.Add.make_args(value.args[0]))]
    elif value.is_Pow and value.exp.is_Rational:
        multiples = [("pow", value.base, value.exp)]
    else:
        multiples = []
    if not multiples or not all(coeff.is_Rational for _, _, coeff in multiples):
        return parts.setdefault(value, sympy.Dummy())
    return sympy.Mul(*(powers.setdefault((kind, base), {}).setdefault(coeff, sympy.Dummy())
                       for kind, base, coeff in multiples), evaluate=False)


def _term_bound(value: sympy.Expr) -> tuple[int, int]:
    """Bounds on the numbers of terms of ``value``'s numerator and denominator, over a common
    denominator and expanded (each capped just above ``MAX_CANONICAL_TERMS``)."""
    cap = MAX_CANONICAL_TERMS + 1
    if value.is_Add:
        bounds = [_term_bound(arg) for arg in value.args]
        denominator = math.prod(d for _, d in bounds)
        numerator = sum(n * denominator // d for n, d in bounds)
        return min(numerator, cap), min(denominator, cap)
    if value.is_Mul:
        bounds = [_term_bound(arg) for arg in value.args]
        return (min(math.prod(n for n, _ in bounds), cap),
                min(math.prod(d for _, d in bounds), cap))
    if value.is_Pow and value.exp.is_Integer:
        numerator, denominator = _term_bound(value.base)
        k = abs(int(value.exp))
        if value.exp < 0:
            numerator, denominator = denominator, numerator
        # a sum of t terms to the k-th power has at most C(t + k - 1, k) terms
        return (min(math.comb(numerator + k - 1, k), cap) if numerator > 1 else 1,
                min(math.comb(denominator + k - 1, k), cap) if denominator > 1 else 1)
    return 1, 1


def as_node(value) -> Node:
    """A node for ``value``: nodes pass through, numbers become constants."""
    if isinstance(value, Node):
        return value
    return Const.make(value)


def _broadcast_pair(op: str, a: Node, b: Node) -> tuple[Node, Node]:
    if a.shape == b.shape:
        return a, b
    if _broadcasts_to(a, b.shape):
        return Broadcast.make(a, *b.shape), b
    if _broadcasts_to(b, a.shape):
        return a, Broadcast.make(b, *a.shape)
    for col, row in ((a, b), (b, a)):           # a column against a row: both repeat (NumPy)
        if is_one(col.cols) and is_one(row.rows) and not col.is_scalar and not row.is_scalar:
            shape = (col.rows, row.cols)
            pair = (Broadcast.make(a, *shape), Broadcast.make(b, *shape))
            return pair
    raise _shape_error(op, a, b, "they neither match nor broadcast (a scalar, an n×1 column or "
                                 "a 1×m row broadcasts against an n×m matrix)")


def _broadcasts_to(a: Node, shape: Shape) -> bool:
    rows, cols = shape
    if a.is_scalar:
        return True
    return (a.rows == rows and is_one(a.cols)) or (is_one(a.rows) and a.cols == cols)


def ones(rows, cols=1) -> Node:
    """The all-ones matrix (a vector when ``cols`` is 1): the constant 1 broadcast."""
    rows, cols = dim(rows), dim(cols)
    one = Const.make(1)
    return one if is_one(rows) and is_one(cols) else Broadcast.make(one, rows, cols)


def zeros(rows, cols=1) -> Node:
    """The zero matrix: the constant 0 broadcast (the constant 0 itself for a scalar)."""
    rows, cols = dim(rows), dim(cols)
    zero = Const.make(0)
    return zero if is_one(rows) and is_one(cols) else Broadcast.make(zero, rows, cols)


def constant_value(node: Node):
    """The number a constant, or a broadcast constant, stands for; None for anything else."""
    if isinstance(node, Broadcast):
        node = node.args[0]
    return node.value if isinstance(node, Const) else None


def is_ones(node: Node) -> bool:
    return constant_value(node) == 1


#: Constants larger written out, or nested deeper, than this are not combined further (SymPy's
#: own walks recurse and repeat shared parts): ``c * c + 1`` a thousand times over stays a
#: thousand operations on constants.
MAX_CONSTANT_NODES = 2_000
MAX_CONSTANT_DEPTH = 64


def _manageable(value: sympy.Expr) -> bool:
    return _within(value, MAX_CONSTANT_NODES, MAX_CONSTANT_DEPTH)


def _fold(op: str, a: Node, b: Node):
    """Two constants combine into one constant (exactly); None when they are not both constants
    or their combination would be too large (``MAX_CONSTANT_NODES``, ``MAX_CONSTANT_DEPTH``)."""
    if not (isinstance(a, Const) and isinstance(b, Const)):
        return None
    x, y = a.value, b.value
    if op == "/" and y == 0:
        raise MatcalcError("division by zero")
    value = {"+": x + y, "-": x - y, "*": x * y, "/": x / y}[op]
    return Const.make(value) if _manageable(value) else None


def add(a, b) -> Node:
    """``a + b`` with broadcasting."""
    a, b = as_node(a), as_node(b)
    return _fold("+", a, b) or Add.make(*_broadcast_pair("A + B", a, b))


def sub(a, b) -> Node:
    """``a - b`` with broadcasting."""
    a, b = as_node(a), as_node(b)
    return _fold("-", a, b) or Sub.make(*_broadcast_pair("A - B", a, b))


def mul(a, b) -> Node:
    """Elementwise ``a * b`` with broadcasting (a scalar times a matrix is a scalar multiple).

    ``x * ones(n, m)`` with x a scalar, column or row is x broadcast to n x m.
    """
    a, b = as_node(a), as_node(b)
    folded = _fold("*", a, b)
    if folded is not None:
        return folded
    for x, y in ((a, b), (b, a)):
        if is_ones(y) and x.shape != y.shape and _broadcasts_to(x, y.shape):
            return Broadcast.make(x, *y.shape)
    return Mul.make(*_broadcast_pair("A * B", a, b))


def div(a, b) -> Node:
    """Elementwise ``a / b`` with broadcasting."""
    a, b = as_node(a), as_node(b)
    return _fold("/", a, b) or Div.make(*_broadcast_pair("A / B", a, b))


#: Elementwise functions folded when applied to a constant: exp(2), sqrt(d), log(m).
_FOLDABLE = {"exp": sympy.exp, "log": sympy.log, "sqrt": sympy.sqrt, "sin": sympy.sin,
             "cos": sympy.cos, "tanh": sympy.tanh, "abs": sympy.Abs, "sign": sympy.sign}


#: A function of a constant with more parts than this is not folded: building it, SymPy asks
#: questions about the argument (is it negative? zero?) that can take it minutes to answer.
MAX_FOLDED_ARGUMENT = 32


def _small_argument(value) -> bool:
    """Is ``value`` (a constant) small enough that SymPy may build a function of it freely?"""
    return not isinstance(value, sympy.Expr) or _within(value, nodes=MAX_FOLDED_ARGUMENT)


def apply(name: str, a) -> Node:
    """``name(a)`` elementwise; a function of a constant is a constant (sqrt(d), exp(2)), unless
    the constant is large (``MAX_FOLDED_ARGUMENT``)."""
    a = as_node(a)
    if isinstance(a, Const) and name in _FOLDABLE and _small_argument(a.value):
        value = a.value
        # sqrt folds where ** (1/2) does (the text printer writes either as sqrt)
        defined = not ((name == "log" and not value.is_positive) or
                       (name == "sqrt" and value.is_negative))
        if defined:
            return Const.make(_FOLDABLE[name](value))
    return Apply.make(name, a)


def neg(a) -> Node:
    """``-a`` (a constant is negated in place)."""
    a = as_node(a)
    return Const.make(-a.value) if isinstance(a, Const) else Neg.make(a)


def power(a, exponent) -> Node:
    """Elementwise ``a ** exponent`` for a numeric exponent (a constant is raised in place)."""
    a = as_node(a)
    if isinstance(a, Const):
        p = exponent.value if isinstance(exponent, Const) else to_number(exponent)
        if a.value == 0 and (p.is_negative or p == 0):
            raise MatcalcError(f"0 ** {p} is undefined")
        if not p.is_integer and not _small_argument(a.value):
            return Pow.make(a, p)                  # as apply leaves sqrt of a large constant
        if a.value.is_number and a.value.is_negative and not p.is_integer:
            raise MatcalcError(f"({a.value}) ** {p} is not a real number")
        value = a.value ** p
        return Const.make(value) if _manageable(value) else Pow.make(a, p)
    return Pow.make(a, exponent)


# ---------------------------------------------------------------------------------------------
# Traversal
# ---------------------------------------------------------------------------------------------

def postorder(roots: Iterable[Node]) -> list[Node]:
    """Every node reachable from ``roots``, operands before their users, each once.

    Iterative and deterministic (operands visited left to right).
    """
    seen: set[int] = set()
    order: list[Node] = []
    for root in roots:
        if id(root) in seen:
            continue
        stack: list[tuple[Node, int]] = [(root, 0)]
        seen.add(id(root))
        while stack:
            node, i = stack[-1]
            if i < len(node.args):
                stack[-1] = (node, i + 1)
                child = node.args[i]
                if id(child) not in seen:
                    seen.add(id(child))
                    stack.append((child, 0))
            else:
                stack.pop()
                order.append(node)
    return order


def contains(node: Node, target: Node) -> bool:
    """Whether ``target`` is ``node`` or one of the nodes it is built from."""
    return any(n is target for n in postorder([node]))


def substitute(roots: Sequence[Node], node_map: dict, dim_map: dict | None = None) -> list[Node]:
    """Rebuild ``roots`` with nodes replaced (``node_map``, keyed by node) and dimensions replaced.

    Shapes are re-checked as the nodes are rebuilt.
    """
    dim_map = dim_map or {}
    done: dict[int, Node] = {}
    for node in postorder(roots):
        if node in node_map:
            done[id(node)] = node_map[node]
            continue
        new_args = tuple(done[id(a)] for a in node.args)
        if not dim_map and all(x is y for x, y in zip(new_args, node.args)):
            done[id(node)] = node
        else:
            done[id(node)] = node.remake(new_args, dim_map)
    return [done[id(r)] for r in roots]


def variables(roots: Iterable[Node]) -> list[Var]:
    """The variables in ``roots``, in first-use order."""
    return [n for n in postorder(roots) if isinstance(n, Var)]


def dimensions(roots: Iterable[Node]) -> list[sympy.Symbol]:
    """The symbolic dimensions used anywhere in ``roots``, in first-use order."""
    found: dict[sympy.Symbol, None] = {}          # insertion-ordered, with constant-time lookup
    for node in postorder(roots):
        exprs = list(node.shape)
        if isinstance(node, Const):
            exprs.append(node.value)
        for e in exprs:
            for s in sorted(e.free_symbols, key=lambda s: s.name):
                found.setdefault(s, None)
    return list(found)
