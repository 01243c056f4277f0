"""Elementwise functions: one row each in ``TABLE``.

Contract: a row (``base.Function``) is everything about a scalar function applied to every
entry: its SymPy form (whose ``sympy.diff`` gives the derivative matcalc uses — no derivative is
typed in), its domain and kinks, its LaTeX and NumPy spellings, and the letter its value is
named by. ``OPERATIONS`` turns each row into an ``Operation`` on the generic ``Apply`` node.
Adding a function is adding a row (see docs/how-it-works.md, "Adding an operation").

Functions SymPy lacks, or whose SymPy derivative is not usable on real arrays (``Abs``
differentiates through ``re``/``im``; ``sign`` to a Dirac delta), are defined here as SymPy
``Function`` subclasses with their scalar derivative; each has a ``rewrite`` to elementary
functions that the tests differentiate to confirm that derivative.
"""

from __future__ import annotations

from types import MappingProxyType

import sympy
from sympy.codegen.cfunctions import expm1, log1p

from ..constants import small_argument
from ..expr import Apply, Broadcast, Const, Node, Var, as_node, constant_value
from ..notation import entry
from .base import ADD, MUL, Function, Operation, call


class sigmoid(sympy.Function):
    """The logistic function 1 / (1 + exp(-x))."""

    def fdiff(self, argindex=1):
        s = sigmoid(self.args[0])
        return s * (1 - s)

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return 1 / (1 + sympy.exp(-x))


class softplus(sympy.Function):
    """log(1 + exp(x)), whose derivative is the sigmoid."""

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return sympy.log(1 + sympy.exp(x))


class step(sympy.Function):
    """The unit step: 1 for x > 0, else 0. Its derivative is 0 wherever it exists (x != 0)."""

    def fdiff(self, argindex=1):
        return sympy.S.Zero

    def _eval_rewrite_as_Piecewise(self, x, **kwargs):
        return sympy.Piecewise((1, x > 0), (0, True))


class sign(sympy.Function):
    """The sign function; its derivative is 0 wherever it exists (x != 0)."""

    def fdiff(self, argindex=1):
        return sympy.S.Zero

    def _eval_rewrite_as_Piecewise(self, x, **kwargs):
        return sympy.Piecewise((1, x > 0), (-1, x < 0), (0, True))


class absolute(sympy.Function):
    """|x| on real numbers; derivative sign(x) for x != 0."""

    def fdiff(self, argindex=1):
        return sign(self.args[0])

    def _eval_rewrite_as_Piecewise(self, x, **kwargs):
        return sympy.Piecewise((x, x > 0), (-x, True))


class relu(sympy.Function):
    """max(x, 0); derivative step(x) for x != 0."""

    def fdiff(self, argindex=1):
        return step(self.args[0])

    def _eval_rewrite_as_Piecewise(self, x, **kwargs):
        return sympy.Piecewise((x, x > 0), (0, True))


class square(sympy.Function):
    """x ** 2, NumPy's ``square``."""

    def fdiff(self, argindex=1):
        return 2 * self.args[0]

    def _eval_rewrite_as_Pow(self, x, **kwargs):
        return x ** 2


def _normal_cdf(x):
    """Phi(x), the standard normal distribution function, by erf."""
    return (1 + sympy.erf(x / sympy.sqrt(2))) / 2


class gelu(sympy.Function):
    """The exact GELU, x Phi(x) (Hendrycks and Gimpel, 2016)."""

    def fdiff(self, argindex=1):
        x = self.args[0]
        return _normal_cdf(x) + x * sympy.exp(-x ** 2 / 2) / sympy.sqrt(2 * sympy.pi)

    def _eval_rewrite_as_erf(self, x, **kwargs):
        return x * _normal_cdf(x)


#: GELU's tanh approximation: 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))), its constant
#: exact as the paper writes it.
GELU_CUBIC = sympy.Rational(44715, 1000000)


def _gelu_tanh_inner(x):
    return sympy.sqrt(2 / sympy.pi) * (x + GELU_CUBIC * x ** 3)


