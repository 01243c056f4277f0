"""NumPy source: a self-contained Python function computing one or more expressions.

Contract: ``numpy_source(outputs, inputs, ...)`` returns the text of a function that takes the
input variables as arguments (vectors as 1-D arrays, scalars as numbers, matrices as 2-D arrays),
computes every output, and returns each in the form of its variable (or a tuple of them). Inside,
every value is a 2-D array (vectors are columns, scalars 1 x 1), so NumPy broadcasting does what
matcalc's explicit broadcasts mean. A value used once is written inline; a value used twice or
more is computed once and named (the tinygrad rule), counting a value printed inside another
that is printed twice (the operand of a broadcast used twice). Generated names never collide
with the user's variable or dimension names. The imports are numpy, and math for constants.

Arguments come in the order of ``inputs`` (the declaration's). They are taken in cheaply: an
ndarray of a floating type passes as it is (two attribute reads), anything else goes through
a helper (integers become float64, non-numbers are refused naming the argument); each shape is
compared with its declaration, the error naming the argument, its declared shape and the sizes
the other arguments fixed. The dtype is kept: constants are Python numbers (``math.sqrt(d)``,
never ``np.sqrt(d)``, a float64 scalar that would promote float32), a scalar argument takes the
arrays' floating type, and a scalar result is a NumPy scalar of that type.

The code is what a careful engineer writes by hand: every operation in the numerically stable
form its stanza spells (``matcalc.ops``: sigmoid, softplus, log1p, a shifted exponential for
normalisers, ``slogdet`` for log |det|), and in a matrix product chain ``diag(v) @ B`` as ``v * B`` (``B @ diag(v)`` as ``B * v.T``), ``ones @ B`` as a column
sum, ``inv(A) @ B`` as ``solve(A, B)`` (when the inverse is not needed elsewhere), three or more
factors as ``linalg.multi_dot`` (which picks the cheapest order at run time), ``G * step(h)`` as
``where(h > 0, G, 0.0)`` and ``trace(A @ B)`` as ``sum(A * B.T)``. Fewer passes over memory: a
broadcast value meets a full-size operand as the row, column or number it repeats (no
``broadcast_to`` copy), ``c * (A @ B)`` scales the smallest of A, B and the product (a helper
decides at run time), ``sum(x * y, axis=1)`` and ``sum(x ** 2)`` are einsums with no product
array, and a factor constant along a summed axis is taken outside the sum. Fewer arrays: a
value computed from a temporary the code made and reads no more is written into that
temporary's array (``update_dead_temporaries``; portable code under NumPy only), and
``G * step(h)`` for a product G just made masks G in place.

With ``portable=True`` the printer writes for an array namespace given at run time (``xp``,
NumPy by default): only functions that NumPy, PyTorch and JAX share, with the array-API
standard's spellings where they agree (``reshape(x, shape)``, ``sum(x, axis=(0, 1))``,
``where``), and small helper functions in the generated module where they do not (relu, step,
softplus, normalisers, einsum, input conversion).

A stanza's NumPy spelling function (``spelling(printer, node, args)``) may use the printer's
``np`` (the namespace's name), ``portable``, ``array(arg)`` (an operand where NumPy needs an
array), ``helper(name, template)`` and ``call(name, template, *args)`` (a helper function the
module defines once), ``reshape(text, shape)``, ``all_axes()`` and ``untransposed`` (the text of
a value whose transpose it printed).

``compile_module`` is the one place where generated source is executed.
"""

from __future__ import annotations

import ast
import builtins
import functools
import keyword
import math
import re
import types
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

import sympy

from .. import expr as E
from ..dims import is_one
from ..errors import UnsupportedError
from ..ops import operation_of
from ..ops.elementwise import derivative_of_user_function
from ..ops.base import ADD, ATOM, MUL, POSTFIX, POW, UNARY
from ..ops.contractions import Sum, pull_constant_factors
from ..ops.linalg import Diag, Inv
from .base import Printed, Printer, bare_broadcasts

# X + X.T. When rows are a multiple of 2 KiB apart (n = 512, 1024, 2048, ... in float32), the
# column reads of X.T fall in one or two sets of the L1 cache (and few of L2): NumPy's plain sum
# is then 1.7-3.5x slower than copying 256-byte bands of columns first (docs/benchmarks.md).
SYMMETRIC_SUM = """def {name}(x):
    \"\"\"x + x.T for a square x, entry for entry; x.T read by bands when x's rows are a multiple
    of 2 KiB apart (its columns then thrash the cache).\"\"\"
    n = x.shape[0]
    if n < 256 or x.shape != (n, n) or x.strides[0] % 2048:
        return x + x.T
    out = {np}.empty((n, n), x.dtype)
    step = max(1, 256 // x.itemsize)        # 64 float32 or 32 float64 columns at a time
    for i in range(0, n, step):
        band = {np}.ascontiguousarray(x[:, i:i + step])
        {np}.add(x[i:i + step], band.T, out=out[i:i + step])
    return out
"""

# c * (A @ B) for a number c: the number meets the smallest of A, B and their product.
SCALED_PRODUCT = """def {name}(c, a, b):
    \"\"\"c * (a @ b) for a number c, scaling the smallest of a, b and their product.\"\"\"
    rows, inner = a.shape
    cols = b.shape[1]
    if rows * cols <= inner * min(rows, cols):
        return c * (a @ b)
    return (c * a) @ b if rows <= cols else a @ (c * b)
"""

# the same where a is a temporary of the caller's that nothing reads afterwards: scaled in
# place when it is the smallest (NumPy arrays only: the portable form asks its namespace)
SCALED_OWN_PRODUCT = """def {name}(c, a, b):
    \"\"\"c * (a @ b) for a number c, scaling the smallest of a, b and their product; a is the
    caller's own array, read no more: scaled in place.\"\"\"
    rows, inner = a.shape
    cols = b.shape[1]
    if rows * cols <= inner * min(rows, cols):
        return c * (a @ b)
    if rows <= cols:
        a *= c
        return a @ b
    return a @ (c * b)
"""
PORTABLE_SCALED_OWN_PRODUCT = """def {name}(xp, c, a, b):
    \"\"\"c * (a @ b) for a number c, scaling the smallest of a, b and their product; a is the
    caller's own array, read no more: under NumPy scaled in place.\"\"\"
    rows, inner = a.shape
    cols = b.shape[1]
    if rows * cols <= inner * min(rows, cols):
        return c * (a @ b)
    if rows <= cols:
        if xp is {numpy}:
            a *= c
            return a @ b
        return (c * a) @ b
    return a @ (c * b)
"""

# c - x for a number c and an array x that the expression has just made (x ** 2): in place.
NUMBER_MINUS = """def {name}(c, x):
    \"\"\"c - x, written over x (a fresh array of the caller's expression, never an input).\"\"\"
    return {np}.subtract(c, x, out=x)
"""

# a temporary updated in place in portable code: NumPy's array is the code's own, other
# namespaces' arrays are copied first (JAX's are immutable; torch's autograd may hold them)
OWN = """def {name}(xp, a):
    \"\"\"a, for the code to update in place: under NumPy the array itself (the code made it
    and reads it no more), in another namespace a copy.\"\"\"
    return a if xp is {numpy} else xp.asarray(a, copy=True)
"""

# G * step(h) for a product G the expression has just made: G times the mask h > 0, in place
# (np.where, and copyto with a where= mask, take 3-4 times as long on a mask with no pattern)
_KEEP_POSITIVE_BODY = """    on = h > 0
    with {np}.errstate(invalid="ignore"):
        x *= on
    if {np}.isnan(x.sum()):      # inf * 0 or nan * 0 where h is not positive: 0 there, as where
        {np}.copyto(x, 0.0, where=~on)
    return x
"""
KEEP_POSITIVE = """def {name}(h, x):
    \"\"\"x where h > 0, else 0, as where(h > 0, x, 0.0), written over x (a fresh array of the
    caller's expression, of h's shape, never an input).\"\"\"
""" + _KEEP_POSITIVE_BODY
PORTABLE_KEEP_POSITIVE = """def {name}(xp, h, x):
    \"\"\"x where h > 0, else 0, as where(h > 0, x, 0.0); under NumPy written over x (a fresh
    array of the caller's expression, of h's shape, never an input).\"\"\"
    if xp is not {numpy}:
        return xp.where(h > 0, x, 0.0)
""" + _KEEP_POSITIVE_BODY.replace("{np}", "{numpy}")

# -- taking the arguments in -------------------------------------------------------------------
AS_FLOAT = """def {name}(label, x):
    \"\"\"x as an array of a floating type (integers and booleans become float64).\"\"\"
    a = {np}.asarray(x)
    if a.dtype.kind in "fc":
        return a
    if a.dtype.kind in "biuO":
        try:
            return a.astype({np}.float64)
        except (TypeError, ValueError):
            pass
    raise TypeError(f"{{label}}: expected an array of numbers, got {{a.dtype}}")
"""
# (portable code takes the common type from common_dtype, torch's result_type taking two)
SAME_DTYPE = """def {name}(*arrays):
    \"\"\"The arrays in their common floating type (float32 with float64: float64).\"\"\"
    dtype = {np}.result_type(*arrays)
    return tuple(a.astype(dtype, copy=False) for a in arrays)
"""
SHAPE_ERROR = """def {name}(declared, arrays):
    \"\"\"The error naming the first argument whose shape is not the declared one.\"\"\"
    sizes = {{}}
    for (label, dims), a in zip(declared, arrays):
        shape, known = tuple(a.shape), dict(sizes)
        fits = len(shape) == len(dims) or not dims and a.size == 1
        for d, s in zip(dims, shape):
            fits = fits and (d if isinstance(d, int) else known.setdefault(d, s)) == s
        if not fits:
            said = "(" + ", ".join(map(str, dims)) + ("," if len(dims) == 1 else "") + ")"
            values = tuple(sizes.get(d, d) for d in dims)
            if values != dims and all(isinstance(v, int) for v in values):
                said += f" = {{values}}"
            return ValueError(f"{{label}}: expected shape {{said}}, got {{shape}}")
        sizes = known
    return ValueError(f"the shapes {{[tuple(a.shape) for a in arrays]}} do not fit {{declared}}")
"""

