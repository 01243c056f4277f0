"""The public API: build or parse an expression, derive, print, generate code, check.

Contract: ``derive`` (text or expression) and ``grad`` (expression) return a ``Derivation``. Its
gradients are derived in one reverse sweep for all requested variables, simplified together (so
they share their intermediates), and print as text, LaTeX and MathML, generate NumPy source and
check themselves numerically. A non-scalar expression is differentiated as a vector-Jacobian
product with an upstream gradient ``G`` of its shape; generated code takes ``G`` as an optional
argument that defaults to ones (seed 003: "gradients = None").
"""

from __future__ import annotations

import functools
import inspect
from typing import Callable, Sequence

from . import expr as E
from .printing.module import BackwardCode, backward_code
from .check import (DEFAULT_TOLERANCE, CheckReport, choose_sizes, compare, compare_matrix,
                    draw_inputs, ensure_finite, input_domains, objective)
from .diff import Step
from .errors import CheckError, MatcalcError, UnsupportedError
from .ops import BUILDERS, check_name, operation_of
from .jacobian import gradient_of, hessian_matrix, jacobian_matrix
from .jacobian import hvp as hessian_vector_product
from .parse import declare, parse
from .printing.latex import latex_name, to_latex, to_mathml
from .printing.notes import math_html
from .printing.numpy import Output, compile_module, numpy_source
from .printing.text import to_text
from .pipeline import differentiate
from .steps import Steps, build_steps, second_order_steps
from .tensor import IndexTensor, jacobian_tensor

UPSTREAM_NAME = "G"


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
    ``mathml()``, ``numpy_source()``, ``numpy_function()`` and ``check()`` present and verify it.
    """

    def __init__(self, expression: E.Node, wrt: list[E.Node], single: bool):
        self.expression = expression
        self.wrt = tuple(wrt)
        self._single = single
        used = _checked_variables(expression, wrt)
        unused = [w for w in wrt if isinstance(w, E.Var) and w not in used]
        self.variables = tuple(used + unused)      # the generated code takes every wrt variable
        self.upstream = None if expression.is_scalar else _upstream_var(expression, self.variables)
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

    def wrt_names(self) -> list[str]:
        """How each target reads after d/d: a name, or a subexpression (in parentheses when it
        is not a single call, as in d/d(sum(A) - sum(A)))."""
        names = [w.name if isinstance(w, E.Var) else to_text(w) for w in self.wrt]
        return [f"({n})" if " " in n else n for n in names]

    def text(self) -> str:
        """The result as matcalc text, one ``d/dX = ...`` line per variable."""
        if self._single:
            return to_text(self.gradients[0])
        return "\n".join(f"d/d{n} = {to_text(g)}" for n, g in zip(self.wrt_names(), self.gradients))

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return f"<Derivation of {_doc_text(self.expression)} wrt {', '.join(self.wrt_names())}>"

    def latex(self) -> str:
        """LaTeX of the result; with several variables, one equation per variable."""
        if self._single:
            return to_latex(self.gradients[0])
        return r",\quad ".join(self.equations())

    def equations(self) -> list[str]:
        """LaTeX equations ``\\frac{\\partial f}{\\partial X} = ...`` , one per variable."""
        f = "f" if self.upstream is None else rf"\left\langle {latex_name(self.upstream.name)}, f \right\rangle"
        out = []
        for w, g in zip(self.wrt, self.gradients):
            name = latex_name(w.name) if isinstance(w, E.Var) else to_latex(w)
            out.append(rf"\frac{{\partial {f}}}{{\partial {name}}} = {to_latex(g)}")
        return out

    def mathml(self) -> str:
        """MathML of the result (via latex2mathml)."""
        return to_mathml(self.latex())

    def _repr_latex_(self) -> str:
        return "$" + r",\quad ".join(self.equations()) + "$"

    def steps(self) -> Steps:
        """The derivation step by step, one block per rule applied on the reverse sweep.

        Print it (text), or write it with ``latex()``, ``latex_document()``, ``mathml()``,
        ``markdown()`` or ``html()``; see docs/notes.md.
        """
        return build_steps(self.differentiated, self.wrt, self.record, self.gradients,
                           self.upstream)

    def _repr_html_(self) -> str:
        return math_html(self.equations())

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
        kind = _kind_of(self.expression)
        source = numpy_source([Output(self.expression, kind)], list(self.variables), "value")
        return compile_source(source, "value")

    # -- checking --------------------------------------------------------------------------
    def check(self, seed: int = 0, tolerance: float | None = None, raise_on_failure: bool = True,
              **sizes: int) -> CheckReport:
        """Compare with central finite differences on random inputs; raise ``CheckError`` if wrong.

        Sizes of dimensions can be given (``check(n=4, m=5)``); the rest are chosen distinct.
        The generated NumPy code is what is checked, so the check covers the printed formula
        and the code generator together.
        """
        tolerance = DEFAULT_TOLERANCE if tolerance is None else tolerance
        variables = [v for v in self.variables if v is not self.upstream]
        chosen = choose_sizes(E.dimensions([self.expression] + variables), sizes)
        self._sizes = chosen       # generated code takes a dimension only a constant has
        inputs, warnings = draw_inputs(variables, chosen, seed, self.upstream, self._kinks(),
                                       domains=input_domains(self.expression, variables))
        args = {v.name: inputs[v.name] for v in variables}
        weight = inputs.get(self.upstream.name) if self.upstream is not None else None
        f = objective(_bind_sizes(self.value_function(), chosen), weight)
        ensure_finite(f, args)
        extra = {} if self.upstream is None else {self.upstream.name: weight}
        grads = _bind_sizes(self.numpy_function(), chosen)(**args, **extra)
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
                                              "value"), chosen)(**args)
            value_w = _bind_sizes(compile_source(
                numpy_source([Output(replaced, _kind_of(replaced))], variables + [slot], "value"),
                "value"), chosen)
            results.append(compare(label, name, g, {**args, name: here},
                                   objective(value_w, weight), tolerance, seed))
        report = CheckReport(all(r.ok for r in results), results, chosen, tolerance, seed,
                             warnings)
        if raise_on_failure and not report.ok:
            raise CheckError(f"the derived gradient disagrees with finite differences\n{report}",
                             report)
        return report

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
    """``node`` as text for a docstring or repr, or a summary when it is too large to write."""
    try:
        return to_text(node)
    except UnsupportedError:
        return f"an expression too large to write out ({E.format_shape(node.shape)})"


def _safe_doc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"""', "'''")


