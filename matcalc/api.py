"""The public API: build or parse an expression, derive, print, generate code, check.

Contract: ``derive`` (text or expression) and ``grad`` (expression) return a ``Derivation``. Its
gradients are derived in one reverse sweep for all requested variables, simplified together (so
they share their intermediates), and print as text, LaTeX and MathML, generate NumPy source and
check themselves numerically. A non-scalar expression is differentiated as a vector-Jacobian
product with an upstream gradient ``G`` of its shape; generated code takes ``G`` as an optional
argument that defaults to ones (seed 003: "gradients = None").
"""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
from typing import Callable, Sequence

from . import expr as E
from .printing.module import BackwardCode, backward_code
from .check import (DEFAULT_TOLERANCE, CheckReport, choose_sizes, compare, compare_matrix,
                    draw_inputs, ensure_finite, input_domains, objective)
from .diff import Step
from .errors import ArgumentError, CheckError, MatcalcError, UnsupportedError
from .dims import is_one
from .ops import BUILDERS, check_name, is_vector, operation_of
from .ops.elementwise import derivative_name, derivative_of_user_function
from .jacobian import gradient_of, hessian_matrix, jacobian_matrix
from .jacobian import hvp as hessian_vector_product
from .parse import declare, parse, parse_inferring
from .printing.latex import latex_name, named_equations, to_latex, to_mathml
from .printing.numpy import Output, compile_module, numpy_source
from .printing.text import name_values, named_text, to_text
from .pipeline import differentiate
from .simplify import simplify
from .sympy_bridge import Names, is_sympy, read, read_target, write, write_kronecker
from .tensor import IndexTensor, jacobian_tensor

UPSTREAM_NAME = "G"


def _on_demand(module: str):
    """``matcalc.steps`` or ``matcalc.printing.notes``, imported when first shown: the notes
    machinery (and the MathML it draws) is the heaviest part of matcalc to import, and most
    derivations are never shown step by step (see cli.py on start-up). Both sit below this
    module (tests/test_architecture.py checks such imports too)."""
    return importlib.import_module(f"matcalc.{module}")


# ---------------------------------------------------------------------------------------------
# Building expressions
# ---------------------------------------------------------------------------------------------

def Matrix(name: str, rows, cols, domain: str = "real") -> E.Var:
    """A matrix variable with symbolic (or fixed) dimensions.

    >>> W = Matrix("W", "n", "d"); W.shape
    (n, d)
    """
    check_name(name)
    return E.Var.make(name, (rows, cols), "matrix", domain)


def Vector(name: str, size, domain: str = "real") -> E.Var:
    """A (column) vector variable: ``Vector("x", "n")`` is n x 1."""
    check_name(name)
    return E.Var.make(name, (size, 1), "vector", domain)


def Scalar(name: str, domain: str = "real") -> E.Var:
    """A scalar variable: ``Scalar("a")``."""
    check_name(name)
    return E.Var.make(name, (1, 1), "scalar", domain)


def dim(name: str) -> E.Const:
    """A dimension used as a number, e.g. ``sum(...) / dim("m")`` for a mean over m examples."""
    from_dims = E.dim(name)
    return E.Const.make(from_dims)


def from_sympy(expression, domains: dict | None = None) -> E.Node:
    """The matcalc expression equal to a SymPy matrix expression (see docs/sympy.md).

    Shapes come from the MatrixSymbols; ``domains`` may say what a symbol's values are
    (``{"X": "spd"}``), as for text.

    >>> import sympy
    >>> X = sympy.MatrixSymbol("X", 3, 3)
    >>> str(from_sympy(sympy.Trace(X.T * X)))
    'trace(X.T @ X)'
    """
    return read(expression, domains)[0]


def to_sympy(value):
    """An expression or a result (``derive``, ``jacobian``, ``hessian``...) as SymPy.

    >>> x = Vector("x", 2)
    >>> to_sympy(x.T @ x)
    x.T*x
    """
    if not isinstance(value, (E.Node, Derivation)):
        raise MatcalcError(f"to_sympy takes a matcalc expression or result, not "
                           f"{type(value).__name__}")
    return value.to_sympy()


#: The builders of every operation text can call, by name (``exp``, ``sum``, ``inv``,
#: ``trace``, ``ones``, ...): a view of the registry. The package exports each as ``mc.<name>``.
FUNCTIONS = dict(BUILDERS)
globals().update(FUNCTIONS)


# ---------------------------------------------------------------------------------------------
# Derivations
# ---------------------------------------------------------------------------------------------