# -- helpers of portable code: each takes the array namespace xp first -------------------------
# (torch's result_type takes two arguments; the operations' own helpers are in their stanzas)
PORTABLE_AS_FLOAT = """def {name}(xp, value):
    \"\"\"value as an array of xp; float32 stays float32, anything else becomes float64.\"\"\"
    value = xp.asarray(value)
    if value.dtype in (xp.float32, xp.float64):
        return value
    return xp.asarray(value, dtype=xp.float64)
"""
PORTABLE_SUM_OF_PRODUCT = """def {name}(xp, a, b, axis):
    \"\"\"The sum of a * b along axis (None: of every entry), kept 2-D: an einsum where the
    namespace has one (no product array is made), else a sum of the product.\"\"\"
    if hasattr(xp, "einsum"):
        out = {{None: "", 0: "j", 1: "i"}}[axis]
        shape = {{None: (1, 1), 0: (1, -1), 1: (-1, 1)}}[axis]
        return xp.reshape(xp.einsum("ij,ij->" + out, a, b), shape)
    return xp.sum(a * b, axis=(0, 1) if axis is None else axis, keepdims=True)
"""
# sum(a * b * w, axis) with w a vector along the summed axis: einsum's loop for three
# operands has no vector instructions (about 1.2 ms for 2048 x 1024 in float32, against 0.5 ms
# this way); here a block of rows of a * b, small enough to stay in cache, meets w in BLAS
WEIGHTED_SUM = """def {name}(a, b, w, axis):
    \"\"\"The sum of a * b * w along axis, w a vector along it (b None: of a * w), 1-D: w
    against a block of rows of a * b at a time, so that the block stays in cache.\"\"\"
    if b is None:
        return w @ a if axis == 0 else a @ w
    rows = max(1, 131072 // max(1, a.shape[1]))
    if a.shape[0] <= rows:                  # one block: the whole of a * b
        return w @ (a * b) if axis == 0 else (a * b) @ w
    if axis == 0:
        out = w[:rows] @ (a[:rows] * b[:rows])
        for k in range(rows, a.shape[0], rows):
            out += w[k:k + rows] @ (a[k:k + rows] * b[k:k + rows])
        return out
    out = {np}.empty(a.shape[0], {np}.result_type(a, b, w))
    for k in range(0, a.shape[0], rows):
        out[k:k + rows] = (a[k:k + rows] * b[k:k + rows]) @ w
    return out
"""
PORTABLE_DTYPE = """def {name}(*arrays):
    \"\"\"The floating type the arrays promote to (as adding them would; torch's result_type
    takes two arguments only).\"\"\"
    total = arrays[0][:0, :0]
    for a in arrays[1:]:
        total = total + a[:0, :0]
    return total.dtype
"""


class Names:
    """Allocates identifiers that avoid the user's names, Python keywords and builtins."""

    def __init__(self, reserved):
        self.taken = set(reserved) | set(keyword.kwlist) | set(dir(builtins))
        self.next: dict[str, int] = {}       # the next suffix to try, per wanted name

    def get(self, wanted: str) -> str:
        k = self.next.get(wanted, 0)
        name = wanted if k == 0 else f"{wanted}_{k}"
        while name in self.taken:
            k += 1
            name = f"{wanted}_{k}"
        self.next[wanted] = k + 1
        self.taken.add(name)
        return name


@dataclass(frozen=True)
class Output:
    """An expression to return, and the form to return it in ("matrix", "vector", "scalar")."""

    node: E.Node
    kind: str = "matrix"


@dataclass(frozen=True)
class _Factor:
    """One factor of a matrix product chain: printed text, precedence, shape, and its node
    (None once the factor has been rewritten, e.g. ``v * B`` for ``diag(v) @ B``)."""

    text: str
    prec: int
    shape: tuple
    node: E.Node | None
    view: bool = False        # a read-only broadcast view


@functools.lru_cache(maxsize=4096)
def _python_code(value: sympy.Expr) -> str:
    """SymPy's Python spelling of a constant in dimensions (math module functions), kept: the
    same constants recur in every derivation and SymPy's printer is slow."""
    return sympy.pycode(value, fully_qualified_modules=True)


