"""SymPy matrix expressions in and out: ``read`` turns one into matcalc nodes, ``write`` back.

Contract:
- ``read(expr)`` reads a SymPy matrix (or scalar) expression over ``MatrixSymbol`` s: MatMul,
  MatAdd, MatPow with an integer exponent, Transpose, Inverse, Trace, Determinant,
  HadamardProduct, HadamardPower with a numeric exponent, Identity, OneMatrix, ZeroMatrix,
  DiagMatrix, DiagonalOf, scalar symbols and numbers, scalar arithmetic, and the elementwise
  functions of the registry (``ops.elementwise``: its SymPy functions, and SymPy's own ``Abs``
  and ``sign``), on scalars or applied elementwise (``X.applyfunc(exp)``, whose ``Lambda`` body
  is read with its variable standing for every entry). Shapes come from the MatrixSymbols
  (dimensions SymPy symbols or integers); a symbol that is a dimension stands for its size
  (``Trace(X) / n``). Anything else is refused in one line naming the SymPy class.
- ``write(node)`` writes a node as an equal SymPy expression, every operation in SymPy's own
  vocabulary (a scalar multiple as ``s*X``, ``sum(X)`` as ``1ᵀ X 1`` with ``OneMatrix``, a
  1x1 matrix used as a number as its ``Trace``). Operations SymPy cannot write (softmax,
  logsumexp, einsum) are refused with the spelled-out form to use instead.
- ``Names`` carries the user's own SymPy symbols from ``read`` to ``write``, so results come
  back over the very symbols (and dimension symbols) the user wrote.

This module reads no text: it walks SymPy objects and never calls ``sympify``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import reduce
from typing import Callable

import sympy
from sympy.matrices.expressions import (Determinant, HadamardPower, HadamardProduct, Identity,
                                        Inverse, KroneckerProduct, MatAdd, MatMul, MatPow,
                                        MatrixExpr, MatrixSymbol, OneMatrix, Trace, Transpose,
                                        ZeroMatrix)
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.diagonal import DiagMatrix, DiagonalOf
from sympy.matrices.expressions.matexpr import MatrixElement

from . import expr as E
from .dims import dim, is_one
from .errors import MatcalcError, UnsupportedError
from .ops import FUNCTIONS, SYMPY_TO_NAME, check_name, operation_of
from .ops.contractions import Einsum, Sum
from .ops.contractions import Trace as TraceNode
from .ops.elementwise import apply
from .ops.linalg import Det, Diag, Inv, LogDet
from .ops.reductions import LogSumExp, Norm, Norm1, Softmax

#: What ``read`` accepts, for its error message.
READS = ("MatrixSymbol, MatMul, MatAdd, MatPow (integer exponent), Transpose, Inverse, Trace, "
         "Determinant, HadamardProduct, HadamardPower, Identity, OneMatrix, ZeroMatrix, "
         "DiagMatrix, DiagonalOf, applyfunc, scalar symbols, numbers and "
         + ", ".join(name for name in FUNCTIONS))



def _relu(u):
    return sympy.Max(u, 0)


def _step(u):
    return sympy.Heaviside(u, 0)


#: SymPy's own function for an elementwise function whose registry row differentiates through
#: a SymPy function of matcalc's own whose elementary form is a Piecewise (SymPy's Abs
#: differentiates through re and im; SymPy has no relu): written and read back as these.
#: Every other function of matcalc's own (sigmoid, softplus, gelu, silu, ...) is written in the
#: elementary form its class rewrites to (``elementary``), so a result evaluates and
#: differentiates in plain SymPy.
SYMPY_OWN = {"abs": sympy.Abs, "sign": sympy.sign, "relu": _relu, "step": _step}


def is_own(function) -> bool:
    """Whether ``function`` is a SymPy function class of matcalc's (not SymPy's own)."""
    return getattr(function, "__module__", "").split(".")[0] == __name__.split(".")[0]


def elementary(function) -> Callable:
    """``function`` as SymPy writes it: itself, or for a class of matcalc's own the elementary
    form its ``_eval_rewrite_as_...`` gives (each row's class has one; the elementwise tests
    differentiate it)."""
    if not is_own(function):
        return function
    rules = [name for name in vars(function) if name.startswith("_eval_rewrite_as_")]
    if not rules:
        raise UnsupportedError(f"{function.__name__} has no elementary form to write in SymPy")

    def spelled(u):
        return getattr(function(u), rules[0])(u)
    return spelled

#: Operations SymPy has no matrix expression for, written out with ones it has (``_spelled_out``).
SPELLED_OUT = (Softmax, LogSumExp)

#: The operations SymPy has no matrix expression for, with what to derive instead.
NO_COUNTERPART = {
    Softmax: "softmax has no SymPy counterpart; derive the spelled-out form "
             "exp(x) / sum(exp(x)) to get a result SymPy can take",
    LogSumExp: "logsumexp has no SymPy counterpart; derive the spelled-out form "
               "log(sum(exp(x))) to get a result SymPy can take",
    Einsum: "an einsum has no SymPy matrix expression; the result has no matrix form to write",
}


@dataclass
class Names:
    """The user's SymPy symbols by name: matrix symbols, scalar symbols and dimensions."""

    symbols: dict = field(default_factory=dict)      # name -> Symbol or MatrixSymbol
    dims: dict = field(default_factory=dict)         # name -> the user's dimension symbol

    def dim_map(self) -> dict:
        """matcalc's dimension symbol -> the user's."""
        return {dim(name): user for name, user in self.dims.items()}