class Derivation:
    """The gradients of one expression with respect to one or more variables (or subexpressions).

    ``gradient`` is the matrix-form result (a tuple when several were asked for); ``latex()``,
    ``mathml()``, ``numpy_source()``, ``numpy_function()`` and ``check()`` present and verify it;
    ``to_sympy()`` hands it to SymPy.
    ``inferred_shapes`` holds the shapes inferred for variables the text left undeclared.
    """

    #: The user's SymPy symbols, when the expression was a SymPy expression (``to_sympy``
    #: gives results back over them).
    sympy_names: Names | None = None

    #: name -> shape, as ``shapes=`` writes it, for each variable whose shape was inferred
    inferred_shapes: dict = {}

    def __init__(self, expression: E.Node, wrt: list[E.Node], single: bool,
                 numpy_reading: bool = False):
        self.expression = expression
        # text holds NumPy's 1-D values apart from 2-D columns; the Python API's vectors are
        # all columns, handed out 1-D
        self._numpy_reading = numpy_reading
        self.wrt = tuple(wrt)
        self._single = single
        used = _checked_variables(expression, wrt)
        unused = [w for w in wrt if isinstance(w, E.Var) and w not in used]
        self.variables = tuple(used + unused)      # the generated code takes every wrt variable
        self.upstream = None if expression.is_scalar else _upstream_var(expression, self.variables,
                                                                         numpy_reading)
        seed = E.Const.make(1) if self.upstream is None else self.upstream
        derived = differentiate(expression, wrt, seed)
        self.sweep = derived.sweep
        self.differentiated = derived.differentiated   # the form the sweep and code computed
        self.gradients = derived.gradients

    # -- results ---------------------------------------------------------------------------
    @property
    def gradient(self):
        """The gradient in matrix form (a tuple of them when ``wrt`` was a list)."""
        return self.gradients[0] if self._single else self.gradients

    @property
    def record(self) -> list[Step]:
        """The rules applied on the reverse sweep, in order (each with its derivation record)."""
        return list(self.sweep.steps)

    def to_sympy(self):
        """The result as an equal SymPy matrix expression (a tuple when ``wrt`` was a list),
        over the SymPy symbols the expression was given in, if it was (docs/sympy.md).

        >>> import sympy
        >>> n = sympy.Symbol("n", integer=True, positive=True)
        >>> X, A = sympy.MatrixSymbol("X", n, n), sympy.MatrixSymbol("A", n, n)
        >>> derive(sympy.Trace(A * X) + sympy.log(sympy.Determinant(X)), wrt=X).to_sympy()
        X.T**(-1) + A.T
        """
        values = tuple(write(g, self.sympy_names) for g in self.gradients)
        return values[0] if self._single else values

    def wrt_names(self) -> list[str]:
        """How each target reads after d/d: a name, or a subexpression (in parentheses when it
        is not a single call, as in d/d(sum(A) - sum(A)))."""
        names = [w.name if isinstance(w, E.Var) else to_text(w) for w in self.wrt]
        return [f"({n})" if " " in n else n for n in names]

    def named(self):
        """The printed form's definitions and results (``printing.names``): a value written
        more than once, or a long line's largest part, gets a name; a small result none."""
        if getattr(self, "_named", None) is None:
            taken = {v.name for v in self.variables} | (
                {self.upstream.name} if self.upstream is not None else set())
            self._named = name_values(list(self.gradients), [simplify(self.differentiated)],
                                      taken)
        return self._named

    def text(self) -> str:
        """The result as matcalc text, one ``d/dX = ...`` line per variable, after a
        ``name = value`` line for each named intermediate (as a book prints it)."""
        labels = None if self._single else [f"d/d{n}" for n in self.wrt_names()]
        return named_text(list(self.gradients), labels, named=self.named())

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return f"<Derivation of {_doc_text(self.expression)} wrt {', '.join(self.wrt_names())}>"

    def latex(self) -> str:
        """LaTeX of the result; with several variables or named intermediates, one equation
        per definition and per variable."""
        if self._single and not self.named().definitions:
            return to_latex(self.gradients[0])
        return r",\quad ".join(self.equations())

    def equations(self) -> list[str]:
        """LaTeX equations: ``s = ...`` for each named intermediate, then
        ``\\frac{\\partial f}{\\partial X} = ...`` , one per variable."""
        f = "f" if self.upstream is None else rf"\left\langle {latex_name(self.upstream.name)}, f \right\rangle"
        lhs = []
        for w in self.wrt:
            name = latex_name(w.name) if isinstance(w, E.Var) else to_latex(w)
            lhs.append(rf"\frac{{\partial {f}}}{{\partial {name}}}")
        return named_equations(self.named(), lhs)

    def mathml(self) -> str:
        """MathML of the result (via latex2mathml)."""
        return to_mathml(self.latex())

    def _repr_latex_(self) -> str:
        return "$" + r",\quad ".join(self.equations()) + "$"

    def steps(self) -> "Steps":
        """The derivation step by step, one block per rule applied on the reverse sweep.

        Print it (text), or write it with ``latex()``, ``latex_document()``, ``mathml()``,
        ``markdown()`` or ``html()``; see docs/notes.md.
        """
        return _on_demand("steps").build_steps(self.differentiated, self.wrt, self.record, self.gradients,
                           self.upstream)

    def _repr_html_(self) -> str:
        return _on_demand("printing.notes").math_html(self.equations())

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return {"text/plain": repr(self), "text/latex": self._repr_latex_(),
                "text/html": self._repr_html_()}

    # -- code --------------------------------------------------------------------------------
    def numpy_source(self, name: str = "gradient") -> str:
        """Source of a self-contained function (numpy only) computing the gradient(s).

        Its arguments are the expression's variables (vectors as 1-D arrays, scalars as numbers)
        and, for a non-scalar expression, ``G=None`` (ones). It returns each gradient in the form
        of its variable, as a tuple when several were asked for.
        """
        check_name(name)
        outputs = [Output(g, w.kind if isinstance(w, E.Var) else "matrix")
                   for w, g in zip(self.wrt, self.gradients)]
        inputs = list(self.variables)
        optional = {}
        if self.upstream is not None:
            inputs.append(self.upstream)
            optional[self.upstream] = "ones"
        wrt = ", ".join(self.wrt_names())
        doc = f"Gradient of {_doc_text(self.expression)} with respect to {wrt}."
        if self.upstream is not None:
            doc = (f"Vector-Jacobian product of {_doc_text(self.expression)} with respect to {wrt}"
                   f": d sum({self.upstream.name} * f) / d{wrt}; {self.upstream.name} defaults to "
                   "ones.")
        return numpy_source(outputs, inputs, name, _safe_doc(doc), optional)

    def numpy_function(self) -> Callable:
        """The generated function, compiled (see ``numpy_source``)."""
        return compile_source(self.numpy_source(), "gradient")

    def value_function(self) -> Callable:
        """A function computing the expression itself, with the same arguments (no G)."""
        kind = _kind_of(self.expression, getattr(self, "_numpy_reading", False))
        source = numpy_source([Output(self.expression, kind)], list(self.variables), "value")
        return compile_source(source, "value")

    # -- checking --------------------------------------------------------------------------
    def check(self, seed: int = 0, tolerance: float | None = None, raise_on_failure: bool = True,
              functions: dict | None = None, **sizes: int) -> CheckReport:
        """Compare with central finite differences on random inputs; raise ``CheckError`` if wrong.

        Sizes of dimensions can be given (``check(n=4, m=5)``); the rest are chosen distinct.
        The generated NumPy code is what is checked, so the check covers the printed formula
        and the code generator together. A function the text names without defining (g) is
        checked as ``functions`` gives it and its derivatives (``{"g": np.tanh, "g_prime":
        lambda z: 1 - np.tanh(z) ** 2}``); without ``functions``, as g = sin (g' = cos, ...).
        """
        tolerance = DEFAULT_TOLERANCE if tolerance is None else tolerance
        variables = [v for v in self.variables if v is not self.upstream]
        chosen = choose_sizes(E.dimensions([self.expression] + variables), sizes)
        self._sizes = chosen       # generated code takes a dimension only a constant has
        bound = {**chosen, **self._user_functions(functions)}      # what generated code takes
        inputs, warnings = draw_inputs(variables, chosen, seed, self.upstream, self._kinks(),
                                       domains=input_domains(self.expression, variables))
        args = {v.name: inputs[v.name] for v in variables}
        weight = inputs.get(self.upstream.name) if self.upstream is not None else None
        f = objective(_bind_sizes(self.value_function(), bound), weight)
        ensure_finite(f, args)
        extra = {} if self.upstream is None else {self.upstream.name: weight}
        grads = _bind_sizes(self.numpy_function(), bound)(**args, **extra)
        grads = (grads,) if len(self.wrt) == 1 else grads
        results = []
        for w, label, g in zip(self.wrt, self.wrt_names(), grads):
            if isinstance(w, E.Var):
                results.append(compare(label, w.name, g, args, f, tolerance, seed))
                continue
            # a subexpression: the expression with that node as an input, at its actual value
            name = _fresh_name("Z", {v.name for v in variables})
            slot = E.Var.make(name, w.shape, "matrix", check_name=False)
            replaced = E.substitute([self.expression], {w: slot})[0]
            here = _bind_sizes(compile_source(numpy_source([Output(w)], variables, "value"),
                                              "value"), bound)(**args)
            value_w = _bind_sizes(compile_source(
                numpy_source([Output(replaced, _kind_of(replaced))], variables + [slot], "value"),
                "value"), bound)
            results.append(compare(label, name, g, {**args, name: here},
                                   objective(value_w, weight), tolerance, seed))
        report = CheckReport(all(r.ok for r in results), results, chosen, tolerance, seed,
                             warnings)
        if raise_on_failure and not report.ok:
            raise CheckError(f"the derived gradient disagrees with finite differences\n{report}",
                             report)
        return report

    def _user_function_codes(self) -> list[str]:
        """The code names (g, g_prime, ...) of the functions the text named, every order up to
        the highest the expression and its results use (a Hessian's check derives g' too)."""
        nodes = E.postorder([self.expression, *(g for g in self.gradients
                                                 if isinstance(g, E.Node))])
        seen = [derivative_of_user_function(n.name) for n in nodes if isinstance(n, E.Apply)]
        highest: dict[str, int] = {}
        for name, order in filter(None, seen):
            if order >= highest.get(name, 0):
                highest[name] = order
        return [derivative_name(name, k) for name, top in sorted(highest.items())
                for k in range(top + 1)]

    def _user_functions(self, given: dict | None) -> dict:
        """The callables generated code takes for the functions the text named (g, g_prime)."""
        codes = self._user_function_codes()
        if given is None:          # g = sin: every derivative is a shifted sine
            return {code: functools.partial(_shifted_sine, derivative_of_user_function(code)[1])
                    for code in codes}
        if not isinstance(given, dict):
            raise MatcalcError("functions= must be a dict from names to functions, e.g. "
                               "{'g': np.tanh, 'g_prime': lambda z: 1 - np.tanh(z) ** 2}")
        missing = [code for code in codes if code not in given]
        if missing:
            raise MatcalcError(f"check() needs {', '.join(missing)} as well: pass them in "
                               f"functions=, or leave functions= out to check with g = sin")
        return {code: given[code] for code in codes}

    def _kinks(self) -> Callable | None:
        """A function returning, for each kink of each function (its stanza declares them:
        relu, abs, sign, step at 0), the argument minus the kink: it must stay away from 0."""
        nodes = [n.args[0] if k == 0 else E.sub(n.args[0], k)
                 for n in E.postorder([self.expression]) if isinstance(n, E.Apply)
                 for k in operation_of(n).kinks]
        if not nodes:
            return None
        variables = [v for v in self.variables if v is not self.upstream]
        f = compile_source(numpy_source([Output(n) for n in nodes], variables, "kinks"), "kinks")
        f = _bind_sizes(f, getattr(self, "_sizes", {}))
        return _tuple_result(f, len(nodes))