class NumpyPrinter(Printer):
    """Print nodes as NumPy expressions, naming shared intermediates as assignment statements.

    ``np`` is the name of the array namespace in the generated code; ``hints`` maps node ids to
    the name wanted for that node when it is named (default ``t``); ``helpers`` (name -> source)
    may be shared between printers writing one module.
    """

    name = "NumPy"
    expands = False
    MAX_INLINE_DEPTH = 40     # deeper inline expressions are split, for Python's own parser

    def __init__(self, np: str, local: dict, named: set, names: Names, portable: bool = False,
                 hints: dict | None = None, helpers: dict | None = None,
                 numpy_name: str = "numpy", dtype: str | None = None,
                 math_name: str | None = None):
        self.np, self.local, self.named, self.names = np, local, named, names
        self.portable = portable
        self.hints = hints or {}
        self.numpy_name = numpy_name         # the module's name for numpy (portable code)
        self.lines: list[str] = []
        self.statements: list[tuple[str, E.Node]] = []    # (name, node) of each line so far
        self.constant: dict[int, bool] = {}      # node id -> made of constants only
        self.helpers: dict[str, str] = {} if helpers is None else helpers
        self.dtype = dtype or names.get("dtype")     # the inputs' floating type, for new arrays
        self.uses_dtype = False
        self.math = math_name                  # the name of the math module (portable code)
        self.uses_math = False
        self.chains: dict[int, list[_Factor]] = {}
        # for a node printed as "X.T": X and its precedence, so a transpose of it prints X
        self.untransposed: dict[int, tuple[str, int]] = {}
        self.views: set[int] = set()           # nodes printed as read-only broadcast views
        self.flat: dict[int, str] = {}         # vectors printed as a 1-D text made a column
        self.checked: list = []                # the arguments whose shapes the code checks
        self.bare: dict[int, Printed] = {}     # node id -> the smaller value it repeats
        self.bare_shape: dict[int, tuple[bool, bool]] = {}   # (one row, one column) of it

    def print_all(self, roots):
        done: dict[int, Printed] = {}
        depth: dict[int, int] = {}
        self.done = done
        constant = self.constant
        for n in E.postorder(roots):
            args = [done[id(a)] for a in n.args]
            constant[id(n)] = not isinstance(n, E.Var) and all(constant[id(a)] for a in n.args)
            self.current = n
            text, prec = self._method(n)(n, args)
            self._note_bare(n, args)
            depth[id(n)] = 1 + max((depth[id(a)] for a in n.args), default=0)
            if depth[id(n)] > self.MAX_INLINE_DEPTH and n.args:
                self.named.add(id(n))
                self.bare.pop(id(n), None)
            if id(n) in self.named:
                depth[id(n)] = 0
                var = self.names.get(self.hints.get(id(n), "t"))
                self.lines.append(f"{var} = {text}")
                self.statements.append((var, n))
                text, prec = var, ATOM
            done[id(n)] = Printed(n, text, prec)
        return [done[id(r)] for r in roots]

    def wrap(self, arg: Printed, min_prec: int) -> str:
        return arg.text if arg.prec >= min_prec else f"({arg.text})"

    def number(self, value: sympy.Expr) -> tuple[str, int]:
        if value.is_Symbol:                    # a dimension: its name in the code
            return self.local[value.name], ATOM
        value = value.xreplace({s: sympy.Symbol(self.local[s.name]) for s in value.free_symbols})
        if value.is_Rational and max(abs(value.p), value.q) > 2 ** 53:
            # an integer this long would meet a float and overflow (10**400 * x): write the
            # nearest float64, or refuse one beyond its range
            try:
                nearest = float(Fraction(value.p, value.q))
            except OverflowError:
                raise UnsupportedError(f"the constant {value} is beyond the range of float64; "
                                       f"generated code cannot hold it") from None
            return repr(nearest), (UNARY if nearest < 0 else ATOM)
        if value.is_Integer:
            return str(value), (UNARY if value < 0 else ATOM)
        if value.is_Rational:
            return f"{value.p} / {value.q}", MUL      # -1 / 2 is (-1) / 2: outermost operator /
        # sqrt(d), exp(2): SymPy writes them with the math module, and they stay Python numbers:
        # np.sqrt(d) would be a float64 NumPy scalar, which promotes float32 arrays (NEP 50), and
        # torch.sqrt takes no int.
        if not value.free_symbols:
            # a number such as tanh(1) or exp(2): its float64 value, rounded once by SymPy (a
            # Python float, which never promotes; beyond float64's range, inf as NumPy has it)
            nearest = float(value)
            text = repr(nearest) if math.isfinite(nearest) else f"{self.module}.{abs(nearest)}"
            if nearest < 0 and not text.startswith("-"):
                text = "-" + text
            return text, (UNARY if nearest < 0 else ATOM)
        text = _python_code(value)
        if "math." in text:
            if self.math is None:
                self.math = self.names.get("math")
            self.uses_math = True
            text = text.replace("math.", f"{self.math}.")
        return text, (ATOM if value.is_Symbol else ADD)

    @property
    def module(self) -> str:
        """The generated code's name for NumPy itself (also in portable code)."""
        return self.numpy_name if self.portable else self.np

    def typed(self) -> str:
        """The dtype= argument for arrays the code creates (float32 inputs stay float32)."""
        self.uses_dtype = True
        return f"dtype={self.dtype}"

    def array(self, arg: Printed) -> str:
        """An operand where NumPy needs an array: a constant becomes a 1 x 1 array (so does a
        scalar made of constants only, such as sigmoid(0), which prints as a number)."""
        if isinstance(arg.node, E.Const) or arg.node.is_scalar and \
                self.constant.get(id(arg.node), False):
            return f"{self.np}.full((1, 1), {arg.text}, {self.typed()})"
        return arg.text

    def helper(self, wanted: str, template: str) -> str:
        """The name of a helper function the generated module defines once."""
        for name, source in self.helpers.items():
            if source == self._helper_source(template, name):
                return name
        name = self.names.get(wanted)
        self.helpers[name] = self._helper_source(template, name)
        return name

    def _helper_source(self, template: str, name: str) -> str:
        return template.format(name=name, np=self.np, numpy=self.numpy_name)

    def call(self, wanted: str, template: str, *arguments: str) -> str:
        """A call of a helper; portable helpers take the namespace first."""
        name = self.helper(wanted, template)
        first = [self.np] if self.portable else []
        return f"{name}({', '.join(first + list(arguments))})"

    def reshape(self, text: str, shape: str) -> str:
        """``text`` reshaped: NumPy's method, or the standard's function in portable code."""
        if self.portable:
            return f"{self.np}.reshape({text}, {shape})"
        return f"{text}.reshape{shape}" if shape.startswith("(") else f"{text}.reshape({shape})"

    def _print_Var(self, node, args):
        return self.local[node.name], ATOM

    def _print_Const(self, node, args):
        return self.number(node.value)

    def _print_Eye(self, node, args):
        return f"{self.np}.eye({self.dim(node.params[0])}, {self.typed()})", POSTFIX

    def dim(self, d) -> str:
        return self.number(d)[0]

    # -- matrix products ---------------------------------------------------------------------
    def _matrix_operand(self, arg: Printed) -> str:
        if isinstance(arg.node, E.Const):
            return self.array(arg)
        return self.wrap(arg, MUL + 1) if not isinstance(arg.node, E.MatMul) else arg.text

    def _print_MatMul(self, node, args):
        factors = self._flatten(args[0]) + self._flatten(args[1])
        self.chains[id(node)] = factors
        if node.args[0].is_scalar or node.args[1].is_scalar:
            # a 1 x 1 factor is a number here (a constant prints as a Python float): scale by it
            return f"{self.wrap(args[0], MUL)} * {self.wrap(args[1], MUL + 1)}", MUL
        factors = self._merge_diagonals(factors)
        factors = self._solve_inverses(factors)
        factors = self._sum_against_ones(factors)
        if len(factors) == 1:
            if factors[0].view:
                self.views.add(id(node))
            return factors[0].text, factors[0].prec
        texts = [self._factor_text(f) for f in factors]
        if len(factors) == 2:
            return f"{self._wrapped(factors[0], texts[0])} @ " \
                   f"{self._wrapped(factors[1], texts[1])}", MUL
        # three or more: NumPy picks the cheapest order from the actual shapes
        return f"{self.np}.linalg.multi_dot([{', '.join(texts)}])", POSTFIX

    def _flatten(self, arg: Printed) -> list[_Factor]:
        """The factors of an operand: those of an inline product, or the operand itself."""
        if isinstance(arg.node, E.MatMul) and id(arg.node) not in self.named:
            return list(self.chains[id(arg.node)])
        return [_Factor(arg.text, arg.prec, arg.node.shape, arg.node)]

    def _factor_text(self, f: _Factor) -> str:
        # a constant, or a scalar made of constants only ((sum(ones(n, m)) / (m*n)) ** 2 is a
        # Python float), is a 1 x 1 array where a product of arrays needs one
        if f.node is not None and (isinstance(f.node, E.Const) or f.node.is_scalar and
                                   self.constant.get(id(f.node), False)):
            return self.array(Printed(f.node, f.text, f.prec))
        return f.text

    @staticmethod
    def _wrapped(f: _Factor, text: str) -> str:
        return text if f.prec > MUL or isinstance(f.node, E.Const) else f"({text})"

    def _diag_vector(self, f: _Factor) -> Printed | None:
        """For a factor diag(v) (v a column), v printed; else None."""
        if isinstance(f.node, Diag) and f.node.to_matrix:
            return self.done[id(f.node.args[0])]
        return None

    def _merge_diagonals(self, factors: list[_Factor]) -> list[_Factor]:
        """diag(v) @ B -> v * B and B @ diag(v) -> B * v.T: a broadcast, no n x n matrix."""
        vectors = [self._diag_vector(f) for f in factors]
        if not any(vectors):
            return factors
        # neighbouring diagonals first: diag(u) @ diag(v) = diag(u * v)
        merged: list = []
        for f, v in zip(factors, vectors):
            if v is not None and merged and merged[-1][1] is not None:
                u = merged[-1][1]
                both = Printed(f.node, f"{self.wrap(u, MUL)} * {self.wrap(v, MUL + 1)}", MUL)
                merged[-1] = (f, both)
            else:
                merged.append((f, v))
        out: list[_Factor] = []
        pending = None           # a diagonal waiting for the factor on its right
        for f, v in merged:
            if v is None and pending is not None:
                text = f"{self.wrap(pending, MUL)} * {self._wrapped_text(f, MUL + 1)}"
                out.append(_Factor(text, MUL, f.shape, None))
                pending = None
            elif v is None:
                out.append(f)
            else:
                pending = v
        if pending is not None:
            if out:
                last = out.pop()
                text = f"{self._wrapped_text(last, MUL)} * {self.wrap(pending, POSTFIX)}.T"
                out.append(_Factor(text, MUL, last.shape, None))
            else:          # a product of diagonals only
                text = f"{self.np}.diagflat({self.array(pending)})"
                out.append(_Factor(text, POSTFIX, (factors[0].shape[0],) * 2, None))
        return out

    def _wrapped_text(self, f: _Factor, min_prec: int) -> str:
        text = self._factor_text(f)
        return text if f.prec >= min_prec or isinstance(f.node, E.Const) else f"({text})"

    def _inverse(self, f: _Factor) -> tuple[Printed, bool] | None:
        """For an inline factor inv(A) or inv(A).T: (A printed, transposed); else None."""
        node = f.node
        if node is None or id(node) in self.named:
            return None
        transposed = isinstance(node, E.Transpose)
        if transposed:
            node = node.args[0]
            if id(node) in self.named:
                return None
        if isinstance(node, Inv):
            return self.done[id(node.args[0])], transposed
        return None

    def _transpose_of(self, f: _Factor, min_prec: int) -> str:
        """The text of a factor's transpose (X for a factor X.T), for a context of ``min_prec``."""
        if f.node is not None and id(f.node) in self.untransposed and \
                id(f.node) not in self.named:
            text, prec = self.untransposed[id(f.node)]
            return text if prec >= min_prec else f"({text})"
        return f"{self._wrapped_text(f, POSTFIX)}.T"

    def _transposed(self, a: Printed) -> str:
        if isinstance(a.node, E.Const):
            return self.array(a)                 # 1 x 1: its own transpose
        return f"{self.wrap(a, POSTFIX)}.T"

    def _solve_inverses(self, factors: list[_Factor]) -> list[_Factor]:
        """inv(A) @ B -> solve(A, B), B @ inv(A) -> solve(A.T, B.T).T: no inverse is formed."""
        out = list(factors)
        i = 0
        while i < len(out) and len(out) > 1:
            found = self._inverse(out[i])
            if found is None:
                i += 1
                continue
            a, transposed = found
            a_text = self._transposed(a) if transposed else self.array(a)
            solve = f"{self.np}.linalg.solve"
            if i + 1 < len(out):
                other = out[i + 1]
                text = f"{solve}({a_text}, {self._factor_text(other)})"
                out[i:i + 2] = [_Factor(text, POSTFIX, (out[i].shape[0], other.shape[1]), None)]
            else:
                other = out[i - 1]
                a_t = self.array(a) if transposed else self._transposed(a)
                text = f"{solve}({a_t}, {self._transpose_of(other, 0)}).T"
                out[i - 1:i + 1] = [_Factor(text, POSTFIX, (other.shape[0], out[i].shape[1]),
                                            None)]
                i -= 1
        return out

    def _broadcast_parts(self, f: _Factor):
        """For a broadcast factor (or its transpose, ``ones(n).T``): (what is repeated,
        printed, and its kind: "scalar", "column" or "row"); else None."""
        node, transposed = f.node, False
        if isinstance(node, E.Transpose) and id(node) not in self.named:
            node, transposed = node.args[0], True
        if not isinstance(node, E.Broadcast):
            return None
        inner = node.args[0]
        x = self.done[id(inner)]
        if inner.is_scalar:
            return x, "scalar"
        kind = "column" if is_one(inner.cols) else "row"
        if transposed:
            kind = "row" if kind == "column" else "column"
            x = Printed(inner, f"{self.wrap(x, POSTFIX)}.T", POSTFIX)
        return x, kind

    def _sum_against_ones(self, factors: list[_Factor]) -> list[_Factor]:
        """A repeated (broadcast) factor against a matrix is a sum, not a product with a ones
        matrix: ones(r, k) @ B is B's column sums repeated r times."""
        out = list(factors)
        while len(out) > 1:
            parts = [self._broadcast_parts(f) for f in out]
            if not any(parts):
                break
            # a repeated factor beside an ordinary one first: ones(n) @ (ones(1, m) @ X.T)
            # sums X.T, then repeats that row
            pairs = [(i, i + 1) for i in range(len(out) - 1) if parts[i] and not parts[i + 1]]
            pairs += [(i - 1, i) for i in range(1, len(out)) if parts[i] and not parts[i - 1]]
            i, j = pairs[0] if pairs else (0, 1)
            if parts[i]:
                out[i:j + 1] = [self._ones_left(out[i], parts[i], out[j])]
            else:
                out[i:j + 1] = [self._ones_right(out[i], out[j], parts[j])]
        return out

    def _scaled(self, scale: Printed, text: str) -> tuple[str, int]:
        """``scale * text`` for a scalar scale (text a call), and its precedence."""
        if isinstance(scale.node, E.Const) and scale.node.value == 1:
            return text, POSTFIX
        return f"{self.wrap(scale, MUL)} * {text}", MUL

    def _view(self, text: str, rows, cols) -> _Factor:
        """A read-only view repeating ``text`` (a row or a column) to rows x cols."""
        return _Factor(f"{self.np}.broadcast_to({text}, ({self.dim(rows)}, {self.dim(cols)}))",
                       POSTFIX, (rows, cols), None, view=True)

    def _ones_left(self, f: _Factor, parts, right: _Factor) -> _Factor:
        """(x repeated to r x k) @ R, with R k x m."""
        x, kind = parts
        rows, cols = f.shape[0], right.shape[1]
        column_sums = f"{self.np}.sum({self._factor_text(right)}, axis=0, keepdims=True)"
        if is_one(right.shape[0]):                 # a row: its own column sums
            column_sums = self._wrapped_text(right, POSTFIX)
        if kind == "row":                          # 1_r (x @ R)
            return self._view(f"{self.wrap(x, MUL)} @ {self._wrapped_text(right, MUL + 1)}",
                              rows, cols)
        if kind == "column":                       # x (1_k.T R): a column times a row
            return _Factor(f"{self.wrap(x, MUL)} * {column_sums}", MUL, (rows, cols), None)
        text, prec = self._scaled(x, column_sums)  # a scalar x: x 1_r (1_k.T R)
        if is_one(rows):
            return _Factor(text, prec, (rows, cols), None)
        return self._view(text, rows, cols)

    def _ones_right(self, left: _Factor, f: _Factor, parts) -> _Factor:
        """L @ (x repeated to k x s), with L r x k."""
        x, kind = parts
        rows, cols = left.shape[0], f.shape[1]
        row_sums = f"{self.np}.sum({self._factor_text(left)}, axis=1, keepdims=True)"
        if is_one(left.shape[1]):                  # a column: its own row sums
            row_sums = self._wrapped_text(left, POSTFIX)
        if kind == "column":                       # (L @ x) 1_s.T
            return self._view(f"{self._wrapped_text(left, MUL)} @ {self.wrap(x, MUL + 1)}",
                              rows, cols)
        if kind == "row":                          # (L 1_k) x
            return _Factor(f"{row_sums} * {self.wrap(x, MUL + 1)}", MUL, (rows, cols), None)
        text, prec = self._scaled(x, row_sums)
        if is_one(cols):
            return _Factor(text, prec, (rows, cols), None)
        return self._view(text, rows, cols)

    # -- elementwise -------------------------------------------------------------------------
    def _print_Transpose(self, node, args):
        inner = node.args[0]
        if inner.is_scalar:                 # a number (a 1 x 1) is its own transpose
            return args[0].text, args[0].prec
        if id(inner) in self.untransposed and id(inner) not in self.named:
            # (X.T).T is X: sum(X, axis=0).T is the row of column sums NumPy gives directly
            return self.untransposed[id(inner)]
        self.untransposed[id(node)] = (args[0].text, args[0].prec)
        return f"{self.wrap(args[0], POSTFIX)}.T", POSTFIX

    def bare_of(self, arg: Printed) -> Printed | None:
        """The smaller value that ``arg`` repeats, printed (a column, a row or a number), when
        ``arg`` is a broadcast or an inline elementwise function of broadcasts; else None.
        Beside an operand of the full shape, NumPy's broadcasting repeats it without ever
        building the full array (layer norm's ``X - mean`` needs no m x d mean)."""
        if isinstance(arg.node, E.Broadcast):
            return self.done[id(arg.node.args[0])]
        return self.bare.get(id(arg.node))

    def bare_axes(self, node) -> tuple[bool, bool]:
        """For a node with a bare form: whether that form has one row, and one column."""
        if isinstance(node, E.Broadcast):
            inner = node.args[0]
            return is_one(inner.rows), is_one(inner.cols)
        return self.bare_shape[id(node)]

    def _note_bare(self, node, args) -> None:
        """For an unnamed elementwise function of a broadcast value, record it applied to the
        smaller value instead (f(repeat(x)) = repeat(f(x)))."""
        if id(node) in self.named or not isinstance(node, (E.Pow, E.Neg, E.Apply)):
            return
        inner = self.bare_of(args[0])
        if inner is not None:
            text, prec = self._method(node)(node, [inner])
            self.bare[id(node)] = Printed(node, text, prec)
            self.bare_shape[id(node)] = self.bare_axes(node.args[0])

    def _binary(self, args, symbol, prec):
        bares = [self.bare_of(x) for x in args]
        if all(b is not None for b in bares):
            # every operand repeats a smaller value: the result as that is recorded for the
            # consumers, and written out in full where a full array is needed
            if id(self.current) not in self.named:
                self.bare[id(self.current)] = Printed(
                    self.current, *self._binary_text(bares[0], bares[1], symbol, prec))
                axes = [self.bare_axes(a) for a in self.current.args]
                self.bare_shape[id(self.current)] = (all(r for r, _ in axes),
                                                     all(c for _, c in axes))
            bare = bare_broadcasts(self.current)
            a, b = (self.done[id(x.node.args[0])] if drop else x for x, drop in zip(args, bare))
        else:                      # beside a full operand, each repeated one is written bare
            a, b = (small or x for x, small in zip(args, bares))
        return self._binary_text(a, b, symbol, prec)

    def _binary_text(self, a: Printed, b: Printed, symbol: str, prec: int) -> tuple[str, int]:
        # (A @ B) * C: Python reads A @ B * C the same way, a reader may not
        product = prec == MUL and a.prec == MUL and isinstance(a.node, E.MatMul)
        left = f"({a.text})" if product else self.wrap(a, prec)
        if symbol == "*" and a.node.is_scalar and b.prec == MUL and \
                isinstance(b.node, (E.Mul, E.Div)):
            # c * (x * y) as c * x * y: the number meets x, often a row or column, first; never
            # more passes over memory (c * (x / s * X) takes one over X, not two)
            return f"{left} * {b.text}", prec
        return f"{left} {symbol} {self.wrap(b, prec + 1)}", prec

    def _print_Add(self, node, args):
        x = None if self.portable else plus_own_transpose(node)
        if x is not None:                  # X + X.T: a helper that reads X.T cache-friendly
            return f"{self.helper('symmetric_sum', SYMMETRIC_SUM)}({self.done[id(x)].text})", \
                POSTFIX
        return self._binary(args, "+", ADD)

    def _print_Sub(self, node, args):
        c, x = node.args
        if not self.portable and isinstance(c, E.Broadcast) and \
                isinstance(c.args[0], E.Const) and isinstance(x, (E.Pow, E.Mul, E.Div)) and \
                id(x) not in self.named and id(x) not in self.bare and \
                not self.constant.get(id(x), False):
            # 1 - a ** 2: the power is a fresh array of the expression's own; subtracting it
            # from the number in place makes one array, not two
            number = self.done[id(c.args[0])].text
            return f"{self.helper('number_minus', NUMBER_MINUS)}({number}, {args[1].text})", \
                POSTFIX
        return self._binary(args, "-", ADD)

    def _print_Mul(self, node, args):
        scaled = self._scaled_product(node, args)
        if scaled is not None:
            return scaled, POSTFIX
        for position, operand in enumerate(node.args):
            if isinstance(operand, E.Apply) and operand.name == "step" and \
                    id(operand) not in self.named and \
                    E.constant_value(node.args[1 - position]) is None:
                # G * step(h): keep G where h > 0 (no 0/1 array, no heaviside)
                other = args[1 - position]
                if isinstance(other.node, E.Broadcast) and \
                        bare_broadcasts(node)[1 - position]:
                    other = self.done[id(other.node.args[0])]
                h = self.done[id(operand.args[0])]
                if isinstance(other.node, E.MatMul) and other.node.shape == node.shape and \
                        self._fresh_product(other.text):
                    # a product the expression has just made, of the mask's shape (not a
                    # column or row that broadcasts against it): masked in place
                    return self.call("keep_positive", PORTABLE_KEEP_POSITIVE if self.portable
                                     else KEEP_POSITIVE, h.text, other.text), POSTFIX
                return f"{self.np}.where({self.wrap(h, ADD + 1)} > 0, {other.text}, 0.0)", \
                    POSTFIX
        return self._binary(args, "*", MUL)

    def made_here(self, printed: Printed) -> bool:
        """Whether ``printed`` is a new array that only this use reads: an unnamed value
        computed in place (an operation's result or a view of one, never a name, an argument
        or a broadcast). A helper given it may work in its array."""
        if id(printed.node) in self.named or id(printed.node) in self.bare:
            return False
        return _fresh(ast.parse(printed.text, mode="eval").body, set(), self.np, self.helpers)

    def _fresh_product(self, text: str) -> bool:
        """Whether ``text`` is a matrix product the expression makes (``a @ b``, multi_dot)."""
        tree = ast.parse(text, mode="eval").body
        if isinstance(tree, ast.BinOp):
            return isinstance(tree.op, ast.MatMult)
        return isinstance(tree, ast.Call) and \
            ast.unparse(tree.func) == f"{self.np}.linalg.multi_dot"

    def _scaled_product(self, node, args) -> str | None:
        """c * (A @ B), c a number and A @ B a product of two plain factors, as a helper call
        that scales the smallest of A, B and A @ B (the sizes are known only at run time:
        attention's Q @ K.T is n x n, Q only n x d); (A @ B) / c likewise, as 1 / c times the
        product; else None. The helper uses only shapes, * and @, so portable code (torch, JAX
        under jit) calls it too."""
        divide = isinstance(node, E.Div)
        for k in (1,) if divide else (0, 1):
            c, product = node.args[k], node.args[1 - k]
            if not (isinstance(c, E.Broadcast) and c.args[0].is_scalar) or \
                    not isinstance(product, E.MatMul) or id(product) in self.named:
                continue
            chain = self.chains.get(id(product))
            if chain is None or len(chain) != 2 or any(
                    f.node is None or isinstance(f.node, E.Const) or is_diagonal_matrix(f.node)
                    or self._inverse(f) or self._broadcast_parts(f) for f in chain):
                continue
            number = self.done[id(c.args[0])]
            number = f"1 / {self.wrap(number, MUL + 1)}" if divide else number.text
            texts = ", ".join(self._factor_text(f) for f in chain)
            return f"{self.helper('scaled_product', SCALED_PRODUCT)}({number}, {texts})"
        return None

    def _print_Div(self, node, args):
        scaled = self._scaled_product(node, args)
        if scaled is not None:
            return scaled, POSTFIX
        return self._regrouped(node, args) or self._binary(args, "/", MUL)

    def _regrouped(self, node, args) -> tuple[str, int] | None:
        """(X * r) / c with r and c repeated values (rows, columns, numbers) and X a full
        array, as X * (r / c): the full-size array is made once, not twice (batch norm's
        G * gamma / sigma). None for any other quotient."""
        inner, divisor = node.args[0], self.bare_of(args[1])
        if divisor is None or not isinstance(inner, E.Mul) or id(inner) in self.named or \
                id(inner) in self.bare or self.bare_of(args[0]) is not None:
            return None
        operands = [self.done[id(a)] for a in inner.args]
        small = [self.bare_of(x) for x in operands]
        for k in (0, 1):
            if small[k] is not None and small[1 - k] is None and \
                    not isinstance(operands[1 - k].node, E.MatMul):
                quotient = f"{self.wrap(small[k], MUL)} / {self.wrap(divisor, MUL + 1)}"
                return f"{self.wrap(operands[1 - k], MUL)} * ({quotient})", MUL
        return None

    def _print_Neg(self, node, args):
        return f"-{self.wrap(args[0], UNARY)}", UNARY

    def _print_Pow(self, node, args):
        p = node.exponent
        exponent = str(p) if p.is_Integer else repr(float(p))
        if exponent.startswith("-"):
            exponent = f"({exponent})"
        if self.constant.get(id(node.args[0]), False) and node.args[0].is_scalar:
            # a power of a number: in float64, where overflow gives inf (a Python float's **
            # raises), handed on as a Python float (a NumPy float64 would promote float32)
            return f"({self.module}.float64({args[0].text}) ** {exponent}).item()", POSTFIX
        return f"{self.wrap(args[0], POW + 1)} ** {exponent}", POW

    def _print_Apply(self, node, args):
        row = operation_of(node).function
        if self.portable and row.portable is not None:
            return self.call(node.name, row.portable, args[0].text), POSTFIX
        if row.numpy is None:                  # NumPy has no such function: a helper of x
            return f"{self.helper(node.name, row.helper)}({args[0].text})", POSTFIX
        # {x} sits inside call parentheses; {xw} beside an operator, so it is parenthesised
        text = row.numpy.format(np=self.np, x=args[0].text, xw=self.wrap(args[0], MUL + 1))
        return text, row.precedence

    def _print_Broadcast(self, node, args):
        rows, cols = (self.dim(d) for d in node.params)
        value = E.constant_value(node)
        if value == 0:
            return f"{self.np}.zeros(({rows}, {cols}), {self.typed()})", POSTFIX
        if value == 1:
            return f"{self.np}.ones(({rows}, {cols}), {self.typed()})", POSTFIX
        if value is not None:
            return f"{self.np}.full(({rows}, {cols}), {args[0].text}, {self.typed()})", POSTFIX
        self.views.add(id(node))
        return f"{self.np}.broadcast_to({args[0].text}, ({rows}, {cols}))", POSTFIX

    # -- reductions and matrix functions --------------------------------------------------------
    def all_axes(self) -> str:
        """``axis=(0, 1), `` for a sum of all entries in portable code (the standard's spelling)."""
        return "axis=(0, 1), " if self.portable else ""

    def _print_Sum(self, node, args):
        """A sum of a product written without the product's array: sum(x * y, axis=1) as
        einsum("ij,ij->i", x, y) (sum(x ** 2) likewise; with more factors, x against the
        product of the others; a column weighting a sum down the rows meets x * y in BLAS,
        sum(x * y / c, axis=0) as weighted_sum(x, y, (1 / c)[:, 0], 0)), and a factor
        that repeats along the summed axis (a row, for a sum down the rows) taken outside:
        sum(x / s, axis=0) is sum(x, axis=0) / s. Otherwise the stanza's spelling."""
        parts = self._sum_factors(node)
        if parts is None:
            return self.spell(operation_of(node))(node, args)
        first, rest, outside, weights = parts
        axis = node.axis
        if weights:                       # weighted_sum(x, y, w, 0): w a column, 1-D
            w = "1" if weights[0][1] < 0 else ""
            for printed, exponent in weights:
                sign = "*" if exponent > 0 else "/"
                w += f" {sign} {self.wrap(printed, MUL + 1)}" if w else \
                    self.wrap(printed, MUL)
            w = f"({w})[:, 0]" if axis == 0 else f"({w})[0, :]"
            core = self.call("weighted_sum", WEIGHTED_SUM, first.text, rest or "None", w,
                             str(axis))
            core += "[None, :]" if axis == 0 else "[:, None]"
        elif rest and self.portable:
            core = self.call("sum_of_product", PORTABLE_SUM_OF_PRODUCT, first.text, rest,
                             str(axis))
        elif rest:
            out = {None: "", 0: "j", 1: "i"}[axis]
            core = f"{self.np}.einsum(\"ij,ij->{out}\", {first.text}, {rest})"
            core += {None: ".reshape(1, 1)", 0: "[None, :]", 1: "[:, None]"}[axis]
        else:
            product = self.wrap(first, MUL) + (f" * {rest}" if rest else "")
            where = self.all_axes() if axis is None else f"axis={axis}, "
            core = f"{self.np}.sum({product}, {where}keepdims=True)"
        text = core
        for factor, exponent in outside:
            text += f" {'*' if exponent > 0 else '/'} {self.wrap(factor, MUL + 1)}"
        prec = MUL if outside else POSTFIX
        if axis == 0:                     # the row NumPy gives, a column in matcalc's terms
            self.untransposed[id(node)] = (text, prec)
            return f"{self.wrap(Printed(node, text, prec), POSTFIX)}.T", POSTFIX
        return text, prec

    def _sum_factors(self, node) -> tuple | None:
        """For sum(x * y / c ...) worth rewriting: (x printed, the text of the product of the
        other factors of the full shape or "", [(factor printed, +1 or -1)] for the factors
        that repeat along the summed axes, the same for the columns (rows) that weight a sum
        down the rows (along them) of x * y); None when nothing would be saved."""
        if node.axis is None:
            constant_along = (True, True)          # (needs one row, needs one column)
        else:
            constant_along = (node.axis == 0, node.axis == 1)
        # (non-portable code, a sum along one axis) a column meeting a sum down the rows, or a
        # row a sum along them, is weighted_sum's third operand: no full product array for it
        across = {0: (False, True), 1: (True, False)}.get(node.axis) if not self.portable \
            else None
        terms, outside, weights = [], [], []
        stack = [(node.args[0], 1)]
        while stack:
            n, exponent = stack.pop()
            unnamed = id(n) not in self.named
            if unnamed and isinstance(n, E.Mul):
                stack += [(n.args[1], exponent), (n.args[0], exponent)]
                continue
            if unnamed and isinstance(n, E.Div):
                stack += [(n.args[1], -exponent), (n.args[0], exponent)]
                continue
            printed = self.done[id(n)]
            bare = self.bare_of(printed)
            if n.is_scalar or bare is not None and all(
                    one for one, needed in zip(self.bare_axes(n), constant_along) if needed):
                outside.append((printed if bare is None else bare, exponent))
            elif unnamed and isinstance(n, E.Pow) and n.exponent == 2 and exponent > 0:
                terms += [(self.done[id(n.args[0])], 1, True)] * 2
            elif bare is not None and across is not None and self.bare_axes(n) == across:
                weights.append((bare, exponent))
            else:
                terms.append((bare or printed, exponent, bare is None))
        full = [k for k, (_, exponent, whole) in enumerate(terms) if whole and exponent > 0]
        if node.args[0].is_scalar or not full:
            return None
        if weights and not (len(full) == len(terms) <= 2):
            # (only x * y * w or x * w: else the weights are factors as before)
            terms += [(printed, exponent, False) for printed, exponent in weights]
            weights = []
        first = terms.pop(full[0])[0]
        if not terms:
            return (first, "", outside, weights) if outside or weights else None
        if not any(whole for _, _, whole in terms) or terms[0][1] < 0:
            return None                   # the others alone are not of the full shape
        rest = self.wrap(terms[0][0], MUL)
        for printed, exponent, _ in terms[1:]:
            rest += f" {'*' if exponent > 0 else '/'} {self.wrap(printed, MUL + 1)}"
        return first, rest, outside, weights

    def _print_Trace(self, node, args):
        inner = node.args[0]
        if isinstance(inner, E.Const):
            return args[0].text, args[0].prec
        chain = self.chains.get(id(inner)) if id(inner) not in self.named else None
        if chain is not None and len(chain) == 2 and all(f.node is not None for f in chain):
            # trace(A @ B) = sum(A * B.T): no product matrix
            a, b = chain
            text = f"{self._wrapped_text(a, MUL)} * {self._transpose_of(b, MUL + 1)}"
            return f"{self.np}.sum({text}, {self.all_axes()}keepdims=True)", POSTFIX
        if inner.is_scalar:                       # the trace of a 1 x 1 is its entry
            return args[0].text, args[0].prec
        return self.reshape(f"{self.np}.trace({args[0].text})", "(1, 1)"), POSTFIX

    def _print_Diag(self, node, args):
        a = self.array(args[0])
        if node.to_matrix:
            return f"{self.np}.diagflat({a})", POSTFIX
        inner = node.args[0]
        chain = self.chains.get(id(inner)) if id(inner) not in self.named else None
        if chain is not None and len(chain) == 2 and all(f.node is not None for f in chain):
            # diag(A @ B) = row sums of A * B.T: no product matrix
            p, q = chain
            return f"{self.np}.sum({self._wrapped_text(p, MUL)} * " \
                   f"{self._transpose_of(q, MUL + 1)}, axis=1, keepdims=True)", POSTFIX
        self.views.add(id(node))               # NumPy's diagonal is a read-only view
        self.flat[id(node)] = f"{self.np}.diagonal({a})"
        return self.reshape(self.flat[id(node)], "(-1, 1)"), POSTFIX

    def spell(self, op):
        """A stanza's NumPy spelling function (it reads ``portable`` for array-namespace code)."""
        return self.bound(op.numpy) if callable(op.numpy) else None


