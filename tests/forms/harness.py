"""Measuring matcalc against the forms textbooks print: value and size, case by case.

For a case of ``cases.py`` the harness derives with matcalc's public API (``mc.derive``,
``mc.jacobian``, ``mc.hessian``; nothing from matcalc's internal modules) and then measures two
things.

**Value.** matcalc's result and the book's form are evaluated on the same random float64 inputs,
for several seeds, and must agree (relative to the larger of 1 and the book value's largest
entry, within ``RTOL``). Inputs are drawn here, not by matcalc, in the domains the book assumes
(``draw_value``): standard normal, uniform on [0.5, 2] for ``positive``, M Mᵀ/n + I for ``spd``,
a non-symmetric M + 3√n I for ``invertible``, columns of positive entries summing to one for
``probability`` (rows, for ``probability_rows``), (M + Mᵀ)/2 for ``symmetric``, {0, 1} for
``binary`` and {-1, +1} for ``sign``.
Where a case marks a domain matcalc does not have yet (``future_domains``), values are drawn in
the book's domain and matcalc is told the nearest one it has; its result holds for every value
of that wider domain, so it must agree with the book's on the narrower one. Each dimension gets
its own size (3 to 8, a different assignment per seed), so a missing transpose or a 1/n for a
1/m cannot hide behind a square matrix or a lucky size.

- matcalc's side is its generated NumPy function (``numpy_function()``, which computes the
  printed formula); the printed text itself is also evaluated (below) and must agree with it,
  since the printed text is what the size measure counts.
- The book's side is evaluated independently of matcalc: ``evaluate`` is a small interpreter of
  matcalc's text syntax written here, on NumPy, over Python's ``ast`` (it never calls ``eval``).
  It was chosen over ``mc.derive(book_text, ...).value_function()`` because that would run the
  book's form through matcalc's own parser, expression builders (which already simplify) and code
  generator — the very code under test — so a bug there could make both sides agree on a wrong
  value. The interpreter also reads the book's named definitions (``x̂ = ...``) in order, which
  matcalc's text cannot express, and the Kronecker and einsum forms of tensor results.
- matcalc's own numeric check (``.check()``, central finite differences on inputs matcalc draws)
  is run as well, for two seeds: it confirms matcalc against the function itself, where the book
  comparison confirms it against the printed identity.

**Size.** The printed form is ``text()`` of matcalc's result, with every line it prints (the
definitions it may print in future included); the book's is its definitions, one
``name = text`` line each, then its result(s). Tokens are counted with Python's ``tokenize``:
every NAME, NUMBER, OP (operators and brackets) and STRING token counts one (an einsum
subscript string is one token), any other non-blank token (a symbol Python does not know, such
as ⊙) counts one, and layout tokens (NEWLINE, NL, INDENT, DEDENT, ENDMARKER) and comments count
nothing. The label ``d/dX =`` that starts a result line when several variables are asked for is
not counted on either side (the book writes its results under the same labels); a definition's
name and its ``=`` are. So ``2 * (X.T @ (X @ w - y))`` is 15 tokens and ``xhat = x / s`` is 5.
The ratio is matcalc's tokens over the book's.
"""

from __future__ import annotations

import ast
import functools
import inspect
import io
import math
import re
import tokenize
from dataclasses import dataclass

import numpy as np

import matcalc as mc

from forms.cases import CASES, Case

SEEDS = (0, 1, 2)
CHECK_SEEDS = (0, 1)
RTOL = 1e-10
GOAL = 1.25             # the bound on matcalc's size over the book's
GOAL_SHARE = 0.97       # ... for this share of the cases
#: sizes given to dimensions in order of first appearance, one assignment per seed
SIZE_ORDERS = ((3, 4, 5, 6, 7, 8), (4, 5, 3, 7, 8, 6), (5, 3, 4, 8, 6, 7))

_LABEL = re.compile(r"^\s*d/d\S+\s*=\s*", re.MULTILINE)
_UNCOUNTED = {tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.DEDENT,
              tokenize.ENDMARKER, tokenize.COMMENT, tokenize.ENCODING}


# ---------------------------------------------------------------------------------------------
# Size
# ---------------------------------------------------------------------------------------------

