"""NumPy source: a self-contained Python function computing one or more expressions.

Contract: ``numpy_source(outputs, inputs, ...)`` returns the text of a function that takes the
input variables as arguments (vectors as 1-D arrays, scalars as numbers, matrices as 2-D arrays),
computes every output, and returns each in the form of its variable (or a tuple of them). Inside,
every value is a 2-D array (vectors are columns, scalars 1 x 1), so NumPy broadcasting does what
matcalc's explicit broadcasts mean. A value used once is written inline; a value used twice or
more is computed once and named (the tinygrad rule). Generated names never collide with the
user's variable or dimension names. The only import is numpy. Sigmoid, softplus and relu are
written in their numerically stable forms.
"""

from __future__ import annotations

import builtins
import keyword
import re
from dataclasses import dataclass

import sympy

from .. import expr as E
from .base import Printed, Printer, bare_broadcasts
from .text import ADD, ATOM, MUL, POSTFIX, POW, UNARY

FUNCTIONS = {
    "exp": "{np}.exp({x})", "log": "{np}.log({x})", "sin": "{np}.sin({x})",
    "cos": "{np}.cos({x})", "tanh": "{np}.tanh({x})", "sqrt": "{np}.sqrt({x})",
    "abs": "{np}.abs({x})", "sign": "{np}.sign({x})",
    "sigmoid": "0.5 + 0.5 * {np}.tanh(0.5 * {xw})",         # stable for large |x|
    "relu": "{np}.maximum({x}, 0)",
    "softplus": "{np}.logaddexp(0, {x})",                  # log(1 + e^x) without overflow
    "step": "{np}.heaviside({x}, 0)",
}
_FUNCTION_PREC = {"sigmoid": ADD}