def _kind_of(node: E.Node) -> str:
    if node.is_scalar:
        return "scalar"
    return "vector" if node.cols == 1 else "matrix"


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


def _upstream_var(expression: E.Node, variables: Sequence[E.Var]) -> E.Var:
    taken = {v.name for v in variables} | {d.name for d in E.dimensions([expression])}
    name = _fresh_name(UPSTREAM_NAME, taken)
    return E.Var.make(name, expression.shape, _kind_of(expression))


def _as_list(wrt) -> tuple[list, bool]:
    if isinstance(wrt, (list, tuple)):
        if not wrt:
            raise MatcalcError("wrt is empty: name at least one variable")
        return list(wrt), False
    return [wrt], True


@_declared_order
def derive(expression, wrt, shapes: dict | None = None, domains: dict | None = None) -> Derivation:
    """Derive the gradient of ``expression`` (text or expression) with respect to ``wrt``.

    ``wrt`` is a variable (or its name), or a list of them: all are derived in one reverse sweep.

    >>> res = derive("trace(A @ X @ B)", wrt="X",
    ...              shapes={"A": ("n", "n"), "X": ("n", "n"), "B": ("n", "n")})
    >>> str(res.gradient)
    'A.T @ B.T'
    """
    if isinstance(expression, str):
        if shapes is None:
            raise MatcalcError("text needs shapes=: e.g. shapes={'X': ('n', 'n'), 'x': ('n',)}")
        node = parse(expression, shapes, domains)
    elif isinstance(expression, E.Node):
        if shapes is not None or domains is not None:
            raise MatcalcError("shapes= and domains= are for text; variables carry their own")
        node = expression
    else:
        raise MatcalcError(f"cannot derive {type(expression).__name__}: pass text or an expression")
    targets, single = _as_list(wrt)
    by_name = {v.name: v for v in E.variables([node])}
    if isinstance(expression, str):
        # a declared variable the text does not use has a zero gradient
        by_name = {**declare(shapes, domains), **by_name}
    resolved = []
    for w in targets:
        if isinstance(w, str):
            if w not in by_name:
                known = ", ".join(sorted(by_name)) or "none"
                raise MatcalcError(f"{w!r} is not a variable of the expression; its variables "
                                   f"are: {known}")
            resolved.append(by_name[w])
        else:
            resolved.append(w)
    return Derivation(node, resolved, single)


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

    def steps(self) -> Steps:
        """The whole derivation step by step, one part per reverse sweep: for a Hessian the
        gradient, the sweep of its vector-Jacobian product, and H read off that product (a
        Jacobian: the one sweep and J read off; a Hessian-vector product: the gradient, the
        gradient of sum(g * v), the result). Written like ``Derivation.steps()``; see
        docs/notes.md."""
        return second_order_steps(self.kind, self.expression, self.wrt[0], self.gradients[0],
                                  self.direction)

    def equations(self) -> list[str]:
        name = latex_name(self.wrt[0].name) if isinstance(self.wrt[0], E.Var) else "x"
        lhs = {"jacobian": rf"\frac{{\partial f}}{{\partial {name}}}",
               "hessian": rf"\frac{{\partial^2 f}}{{\partial {name}\,\partial {name}^{{\top}}}}",
               "hvp": rf"\nabla^2_{{{name}}} f \cdot {latex_name(self.direction.name) if self.direction else 'v'}"}
        return [f"{lhs[self.kind]} = {to_latex(self.gradients[0])}"]

    def numpy_source(self, name: str = "gradient") -> str:
        check_name(name)
        kind = "matrix" if self.kind != "hvp" else _kind_of(self.gradients[0])
        doc = (f"The {self.kind} of {_doc_text(self.expression)} with respect to "
               f"{self.wrt_names()[0]}: {_doc_text(self.gradients[0])}.")
        return numpy_source([Output(self.gradients[0], kind)], list(self.variables), name,
                            _safe_doc(doc))

    def check(self, seed: int = 0, tolerance: float | None = None, raise_on_failure: bool = True,
              **sizes: int) -> CheckReport:
        """Compare with central finite differences (see the class docstring)."""
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
        got = _bind_sizes(self.numpy_function(), chosen)(**inputs)
        if self.kind == "jacobian":
            inner = _bind_sizes(self.value_function(), chosen)
        else:
            inner = _bind_sizes(derive(self.expression, x).numpy_function(), chosen)
        direction = inputs[self.direction.name] if self.direction is not None else None
        skip = (self.direction.name,) if self.direction is not None else ()
        result = compare_matrix(self.wrt_names()[0], got, inner, x.name, inputs, direction,
                                tolerance, skip)
        report = CheckReport(result.ok, [result], chosen, tolerance, seed, warnings)
        if raise_on_failure and not report.ok:
            raise CheckError(f"the derived {self.kind} disagrees with finite differences\n"
                             f"{report}", report)
        return report