def shared_nodes(outputs: list[E.Node]) -> set:
    """Ids of the nodes worth naming: printed more than once, and not free to recompute.

    A node written inline is printed once for each time its consumer is printed: the operand of
    a broadcast used twice (``step(h)`` in ``step(h) * A - step(h) * B``), or of an inverse
    written as two solves, is printed twice and so named, although it has one consumer.
    """
    order = E.postorder(outputs)
    times: dict[int, int] = {}            # how often each node's text would be printed
    for o in outputs:
        times[id(o)] = times.get(id(o), 0) + 1
    cheap = (E.Var, E.Const, E.Eye, E.Broadcast, E.Transpose)
    named: set[int] = set()
    for node in reversed(order):          # every consumer before its operands
        t = times.get(id(node), 0)
        # an inverse used twice is two solves: cheaper (2 x 2/3 n^3 against 2 n^3) and more exact
        if t > 1 and not isinstance(node, cheap) and not is_diagonal_matrix(node) and \
                not (isinstance(node, Inv) and t <= 2):
            named.add(id(node))
            t = 1
        for a in node.args:
            times[id(a)] = times.get(id(a), 0) + t
    return named


def is_diagonal_matrix(node: E.Node) -> bool:
    """diag(v) of a vector: never named, since a product with it is a broadcast of v."""
    return isinstance(node, Diag) and node.to_matrix