def _shifted_sine(order: int, z):
    """The order-th derivative of sin: sin(z + order pi / 2)."""
    import numpy as np
    return np.sin(z + order * (np.pi / 2))


def _declared_order(derive_function: Callable) -> Callable:
    """``derive_function`` (derive, jacobian, hessian, hvp) with the variables of its result, the
    generated functions' arguments, in the order its ``shapes=`` declares them (a variable not
    declared there, such as a Hessian-vector product's direction, after them, in its order)."""
    signature = inspect.signature(derive_function)

    @functools.wraps(derive_function)
    def in_declared_order(*args, **kwargs):
        res = derive_function(*args, **kwargs)
        shapes = signature.bind(*args, **kwargs).arguments.get("shapes")
        if isinstance(shapes, dict) and shapes:
            place = {name: k for k, name in enumerate(shapes)}
            res.variables = tuple(sorted(res.variables,
                                         key=lambda v: place.get(v.name, len(place))))
        return res
    return in_declared_order


def _bind_sizes(f: Callable, sizes: dict) -> Callable:
    """``f`` with the dimension sizes it takes as arguments filled in (a dimension that only a
    constant uses cannot be read off the inputs, so generated code takes it as an argument)."""
    params = inspect.signature(f).parameters
    fixed = {name: size for name, size in sizes.items() if name in params}
    return functools.partial(f, **fixed) if fixed else f