def _second_order_target(expression, wrt, shapes, domains):
    if isinstance(expression, str):
        if shapes is None:
            raise MatcalcError("text needs shapes=: e.g. shapes={'x': ('n',)}")
        variables = declare(shapes, domains)
        node = parse(expression, shapes, domains)
        if isinstance(wrt, str):
            if wrt not in variables:
                raise MatcalcError(f"{wrt!r} is not a declared variable")
            wrt = variables[wrt]
        return node, wrt
    if shapes is not None or domains is not None:
        raise MatcalcError("shapes= and domains= are for text; variables carry their own")
    if isinstance(wrt, str):
        by_name = {v.name: v for v in E.variables([expression])}
        if wrt not in by_name:
            raise MatcalcError(f"{wrt!r} is not a variable of the expression")
        wrt = by_name[wrt]
    return E.as_node(expression), wrt


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
def jacobian(f, x, shapes: dict | None = None, domains: dict | None = None) -> MatrixDerivative:
    """The Jacobian of f with respect to x, in matrix form or as an index tensor.

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
    node, x = _second_order_target(f, x, shapes, domains)
    if node.cols == 1 and x.cols == 1:
        return MatrixDerivative("jacobian", node, x, _vector_jacobian(node, x))
    return TensorDerivative("jacobian", node, x, jacobian_tensor(node, x))


@_declared_order
def hessian(f, x, shapes: dict | None = None, domains: dict | None = None) -> MatrixDerivative:
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
    node, x = _second_order_target(f, x, shapes, domains)
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
def hvp(f, x, shapes: dict | None = None, domains: dict | None = None,
        direction: str = "v") -> MatrixDerivative:
    """The Hessian of a scalar f applied to a direction v of x's shape (any shape of x).

    >>> X = Matrix("X", "n", "n"); A = Matrix("A", "n", "n")
    >>> str(hvp(trace(X.T @ A @ X), X).matrix)
    '(A.T + A) @ v'
    """
    node, x = _second_order_target(f, x, shapes, domains)
    taken = {v.name for v in E.variables([node])}
    v = E.Var.make(_fresh_name(direction, taken), x.shape,
                   x.kind if isinstance(x, E.Var) else None)
    return MatrixDerivative("hvp", node, x, hessian_vector_product(node, x, v), v)


def grad(expression: E.Node, wrt) -> Derivation:
    """Gradient of an expression with respect to a variable, or a list of them.

    >>> W = Matrix("W", "n", "d"); x = Vector("x", "d")
    >>> str(grad(sum(tanh(W @ x)), W).gradient)
    '(1 - tanh(W @ x) ** 2) @ x.T'
    """
    return derive(expression, wrt)


def backward(loss, wrt, shapes: dict | None = None, domains: dict | None = None,
             names: dict | None = None) -> BackwardCode:
    """Generated forward and backward passes computing ``loss`` and its gradients: one module.

    ``loss``, ``wrt``, ``shapes`` and ``domains`` are as for ``derive``; ``names`` maps a name
    to a subexpression (an expression, or text) the generated code should call by that name.
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
    res = derive(loss, wrt, shapes, domains)
    chosen = {}
    for name, node in (names or {}).items():
        if isinstance(node, str):
            if shapes is None:
                raise MatcalcError("names given as text need shapes=")
            node = parse(node, shapes, domains)
        chosen[name] = node
    return backward_code(res.expression, res.differentiated, res.wrt, res.gradients,
                         res.sweep.adjoints, [v for v in res.variables if v is not res.upstream],
                         res.upstream, single=res._single, names=chosen)
