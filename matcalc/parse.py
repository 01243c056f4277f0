"""Read matcalc's text syntax into an expression, safely.

Contract:
- The text is parsed with ``ast.parse(mode="eval")`` and converted through a whitelist; nothing in
  it is ever evaluated (no ``eval``, ``exec``, ``sympify``). Allowed: numbers, declared names,
  ``+ - * / @ **``, unary ``- +``, ``.T`` and calls of the functions in ``FUNCTIONS``.
- Everything else raises ``ParseError`` naming the construct in plain words and pointing at it
  (``start``/``end`` character offsets into the text). Errors raised by the node builders (shape
  mismatches, ...) keep their class and gain the same position.
- Both passes over the tree (check, then build) are iterative, so a 3000-term sum is fine; the
  text length, nesting depth, literal sizes and constant arithmetic are capped (see the
  ``MAX_*`` limits), so hostile text fails fast with a ``MatcalcError`` instead of hanging.
- Nodes are made only by the builders of ``matcalc.expr``: equal text gives the same node, and
  ``parse(to_text(e), shapes) is e``. ``declare`` turns the shapes dict into variables.
- A name is a declared variable, else a dimension (from the shapes, or introduced in the text by
  ``ones``/``zeros``/``eye``) standing for its size as a number, else an error.
"""

from __future__ import annotations

import ast
import keyword
import math
import re
import reprlib
import sys
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import sympy

from . import constants as C
from . import expr as E
from . import reading
from .dims import dim, dims_of
from .errors import (ConstantTooLargeError, DomainError, MatcalcError, ParseError, ShapeError,
                     caret, function_hint, shape_hint)
from .infer import infer
from .ops.composites import COMPARISONS
from .ops.elementwise import PRIME, apply, user_function
from .ops import CALLS, NAMED_CONSTANTS, OPERATORS, RESERVED_NAMES, Operation, check_name
from .printing.text import number_text

#: Longest text accepted, in characters.
MAX_LENGTH = 20_000
#: Deepest syntax tree accepted (a 3000-term sum is 3000 deep).
MAX_DEPTH = 5_000
#: Most digits in an integer literal.
MAX_INT_DIGITS = 15
#: Most digits in the numerator or denominator of a constant made by arithmetic on numbers.
MAX_CONSTANT_DIGITS = C.MAX_CONSTANT_DIGITS
#: Most arithmetic operations on constants that involve dimension names (each one calls SymPy's
#: simplify, which is slow), and the size and powers such a constant may have.
MAX_DIMENSION_OPERATIONS = 50
MAX_DIMENSION_OPS = 64
#: Largest integer power of a dimension or a product of dimensions (n ** 5, (m * n) ** -2): cheap
#: for SymPy, and printed gradients may carry them. Powers of sums such as (n + 1) ** 3 expand,
#: so they stay small.
MAX_DIMENSION_POWER = 64
MAX_POLYNOMIAL_POWER = 4
MAX_POLYNOMIAL_BASE_OPS = 16

#: Every function name the syntax knows (the registry's calls, in its order).
FUNCTIONS = tuple(CALLS)

_EINSUM_SPEC = re.compile(r"[a-z]{2}(,[a-z]{2})*->[a-z]{0,2}\Z")
_NEWLINE = re.compile(r"\r\n|\r|\n")
_UNREADABLE = re.compile("[\0\ud800-\udfff]")     # ast.parse cannot read these
_LEADING_SPACE = " \t\f\r\n"      # ast.parse rejects an indented first line; we allow it
_BITS_PER_DIGIT = math.log2(10)
_short_repr = reprlib.Repr()
_short_repr.maxstring = _short_repr.maxother = 40


# ---------------------------------------------------------------------------------------------
# Declaring variables
# ---------------------------------------------------------------------------------------------

def declare(shapes: Mapping, domains: Mapping | None = None) -> dict[str, E.Var]:
    """The variables a shapes dict declares: ``()`` a scalar, ``("n",)`` a vector, ``("n", "m")``.

    >>> v = declare({"X": ("n", "m"), "b": ("n",), "a": ()}, {"a": "positive"})
    >>> [(x.name, x.kind, x.shape) for x in v.values()]
    [('X', 'matrix', (n, m)), ('b', 'vector', (n, 1)), ('a', 'scalar', (1, 1))]
    """
    if not isinstance(shapes, Mapping):
        raise ShapeError(f"shapes must be a dict from names to shapes such as ('n', 'm'), not "
                         f"{type(shapes).__name__}")
    domains = _check_domains(shapes, domains)
    variables: dict[str, E.Var] = {}
    for name, shape in shapes.items():
        check_name(name)
        rows, cols, kind = _read_shape(name, shape)
        variables[name] = E.Var.make(name, (rows, cols), kind, domains.get(name, "real"))
    _check_dimension_names(variables)
    return variables