def is_sympy(value) -> bool:
    """Whether ``value`` is a SymPy object (what ``read`` is for)."""
    return isinstance(value, (sympy.Basic, sympy.MatrixBase))


# ---------------------------------------------------------------------------------------------
# SymPy -> matcalc
# ---------------------------------------------------------------------------------------------

def read(expression, domains: dict | None = None) -> tuple[E.Node, Names]:
    """The matcalc node equal to a SymPy expression, and the user's symbols it used.

    >>> n = sympy.Symbol("n"); X = MatrixSymbol("X", n, n); A = MatrixSymbol("A", n, n)
    >>> node, names = read(Trace(A * X.T))
    >>> node.shape, sorted(names.symbols)
    ((1, 1), ['A', 'X'])
    """
    if not is_sympy(expression):
        raise MatcalcError(f"from_sympy takes a SymPy expression, not "
                           f"{type(expression).__name__}")
    if isinstance(expression, sympy.MatrixBase):
        raise _refuse(expression, _EXPLICIT)
    reader = _Reader(dict(domains or {}))
    reader.collect_dims(expression)
    try:
        node = reader.read(expression)
    except RecursionError:
        raise UnsupportedError("this SymPy expression is nested too deeply to read") from None
    unknown = set(reader.domains) - set(reader.names.symbols)
    if unknown:
        raise MatcalcError(f"domains= names {', '.join(sorted(unknown))}, not a symbol of the "
                           "expression")
    return node, reader.names


def read_target(target, names: Names, domains: dict | None = None) -> E.Node:
    """A SymPy ``wrt`` read against the symbols of the expression it belongs to."""
    reader = _Reader(dict(domains or {}))
    reader.names = Names(dict(names.symbols), dict(names.dims))
    reader.collect_dims(target)
    return reader.read(target)


_EXPLICIT = " (an explicit matrix): write it as a MatrixSymbol"


def _refuse(e, why: str = "") -> MatcalcError:
    name = type(e).__name__
    return UnsupportedError(f"cannot read SymPy's {name}{why}: matcalc reads {READS}")