def _doc_text(node: E.Node) -> str:
    """``node`` as text for a docstring or repr (one line), or a summary when written out in
    full it would be too large for one (``text()`` writes it with named values)."""
    text = to_text(node)
    if "\n" in text:
        return f"an expression too large to write out on one line ({E.format_shape(node.shape)})"
    return text


def _safe_doc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"""', "'''")


def _kind_of(node: E.Node, numpy_reading: bool = False) -> str:
    """How generated code hands out ``node``'s value: a number, a 1-D array or a 2-D array.
    Of text (``numpy_reading``), an n x 1 value is 1-D where NumPy's is (``is_vector``) and a
    2-D column elsewhere (a declared ("n", 1), keepdims=True); in the Python API every n x 1
    value is a vector."""
    if node.is_scalar:
        return "scalar"
    if numpy_reading:
        return "vector" if is_vector(node) else "matrix"
    return "vector" if is_one(node.cols) else "matrix"


def _tuple_result(f: Callable, count: int) -> Callable:
    def call(**kwargs):
        out = f(**kwargs)
        return (out,) if count == 1 else out
    return call


_fresh_name = E.fresh_name


def compile_source(source: str, name: str) -> Callable:
    """Compile generated source and return its function ``name``.

    The source is matcalc's own output: user text reaches it only as validated identifiers
    (variable and dimension names) and exact numbers, never as code.
    """
    return getattr(compile_module(source, name), name)


def _checked_variables(expression: E.Node, wrt: list[E.Node]) -> list[E.Var]:
    variables = E.variables([expression])
    by_name: dict[str, E.Var] = {}
    for v in variables:
        other = by_name.setdefault(v.name, v)
        if other is not v:
            raise MatcalcError(f"variable {v.name} is used with two different shapes or kinds: "
                               f"{other!r} and {v!r}")
    dim_names = {d.name for d in E.dimensions([expression])}
    clash = dim_names & set(by_name)
    if clash:
        raise MatcalcError(f"{', '.join(sorted(clash))} names both a variable and a dimension")
    order = E.postorder([expression])
    ids = {id(n) for n in order}
    for w in wrt:
        if not isinstance(w, E.Node):
            raise MatcalcError(f"cannot differentiate with respect to {w!r}")
        if isinstance(w, E.Var):
            if w.name in by_name and by_name[w.name] is not w:
                raise MatcalcError(f"{w!r} is not the variable {w.name} of the expression")
        elif id(w) not in ids:
            raise MatcalcError(f"{to_text(w)} is not a subexpression of {to_text(expression)}")
        elif isinstance(w, (E.Const, E.Eye)) or (isinstance(w, E.Broadcast) and
                                                  isinstance(w.args[0], E.Const)):
            raise MatcalcError(f"cannot differentiate with respect to the constant {to_text(w)}")
    return variables


def _upstream_var(expression: E.Node, variables: Sequence[E.Var],
                  numpy_reading: bool = False) -> E.Var:
    taken = {v.name for v in variables} | {d.name for d in E.dimensions([expression])}
    name = _fresh_name(UPSTREAM_NAME, taken)
    return E.Var.make(name, expression.shape, _kind_of(expression, numpy_reading))


def _as_list(wrt) -> tuple[list, bool]:
    if isinstance(wrt, (list, tuple)):
        if not wrt:
            raise MatcalcError("wrt is empty: name at least one variable")
        return list(wrt), False
    return [wrt], True


# ---------------------------------------------------------------------------------------------
# One signature: expression, wrt, shapes=, domains=, functions=
# ---------------------------------------------------------------------------------------------

#: Keywords people reach for, and the one each entry point takes instead.
_KEYWORD_FIXES = {"shape": "shapes", "domain": "domains", "function": "functions",
                  "x": "wrt", "var": "wrt", "variable": "wrt", "variables": "wrt",
                  "with_respect_to": "wrt", "f": "expression", "expr": "expression",
                  "loss": "expression", "text": "expression"}


def _one_signature(func: Callable) -> Callable:
    """``func`` refusing an unknown keyword with a ``TypeError`` in Python's own spelling that
    names the keyword it takes instead (``shape`` -> ``shapes=``)."""
    params = inspect.signature(func).parameters

    @functools.wraps(func)
    def call(*args, **kwargs):
        for key in kwargs:
            if key not in params:
                raise ArgumentError(_keyword_message(func.__name__, key, params))
        return func(*args, **kwargs)
    return call


def _keyword_message(name: str, key: str, params) -> str:
    fix = _KEYWORD_FIXES.get(key) if _KEYWORD_FIXES.get(key) in params else None
    if fix is None:
        close = difflib.get_close_matches(key, list(params), n=1)
        fix = close[0] if close else None
    takes = ", ".join(f"{p}=" for p in params)
    hint = f"; did you mean {fix}=?" if fix is not None else "."
    return f"{name}() got an unexpected keyword argument {key!r}{hint} It takes {takes}."


class _Read:
    """An expression as every entry point reads it (``_read``)."""

    def __init__(self, node: E.Node, variables: dict, names: Names | None = None,
                 inferred: dict | None = None, text: bool = False):
        self.node, self.variables, self.names = node, variables, names
        self.inferred = inferred or {}      # shapes inferred for undeclared variables of text
        self.text = text


def _read(expression, shapes: dict | None, domains: dict | None, functions,
          infer_kinds: bool) -> _Read:
    """The expression as a node, its variables by name (for text, every declared one), the
    user's SymPy symbols when it was a SymPy expression, and the shapes inferred for text.
    Every entry point reads through here."""
    if isinstance(expression, str):
        node, inferred = parse_inferring(expression, shapes, domains, infer_kinds, functions)
        declared = declare({**(shapes or {}), **inferred}, domains)
        # a declared variable the text does not use has a zero gradient
        return _Read(node, {**declared, **_by_name(node)}, None, inferred, text=True)
    if infer_kinds:
        raise MatcalcError("infer_kinds= is for text; variables carry their own kinds")
    if is_sympy(expression):
        if shapes is not None or functions is not None:
            raise MatcalcError("shapes= and functions= are for text; a SymPy expression's "
                               "MatrixSymbols carry their own shapes")
        node, names = read(expression, domains)
        return _Read(node, _by_name(node), names)
    if isinstance(expression, E.Node):
        if shapes is not None or domains is not None or functions is not None:
            raise MatcalcError("shapes=, domains= and functions= are for text; variables carry "
                               "their own")
        return _Read(expression, _by_name(expression))
    raise MatcalcError(f"cannot derive {type(expression).__name__}: pass text or an expression "
                       "(matcalc's or SymPy's)")


def _by_name(node: E.Node) -> dict:
    return {v.name: v for v in E.variables([node])}


def _resolve(w, variables: dict, names: Names | None, domains: dict | None):
    """A ``wrt`` entry as a node: a name, a variable or subexpression, or a SymPy symbol or
    subexpression of a SymPy expression."""
    if is_sympy(w):
        name = getattr(w, "name", None)
        if isinstance(name, str) and name in variables:
            node = read_target(w, names or Names(), domains)
            if node is not variables[name]:
                raise MatcalcError(f"{w} ({E.format_shape(node.shape)}) is not the variable "
                                   f"{name} of the expression "
                                   f"({E.format_shape(variables[name].shape)})")
            return node
        return read_target(w, names or Names(), domains)
    if isinstance(w, str):
        if w not in variables:
            known = ", ".join(sorted(variables)) or "none"
            raise MatcalcError(f"{w!r} is not a variable of the expression; its variables "
                               f"are: {known}")
        return variables[w]
    return w


@_declared_order
@_one_signature
def derive(expression, wrt, shapes: dict | None = None, domains: dict | None = None, *,
           infer_kinds: bool = False, functions=None) -> Derivation:
    """Derive the gradient of ``expression`` (text, expression or SymPy) with respect to ``wrt``.

    ``wrt`` is a variable (or its name, or a SymPy symbol), or a list of them: all are derived
    in one reverse sweep. A SymPy expression's MatrixSymbols carry their shapes (it takes
    ``domains=``); see docs/sympy.md. A variable of text whose use fixes its shape may be left
    out of ``shapes`` (``inferred_shapes`` on the result); ``infer_kinds=True`` reads undeclared
    names by their letter: a-g scalars, h-z vectors, A-Z matrices. ``functions`` names
    elementwise functions text uses without defining them (``["g"]``): the result is written
    with g' (generated code takes ``g`` and ``g_prime`` as arguments).

    >>> res = derive("trace(A @ X @ B)", wrt="X",
    ...              shapes={"A": ("n", "n"), "X": ("n", "n"), "B": ("n", "n")})
    >>> str(res.gradient)
    'A.T @ B.T'
    """
    got = _read(expression, shapes, domains, functions, infer_kinds)
    targets, single = _as_list(wrt)
    res = Derivation(got.node, [_resolve(w, got.variables, got.names, domains) for w in targets],
                     single, numpy_reading=got.text)
    return _with_names(res, got)


class MatrixDerivative(Derivation):
    """A Jacobian, Hessian or Hessian-vector product, presented like a gradient.

    ``gradient`` (also ``matrix``) holds the result in matrix form; text, LaTeX, MathML, NumPy
    code and ``numpy_function()`` work as for a gradient. ``check()`` compares it with finite
    differences: of the function itself for a Jacobian, of its generated gradient for a Hessian
    or a Hessian-vector product.
    """

    def __init__(self, kind: str, expression: E.Node, x: E.Node, result: E.Node,
                 direction: E.Var | None = None):
        self.kind, self.expression, self.wrt, self._single = kind, expression, (x,), True
        self.direction = direction
        used = _checked_variables(expression, [x])
        extra = [v for v in ([x] if isinstance(x, E.Var) else []) + ([direction] if direction
                 else []) if v not in used]
        self.variables = tuple(used + extra)
        self.upstream = None
        seed = E.Const.make(1) if expression.is_scalar else E.Var.make(
            _fresh_name("G", {v.name for v in self.variables}), expression.shape)
        derived = differentiate(expression, [x], seed)
        self.sweep, self.differentiated = derived.sweep, derived.differentiated
        self.gradients = (result,)

    @property
    def matrix(self) -> E.Node:
        """The Jacobian, Hessian or Hessian-vector product in matrix form."""
        return self.gradients[0]

    def steps(self) -> "Steps":
        """The whole derivation step by step, one part per reverse sweep: for a Hessian the
        gradient, the sweep of its vector-Jacobian product, and H read off that product (a
        Jacobian: the one sweep and J read off; a Hessian-vector product: the gradient, the
        gradient of sum(g * v), the result). Written like ``Derivation.steps()``; see
        docs/notes.md."""
        return _on_demand("steps").second_order_steps(self.kind, self.expression, self.wrt[0], self.gradients[0],
                                  self.direction)

    def equations(self) -> list[str]:
        name = latex_name(self.wrt[0].name) if isinstance(self.wrt[0], E.Var) else "x"
        lhs = {"jacobian": rf"\frac{{\partial f}}{{\partial {name}}}",
               "hessian": rf"\frac{{\partial^2 f}}{{\partial {name}\,\partial {name}^{{\top}}}}",
               "hvp": rf"\nabla^2_{{{name}}} f \cdot {latex_name(self.direction.name) if self.direction else 'v'}"}
        return named_equations(self.named(), [lhs[self.kind]])

    def numpy_source(self, name: str = "gradient") -> str:
        check_name(name)
        kind = "matrix" if self.kind != "hvp" else _kind_of(self.gradients[0])
        doc = (f"The {self.kind} of {_doc_text(self.expression)} with respect to "
               f"{self.wrt_names()[0]}: {_doc_text(self.gradients[0])}.")
        return numpy_source([Output(self.gradients[0], kind)], list(self.variables), name,
                            _safe_doc(doc))

    def check(self, seed: int = 0, tolerance: float | None = None, raise_on_failure: bool = True,
              functions: dict | None = None, **sizes: int) -> CheckReport:
        """Compare with central finite differences (see the class docstring); ``functions`` as
        for a gradient's check."""
        tolerance = DEFAULT_TOLERANCE if tolerance is None else tolerance
        variables = list(self.variables)
        x = self.wrt[0]
        if not isinstance(x, E.Var):
            raise UnsupportedError(f"check() of a {self.kind} needs a variable to vary, not the "
                                   f"subexpression {to_text(x)}")
        chosen = choose_sizes(E.dimensions([self.expression] + variables), sizes)
        self._sizes = chosen
        inputs, warnings = draw_inputs(variables, chosen, seed, None, self._kinks(),
                                       domains=input_domains(self.expression, variables))
        bound = {**chosen, **self._user_functions(functions)}
        got = _bind_sizes(self.numpy_function(), bound)(**inputs)
        if self.kind == "jacobian":
            inner = _bind_sizes(self.value_function(), bound)
        else:
            inner = _bind_sizes(derive(self.expression, x).numpy_function(), bound)
        direction = inputs[self.direction.name] if self.direction is not None else None
        skip = (self.direction.name,) if self.direction is not None else ()
        result = compare_matrix(self.wrt_names()[0], got, inner, x.name, inputs, direction,
                                tolerance, skip)
        report = CheckReport(result.ok, [result], chosen, tolerance, seed, warnings)
        if raise_on_failure and not report.ok:
            raise CheckError(f"the derived {self.kind} disagrees with finite differences\n"
                             f"{report}", report)
        return report