def declare_functions(functions, variables: Mapping) -> dict[str, Operation]:
    """The elementwise functions a caller names without defining: ``["g"]`` -> g (and its
    derivatives, made as they are needed)."""
    if functions is None:
        return {}
    if isinstance(functions, str) or not all(isinstance(f, str) for f in functions):
        raise ParseError(f"functions must be a list of names, e.g. functions=['g'], not "
                         f"{_short_repr.repr(functions)}")
    named = {}
    for name in functions:
        check_name(name)
        if name in variables:
            raise ParseError(f"{name!r} is both a variable and a function; rename one of them")
        if name in CALLS:
            raise ParseError(f"{name!r} is already one of matcalc's functions")
        if PRIME in name:
            raise ParseError(f"a function's name may not contain {PRIME!r} (the names of its "
                             f"derivatives in generated code)")
        named[name] = user_function(name)
    return named


def _read_shape(name: str, shape) -> tuple:
    """(rows, cols, kind) for one declared shape, with errors that name the variable."""
    if not isinstance(shape, (tuple, list)) or len(shape) > 2:
        raise ShapeError(f"the shape of {name!r} must be a tuple of 0, 1 or 2 dimensions, e.g. "
                         f"() or ('n',) or ('n', 'm'), not {_short_repr.repr(shape)}")
    try:
        dims = [dim(d) for d in shape]
    except ShapeError as err:
        raise ShapeError(f"the shape of {name!r}: {err}") from None
    if not dims:
        return dim(1), dim(1), "scalar"
    if len(dims) == 1:
        return dims[0], dim(1), "vector"
    return dims[0], dims[1], "matrix"


def _check_domains(shapes: Mapping, domains: Mapping | None) -> Mapping:
    if domains is None:
        return {}
    if not isinstance(domains, Mapping):
        raise DomainError(f"domains must be a dict from variable names to "
                          f"{' or '.join(map(repr, E.DOMAINS))}, not {type(domains).__name__}")
    for name, domain in domains.items():
        if name not in shapes:
            raise DomainError(f"a domain is given for {_short_repr.repr(name)}, which has no "
                              f"declared shape")
        if not isinstance(domain, str) or domain not in E.DOMAINS:
            raise DomainError(f"unknown domain {_short_repr.repr(domain)} for {name!r}; choose "
                              f"one of {', '.join(E.DOMAINS)}")
    return domains


def _check_dimension_names(variables: dict[str, E.Var]) -> None:
    """A dimension name may stand for a number in text, so it must not clash with other names."""
    for var in variables.values():
        for d in dims_of(var.shape):
            if d.name in variables:
                raise ShapeError(f"{d.name!r} is both a variable and a dimension (in the shape of "
                                 f"{var.name!r}); rename one of them")
            if d.name in RESERVED_NAMES or keyword.iskeyword(d.name):
                raise ShapeError(f"the dimension {d.name!r} in the shape of {var.name!r} is "
                                 f"reserved in matcalc syntax; choose another name")


def _dimension_symbols(variables: dict[str, E.Var]) -> dict[str, sympy.Symbol]:
    found: dict[str, sympy.Symbol] = {}
    for var in variables.values():
        for d in dims_of(var.shape):
            found.setdefault(d.name, d)
    return found


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------

def parse(text: str, shapes: Mapping | None = None, domains: Mapping | None = None,
          infer_kinds: bool = False, functions=None) -> E.Node:
    """The expression ``text`` denotes, for variables of the declared shapes.

    A variable whose use fixes its shape may be left out (``parse_inferring``). ``functions``
    names elementwise functions the text uses without defining them (the notes' g).

    >>> from matcalc.printing.text import to_text
    >>> to_text(parse("sum(W @ X + b, axis=1) / m", {"W": ("n", "d"), "X": ("d", "m"), "b": ("n",)}))
    'sum(W @ X + b, axis=1) / m'
    """
    return parse_inferring(text, shapes, domains, infer_kinds, functions)[0]


def parse_inferring(text: str, shapes: Mapping | None = None, domains: Mapping | None = None,
                    infer_kinds: bool = False, functions=None) -> tuple[E.Node, dict]:
    """The expression, and the shapes inferred for the variables ``shapes`` leaves out (see
    ``matcalc.infer``; ``infer_kinds``: a-g scalars, h-z vectors, A-Z matrices).

    >>> node, inferred = parse_inferring("trace(A @ X @ B)")
    >>> inferred
    {'A': ('n1', 'n2'), 'X': ('n2', 'n3'), 'B': ('n3', 'n1')}
    """
    text = _check_text(text)
    shapes = {} if shapes is None else shapes
    # the declared shapes' own errors first; domains of inferred variables are checked below
    only_declared = isinstance(domains, Mapping) and set(domains) <= set(shapes or ())
    variables = declare(shapes, domains if only_declared or not isinstance(domains, Mapping)
                        else None)
    named = declare_functions(functions, variables)
    source = _Source(text)
    tree = source.parse()
    reader = _Reader(source, variables, named)
    reader.check(tree, resolve=False)
    undeclared = reader.undeclared()
    inferred = {}
    if undeclared:
        try:
            inferred = infer(tree, shapes, [n.id for n in undeclared], infer_kinds,
                             taken=set(reader.dimensions))
        except ShapeError as err:
            name = next((n for n in undeclared if repr(n.id) in str(err)), undeclared[0])
            raise source.error(ParseError, str(err), source.span(name)) from None
    variables = declare({**shapes, **inferred}, domains)
    reader = _Reader(source, variables, named) if inferred else reader
    reader.check(tree) if inferred else reader.resolve()
    return reader.build(tree), inferred