def plus_own_transpose(node: E.Add) -> E.Node | None:
    """X when ``node`` is X + X.T or X.T + X, for X a matrix (not a number or a broadcast)."""
    for x, t in (node.args, node.args[::-1]):
        if isinstance(t, E.Transpose) and t.args[0] is x and not x.is_scalar and \
                not isinstance(x, (E.Const, E.Broadcast)):
            return x
    return None


_shared = shared_nodes


def numpy_source(outputs: list[Output], inputs: list[E.Var], name: str = "f", doc: str = "",
                 optional: dict | None = None, portable: bool = False,
                 finish: Callable[[list[str], "NumpyPrinter"], list[str]] | None = None) -> str:
    """Source of ``def name(inputs...)`` returning the outputs (a tuple when more than one).

    ``optional`` maps an input variable to the default its argument takes when None ("ones").
    With ``portable``, the function takes ``xp=None`` last, an array namespace (NumPy when
    None), and uses it for every array operation. ``finish``, when given, writes the last lines
    instead of ``return outputs``: it gets the outputs' texts (each a 2-D array) and the printer
    (for its names), and returns statements ending in a return.
    """
    optional = optional or {}
    nodes = factors_out_of_sums([o.node for o in outputs])
    outputs = [Output(n, o.kind) for n, o in zip(nodes, outputs)]
    # functions the user named (g, g_prime, ...) are arguments too, after the variables
    functions = sorted({n.name for n in E.postorder(nodes) if isinstance(n, E.Apply)
                        and derivative_of_user_function(n.name) is not None})
    user_names = [v.name for v in inputs] + functions
    all_dims = dimensions(nodes + list(inputs))
    names = Names(user_names + [d.name for d in all_dims])
    numpy_name = names.get("numpy") if portable else None
    np = names.get("xp" if portable else "np")
    local = {v: v for v in user_names}
    local.update({d.name: d.name for d in all_dims})

    given = [v for v in inputs if v not in optional]
    printer = NumpyPrinter(np, local, _shared(nodes), names, portable=portable,
                           numpy_name=numpy_name or "numpy")
    printed = printer.print_all(nodes)
    if finish is not None:
        results = [convert_output(p, o.kind, printer) for p, o in zip(printed, outputs)]
        update_dead_temporaries(printer, results)
        compute = printer.lines + finish(results, printer)
    else:
        compute = result_lines(printer, printed, [o.kind for o in outputs])
    # the arguments taken in and checked; the dimensions bound from the first input with each
    used = "\n".join(compute)
    names_used = identifiers(used)
    needed = [d for d in all_dims if d.name in names_used]
    body, bound = take_inputs(printer, given, uses_name(printer.dtype, used))
    defaults = [line for v in optional for line in take_optional(v, printer, bound)]
    if any(uses_name(printer.dtype, line) for line in defaults) and \
            not any(line.startswith(f"{printer.dtype} = ") for line in body):
        body.append(dtype_statement(printer, [v.name for v in given]))
    needed += [d for d in all_dims if d not in needed and d.name in identifiers(
        "\n".join(defaults))]
    unbound = [d for d in needed if d not in bound]
    # a dimension no required input has (it sizes only a constant) is an argument of its own
    signature = [v.name for v in given] + functions + [d.name for d in unbound] + \
        [f"{v.name}=None" for v in optional] + ([f"{np}=None"] if portable else [])
    lines = [f"def {name}({', '.join(signature)}):"]
    if doc:
        lines.append(f'    """{doc}"""')
    if portable:
        lines.append(f"    {np} = {numpy_name} if {np} is None else {np}")
    lines += ["    " + line for line in body + defaults + compute]
    helpers = "".join(source + "\n\n" for source in used_helpers(printer.helpers, lines))
    if not portable:
        return f"import numpy as {np}" + math_import(printer) + "\n\n\n" + helpers + \
            "\n".join(lines) + "\n"
    imports = f"import numpy as {numpy_name}" if numpy_name != "numpy" else "import numpy"
    return imports + math_import(printer) + "\n\n\n" + helpers + "\n".join(lines) + "\n"


def result_lines(printer: NumpyPrinter, printed: list, kinds: list) -> list[str]:
    """The statements and the return of a function with these results. Each result is first
    a statement of its own, so that one computed from a temporary nothing reads afterwards
    updates it in place (``update_dead_temporaries``: dP = -2 * t as ``t *= -2``); when none
    does, the results are written in the return itself."""
    names = []
    for p in printed:
        name = None if p.text.isidentifier() else printer.names.get("result")
        if name is not None:
            printer.lines.append(f"{name} = {p.text}")
            printer.statements.append((name, p.node))
        names.append(name)
    out = [convert_output(p if name is None else Printed(p.node, name, ATOM), kind, printer)
           for p, name, kind in zip(printed, names, kinds)]
    updated = update_dead_temporaries(printer, out)
    if not updated & set(names):           # the results in the return itself
        del printer.lines[len(printer.lines) - sum(n is not None for n in names):]
        out = [convert_output(p, kind, printer) for p, kind in zip(printed, kinds)]
    return printer.lines + ["return " + (out[0] if len(out) == 1 else
                                         "(" + ", ".join(out) + ")")]