class gelu_tanh(sympy.Function):
    """GELU's tanh approximation (as in GPT-2 and BERT code)."""

    def fdiff(self, argindex=1):
        x = self.args[0]
        t = sympy.tanh(_gelu_tanh_inner(x))
        return ((1 + t) / 2 + x * (1 - t ** 2) / 2 *
                sympy.sqrt(2 / sympy.pi) * (1 + 3 * GELU_CUBIC * x ** 2))

    def _eval_rewrite_as_tanh(self, x, **kwargs):
        return x * (1 + sympy.tanh(_gelu_tanh_inner(x))) / 2


class silu(sympy.Function):
    """x sigmoid(x), also called swish."""

    def fdiff(self, argindex=1):
        x = self.args[0]
        s = sigmoid(x)
        return s * (1 + x * (1 - s))

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return x / (1 + sympy.exp(-x))


def _latex_abs(p, node, args):
    return rf"\left|{args[0].text}\right|", p.ATOM


def _latex_sqrt(p, node, args):
    return rf"\sqrt{{{args[0].text}}}", p.ATOM


_RELU = """def {name}(xp, x):
    \"\"\"max(x, 0), elementwise (under NumPy its maximum, as NumPy code has it: 4 times as fast
    as where on signs with no pattern).\"\"\"
    if xp is {numpy}:
        return {numpy}.maximum(x, 0)
    return xp.where(x > 0, x, 0.0)
"""
_STEP = """def {name}(xp, x):
    \"\"\"1 where x > 0, else 0 (the derivative of relu), in x's type.\"\"\"
    return xp.where(x > 0, xp.ones_like(x), xp.zeros_like(x))
"""
_ERF = """def {name}(x):
    \"\"\"The error function entry by entry (NumPy has none), in x's float type.\"\"\"
    import math
    import numpy
    x = numpy.asarray(x)
    return numpy.vectorize(math.erf, otypes=[x.dtype if x.dtype.kind == "f" else float])(x)
"""
_GELU = """def {name}(x):
    \"\"\"x Phi(x), Phi by the error function (NumPy has none), in x's float type.\"\"\"
    import math
    import numpy
    x = numpy.asarray(x)
    erf = numpy.vectorize(math.erf, otypes=[x.dtype if x.dtype.kind == "f" else float])
    return 0.5 * x * (1.0 + erf(x * 0.7071067811865476))
"""
_SOFTPLUS = """def {name}(xp, x):
    \"\"\"log(1 + exp(x)) without overflow: max(x, 0) + log1p(exp(-|x|)).\"\"\"
    return xp.where(x > 0, x, 0.0) + xp.log1p(xp.exp(-xp.abs(x)))
"""