def _check_text(text) -> str:
    if not isinstance(text, str):
        raise ParseError(f"the expression must be a string, not {type(text).__name__}")
    if type(text) is not str:
        text = str.__str__(text)     # a str subclass could override the methods used below
    if len(text) > MAX_LENGTH:
        # no caret: drawing it would repeat the whole (too long) text in the message
        raise ParseError(f"the expression is {len(text)} characters long; the limit is "
                         f"{MAX_LENGTH}")
    if not text.strip():
        raise ParseError("the expression is empty", text, 0, len(text))
    unreadable = _UNREADABLE.search(text)
    if unreadable:
        what = "a NUL character" if unreadable.group() == "\0" else "an unpaired surrogate"
        raise ParseError(f"the expression contains {what}", text, unreadable.start(),
                         unreadable.end())
    return text


class _Source:
    """The text, its syntax tree, and character positions of tree nodes in the original text."""

    def __init__(self, text: str):
        self.text = text
        self.body = text.lstrip(_LEADING_SPACE)
        self.lead = len(text) - len(self.body)
        self.line_starts = [0] + [m.end() for m in _NEWLINE.finditer(self.body)]

    def parse(self) -> ast.Expression:
        # CPython builds the ast objects recursively, capped at 3 levels per unit of the
        # recursion limit, so a 3000-term sum fails at the default limit of 1000. Raise the
        # (process-wide) limit just enough for MAX_DEPTH, and restore it at once; deeper trees
        # still fail and are reported below. Our own passes over the tree are iterative.
        old_limit = sys.getrecursionlimit()
        sys.setrecursionlimit(old_limit + MAX_DEPTH // 3 + 50)
        try:
            with warnings.catch_warnings():   # e.g. "invalid escape sequence": not the user's concern
                warnings.simplefilter("ignore")
                return ast.parse(self.body, mode="eval")
        except SyntaxError as err:
            raise (_foreign_spelling(self.text) or self.syntax_error(err)) from None
        except (RecursionError, MemoryError):
            raise ParseError(f"the expression is nested too deeply (the limit is {MAX_DEPTH} "
                             f"levels)") from None
        except ValueError as err:       # NUL bytes, lone surrogates
            raise ParseError(f"the expression cannot be read: {err}") from None
        finally:
            sys.setrecursionlimit(old_limit)

    def syntax_error(self, err: SyntaxError) -> ParseError:
        message = f"invalid syntax: {err.msg}"
        if "too many nested parentheses" in str(err.msg):
            message += " (at most 200 levels of parentheses)"
        if not err.lineno or err.offset is None:
            return ParseError(message, self.text, len(self.text), len(self.text))
        start = self.offset(err.lineno, err.offset - 1, in_bytes=False)
        end = start + 1
        if err.end_lineno and err.end_offset is not None:
            end = max(start + 1, self.offset(err.end_lineno, err.end_offset - 1, in_bytes=False))
        return _located(ParseError, message, self.text, start, end)

    def offset(self, lineno: int, col: int, in_bytes: bool = True) -> int:
        """The offset in the original text of (1-based line, column); ast columns are in bytes."""
        index = min(max(lineno, 1), len(self.line_starts)) - 1
        start = self.line_starts[index]
        col = max(col, 0)
        if in_bytes and not self.body.isascii():
            line_end = (self.line_starts[index + 1] if index + 1 < len(self.line_starts)
                        else len(self.body))
            line = self.body[start:line_end].encode("utf-8", "surrogatepass")
            col = len(line[:col].decode("utf-8", "ignore"))
        return self.lead + min(start + col, len(self.body))

    def span(self, node: ast.AST) -> tuple[int, int]:
        start = self.offset(node.lineno, node.col_offset)
        end = self.offset(node.end_lineno or node.lineno, node.end_col_offset or node.col_offset)
        return start, max(end, start + 1)

    def operator_span(self, node: ast.BinOp, symbol: str) -> tuple[int, int]:
        """Where the operator of ``node`` is: the first ``symbol`` between its operands."""
        i, stop = self.span(node.left)[1], self.span(node.right)[0]
        while i < stop:
            if self.text[i] == "#":        # a comment inside parentheses runs to the line end
                newline = _NEWLINE.search(self.text, i)
                i = newline.end() if newline else stop
            elif self.text.startswith(symbol, i):
                return i, i + len(symbol)
            else:
                i += 1
        return self.span(node)

    def error(self, cls: type, message: str, span: tuple[int, int]) -> MatcalcError:
        return _located(cls, message, self.text, *span)


#: MATLAB's spellings, as matrixcalculus.org's users type them: x' (transpose), .* ./ .^
_MATLAB = re.compile(r"(?P<transpose>(?<=[\w)\]])')|(?P<dot>(?<![\d\s.])\s*\.(?P<op>[*/^]))")


def _foreign_spelling(text: str) -> ParseError | None:
    """A one-line hint for MATLAB's spellings, which Python cannot parse; None for other text.

    >>> print(_foreign_spelling("x' @ A"))
    x' is MATLAB's transpose: write x.T
      x' @ A
       ^
    >>> str(_foreign_spelling("A .* B")).splitlines()[0]
    'write * for the elementwise product (.* is MATLAB spelling)'
    """
    found = _MATLAB.search(text)
    if found is None:
        return None
    # only when the MATLAB spellings are the whole problem: the text with them replaced parses
    # (so a quote closing einsum's subscripts is never taken for a transpose)
    fixed = _MATLAB.sub(lambda m: ".T" if m.group("transpose") else
                        {"*": "*", "/": "/", "^": "**"}[m.group("op")], text)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(fixed.lstrip(_LEADING_SPACE), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if found.group("transpose"):
        start = found.start()
        operand = re.search(r"(\w+|\))$", text[:start]).group()
        what = f"{operand}'" if operand != ")" else "(...)'"
        fix = f"{operand}.T" if operand != ")" else "(...).T"
        return ParseError(f"{what} is MATLAB's transpose: write {fix}", text, start, start + 1)
    op = found.group("op")
    fix, meaning = {"*": ("*", "the elementwise product"), "/": ("/", "elementwise division"),
                    "^": ("**", "an elementwise power")}[op]
    start = found.start("op") - 1
    return ParseError(f"write {fix} for {meaning} (.{op} is MATLAB spelling)", text, start,
                      start + 2)


def _located(cls: type, message: str, text: str, start: int, end: int) -> MatcalcError:
    """An error of class ``cls`` whose message points at ``text[start:end]``.

    ``ParseError`` draws the caret line itself; the other classes get the same drawing here.
    Multi-line text gets "(line L, column C)" instead of a caret.
    """
    if "\n" in text or "\r" in text:
        line = len(_NEWLINE.findall(text, 0, start)) + 1
        line_start = max((m.end() for m in _NEWLINE.finditer(text, 0, start)), default=0)
        message = f"{message} (line {line}, column {start - line_start + 1})"
    if issubclass(cls, ParseError):
        return cls(message, text, start, end)
    if "\n" not in text and "\r" not in text:
        message = f"{message}\n{caret(text, start, end)}"
    try:
        err = cls(message)
    except TypeError:               # a subclass with another signature: keep its class's base
        err = MatcalcError(message)
    err.text, err.start, err.end = text, start, end
    return err


def _has_position(err: BaseException) -> bool:
    return getattr(err, "start", None) is not None


# ---------------------------------------------------------------------------------------------
# The whitelist: what each allowed construct means, and plain words for the rest
# ---------------------------------------------------------------------------------------------

_FORBIDDEN = {
    ast.Lambda: "a lambda",
    ast.IfExp: "a conditional expression (… if … else …)",
    ast.ListComp: "a list comprehension",
    ast.SetComp: "a set comprehension",
    ast.DictComp: "a dict comprehension",
    ast.GeneratorExp: "a generator expression",
    ast.Compare: "a comparison",
    ast.BoolOp: "a boolean operator (and / or)",
    ast.JoinedStr: "an f-string",
    ast.FormattedValue: "an f-string",
    ast.Starred: "a starred expression (*x)",
    ast.NamedExpr: "an assignment expression (:=)",
    ast.Dict: "a dict",
    ast.List: "a list",
    ast.Set: "a set",
    ast.Tuple: "a tuple (a comma outside a function call)",
    ast.Subscript: "indexing or slicing (x[...])",
    ast.Slice: "a slice",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield from",
}

#: Python's binary operators that matcalc's syntax has (a power is checked apart), each with
#: its builder from the registry.
_BINARY_BUILDERS: dict[type, tuple[str, Callable]] = {
    cls: (symbol, OPERATORS[symbol].build)
    for cls, symbol in ((ast.Add, "+"), (ast.Sub, "-"), (ast.Mult, "*"), (ast.Div, "/"),
                        (ast.MatMult, "@"))
}

_COMPARISONS = {ast.Gt: ">", ast.Lt: "<", ast.GtE: ">=", ast.LtE: "<="}

_OTHER_OPERATORS = {
    ast.Mod: "%", ast.FloorDiv: "//", ast.LShift: "<<", ast.RShift: ">>", ast.BitOr: "|",
    ast.BitXor: "^", ast.BitAnd: "&", ast.Invert: "~", ast.Not: "not",
}


def _operator_symbol(op: ast.AST) -> str:
    if isinstance(op, ast.Pow):
        return "**"
    if type(op) in _BINARY_BUILDERS:
        return _BINARY_BUILDERS[type(op)][0]
    return _OTHER_OPERATORS.get(type(op), type(op).__name__)


def _literal(node: ast.AST):
    """The value of a keyword's literal (``0``, ``-1``, ``True``, ``None``), else a marker."""
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and
            isinstance(node.operand, ast.Constant) and type(node.operand.value) is int):
        return -node.operand.value
    return node.value if isinstance(node, ast.Constant) else "not a literal"


def _constant_problem(value) -> str | None:
    """Why a literal is not allowed as a number, or None when it is."""
    if isinstance(value, bool) or value is None:
        return f"{value} is not a number here"
    if value is Ellipsis:
        return "'...' (Ellipsis) is not allowed"
    if isinstance(value, int):
        if abs(value) >= 10 ** MAX_INT_DIGITS:
            return (f"an integer with {len(str(value))} digits is too large (at most "
                    f"{MAX_INT_DIGITS} digits)")
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value} is not a finite number"
    if isinstance(value, complex):
        return "complex numbers are not supported"
    if isinstance(value, str):
        return "a string is allowed only as the first argument of einsum"
    if isinstance(value, bytes):
        return "bytes are not allowed"
    return f"{type(value).__name__} literals are not allowed"