def _second_order_target(expression, wrt, shapes, domains, functions, infer_kinds, what: str):
    """The reading and the one target of a Jacobian, Hessian or HVP."""
    got = _read(expression, shapes, domains, functions, infer_kinds)
    if isinstance(wrt, (list, tuple)):
        raise MatcalcError(f"the {what} is taken with respect to one variable: wrt=\"x\", "
                           "not a list")
    return got, _resolve(wrt, got.variables, got.names, domains)


def _with_names(res, got: _Read):
    """``res`` with the user's SymPy symbols and the shapes inferred for its text."""
    res.sympy_names = got.names
    res.inferred_shapes = got.inferred
    return res


class TensorDerivative(MatrixDerivative):
    """A Jacobian or Hessian with no matrix form, as an index (einsum) tensor.

    f or x is a matrix, so it has three or four indices, ``T[i, j, k, l] = d f_ij / d x_kl``
    (``H[i, j, k, l] = d^2 f / dX_ij dX_kl``; axes of size 1 dropped).

    ``tensor`` (also ``gradient``) is the ``IndexTensor``: ``str()`` gives it as einsum text,
    ``latex()`` in index notation, with the Kronecker form ``d vec(f) / d vec(x)^T`` when every
    term splits (``kronecker_text()``). ``numpy_function()`` returns the array (``layout="vec"``:
    the Kronecker matrix); ``check()`` compares it with finite differences as for a matrix.
    """

    @property
    def tensor(self) -> IndexTensor:
        return self.gradients[0]

    def to_sympy(self):
        """The Kronecker form d vec(f) / d vec(x)^T (column-major vec, as the Matrix Cookbook)
        as a SymPy matrix expression of ``KroneckerProduct`` s; refused when a term does not
        split into a Kronecker product."""
        terms = self.tensor.kronecker
        if terms is None:
            raise UnsupportedError(f"this {self.kind} has no Kronecker form, so no SymPy matrix "
                                   f"expression: {self.tensor.to_text()}")
        return write_kronecker([(t.coeff, t.left, t.right) for t in terms], self.sympy_names)

    def text(self) -> str:
        return self.tensor.to_text()

    def latex(self) -> str:
        return self.tensor.to_latex()

    def equations(self) -> list[str]:
        return self.tensor.equations()

    def __repr__(self) -> str:
        dims = "×".join(str(d) for d in self.tensor.shape)
        return (f"<{self.kind} of {_doc_text(self.expression)} wrt {self.wrt_names()[0]}: "
                f"{dims} tensor>")

    def numpy_source(self, name: str = "gradient", layout: str = "tensor") -> str:
        """Source of a function returning the tensor as an array with axes (i, j, k, l)
        (those of size 1 dropped), or, with ``layout="vec"``, the Kronecker-form matrix
        d vec(f) / d vec(x)^T (column-major vec, as the Matrix Cookbook)."""
        check_name(name)
        doc = (f"The {self.kind} of {_doc_text(self.expression)} with respect to "
               f"{self.wrt_names()[0]}: {self.tensor.to_text() if layout == 'tensor' else ''}"
               f"{self.tensor.kronecker_text() if layout == 'vec' else ''}.")
        return self.tensor.numpy_source(list(self.variables), name, _safe_doc(doc), layout)

    def numpy_function(self, layout: str = "tensor") -> Callable:
        return compile_source(self.numpy_source(layout=layout), "gradient")