def factors_out_of_sums(roots: list) -> list:
    """The roots with each sum along an axis of a product written with the factors that repeat
    along that axis outside (``sum(G * g.T * Xc, axis=0)`` as ``sum(G * Xc, axis=0) * g``), so
    that sums which differ only in such factors are one value in the code (batch norm: dgamma's
    and dX's sum of G * Xc) and the full-size products with the factors are not made."""
    new: dict[int, E.Node] = {}
    for n in E.postorder(roots):
        args = tuple(new[id(a)] for a in n.args)
        m = E.with_args(n, args)
        if isinstance(m, Sum):
            m = pull_constant_factors(m) or m
        new[id(n)] = m
    return [new[id(r)] for r in roots]


def math_import(printer: NumpyPrinter) -> str:
    """``\\nimport math`` (under the printer's name for it) when the code uses it, else ""."""
    if not printer.uses_math:
        return ""
    return f"\nimport math as {printer.math}" if printer.math != "math" else "\nimport math"


_UPDATE = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
# NumPy functions that return a new array (never a view of an argument)
_FRESH_FUNCTIONS = frozenset(
    "exp log log1p expm1 sin cos tan arcsin arccos arctan sinh cosh tanh sqrt square abs "
    "absolute sign heaviside maximum minimum logaddexp where sum matmul full ones zeros eye "
    "clip multiply divide add subtract negative reciprocal power tril triu diagflat".split())
# helpers of the generated code that return a new array (number_minus: the fresh one it was given)
_FRESH_HELPERS = frozenset(
    "number_minus keep_positive scaled_product scaled_own_product symmetric_sum softmax "
    "logsumexp relu softplus "
    "sum_of_product weighted_sum".split())


def _view_base(tree: ast.expr, np: str) -> ast.expr:
    """The expression whose array ``tree`` is a view of (t for ``t.T``, ``t[:, None]``,
    ``t.reshape(...)``, ``np.reshape(t, ...)``); ``tree`` itself when it is no view."""
    while True:
        if isinstance(tree, (ast.Subscript, ast.Attribute)):
            tree = tree.value
        elif isinstance(tree, ast.Call) and isinstance(tree.func, ast.Attribute) and \
                tree.func.attr == "reshape":
            f = tree.func
            if not (isinstance(f.value, ast.Name) and f.value.id == np):
                tree = f.value                       # t.reshape(...)
            elif tree.args:
                tree = tree.args[0]                  # np.reshape(t, ...)
            else:
                return tree
        else:
            return tree


def _fresh(tree: ast.expr, fresh: set, np: str, helpers: dict) -> bool:
    """Whether the expression's value is a new array of the code's own (or a view of one):
    never an argument, nor a view of a value another name holds, except names in ``fresh``."""
    tree = _view_base(tree, np)
    if isinstance(tree, (ast.BinOp, ast.UnaryOp)):
        return True
    if isinstance(tree, ast.Name):
        return tree.id in fresh
    if not isinstance(tree, ast.Call):
        return False
    f = tree.func
    if isinstance(f, ast.Name):
        return f.id in helpers and re.sub(r"_\d+$", "", f.id) in _FRESH_HELPERS
    if not isinstance(f, ast.Attribute):
        return False
    if isinstance(f.value, ast.Name) and f.value.id == np:
        return f.attr != "reshape" and (f.attr in _FRESH_FUNCTIONS or
                                        f.attr == "einsum" and len(tree.args) >= 3)
    return isinstance(f.value, ast.Attribute) and f.value.attr == "linalg"   # solve, inv, ...


def _view_root(tree: ast.expr, np: str) -> str | None:
    """The name whose array ``tree`` is, or is a view of (``t``, ``t.T``, ``t[:, None]``,
    ``t.reshape(...)``, ``np.reshape(t, ...)``); None for a new array."""
    base = _view_base(tree, np)
    return base.id if isinstance(base, ast.Name) else None


def _update_path(tree: ast.expr, target) -> tuple[str, list] | None:
    """(name, [(operator, operand), ...]) when ``tree`` is a chain of + - * / that starts from
    a name ``target`` accepts (``(t / s + x) * y``: t, then / s, + x, * y; a sum or product may
    start from either side); else None."""
    found = _chain_from(tree, lambda n: isinstance(n, ast.Name) and target(n.id))
    return None if found is None else (found[0].id, found[1])


def _still_read(text: str, found: tuple, early: list[str]) -> bool:
    """Whether an operand of the second or a later step of the update path ``found`` still
    reads t once the calls ``early`` are replaced by values computed first: then t would be
    read after it was updated, and the statement must not update it."""
    name, steps = found
    for _, operand in steps[1:]:
        out = ast.get_source_segment(text, operand)
        for call in early:
            out = _replace_call(out, call, "hoisted_")
        if name in identifiers(out):
            return True
    return False


def _read_first(text: str, found: tuple, printer: NumpyPrinter) -> list[str] | None:
    """For an update path (t, steps): the texts of the calls that read t in the operands of the
    second and later steps (computed first, they read t's values before it is updated; the
    first step's operand is evaluated before its own update); None when t is read there
    outside a call that makes a new array (a view of t would see the update; a product
    written out is not replaced by its value, whose text may not be a part of the whole)."""
    name, steps = found
    calls: list[str] = []
    for _, operand in steps[1:]:
        parents = {id(c): p for p in ast.walk(operand) for c in ast.iter_child_nodes(p)}
        for n in ast.walk(operand):
            if not (isinstance(n, ast.Name) and n.id == name):
                continue
            up = parents.get(id(n))
            while up is not None and not (isinstance(up, ast.Call) and
                                          _fresh(up, set(), printer.np, printer.helpers)):
                up = parents.get(id(up))
            if up is None:
                return None
            call = ast.get_source_segment(text, up)
            if call not in calls:
                calls.append(call)
    # a call inside another that is read first is read with it (replacing the inner one first
    # would leave the outer one's text unmatched)
    return [c for c in calls if not any(c != other and c in other for other in calls)]


def _shape(tree: ast.expr, known: dict, math_name: str | None):
    """The shape of a printed operand made of numbers, names of known shape, their transposes
    and arithmetic; None when it cannot be told from the text."""
    if isinstance(tree, ast.Constant):
        return (1, 1)
    if isinstance(tree, ast.Name):
        return known.get(tree.id)
    if isinstance(tree, ast.Attribute) and tree.attr == "T":
        inner = _shape(tree.value, known, math_name)
        return None if inner is None else inner[::-1]
    if isinstance(tree, ast.UnaryOp):
        return _shape(tree.operand, known, math_name)
    if isinstance(tree, ast.BinOp) and type(tree.op) in _UPDATE:
        a, b = _shape(tree.left, known, math_name), _shape(tree.right, known, math_name)
        if a is None or b is None:
            return None
        out = []
        for x, y in zip(a, b):
            if is_one(x) or x == y:
                out.append(y)
            elif is_one(y):
                out.append(x)
            else:
                return None
        return tuple(out)
    if isinstance(tree, ast.Call) and isinstance(tree.func, ast.Attribute) and \
            isinstance(tree.func.value, ast.Name) and tree.func.value.id == math_name and \
            all(_shape(a, known, math_name) == (1, 1) for a in tree.args):
        return (1, 1)                                # math.sqrt(d): a number
    return None


def _argument_updates(tree: ast.expr, target, shape_of) -> list:
    """[(argument, (t, steps))] for the arguments of calls in ``tree`` that are chains of
    + - * / starting from a temporary ``target`` accepts, named once in the statement, whose
    other operands all broadcast to t's shape (so t's array can hold the value)."""
    found = []
    for call in ast.walk(tree):
        if not isinstance(call, ast.Call):
            continue
        for argument in call.args:
            if not isinstance(argument, ast.BinOp):
                continue

            def once(name: str) -> bool:
                shape = shape_of(ast.Name(name))
                return shape is not None and target(name, shape) and sum(
                    isinstance(n, ast.Name) and n.id == name for n in ast.walk(tree)) == 1
            path = _update_path(argument, once)
            if path is None or any(argument in ast.walk(outer) for outer, _ in found):
                continue
            shape = shape_of(ast.Name(path[0]))
            if all(s is not None and all(is_one(x) or x == y for x, y in zip(s, shape))
                   for s in (shape_of(o) for _, o in path[1])):
                found.append((argument, path))
    return found


def _chain_from(tree: ast.expr, start) -> tuple[ast.expr, list] | None:
    """(s, [(operator, operand), ...]) when ``tree`` is a chain of + - * / from a part s that
    ``start`` accepts (the innermost such part on the chain: for ``a * b + c`` with a * b
    accepted, a * b then + c; a sum or product may start from either side); (tree, []) when
    only ``tree`` itself is accepted; else None. The chains of updates: from a dead temporary
    (``_update_path``) or from an array the statement has just made."""
    if isinstance(tree, ast.BinOp) and type(tree.op) in _UPDATE:
        sides = [(tree.left, tree.right)]
        if isinstance(tree.op, (ast.Add, ast.Mult)):
            sides.append((tree.right, tree.left))
        for inner, other in sides:
            found = _chain_from(inner, start)
            if found is not None:
                return found[0], found[1] + [(_UPDATE[type(tree.op)], other)]
    return (tree, []) if start(tree) else None


def _replace_call(text: str, call: str, name: str) -> str:
    """``text`` with each occurrence of ``call`` (a call, or an argument naming a temporary
    nothing else in the text names; never part of a longer name) written as ``name``."""
    return re.sub(r"(?<![\w.])" + re.escape(call) + r"(?!\w)", name, text)


def _own_product(tree: ast.expr, name: str, printer: NumpyPrinter) -> ast.Call | None:
    """The call scaled_product(c, name, b) in ``tree``, if there is one."""
    if not any(re.sub(r"_\d+$", "", helper) == "scaled_product" for helper in printer.helpers):
        return None                    # (most code has no such call: no walk of the tree)
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and \
                call.func.id in printer.helpers and \
                re.sub(r"_\d+$", "", call.func.id) == "scaled_product":
            if len(call.args) == 3 and isinstance(call.args[1], ast.Name) and \
                    call.args[1].id == name:
                return call
    return None


def _later_sums(name: str, k: int, trees: list, texts: list, defined_at: dict,
                printer: NumpyPrinter) -> list[str] | None:
    """The texts of the sums (np.sum, a reducing einsum, sum_of_product) that read ``name`` in
    the statements after the k-th, when every later read of it is inside one and each could be
    computed at the k-th (it reads nothing defined later); else None."""
    calls: list[str] = []
    for j in range(k + 1, len(trees)):
        parents = {id(c): p for p in ast.walk(trees[j]) for c in ast.iter_child_nodes(p)}
        for n in ast.walk(trees[j]):
            if not (isinstance(n, ast.Name) and n.id == name):
                continue
            up = parents.get(id(n))
            while up is not None and not isinstance(up, ast.Call):
                up = parents.get(id(up))
            if up is None or not _is_sum(up, printer) or any(
                    isinstance(m, ast.Name) and defined_at.get(m.id, -1) >= k
                    for m in ast.walk(up)):
                return None
            call = ast.get_source_segment(texts[j], up)
            if call not in calls:
                calls.append(call)
    return calls