def tokens(text: str) -> int:
    """The number of tokens in ``text``, by the rule of the module docstring.

    >>> tokens("2 * (X.T @ (X @ w - y))"), tokens("xhat = x / s"), tokens("d/dW = G @ X.T")
    (15, 5, 5)
    """
    text = _LABEL.sub("", text)
    count = 0
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type in _UNCOUNTED or not tok.string.strip():
            continue
        count += 1
    return count


def book_text(case: Case) -> str:
    """The book's form as printed text: its definitions, then its result(s) (labelled
    ``d/dX =`` when there are several, as matcalc labels them)."""
    lines = [f"{name} = {text}" for name, text in case.defs]
    if len(case.book) == 1:
        lines.append(case.book[0])
    else:
        lines += [f"d/d{w} = {b}" for w, b in zip(case.wrt, case.book)]
    return "\n".join(lines)


@functools.lru_cache(maxsize=None)
def derive(case: Case, text: str | None = None):
    """matcalc's derivation for the case (of ``text`` instead of the case's text, if given)."""
    text = case.text if text is None else text
    if case.kind == "grad":
        wrt = case.wrt[0] if len(case.wrt) == 1 else list(case.wrt)
        return mc.derive(text, wrt, shapes=case.shapes, domains=case.domains)
    api = {"jacobian": mc.jacobian, "hessian": mc.hessian}[case.kind]
    return api(text, case.wrt[0], shapes=case.shapes, domains=case.domains)


def printed(case: Case) -> str:
    """matcalc's printed form: ``text()`` of its result."""
    return derive(case).text()


@dataclass(frozen=True)
class Size:
    """How large matcalc's printed form is next to the book's."""

    case: Case
    matcalc: str
    book: str
    matcalc_tokens: int
    book_tokens: int

    @property
    def ratio(self) -> float:
        return self.matcalc_tokens / self.book_tokens

    @property
    def within_goal(self) -> bool:
        return self.ratio <= GOAL


def size(case: Case) -> Size:
    """The size measure of one case."""
    ours, theirs = printed(case), book_text(case)
    return Size(case, ours, theirs, tokens(ours), tokens(theirs))


def sizes(cases=CASES) -> list[Size]:
    """The size measure of every case, largest ratio first."""
    return sorted((size(c) for c in cases), key=lambda s: (-s.ratio, s.case.id))


def summary(measured: list[Size], worst: int = 15) -> str:
    """How many cases are within the goal today, and the worst ones with both forms."""
    within = sum(s.within_goal for s in measured)
    share = within / len(measured)
    lines = [f"{within} of {len(measured)} cases ({share:.0%}) print within {GOAL}x the book's "
             f"tokens (goal: {GOAL_SHARE:.0%}); median ratio "
             f"{float(np.median([s.ratio for s in measured])):.2f}",
             f"worst {min(worst, len(measured))}:"]
    for s in sorted(measured, key=lambda s: -s.ratio)[:worst]:
        lines.append(f"  {s.case.id}: {s.ratio:.2f}x ({s.matcalc_tokens} vs {s.book_tokens} "
                     f"tokens)")
        lines.append(f"    matcalc: {one_line(s.matcalc)}")
        lines.append(f"    book:    {one_line(s.book)}")
    return "\n".join(lines)


def one_line(text: str) -> str:
    """A printed form on one line: its lines joined by " ; "."""
    return " ; ".join(line.strip() for line in text.splitlines())


# ---------------------------------------------------------------------------------------------
# An independent evaluator of the text syntax, on NumPy
# ---------------------------------------------------------------------------------------------

def _sigmoid(x):
    return 0.5 + 0.5 * np.tanh(0.5 * x)


_ELEMENTWISE = {
    "exp": np.exp, "log": np.log, "sin": np.sin, "cos": np.cos, "tanh": np.tanh,
    "sigmoid": _sigmoid, "relu": lambda x: np.maximum(x, 0.0), "abs": np.abs, "sign": np.sign,
    "sqrt": np.sqrt, "softplus": lambda x: np.logaddexp(0.0, x),
    "step": lambda x: (np.asarray(x) > 0).astype(float),
}


def _scalar(value) -> np.ndarray:
    return np.full((1, 1), float(value))


def _reduce(x, axis, op, keepdims=False):
    """A reduction as the syntax means it: a scalar over all entries; along an axis, a vector
    (a column here) with one entry per column (axis=0) or per row (axis=1); with keepdims, the
    1×m row (axis=0) or the n×1 column (axis=1). Book forms write keepdims=True wherever a
    reduction meets a matrix, so that NumPy's reading and this column one agree."""
    if axis is None:
        return _scalar(op(x, None))
    axis = axis % 2
    return np.asarray(op(x, axis), dtype=float).reshape((1, -1) if keepdims and axis == 0
                                                         else (-1, 1))