def _vector_jacobian(node: E.Node, x: E.Node) -> E.Node:
    """The matrix-form Jacobian of a vector of a vector: by peeling the vector-Jacobian
    product (jacobian.py), or, where that finds no form, from the index form."""
    try:
        return jacobian_matrix(node, x)
    except UnsupportedError:
        return jacobian_tensor(node, x).as_matrix()


@_declared_order
@_one_signature
def jacobian(expression, wrt, shapes: dict | None = None, domains: dict | None = None, *,
             infer_kinds: bool = False, functions=None) -> MatrixDerivative:
    """The Jacobian of ``expression`` f with respect to ``wrt`` x, as a matrix or a tensor.

    m x n in matrix form for a vector f of a vector x; otherwise (f or x a matrix) a
    ``TensorDerivative`` with T[i, j, k, l] = d f_ij / d x_kl.

    >>> A = Matrix("A", "m", "n"); x = Vector("x", "n")
    >>> str(jacobian(tanh(A @ x), x).matrix)
    'diag(1 - tanh(A @ x) ** 2) @ A'
    >>> B = Matrix("B", "n", "q"); X = Matrix("X", "m", "n")
    >>> J = jacobian(A.T @ X @ B, X)
    >>> str(J), J.tensor.kronecker_text()
    ('einsum("ki,lj->ijkl", A, B)', 'kron(B.T, A.T)')
    """
    got, x = _second_order_target(expression, wrt, shapes, domains, functions, infer_kinds,
                                  "Jacobian")
    node = got.node
    if node.cols == 1 and x.cols == 1:
        return _with_names(MatrixDerivative("jacobian", node, x, _vector_jacobian(node, x)), got)
    return _with_names(TensorDerivative("jacobian", node, x, jacobian_tensor(node, x)), got)