# Numerically stable softmax and logsumexp: shift by the maximum before exponentiating.
SOFTMAX = """def {name}(x, axis):
    e = {np}.exp(x - {np}.max(x, axis=axis, keepdims=True))
    return e / {np}.sum(e, axis=axis, keepdims=True)
"""
LOGSUMEXP = """def {name}(x, axis):
    top = {np}.max(x, axis=axis, keepdims=True)
    return top + {np}.log({np}.sum({np}.exp(x - top), axis=axis, keepdims=True))
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


class NumpyPrinter(Printer):
    """Print nodes as NumPy expressions, naming shared intermediates as assignment statements."""

    name = "NumPy"
    expands = False
    MAX_INLINE_DEPTH = 40     # deeper inline expressions are split, for Python's own parser

    def __init__(self, np: str, local: dict, named: set, names: Names):
        self.np, self.local, self.named, self.names = np, local, named, names
        self.lines: list[str] = []
        self.helpers: dict[str, str] = {}      # helper name -> its source (softmax, logsumexp)
        self.dtype = names.get("dtype")        # the inputs' floating type, for new arrays
        self.uses_dtype = False

    def print_all(self, roots):
        done: dict[int, Printed] = {}
        depth: dict[int, int] = {}
        self.done = done
        for n in E.postorder(roots):
            args = [done[id(a)] for a in n.args]
            self.current = n
            text, prec = self._method(n)(n, args)
            depth[id(n)] = 1 + max((depth[id(a)] for a in n.args), default=0)
            if depth[id(n)] > self.MAX_INLINE_DEPTH and n.args:
                self.named.add(id(n))
            if id(n) in self.named:
                depth[id(n)] = 0
                var = self.names.get("t")
                self.lines.append(f"{var} = {text}")
                text, prec = var, ATOM
            done[id(n)] = Printed(n, text, prec)
        return [done[id(r)] for r in roots]

    def wrap(self, arg: Printed, min_prec: int) -> str:
        return arg.text if arg.prec >= min_prec else f"({arg.text})"

    def number(self, value: sympy.Expr) -> tuple[str, int]:
        value = value.xreplace({s: sympy.Symbol(self.local[s.name]) for s in value.free_symbols})
        if value.is_Integer:
            return str(value), (UNARY if value < 0 else ATOM)
        if value.is_Rational:
            return f"{value.p} / {value.q}", MUL      # -1 / 2 is (-1) / 2: outermost operator /
        # sqrt(d), exp(2): SymPy writes them with the math module; NumPy has the same names
        text = sympy.pycode(value, fully_qualified_modules=True).replace("math.", f"{self.np}.")
        return text, (ATOM if value.is_Symbol else ADD)

    def typed(self) -> str:
        """The dtype= argument for arrays the code creates (float32 inputs stay float32)."""
        self.uses_dtype = True
        return f"dtype={self.dtype}"

    def array(self, arg: Printed) -> str:
        """An operand where NumPy needs an array: a constant becomes a 1 x 1 array."""
        if isinstance(arg.node, E.Const):
            return f"{self.np}.full((1, 1), {arg.text}, {self.typed()})"
        return arg.text

    def helper(self, wanted: str, template: str) -> str:
        """The name of a helper function the generated module defines once."""
        for name, source in self.helpers.items():
            if source == template.format(name=name, np=self.np):
                return name
        name = self.names.get(wanted)
        self.helpers[name] = template.format(name=name, np=self.np)
        return name

    def _print_Var(self, node, args):
        return self.local[node.name], ATOM

    def _print_Const(self, node, args):
        return self.number(node.value)

    def _print_Eye(self, node, args):
        return f"{self.np}.eye({self.dim(node.params[0])}, {self.typed()})", POSTFIX

    def dim(self, d) -> str:
        return self.number(d)[0]

    def _matrix_operand(self, arg: Printed) -> str:
        if isinstance(arg.node, E.Const):
            return self.array(arg)
        return self.wrap(arg, MUL + 1) if not isinstance(arg.node, E.MatMul) else arg.text

    def _print_MatMul(self, node, args):
        a, b = args
        left = a.text if (a.prec > MUL or isinstance(a.node, E.MatMul)) and \
            not isinstance(a.node, E.Const) else self._matrix_operand(a)
        return f"{left} @ {self._matrix_operand(b) if b.prec <= MUL or isinstance(b.node, E.Const) else b.text}", MUL

    def _print_Transpose(self, node, args):
        if isinstance(node.args[0], E.Const):      # a number is its own transpose
            return args[0].text, args[0].prec
        return f"{self.wrap(args[0], POSTFIX)}.T", POSTFIX

    def _binary(self, args, symbol, prec):
        bare = bare_broadcasts(self.current)
        a, b = (self.done[id(x.node.args[0])] if drop else x for x, drop in zip(args, bare))
        return f"{self.wrap(a, prec)} {symbol} {self.wrap(b, prec + 1)}", prec

    def _print_Add(self, node, args):
        return self._binary(args, "+", ADD)

    def _print_Sub(self, node, args):
        return self._binary(args, "-", ADD)

    def _print_Mul(self, node, args):
        return self._binary(args, "*", MUL)

    def _print_Div(self, node, args):
        return self._binary(args, "/", MUL)

    def _print_Neg(self, node, args):
        return f"-{self.wrap(args[0], UNARY)}", UNARY

    def _print_Pow(self, node, args):
        p = node.exponent
        exponent = str(p) if p.is_Integer else repr(float(p))
        if exponent.startswith("-"):
            exponent = f"({exponent})"
        return f"{self.wrap(args[0], POW + 1)} ** {exponent}", POW

    def _print_Apply(self, node, args):
        # {x} sits inside call parentheses; {xw} beside an operator, so it is parenthesised
        template = FUNCTIONS[node.name]
        text = template.format(np=self.np, x=args[0].text, xw=self.wrap(args[0], MUL + 1))
        return text, _FUNCTION_PREC.get(node.name, POSTFIX)

    def _print_Broadcast(self, node, args):
        rows, cols = (self.dim(d) for d in node.params)
        value = E.constant_value(node)
        if value == 0:
            return f"{self.np}.zeros(({rows}, {cols}), {self.typed()})", POSTFIX
        if value == 1:
            return f"{self.np}.ones(({rows}, {cols}), {self.typed()})", POSTFIX
        if value is not None:
            return f"{self.np}.full(({rows}, {cols}), {args[0].text}, {self.typed()})", POSTFIX
        return f"{self.np}.broadcast_to({args[0].text}, ({rows}, {cols}))", POSTFIX

    def _print_Sum(self, node, args):
        a = self.array(args[0])
        if node.axis is None:
            return f"{self.np}.sum({a}, keepdims=True)", POSTFIX
        if node.axis == 0:
            return f"{self.np}.sum({a}, axis=0, keepdims=True).T", POSTFIX
        return f"{self.np}.sum({a}, axis=1, keepdims=True)", POSTFIX

    def _print_Trace(self, node, args):
        if isinstance(node.args[0], E.Const):
            return args[0].text, args[0].prec
        return f"{self.np}.trace({args[0].text}).reshape(1, 1)", POSTFIX

    def _print_Det(self, node, args):
        return f"{self.np}.linalg.det({self.array(args[0])}).reshape(1, 1)", POSTFIX

    def _print_LogDet(self, node, args):
        # log |det X| without forming det X (which over- or underflows for large n)
        return f"{self.np}.linalg.slogdet({self.array(args[0])})[1].reshape(1, 1)", POSTFIX

    def _print_Inv(self, node, args):
        return f"{self.np}.linalg.inv({self.array(args[0])})", POSTFIX

    def _print_Diag(self, node, args):
        a = self.array(args[0])
        if node.to_matrix:
            return f"{self.np}.diagflat({a})", POSTFIX
        return f"{self.np}.diagonal({a}).reshape(-1, 1)", POSTFIX

    def _print_Norm(self, node, args):
        return f"{self.np}.linalg.norm({self.array(args[0])}).reshape(1, 1)", POSTFIX

    def _print_Norm1(self, node, args):
        return f"{self.np}.sum({self.np}.abs({self.array(args[0])}), keepdims=True)", POSTFIX

    def _print_Softmax(self, node, args):
        name = self.helper("softmax", SOFTMAX)
        return f"{name}({self.array(args[0])}, {node.axis})", POSTFIX

    def _print_LogSumExp(self, node, args):
        name = self.helper("logsumexp", LOGSUMEXP)
        text = f"{name}({self.array(args[0])}, {node.axis})"
        return (text + ".T" if node.axis == 0 else text), POSTFIX

    def _print_Einsum(self, node, args):
        operands = ", ".join(self.array(a) for a in args)
        text = f'{self.np}.einsum("{node.spec}", {operands}, optimize=True)'
        if len(node.params[1]) < 2:
            text += ".reshape(-1, 1)" if node.params[1] else ".reshape(1, 1)"
        return text, POSTFIX


def _shared(outputs: list[E.Node]) -> set:
    """Ids of the nodes worth naming: used more than once, and not free to recompute."""
    uses: dict[int, int] = {}
    for node in E.postorder(outputs):
        for a in node.args:
            uses[id(a)] = uses.get(id(a), 0) + 1
    for o in outputs:
        uses[id(o)] = uses.get(id(o), 0) + 1
    cheap = (E.Var, E.Const, E.Eye, E.Broadcast, E.Transpose)
    return {id(n) for n in E.postorder(outputs) if uses.get(id(n), 0) > 1 and not isinstance(n, cheap)}


def numpy_source(outputs: list[Output], inputs: list[E.Var], name: str = "f", doc: str = "",
                 optional: dict | None = None) -> str:
    """Source of ``def name(inputs...)`` returning the outputs (a tuple when more than one).

    ``optional`` maps an input variable to the default its argument takes when None ("ones").
    """
    optional = optional or {}
    nodes = [o.node for o in outputs]
    user_names = [v.name for v in inputs]
    all_dims = E.dimensions(nodes + list(inputs))
    names = Names(user_names + [d.name for d in all_dims])
    np = names.get("np")
    local = {v: v for v in user_names}
    local.update({d.name: d.name for d in all_dims})

    given = [v for v in inputs if v not in optional]
    printer = NumpyPrinter(np, local, _shared(nodes), names)
    printed = printer.print_all(nodes)
    results = [_convert_output(p, o.kind, printer) for p, o in zip(printed, outputs)]
    compute = printer.lines + ["return " + (results[0] if len(results) == 1
                                            else "(" + ", ".join(results) + ")")]
    defaults = []
    for v in optional:
        shape = ", ".join(str(d) for d in v.shape)
        defaults += [f"if {v.name} is None:",
                     f"    {v.name} = {np}.ones(({shape}), {printer.typed()})", "else:"]
        defaults += ["    " + line for line in _convert_input(v, np)]
    # bind only the dimensions the code refers to, from the first input that has each
    used = "\n".join(compute + defaults)
    needed = [d for d in all_dims if re.search(rf"\b{re.escape(d.name)}\b", used)]
    body = [line for v in given for line in _convert_input(v, np)]
    if printer.uses_dtype:
        body.append(f"{printer.dtype} = {np}.result_type({', '.join([v.name for v in given] + ['0.0'])})")
    bound = _bind_dims(needed, given, body)
    unbound = [d for d in needed if d not in bound]
    # a dimension no required input has (it sizes only a constant) is an argument of its own
    signature = [v.name for v in given] + [d.name for d in unbound] + \
        [f"{v.name}=None" for v in optional]
    lines = [f"def {name}({', '.join(signature)}):"]
    if doc:
        lines.append(f'    """{doc}"""')
    lines += ["    " + line for line in body + defaults + compute]
    helpers = "".join(source + "\n\n" for source in printer.helpers.values())
    return f"import numpy as {np}\n\n\n" + helpers + "\n".join(lines) + "\n"


def _convert_input(v: E.Var, np: str) -> list[str]:
    name = v.name
    # float32 stays float32; integers and Python numbers become float64
    text = f"{np}.asarray({name})"
    text = f"{np}.asarray({name}, dtype={np}.result_type({text}, 0.0))"
    if v.kind == "vector":
        text += ".reshape(-1, 1)"
    elif v.kind == "scalar":
        text += ".reshape(1, 1)"
    return [f"{name} = {text}"]


def _bind_dims(dims, inputs, body) -> set:
    bound = set()
    for d in dims:
        for v in inputs:
            for axis, size in enumerate(v.shape):
                if size == d and d not in bound:
                    body.append(f"{d.name} = {v.name}.shape[{axis}]")
                    bound.add(d)
    return bound


def _convert_output(p: Printed, kind: str, printer: NumpyPrinter) -> str:
    np = printer.np
    text = p.text
    if kind == "matrix" and isinstance(p.node, E.Const):
        return printer.array(p)                # a matrix-form result is always an array
    if kind == "scalar":
        return f"({np}.reshape({text}, ()) + 0.0).item()"   # a Python float; no builtin name used
    if kind == "vector":
        return f"{np}.reshape({text}, -1)"
    if isinstance(p.node, E.Broadcast) or isinstance(p.node, E.Var):
        return f"{np}.array({text})"     # a fresh, writable array, not a view of an input
    return text