def _softmax(x, axis):
    z = np.exp(x - (x.max() if axis is None else x.max(axis=axis, keepdims=True)))
    return z / (z.sum() if axis is None else z.sum(axis=axis, keepdims=True))


def _logsumexp(x, axis):
    top = x.max() if axis is None else x.max(axis=axis, keepdims=True)
    out = top + np.log(np.exp(x - top).sum(axis=axis, keepdims=axis is not None))
    return _scalar(out) if axis is None else np.asarray(out).reshape(-1, 1)


def _diag(x):
    if x.shape[1] == 1:
        return np.diag(x[:, 0])
    return np.diag(x).reshape(-1, 1)


def _einsum(spec, *operands):
    inputs = spec.split("->")[0].split(",")
    fitted = [op[:, 0] if len(letters) == 1 and op.ndim == 2 and op.shape[1] == 1 else op
              for letters, op in zip(inputs, operands)]
    return np.einsum(spec, *fitted)


_FUNCTIONS = {
    "sum": lambda x, axis=None, keepdims=False: _reduce(x, axis, lambda a, ax: a.sum(axis=ax),
                                                        keepdims),
    "mean": lambda x, axis=None, keepdims=False: _reduce(x, axis, lambda a, ax: a.mean(axis=ax),
                                                         keepdims),
    "softmax": lambda x, axis=None: _softmax(x, axis),
    "logsumexp": lambda x, axis=None: _logsumexp(x, axis),
    "trace": lambda x: _scalar(np.trace(x)),
    "det": lambda x: _scalar(np.linalg.det(x)),
    "logdet": lambda x: _scalar(np.linalg.slogdet(x)[1]),
    "inv": np.linalg.inv,
    "norm": lambda x: _scalar(np.linalg.norm(x.ravel())),
    "norm1": lambda x: _scalar(np.abs(x).sum()),
    "diag": _diag,
    "kron": np.kron,
    "einsum": _einsum,
}

_BINARY = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply,
           ast.Div: np.divide, ast.MatMult: np.matmul, ast.Pow: np.power}


def evaluate(text: str, env: dict, sizes: dict) -> np.ndarray:
    """The value of ``text`` (matcalc's syntax) with the variables of ``env`` (2-D arrays:
    vectors n×1, scalars 1×1) and the dimension sizes ``sizes``.

    >>> A = np.array([[1.0, 2.0], [3.0, 4.0]]); x = np.array([[1.0], [1.0]])
    >>> evaluate("x.T @ A @ x + sum(A, axis=0).T @ x / n", {"A": A, "x": x}, {"n": 2})
    array([[15.]])
    """
    return _Evaluator(env, sizes).visit(ast.parse(text.strip(), mode="eval").body)


class _Evaluator:
    def __init__(self, env: dict, sizes: dict):
        self.env, self.sizes = env, sizes

    def visit(self, node):
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise ValueError(f"the evaluator does not read {ast.dump(node)}")
        return method(node)

    def visit_Constant(self, node):
        return node.value if isinstance(node.value, str) else float(node.value)

    def visit_Name(self, node):
        if node.id in self.env:
            return self.env[node.id]
        if node.id in self.sizes:
            return float(self.sizes[node.id])
        raise ValueError(f"unknown name {node.id!r}")

    def visit_Attribute(self, node):
        if node.attr != "T":
            raise ValueError(f"unknown attribute .{node.attr}")
        value = self.visit(node.value)
        return value.T if isinstance(value, np.ndarray) else value

    def visit_UnaryOp(self, node):
        value = self.visit(node.operand)
        if isinstance(node.op, ast.USub):
            return -value
        if isinstance(node.op, ast.UAdd):
            return value
        raise ValueError("unknown unary operator")

    def visit_BinOp(self, node):
        left, right = self.visit(node.left), self.visit(node.right)
        return _BINARY[type(node.op)](left, right)

    def visit_Call(self, node):
        name = node.func.id
        args = [self.visit(a) for a in node.args]
        kwargs = {k.arg: self.visit(k.value) for k in node.keywords}
        if "axis" in kwargs and kwargs["axis"] is not None:
            kwargs["axis"] = int(kwargs["axis"])
        if name in _ELEMENTWISE:
            return _ELEMENTWISE[name](*args)
        if name in ("ones", "zeros", "eye"):
            dims = [int(a) for a in args]
            if name == "eye":
                return np.eye(dims[0])
            return (np.ones if name == "ones" else np.zeros)((dims[0], dims[1] if len(dims) > 1
                                                              else 1))
        return _FUNCTIONS[name](*args, **kwargs)


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------