@_declared_order
@_one_signature
def hessian(expression, wrt, shapes: dict | None = None, domains: dict | None = None, *,
            infer_kinds: bool = False, functions=None) -> MatrixDerivative:
    """The Hessian of a scalar f, in matrix form or as an index tensor.

    n x n in matrix form for a vector x; a ``TensorDerivative`` with
    H[i, j, k, l] = d^2 f / dX_ij dX_kl for a matrix X.

    >>> A = Matrix("A", "n", "n"); x = Vector("x", "n")
    >>> str(hessian(x.T @ A @ x, x).matrix)
    'A + A.T'
    >>> X = Matrix("X", "n", "n")
    >>> hessian(trace(X.T @ A @ X), X).tensor.kronecker_text()
    'kron(eye(n), A + A.T)'
    """
    got, x = _second_order_target(expression, wrt, shapes, domains, functions, infer_kinds,
                                  "Hessian")
    return _with_names(_hessian(got.node, x), got)


def _hessian(node: E.Node, x: E.Node) -> MatrixDerivative:
    if x.cols == 1:
        try:
            return MatrixDerivative("hessian", node, x, hessian_matrix(node, x))
        except UnsupportedError:
            if not node.is_scalar:
                raise
            gradient = gradient_of(node, x)
            return MatrixDerivative("hessian", node, x, jacobian_tensor(gradient, x).as_matrix())
    label = x.name if isinstance(x, E.Var) else "X"
    return TensorDerivative("hessian", node, x,
                            jacobian_tensor(gradient_of(node, x), x, x_label=label, hessian=True))