@dataclass(frozen=True)
class _CallPlan:
    """A checked call: the operation, its expression operands and its literal parameters."""

    op: Operation
    operands: tuple = ()             # ast nodes converted to expressions
    keywords: tuple = ()             # (name, literal value) pairs: axis=0
    dims: tuple = ()                  # ones, zeros, eye: sympy dimensions
    spec: str = ""                    # einsum's subscripts


# ---------------------------------------------------------------------------------------------
# The reader: pass 1 checks the whole tree, pass 2 builds nodes bottom-up
# ---------------------------------------------------------------------------------------------

class _Reader:
    def __init__(self, source: _Source, variables: dict[str, E.Var],
                 functions: dict[str, Operation] | None = None):
        self.source = source
        self.variables = variables
        self.functions = functions or {}
        self.dimensions = _dimension_symbols(variables)
        self.children: dict[int, tuple] = {}      # id(ast node) -> ast nodes to convert first
        self.calls: dict[int, _CallPlan] = {}
        self.names: list[ast.Name] = []
        self.leaves: dict[int, E.Node] = {}
        self.dimension_operations: set = set()    # (operator, constant, constant) done
        self.comparisons: set[int] = set()         # where()'s conditions

    def error(self, message: str, node: ast.AST, cls: type = ParseError) -> MatcalcError:
        return self.source.error(cls, message, self.source.span(node))

    # -- pass 1 ---------------------------------------------------------------------------
    def check(self, tree: ast.Expression, resolve: bool = True) -> None:
        """Reject anything outside the whitelist, before any node is built; resolve names."""
        stack = [(tree.body, 1)]
        while stack:
            node, depth = stack.pop()
            if depth > MAX_DEPTH:
                raise self.error(f"the expression is nested too deeply (the limit is {MAX_DEPTH} "
                                 f"levels)", node)
            children = self.check_node(node)
            self.children[id(node)] = children
            # reversed, so the leftmost problem is reported first
            stack.extend((child, depth + 1) for child in reversed(children))
        if resolve:
            self.resolve()

    def resolve(self) -> None:
        """Resolve every name the check found (a variable, or a dimension standing as a number)."""
        for name in self.names:
            self.leaves[id(name)] = self.resolve_name(name)

    def undeclared(self) -> list[ast.Name]:
        """The first use of each name that is neither declared, a dimension nor a function, in
        the order of the text: the variables whose shapes are to be inferred."""
        first: dict[str, ast.Name] = {}
        for node in self.names:
            name = node.id
            if (name in self.variables or name in self.dimensions or name in FUNCTIONS
                    or name in RESERVED_NAMES):
                continue
            if name not in first or (node.lineno, node.col_offset) < (
                    first[name].lineno, first[name].col_offset):
                first[name] = node
        return sorted(first.values(), key=lambda n: (n.lineno, n.col_offset))

    def check_node(self, node: ast.AST) -> tuple:
        """Check one node; return its operands (the children that are expressions)."""
        if isinstance(node, ast.BinOp):
            if not (isinstance(node.op, ast.Pow) or type(node.op) in _BINARY_BUILDERS):
                symbol = _operator_symbol(node.op)
                hint = " (for a power write **)" if symbol == "^" else ""
                raise self.source.error(
                    ParseError, f"the operator {symbol} is not allowed; matcalc has + - * / @ **"
                    f"{hint}", self.source.operator_span(node, symbol))
            return (node.left, node.right)
        if isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.USub, ast.UAdd)):
                raise self.error(f"the operator {_operator_symbol(node.op)} is not allowed; "
                                 f"only - and + may precede a term", node)
            return (node.operand,)
        if isinstance(node, ast.Attribute):
            if node.attr != "T":
                end = self.source.span(node)[1]
                raise self.source.error(ParseError, f"the attribute .{node.attr} is not allowed; "
                                        f"the only attribute is .T (transpose)",
                                        (max(0, end - len(node.attr) - 1), end))
            return (node.value,)
        if isinstance(node, ast.Name):
            self.names.append(node)
            return ()
        if isinstance(node, ast.Constant):
            problem = _constant_problem(node.value)
            if problem:
                raise self.error(problem, node)
            return ()
        if isinstance(node, ast.Call):
            plan = self.plan_call(node)
            self.calls[id(node)] = plan
            return plan.operands
        if isinstance(node, ast.Compare) and id(node) in self.comparisons:
            return (node.left, node.comparators[0])
        if isinstance(node, ast.Compare):
            raise self.error("a comparison is allowed only as the condition of where(), as in "
                             "where(x > 0, x, 0.1 * x)", node)
        what = _FORBIDDEN.get(type(node), f"{type(node).__name__}")
        raise self.error(f"{what} is not allowed in matcalc syntax", node)

    def resolve_name(self, node: ast.Name) -> E.Node:
        name = node.id
        if name in self.variables:
            return self.variables[name]
        if name in self.dimensions:
            return E.Const.make(self.dimensions[name])
        if name in NAMED_CONSTANTS:
            return E.Const.make(NAMED_CONSTANTS[name])
        if name in FUNCTIONS or name in self.functions:
            raise self.error(f"{name!r} is a function: call it, as in {name}(X)", node)
        raise self.error(f"unknown name {name!r}: declare its shape (e.g. {shape_hint(name)}) "
                         f"or use a dimension from the declared shapes", node)

    # -- calls ------------------------------------------------------------------------------
    def plan_call(self, node: ast.Call) -> _CallPlan:
        func = node.func
        if isinstance(func, ast.Attribute):
            raise self.error("calling an attribute or method (x.f(...)) is not allowed", func)
        if not isinstance(func, ast.Name):
            raise self.error("only matcalc's named functions can be called", func)
        name = func.id
        if name in self.variables:
            raise self.error(f"{name!r} is a variable, not a function", func)
        if name in self.functions:
            self.expect_arguments(node, name, 1, 1, "exactly one argument")
            if node.keywords:
                raise self.error(f"{name}() takes no keyword arguments", node.keywords[0])
            return _CallPlan(self.functions[name], tuple(node.args))
        if name not in CALLS:
            raise self.error(f"unknown function {name!r}; the functions are: "
                             f"{', '.join(FUNCTIONS)} (name your own with "
                             f"{function_hint(name)})",
                             func)
        op = CALLS[name]
        syntax = op.syntax
        allowed = {k.name: k for k in syntax.keywords}
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.error("a starred argument (*args) is not allowed", arg)
        for kw in node.keywords:
            if kw.arg is None:
                raise self.error("a keyword expansion (**kwargs) is not allowed", kw)
            if kw.arg not in allowed:
                words = " and ".join(f"{k}=" for k in allowed)
                what = f"only {words}" if allowed else "no keyword arguments"
                raise self.error(f"unknown keyword argument {kw.arg!r}: {name}() takes {what}",
                                 kw)
        if name == "where" and node.args:
            self.plan_condition(node.args[0])
        if syntax.arguments == "sizes":
            return self.plan_constant_matrix(node, op)
        if syntax.arguments == "einsum":
            return self.plan_einsum(node, op)
        return self.plan_expressions(node, op)

    def plan_condition(self, node: ast.AST) -> None:
        """where()'s condition: one comparison of two expressions (x > y, x <= 0)."""
        if not (isinstance(node, ast.Compare) and len(node.ops) == 1 and
                type(node.ops[0]) in _COMPARISONS):
            raise self.error("the condition of where() must be one comparison with >, <, >= or "
                             "<=, as in where(x > 0, x, 0.1 * x)", node)
        self.comparisons.add(id(node))

    def expect_arguments(self, node: ast.Call, name: str, low: int, high: int, usage: str):
        count = len(node.args) + len(node.keywords)
        if not low <= count <= high:
            raise self.error(f"{name}() takes {usage}, but was given {count} argument"
                             f"{'' if count == 1 else 's'}", node)

    def plan_expressions(self, node: ast.Call, op: Operation) -> _CallPlan:
        """exp(X); sum(X), sum(X, 0), sum(X, axis=1), sum(X, axis=None): the operands, then the
        keywords (each also allowed positionally, in order, after the operands)."""
        syntax, name = op.syntax, op.name
        low, high = syntax.operands
        self.expect_arguments(node, name, low, high + len(syntax.keywords), syntax.usage)
        if len(node.args) < low:
            raise self.error(f"{name}() needs the expression to reduce first", node)
        operands = tuple(node.args[:high])
        extra = node.args[high:]
        given: dict = {}
        positional = [k for k in syntax.keywords if k.positional]
        if len(extra) > len(positional):
            late = syntax.keywords[len(positional)]
            raise self.error(f"{name}() takes {late.name} only as a keyword: write "
                             f"{late.name}=...", extra[len(positional)])
        for keyword_, value_node in zip(positional, extra):
            given[keyword_.name] = value_node
        for kw in node.keywords:
            if kw.arg in given:
                raise self.error(f"{name}() got {kw.arg}= twice", kw)
            given[kw.arg] = kw.value
        keywords = []
        for keyword_ in syntax.keywords:
            if keyword_.name not in given:
                continue
            value_node = given[keyword_.name]
            value = _literal(value_node)
            if not any(value is v or (type(value) is type(v) and value == v)
                       for v in keyword_.values):
                raise self.error(f"{name}(): {keyword_.name} must be {keyword_.choices}",
                                 value_node)
            keywords.append((keyword_.name, value))
        return _CallPlan(op, operands, keywords=tuple(keywords))

    def plan_constant_matrix(self, node: ast.Call, op: Operation) -> _CallPlan:
        """ones(n), ones(n, m), zeros(...), eye(n): the arguments are sizes, not expressions."""
        name, (low, high) = op.name, op.syntax.operands
        self.expect_arguments(node, name, low, high,
                              f"{op.syntax.usage} (dimension names or integers)")
        return _CallPlan(op, dims=tuple(self.read_dimension(arg, name) for arg in node.args))

    def read_dimension(self, arg: ast.AST, name: str) -> sympy.Expr:
        if isinstance(arg, ast.Name):
            if arg.id in self.variables:
                raise self.error(f"{arg.id!r} is a variable; {name}() takes dimension names or "
                                 f"positive integers", arg)
            if arg.id in RESERVED_NAMES:
                raise self.error(f"{arg.id!r} cannot name a dimension", arg)
            try:
                symbol = dim(arg.id)
            except ShapeError as err:       # a Python identifier need not be a dimension name
                raise self.error(str(err), arg) from None
            self.dimensions.setdefault(arg.id, symbol)     # now usable as a number too
            return symbol
        if isinstance(arg, ast.Constant) and type(arg.value) is int:
            problem = _constant_problem(arg.value)
            if problem is None and arg.value >= 1:
                return dim(arg.value)
        raise self.error(f"{name}() takes dimension names or positive integers, not "
                         f"expressions", arg)

    def plan_einsum(self, node: ast.Call, op: Operation) -> _CallPlan:
        """einsum("ij,jk->ik", A, B): two letters per operand, up to two in the output."""
        if len(node.args) < 2:
            raise self.error('einsum() takes a subscript string and operands, as in '
                             'einsum("ij,jk->ik", A, B)', node)
        spec = node.args[0]
        if not (isinstance(spec, ast.Constant) and isinstance(spec.value, str)):
            raise self.error('the first argument of einsum() must be a string such as '
                             '"ij,jk->ik"', spec)
        if not _EINSUM_SPEC.match(spec.value):
            raise self.error('einsum subscripts must look like "ij,jk->ik": two lowercase letters '
                             'per operand, then "->" and at most two letters', spec)
        inputs, output = spec.value.split("->")
        subscripts = tuple(inputs.split(","))
        operands = tuple(node.args[1:])
        if len(subscripts) != len(operands):
            raise self.error(f"einsum subscripts name {len(subscripts)} operand"
                             f"{'' if len(subscripts) == 1 else 's'}, but {len(operands)} "
                             f"{'is' if len(operands) == 1 else 'are'} given", node)
        if len(set(output)) != len(output) or not set(output) <= set(inputs):
            raise self.error("the einsum output letters must be distinct and appear in the "
                             "inputs", spec)
        return _CallPlan(op, operands, spec=spec.value)

    # -- pass 2 ---------------------------------------------------------------------------
    def build(self, tree: ast.Expression) -> E.Node:
        """Convert the checked tree bottom-up, with an explicit stack."""
        built: dict[int, E.Node] = {}
        stack: list[tuple[ast.AST, bool]] = [(tree.body, False)]
        while stack:
            node, operands_ready = stack.pop()
            children = self.children[id(node)]
            if not operands_ready:
                stack.append((node, True))
                stack.extend((child, False) for child in reversed(children))
                continue
            operands = [built.pop(id(child)) for child in children]
            built[id(node)] = self.build_located(node, operands)
        return built[id(tree.body)]

    def build_located(self, node: ast.AST, operands: list) -> E.Node:
        """Build one node; an error from a builder keeps its class and gains this position."""
        try:
            result = self.build_node(node, operands)
            if isinstance(result, E.Const):
                self.check_constant(result.value)
            return result
        except MatcalcError as err:
            if _has_position(err):
                raise
            span = (self.source.operator_span(node, _operator_symbol(node.op))
                    if isinstance(node, ast.BinOp) else self.source.span(node))
            # a constant the text makes too large is the text's fault
            kind = ParseError if isinstance(err, ConstantTooLargeError) else type(err)
            raise self.source.error(kind, str(err), span) from err

    def build_node(self, node: ast.AST, operands: list) -> E.Node:
        if isinstance(node, ast.BinOp):
            return self.build_binary(node, *operands)
        if isinstance(node, ast.UnaryOp):
            return E.neg(operands[0]) if isinstance(node.op, ast.USub) else operands[0]
        if isinstance(node, ast.Attribute):
            return E.Transpose.make(operands[0])
        if isinstance(node, ast.Name):
            return self.leaves[id(node)]
        if isinstance(node, ast.Constant):
            return E.Const.make(node.value)
        if isinstance(node, ast.Compare):
            symbol = _COMPARISONS[type(node.ops[0])]
            return COMPARISONS[symbol](*reading.broadcast(symbol, *operands))
        plan = self.calls[id(node)]
        if plan.op.family == "user":
            return apply(plan.op.name, operands[0])
        if plan.op.vector == "operands" and len(operands) > 1:
            operands = reading.broadcast_all(plan.op.name + "()", operands)
        if plan.op.syntax.arguments == "sizes":
            return plan.op.build(*plan.dims)
        if plan.op.syntax.arguments == "einsum":
            return plan.op.build(plan.spec, *operands)
        keywords = dict(plan.keywords)
        if "axis" not in keywords and "keepdims" not in keywords:
            return plan.op.build(*operands, **keywords)
        axis, kept = reading.axis_of(plan.op, operands[0], keywords.pop("axis", None),
                                     keywords.pop("keepdims", False))
        if axis is not None:
            keywords["axis"] = axis
        return reading.keep(plan.op.build(*operands, **keywords), kept)

    def build_binary(self, node: ast.BinOp, left: E.Node, right: E.Node) -> E.Node:
        if isinstance(left, E.Const) and isinstance(right, E.Const) and not (
                left.value.is_Rational and right.value.is_Rational):
            # arithmetic on dimensions or functions of numbers (exp(1)) brings each constant to
            # one canonical form (SymPy's cancel), which is polynomial arithmetic: cap how often,
            # counting an operation on the same two constants once (a printed gradient repeats
            # 1/(2*n**2) in many places; SymPy's cache makes the repeats cheap)
            key = (type(node.op), left, right)
            if key not in self.dimension_operations:
                self.dimension_operations.add(key)
                if len(self.dimension_operations) > MAX_DIMENSION_OPERATIONS:
                    raise ParseError(f"too much arithmetic on dimension names in constants "
                                     f"(more than {MAX_DIMENSION_OPERATIONS} operations)")
        if isinstance(node.op, ast.Pow):
            exponent = self.check_exponent(node, left, right)
            return E.power(left, exponent)
        symbol, builder = _BINARY_BUILDERS[type(node.op)]
        if symbol == "@":
            return reading.matmul(left, right)
        return builder(*reading.broadcast(symbol, left, right))

    def check_exponent(self, node: ast.BinOp, base: E.Node, exponent: E.Node) -> E.Const:
        """The exponent must fold to a rational number; a constant base must stay small."""
        if not isinstance(exponent, E.Const) or exponent.value.free_symbols:
            raise self.error("the exponent must be a number, e.g. x ** 2 or x ** (1/2)",
                             node.right)
        p = exponent.value
        if not p.is_Rational:
            raise self.error(f"the exponent must be a rational number, not {p}", node.right)
        if isinstance(base, E.Const):
            self.check_constant_power(node, base.value, p)
        return exponent

    def check_constant_power(self, node: ast.BinOp, base: sympy.Expr, p: sympy.Rational):
        """Refuse before computing a power of a constant that would be huge or irrational."""
        if not base.is_Rational:
            monomial = not base.is_Add           # a sum's power expands; a product's does not
            limit = MAX_DIMENSION_POWER if monomial else MAX_POLYNOMIAL_POWER
            if not (abs(p) <= limit and (p.is_Integer or monomial and p.q == 2)):
                raise self.error(f"a power of {_short_repr.repr(number_text(base)[0])} must have an integer "
                                 f"exponent between -{limit} and {limit}"
                                 f"{' (or a half-integer one)' if monomial else ''}", node)
            if not monomial and sympy.count_ops(base) > MAX_POLYNOMIAL_BASE_OPS:
                raise self.error(f"{_short_repr.repr(number_text(base)[0])} is too large a sum to raise to "
                                 f"a power (its expansion would be huge)", node)
            return
        magnitude = max(abs(base.p), base.q)       # 0, 1 and -1 stay small at any power
        if magnitude > 1 and int(sympy.ceiling(abs(p))) * math.log2(magnitude) > (
                MAX_CONSTANT_DIGITS * _BITS_PER_DIGIT):
            raise self.error(f"this power is a number with more than {MAX_CONSTANT_DIGITS} "
                             f"digits", node)

    def check_constant(self, value: sympy.Expr) -> None:
        """A constant made by arithmetic stays small enough to compute with: its powers are
        whole or half powers (1/sqrt(d) scales attention; sqrt(2) is exact), and it has few
        operations. exp(2) and log(n) are exact too: they are what the functions of constants
        fold to, and printed results carry them. (Its numbers' digits were checked when the
        constant was made: ``constants.MAX_CONSTANT_DIGITS``.)"""
        if value.is_Rational:
            return
        simple_powers = all(      # whole powers, and square roots (1/sqrt(d) scales attention)
            power.exp.is_Rational and power.exp.q in (1, 2) and
            abs(power.exp) <= MAX_DIMENSION_POWER for power in value.atoms(sympy.Pow))
        if not simple_powers or sympy.count_ops(value) > MAX_DIMENSION_OPS:
            raise ParseError(f"the constant {_short_repr.repr(number_text(value)[0])} is too complicated: "
                             f"keep arithmetic on numbers and dimension names to products, "
                             f"quotients and small powers of them, such as 1/(m*n), m**2 or "
                             f"sqrt(2)")