class _Reader:
    """One reading: the dimensions and symbols seen so far, and the nodes read (by SymPy
    object; a ``Lambda`` body is read afresh for each matrix it is applied to)."""

    def __init__(self, domains: dict):
        self.domains = domains
        self.names = Names()
        self.done: dict = {}

    # -- dimensions ------------------------------------------------------------------------------
    def collect_dims(self, expression) -> None:
        """Every symbol in a matrix shape is a dimension (so ``n`` alone is its size)."""
        for e in sympy.preorder_traversal(expression):
            if isinstance(e, MatrixExpr):
                for d in e.shape:
                    for s in getattr(d, "free_symbols", ()):
                        self.names.dims.setdefault(s.name, s)

    def dim(self, d) -> sympy.Expr:
        if isinstance(d, sympy.Symbol):
            other = self.names.dims.setdefault(d.name, d)
            if other != d:
                raise MatcalcError(f"two different SymPy symbols are named {d.name}: "
                                   f"{sympy.srepr(other)} and {sympy.srepr(d)}")
            return dim(d.name)
        if isinstance(d, (int, sympy.Integer)):
            return dim(int(d))
        raise UnsupportedError(f"dimension {d}: matcalc's dimensions are symbols or positive "
                               "integers")

    # -- symbols ---------------------------------------------------------------------------------
    def symbol(self, e, shape: tuple, kind: str | None) -> E.Var:
        name = e.name
        check_name(name)
        other = self.names.symbols.setdefault(name, e)
        if other != e:
            raise MatcalcError(f"two different SymPy symbols are named {name}: {other!r} "
                               f"({_shape_words(other)}) and {e!r} ({_shape_words(e)})")
        domain = self.domains.get(name)
        if domain is None:
            domain = "positive" if getattr(e, "is_positive", None) else "real"
        return E.Var.make(name, shape, kind, domain)

    # -- the walk --------------------------------------------------------------------------------
    def read(self, e, bound: dict | None = None) -> E.Node:
        if bound:
            return self._read(e, bound)
        node = self.done.get(e)
        if node is None:
            node = self.done[e] = self._read(e, None)
        return node

    def _read(self, e, bound):
        if bound and e in bound:
            return bound[e]
        if isinstance(e, (sympy.MatrixBase, sympy.NDimArray)):
            raise _refuse(e, _EXPLICIT)
        if isinstance(e, MatrixExpr):
            return self._matrix(e, bound)
        if not isinstance(e, sympy.Expr):
            raise _refuse(e)
        return self._scalar(e, bound)

    def _matrix(self, e, bound) -> E.Node:
        def arg(x):
            return self.read(x, bound)

        if isinstance(e, MatrixSymbol):
            return self.symbol(e, (self.dim(e.rows), self.dim(e.cols)), None)
        if isinstance(e, MatrixElement):
            raise _refuse(e, f" (the entry {e})")
        if isinstance(e, MatMul):
            scalars = [arg(a) for a in e.args if not isinstance(a, MatrixExpr)]
            product = reduce(E.MatMul.make, [arg(a) for a in e.args if isinstance(a, MatrixExpr)])
            return reduce(E.mul, scalars, product)
        if isinstance(e, MatAdd):
            return reduce(E.add, [arg(a) for a in e.args])
        if isinstance(e, MatPow):
            return self._matpow(e, arg(e.base))
        if isinstance(e, Transpose):
            return E.Transpose.make(arg(e.arg))
        if isinstance(e, Inverse):
            return Inv.make(arg(e.arg))
        if isinstance(e, HadamardProduct):
            return reduce(E.mul, [arg(a) for a in e.args])
        if isinstance(e, HadamardPower):
            if isinstance(e.exp, MatrixExpr) or not e.exp.is_number:
                raise _refuse(e, f" with the exponent {e.exp} (only a number)")
            return E.power(arg(e.base), _number(e.exp))
        if isinstance(e, Identity):
            return E.Eye.make(self.dim(e.rows))
        if isinstance(e, OneMatrix):
            return E.ones(self.dim(e.rows), self.dim(e.cols))
        if isinstance(e, ZeroMatrix):
            return E.zeros(self.dim(e.rows), self.dim(e.cols))
        if isinstance(e, (DiagMatrix, DiagonalOf)):
            return Diag.make(arg(e.args[0]))
        if isinstance(e, ElementwiseApplyFunction):
            return self._elementwise(e.function, arg(e.expr))
        raise _refuse(e)

    def _matpow(self, e, base: E.Node) -> E.Node:
        k = e.exp
        if not (k.is_Integer):
            raise _refuse(e, f" with the exponent {k} (only an integer)")
        if k == 0:
            return E.Eye.make(base.rows)
        factor = base if k > 0 else Inv.make(base)
        return reduce(E.MatMul.make, [factor] * abs(int(k)))

    def _elementwise(self, function, operand: E.Node) -> E.Node:
        """f applied to every entry: the body of f read with its variable standing for the
        whole operand (every operation a scalar body holds is elementwise in matcalc)."""
        if isinstance(function, sympy.Lambda):
            if len(function.variables) != 1:
                raise _refuse(function, " of several variables")
            variable, body = function.variables[0], function.expr
        else:
            variable = sympy.Dummy("x")
            body = function(variable)
        return self.read(body, {variable: operand})

    def _scalar(self, e, bound) -> E.Node:
        def arg(x):
            return self.read(x, bound)

        if isinstance(e, sympy.Symbol):
            if e.name in self.names.dims and not isinstance(e, sympy.Dummy):
                return E.Const.make(self.dim(e))
            if isinstance(e, sympy.Dummy):
                raise _refuse(e, f" {e} (a variable bound elsewhere)")
            return self.symbol(e, (1, 1), "scalar")
        if e.is_number:
            return E.Const.make(float(e) if isinstance(e, sympy.Float) else e)
        if isinstance(e, (Trace, Determinant)):
            operand = arg(e.arg)
            return TraceNode.make(operand) if isinstance(e, Trace) else Det.make(operand)
        if isinstance(e, sympy.Add):
            return reduce(E.add, [arg(a) for a in e.args])
        if isinstance(e, sympy.Mul):
            return reduce(E.mul, [arg(a) for a in e.args])
        if isinstance(e, sympy.Pow):
            if not e.exp.is_number:
                raise _refuse(e, f" {e} (an exponent must be a number)")
            return E.power(arg(e.base), _number(e.exp))
        if isinstance(e, sympy.Max) and len(e.args) == 2 and sympy.S.Zero in e.args:
            return apply("relu", arg(e.args[1] if e.args[0] == 0 else e.args[0]))
        if isinstance(e, sympy.Heaviside):
            if e.args[1:] != (sympy.S.Zero,):
                raise _refuse(e, f" {e} with H(0) = {e.args[1]} (matcalc's step is "
                                 "Heaviside(x, 0))")
            return apply("step", arg(e.args[0]))
        if isinstance(e, sympy.Function) and len(e.args) == 1:
            name = SYMPY_TO_NAME.get(e.func) or _OWN_NAMES.get(e.func)
            if name is not None:
                return apply(name, arg(e.args[0]))
        raise _refuse(e, f" {e}" if len(str(e)) <= 40 else "")


