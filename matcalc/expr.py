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
- Here are the leaves and the algebra Python's operators build (``@ .T + - * / ** -x`` and the
  broadcasts they insert, and the generic elementwise ``Apply``); every other operation's node
  class is in its stanza in ``matcalc.ops``, which also holds what each operation means.
"""

from __future__ import annotations

import keyword
import operator
import re
import weakref
from typing import Callable, Iterable, Sequence

import sympy

from .dims import ONE, Dim, Shape, dim, format_shape, is_one
from .constants import manageable, small_argument, to_number
from .errors import MatcalcError, ShapeError, UnsupportedError

_TABLE: "weakref.WeakValueDictionary" = weakref.WeakValueDictionary()

#: What a variable's values are: any real numbers; positive entries; a symmetric positive
#: definite matrix; an invertible matrix; a probability vector (or a matrix whose columns are);
#: a matrix whose rows are probability vectors (a batch of distributions, one per row); a
#: symmetric matrix; labels in {0, 1} (binary: y ** 2 = y); labels in {-1, +1} (sign:
#: y ** 2 = 1).
#: A domain never changes what a gradient means (it is over unconstrained entries); it tells the
#: simplifier what it may assume (X.T = X for spd, sum(p) = 1) and the check what to draw.
DOMAINS = ("real", "positive", "spd", "invertible", "probability", "probability_rows",
           "symmetric", "binary", "sign")
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


_converters: dict[str, Callable[["Node"], object]] = {}


def set_converter(target: str, func: Callable[["Node"], object]) -> None:
    """Install how a node converts to another library (``matcalc.sympy_bridge`` installs
    "sympy"), as ``set_describer`` does for error messages."""
    _converters[target] = func


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
        """The transpose; ``x.T.T`` of a column ``x`` is ``x`` itself (a column has one 2-D
        reading in the Python API; text keeps ``v.T.T`` to make a 1-D value a 2-D column)."""
        if isinstance(self, Transpose) and is_one(self.rows) and is_one(self.args[0].cols):
            return self.args[0]
        return Transpose.make(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {describe(self)} : {format_shape(self.shape)}>"

    def __str__(self) -> str:
        return describe(self, limit=10**9)

    def to_sympy(self):
        """This expression as an equal SymPy matrix expression (a number for some scalars).

        >>> X = Var.make("X", ("n", "n")); (X @ X.T).to_sympy()
        X*X.T
        """
        convert = _converters.get("sympy")
        if convert is None:
            raise UnsupportedError("SymPy conversion comes with the API: use mc.to_sympy, or "
                                   "import matcalc.api first")
        return convert(self)

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
        if domain in ("spd", "invertible", "symmetric") and rows != cols:
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
    if keyword.iskeyword(name):
        raise MatcalcError(f"{name!r} is a Python keyword; choose another name")


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


def _kept_column(node: Node) -> bool:
    """``x.T.T`` of an n x 1 ``x``: how text keeps a 1-D value a 2-D column (``keepdims=True``,
    see ``matcalc.reading``). Its value is x's; repeated across columns nothing is left for it
    to say, so ``Broadcast`` drops it (one canonical node)."""
    return (isinstance(node, Transpose) and isinstance(node.args[0], Transpose)
            and is_one(node.cols) and not is_one(node.rows))


def unkept(node: Node) -> Node:
    """``x`` for ``x.T.T`` of an n x 1 ``x`` (see ``_kept_column``); any other node itself."""
    return node.args[0].args[0] if _kept_column(node) else node


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
    """An elementwise function f(A): exp, log, tanh, relu, ... (the table of functions is
    ``matcalc.ops.elementwise``; build through ``ops.elementwise.apply``, which checks the name
    and folds functions of constants)."""

    __slots__ = ()

    @classmethod
    def make(cls, name: str, a: Node) -> "Apply":
        if not isinstance(name, str) or not _IDENT.match(name):
            raise UnsupportedError(f"{name!r} cannot name an elementwise function")
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
        if not is_one(cols):
            a = unkept(a)
        return cls._intern((a,), (rows, cols), (rows, cols))

    def remake(self, args, dim_map):
        return Broadcast.make(args[0], self.params[0].xreplace(dim_map),
                              self.params[1].xreplace(dim_map))


# ---------------------------------------------------------------------------------------------
# Conversions and builders with broadcasting
# ---------------------------------------------------------------------------------------------

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


def is_zero(node: Node) -> bool:
    """A zero constant, or a zero constant broadcast."""
    return constant_value(node) == 0


def scalar_factor(node: Node):
    """For a scalar multiple ``Mul(Broadcast(s), A)`` (or s * A with s 1x1), (s, A); else None."""
    if isinstance(node, Mul):
        a, b = node.args
        if isinstance(a, Broadcast) and a.args[0].is_scalar:
            return a.args[0], b
        if a.is_scalar and b.is_scalar and isinstance(a, Const):
            return a, b
    return None


_ARITHMETIC = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}


def _fold(op: str, a: Node, b: Node):
    """Two constants combine into one constant (exactly); None when they are not both constants
    or their combination would be too large (``MAX_CONSTANT_NODES``, ``MAX_CONSTANT_DEPTH``)."""
    if not (isinstance(a, Const) and isinstance(b, Const)):
        return None
    x, y = a.value, b.value
    if op == "/" and y == 0:
        raise MatcalcError("division by zero")
    value = _ARITHMETIC[op](x, y)       # only the one asked for: each is SymPy arithmetic
    return Const.make(value) if manageable(value) else None


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
        if not p.is_integer and not small_argument(a.value):
            return Pow.make(a, p)                  # as apply leaves sqrt of a large constant
        if a.value.is_number and a.value.is_negative and not p.is_integer:
            raise MatcalcError(f"({a.value}) ** {p} is not a real number")
        value = a.value ** p
        return Const.make(value) if manageable(value) else Pow.make(a, p)
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


def with_args(node: Node, args: tuple) -> Node:
    """``node`` over the operands ``args``: ``node`` itself when they are its own (nothing
    rebuilt), else rebuilt (shapes re-checked)."""
    return node if all(x is y for x, y in zip(args, node.args)) else node.remake(args, {})


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
        done[id(node)] = node.remake(new_args, dim_map) if dim_map else with_args(node, new_args)
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