#: The elementwise functions, in the order the docs list them.
TABLE: tuple[Function, ...] = (
    Function("exp", sympy.exp, "the exponential", r"\exp", "{np}.exp({x})", folds=True),
    Function("log", sympy.log, "the natural logarithm", r"\log", "{np}.log({x})",
             domain="positive", folds=True),
    Function("sin", sympy.sin, "the sine", r"\sin", "{np}.sin({x})", folds=True),
    Function("cos", sympy.cos, "the cosine", r"\cos", "{np}.cos({x})", folds=True),
    Function("tanh", sympy.tanh, "the hyperbolic tangent", r"\tanh", "{np}.tanh({x})",
             folds=True),
    # 0.5 + 0.5 tanh(x / 2): stable for large |x|
    Function("sigmoid", sigmoid, "the logistic function 1 / (1 + exp(-x))", r"\sigma",
             "0.5 + 0.5 * {np}.tanh(0.5 * {xw})", precedence=ADD, value="s"),
    Function("relu", relu, "max(x, 0)", r"\operatorname{relu}", "{np}.maximum({x}, 0)",
             kinks=(0,), portable=_RELU),
    Function("abs", absolute, "the absolute value", _latex_abs, "{np}.abs({x})", kinks=(0,),
             folds=True),
    Function("sign", sign, "the sign: -1, 0 or 1", r"\operatorname{sign}", "{np}.sign({x})",
             kinks=(0,), folds=True),
    Function("sqrt", sympy.sqrt, "the square root", _latex_sqrt, "{np}.sqrt({x})",
             domain="nonnegative", folds=True),
    # log(1 + e^x) without overflow
    Function("softplus", softplus, "log(1 + exp(x))", r"\operatorname{softplus}",
             "{np}.logaddexp(0, {x})", portable=_SOFTPLUS),
    Function("step", step, "the unit step: 1 for x > 0, else 0", r"\operatorname{step}",
             "{np}.heaviside({x}, 0)", kinks=(0,), portable=_STEP),
    # exact near 0, where log(1 + x) and exp(x) - 1 lose every digit
    Function("log1p", log1p, "log(1 + x), exact for small x", r"\operatorname{log1p}",
             "{np}.log1p({x})", domain="greater than -1", folds=True),
    Function("expm1", expm1, "exp(x) - 1, exact for small x", r"\operatorname{expm1}",
             "{np}.expm1({x})", folds=True),
    Function("tan", sympy.tan, "the tangent", r"\tan", "{np}.tan({x})",
             domain="between the poles", folds=True),
    Function("arcsin", sympy.asin, "the inverse sine", r"\arcsin", "{np}.arcsin({x})",
             domain="open unit interval", folds=True),
    Function("arccos", sympy.acos, "the inverse cosine", r"\arccos", "{np}.arccos({x})",
             domain="open unit interval", folds=True),
    Function("arctan", sympy.atan, "the inverse tangent", r"\arctan", "{np}.arctan({x})",
             folds=True),
    Function("sinh", sympy.sinh, "the hyperbolic sine", r"\sinh", "{np}.sinh({x})",
             folds=True),
    Function("cosh", sympy.cosh, "the hyperbolic cosine", r"\cosh", "{np}.cosh({x})",
             folds=True),
    Function("erf", sympy.erf, "the error function", r"\operatorname{erf}", None,
             helper=_ERF),
    Function("square", square, "x ** 2, entry by entry", r"\operatorname{square}",
             "{np}.square({x})", folds=True),
    Function("gelu", gelu, "the exact GELU, x Phi(x)", r"\operatorname{GELU}", None,
             helper=_GELU),
    # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), the constants as decimals
    Function("gelu_tanh", gelu_tanh, "GELU's tanh approximation",
             r"\operatorname{GELU}_{\tanh}",
             "0.5 * {xw} * (1.0 + {np}.tanh(0.7978845608028654 * ({xw} + 0.044715 * {xw} * {xw} * {xw})))",
             precedence=MUL),
    # x sigmoid(x) with the stable sigmoid
    Function("silu", silu, "x sigmoid(x), also called swish", r"\operatorname{SiLU}",
             "{xw} * (0.5 + 0.5 * {np}.tanh(0.5 * {xw}))", precedence=MUL),
)

#: What each function folds a constant to, where SymPy's own function differs from the row's
#: (|x| and sign of a number are SymPy's Abs and sign).
_FOLDED = {"abs": sympy.Abs, "sign": sympy.sign, "square": lambda v: v ** 2}


def _defined_at(row: Function, value: sympy.Expr) -> bool:
    """Whether ``row`` is defined at the constant ``value`` (as far as SymPy can tell)."""
    if row.domain == "positive":
        return bool(value.is_positive)
    if row.domain == "nonnegative":
        return not value.is_negative
    if row.domain == "greater than -1":
        return bool((value + 1).is_positive)
    return True


def apply(name: str, a) -> Node:
    """``name(a)`` elementwise; a function of a constant is a constant (sqrt(d), exp(2)), unless
    the constant is large (``constants.MAX_FOLDED_ARGUMENT``) or outside the function's domain
    (log(0) stays, so the numeric check reports it)."""
    a = as_node(a)
    row = function_op(name).function
    if isinstance(a, Const) and row.folds and small_argument(a.value) and \
            _defined_at(row, a.value):
        return Const.make(_FOLDED.get(name, row.sympy)(a.value))
    return Apply.make(name, a)


def fold(node: Apply):
    """A function of a constant is a constant: sin(0) = 0, log(n ** 2). Decreases: Apply nodes.

    Folds only where the builder does (log of a positive, sqrt of a non-negative constant), so
    log(0) stays as it is and the numeric check reports it.
    """
    value = constant_value(node.args[0])
    if value is None:
        return None
    folded = apply(node.name, Const.make(value))
    if not isinstance(folded, Const):
        return None
    return folded if node.is_scalar else Broadcast.make(folded, *node.shape)