@_declared_order
@_one_signature
def hvp(expression, wrt, shapes: dict | None = None, domains: dict | None = None,
        direction: str = "v", *, infer_kinds: bool = False, functions=None) -> MatrixDerivative:
    """The Hessian of a scalar f applied to a direction v of x's shape (any shape of x).

    >>> X = Matrix("X", "n", "n"); A = Matrix("A", "n", "n")
    >>> str(hvp(trace(X.T @ A @ X), X).matrix)
    '(A.T + A) @ v'
    """
    got, x = _second_order_target(expression, wrt, shapes, domains, functions, infer_kinds,
                                  "Hessian-vector product")
    node = got.node
    taken = {v.name for v in E.variables([node])}
    v = E.Var.make(_fresh_name(direction, taken), x.shape,
                   x.kind if isinstance(x, E.Var) else None)
    return _with_names(MatrixDerivative("hvp", node, x, hessian_vector_product(node, x, v), v),
                       got)


@_one_signature
def grad(expression, wrt, shapes: dict | None = None, domains: dict | None = None, *,
         infer_kinds: bool = False, functions=None) -> Derivation:
    """Gradient of an expression with respect to a variable, or a list of them (as ``derive``).

    >>> W = Matrix("W", "n", "d"); x = Vector("x", "d")
    >>> str(grad(sum(tanh(W @ x)), W).gradient)
    '(1 - tanh(W @ x) ** 2) @ x.T'
    """
    return derive(expression, wrt, shapes, domains, infer_kinds=infer_kinds, functions=functions)


@_one_signature
def backward(expression, wrt, shapes: dict | None = None, domains: dict | None = None,
             names: dict | None = None, *, infer_kinds: bool = False,
             functions=None) -> BackwardCode:
    """Generated forward and backward passes computing ``loss`` and its gradients: one module.

    ``expression`` (the loss), ``wrt``, ``shapes``, ``domains`` and ``functions`` are as for
    ``derive``; ``names`` maps a name to a subexpression (an expression, text, or a SymPy
    subexpression) the generated code should call by that name.
    The result's ``source`` defines ``forward(inputs..., xp=None) -> (loss, kept)`` and
    ``backward(kept, xp=None)`` returning every gradient; ``module()`` compiles it.

    >>> code = backward("sum(tanh(W @ x + b))", wrt=["W", "b"],
    ...                 shapes={"W": ("n", "d"), "x": ("d",), "b": ("n",)})
    >>> code.outputs
    ('dW', 'db')
    >>> import numpy as np
    >>> loss, kept = code.forward(W=np.ones((2, 3)), x=np.zeros(3), b=np.zeros(2))
    >>> [g.shape for g in code.backward(kept)]
    [(2, 3), (2,)]
    """
    res = derive(expression, wrt, shapes, domains, infer_kinds=infer_kinds, functions=functions)
    if res._user_function_codes():
        raise UnsupportedError("backward() does not take functions the text leaves undefined "
                               "yet: derive(...).numpy_source() does, taking g and g_prime as "
                               "arguments")
    shapes = {**(shapes or {}), **res.inferred_shapes} if isinstance(expression, str) else shapes
    chosen = {}
    for name, node in (names or {}).items():
        if is_sympy(node):
            node = read_target(node, res.sympy_names or Names(), domains)
        elif isinstance(node, str):
            if shapes is None:
                raise MatcalcError("names given as text need shapes=")
            node = parse(node, shapes, domains)
        chosen[name] = node
    code = backward_code(res.expression, res.differentiated, res.wrt, res.gradients,
                         res.sweep.adjoints, [v for v in res.variables if v is not res.upstream],
                         res.upstream, single=res._single, names=chosen)
    code.inferred_shapes = res.inferred_shapes
    return code