_OWN_NAMES = {sympy.Abs: "abs", sympy.sign: "sign"}


def _number(value):
    return float(value) if isinstance(value, sympy.Float) else value


def _shape_words(symbol) -> str:
    if isinstance(symbol, MatrixSymbol):
        return f"{symbol.rows}×{symbol.cols}"
    return "a scalar"


# ---------------------------------------------------------------------------------------------
# matcalc -> SymPy
# ---------------------------------------------------------------------------------------------

def write(node: E.Node, names: Names | None = None):
    """``node`` as an equal SymPy expression, over the user's symbols where ``names`` has them.

    >>> X = E.Var.make("X", ("n", "n")); x = E.Var.make("x", ("n", 1))
    >>> write(E.MatMul.make(E.Transpose.make(x), E.MatMul.make(X, x)))
    x.T*X*x
    """
    writer = _Writer(names or Names())
    values = writer.values
    node = E.substitute([node], {n: _spelled_out(n) for n in E.postorder([node])
                                 if type(n) in SPELLED_OUT})[0]
    for n in E.postorder([node]):
        values[id(n)] = writer.write(n, [values[id(a)] for a in n.args])
    return values[id(node)]


def _spelled_out(node: E.Node) -> E.Node:
    """softmax and logsumexp written with exp, sum and log, which SymPy has."""
    x, axis = node.args[0], node.axis
    total = Sum.make(E.Apply.make("exp", x), axis)
    if isinstance(node, LogSumExp):
        return E.Apply.make("log", total)
    return E.div(E.Apply.make("exp", x), total.T if axis == 0 else total)