def lower(node: Apply, bases, i, j, fresh):
    """f(A)_ij = f(A_ij)."""
    return function_op(node.name).function.sympy(entry(bases[0], node.args[0].shape, i, j))


def value_name(node: Apply, layer: str | None) -> str | None:
    """A layer's activation is a<k> (of z<k>); a function of a variable X is f_X."""
    if layer is not None:
        return "a" + layer
    operand = node.args[0]
    return f"{node.name}_{operand.name}" if isinstance(operand, Var) else None


def _builder(row: Function):
    def build(x) -> Node:
        return apply(row.name, x)
    build.__name__ = build.__qualname__ = row.name
    build.__doc__ = (f"Elementwise {row.name}: ``{row.name}(X)`` applies {row.name} "
                     f"({row.summary}) to every entry of X.")
    return build


def _operation(row: Function) -> Operation:
    return Operation(
        row.name, "elementwise", row.summary, node=Apply, syntax=call(row.name),
        build=_builder(row), lower=lower, kind="elementwise", domain=row.domain,
        kinks=row.kinks, latex=row.latex, numpy=row.numpy, portable=row.portable,
        value_name=value_name, rewrites=(fold,), examples=((row.name, lambda v, name=row.name: Apply.make(name, v.A)),),
        function=row, vector="operands")


OPERATIONS: tuple[Operation, ...] = tuple(_operation(row) for row in TABLE)
#: The elementwise functions of the table, by name.
FUNCTIONS = MappingProxyType({op.name: op for op in OPERATIONS})
_USER: dict[str, Operation] = {}          # user-named functions (and derivatives) made so far
_SYMPY_TO_NAME = {row.sympy: row.name for row in TABLE}
#: SymPy function class -> matcalc name, for turning derived scalar derivatives back into nodes.
SYMPY_TO_NAME = MappingProxyType(_SYMPY_TO_NAME)


# ---------------------------------------------------------------------------------------------
# Functions the user names but does not define: g, with derivatives g', g'', ...
# ---------------------------------------------------------------------------------------------

#: The suffix of a user function's derivative in code: g_prime, g_prime2, g_prime3, ...
PRIME = "_prime"


def derivative_name(name: str, order: int) -> str:
    """The code name of the order-th derivative of the user function ``name``."""
    return name if order == 0 else f"{name}{PRIME}{'' if order == 1 else order}"


def user_function(name: str, order: int = 0) -> Operation:
    """The elementwise function ``name`` the user leaves undefined (the notes' activation g),
    or its order-th derivative: a row made on first use, whose SymPy form differentiates to the
    next derivative. Text prints them g, g', g''; generated code takes them as arguments named
    g, g_prime, g_prime2 (``derivative_name``)."""
    code = derivative_name(name, order)
    if code in _USER:
        return _USER[code]

    def fdiff(self, argindex=1):
        return user_function(name, order + 1).function.sympy(self.args[0])

    cls = type(code, (sympy.Function,), {"fdiff": fdiff, "user_function": (name, order)})
    spelled = name + "'" * order
    row = Function(code, cls, f"the function {spelled} you named", spelled, code + "({x})",
                   value=None)
    op = Operation(code, "user", row.summary, node=Apply, lower=lower, kind="elementwise",
                   latex=spelled, numpy=row.numpy, value_name=value_name, rewrites=(fold,),
                   function=row, vector="operands",
                   excluded={"syntax": "named by the caller (functions=)"})
    _USER[code] = op
    _SYMPY_TO_NAME[cls] = code
    return op


def function_op(name: str) -> Operation | None:
    """The operation of the elementwise function ``name``: the table's or a user-named one."""
    return FUNCTIONS.get(name) or _USER.get(name)


def derivative_of_user_function(code: str) -> tuple[str, int] | None:
    """(name, order) for the code name of a user function or its derivative, else None."""
    op = _USER.get(code)
    return None if op is None else op.function.sympy.user_function