def draw_value(domain: str, shape: tuple, rng: np.random.Generator) -> np.ndarray:
    """A random value of ``shape`` (2-D) in ``domain``."""
    if domain == "real":
        return rng.standard_normal(shape)
    if domain == "positive":
        return rng.uniform(0.5, 2.0, shape)
    if domain == "binary":
        return rng.integers(0, 2, shape).astype(float)
    if domain == "sign":
        return rng.choice([-1.0, 1.0], shape)
    if domain == "probability":
        u = rng.uniform(0.5, 2.0, shape)
        return u / u.sum() if shape[1] == 1 else u / u.sum(axis=0, keepdims=True)
    if domain == "probability_rows":
        u = rng.uniform(0.5, 2.0, shape)
        return u / u.sum(axis=1, keepdims=True)
    n = shape[0]
    if shape[0] != shape[1]:
        raise ValueError(f"a {domain} matrix must be square, not {shape}")
    m = rng.standard_normal(shape)
    if domain == "spd":
        return m @ m.T / n + np.eye(n)
    if domain == "symmetric":
        return (m + m.T) / 2
    if domain == "invertible":
        return m + 3 * math.sqrt(n) * np.eye(n)
    raise ValueError(f"unknown domain {domain!r}")


def choose_sizes(case: Case, seed: int) -> dict:
    """A distinct size for every dimension name of the case's shapes (its fixed ones kept)."""
    names = []
    for shape in case.shapes.values():
        for d in shape:
            if isinstance(d, str) and d not in names and d not in case.sizes:
                names.append(d)
    order = [s for s in SIZE_ORDERS[seed % len(SIZE_ORDERS)] if s not in case.sizes.values()]
    if len(names) > len(order):
        raise ValueError(f"{case.id}: more dimensions than sizes to give them")
    return {**dict(zip(names, order)), **case.sizes}


def drawn_domain(case: Case, name: str) -> str:
    """The domain values of ``name`` are drawn in: the book's where it assumes one matcalc does
    not have yet (spd stays spd: it is inside symmetric), else the declared one."""
    declared = case.domains.get(name, "real")
    future = case.future_domains.get(name)
    if future is None or declared == "spd":
        return declared
    return future


def draw(case: Case, seed: int) -> tuple[dict, dict]:
    """(sizes, values): random inputs for the case, every value a 2-D array."""
    chosen = choose_sizes(case, seed)
    rng = np.random.default_rng(1000 + seed)
    env = {}
    for name, shape in case.shapes.items():
        dims = [chosen[d] if isinstance(d, str) else int(d) for d in shape]
        full = (1, 1) if not dims else (dims[0], 1) if len(dims) == 1 else tuple(dims)
        env[name] = draw_value(drawn_domain(case, name), full, rng)
    if case.kind == "grad":
        value = np.asarray(evaluate(case.text, env, chosen))
        if value.shape != (1, 1):           # a vector-Jacobian product: an upstream gradient
            env[derive(case).upstream.name] = rng.standard_normal(value.shape)
    return chosen, env


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------

def _argument(value: np.ndarray, kind: str):
    """A 2-D value as generated code takes it: scalars as numbers, vectors 1-D."""
    if kind == "scalar":
        return float(value[0, 0])
    if kind == "vector":
        return value[:, 0]
    return value


def _kind(shape: tuple) -> str:
    return "scalar" if len(shape) == 0 else "vector" if len(shape) == 1 else "matrix"


def _as_2d(value) -> np.ndarray:
    value = np.asarray(value, dtype=float)
    if value.ndim == 0:
        return value.reshape(1, 1)
    if value.ndim == 1:
        return value.reshape(-1, 1)
    return value