def write_kronecker(terms, names: Names | None = None):
    """Σ coeff · (left ⊗ right) over ``(coeff, left, right)`` triples, as a SymPy matrix."""
    dims = (names or Names()).dim_map()
    parts = [_exact(c).xreplace(dims) * KroneckerProduct(write(left, names), write(right, names))
             for c, left, right in terms]
    return reduce(lambda a, b: a + b, parts)


def _exact(value) -> sympy.Expr:
    return value if isinstance(value, sympy.Basic) else sympy.Integer(value)


def _scalar(value):
    """A 1x1 SymPy matrix expression as a number (its trace); numbers pass through."""
    return Trace(value) if isinstance(value, MatrixExpr) else value


def _both_matrices(args) -> bool:
    return all(isinstance(a, MatrixExpr) for a in args)


class _Writer:
    """One node at a time, from its operands' SymPy values (a table keyed by node class)."""

    def __init__(self, names: Names):
        self.names = names
        self.dims = names.dim_map()
        self.values: dict[int, object] = {}         # node id -> its SymPy value, written so far
        self.table: dict[type, Callable] = {
            E.Var: self.var, E.Const: self.const, E.Eye: self.eye, E.MatMul: self.matmul,
            E.Transpose: self.transpose, E.Add: self.add, E.Sub: self.sub, E.Neg: self.neg,
            E.Mul: self.mul, E.Div: self.div, E.Pow: self.pow, E.Apply: self.apply,
            E.Broadcast: self.broadcast, Sum: self.sum, TraceNode: self.trace, Det: self.det,
            LogDet: self.logdet, Inv: self.inv, Diag: self.diag, Norm: self.norm,
            Norm1: self.norm1,
        }

    def write(self, node: E.Node, args: list):
        if type(node) in NO_COUNTERPART:
            raise UnsupportedError(NO_COUNTERPART[type(node)])
        method = self.table.get(type(node))
        if method is None:
            op = operation_of(node)
            name = op.name if op is not None else type(node).__name__
            raise UnsupportedError(f"{name} has no SymPy counterpart that matcalc writes")
        return method(node, args)

    def d(self, value):
        """A matcalc dimension (or an expression in dimensions) over the user's symbols."""
        return _exact(value).xreplace(self.dims)

    # -- leaves ----------------------------------------------------------------------------------
    def var(self, node, args):
        user = self.names.symbols.get(node.name)
        if user is not None:
            return user
        if node.kind == "scalar":
            return sympy.Symbol(node.name, positive=True) if node.domain == "positive" \
                else sympy.Symbol(node.name)
        return MatrixSymbol(node.name, self.d(node.rows), self.d(node.cols))

    def const(self, node, args):
        return self.d(node.value)

    def eye(self, node, args):
        return Identity(self.d(node.rows))

    # -- the algebra of Python's operators -------------------------------------------------------
    def matmul(self, node, args):
        a, b = args
        return a * b

    def transpose(self, node, args):
        return args[0].T if isinstance(args[0], MatrixExpr) else args[0]

    def add(self, node, args):
        a, b = args
        if node.is_scalar and not _both_matrices(args):
            return _scalar(a) + _scalar(b)
        return a + b

    def sub(self, node, args):
        a, b = args
        if node.is_scalar and not _both_matrices(args):
            return _scalar(a) - _scalar(b)
        return a - b

    def neg(self, node, args):
        return -args[0]

    def mul(self, node, args):
        if node.is_scalar:
            return _scalar(args[0]) * _scalar(args[1])
        for k in (0, 1):               # a scalar multiple s * X, not HadamardProduct(s 1 1ᵀ, X)
            operand = node.args[k]
            if isinstance(operand, E.Broadcast) and operand.args[0].is_scalar:
                return self.scalar_of(operand) * args[1 - k]
        return HadamardProduct(*args)

    def div(self, node, args):
        a, b = args
        if node.is_scalar:
            return _scalar(a) / _scalar(b)
        top, bottom = node.args
        if isinstance(bottom, E.Broadcast) and bottom.args[0].is_scalar:
            return a / self.scalar_of(bottom)
        reciprocal = HadamardPower(b, -1)
        if isinstance(top, E.Broadcast) and top.args[0].is_scalar:
            return self.scalar_of(top) * reciprocal
        return HadamardProduct(a, reciprocal)

    def scalar_of(self, broadcast: E.Broadcast):
        """The number a broadcast repeats, as SymPy has already written it."""
        return _scalar(self.values[id(broadcast.args[0])])

    def pow(self, node, args):
        if node.is_scalar:
            return _scalar(args[0]) ** node.exponent
        return HadamardPower(args[0], node.exponent)

    def apply(self, node, args):
        function = SYMPY_OWN.get(node.name) or elementary(FUNCTIONS[node.name].function.sympy)
        if node.is_scalar:
            return function(_scalar(args[0]))
        return args[0].applyfunc(function)

    def broadcast(self, node, args):
        a = node.args[0]
        rows, cols = self.d(node.rows), self.d(node.cols)
        if a.is_scalar:
            value = _scalar(args[0])
            if value == 0:
                return ZeroMatrix(rows, cols)
            return OneMatrix(rows, cols) if value == 1 else value * OneMatrix(rows, cols)
        if is_one(a.cols):                                 # a column repeated across columns
            return args[0] * OneMatrix(1, cols)
        return OneMatrix(rows, 1) * args[0]                # a row repeated down the rows

    # -- contractions and linear algebra ---------------------------------------------------------
    def sum(self, node, args):
        a, value = node.args[0], args[0]
        if a.is_scalar:
            return value
        ones_rows, ones_cols = OneMatrix(1, self.d(a.rows)), OneMatrix(self.d(a.cols), 1)
        if node.axis is None:
            if is_one(a.cols):
                return ones_rows * value
            if is_one(a.rows):
                return value * ones_cols
            return ones_rows * value * ones_cols
        if node.axis == 0:
            return value.T * ones_rows.T                  # NumPy's column sums, as a column
        return value * ones_cols

    def trace(self, node, args):
        return Trace(args[0]) if isinstance(args[0], MatrixExpr) and not node.args[0].is_scalar \
            else _scalar(args[0])

    def det(self, node, args):
        return Determinant(args[0]) if not node.args[0].is_scalar else _scalar(args[0])

    def logdet(self, node, args):
        return sympy.log(sympy.Abs(self.det(node, args)))

    def inv(self, node, args):
        return Inverse(args[0]) if not node.args[0].is_scalar else 1 / _scalar(args[0])

    def diag(self, node, args):
        if node.args[0].is_scalar:
            return args[0]
        return DiagMatrix(args[0]) if node.to_matrix else DiagonalOf(args[0])

    def norm(self, node, args):
        value = args[0]
        if node.args[0].is_scalar:
            return sympy.Abs(_scalar(value))
        return sympy.sqrt(Trace(value.T * value))

    def norm1(self, node, args):
        a = node.args[0]
        absolute = args[0].applyfunc(sympy.Abs) if not a.is_scalar else sympy.Abs(_scalar(args[0]))
        return self.sum(Sum.make(a), [absolute])


E.set_converter("sympy", write)