def _is_sum(call: ast.Call, printer: NumpyPrinter) -> bool:
    """Whether the call is a sum along an axis or of everything (a smaller array)."""
    f = call.func
    if isinstance(f, ast.Name):
        return f.id in printer.helpers and \
            re.sub(r"_\d+$", "", f.id) in ("sum_of_product", "weighted_sum")
    if not (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and
            f.value.id == printer.np):
        return False
    if f.attr == "sum":
        return True
    if f.attr != "einsum" or not call.args or not isinstance(call.args[0], ast.Constant):
        return False
    spec = str(call.args[0].value)
    inputs, _, output = spec.partition("->")
    return "->" in spec and len(output) < max(len(i) for i in inputs.split(","))


def update_dead_temporaries(printer: NumpyPrinter, after: list[str]) -> set[str]:
    """Rewrite the printer's statements so that a value computed from a temporary that nothing
    reads afterwards is written into that temporary's array: ``u = t / s + x`` becomes
    ``u = t``, ``u /= s``, ``u += x``. An array fewer each time (on a shared machine a fresh
    m x d array's page faults cost more than a pass over it), and the same values: the
    operands are read as before, and t is never read again.

    The temporary must be a new array the code made (not an argument, not a view, not viewed
    by another name), of the statement's shape, and read by no later statement nor by ``after``
    (the code that follows: results, returns). What else in the statement reads it is computed
    before the first update (a sum of t * w); sums of it that later statements take are
    computed before this one when that frees it. The same holds inside: an operand ``s * w``
    of an update, or ``t / s`` in a call's arguments, is made in w's or t's array. Portable code
    makes ``u`` with ``own``: the array itself under NumPy, a copy in another namespace (JAX's
    arrays are immutable; torch's autograd may have kept the old value). Returns the names of
    the statements no longer written as they were."""
    statements = printer.statements
    if not statements:
        return set()
    texts = [line[len(var) + 3:] for line, (var, _) in zip(printer.lines, statements)]
    trees = [ast.parse(text, mode="eval").body for text in texts]
    last: dict[str, int] = {}
    for k, text in enumerate(texts):
        for name in identifiers(text):
            last[name] = k
    for name in identifiers("\n".join(after)):
        last[name] = len(texts)
    node_of = {var: node for var, node in statements}
    known = {p.text: p.node.shape for p in printer.done.values() if p.text.isidentifier()}
    known.update({var: node.shape for var, node in statements})

    def shape_of(tree: ast.expr):
        return _shape(tree, known, printer.math)
    defined_at = {var: k for k, (var, _) in enumerate(statements)}
    fresh: set[str] = set()
    viewed: set[str] = set()           # names whose arrays another name may share
    lines: list[str] = []
    updated: set[str] = set()
    shares: dict[str, set[str]] = {}    # names of one array (t_1 = t, u = t.T): all must be dead

    def join(a: str, b: str) -> None:
        group = shares.get(a, {a}) | shares.get(b, {b})
        for member in group:
            shares[member] = group
    for k, ((var, node), text, tree) in enumerate(zip(statements, texts, trees)):
        def alone(name: str) -> bool:
            return all(last.get(other, -1) < k for other in shares.get(name, {name}) - {name})

        def target(name: str, shape=node.shape) -> bool:
            return name in fresh and name not in viewed and last.get(name) == k and \
                name not in printer.local and id(node_of[name]) not in printer.views and \
                node_of[name].shape == shape and alone(name)
        for name in sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}):
            # a temporary read later only by row or column sums, and a candidate here: its
            # sums taken now, so that it is free for an update in this statement
            if not (name in fresh and name not in viewed and k < last.get(name, k) < len(texts)
                    and name not in printer.local and id(node_of[name]) not in printer.views and
                    alone(name) and
                    (node_of[name].shape == node.shape and
                     _update_path(tree, lambda n, name=name: n == name) is not None or
                     _own_product(tree, name, printer) is not None)):
                continue
            calls = _later_sums(name, k, trees, texts, defined_at, printer)
            if calls is None:
                continue
            for call in calls:
                h = printer.names.get("t")
                lines.append(f"{h} = {call}")
                fresh.add(h)
                for j in range(k + 1, len(texts)):
                    if call in texts[j]:
                        texts[j] = _replace_call(texts[j], call, h)
                        trees[j] = ast.parse(texts[j], mode="eval").body
                        updated.add(statements[j][0])       # (no longer its own text)
            last[name] = k
        for name in sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}):
            call = _own_product(tree, name, printer)
            if call is not None and name in node_of and \
                    target(name, node_of[name].shape) and \
                    sum(isinstance(n, ast.Name) and n.id == name for n in ast.walk(tree)) == 1:
                # c * (t @ b), t read no more: t scaled in place when it is the smallest
                template = PORTABLE_SCALED_OWN_PRODUCT if printer.portable else SCALED_OWN_PRODUCT
                own_product = printer.helper("scaled_own_product", template)
                segment = ast.get_source_segment(text, call)
                arguments = segment[len(call.func.id) + 1:]         # "c, t, b)"
                first = f"{printer.np}, " if printer.portable else ""
                text = text.replace(segment, f"{own_product}({first}{arguments}", 1)
                tree = ast.parse(text, mode="eval").body
                updated.add(var)
        found = _update_path(tree, target) if id(node) not in printer.views else None
        early = None if found is None else _read_first(text, found, printer)
        if early is not None and _still_read(text, found, early):
            early = None            # a read of t the hoisting would miss: no update here
        if found is None or not found[1] or early is None:
            original = text
            for argument, (name, steps) in _argument_updates(tree, target, shape_of):
                # f(t / s): t / s made in t's array, before the statement (nothing else in
                # it reads t)
                u = printer.names.get("t")
                start = f"{printer.call('own', OWN, name)}" if printer.portable else name
                lines.append(f"{u} = {start}")
                lines += [f"{u} {op}= {ast.get_source_segment(original, o)}"
                          for op, o in steps]
                text = _replace_call(text, ast.get_source_segment(original, argument), u)
                fresh.add(u)
                join(u, name)
                updated.add(var)
            chain = None
            if text == original and id(node) not in printer.views:
                chain = _chain_from(tree, lambda sub: _fresh(sub, set(), printer.np,
                                                              printer.helpers) and
                                     shape_of(sub) == node.shape)
            if chain is not None and chain[1]:
                # u = a * b + c: a * b is an array of the statement's shape that the statement
                # has just made, and nothing else holds: c is added into it (u = a * b, u += c)
                first = ast.get_source_segment(text, chain[0])
                start = f"{printer.call('own', OWN, first)}" if printer.portable else first
                lines.append(f"{var} = {start}")
                lines += [f"{var} {op}= {ast.get_source_segment(text, o)}" for op, o in chain[1]]
                fresh.add(var)
                updated.add(var)
                continue
            lines.append(f"{var} = {text}")
            if _fresh(tree, fresh, printer.np, printer.helpers):
                fresh.add(var)
                root = _view_root(tree, printer.np)
                if root is not None:           # t_1 = t, t_1 = t.T: the same array
                    join(var, root)
            else:
                viewed |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
            continue
        name, steps = found
        read_first = {}
        for call in early:                 # what reads t after the first update: before it
            read_first[call] = printer.names.get("t")
            lines.append(f"{read_first[call]} = {call}")

        def segment(operand: ast.expr) -> str:
            out = ast.get_source_segment(text, operand)
            for call, hoisted in read_first.items():
                out = _replace_call(out, call, hoisted)
            return out
        operands = [segment(operand) for _, operand in steps]
        start = f"{printer.call('own', OWN, name)}" if printer.portable else name
        lines.append(f"{var} = {start}")
        rest = ast.parse(segment(tree), mode="eval")        # what is computed from here on
        for (op, _), o in zip(steps, operands):
            # (the operand as computed: what reads t was replaced by its value, read first)
            inner = _update_path(ast.parse(o, mode="eval").body, lambda n: n != name and
                                 target(n) and sum(isinstance(m, ast.Name) and m.id == n
                                                   for m in ast.walk(rest)) == 1)
            if inner is not None and inner[1]:
                # u += s * w, w a temporary nothing reads afterwards: s * w made in w's array
                u = printer.names.get("t")
                start = f"{printer.call('own', OWN, inner[0])}" if printer.portable else inner[0]
                lines.append(f"{u} = {start}")
                lines += [f"{u} {op2}= {ast.get_source_segment(o, o2)}" for op2, o2 in inner[1]]
                fresh.add(u)
                join(u, inner[0])
                o = u
            lines.append(f"{var} {op}= {o}")
        fresh.add(var)
        join(var, name)
        updated.add(var)
    printer.lines[:] = lines
    printer.statements = []            # (the lines no longer match them one to one)
    return updated


def used_helpers(helpers: dict, lines: list[str]) -> list[str]:
    """The sources of the helpers the code calls (a helper printed for a value that was then
    written another way, such as step in where(h > 0, G, 0.0), is left out)."""
    used = identifiers("\n".join(lines))
    return [source for name, source in helpers.items() if name in used]


def uses_name(name: str, code: str) -> bool:
    """Whether generated ``code`` refers to the identifier ``name``."""
    return re.search(rf"\b{re.escape(name)}\b", code) is not None


def identifiers(code: str) -> set[str]:
    """Every identifier in ``code`` (one pass: for asking about many names)."""
    return set(re.findall(r"[A-Za-z_]\w*", code))


def dimensions(roots) -> list[sympy.Symbol]:
    """The symbolic dimensions used in ``roots``, in first-use order (as ``expr.dimensions``,
    in time linear in the number of nodes and dimensions)."""
    found: list[sympy.Symbol] = []
    seen: set = set()
    for node in E.postorder(roots):
        exprs = list(node.shape)
        if isinstance(node, E.Const):
            exprs.append(node.value)
        for e in exprs:
            for s in sorted(e.free_symbols, key=lambda s: s.name):
                if s not in seen:
                    seen.add(s)
                    found.append(s)
    return found


def convert_input(v: E.Var, printer: NumpyPrinter) -> list[str]:
    """Statements turning argument ``v`` into a 2-D floating array (no shape check)."""
    name, np = v.name, printer.np
    if printer.portable:
        text = printer.call("as_float", PORTABLE_AS_FLOAT, name)
    else:
        return [f"if type({name}) is not {np}.ndarray or {name}.dtype.kind != \"f\":",
                f"    {name} = {printer.helper('as_float', AS_FLOAT)}({name!r}, {name})"] + \
            ([f"{name} = {printer.reshape(name, _COLUMN[v.kind])}"] if v.kind != "matrix"
             else [])
    if v.kind != "matrix":
        text = printer.reshape(text, _COLUMN[v.kind])
    return [f"{name} = {text}"]


_COLUMN = {"vector": "(-1, 1)", "scalar": "(1, 1)"}