def matcalc_values(case: Case, sizes: dict, env: dict, result=None,
                   layout: str | None = None) -> list[np.ndarray]:
    """matcalc's result(s) at the inputs, from its generated NumPy function (a tensor in the
    case's layout, or in ``layout``)."""
    result = derive(case) if result is None else result
    kinds = {name: _kind(shape) for name, shape in case.shapes.items()}
    layout = case.layout if layout is None else layout
    f = result.numpy_function(layout="vec") if layout == "vec" else result.numpy_function()
    args = {}
    for param in inspect.signature(f).parameters:
        if param in kinds:
            args[param] = _argument(env[param], kinds[param])
        elif param in sizes:
            args[param] = sizes[param]
        elif param in env:                   # the upstream gradient
            value = env[param]
            args[param] = value[:, 0] if value.shape[1] == 1 and value.shape[0] > 1 else value
    out = f(**args)
    out = out if case.kind == "grad" and len(case.wrt) > 1 else (out,)
    return [_as_2d(v) for v in out]


def printed_values(case: Case, sizes: dict, env: dict) -> list[np.ndarray]:
    """matcalc's printed text, evaluated by the independent evaluator."""
    return [_as_2d(v) for v in evaluate_lines(derive(case).text(), env, sizes)]


def evaluate_lines(text: str, env: dict, sizes: dict) -> list:
    """The values of a printed form: its ``name = value`` definitions read in order, then each
    result line (``d/dX = value`` or a bare value)."""
    env, results = dict(env), []
    for line in text.splitlines():
        label = _LABEL.match(line)
        if label:
            results.append(evaluate(line[label.end():], env, sizes))
            continue
        head, eq, rest = line.partition(" = ")
        if eq and head.strip().isidentifier():
            env[head.strip()] = _as_2d(evaluate(rest, env, sizes))
        else:
            results.append(evaluate(line, env, sizes))
    return results


def book_values(case: Case, sizes: dict, env: dict) -> list[np.ndarray]:
    """The book's form evaluated by the independent evaluator, definitions first."""
    env = dict(env)
    for name, text in case.defs:
        env[name] = _as_2d(evaluate(text, env, sizes))
    return [_as_2d(evaluate(text, env, sizes)) for text in case.book]


def disagreement(got: np.ndarray, want: np.ndarray) -> float:
    """The largest entrywise difference relative to max(1, the largest entry of ``want``);
    infinite when the shapes differ or a value is not finite."""
    if got.shape != want.shape or not (np.all(np.isfinite(got)) and np.all(np.isfinite(want))):
        return math.inf
    scale = max(1.0, float(np.max(np.abs(want))) if want.size else 1.0)
    return float(np.max(np.abs(got - want))) / scale if want.size else 0.0


def compare(case: Case, seeds=SEEDS, text: str | None = None) -> list[str]:
    """Every disagreement between matcalc and the book on the case (empty when they agree):
    matcalc's generated code against the book's form, and against its own printed text."""
    problems = []
    for seed in seeds:
        chosen, env = draw(case, seed)
        book = book_values(case, chosen, env)
        ours = matcalc_values(case, chosen, env, derive(case, text))
        checks = [("matcalc", ours, book)]
        if text is None:
            code = ours if case.layout == "matrix" else matcalc_values(case, chosen, env,
                                                                        layout="matrix")
            checks.append(("printed text", printed_values(case, chosen, env), code))
        for label, got, want in checks:
            for w, g, b in zip(case.wrt, got, want):
                error = disagreement(g, b)
                if not error <= RTOL:
                    other = "the book" if label == "matcalc" else "matcalc's code"
                    problems.append(f"seed {seed}, d/d{w}: {label} differs from {other} by "
                                    f"{error:.3g} (relative); shapes {g.shape} and {b.shape}")
    return problems


def book_shapes(case: Case) -> dict:
    """Shapes to read the book's form with matcalc's parser: the case's, the upstream
    gradient's, and each definition's (from its value; the sizes are distinct, so a size names
    its dimension)."""
    chosen, env = draw(case, 0)
    by_size = {size: name for name, size in chosen.items()}
    shapes = dict(case.shapes)
    extra = {name: value for name, value in env.items() if name not in shapes}
    for name, text in case.defs:
        extra[name] = env[name] = _as_2d(evaluate(text, env, chosen))
    for name, value in extra.items():
        if value.shape == (1, 1):
            shapes[name] = ()
        elif value.shape[1] == 1:
            shapes[name] = (by_size[value.shape[0]],)
        else:
            shapes[name] = tuple(by_size.get(s, s) for s in value.shape)
    return shapes