def take_inputs(printer: NumpyPrinter, given: list[E.Var], dtype_used: bool) -> tuple[list, set]:
    """The statements that take the arguments in, and the dimensions they bind.

    Each argument becomes an array of a floating type (an ndarray of one passes as it is: the
    test is two attribute reads), its shape is checked against its declaration (one comparison
    per argument; the error names it: ``W: expected shape (n, d) = (3, 4), got (4, 3)``),
    every dimension of the arguments is bound (``n = W.shape[0]``), and vectors and scalars
    become columns and 1 x 1 arrays. A scalar takes the arrays' floating type, so a Python
    number never turns float32 arrays into float64. ``dtype`` is bound when the code uses it.
    """
    np, portable = printer.np, printer.portable
    arrays = [v for v in given if v.kind != "scalar"]
    scalars = [v for v in given if v.kind == "scalar"]
    body: list[str] = []
    for v in arrays:
        if portable:
            body.append(f"{v.name} = {printer.call('as_float', PORTABLE_AS_FLOAT, v.name)}")
        else:
            body += [f"if type({v.name}) is not {np}.ndarray or {v.name}.dtype.kind != \"f\":",
                     f"    {v.name} = {printer.helper('as_float', AS_FLOAT)}({v.name!r}, "
                     f"{v.name})"]
    need_dtype = dtype_used or (bool(scalars) and bool(arrays))
    if not portable and need_dtype:
        body.append(f"{printer.dtype} = {np}.result_type("
                    f"{', '.join([v.name for v in arrays or scalars] + ['0.0'])})")
        for v in scalars:
            body.append(f"{v.name} = {np}.asarray({v.name}, dtype={printer.dtype})"
                        if arrays else f"{v.name} = {np}.asarray({v.name})")
    elif not portable:
        for v in scalars:
            body += [f"if type({v.name}) is not {np}.ndarray or {v.name}.dtype.kind != "
                     f"\"f\":",
                     f"    {v.name} = {printer.helper('as_float', AS_FLOAT)}({v.name!r}, "
                     f"{v.name})"]
    # the shapes: ranks first (so that binding a dimension cannot fail), then sizes
    checked = arrays if portable else arrays + scalars
    printer.checked = checked
    if checked:
        declared = "(" + ", ".join(f"({v.name!r}, {_declared_dims(v)})" for v in checked) + \
            ("," if len(checked) == 1 else "") + ")"
        given_arrays = "(" + ", ".join(v.name for v in checked) + \
            ("," if len(checked) == 1 else "") + ")"
        error = f"raise {printer.helper('shape_error', SHAPE_ERROR)}({declared}, {given_arrays})"
        ranks = [f"{v.name}.ndim != {2 if v.kind == 'matrix' else 1}" if v.kind != "scalar"
                 else f"{v.name}.size != 1" for v in checked]
        body += [f"if {' or '.join(ranks)}:", f"    {error}"]
    bound: dict = {}
    for v in arrays:
        for axis, size in enumerate(v.shape[:1] if v.kind == "vector" else v.shape):
            if isinstance(size, sympy.Symbol) and size not in bound:
                bound[size] = (v, axis)
                body.append(f"{size.name} = {v.name}.shape[{axis}]")
    sizes = []
    for v in arrays:
        dims = v.shape[:1] if v.kind == "vector" else v.shape
        if all(bound.get(d) == (v, axis) for axis, d in enumerate(dims)):
            continue                      # every dimension read off this argument itself
        expected = "(" + ", ".join(printer.dim(d) for d in dims) + \
            ("," if len(dims) == 1 else "") + ")"
        sizes.append(f"{v.name}.shape != {expected}")
    if sizes:
        body += [f"if {' or '.join(sizes)}:", f"    {error}"]
    for v in arrays:
        if v.kind == "vector":
            body.append(f"{v.name} = {printer.reshape(v.name, '(-1, 1)')}")
    if len(arrays) > 1:
        # arguments of two floating types (a float32 X, a float64 gamma) all take the common
        # one first: the code updates its own temporaries in place, which would otherwise keep
        # a float32 temporary's type where the quotient with a float64 value is float64
        names = [v.name for v in arrays]
        body.append(f"if {' or '.join(f'{names[0]}.dtype != {n}.dtype' for n in names[1:])}:")
        if portable:
            body += [f"    {dtype_statement(printer, names)}",
                     f"    {', '.join(names)} = ({np}.asarray(a, dtype={printer.dtype}) "
                     f"for a in ({', '.join(names)}))"]
        else:
            body.append(f"    {', '.join(names)} = "
                        f"{printer.helper('same_dtype', SAME_DTYPE)}({', '.join(names)})")
    if portable:
        if need_dtype:
            body.append(dtype_statement(printer, [v.name for v in arrays]))
        for v in scalars:
            text = f"{np}.asarray({v.name}, dtype={printer.dtype})" if arrays else \
                printer.call("as_float", PORTABLE_AS_FLOAT, v.name)
            body.append(f"{v.name} = {printer.reshape(text, '(1, 1)')}")
        if need_dtype and not arrays:
            body.append(dtype_statement(printer, [v.name for v in scalars]))
    else:
        for v in scalars:
            body.append(f"{v.name} = {printer.reshape(v.name, '(1, 1)')}")
        if dtype_used and not arrays:
            body.append(f"{printer.dtype} = {scalars[0].name}.dtype" if scalars else
                        f"{printer.dtype} = {np}.float64")
    return body, set(bound)


def _declared_dims(v: E.Var) -> str:
    """A variable's declared dimensions as Python literals: ('n', 'd'), ('n',), (3,), ()."""
    dims = v.shape[:1] if v.kind == "vector" else () if v.kind == "scalar" else v.shape
    items = [repr(d.name) if isinstance(d, sympy.Symbol) else str(int(d)) for d in dims]
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def take_optional(v: E.Var, printer: NumpyPrinter, bound: set) -> list[str]:
    """``if G is None: G = ones(...) else: <G taken in and checked>`` for an optional argument
    (the upstream gradient), its dimensions bound from the other arguments."""
    np = printer.np
    shape = ", ".join(printer.dim(d) for d in v.shape)
    lines = [f"if {v.name} is None:", f"    {v.name} = {np}.ones(({shape}), {printer.typed()})",
             "else:"]
    lines += ["    " + line for line in convert_input(v, printer)]
    dims = v.shape[:1] if v.kind == "vector" else () if v.kind == "scalar" else v.shape
    if all(not isinstance(d, sympy.Symbol) or d in bound for d in dims):
        expected = "(" + ", ".join(printer.dim(d) for d in dims) + \
            ("," if len(dims) == 1 else "") + ")"
        every = printer.checked + [v]       # so the message has the sizes
        declared = "(" + ", ".join(f"({u.name!r}, {_declared_dims(u)})" for u in every) + \
            ("," if len(every) == 1 else "") + ")"
        given = "(" + ", ".join(u.name for u in every) + ("," if len(every) == 1 else "") + ")"
        error = f"raise {printer.helper('shape_error', SHAPE_ERROR)}({declared}, {given})"
        # the check comes before the reshape to a column, so it is written first
        convert = lines[3:]
        lines[3:] = convert[:-1] if v.kind != "matrix" else convert
        lines += [f"    if {v.name}.shape != {expected}:", f"        {error}"]
        if v.kind != "matrix":
            lines.append(convert[-1])
    # (G of the arguments' floating type, as the gradients are: never mixed with them)
    if printer.portable:
        cast = f"{np}.asarray({v.name}, dtype={printer.dtype})"
        test = f"{v.name}.dtype != {printer.dtype}"
    else:                          # (a complex G is left as it is: a cast would drop its part)
        cast = f"{v.name}.astype({printer.dtype})"
        test = f"{v.name}.dtype != {printer.dtype} and {v.name}.dtype.kind == " \
               f"{printer.dtype}.kind"
    return lines + [f"    if {test}:", f"        {v.name} = {cast}"]


def dtype_statement(printer: NumpyPrinter, arrays: list[str]) -> str:
    """``dtype = ...``: the floating type of the given (converted) arrays."""
    if printer.portable:
        if not arrays:
            return f"{printer.dtype} = {printer.np}.float64"
        return f"{printer.dtype} = {printer.helper('common_dtype', PORTABLE_DTYPE)}" \
               f"({', '.join(arrays)})"
    return f"{printer.dtype} = {printer.np}.result_type({', '.join(arrays + ['0.0'])})"


def bind_dims(dims, inputs, body) -> set:
    """Append ``d = v.shape[k]`` to ``body`` for each dimension some input has; the bound set."""
    bound = set()
    for d in dims:
        for v in inputs:
            for axis, size in enumerate(v.shape):
                if size == d and d not in bound:
                    body.append(f"{d.name} = {v.name}.shape[{axis}]")
                    bound.add(d)
    return bound


_bind_dims = bind_dims


def convert_output(p: Printed, kind: str, printer: NumpyPrinter) -> str:
    """The printed value in the form of its variable: a number, a 1-D array or a fresh matrix."""
    np = printer.np
    text = p.text
    if kind == "operand":                      # an array to compute with, not to hand out
        return printer.array(p)
    if kind == "matrix" and p.node.is_scalar:
        # a matrix-form result is always an array; a 1 x 1 expression may print as a number
        return f"{np}.full((1, 1), {text}, {printer.typed()})"
    # a fresh, writable array, not a view of an input or a read-only broadcast or diagonal
    fresh = isinstance(p.node, (E.Broadcast, E.Var)) or id(p.node) in printer.views
    flat = printer.flat.get(id(p.node)) if kind == "vector" and p.prec != ATOM else None
    if flat is not None:
        return f"{np}.asarray({flat}, copy=True)" if printer.portable else f"{flat}.copy()"
    constant = printer.constant.get(id(p.node), False)
    if printer.portable:
        if kind == "scalar" and constant:         # (an int: of the inputs' floating type)
            text = f"{np}.asarray({text}, {printer.typed()})"
        if kind == "scalar":
            return f"{np}.reshape({text}, ())[()]"     # a NumPy float; a 0-d array elsewhere
        if kind == "vector":
            text = f"{np}.reshape({text}, (-1,))"
        return f"{np}.asarray({text}, copy=True)" if fresh else text
    if kind == "scalar":
        # a NumPy scalar of the inputs' floating type (a float32 stays float32)
        if constant:
            printer.uses_dtype = True
            return f"{np}.reshape({np}.asarray({text}, dtype={printer.dtype}), ())[()]"
        return f"{printer.wrap(p, POSTFIX)}.reshape(())[()]"    # (methods: no dispatch cost)
    if kind == "vector":
        if constant:
            text = f"{np}.reshape({text}, -1)"
        else:
            text = f"{printer.wrap(p, POSTFIX)}.reshape(-1)"
    return f"{text}.copy()" if fresh and not constant else \
        f"{np}.array({text})" if fresh else text


_convert_output = convert_output


def compile_module(source: str, label: str) -> types.ModuleType:
    """Execute generated source as a new module (named ``label``) and return it.

    This is the only place matcalc runs code: its own generated source, in which user text
    appears only as validated identifiers (variable and dimension names) and exact numbers.
    """
    module = types.ModuleType(label)
    exec(compile(source, f"<matcalc {label}>", "exec"), module.__dict__)  # generated code only
    return module
